"""Placeholders, space compilation, materialize / encode / iterate over symbolic values."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pliant as pl
from pliant.spaces.compiler import _CACHE


@pl.symbolize
def layer(op, width=8):
    return ("layer", op, width)


@pl.symbolize
def stack(layers, head="dense"):
    return ("stack", layers, head)


def leaf_spaces(tagged: bool = False) -> st.SearchStrategy:
    prims = st.one_of(st.integers(-5, 5), st.sampled_from(["a", "b", "c"]), st.none())
    return st.one_of(
        prims,
        st.lists(prims, min_size=1, max_size=4, unique_by=lambda x: (type(x), x)).map(
            lambda c: pl.oneof([layer(f"c{j}", x) for j, x in enumerate(c)] if tagged else c)
        ),
        st.tuples(st.floats(-2, 2), st.floats(0, 3)).map(lambda t: pl.floatv(t[0], t[0] + t[1])),
        st.tuples(st.floats(0.01, 1), st.floats(1, 100)).map(
            lambda t: pl.floatv(t[0], t[1], scale="log")
        ),
        st.tuples(st.integers(-3, 3), st.integers(0, 4)).map(lambda t: pl.intv(t[0], t[0] + t[1])),
    )


def _key(x):
    return (type(x), pl.to_json(x))


def spaces(tagged: bool = False) -> st.SearchStrategy:
    """Symbolic search spaces: nodes, lists, tuples, dicts, nested and conditional choices.

    With ``tagged``, each candidate of a choice is wrapped in ``layer('c<j>', ...)`` so that
    different candidates never materialize to equal values (the space is unambiguous, so DNA
    and values map one to one).
    """

    def tag(cands: list) -> list:
        return [layer(f"c{j}", c) for j, c in enumerate(cands)] if tagged else cands

    def extend(children: st.SearchStrategy) -> st.SearchStrategy:
        return st.one_of(
            st.lists(children, min_size=1, max_size=3),
            st.lists(children, min_size=1, max_size=3).map(tuple),
            st.dictionaries(st.sampled_from(["x", "y", "z w"]), children, min_size=1, max_size=3),
            st.tuples(children, children).map(lambda t: layer(t[0], width=t[1])),
            st.lists(children, min_size=1, max_size=3).map(lambda c: stack(c)),
            st.lists(children, min_size=1, max_size=3, unique_by=_key).map(
                lambda c: pl.oneof(tag(c))
            ),
            st.tuples(
                st.lists(children, min_size=2, max_size=3, unique_by=_key),
                st.booleans(),
                st.booleans(),
            ).map(lambda t: pl.manyof(2, tag(t[0]), distinct=t[1], sorted=t[2])),
        )

    leaves = leaf_spaces(tagged)
    return st.recursive(leaves, extend, max_leaves=8)


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(spaces(), st.integers(0, 2**31 - 1))
def test_materialize_of_encode_is_identity(value, seed):
    dna = pl.random_dna(pl.space(value), seed)
    concrete = pl.materialize(value, dna)
    again = pl.encode(value, concrete)
    pl.space(value).validate(again)
    assert pl.materialize(value, again) == concrete


@SETTINGS
@given(spaces(tagged=True), st.integers(0, 2**31 - 1))
def test_encode_of_materialize_is_identity(value, seed):
    sp = pl.space(value)
    dna = pl.random_dna(sp, seed)
    concrete = pl.materialize(value, dna)
    assert pl.encode(value, concrete) == dna
    # A concrete value holds no placeholder, and re-encoding is stable under JSON.
    assert pl.from_json(pl.to_json(concrete)) == concrete


@SETTINGS
@given(spaces(tagged=True))
def test_iterate_matches_size_and_is_distinct(value):
    sp = pl.space(value)
    if math.isinf(sp.size) or sp.size > 300:
        return
    values = list(pl.iterate(value))
    assert len(values) == sp.size
    dnas = {pl.encode(value, v) for v in values}
    assert len(dnas) == sp.size


def test_materialize_builds_only_the_changed_parts():
    fixed = layer("conv", 3)
    value = stack([fixed, layer(pl.oneof(["a", "b"]))])
    concrete = pl.materialize(value, {"layers[1].op": "b"})
    assert concrete == stack([layer("conv", 3), layer("b")])
    assert concrete.layers[0] is fixed  # concrete sub-trees are shared, never copied
    assert concrete.build() == ("stack", [("layer", "conv", 3), ("layer", "b", 8)], "dense")


def test_conditional_slots_and_ids():
    value = {"op": pl.oneof([layer(pl.oneof([3, 5])), "skip"]), "lr": pl.floatv(0.1, 1.0)}
    sp = pl.space(value)
    assert [s.id for s in sp.slots] == ["op", "op.candidates[0].op", "lr"]
    assert sp.slots[1].conditions == ((0, 0),)
    assert sp.size == math.inf
    assert pl.materialize(value, {"op": "skip", "lr": 0.5}) == {"op": "skip", "lr": 0.5}


def test_manyof_picks_and_sizes():
    value = pl.manyof(2, ["a", "b", "c"])
    assert pl.space(value).size == 6
    assert pl.space(pl.manyof(2, ["a", "b", "c"], sorted=True)).size == 3
    assert pl.space(pl.manyof(2, ["a", "b", "c"], distinct=False)).size == 9
    assert pl.space(pl.manyof(2, ["a", "b", "c"], distinct=False, sorted=True)).size == 6
    assert pl.materialize(value, [2, 0]) == ["c", "a"]


def test_shared_name_is_one_decision():
    w = pl.oneof([16, 32], name="width")
    value = [layer("conv", w), layer("dense", w)]
    sp = pl.space(value)
    assert sp.num_slots == 1 and sp.size == 2
    assert pl.materialize(value, {"width": 32}) == [layer("conv", 32), layer("dense", 32)]
    with pytest.raises(ValueError, match=r"matches no candidate|not a point"):
        pl.encode(value, [layer("conv", 16), layer("dense", 32)])


def test_shared_name_unconditional_use_wins():
    w = pl.oneof([1, 2], name="w")
    value = {"a": pl.oneof([w, "none"]), "b": w}
    sp = pl.space(value)
    assert sp.slots[1].name == "w" and sp.slots[1].conditions == ()


def test_shared_name_with_different_definitions_is_an_error():
    value = [pl.oneof([1, 2], name="w"), pl.oneof([1, 3], name="w")]
    with pytest.raises(ValueError, match="decision name 'w' is shared by different placeholders"):
        pl.space(value)


def test_shared_name_under_different_branches_is_an_error():
    value = pl.oneof([[pl.oneof([1, 2], name="w")], [pl.oneof([1, 2], name="w"), 0]])
    with pytest.raises(ValueError, match="used under different branches"):
        pl.space(value)


def test_compilation_is_cached_and_equal_values_share_it():
    _CACHE.clear()
    a = {"x": pl.oneof([1, 2])}
    assert pl.space(a) is pl.space(pl.freeze({"x": pl.oneof([1, 2])}))


def test_placeholder_trees_cannot_build():
    with pytest.raises(ValueError, match=r"placeholder sits at path 'layers\[0\].op'"):
        stack([layer(pl.oneof(["a", "b"]))]).build()


def test_placeholders_round_trip_through_json():
    value = stack([layer(pl.oneof(["a", pl.floatv(0.0, 1.0, name="f")]))], head=pl.intv(1, 3))
    again = pl.from_json(pl.to_json(value))
    assert again == value
    assert pl.space(again) == pl.space(value)


def test_placeholder_json_is_checked_on_load():
    text = (
        '{"__pliant__": 1, "value": {"__call__": "pliant.spaces.placeholders:oneof", '
        '"args": {"candidates": []}}}'
    )
    with pytest.raises(ValueError, match="candidates must not be empty"):
        pl.from_json(text)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: pl.oneof([]), "candidates must not be empty"),
        (lambda: pl.oneof("abc"), "candidates must be a list"),
        (lambda: pl.oneof([1, 2, 1]), "candidates 0 and 2 are equal"),
        (lambda: pl.oneof([1], name=""), "name must be a non-empty str"),
        (lambda: pl.manyof(4, [1, 2, 3]), "k must be an int ≥ 1 and at most 3"),
        (lambda: pl.manyof(0, [1, 2], distinct=False), "k must be an int ≥ 1, got 0"),
        (lambda: pl.floatv(1.0, 0.0), "lo must be ≤ hi"),
        (lambda: pl.floatv(0.0, math.inf), "hi must be a finite number"),
        (lambda: pl.floatv(0.0, 1.0, scale="log"), "a log scale needs lo > 0"),
        (lambda: pl.floatv(0.1, 1.0, scale="cubic"), "scale must be 'linear' or 'log'"),
        (lambda: pl.intv(0.5, 3), "lo must be an int"),
        (lambda: pl.intv(3, 1), "lo must be ≤ hi"),
    ],
)
def test_placeholder_errors(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_materialize_errors_name_the_problem():
    value = {"w": pl.oneof([1, 2]), "f": pl.floatv(0.0, 1.0)}
    other = pl.space({"v": pl.oneof([1, 2, 3])})
    with pytest.raises(ValueError, match="different space"):
        pl.materialize(value, pl.random_dna(other, 0))
    with pytest.raises(ValueError, match="takes one DNA"):
        pl.materialize(value, pl.random_dna(pl.space(value), 0, 3))
    with pytest.raises(TypeError, match="expected a DNA, a dict of decisions or a list"):
        pl.materialize(value, 3)
    with pytest.raises(ValueError, match="'f'"):
        pl.materialize(value, {"w": 1, "f": 2.0})


def test_encode_errors_name_the_path():
    value = {"w": pl.oneof([1, 2]), "f": pl.floatv(0.0, 1.0), "i": pl.intv(0, 2)}
    with pytest.raises(ValueError, match=r"at path 'w': 3 matches no candidate"):
        pl.encode(value, {"w": 3, "f": 0.5, "i": 1})
    with pytest.raises(ValueError, match=r"at path 'f': expected a float in \[0.0, 1.0\]"):
        pl.encode(value, {"w": 1, "f": 1.5, "i": 1})
    with pytest.raises(ValueError, match=r"at path 'i': expected an int in \[0, 2\]"):
        pl.encode(value, {"w": 1, "f": 0.5, "i": 7})
    with pytest.raises(ValueError, match="expected a dict with keys"):
        pl.encode(value, {"w": 1})
    with pytest.raises(ValueError, match=r"expected a layer\(...\) node"):
        pl.encode(layer(pl.oneof([1, 2])), stack([]))
    with pytest.raises(ValueError, match="arguments differ"):
        pl.encode(layer(pl.oneof([1, 2])), layer(1, width=4))
    with pytest.raises(ValueError, match="expected a list of 2 picks"):
        pl.encode(pl.manyof(2, [1, 2, 3]), [1])
    with pytest.raises(ValueError, match="expected a SymList of 2 items"):
        pl.encode([pl.oneof([1, 2]), 3], [1])
    with pytest.raises(ValueError, match="expected 3, got 4"):
        pl.encode([pl.oneof([1, 2]), 3], [1, 4])


def test_iterate_rejects_floats_and_respects_limit():
    with pytest.raises(ValueError, match="float"):
        list(pl.iterate({"f": pl.floatv(0.0, 1.0)}))
    assert len(list(pl.iterate([pl.oneof(range(10))], limit=4))) == 4


def test_random_sample_is_reproducible():
    value = {"w": pl.oneof(list(range(100))), "f": pl.floatv(0.0, 1.0)}
    assert pl.random_sample(value, 7) == pl.random_sample(value, 7)
    assert pl.random_sample(value, 7) != pl.random_sample(value, 8)


def test_flax_module_space_materializes_and_builds():
    jnp = pytest.importorskip("jax.numpy")
    nnx = pytest.importorskip("flax.nnx")

    @pl.symbolize
    class Mlp(nnx.Module):
        def __init__(self, width, act="relu", *, rngs):
            self.lin = nnx.Linear(4, width, rngs=rngs)
            self.act = getattr(nnx, act)

        def __call__(self, x):
            return self.act(self.lin(x))

    value = Mlp(pl.oneof([8, 16]), act=pl.oneof(["relu", "gelu"]))
    model = pl.materialize(value, {"width": 16, "act": "gelu"}).build(rngs=nnx.Rngs(0))
    assert model(jnp.ones((2, 4))).shape == (2, 16)
