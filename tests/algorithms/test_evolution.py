"""Regularized evolution and its mutation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pliant as pl
from pliant.algorithms import evolution
from pliant.spaces.dna import Group, Slot, Space
from pliant.testing.strategies import spaces

A = pl.algorithms


@settings(max_examples=80, deadline=None)
@given(spaces(multi_parent=True), st.integers(0, 2**32 - 1))
def test_mutation_keeps_dna_valid_and_changes_one_active_decision(space, seed):
    rng = np.random.default_rng([seed, 1])  # a stream unrelated to the parent's draw
    parent = pl.random_dna(space, seed)
    child = evolution.mutate_one(space, parent, rng)
    space.validate(child)
    # Slots with a single value, and sorted distinct picks of every candidate, cannot move.
    mutable = np.asarray(parent.active) & evolution._structure(space).mutable
    if not mutable.any():
        assert child == parent
        return
    changed = (child.index != parent.index) | (child.value != parent.value)
    assert changed.any(), "a mutation must change the DNA"


def test_mutation_of_distinct_manyof_with_every_candidate_taken_swaps():
    space = Space(
        [Slot("m[0]", "choice", 2, group=0), Slot("m[1]", "choice", 2, group=0)],
        [Group((0, 1), distinct=True, sorted=False)],
    )
    parent = space.from_list([0, 1])
    child = evolution.mutate_one(space, parent, np.random.default_rng(0))
    assert child.to_list() == [1, 0]


def test_mutation_redraws_the_branch_under_a_changed_choice():
    value = pl.oneof([[pl.oneof(range(50))], [pl.oneof(range(50)), "b"]])
    space = pl.space(value)
    parent = space.from_list([0, 7, None])
    children = [evolution.mutate_one(space, parent, np.random.default_rng(s)) for s in range(20)]
    for child in children:
        space.validate(child)
        assert child.to_list()[0] in (0, 1)
    moved = [c for c in children if c.to_list()[0] == 1]
    assert moved and len({c.to_list()[2] for c in moved}) > 1


def test_first_population_is_random_then_tournament_parents_are_mutated():
    space = pl.space([pl.oneof(range(10)) for _ in range(6)])
    algo = A.regularized_evolution(population_size=5, tournament_size=5)
    state = algo.init(space, 0)
    for _, key in zip(range(5), A.keys(0)):
        dna, state = algo.propose(state, key)
        state = algo.feedback(state, dna, float(dna.index[0]))
    best = state.indices[int(np.argmax(state.rewards))]
    child, _ = algo.propose(state, 123)
    # The full tournament picks the best member; its child differs in exactly one decision.
    assert int((child.index != best).sum()) == 1


def test_population_ages_out_the_oldest():
    space = pl.space([pl.oneof(range(4))])
    algo = A.regularized_evolution(population_size=3, tournament_size=1)
    state = algo.init(space, 0)
    for i in range(5):
        state = algo.feedback(state, space.from_list([i % 4]), float(i))
    assert state.size == 3 and sorted(state.rewards.tolist()) == [2.0, 3.0, 4.0]
    assert state.num_feedback == 5


def test_feedback_does_not_change_the_input_state():
    space = pl.space([pl.oneof(range(4))])
    algo = A.regularized_evolution(population_size=3, tournament_size=1)
    state = algo.init(space, 0)
    new = algo.feedback(state, space.from_list([2]), 1.0)
    assert state.size == 0 and new.size == 1 and state.rewards[0] == -np.inf


def test_custom_mutation_is_used():
    space = pl.space([pl.oneof(range(4))])
    calls = []

    def always_three(sp, dna, rng):
        calls.append(dna)
        return sp.from_list([3])

    algo = A.regularized_evolution(population_size=1, tournament_size=1, mutation=always_three)
    state = algo.feedback(algo.init(space, 0), space.from_list([0]), 0.0)
    dna, _ = algo.propose(state, 0)
    assert dna.to_list() == [3] and len(calls) == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"population_size": 0}, ValueError, "population_size must be a positive int"),
        ({"tournament_size": 0}, ValueError, "tournament_size must be an int in"),
        ({"population_size": 3, "tournament_size": 4}, ValueError, "population_size=3"),
        ({"mutation": 3}, TypeError, "mutation must be a function"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        A.regularized_evolution(**kwargs)


def test_bad_feedback():
    space = pl.space([pl.oneof(range(4))])
    other = pl.space([pl.oneof(range(5))])
    algo = A.regularized_evolution(population_size=2, tournament_size=1)
    state = algo.init(space, 0)
    with pytest.raises(ValueError, match="reward must be finite"):
        algo.feedback(state, space.from_list([1]), float("nan"))
    with pytest.raises(TypeError, match="optimizes one objective"):
        algo.feedback(state, space.from_list([1]), (1.0, 2.0))
    with pytest.raises(ValueError, match="DNA of another space"):
        algo.feedback(state, other.from_list([1]), 1.0)
    with pytest.raises(ValueError, match="feedback takes one DNA"):
        algo.feedback(state, pl.random_dna(space, 0, 2), 1.0)
