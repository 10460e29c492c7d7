"""Free functions over trees: children, traverse, query, get, replace and their errors."""

import numpy as np
import pytest

import pliant as pl
from pliant.symbolic import CallableSpec, Node, children, first_abstract_path, make_node


@pl.symbolize
def conv(features, kernel=3, act="relu"):
    return ("conv", features, kernel, act)


@pl.symbolize
def block(layers, config=None):
    return ("block", layers, config)


@pl.symbolize
def options(name, **extra):
    return name, extra


@pl.symbolize
def with_rngs(width, rngs=None):
    return width


class Base:
    def __init__(self, x):
        self.x = x


class Sub(Base):
    pass


SymBase, SymSub = pl.symbolize(Base), pl.symbolize(Sub)


def make_net():
    return pl.freeze(
        {
            "stem": conv(16),
            "body": [block([conv(32), conv(64, act="gelu")], {"drop": 0.1}), block((conv(8),))],
            "head": None,
        }
    )


def test_children():
    net = make_net()
    assert [k for k, _ in children(net)] == ["stem", "body", "head"]
    assert list(children(conv(16))) == [("features", 16)]
    assert list(children(pl.freeze((1, 2)))) == [(0, 1), (1, 2)]
    assert list(children(3)) == []


def test_traverse_visits_parents_first_with_paths():
    paths = [str(p) for p, _ in pl.traverse(pl.freeze({"a": [1, {"b": conv(2)}]}))]
    assert paths == ["", "a", "a[0]", "a[1]", "a[1].b", "a[1].b.features"]


def test_traverse_paths_resolve_to_the_same_objects():
    net = make_net()
    for path, value in pl.traverse(net):
        assert pl.get(net, path) is value
        assert pl.get(net, str(path)) is value


def test_query_by_symbolized_callable_class_and_predicate():
    net = make_net()
    found = pl.query(net, conv)
    assert [str(p) for p in found] == [
        "stem",
        "body[0].layers[0]",
        "body[0].layers[1]",
        "body[1].layers[0]",
    ]
    assert [str(p) for p in pl.query(net, lambda p, v: v == "gelu")] == ["body[0].layers[1].act"]
    assert [str(p) for p in pl.query(net, float)] == ["body[0].config.drop"]
    assert pl.query(net, block)[pl.KeyPath.parse("body[1]")] == block((conv(8),))


def test_query_by_class_matches_nodes_of_subclasses():
    tree = pl.freeze([SymBase(1), SymSub(2), 3])
    assert [str(p) for p in pl.query(tree, Base)] == ["[0]", "[1]"]
    assert [str(p) for p in pl.query(tree, Sub)] == ["[1]"]
    assert [str(p) for p in pl.query(tree, SymBase)] == ["[0]"]


@pytest.mark.parametrize("where", [3, "conv", None])
def test_query_with_a_bad_where_raises(where):
    with pytest.raises(TypeError, match=r"query\(\): 'where' must be a symbolized callable"):
        pl.query(make_net(), where)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("", None),
        ("stem.features", 16),
        ("body[0].layers[1].act", "gelu"),
        ("body[-1].layers[-1].features", 8),
        ("body[0].config.drop", 0.1),
        ("head", None),
    ],
)
def test_get(path, expected):
    net = make_net()
    got = pl.get(net, path)
    assert got is net if path == "" else got == expected


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("stem.width", r"path 'stem.width' does not exist: conv has arguments \['features'\]"),
        ("stem[0]", r"path 'stem\[0\]' does not exist: conv has arguments"),
        ("nope", r"path 'nope' does not exist: the dict has keys \['stem', 'body', 'head'\]"),
        ("[0]", r"path '\[0\]' does not exist: the dict has keys"),
        ("body[2]", r"path 'body\[2\]' does not exist: index 2 is out of range .* length 2"),
        ("body[-3]", r"index -3 is out of range"),
        ("body.x", r"path 'body.x' does not exist: index 'x' is out of range"),
        ("stem.features.x", r"path 'stem.features.x' does not exist: 'stem.features' is a leaf"),
        ("head[0]", r"'head' is a leaf \(NoneType\), not a node, list or dict"),
    ],
)
def test_get_missing_path_raises(path, message):
    with pytest.raises(KeyError, match=message):
        pl.get(make_net(), path)


# ---------------------------------------------------------------------------------------------
# replace


def test_replace_returns_a_new_tree_and_leaves_the_input_unchanged():
    net = make_net()
    before = pl.to_json(net)
    new = pl.replace(net, {"body[0].layers[1].features": 128, "stem.act": "gelu"})
    assert pl.to_json(net) == before
    assert pl.get(new, "body[0].layers[1].features") == 128
    assert pl.get(new, "stem") == conv(16, act="gelu")
    assert new != net


def test_replace_shares_every_sub_tree_off_the_replaced_path():
    net = make_net()
    new = pl.replace(net, {"body[0].layers[1].features": 128})
    on_path = ["", "body", "body[0]", "body[0].layers", "body[0].layers[1]"]
    for path in on_path:
        assert pl.get(new, path) is not pl.get(net, path)
    for path in ["stem", "head", "body[1]", "body[0].config", "body[0].layers[0]"]:
        assert pl.get(new, path) is pl.get(net, path)


def test_replace_keyword_shorthand_and_key_path_keys():
    assert pl.replace(conv(16), features=32, act="tanh") == conv(32, act="tanh")
    path = pl.KeyPath(("layers", 0, "kernel"))
    assert pl.replace(block([conv(1)]), {path: 5}) == block([conv(1, kernel=5)])


def test_replace_sets_an_unset_argument_in_signature_order():
    new = pl.replace(conv(16, act="gelu"), {"kernel": 5})
    assert list(new.args) == ["features", "kernel", "act"]
    assert repr(new) == "conv(features=16, kernel=5, act='gelu')"


