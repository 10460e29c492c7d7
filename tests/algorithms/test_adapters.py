"""PyGlove generators and Optuna samplers driving pliant spaces."""

from __future__ import annotations

import pytest

import pliant as pl
from pliant.algorithms.base import state_from_json, state_to_json

pg = pytest.importorskip("pyglove")
optuna = pytest.importorskip("optuna")
A = pl.algorithms

SPACE_VALUE = {
    "a": pl.oneof([1, 2, 3]),
    "b": pl.oneof([{"x": pl.floatv(0.1, 1.0, scale="log")}, "none"]),
    "i": pl.intv(1, 5),
    "m": pl.manyof(2, ["p", "q", "r"]),
}


def reward(dna):
    return float(dna.index.sum()) + float(dna.value.sum())


def run(algo, space, steps, state=None, start=0):
    state = algo.init(space, 0) if state is None else state
    out = []
    for step in range(start, start + steps):
        dna, state = algo.propose(state, A.step_key(0, step))
        space.validate(dna)
        state = algo.feedback(state, dna, reward(dna))
        out.append(dna)
    return out, state


ADAPTERS = {
    "optuna_tpe": lambda: A.from_optuna(),
    "optuna_random": lambda: A.from_optuna(lambda seed: optuna.samplers.RandomSampler(seed)),
    "pyglove_evolution": lambda: A.from_pyglove(
        pg.evolution.regularized_evolution(population_size=4, tournament_size=2)
    ),
    "pyglove_random": lambda: A.from_pyglove(lambda: pg.geno.Random(seed=1)),
}


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_proposals_validate_and_resume_exactly(name):
    space = pl.space(SPACE_VALUE)
    algo = ADAPTERS[name]()
    full, _ = run(algo, space, 10)
    first, state = run(algo, space, 6)
    assert first == full[:6]  # same keys, same proposals
    restored = state_from_json(state_to_json(state), algo.init(space, 0))
    rest, _ = run(ADAPTERS[name](), space, 4, state=restored, start=6)
    assert rest == full[6:]


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_feedback_of_dna_it_did_not_propose(name):
    space = pl.space(SPACE_VALUE)
    algo = ADAPTERS[name]()
    state = algo.init(space, 0)
    for seed in range(3):
        state = algo.feedback(state, pl.random_dna(space, seed), 1.0 + seed)
    dna, _ = algo.propose(state, 5)
    space.validate(dna)
    assert len(state.history) == 3


def test_optuna_tpe_learns_a_toy_problem():
    space = pl.space([pl.oneof(range(6)) for _ in range(3)])
    algo = A.from_optuna()
    dnas, _ = run(algo, space, 40)
    late = [reward(d) for d in dnas[-10:]]
    early = [reward(d) for d in dnas[:10]]
    assert sum(late) > sum(early)


def test_adapter_errors():
    space = pl.space(SPACE_VALUE)
    with pytest.raises(TypeError, match=r"takes a pg\.DNAGenerator"):
        A.from_pyglove(3)
    with pytest.raises(TypeError, match="takes an optuna sampler"):
        A.from_optuna(3)
    for algo in (A.from_optuna(), A.from_pyglove(lambda: pg.geno.Random(seed=1))):
        state = algo.init(space, 0)
        dna, state = algo.propose(state, 1)
        with pytest.raises(ValueError, match="reward must be finite"):
            algo.feedback(state, dna, float("inf"))
        other = pl.space({"z": pl.oneof([1, 2])})
        with pytest.raises(ValueError, match="DNA of another space"):
            algo.feedback(state, pl.random_dna(other, 0), 1.0)
    with pytest.raises(TypeError, match="optimizes one objective"):
        A.from_optuna().feedback(A.from_optuna().init(space, 0), pl.random_dna(space, 0), (1, 2))
    huge = pl.space(pl.manyof(6, list(range(30))))
    with pytest.raises(ValueError, match="more than Optuna can hold"):
        A.from_optuna().init(huge, 0)


def test_optuna_proposals_depend_on_the_seed():
    space = pl.space([pl.oneof(range(10)) for _ in range(4)])
    algo = A.from_optuna()
    runs = []
    for seed in (0, 1):
        state = algo.init(space, seed)
        dnas = []
        for step in range(3):
            dna, state = algo.propose(state, A.step_key(seed, step))
            state = algo.feedback(state, dna, 1.0)
            dnas.append(dna.to_list())
        runs.append(dnas)
    assert runs[0] != runs[1]
