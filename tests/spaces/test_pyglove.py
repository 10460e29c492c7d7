"""PyGlove interop: Space <-> DNASpec and DNA <-> pg.DNA are lossless, both ways."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from collections.abc import Mapping

import jax
import numpy as np
import pyglove as pg
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import pliant as pl
from pliant.spaces import (
    Group,
    Slot,
    Space,
    from_dna_spec,
    from_pg_dna,
    iterate_dna,
    pyglove_space,
    random_dna,
    to_dna_spec,
    to_pg_dna,
)
from pliant.testing.strategies import spaces

SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.filter_too_much]
)


def _convert(space: Space):
    """to_dna_spec, or None (after checking the error) when PyGlove cannot express the space."""
    try:
        return to_dna_spec(space)
    except ValueError as e:
        assert "several parent slots" in str(e) or "different conditional sub-spaces" in str(e)
        return None


def _plain(x):
    if isinstance(x, Mapping):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x


# ----------------------------------------------------------------------------- properties


@SETTINGS
@given(spaces(max_slots=7), st.integers(0, 2**32 - 1))
def test_round_trips_preserve_every_decision(space, seed):
    spec = _convert(space)
    assume(spec is not None)
    assert from_dna_spec(spec) == space
    if math.isfinite(space.size):
        assert spec.space_size == space.size
    else:
        assert spec.space_size == -1
    dnas = list(random_dna(space, seed, n=6))
    for dna in dnas:
        pg_dna = to_pg_dna(space, dna)
        pg_dna.use_spec(spec)  # validates against the converted spec
        back = from_pg_dna(space, pg_dna)
        assert back == dna
        assert back.value.tobytes() == np.asarray(dna.value, np.float64).tobytes()
    # Without the hints the spec still holds the same decisions, so pg DNAs carry over.
    spec.rebind(hints=None, raise_on_no_change=False)
    bare = from_dna_spec(spec)
    assert bare.size == space.size
    for dna in dnas:
        again = from_pg_dna(bare, to_pg_dna(space, dna))
        assert to_pg_dna(bare, again) == to_pg_dna(space, dna)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(spaces(max_slots=5, kinds=("choice", "int", "manyof"), max_choices=3))
def test_every_dna_of_a_finite_space_maps_to_a_distinct_pg_dna(space):
    assume(space.size <= 100)
    spec = _convert(space)
    assume(spec is not None)
    pg_dnas = set()
    for dna in iterate_dna(space):
        pg_dna = to_pg_dna(space, dna, spec=spec)
        pg_dnas.add(str(pg_dna.to_numbers()))
        assert from_pg_dna(space, pg_dna) == dna
    assert len(pg_dnas) == space.size == spec.space_size


@SETTINGS
@given(spaces(max_slots=6, multi_parent=True))
def test_inexpressible_spaces_raise_naming_the_slot(space):
    multi = [s for s in space.slots if len({p for p, _ in s.conditions}) > 1]
    if multi:
        with pytest.raises(
            ValueError, match=re.escape(f"slot {multi[0].id!r} is conditioned on several")
        ):
            to_dna_spec(space)
    else:
        _convert(space)


def test_jax_dnas_convert_with_their_float32_values():
    space = pl.space({"x": pl.floatv(1e-3, 1.0, scale="log"), "k": pl.manyof(2, [1, 2, 3])})
    dna = random_dna(space, jax.random.key(0))
    pg_dna = to_pg_dna(space, dna)
    assert pg_dna.to_numbers()[0] == float(np.asarray(dna.value)[0])
    assert from_pg_dna(space, pg_dna) == dna


# ------------------------------------------------------------------ spaces written with pliant


def test_compiled_spaces_read_like_pg_dna_spec():
    value = {
        "act": pl.oneof(["relu", None, True, 2.5, 3], name="activation"),
        "ks": pl.manyof(2, ["a", "b", "c"], sorted=True),
        "rep": pl.manyof(3, [1, 2], distinct=False),
        "lr": pl.floatv(1e-4, 1e-1, scale="log"),
        "wd": pl.floatv(0.0, 1.0),
    }
    same = pg.Dict(
        act=pg.oneof(["relu", None, True, 2.5, 3], name="activation"),
        ks=pg.manyof(2, ["a", "b", "c"], sorted=True),
        rep=pg.manyof(3, [1, 2], distinct=False),
        lr=pg.floatv(1e-4, 1e-1, scale="log"),
        wd=pg.floatv(0.0, 1.0),
    )
    spec = to_dna_spec(pl.space(value))
    assert spec.hints is None
    assert pg.eq(spec, pg.dna_spec(same))
    assert from_dna_spec(pg.dna_spec(same)) == pl.space(value)


def test_conditional_spaces_keep_pyglove_ids():
    value = {
        "a": pl.oneof([1, {"b": pl.oneof(["x", "y"]), "f": pl.floatv(0.0, 1.0)}]),
        "m": pl.manyof(2, [{"q": pl.oneof([1, 2])}, 3]),
        "w": pl.intv(2, 5),
    }
    space = pl.space(value)
    spec = to_dna_spec(space)
    assert [str(dp.id) for dp in spec.decision_points] == [
        "a",
        "a[=1/2].b",
        "a[=1/2].f",
        "m[0]",
        "m[0][=0/2].q",
        "m[1]",
        "m[1][=0/2].q",
        "w",
    ]
    assert list(spec["w"].literal_values) == [2, 3, 4, 5]
    assert spec.hints["pliant"].sym_jsonify() == {"version": 1, "slots": [[7, {"kind": "int"}]]}
    assert from_dna_spec(spec) == space


def test_or_conditions_become_copies_and_come_back_as_one_slot():
    space = Space(
        [
            Slot("op", "choice", 3, literals=("conv", "pool", "id")),
            Slot("k", "int", 3, lo=1, hi=3, scale="log", conditions=((0, 0), (0, 1)), name="K"),
            Slot("r", "float", 0, lo=0.5, hi=2.0, conditions=((1, 2),)),
        ]
    )
    spec = to_dna_spec(space)
    assert [str(dp.id) for dp in spec.decision_points] == [
        "op",
        "op[=0/3].k",
        "op[=0/3].k[=2/3].r",
        "op[=1/3].k",
        "op[=1/3].k[=2/3].r",
    ]
    assert list(spec.named_decision_points) == ["K"]  # PyGlove names are unique
    assert spec.space_size == -1 and space.size == math.inf
    assert from_dna_spec(spec) == space
    dna = space.from_dict({"op": "pool", "K": 3, "r": 1.25})
    assert to_pg_dna(space, dna).to_numbers() == [1, 2, 1.25]
    assert from_pg_dna(space, pg.DNA((1, 2, 1.25))) == dna


def test_manyof_of_one_position_and_odd_ids_round_trip():
    space = Space(
        [
            Slot("<root>", "choice", 2, literals=("x", "y")),
            Slot("pick[0]", "choice", 3, group=0, conditions=((0, 1),)),
            Slot("my key!", "float", 0, lo=-1.0, hi=1.0),
            Slot("tail", "choice", 2, conditions=((1, 2),), name="T"),
        ],
        groups=[Group((1,), distinct=True, sorted=True)],
    )
    spec = to_dna_spec(space)
    assert from_dna_spec(spec) == space
    for dna in random_dna(space, 3, n=10):
        assert from_pg_dna(space, to_pg_dna(space, dna, spec=spec)) == dna


# ----------------------------------------------------------------- spaces written with PyGlove


HYPER = pg.Dict(
    a=pg.oneof([1, pg.Dict(b=pg.oneof(["x", "y"]))]),
    c=pg.manyof(2, [1, 2, 3]),
    d=pg.floatv(0.1, 1.0),
)
PLIANT_TWIN = {
    "a": pl.oneof([1, {"b": pl.oneof(["x", "y"])}]),
    "c": pl.manyof(2, [1, 2, 3]),
    "d": pl.floatv(0.1, 1.0),
}


def test_pyglove_space_has_the_slots_pliant_gives_the_same_space():
    ps = pyglove_space(HYPER)
    twin = pl.space(PLIANT_TWIN)
    assert ps.space.size == math.inf
    assert len(ps.space) == len(twin)
    for a, b in zip(ps.space.slots, twin.slots):
        assert a._replace(literals=()) == b._replace(literals=())
        assert a.literals[:1] == b.literals[:1]
    assert ps.space.groups == twin.groups


def test_pliant_dnas_materialize_as_pyglove_materializes_them():
    ps = pyglove_space(HYPER)
    twin = pl.space(PLIANT_TWIN)
    for dna in random_dna(ps.space, 7, n=30):
        got = ps.materialize(dna)
        assert pg.eq(got, pg.materialize(HYPER, to_pg_dna(ps.space, dna)))
        mine = pl.materialize(PLIANT_TWIN, twin.from_list(dna.to_list()))
        assert got.sym_jsonify() == _plain(mine)
        assert ps.encode(got) == dna


def test_every_pg_dna_of_a_finite_hyper_value_converts():
    hyper = pg.Dict(
        a=pg.oneof([1, pg.Dict(b=pg.oneof(["x", "y"]), n=pg.manyof(2, [1, 2, 3], sorted=True))]),
        c=pg.manyof(2, [pg.Dict(q=pg.oneof([1, 2])), 3], distinct=False),
    )
    ps = pyglove_space(hyper)
    seen = set()
    for i, pg_dna in enumerate(ps.spec.iter_dna()):
        dna = from_pg_dna(ps.space, pg_dna)
        seen.add(dna)
        assert to_pg_dna(ps.space, dna) == pg_dna
        if i % 10 == 0:  # PyGlove's materialize is slow
            assert pg.eq(ps.materialize(dna), pg.materialize(hyper, pg_dna))
    assert len(seen) == ps.space.size == ps.spec.space_size
    assert seen == set(iterate_dna(ps.space))


def test_names_inside_manyof_candidates_get_the_position():
    hyper = pg.manyof(2, [pg.Dict(q=pg.oneof([1, 2], name="q")), 3], name="m")
    space = pyglove_space(hyper).space
    assert [(s.id, s.name) for s in space.slots] == [
        ("<root>[0]", "m[0]"),
        ("<root>[1]", "m[1]"),
        ("[0].candidates[0].q", "q[0]"),
        ("[1].candidates[0].q", "q[1]"),
    ]


# ---------------------------------------------------------- PyGlove algorithms on pliant spaces


@pytest.mark.parametrize(
    "make",
    [
        lambda: pg.geno.Random(seed=1),
        lambda: pg.evolution.regularized_evolution(population_size=6, tournament_size=3, seed=1),
    ],
    ids=["random", "regularized_evolution"],
)
def test_pyglove_generators_propose_valid_pliant_dnas(make):
    value = {
        "op": pl.oneof([{"k": pl.intv(1, 4)}, {"rate": pl.floatv(1e-3, 1.0, scale="log")}, "id"]),
        "skips": pl.manyof(2, ["a", "b", "c"], sorted=True),
        "width": pl.oneof([16, 32]),
    }
    space = pl.space(value)
    algo = make()
    algo.setup(to_dna_spec(space))
    for step in range(25):
        pg_dna = algo.propose()
        dna = space.validate(from_pg_dna(space, pg_dna))
        out = pl.materialize(value, dna)
        assert out["width"] in (16, 32)
        assert to_pg_dna(space, dna) == pg_dna
        algo.feedback(pg_dna, float(step % 7))


# ----------------------------------------------------------------------------- errors


def test_import_pliant_does_not_import_pyglove():
    code = "import sys, pliant, pliant.spaces.pyglove; assert 'pyglove' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_several_parents_raise():
    space = Space(
        [Slot("a", "choice", 2), Slot("b", "choice", 2), Slot("c", "int", 2, lo=0, hi=1,
         conditions=((0, 0), (1, 1)))]
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"slot 'c' is conditioned on several parent slots"):
        to_dna_spec(space)
    with pytest.raises(ValueError, match="several parent slots"):
        to_pg_dna(space, space.from_list([0, 0, 1]))


def test_manyof_positions_with_different_sub_spaces_raise():
    space = Space(
        [
            Slot("m[0]", "choice", 2, group=0),
            Slot("m[1]", "choice", 2, group=0),
            Slot("m[0].x", "choice", 2, conditions=((0, 1),)),
        ],
        groups=[Group((0, 1), True, False)],
    )
    with pytest.raises(ValueError, match=r"manyof 'm\[0\]'.*different conditional sub-spaces"):
        to_dna_spec(space)


def test_huge_int_slot_raises():
    with pytest.raises(ValueError, match=r"slot 'n'.*at most 4096"):
        to_dna_spec(Space([Slot("n", "int", 10_000, lo=1, hi=10_000)]))


def test_pyglove_rejections_are_value_errors():
    space = Space(
        [
            Slot("a", "choice", 2),
            Slot("b", "choice", 2, conditions=((0, 0),), name="a[=1/2].d"),
            Slot("d", "choice", 2, conditions=((0, 1),)),
        ]
    )
    with pytest.raises(ValueError, match="PyGlove rejected the DNASpec"):
        to_dna_spec(space)


def test_unsupported_pyglove_specs_raise():
    custom = pg.geno.Space([pg.geno.CustomDecisionPoint(hyper_type="x", location="c")])
    with pytest.raises(ValueError, match="'c' is a CustomDecisionPoint"):
        from_dna_spec(custom)
    with pytest.raises(ValueError, match="scale 'rlog'"):
        from_dna_spec(pg.dna_spec(pg.floatv(0.1, 1.0, scale="rlog")))
    with pytest.raises(ValueError, match="CustomDecisionPoint"):
        pyglove_space(pg.Dict(x=pg.evolve(pg.Dict(a=1), lambda x: x)))
    with pytest.raises(TypeError, match="expected a PyGlove DNASpec"):
        from_dna_spec({"a": 1})
    with pytest.raises(TypeError, match="expected a pliant Space"):
        to_dna_spec(pg.dna_spec(HYPER))


def test_colliding_ids_raise():
    spec = pg.geno.Space(
        [
            pg.geno.oneof([pg.geno.constant(), pg.geno.constant()], location="x"),
            pg.geno.floatv(0.0, 1.0, location="x"),
        ]
    )
    with pytest.raises(ValueError, match="same slot id 'x'"):
        from_dna_spec(spec)
    inner = pg.geno.oneof([pg.geno.constant()] * 2, location="b")
    spec = pg.geno.Space(
        [
            pg.geno.oneof([pg.geno.space([inner]), pg.geno.constant()], location="a"),
            pg.geno.floatv(0.0, 1.0, location="z", name="a.candidates[0].b"),
        ]
    )
    with pytest.raises(ValueError, match=r"does not read as a valid space.*decision key"):
        from_dna_spec(spec)


def test_stale_hints_raise():
    space = Space([Slot("a", "choice", 2), Slot("n", "int", 2, lo=0, hi=1, conditions=((0, 1),))])
    spec = to_dna_spec(space)
    bad = spec.clone(deep=True)
    bad.rebind({"hints.pliant.version": 2})
    with pytest.raises(ValueError, match=r"must be written by to_dna_spec \(version 1\)"):
        from_dna_spec(bad)
    bad = spec.clone(deep=True)
    bad.rebind({"hints.pliant.order": ["n", "zzz"]})
    with pytest.raises(ValueError, match=r"hints of this DNASpec do not match.*order"):
        from_dna_spec(bad)
    bad = spec.clone(deep=True)
    bad.rebind({"elements[0].candidates[1].elements[0].literal_values": ["p", "q"]})
    with pytest.raises(ValueError, match="no int range"):
        from_dna_spec(bad)
    bad = spec.clone(deep=True)
    bad.rebind({"elements[0].num_choices": 2})
    with pytest.raises(ValueError, match="hints of this DNASpec do not match"):
        from_dna_spec(bad)
    space = Space([Slot("n", "int", 2, lo=0, hi=1), Slot("x", "float", 0, hi=1.0)])
    bad = to_dna_spec(space)
    bad.rebind({"hints.pliant.order": ["x", "n"]})
    with pytest.raises(ValueError, match="was the spec edited"):
        from_dna_spec(bad)
    bad = to_dna_spec(space)
    bad.rebind({"hints.pliant.slots": [[0, {"kind": "int"}], [1, {"id": "n"}]]})
    with pytest.raises(ValueError, match=r"copies of 'n' differ"):
        from_dna_spec(bad)
    bad = to_dna_spec(space)
    bad.rebind({"hints.pliant.conditions": [["x", [["nope", 0]]]]})
    with pytest.raises(ValueError, match=r"conditions of 'x'"):
        from_dna_spec(bad)
    bad = to_dna_spec(space)
    bad.rebind({"hints.pliant.groups": ["n"]})
    with pytest.raises(ValueError, match="the group order lists other slots"):
        from_dna_spec(bad)


def test_dna_errors():
    space = pl.space({"a": pl.oneof([1, 2, 3]), "x": pl.floatv(0.0, 1.0)})
    other = pl.space({"a": pl.oneof([1, 2])})
    with pytest.raises(ValueError, match="different space"):
        to_pg_dna(space, other.from_list([1]))
    with pytest.raises(TypeError, match="expected a pliant DNA"):
        to_pg_dna(space, [1, 0.5])
    with pytest.raises(TypeError, match="expected a single DNA"):
        to_pg_dna(space, random_dna(space, 0, n=2))
    with pytest.raises(ValueError, match="does not fit the given spec"):
        to_pg_dna(space, space.from_list([2, 0.5]), spec=to_dna_spec(other))
    with pytest.raises(ValueError, match="not a DNA of this space's DNASpec"):
        from_pg_dna(space, pg.DNA(1))
    with pytest.raises(ValueError, match="not a DNA of this space's DNASpec"):
        from_pg_dna(space, pg.DNA([1, 2.0]))
    with pytest.raises(ValueError, match=r"index -1 is out of range"):
        from_pg_dna(space, pg.DNA([-1, 0.5]))
    with pytest.raises(TypeError, match=r"expected a pg\.DNA"):
        from_pg_dna(space, space.from_list([0, 0.5]))
