"""Early stopping: policies, reports in pl.search and pl.sample, skip, and ending a search."""

from __future__ import annotations

import threading
import time

import pytest

import pliant as pl
from pliant.flows import stopping as st
from pliant.flows.store import open_store


def _report(value, step=2, previous=1, others=(), maximize=True):
    return st.Report(7, step, previous, value, maximize, lambda gate: list(others))


# -- policies ------------------------------------------------------------------------------
def test_stop_below_fires_at_the_first_report_past_a_gate_only():
    policy = pl.flows.stop_below({3: 0.5})
    assert policy.decide(_report(0.1, step=2, previous=1)) is None  # gate not reached
    assert "gate 0.5 at step 3" in policy.decide(_report(0.4, step=4, previous=2))
    assert policy.decide(_report(0.6, step=4, previous=2)) is None
    assert policy.decide(_report(0.1, step=5, previous=4)) is None  # gate passed before


def test_stop_below_follows_the_direction():
    policy = pl.flows.stop_below({1: 2.0})
    assert policy.decide(_report(3.0, step=1, previous=0, maximize=False)) is not None
    assert policy.decide(_report(1.0, step=1, previous=0, maximize=False)) is None


def test_stop_by_rank_needs_its_history_and_keeps_the_best_fraction_or_count():
    frac = pl.flows.stop_by_rank({2: 0.5}, min_history=3)
    assert frac.decide(_report(0.0, others=[0.5, 0.6])) is None  # too little history
    # With this trial, 4 values at the gate: the best ceil(0.5 * 4) = 2 go on.
    assert "rank 3 of 4" in frac.decide(_report(0.55, others=[0.5, 0.6, 0.7]))
    assert "rank 4 of 4" in frac.decide(_report(0.45, others=[0.5, 0.6, 0.7]))
    assert frac.decide(_report(0.65, others=[0.5, 0.6, 0.7])) is None
    top1 = pl.flows.stop_by_rank({2: 1}, min_history=1)
    assert top1.decide(_report(0.65, others=[0.7])) is not None
    assert top1.decide(_report(0.75, others=[0.7])) is None


def test_median_stopping_compares_with_the_median_after_warmup():
    policy = pl.flows.median_stopping(min_history=3, warmup=2)
    others = [0.2, 0.4, 0.6, 0.8]  # median 0.5
    assert policy.decide(_report(0.45, step=2, others=others)) is not None
    assert policy.decide(_report(0.55, step=2, others=others)) is None
    assert policy.decide(_report(0.1, step=1, previous=0, others=others)) is None  # warmup
    assert policy.decide(_report(0.1, step=3, others=others[:2])) is None  # history
    low_is_good = policy.decide(_report(0.45, step=2, others=others, maximize=False))
    assert low_is_good is None


def test_successive_halving_keeps_the_best_third_at_each_rung():
    policy = pl.flows.successive_halving(1, eta=3, max_step=9)
    assert policy.name == "successive_halving(rungs=[1, 3, 9], eta=3)"
    assert policy.decide(_report(0.0, step=1, previous=0)) is None  # alone: the best goes on
    others = [0.1, 0.2, 0.3, 0.4, 0.5]  # with this one, 6 trials: keep 2
    assert policy.decide(_report(0.45, step=3, previous=2, others=others)) is None
    assert policy.decide(_report(0.35, step=3, previous=2, others=others)) is not None
    assert policy.decide(_report(0.0, step=2, previous=1, others=others)) is None  # no rung


def test_combinators():
    low = pl.flows.stop_below({1: 0.5})
    median = pl.flows.median_stopping(min_history=1)
    r = _report(0.4, step=1, previous=0, others=[0.3])  # below the gate, above the median
    assert pl.flows.any_of(low, median).decide(r) is not None
    assert pl.flows.all_of(low, median).decide(r) is None
    both = _report(0.2, step=1, previous=0, others=[0.3])
    assert " and " in pl.flows.all_of(low, median).decide(both)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: pl.flows.stop_below({}), "non-empty"),
        (lambda: pl.flows.stop_below({-1: 0.5}), "non-negative ints"),
        (lambda: pl.flows.stop_below({1: float("nan")}), "must be a number"),
        (lambda: pl.flows.stop_by_rank({1: 1.5}), "fraction in"),
        (lambda: pl.flows.stop_by_rank({1: 0.5}, min_history=-1), "min_history"),
        (lambda: pl.flows.median_stopping(min_history=0), "min_history"),
        (lambda: pl.flows.median_stopping(warmup=-2), "warmup"),
        (lambda: pl.flows.successive_halving(0), "min_step"),
        (lambda: pl.flows.successive_halving(1, eta=1), "eta"),
        (lambda: pl.flows.any_of(), "at least one"),
    ],
)
def test_bad_policy_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_combinators_and_search_reject_non_policies():
    with pytest.raises(TypeError, match="stopping policies"):
        pl.flows.all_of(pl.flows.median_stopping(), "median")
    with pytest.raises(TypeError, match="stopping must be"):
        pl.search({"x": pl.oneof([1])}, lambda v: 1.0, pl.algorithms.random(), 1, stopping=3)


