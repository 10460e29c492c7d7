"""Hypothesis properties of symbolic trees: JSON round trips, equality laws, replace, paths."""

import enum
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pliant as pl
from pliant.symbolic import Node


@pl.symbolize
def layer(kind, width=None):
    return kind, width


@pl.symbolize
def many(*items, **options):
    return items, options


class Pair:
    def __init__(self, left, right=0):
        self.left, self.right = left, right


SymPair = pl.symbolize(Pair)


class Color(enum.Enum):
    RED = 1
    GREEN = "green"


def activation(x):
    return x


REFERENCES = [activation, layer, Pair, SymPair, math.sqrt]
ALLOWED = [activation, Color, Pair, math.sqrt]

WEIRD_KEYS = ["", " ", "a b", "it's", 'say "hi"', "[0]", "a.b", "']", "\\", "\n", "__x", "日本"]
keys = st.one_of(st.text(max_size=6), st.sampled_from(WEIRD_KEYS))
option_names = keys.filter(lambda k: k != "items")

primitives = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    # Plain st.floats() rarely draws these; each NaN is a fresh object, as after a JSON load.
    st.sampled_from(["nan", "inf", "-inf", "-0.0"]).map(float),
    st.text(max_size=8),
    st.sampled_from(list(Color)),
    st.sampled_from(REFERENCES),
)


def containers(children):
    """One level of structure over ``children``: lists, tuples, dicts and symbolic calls."""
    return st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(keys, children, max_size=4),
        st.builds(layer, children),
        st.builds(layer, children, width=children),
        st.builds(SymPair, children, right=children),
        st.builds(
            lambda items, opts: many(*items, **opts),
            st.lists(children, max_size=3),
            st.dictionaries(option_names, children, max_size=3),
        ),
    )


# The root is always a container or a node, so a tree is never a bare (possibly NaN) leaf.
trees = containers(st.recursive(primitives, containers, max_leaves=12)).map(pl.freeze)
small_values = st.recursive(primitives, containers, max_leaves=3)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def same(a, b):
    """Equality of two values as items of a tree (so NaN equals NaN, as inside any tree)."""
    return pl.freeze([a]) == pl.freeze([b])


@SETTINGS
@given(trees)
def test_json_round_trip_is_equal_with_equal_hash(tree):
    text = pl.to_json(tree)
    back = pl.from_json(text, allowed=ALLOWED)
    assert back == tree and tree == back
    assert hash(back) == hash(tree)
    assert pl.to_json(back) == text


@SETTINGS
@given(trees)
def test_equality_laws(tree):
    copy = pl.from_json(pl.to_json(tree), allowed=ALLOWED)
    assert tree == tree
    assert (tree != tree) is False
    assert (tree == copy) == (copy == tree)
    assert hash(tree) == hash(copy)
    assert pl.freeze(tree) is tree or pl.freeze(tree) == tree
    assert pl.freeze(pl.freeze(tree)) == pl.freeze(tree)


@SETTINGS
@given(trees, trees)
def test_equal_trees_hash_alike_and_equality_is_symmetric(a, b):
    assert (a == b) == (b == a)
    assert (a != b) != (a == b)
    if a == b:
        assert hash(a) == hash(b)


@SETTINGS
@given(st.lists(small_values, max_size=3), st.dictionaries(option_names, small_values))
def test_keyword_order_does_not_matter(items, options):
    a = many(*items, **options)
    b = many(*items, **dict(reversed(list(options.items()))))
    assert a == b and hash(a) == hash(b)


@SETTINGS
@given(trees)
def test_traverse_paths_resolve_to_the_same_objects(tree):
    seen = set()
    for path, value in pl.traverse(tree):
        assert path not in seen
        seen.add(path)
        assert pl.get(tree, path) is value
        assert pl.get(tree, str(path)) is value
        assert pl.KeyPath.parse(str(path)) == path


@SETTINGS
@given(trees, small_values, st.data())
def test_replace_a_random_path(tree, new_value, data):
    paths = [path for path, _ in pl.traverse(tree)]
    target = data.draw(st.sampled_from(paths))
    before = pl.to_json(tree)

    new = pl.replace(tree, {target: new_value})

    assert same(pl.get(new, target), new_value)
    assert pl.to_json(tree) == before
    for path in paths:
        if path[: len(target)] == target:
            continue  # the replaced sub-tree
        if target[: len(path)] == path:
            assert pl.get(new, path) is not pl.get(tree, path)  # an ancestor: rebuilt
        else:
            assert pl.get(new, path) is pl.get(tree, path)  # off the path: shared


@SETTINGS
@given(trees, st.data())
def test_replace_with_the_same_values_gives_an_equal_tree(tree, data):
    paths = [path for path, _ in pl.traverse(tree) if path]
    chosen = data.draw(st.lists(st.sampled_from(paths), max_size=3, unique=True)) if paths else []
    chosen = [p for p in chosen if not any(q != p and p[: len(q)] == q for q in chosen)]
    new = pl.replace(tree, {p: pl.get(tree, p) for p in chosen})
    assert new == tree and hash(new) == hash(tree)


@SETTINGS
@given(trees)
def test_nodes_in_trees_are_nodes_of_the_symbolized_callables(tree):
    for _, value in pl.traverse(tree):
        if isinstance(value, Node):
            assert value.fn in (layer.target, many.target, Pair)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.integers(), keys, st.text()), max_size=6))
def test_key_path_text_round_trip(keys_):
    path = pl.KeyPath(keys_)
    assert pl.KeyPath.parse(str(path)) == path
    assert tuple(pl.KeyPath.parse(str(path))) == tuple(keys_)
