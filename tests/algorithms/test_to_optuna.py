"""pliant algorithms as Optuna samplers: Optuna's own third-party sampler suite, then ours.

The classes below subclass ``optuna.testing.pytest_samplers`` unmodified (only the ``sampler``
fixture is ours). Random search is multi-objective in pliant, so it runs
``MultiObjectiveSamplerTestCase``; the single-objective algorithms run
``SingleOnlySamplerTestCase``; NSGA-II runs too, as the multi-objective algorithm. REINFORCE
compiles its update per search space, which the suite changes in almost every test: its run is
the slowest here (about 2 minutes on 2 idle cores) and stays in the default run all the same.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.testing.pytest_samplers import (
    BasicSamplerTestCase,
    MultiObjectiveSamplerTestCase,
    RelativeSamplerTestCase,
    SingleOnlySamplerTestCase,
)
from optuna.trial import TrialState

import pliant as pl
from pliant.algorithms.exports import optuna_codec

optuna.logging.set_verbosity(optuna.logging.WARNING)
A = pl.algorithms


def _evolution() -> A.Algorithm:
    return A.regularized_evolution(population_size=8, tournament_size=3)


def _predictor() -> A.Algorithm:
    return A.neural_predictor(num_initial=6, refit_every=4, pool_size=64, ensemble=3, hidden=(32,))


# ---------------------------------------------------------------------------------------------
# Optuna's suite, unmodified


class TestRandomOptunaSuite(
    BasicSamplerTestCase, RelativeSamplerTestCase, MultiObjectiveSamplerTestCase
):
    @pytest.fixture
    def sampler(self):
        return lambda: A.to_optuna(A.random(), seed=0)


class TestEvolutionOptunaSuite(
    BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase
):
    @pytest.fixture
    def sampler(self):
        return lambda: A.to_optuna(_evolution(), seed=0)


class TestNSGA2OptunaSuite(
    BasicSamplerTestCase, RelativeSamplerTestCase, MultiObjectiveSamplerTestCase
):
    @pytest.fixture
    def sampler(self):
        return lambda: A.to_optuna(A.nsga2(population_size=8), seed=0)


class TestReinforceOptunaSuite(
    BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase
):
    @pytest.fixture
    def sampler(self):
        return lambda: A.to_optuna(A.reinforce(), seed=0)


class TestPredictorOptunaSuite(
    BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase
):
    @pytest.fixture
    def sampler(self):
        return lambda: A.to_optuna(_predictor(), seed=0)


# ---------------------------------------------------------------------------------------------
# Our own checks: the codec, what reaches the algorithm, seeds, resume, parallel workers

with warnings.catch_warnings():  # Optuna warns about the adjusted highs and the tuple choice
    warnings.simplefilter("ignore", UserWarning)
    DISTRIBUTIONS = [
        FloatDistribution(-1.0, 2.0),
        FloatDistribution(1e-7, 1.0, log=True),
        FloatDistribution(-10.2, 10.2, step=0.1),
        FloatDistribution(0.0, 1.0, step=0.3),  # high adjusted to 0.9 by Optuna
        IntDistribution(-10, 10),
        IntDistribution(1, 100, log=True),
        IntDistribution(-10, 7, step=3),
        CategoricalDistribution([None, True, 2, 2.5, "x"]),
        CategoricalDistribution([(1, 2), "y"]),  # a choice pliant keeps by index only
    ]


def _recording(algo: A.Algorithm, log: list) -> A.Algorithm:
    def feedback(state, dna, reward):
        log.append((dna, reward))
        return algo.feedback(state, dna, reward)

    return algo._replace(feedback=feedback)


@pytest.mark.parametrize("dist", DISTRIBUTIONS, ids=repr)
def test_codec_maps_each_distribution_both_ways_without_loss(dist):
    codec = optuna_codec({"p": dist})
    (slot,) = codec.space.slots
    rng = np.random.default_rng(0)
    for _ in range(200):
        dna = pl.spaces.random_dna(codec.space, rng)
        (value,) = codec.to_params(dna).values()
        assert type(value) is not np.float64 and not isinstance(value, np.generic)
        assert dist._contains(dist.to_internal_repr(value)), (dist, value)
        assert codec.to_dna({"p": value}) == dna  # DNA -> value -> the same DNA
    sampler = optuna.samplers.RandomSampler(seed=1)
    study = optuna.create_study(sampler=sampler)
    for _ in range(200):
        value = sampler.sample_independent(study, None, "p", dist)
        again = codec.to_params(codec.to_dna({"p": value}))["p"]
        assert again == value or (isinstance(value, float) and math.isclose(again, value))
    if isinstance(dist, FloatDistribution) and dist.step is None:
        assert (slot.kind, slot.lo, slot.hi) == ("float", dist.low, dist.high)
        assert slot.scale == ("log" if dist.log else "linear")
    elif isinstance(dist, IntDistribution) and dist.step == 1:
        assert (slot.kind, slot.lo, slot.hi) == ("int", dist.low, dist.high)
        assert slot.scale == ("log" if dist.log else "linear")
    elif isinstance(dist, CategoricalDistribution):
        assert slot.kind == "choice" and slot.num_choices == len(dist.choices)
    else:  # stepped: an int slot over the grid index
        assert slot.kind == "int" and slot.lo == 0
        assert codec.to_params(codec.space.from_list([int(slot.hi)]))["p"] == pytest.approx(
            dist.high
        )


def test_codec_skips_single_values_and_rejects_unknown_distributions():
    codec = optuna_codec(
        {
            "b": IntDistribution(3, 3),
            "a": FloatDistribution(0, 1),
            "c": CategoricalDistribution([1]),
        }
    )
    assert [s.id for s in codec.space.slots] == ["a"]
    with pytest.raises(TypeError, match="'q'"):
        optuna_codec({"q": object()})  # type: ignore[dict-item]


def test_codec_rejects_trials_from_other_distributions():
    codec = optuna_codec({"x": IntDistribution(0, 10)})
    assert codec.to_dna({"x": 3}, {"x": IntDistribution(0, 20)}) is None
    assert codec.to_dna({}, {}) is None
    assert codec.to_dna({"x": 3}, {"x": IntDistribution(0, 10)}).to_list() == [3]


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_only_complete_finite_trials_reach_the_algorithm_with_the_direction_sign(direction):
    log: list = []
    study = optuna.create_study(
        direction=direction, sampler=A.to_optuna(_recording(_evolution(), log), seed=3)
    )
    outcomes = {}

    def objective(trial):
        x = trial.suggest_int("x", 0, 20)
        y = trial.suggest_categorical("y", ["a", "b"])
        kind = trial.number % 5
        if kind == 1:
            return float("nan")  # Optuna records a failed trial
        if kind == 2:
            raise optuna.TrialPruned()
        if kind == 3:
            raise RuntimeError("boom")
        value = float(x) + (0.5 if y == "b" else 0.0)
        outcomes[trial.number] = (x, y, value)
        return value

    study.optimize(objective, n_trials=40, catch=(RuntimeError,))
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) == 16
    assert {TrialState.FAIL, TrialState.PRUNED} <= set(states)
    # The last trial's proposal has seen every complete trial before it (in number order).
    sign = -1.0 if direction == "minimize" else 1.0
    expected = [([x, {"a": 0, "b": 1}[y]], sign * v) for n, (x, y, v) in sorted(outcomes.items())]
    seen = [(dna.to_list(), r) for dna, r in log]
    assert seen == expected[: len(seen)] and len(seen) >= len(expected) - 1
    assert all(math.isfinite(r) for _, r in log)


def test_infinite_values_are_recorded_by_optuna_but_not_fed():
    log: list = []
    study = optuna.create_study(sampler=A.to_optuna(_recording(A.random(), log), seed=0))
    study.optimize(lambda t: t.suggest_float("x", 0, 1) + (math.inf if t.number == 1 else 0), 6)
    assert study.trials[1].state == TrialState.COMPLETE
    assert len(log) == 4 and all(np.isfinite(r).all() for _, r in log)


def test_multi_objective_study_needs_a_multi_objective_algorithm():
    log: list = []
    sampler = A.to_optuna(_recording(A.nsga2(population_size=6), log), seed=0)
    study = optuna.create_study(directions=["minimize", "maximize"], sampler=sampler)
    study.optimize(lambda t: (t.suggest_float("x", 0, 1), t.suggest_float("y", 0, 1)), 20)
    assert len(log) == 19  # every trial but the last, which nothing proposed after
    for dna, reward in log:
        x, y = dna.to_list()
        assert reward == (-x, y)
    single = optuna.create_study(
        directions=["minimize", "minimize"], sampler=A.to_optuna(_evolution())
    )
    with pytest.raises(ValueError, match=r"regularized_evolution.*2 objectives.*nsga2"):
        single.optimize(lambda t: (t.suggest_float("x", 0, 1), 1.0), 3)


def _run(seed, n=25, sampler=None, storage=None, name=None):
    study = optuna.create_study(
        sampler=sampler or A.to_optuna(_evolution(), seed=seed),
        storage=storage,
        study_name=name,
        load_if_exists=True,
    )
    study.optimize(
        lambda t: t.suggest_float("x", -3, 3) ** 2 + t.suggest_int("n", 0, 9), n_trials=n
    )
    return [tuple(sorted(t.params.items())) for t in study.trials]


def test_seeds_reproduce_runs_and_reseed_changes_them():
    assert _run(4) == _run(4)
    assert _run(4) != _run(5)
    sampler = A.to_optuna(_evolution(), seed=4)
    sampler.reseed_rng()
    assert _run(4, sampler=sampler) != _run(4)


def test_a_resumed_study_rebuilds_the_state_from_its_trials(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    first = _run(9, n=15, storage=storage, name="s")
    resumed = _run(9, n=10, storage=storage, name="s")  # a new sampler object, same seed
    assert resumed[:15] == first
    assert resumed == _run(9, n=25)  # as if never interrupted


def test_parallel_workers_share_one_state():
    log: list = []
    sampler = A.to_optuna(_recording(_evolution(), log), seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_float("x", 0, 1) + t.suggest_int("k", 0, 3), 30, n_jobs=2)
    assert len(study.trials) == 30
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    trials = Counter((t.params["k"], t.params["x"], -t.value) for t in study.trials)
    fed = Counter((d.to_list()[0], d.to_list()[1], r) for d, r in log)
    assert not fed - trials  # each fed reward is a trial's, and no trial is fed twice
    assert len(log) >= 20


def test_a_changed_relative_space_restarts_the_algorithm_and_independent_params():
    calls: list = []

    class Recorder(optuna.samplers.RandomSampler):
        def sample_independent(self, study, trial, name, dist):
            calls.append(name)
            return super().sample_independent(study, trial, name, dist)

    sampler = A.to_optuna(_evolution(), seed=0, independent_sampler=Recorder(seed=0))
    study = optuna.create_study(sampler=sampler)

    def objective(trial):
        x = trial.suggest_float("x", 0, 1)
        if trial.number >= 5:
            return x + trial.suggest_float("y", 0, 1)
        return x

    study.optimize(objective, n_trials=5)
    assert [s.id for s in sampler.state.space.slots] == ["x"]
    assert calls == ["x"]  # only the first trial: x is relative from then on
    study.optimize(objective, n_trials=3)
    assert calls == ["x", "y", "y", "y"]  # y is new, so independent until every trial has it
    study.optimize(objective, n_trials=1)
    assert calls == ["x", "y", "y", "y", "y"]
    state = sampler.state  # still only x: trials 0..4 lack y, so the intersection is {x}
    assert [s.id for s in state.space.slots] == ["x"]
    fresh = optuna.create_study(sampler=sampler)  # another study: a fresh state
    fresh.optimize(lambda t: t.suggest_int("k", 0, 3) + t.suggest_float("z", 0, 1), 3)
    assert [s.id for s in sampler.state.space.slots] == ["k", "z"]


def test_to_optuna_rejects_non_algorithms():
    with pytest.raises(TypeError, match="pliant Algorithm"):
        A.to_optuna(optuna.samplers.TPESampler())
    with pytest.raises(TypeError, match="independent_sampler"):
        A.to_optuna(A.random(), independent_sampler="random")


def test_the_sampler_searches_better_than_random_on_a_discrete_toy():
    def objective(t):
        return sum((t.suggest_int(f"v{i}", 0, 9) - 7) ** 2 for i in range(4))

    best = {"evolution": [], "random": []}
    for seed in range(5):
        for name, algo in (("evolution", _evolution()), ("random", A.random())):
            study = optuna.create_study(sampler=A.to_optuna(algo, seed=seed))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                study.optimize(objective, n_trials=60)
            best[name].append(study.best_value)
    assert np.median(best["evolution"]) < np.median(best["random"])


def test_a_copied_sampler_rebuilds_its_state_from_the_study():
    import copy

    from pliant.algorithms import exports

    sampler = A.to_optuna(_evolution(), seed=2)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), 12)
    twin = copy.deepcopy(sampler)
    assert isinstance(twin, exports.PliantSampler) and twin.state is None
    trial = optuna.trial.create_trial(state=TrialState.RUNNING)
    trial.number = 12
    search_space = sampler.infer_relative_search_space(study, trial)
    assert twin.sample_relative(study, trial, search_space) == sampler.sample_relative(
        study, trial, search_space
    )
    assert str(sampler) == "PliantSampler(regularized_evolution)"
    with pytest.raises(AttributeError, match="no attribute 'PliantThing'"):
        exports.PliantThing  # noqa: B018


def test_reinforce_learns_inside_optuna():
    # Its full Optuna suite is slow (a compile per space); this keeps it in the default run.
    log: list = []
    sampler = A.to_optuna(_recording(A.reinforce(learning_rate=0.3), log), seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(
        lambda t: (
            float(t.suggest_categorical("op", ["a", "b", "c"]) == "c")
            + float(t.suggest_int("n", 0, 3) == 3)
        ),
        n_trials=60,
    )
    assert len(log) == 59 and A.most_likely(sampler.state).to_dict() == {"n": 3, "op": "c"}