# -- in pl.search --------------------------------------------------------------------------
SPACE = {"q": pl.oneof([1, 2, 3, 4, 5, 6])}


def curve(v, trial, steps=6):
    """A learning curve that saturates at q: trials with small q are the bad ones."""
    for step in range(steps):
        trial.report(step, v["q"] * (step + 1) / steps)
    return float(v["q"])


def test_search_stops_trials_records_reports_and_feeds_the_last_value(tmp_path):
    path = str(tmp_path / "s.db")
    policy = pl.flows.median_stopping(min_history=3, warmup=1)
    result = pl.search(SPACE, curve, pl.algorithms.random(), 24, store=path, stopping=policy)
    stopped = [r for r in result.records if r.status == "stopped"]
    complete = result.completed
    assert stopped and complete and len(stopped) + len(complete) == 24
    for r in stopped:
        steps = [s for s, _ in r.metrics["reports"]]
        assert steps == list(range(len(steps))) and len(steps) < 6
        assert r.reward == r.metrics["reports"][-1][1]  # fed its last reported value
        assert "median" in r.error
    for r in complete:
        assert [s for s, _ in r.metrics["reports"]] == list(range(6))
    # The median rule stops the weak: every stopped trial is below the best complete one.
    assert max(r.decisions["q"] for r in stopped) < max(r.decisions["q"] for r in complete)
    assert result.best.status == "complete"
    assert {r.status for r in pl.load_result(path).records} == {"complete", "stopped"}


def test_stopped_trials_feed_evolution_and_history_survives_resume(tmp_path):
    path = str(tmp_path / "s.db")
    algo = pl.algorithms.regularized_evolution(population_size=4, tournament_size=2)
    policy = pl.flows.stop_below({2: 1.0})  # q * 3/6 < 1 <=> q < 2
    first = pl.search(SPACE, curve, algo, 10, store=path, stopping=policy, seed=2)
    state = open_store(path, readonly=True).study_info("default")["state"]
    restored = pl.algorithms.state_from_json(state, algo.init(pl.space(SPACE), 0))
    fed = sum(r.status in ("complete", "stopped") for r in first.records)
    assert restored.num_feedback == fed == 10
    # A resumed study's stopper starts from the reports on record.
    engine = pl.flows.StudyEngine(SPACE, algo, store=path, seed=2)
    stopper = st.Stopper(engine, policy)
    assert sorted(stopper.reports) == list(range(10))
    assert stopper.reports_of(0) == first.records[0].metrics["reports"]


def test_minimized_objective_stops_high_values():
    def evaluate(v, trial):
        trial.report(1, v["q"])
        return {"loss": float(v["q"])}

    result = pl.search(
        SPACE,
        evaluate,
        pl.algorithms.random(),
        12,
        objectives={"loss": "min"},
        stopping=pl.flows.stop_below({1: 3.5}),
    )
    for r in result.records:
        assert r.status == ("stopped" if r.decisions["q"] > 3.5 else "complete")
        if r.status == "stopped":
            assert r.reward == -r.decisions["q"]  # rewards are maximized: 'min' negated


def test_current_trial_reaches_the_handle_from_a_one_argument_evaluate():
    ids = []

    def evaluate(v):
        trial = pl.flows.current_trial()
        ids.append(trial.id)
        trial.report(0, 0.0)
        return 1.0

    result = pl.search(SPACE, evaluate, pl.algorithms.random(), 3)
    assert ids == [0, 1, 2]
    assert all(r.metrics["reports"] == [[0, 0.0]] for r in result.records)
    with pytest.raises(RuntimeError, match="only available inside an evaluate"):
        pl.flows.current_trial()


def test_bad_reports_fail_the_trial_with_the_reason():
    def evaluate(v, trial):
        trial.report(2, 1.0)
        trial.report(2 if v["q"] % 2 else 3, float("nan") if v["q"] > 3 else 1.0)
        return 1.0

    result = pl.search(SPACE, evaluate, pl.algorithms.grid(), 6)
    errors = {r.decisions["q"]: r.error for r in result.records}
    assert "steps must increase" in errors[1] and "steps must increase" in errors[3]
    assert "must be finite" in errors[4] and "must be finite" in errors[6]
    assert result.records[1].status == "complete"  # q=2: steps 2, 3, value 1.0


def test_skip_is_infeasible_and_never_fed(tmp_path):
    path = str(tmp_path / "s.db")
    algo = pl.algorithms.regularized_evolution(population_size=3, tournament_size=2)

    def evaluate(v, trial):
        if v["q"] < 4:
            trial.skip(f"q={v['q']} too small")
        return float(v["q"])

    result = pl.search(SPACE, evaluate, algo, 12, seed=1, store=path)
    skipped = [r for r in result.records if r.status == "infeasible"]
    assert skipped and all(r.decisions["q"] < 4 and "too small" in r.error for r in skipped)
    assert all(r.reward is None for r in skipped)
    assert result.completed and len(result.completed) + len(skipped) == 12
    # The algorithm's saved state counted only the complete trials.
    state = open_store(path, readonly=True).study_info("default")["state"]
    restored = pl.algorithms.state_from_json(state, algo.init(pl.space(SPACE), 0))
    assert restored.num_feedback == len(result.completed)