def test_replace_adds_a_dict_key_and_a_var_keyword_argument():
    assert pl.replace(pl.freeze({"a": 1}), {"b": [2]}) == {"a": 1, "b": [2]}
    assert pl.replace(options("n"), {"extra_arg": 1}) == options("n", extra_arg=1)


def test_replace_keeps_container_and_node_types():
    net = pl.freeze([(1, 2), [3], {"a": 4}])
    new = pl.replace(net, {"[0][1]": 20, "[1][0]": 30, "[2].a": 40, "[-1].b": 5})
    assert new == [(1, 20), [30], {"a": 40, "b": 5}]
    assert type(new[0]) is tuple and type(new[1]) is pl.SymList and type(new[2]) is pl.SymDict


def test_replace_with_negative_index():
    assert pl.replace(pl.freeze([1, 2, 3]), {"[-1]": 30}) == [1, 2, 30]
    new = pl.replace(make_net(), {"body[0].layers[0].kernel": 1, "body[0].layers[-2].act": "x"})
    assert pl.get(new, "body[0].layers[0]") == conv(32, kernel=1, act="x")


def test_replace_freezes_new_values():
    new = pl.replace(conv(1), {"features": [1, {"a": (2,)}]})
    assert type(new.features) is pl.SymList and type(new.features[1]) is pl.SymDict


def test_replace_the_root():
    assert pl.replace(conv(1), {"": [1, 2]}) == [1, 2]
    assert type(pl.replace(conv(1), {"": [1]})) is pl.SymList


def test_replace_keeps_the_node_class():
    class Hole(Node):
        abstract = True

    hole = make_node(CallableSpec(conv.target), {"features": 1}, Hole)
    new = pl.replace(pl.freeze([hole]), {"[0].features": 2})
    assert type(new[0]) is Hole and new[0].features == 2
    assert str(first_abstract_path(new)) == "[0]"
    assert first_abstract_path(make_net()) is None


def test_replace_with_no_updates_returns_an_equal_tree():
    net = make_net()
    assert pl.replace(net) == net
    assert pl.replace(net, {}) == net


# replace errors


def test_replace_root_with_other_paths_raises():
    with pytest.raises(ValueError, match=r"root path '' cannot be combined with other paths"):
        pl.replace(make_net(), {"": 1, "stem": 2})


@pytest.mark.parametrize(
    ("updates", "path"),
    [
        ({"stem": 1, "stem.features": 2}, "stem.features"),
        ({"stem.features": 2, "stem": 1}, "stem"),
        ({"body[0].layers": [], "body[0].layers[1].act": "x"}, r"body\[0\].layers\[1\].act"),
        ({"body[1]": 1, "body[-1]": 2}, r"body\[-1\]"),
        (
            {"body[0].layers[0].act": 1, "body[0].layers[-2].act": "x"},
            r"body\[0\].layers\[-2\].act",
        ),
    ],
)
def test_replace_overlapping_paths_raises(updates, path):
    with pytest.raises(ValueError, match=rf"replace\(\): path '{path}' overlaps another replaced"):
        pl.replace(make_net(), updates)


@pytest.mark.parametrize(
    ("updates", "kwargs"),
    [({"stem": 1}, {"stem": 2}), ({"stem": 1, pl.KeyPath(("stem",)): 2}, {})],
)
def test_replace_the_same_path_twice_raises(updates, kwargs):
    with pytest.raises(ValueError, match=r"replace\(\): path 'stem' is given twice"):
        pl.replace(make_net(), updates, **kwargs)


@pytest.mark.parametrize(
    ("path", "error", "message"),
    [
        ("stem.kernel.x", KeyError, r"path 'stem.kernel' does not exist: conv holds no argument"),
        ("stem.width", ValueError, r"path 'stem.width': conv has no argument 'width'; its arg"),
        ("stem[0]", ValueError, r"path 'stem\[0\]': conv has no argument 0"),
        ("body[0].config[0]", KeyError, r"path 'body\[0\].config\[0\]' does not exist: dict keys"),
        ("body[0].config.x.y", KeyError, r"path 'body\[0\].config.x' does not exist: the dict has"),
        ("body[2]", KeyError, r"path 'body\[2\]' does not exist: the sequence has length 2"),
        ("body.x", KeyError, r"path 'body.x' does not exist: the sequence has length 2"),
        ("head.x", KeyError, r"path 'head.x' does not exist: 'head' is a leaf \(NoneType\)"),
    ],
)
def test_replace_missing_path_raises(path, error, message):
    net = make_net()
    before = pl.to_json(net)
    with pytest.raises(error, match=message):
        pl.replace(net, {path: 1})
    assert pl.to_json(net) == before


def test_replace_int_key_in_a_var_keyword_node_raises():
    with pytest.raises(ValueError, match=r"path '\[0\]': options has no argument 0"):
        pl.replace(options("n"), {"[0]": 1})


def test_replace_runtime_argument_raises():
    with pytest.raises(ValueError, match=r"path 'rngs': 'rngs' is a runtime argument of with_rng"):
        pl.replace(with_rngs(1), {"rngs": 0})


@pytest.mark.parametrize("bad", [np.ones(2), object()], ids=["array", "object"])
def test_replace_with_an_unsupported_value_raises(bad):
    with pytest.raises(TypeError, match=r"at path 'stem.features': unsupported value"):
        pl.replace(make_net(), {"stem.features": bad})


def test_replace_with_a_non_str_dict_key_raises():
    with pytest.raises(TypeError, match=r"at path 'head': dict keys in a symbolic value must be"):
        pl.replace(make_net(), {"head": {1: 2}})
