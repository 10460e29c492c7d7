"""sequence, dedup and partition."""

from __future__ import annotations

import numpy as np
import pytest

import pliant as pl
from pliant.algorithms.base import state_from_json, state_to_json

A = pl.algorithms


def run(algo, space, steps, seed=0, reward=lambda d: float(np.asarray(d.index).sum())):
    state = algo.init(space, seed)
    out = []
    for _, key in zip(range(steps), A.keys(seed)):
        dna, state = algo.propose(state, key)
        state = algo.feedback(state, dna, reward(dna))
        out.append(dna)
    return out, state


def test_sequence_switches_stage_and_broadcasts_feedback():
    space = pl.space([pl.oneof(range(5)) for _ in range(4)])
    algo = A.sequence((A.random(), 6), (A.regularized_evolution(6, 6), None))
    state = algo.init(space, 0)
    for step, key in zip(range(10), A.keys(0)):
        members = [tuple(r) for r in state.states[1].indices.tolist()]
        dna, state = algo.propose(state, key)
        if step >= 6:  # evolution's turn: a child of a member, one decision away
            distances = [sum(a != b for a, b in zip(dna.index.tolist(), m)) for m in members]
            assert min(distances) == 1
        state = algo.feedback(state, dna, float(dna.index.sum()))
    assert state.num_proposed == 10
    evo = state.states[1]
    assert evo.size == 6 and evo.num_feedback == 10  # it saw the random stage's results too
    assert algo.name == "sequence(random, regularized_evolution)"


def test_sequence_resumes_exactly():
    space = pl.space([pl.oneof(range(5)) for _ in range(4)])
    algo = A.sequence((A.random(), 4), (A.regularized_evolution(4, 2), None))
    full, _ = run(algo, space, 12)
    _, state = run(algo, space, 6)
    restored = state_from_json(state_to_json(state), algo.init(space, 0))
    keys = list(zip(range(12), A.keys(0)))[6:]
    for (_, key), expected in zip(keys, full[6:]):
        dna, restored = algo.propose(restored, key)
        restored = algo.feedback(restored, dna, float(dna.index.sum()))
        assert dna == expected


@pytest.mark.parametrize(
    ("stages", "match"),
    [
        ((), "needs at least one"),
        (((A.random(), None), (A.random(), 3)), "only the last stage may run without a count"),
        (((A.random(), 0),), "count must be a positive int"),
        ((A.random(),), r"must be an \(algorithm, count\) pair"),
    ],
)
def test_sequence_errors(stages, match):
    with pytest.raises(ValueError, match=match):
        A.sequence(*stages)


def test_dedup_never_repeats_until_the_space_is_exhausted():
    space = pl.space([pl.oneof(range(3)), pl.oneof(range(4))])
    dnas, state = run(A.dedup(A.random(), max_retries=200), space, 12)
    assert len({tuple(d.index.tolist()) for d in dnas}) == 12
    # Exhausted: it returns a repeat rather than hanging.
    dna, _ = A.dedup(A.random(), max_retries=3).propose(state, 99)
    space.validate(dna)


def test_dedup_counts_fed_back_dnas_as_seen():
    space = pl.space([pl.oneof(range(2))])
    algo = A.dedup(A.random(), max_retries=50)
    state = algo.feedback(algo.init(space, 0), space.from_list([0]), 1.0)
    for key in range(5):
        dna, _ = algo.propose(state, key)
        assert dna.to_list() == [1]


def test_dedup_state_round_trips():
    space = pl.space([pl.oneof(range(3)), pl.floatv(0.0, 1.0)])
    algo = A.dedup(A.regularized_evolution(3, 2))
    _, state = run(algo, space, 7)
    again = state_from_json(state_to_json(state), algo.init(space, 0))
    assert again.seen == state.seen


def test_dedup_errors():
    with pytest.raises(ValueError, match="max_retries must be a positive int"):
        A.dedup(A.random(), max_retries=0)


def test_partition_gives_each_part_its_slots():
    value = {
        "arch": [pl.oneof(range(4)) for _ in range(3)],
        "opt": pl.oneof([{"name": "sgd", "momentum": pl.floatv(0.0, 0.9)}, "adam"]),
    }
    space = pl.space(value)
    algo = A.partition([("arch", A.regularized_evolution(4, 2)), ("opt", A.random())])
    state = algo.init(space, 0)
    assert state.states[0].space.num_slots == 3
    assert [s.id for s in state.states[1].space.slots] == ["opt", "opt.candidates[0].momentum"]
    dnas, state = run(algo, space, 20)
    for dna in dnas:
        space.validate(dna)
    assert state.states[0].num_feedback == 20


def test_partition_drops_conditions_on_other_parts():
    value = pl.oneof([[pl.oneof(range(3))], "none"])
    space = pl.space(value)
    algo = A.partition([(lambda s: s.conditions == (), A.random()), (lambda s: True, A.random())])
    state = algo.init(space, 0)
    assert state.states[1].space.slots[0].conditions == ()
    dnas, _ = run(algo, space, 10)
    for dna in dnas:
        space.validate(dna)


def test_partition_errors():
    space = pl.space({"a": pl.oneof([1, 2]), "b": pl.manyof(2, [1, 2, 3])})
    with pytest.raises(ValueError, match="needs at least one"):
        A.partition([])
    with pytest.raises(ValueError, match=r"part 0 must be \(selector, algorithm\)"):
        A.partition([A.random()])
    with pytest.raises(ValueError, match="no part claims slot 'b\\[0\\]'"):
        A.partition([("a", A.random())]).init(space, 0)
    with pytest.raises(ValueError, match="fall into different parts"):
        A.partition([("b[0]", A.random()), ("", A.random())]).init(space, 0)
    algo = A.partition([("", A.random())])
    other = pl.space({"z": pl.oneof([1, 2])})
    with pytest.raises(ValueError, match="DNA of another space"):
        algo.feedback(algo.init(space, 0), pl.random_dna(other, 0), 1.0)