@pytest.mark.parametrize("how", ["raise", "method"])
def test_ending_the_search_from_one_worker_stops_all(how):
    started = []
    lock = threading.Lock()

    def evaluate(v, trial):
        with lock:
            started.append(trial.id)
        if trial.id == 3:
            if how == "raise":
                raise pl.flows.StopSearch("target reached")
            trial.end_search()
            return 100.0
        for step in range(20):
            time.sleep(0.01)
            trial.report(step, 1.0)
        return 1.0

    result = pl.search(SPACE, evaluate, pl.algorithms.random(), 50, workers=2)
    assert len(result.records) < 10 and max(started) < 10  # no trial proposed after the end
    by_id = {r.id: r for r in result.records}
    if how == "raise":
        assert by_id[3].status == "infeasible" and "StopSearch: target reached" in by_id[3].error
    else:
        assert by_id[3].status == "complete" and by_id[3].reward == 100.0
    # The trial running in the other worker ends at its next report, not fed to the algorithm.
    ended = [r for r in result.records if r.error == "the search was ended"]
    assert all(r.status == "stopped" and r.reward is None for r in ended)
    assert {r.status for r in result.records} <= {"complete", "stopped", "infeasible"}


# -- in pl.sample --------------------------------------------------------------------------
def test_sample_report_stops_and_records(tmp_path):
    path = str(tmp_path / "s.db")
    policy = pl.flows.stop_below({1: 2.0})
    loop = pl.sample(SPACE, pl.algorithms.grid(), 6, store=path, stopping=policy)
    outcomes = {}
    for example, feedback in loop:
        value = 0.0
        for step in range(3):
            value = example["q"] * step
            if feedback.report(step, value):
                break
        else:
            feedback(value)
        outcomes[example["q"]] = feedback.status
    assert outcomes == {
        1: "stopped",
        2: "complete",
        3: "complete",
        4: "complete",
        5: "complete",
        6: "complete",
    }
    records = pl.load_result(path).records
    assert records[0].metrics["reports"] == [[0, 0.0], [1, 1.0]] and records[0].reward == 1.0
    assert records[1].metrics["reports"] == [[0, 0.0], [1, 2.0], [2, 4.0]]


def test_sample_feedback_after_a_stop_raises():
    loop = pl.sample(SPACE, pl.algorithms.grid(), 2, stopping=pl.flows.stop_below({0: 10.0}))
    _, feedback = next(loop)
    assert feedback.report(0, 1.0) is True
    with pytest.raises(RuntimeError, match="already has its outcome"):
        feedback(1.0)


def test_the_handle_goes_only_to_a_second_parameter_meant_for_it():
    got = {}

    def own_default(v, epochs=3):
        got["own"] = epochs
        return 1.0

    def named(v, trial=None):
        got["named"] = trial.id
        return 1.0

    def required(v, handle):
        got["required"] = handle.study
        return 1.0

    for fn in (own_default, named, required):
        assert pl.search(SPACE, fn, pl.algorithms.random(), 1).records[0].status == "complete"
    assert got == {"own": 3, "named": 0, "required": "default"}


def test_report_and_record_errors(tmp_path):
    engine = pl.flows.StudyEngine(SPACE, pl.algorithms.random(), store=str(tmp_path / "s.db"))
    stopper = st.Stopper(engine, None)
    with pytest.raises(ValueError, match="step must be a non-negative int"):
        stopper.report(0, -1, 1.0)
    with pytest.raises(ValueError, match="step must be a non-negative int"):
        stopper.report(0, "3", 1.0)
    with pytest.raises(ValueError, match="value must be a number"):
        stopper.report(0, 1, "high")
    trial = engine.propose()
    assert engine.stop(trial, 0.5, {"reports": [[0, 0.5]]}, "why") == "stopped"
    with pytest.raises(ValueError, match="not waiting for an outcome"):
        engine.stop(trial, 0.5, {}, "again")
    with pytest.raises(KeyError, match="no trial 9"):
        engine.store.set_link("default", 9, "default/9")
    loop = pl.sample(SPACE, pl.algorithms.random(), 2, stopping=pl.flows.stop_below({0: 10.0}))
    _, feedback = next(loop)
    feedback(1.0)
    with pytest.raises(RuntimeError, match="already has its outcome"):
        feedback.report(0, 1.0)
    in_memory = pl.search(
        SPACE,
        lambda v, trial: trial.search(SPACE, lambda u: 1.0, budget=1).best.reward,
        pl.algorithms.random(),
        1,
    )
    assert in_memory.records[0].link == "default/0"
    with pytest.raises(ValueError, match="has no store"):
        in_memory.inner(0)
