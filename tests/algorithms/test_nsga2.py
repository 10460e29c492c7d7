"""Tests for nsga2(): valid proposals, determinism, resume, sorting/crowding, and search quality."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pliant as pl
from pliant.algorithms.base import keys, state_from_json, state_to_json, uniform_proposal
from pliant.algorithms.nsga import (
    NSGA2State,
    crowding_distance,
    non_dominated_sort,
    nsga2,
    pareto_front,
    uniform_crossover,
)
from pliant.spaces.dna import DNA, Group, Slot, Space
from pliant.spaces.sampling import random_dna
from pliant.testing.strategies import spaces

SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))


def flat_space() -> Space:
    return Space([Slot(f"s{i}", "choice", 4) for i in range(5)])


def conditional_space() -> Space:
    # Conditional children are choice/int slots: mutate_one re-draws them correctly (see below).
    return Space(
        [
            Slot("op", "choice", 3),
            Slot("width", "int", 8, lo=1, hi=8, conditions=((0, 0), (0, 2))),
            Slot("kernel", "choice", 3, conditions=((1, 2),)),
            Slot("act", "choice", 2, conditions=((0, 1),)),
        ]
    )


def manyof_space() -> Space:
    slots = [Slot(f"m[{j}]", "choice", 5, group=0) for j in range(3)]
    slots += [Slot(f"p[{j}]", "choice", 4, group=1) for j in range(3)]
    slots += [Slot(f"q[{j}]", "choice", 4, group=2) for j in range(2)]
    groups = [
        Group((0, 1, 2), distinct=True, sorted=True),
        Group((3, 4, 5), distinct=False, sorted=True),
        Group((6, 7), distinct=True, sorted=False),
    ]
    return Space(slots, groups)


def mixed_space() -> Space:
    slots = [
        Slot("op", "choice", 3),
        Slot("width", "int", 8, lo=1, hi=8, conditions=((0, 0), (0, 2))),
        Slot("lr", "float", 0, lo=1e-4, hi=0.1, scale="log"),
        Slot("units", "int", 1024, lo=1, hi=1024, scale="log"),
        Slot("drop", "float", 0, lo=0.0, hi=0.5),
    ]
    slots += [Slot(f"m[{j}]", "choice", 5, group=0) for j in range(2)]
    return Space(slots, [Group((5, 6), distinct=True, sorted=False)])


SPACES = {
    "flat": flat_space,
    "conditional": conditional_space,
    "manyof": manyof_space,
    "mixed": mixed_space,
}


def vector_reward(dna: DNA) -> tuple[float, float]:
    index = np.asarray(dna.index)
    return float(np.sin(index).sum() + np.asarray(dna.value).sum()), float(-index.sum())


def run(
    algo: pl.algorithms.Algorithm, space: Space, seed: int, steps: int, reward=vector_reward
) -> tuple[list[DNA], Any]:
    state = algo.init(space, seed)
    dnas = []
    for key in itertools.islice(keys(seed), steps):
        dna, state = algo.propose(state, key)
        state = algo.feedback(state, dna, reward(dna))
        dnas.append(dna)
    return dnas, state


# ----------------------------------------------------------------------------- validity


@pytest.mark.parametrize("name", SPACES)
def test_every_proposal_is_valid(name: str) -> None:
    space = SPACES[name]()
    dnas, state = run(nsga2(population_size=8), space, 0, 120)
    space.validate(space.stack(dnas))
    assert len(state.ranks) == 8 and state.num_proposed == state.num_feedback == 120


def keep(space: Space, dna: DNA, rng: np.random.Generator) -> DNA:
    return dna


@SETTINGS
@given(spaces(max_slots=6), st.integers(0, 2**32))
def test_crossover_and_selection_keep_any_space_valid(space: Space, seed: int) -> None:
    # No mutation: proposals are crossovers of evaluated DNAs, on every kind of space.
    dnas, _ = run(nsga2(population_size=4, mutation=keep, crossover_rate=1.0), space, seed, 30)
    space.validate(space.stack(dnas))


@SETTINGS
@given(spaces(max_slots=8), st.integers(0, 2**32))
def test_uniform_crossover_takes_each_active_decision_from_a_parent(
    space: Space, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    a, b = random_dna(space, rng), random_dna(space, rng)
    child = space.validate(uniform_crossover(space, a, b, rng))
    for i in np.flatnonzero(child.active):
        from_parent = [
            p.active[i] and p.index[i] == child.index[i] and p.value[i] == child.value[i]
            for p in (a, b)
        ]
        if a.active[i] or b.active[i]:  # else: drawn at random (both parents have it inactive)
            assert any(from_parent), (i, a, b, child)


def test_uniform_crossover_takes_whole_groups() -> None:
    space = manyof_space()
    rng = np.random.default_rng(0)
    for _ in range(50):
        a, b = random_dna(space, rng), random_dna(space, rng)
        child = uniform_crossover(space, a, b, rng)
        for g in space.groups:
            picks = child.index[list(g.slots)].tolist()
            assert picks in (a.index[list(g.slots)].tolist(), b.index[list(g.slots)].tolist())


def test_default_mutation_keeps_conditional_floats_and_manyofs_valid() -> None:
    space = Space(
        [
            Slot("a", "choice", 2),
            Slot("x", "float", 0, lo=1.0, hi=2.0, conditions=((0, 1),)),
            Slot("g[0]", "choice", 3, conditions=((0, 1),), group=0),
            Slot("g[1]", "choice", 3, conditions=((0, 1),), group=0),
        ],
        [Group((2, 3), distinct=True, sorted=False)],
    )
    dnas, _ = run(nsga2(population_size=4), space, 0, 60)
    space.validate(space.stack(dnas))


# ----------------------------------------------------------------------------- determinism, resume


def test_same_seed_same_proposals_other_seed_differs() -> None:
    space = mixed_space()
    algo = nsga2(population_size=6)
    a, _ = run(algo, space, 3, 40)
    b, _ = run(algo, space, 3, 40)
    c, _ = run(algo, space, 4, 40)
    assert a == b and a != c


@pytest.mark.parametrize("name", SPACES)
def test_json_resume_reproduces_the_next_proposals(name: str) -> None:
    space = SPACES[name]()
    algo = nsga2(population_size=6)
    _, state = run(algo, space, 1, 25)
    restored = state_from_json(state_to_json(state), algo.init(space, 0))
    assert isinstance(restored, NSGA2State)
    for field in NSGA2State._fields:
        a, b = getattr(state, field), getattr(restored, field)
        assert np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b
    for key in range(100, 110):
        dna, state = algo.propose(state, key)
        again, restored = algo.propose(restored, key)
        assert dna == again
        state = algo.feedback(state, dna, vector_reward(dna))
        restored = algo.feedback(restored, again, vector_reward(again))


def test_fresh_state_round_trips() -> None:
    space = flat_space()
    algo = nsga2()
    fresh = algo.init(space, 0)
    assert state_to_json(state_from_json(state_to_json(fresh), fresh)) == state_to_json(fresh)


# ----------------------------------------------------------------------------- feedback


def test_first_population_size_proposals_are_random_even_without_feedback() -> None:
    space = flat_space()
    algo = nsga2(population_size=5)
    state = algo.init(space, 0)
    proposed = []
    for key in range(12):  # nothing fed back yet: proposals stay random
        dna, state = algo.propose(state, key)
        proposed.append(dna)
    assert state.num_proposed == 12 and len(state.ranks) == 0
    assert proposed == [uniform_proposal(space, k) for k in range(12)]
    for dna in reversed(proposed):  # asynchronous: rewards arrive in any order
        state = algo.feedback(state, dna, vector_reward(dna))
    assert state.num_feedback == 12 and len(state.ranks) == 5


def test_population_is_bounded_and_keeps_the_front_while_it_fits() -> None:
    space = flat_space()
    algo = nsga2(population_size=20)
    state = algo.init(space, 0)
    rng = np.random.default_rng(0)
    seen: list[tuple[float, float]] = []
    for key in range(200):
        dna, state = algo.propose(state, key)
        reward = tuple(rng.random(2).tolist())
        state = algo.feedback(state, dna, reward)
        seen.append(reward)
        front = np.asarray(seen)[pareto_front(seen)]
        assert len(state.ranks) == min(len(seen), 20)
        assert len(front) <= 20  # random points: the front stays small
        kept = {tuple(r) for r in state.rewards[state.ranks == 0].tolist()}
        assert {tuple(r) for r in front.tolist()} == kept
    assert np.array_equal(state.ranks, non_dominated_sort(state.rewards))


def test_scalar_rewards_are_one_objective_and_elitist() -> None:
    space = flat_space()
    algo = nsga2(population_size=5)
    state = algo.init(space, 0)
    rewards = []
    for key in range(40):
        dna, state = algo.propose(state, key)
        rewards.append(float(key % 13))
        state = algo.feedback(state, dna, rewards[-1])
    assert state.rewards.shape == (5, 1)
    assert sorted(state.rewards[:, 0].tolist()) == sorted(rewards)[-5:]


def test_inconsistent_objective_counts_are_an_error() -> None:
    space = flat_space()
    algo = nsga2()
    state = algo.init(space, 0)
    dna, state = algo.propose(state, 0)
    state = algo.feedback(state, dna, (1.0, 2.0))
    with pytest.raises(ValueError, match=r"has 3 objectives but earlier rewards had 2"):
        algo.feedback(state, dna, (1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match=r"has 1 objectives but earlier rewards had 2"):
        algo.feedback(state, dna, 1.0)


def test_feedback_rejects_other_spaces_batches_and_nan() -> None:
    space = flat_space()
    algo = nsga2()
    state = algo.init(space, 0)
    other = Space([Slot("z", "choice", 2)])
    with pytest.raises(ValueError, match=r"DNA of another space"):
        algo.feedback(state, random_dna(other, 0), (1.0,))
    with pytest.raises(ValueError, match=r"takes one DNA, got a batch"):
        algo.feedback(state, random_dna(space, 0, n=2), (1.0,))
    with pytest.raises(ValueError, match=r"reward must be finite"):
        algo.feedback(state, random_dna(space, 0), (1.0, float("nan")))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"population_size": 0}, ValueError, r"population_size must be a positive int"),
        ({"population_size": 2.0}, ValueError, r"population_size must be a positive int"),
        ({"crossover_rate": 1.5}, ValueError, r"crossover_rate must be a probability"),
        ({"crossover_rate": True}, ValueError, r"crossover_rate must be a probability"),
        ({"mutation": 3}, TypeError, r"mutation must be a function"),
    ],
)
def test_invalid_arguments(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        nsga2(**kwargs)


# ----------------------------------------------------------------------------- sorting, crowding


def test_non_dominated_sort_hand_computed() -> None:
    points = [[1, 3], [2, 2], [3, 1], [2, 1], [1, 1], [0, 0], [2, 2]]
    assert non_dominated_sort(points).tolist() == [0, 0, 0, 1, 2, 3, 0]
    assert pareto_front(points).tolist() == [0, 1, 2, 6]


def test_crowding_distance_hand_computed() -> None:
    # Objective 0 sorted: 1, 2, 2.5, 3 (range 2); objective 1 sorted: 1, 1.5, 2, 3 (range 2).
    d = crowding_distance([[1, 3], [2, 2], [3, 1], [2.5, 1.5]])
    assert d.tolist() == [np.inf, (2.5 - 1) / 2 + (3 - 1.5) / 2, np.inf, (3 - 2) / 2 + (2 - 1) / 2]
    assert crowding_distance([[1, 1], [2, 0]]).tolist() == [np.inf, np.inf]
    assert crowding_distance([[1, 5], [1, 6], [1, 7]]).tolist() == [np.inf, 1.0, np.inf]


def test_empty_inputs() -> None:
    assert pareto_front([]).tolist() == []
    assert non_dominated_sort(np.zeros((0, 2))).tolist() == []
    assert crowding_distance(np.zeros((0, 3))).tolist() == []


@pytest.mark.parametrize("fn", [pareto_front, non_dominated_sort, crowding_distance])
@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ([[1, 2], [3]], r"must be an \[N, M\] array"),
        ([1.0, 2.0], r"for scalar rewards pass \[\[r\] for r in rewards\]"),
        ([["a", "b"]], r"must be an \[N, M\] array"),
        (np.zeros((3, 0)), r"M >= 1"),
        ([[1.0, np.inf]], r"must be finite"),
    ],
)
def test_malformed_points(fn, bad: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fn(bad)


def dominates(p: tuple, q: tuple) -> bool:
    return all(a >= b for a, b in zip(p, q)) and any(a > b for a, b in zip(p, q))


def reference_ranks(points: list[tuple]) -> list[int]:
    ranks, left, k = [-1] * len(points), set(range(len(points))), 0
    while left:
        front = {i for i in left if not any(dominates(points[j], points[i]) for j in left)}
        for i in front:
            ranks[i] = k
        left -= front
        k += 1
    return ranks


def reference_crowding(points: list[tuple]) -> list[float]:
    n = len(points)
    out = [0.0] * n
    for m in range(len(points[0]) if points else 0):
        order = sorted(range(n), key=lambda i: points[i][m])  # stable, as documented
        lo, hi = points[order[0]][m], points[order[-1]][m]
        out[order[0]] = out[order[-1]] = float("inf")
        for pos in range(1, n - 1):
            if hi > lo:
                gap = points[order[pos + 1]][m] - points[order[pos - 1]][m]
                out[order[pos]] += gap / (hi - lo)
    return out


POINTS = st.integers(1, 3).flatmap(
    lambda m: st.lists(st.tuples(*[st.integers(0, 4)] * m), min_size=1, max_size=25)
)


@settings(max_examples=60, deadline=None)
@given(POINTS)
def test_sorting_and_front_match_brute_force(points: list[tuple]) -> None:
    ranks = non_dominated_sort(points)
    assert ranks.tolist() == reference_ranks(points)
    assert pareto_front(points).tolist() == [i for i, r in enumerate(ranks) if r == 0]


@settings(max_examples=60, deadline=None)
@given(POINTS)
def test_crowding_matches_brute_force(points: list[tuple]) -> None:
    np.testing.assert_allclose(crowding_distance(points), reference_crowding(points))


# ----------------------------------------------------------------------------- search quality


def hypervolume(points: np.ndarray) -> float:
    """Area dominated by 2-D points (maximized) above the reference point (0, 0)."""
    front = points[pareto_front(points)]
    area, top = 0.0, 0.0
    for x, y in sorted(front.tolist(), key=lambda p: -p[0]):
        if y > top:
            area, top = area + x * (y - top), y
    return area


def test_nsga2_beats_random_search_on_hypervolume() -> None:
    # 10 slots of 5 choices; maximize #slots == 3 and #slots == 0: the front is k + (10 - k).
    space = Space([Slot(f"s{i}", "choice", 5) for i in range(10)])

    def reward(dna: DNA) -> tuple[float, float]:
        return float((dna.index == 3).sum()), float((dna.index == 0).sum())

    def score(algo: pl.algorithms.Algorithm, seed: int) -> float:
        dnas, _ = run(algo, space, seed, 200, reward)
        return hypervolume(np.asarray([reward(d) for d in dnas]))

    best = hypervolume(np.asarray([(k, 10 - k) for k in range(11)], float))
    ours = np.mean([score(nsga2(population_size=16), s) for s in range(3)])
    theirs = np.mean([score(pl.algorithms.random(), s) for s in range(3)])
    assert ours > theirs + 0.2 * best, (ours, theirs, best)
