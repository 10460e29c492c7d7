"""Tests for grid(): the sweep order, exhaustion, float discretization, resume and fast decoding."""

from __future__ import annotations

import math
import pickle
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pliant.algorithms.base import state_from_json, state_to_json
from pliant.algorithms.grid_search import GridExhausted, GridState, _plan, grid
from pliant.spaces.dna import DNA, Group, Slot, Space
from pliant.spaces.sampling import iterate_dna
from pliant.testing.strategies import finite_spaces, spaces

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))


def sweep(space: Space, float_points: int | None = None, key: int = 0) -> tuple[list[DNA], int]:
    """Every proposal until exhaustion, and GridExhausted.num_proposals."""
    algo = grid(float_points)
    state = algo.init(space, key)
    out: list[DNA] = []
    while True:
        try:
            dna, state = algo.propose(state, key + len(out))
        except GridExhausted as e:
            return out, e.num_proposals
        out.append(dna)


def conditional_space() -> Space:
    return Space(
        [
            Slot("op", "choice", 3, literals=("conv", "pool", "id")),
            Slot("width", "int", 4, lo=1, hi=4, conditions=((0, 0),)),
            Slot("kernel", "choice", 2, conditions=((1, 1), (1, 3))),
            Slot("act", "choice", 2),
        ]
    )


def manyof_space() -> Space:
    slots = [Slot(f"m[{j}]", "choice", 5, group=0) for j in range(3)]
    slots += [Slot(f"p[{j}]", "choice", 4, group=1) for j in range(2)]
    slots += [Slot(f"q[{j}]", "choice", 3, group=2) for j in range(2)]
    groups = [
        Group((0, 1, 2), distinct=True, sorted=True),
        Group((3, 4), distinct=True, sorted=False),
        Group((5, 6), distinct=False, sorted=True),
    ]
    return Space(slots, groups)


def multi_parent_space() -> Space:
    return Space(
        [
            Slot("a", "choice", 3),
            Slot("b", "choice", 2),
            Slot("c", "int", 3, lo=0, hi=2, conditions=((0, 1), (1, 0))),
            Slot("d", "choice", 2, conditions=((2, 2),)),
        ]
    )


@SETTINGS
@given(finite_spaces(max_slots=6, multi_parent=True))
def test_sweep_is_iterate_dna_then_exhausted(space: Space) -> None:
    dnas, n = sweep(space)
    assert dnas == list(iterate_dna(space))
    assert n == len(dnas) == space.size == len(set(dnas))
    space.validate(space.stack(dnas))


@pytest.mark.parametrize(
    "space",
    [conditional_space(), manyof_space(), multi_parent_space()],
    ids=["conditional", "manyof", "multi_parent"],
)
def test_fixed_spaces_sweep_every_dna_once(space: Space) -> None:
    dnas, n = sweep(space)
    assert n == space.size == len(set(dnas)) == len(dnas)
    assert dnas == list(iterate_dna(space))


def test_exhaustion_keeps_raising_and_names_the_count() -> None:
    space = Space([Slot("a", "choice", 3)])
    algo = grid()
    state = GridState(space, 3)
    for _ in range(2):
        with pytest.raises(GridExhausted, match=r"exhausted after 3 proposals") as info:
            algo.propose(state, 0)
        assert info.value.num_proposals == 3
    again = pickle.loads(pickle.dumps(info.value))  # backends ship exceptions across processes
    assert again.num_proposals == 3 and str(again) == str(info.value)


def test_exhaustion_of_the_iteration_fallback() -> None:
    space = multi_parent_space()
    with pytest.raises(GridExhausted, match=rf"after {space.size} proposals"):
        grid().propose(GridState(space, int(space.size) + 5), 0)


def test_empty_space_has_one_dna() -> None:
    dnas, n = sweep(Space([]))
    assert n == 1 and dnas[0].to_list() == []


def test_proposals_ignore_the_key() -> None:
    space = manyof_space()
    a, _ = sweep(space, key=0)
    b, _ = sweep(space, key=12345)
    assert a == b


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(finite_spaces(max_slots=6, multi_parent=True), st.data())
def test_json_resume_continues_exactly(space: Space, data: st.DataObject) -> None:
    full = list(iterate_dna(space))
    p = data.draw(st.integers(0, len(full) - 1))
    algo = grid()
    state = algo.init(space, 0)
    for _ in range(p):
        _, state = algo.propose(state, 0)
    restored = state_from_json(state_to_json(state), algo.init(space, 0))
    assert restored == GridState(space, p)
    got = []
    for _ in range(min(3, len(full) - p)):
        dna, restored = algo.propose(restored, 0)
        got.append(dna)
    assert got == full[p : p + 3]


def test_fallback_iterators_do_not_mix_between_sweeps() -> None:
    # Two sweeps of iteration-decoded spaces, interleaved, and one resumed mid-way.
    a, b = multi_parent_space(), Space([*multi_parent_space().slots, Slot("e", "choice", 2)])
    assert _plan(a, None).tables is None and _plan(b, None).tables is None
    algo = grid()
    sa, sb = algo.init(a, 0), algo.init(b, 0)
    got_a, got_b = [], []
    for _ in range(5):
        dna, sa = algo.propose(sa, 0)
        got_a.append(dna)
        dna, sb = algo.propose(sb, 0)
        got_b.append(dna)
    dna, _ = algo.propose(GridState(a, 2), 0)
    assert got_a == list(iterate_dna(a))[:5] and got_b == list(iterate_dna(b))[:5]
    assert dna == got_a[2]


