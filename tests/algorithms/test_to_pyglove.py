"""pliant algorithms as PyGlove DNAGenerators: ``pg.sample`` round trips, PyGlove's own DNASpec
validation of every proposal, and ``recover`` replaying a history into the same next proposal."""

from __future__ import annotations

import pyglove as pg
import pytest

import pliant as pl
from pliant.spaces.pyglove import from_dna_spec

A = pl.algorithms


def _space():
    return pg.Dict(
        op=pg.oneof(
            [
                pg.Dict(kind="conv", k=pg.oneof([3, 5, 7]), ch=pg.manyof(2, [8, 16, 32, 64])),
                pg.Dict(kind="pool", r=pg.floatv(0.1, 1.0)),
                "skip",
            ]
        ),
        lr=pg.floatv(1e-4, 1e-1, scale="log"),
        tags=pg.manyof(2, ["a", "b", "c", "d"], distinct=True, sorted=True),
        depth=pg.oneof([1, 2, 3, 4]),
    )


def _reward(value) -> float:
    op = value.op
    score = {"skip": 0.0}.get(op, 0.0) if isinstance(op, str) else 0.0
    if not isinstance(op, str) and op.kind == "conv":
        score = op.k / 7 + sum(op.ch) / 128
    elif not isinstance(op, str):
        score = 1.5 * op.r
    return score + value.depth / 4 - abs(value.lr - 0.01) * 10 + ("d" in value.tags)


# REINFORCE compiles its update for the space, and TabNAS also estimates P(feasible) per step:
# their longer runs are marked slow.
SLOW = pytest.mark.slow
ALGORITHMS = {
    "random": A.random,
    "evolution": lambda: A.regularized_evolution(population_size=8, tournament_size=3),
    "reinforce": A.reinforce,
    "neural_predictor": lambda: A.neural_predictor(
        num_initial=6, refit_every=4, pool_size=64, ensemble=3, hidden=(32,)
    ),
    "rejection_sampling": lambda: A.rejection_sampling(
        A.reinforce(), lambda dna: dna.index[..., 0] != 2
    ),
}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=SLOW) if n == "rejection_sampling" else n for n in ALGORITHMS]
)
def test_pg_sample_drives_each_algorithm_with_valid_dnas(name):
    space = _space()
    spec = pg.dna_spec(space)  # PyGlove's own, not the generator's
    gen = A.to_pyglove(ALGORITHMS[name](), seed=3)
    rewards = []
    for value, feedback in pg.sample(space, gen, num_examples=16):
        spec.validate(feedback.dna)
        assert pg.eq(pg.materialize(space, feedback.dna), value)
        rewards.append(_reward(value))
        feedback(rewards[-1])
    assert len(rewards) == 16 == gen.num_proposals == gen.num_feedbacks
    assert gen.space == from_dna_spec(spec)
    assert len({str(r) for r in rewards}) > 1  # it explores


def _sequential(gen, spec, n, pending=0):
    gen.setup(spec)
    history = []
    for _ in range(n):
        dna = gen.propose()
        reward = _reward(pg.materialize(_space(), dna))
        gen.feedback(dna, reward)
        history.append((dna, reward))
    for _ in range(pending):
        history.append((gen.propose(), None))
    return history


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=SLOW) if n in ("reinforce", "rejection_sampling") else n
        for n in ALGORITHMS
    ],
)
def test_recover_replays_a_history_into_the_same_next_proposal(name):
    spec = pg.dna_spec(_space())
    original = A.to_pyglove(ALGORITHMS[name](), seed=11)
    history = _sequential(original, spec, 10, pending=1)
    recovered = A.to_pyglove(ALGORITHMS[name](), seed=11)
    recovered.setup(pg.dna_spec(_space()))
    # PyGlove hands recover DNAs without their spec (e.g. loaded from storage).
    recovered.recover([(pg.DNA.parse(dna.to_numbers(flatten=False)), r) for dna, r in history])
    assert recovered.num_proposals == original.num_proposals == 11
    assert recovered.num_feedbacks == original.num_feedbacks == 10
    for _ in range(3):
        a, b = original.propose(), recovered.propose()
        assert a == b
        original.feedback(a, 0.5)
        recovered.feedback(b, 0.5)
    other = A.to_pyglove(ALGORITHMS[name](), seed=12)
    other.setup(spec)
    other.recover(history)
    if name != "reinforce":  # a converged policy may repeat itself under another seed
        assert [other.propose() for _ in range(3)] != [recovered.propose() for _ in range(3)]


def test_multi_objective_algorithms_make_multi_objective_generators():
    gen = A.to_pyglove(A.nsga2(population_size=6), seed=0)
    assert gen.multi_objective
    space = pg.Dict(x=pg.floatv(0.0, 1.0), k=pg.oneof([0, 1, 2]))
    seen = []
    for value, feedback in pg.sample(space, gen, num_examples=12, metrics_to_optimize=["a", "b"]):
        seen.append(value)
        feedback(metrics={"a": value.x, "b": value.k - value.x})
    assert len(seen) == 12 and gen.num_feedbacks == 12
    assert not A.to_pyglove(A.regularized_evolution()).multi_objective
    single = A.to_pyglove(A.regularized_evolution(), seed=0)
    single.setup(pg.dna_spec(space))
    with pytest.raises(ValueError, match="multiple objectives"):
        single.feedback(single.propose(), (1.0, 2.0))


def test_bad_inputs_are_clear_errors():
    with pytest.raises(TypeError, match="pliant Algorithm"):
        A.to_pyglove(pg.evolution.regularized_evolution())
    gen = A.to_pyglove(A.random())
    assert gen.seed != A.to_pyglove(A.random()).seed  # None draws a seed, as PyGlove does
    with pytest.raises(ValueError, match="setup"):
        gen.propose()
    gen.setup(pg.dna_spec(pg.Dict(x=pg.oneof([1, 2]))))
    with pytest.raises(ValueError, match="not a DNA of this space"):
        gen.feedback(pg.DNA(7), 1.0)
    with pytest.raises(ValueError, match="finite"):
        gen.feedback(gen.propose(), float("nan"))