def test_many_distinct_positions_with_children_fall_back_to_iteration() -> None:
    slots: list[Slot] = []
    for j in range(13):
        slots.append(Slot(f"g[{j}]", "choice", 13, group=0))
        if j == 0:
            slots.append(Slot("g[0].op", "choice", 2, conditions=((0, 5),)))
    space = Space(
        slots, [Group(tuple(i for i, s in enumerate(slots) if s.group == 0), True, False)]
    )
    assert _plan(space, None).tables is None
    first = [d for d, _ in zip(iterate_dna(space), range(4))]
    algo = grid()
    state = algo.init(space, 0)
    for expected in first:
        dna, state = algo.propose(state, 0)
        assert dna == expected
    assert algo.propose(GridState(space, 2), 0)[0] == first[2]


def test_huge_space_resumes_without_iterating() -> None:
    space = Space([Slot(f"s{i}", "choice", 10) for i in range(60)])
    p = 10**59 + 123456789
    start = time.perf_counter()
    dna, state = grid().propose(GridState(space, p), 0)
    assert time.perf_counter() - start < 0.5
    digits = [int(c) for c in str(p).zfill(60)]  # mixed radix 10: the decimal digits
    assert dna.to_list() == digits and state.position == p + 1
    last, _ = grid().propose(GridState(space, 10**60 - 1), 0)
    assert last.to_list() == [9] * 60
    with pytest.raises(GridExhausted, match=r"after 1000000000000000000000000000000000000000"):
        grid().propose(GridState(space, 10**60), 0)


def test_large_conditional_manyof_space_decodes_each_position_directly() -> None:
    slots = [Slot("k", "choice", 3)]
    slots += [Slot(f"g[{j}]", "choice", 40, conditions=((0, 1),), group=0) for j in range(6)]
    slots += [Slot("tail", "int", 1000, lo=0, hi=999)]
    space = Space(slots, [Group(tuple(range(1, 7)), distinct=True, sorted=True)])
    size = int(space.size)
    assert size == 1000 * (2 + math.comb(40, 6))
    algo = grid()
    for p in (0, 999, 1000, size // 2, size - 1001, size - 1):
        dna, _ = algo.propose(GridState(space, p), 0)
        space.validate(dna)
    first_of_k1, _ = algo.propose(GridState(space, 1000), 0)
    assert first_of_k1.to_list() == [1, 0, 1, 2, 3, 4, 5, 0]
    last, _ = algo.propose(GridState(space, size - 1), 0)
    assert last.to_list() == [2, None, None, None, None, None, None, 999]


# ----------------------------------------------------------------------------- float slots


def float_values(space: Space, k: int, slot: int) -> list[float]:
    dnas, _ = sweep(space, float_points=k)
    space.validate(space.stack(dnas))
    return sorted({float(d.value[slot]) for d in dnas if d.active[slot]})


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(spaces(max_slots=4, max_choices=3))
def test_any_space_with_float_points_sweeps_distinct_valid_dnas(space: Space) -> None:
    dnas, n = sweep(space, float_points=2)
    assert n == len(dnas) == len(set(dnas)) == _plan(space, 2).grid_space.size
    space.validate(space.stack(dnas))


def test_linear_float_points_are_even_and_include_both_bounds() -> None:
    space = Space([Slot("a", "choice", 2), Slot("x", "float", 0, lo=-1.0, hi=0.3)])
    values = float_values(space, 5, 1)
    assert values[0] == -1.0 and values[-1] == 0.3 and len(values) == 5
    np.testing.assert_allclose(np.diff(values), 1.3 / 4)
    dnas, n = sweep(space, float_points=5)
    assert n == 10 == len(set(dnas))


def test_log_float_points_are_geometric_and_include_both_bounds() -> None:
    space = Space([Slot("lr", "float", 0, lo=1e-4, hi=1e-1, scale="log")])
    values = float_values(space, 4, 0)
    assert values[0] == 1e-4 and values[-1] == 1e-1 and len(values) == 4
    np.testing.assert_allclose(np.array(values[1:]) / values[:-1], 10.0)


def test_float_points_collapse_when_the_bounds_are_equal() -> None:
    space = Space([Slot("x", "float", 0, lo=2.0, hi=2.0), Slot("a", "choice", 3)])
    assert float_values(space, 7, 0) == [2.0]
    assert sweep(space, float_points=7)[1] == 3


def test_conditional_float_slot_is_swept_only_when_active() -> None:
    space = Space(
        [Slot("a", "choice", 2), Slot("x", "float", 0, lo=0.0, hi=1.0, conditions=((0, 1),))]
    )
    dnas, n = sweep(space, float_points=3)
    assert [d.to_list() for d in dnas] == [[0, None], [1, 0.0], [1, 0.5], [1, 1.0]] and n == 4


def test_float_slot_without_float_points_is_an_error_naming_it() -> None:
    space = Space([Slot("a", "choice", 2), Slot("lr", "float", 0, lo=0.1, hi=1.0)])
    with pytest.raises(ValueError, match=r"slot 'lr' is a float slot.*float_points=k"):
        grid().init(space, 0)


@pytest.mark.parametrize("bad", [0, 1, -3, 2.5, True, "4"])
def test_float_points_must_be_an_int_of_at_least_two(bad: object) -> None:
    with pytest.raises(ValueError, match=r"float_points must be None or an int >= 2"):
        grid(float_points=bad)  # type: ignore[arg-type]


def test_feedback_ignores_rewards_but_checks_them() -> None:
    space = Space([Slot("a", "choice", 2)])
    algo = grid()
    state = algo.init(space, 0)
    dna, state = algo.propose(state, 0)
    assert algo.feedback(state, dna, (1.0, 2.0)) == state
    assert algo.multi_objective and not algo.traceable and algo.name == "grid"
    with pytest.raises(ValueError, match=r"reward must be finite"):
        algo.feedback(state, dna, float("nan"))
