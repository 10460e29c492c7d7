"""``pl.sample``: the PyGlove-style loop, its feedback object and its guard rails."""

from __future__ import annotations

import math

import pytest

import pliant as pl
from pliant.flows.sample import Feedback
from pliant.flows.study import StudyEngine

SPACE = {"w": pl.oneof([16, 32, 64]), "lr": pl.floatv(0.01, 0.1)}


@pl.symbolize
def net(width, depth):
    return ("net", width, depth)


def test_yields_examples_and_records_feedback():
    seen = []
    for example, feedback in pl.sample(SPACE, pl.algorithms.random(), 4, seed=1):
        assert isinstance(feedback, Feedback) and feedback.status is None
        assert example["w"] == feedback.decisions["w"]
        assert feedback.dna.to_dict() == feedback.decisions
        seen.append(feedback.id)
        assert feedback(example["w"] * example["lr"]) == "complete"
        assert feedback.status == "complete" and "complete" in repr(feedback)
    assert seen == [0, 1, 2, 3]


def test_examples_are_symbolic_values_to_build():
    space = net(width=pl.oneof([8, 16]), depth=pl.intv(1, 3))
    for example, feedback in pl.sample(space, pl.algorithms.random(), 3):
        built = example.build()
        assert built == ("net", example.args["width"], example.args["depth"])
        feedback(float(built[1] * built[2]))


def test_same_seed_same_examples():
    def run(seed):
        out = []
        for example, feedback in pl.sample(SPACE, pl.algorithms.random(), 5, seed=seed):
            out.append(dict(example))
            feedback(1.0)
        return out

    assert run(3) == run(3) and run(3) != run(4)


def test_forgotten_feedback_raises_instead_of_repeating_the_trial():
    it = pl.sample(SPACE, pl.algorithms.random(), 10)
    next(it)
    with pytest.raises(RuntimeError, match=r"trial\(s\) \[0\] still wait for feedback"):
        next(it)


def test_max_pending_allows_several_examples_in_flight():
    it = pl.sample(SPACE, pl.algorithms.random(), 10, max_pending=2)
    (_, f0), (_, f1) = next(it), next(it)
    with pytest.raises(RuntimeError, match=r"\[0, 1\] still wait.*max_pending=N"):
        next(it)
    it = pl.sample(SPACE, pl.algorithms.random(), 10, max_pending=2)
    (_, f0), (_, f1) = next(it), next(it)
    f1(1.0)  # out of order is fine
    _, f2 = next(it)
    f0(2.0)
    f2(3.0)
    _, f3 = next(it)
    assert f3.id == 3


def test_feedback_is_given_once():
    for _, feedback in pl.sample(SPACE, pl.algorithms.random(), 1):
        feedback(1.0)
        with pytest.raises(RuntimeError, match=r"trial 0 already has its outcome \(complete\)"):
            feedback(2.0)
        with pytest.raises(RuntimeError, match="feedback is given once"):
            feedback.skip()
        with pytest.raises(RuntimeError, match="already has its outcome"):
            feedback.fail("late")


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {}), ((1.0,), {"metrics": {"reward": 1.0}})],
    ids=["neither", "both"],
)
def test_feedback_takes_a_reward_or_metrics(args, kwargs):
    for _, feedback in pl.sample(SPACE, pl.algorithms.random(), 1):
        with pytest.raises(TypeError, match=r"takes a reward or metrics=\.\.\., exactly one"):
            feedback(*args, **kwargs)
        assert feedback.status is None  # still waiting: it can be given now
        feedback(metrics={"reward": 1.0, "loss": 0.3})


def test_skip_fail_and_bad_rewards_are_recorded_but_not_fed_back():
    fed = []
    base = pl.algorithms.random()
    algo = base._replace(feedback=lambda s, d, r: fed.append(r) or base.feedback(s, d, r))
    engine = None
    outcomes = [
        lambda f: f.skip("too big"),
        lambda f: f.fail(ValueError("diverged")),
        lambda f: f.fail("plain text"),
        lambda f: f(math.nan),
        lambda f: f(math.inf),
        lambda f: f(metrics={"acc": 1.0}),  # the objective 'reward' is missing
        lambda f: f("high"),
        lambda f: f(0.5),
    ]
    statuses = []
    for (_, feedback), outcome in zip(pl.sample(SPACE, algo, len(outcomes)), outcomes):
        engine = feedback._engine
        result = outcome(feedback)
        statuses.append(feedback.status)
        if result is not None:
            assert result == feedback.status
    assert statuses == ["infeasible", *["failed"] * 6, "complete"]
    assert fed == [0.5]
    errors = [r.error for r in engine.records()]
    assert errors[0] == "too big"
    assert errors[1] == "ValueError: diverged" and errors[2] == "plain text"
    assert "metric 'reward' is nan" in errors[3] and "is inf" in errors[4]
    assert "needs 'reward'" in errors[5] and "is not a number: 'high'" in errors[6]


def test_end_loop_stops_after_the_current_trial():
    ids = []
    for _, feedback in pl.sample(SPACE, pl.algorithms.random()):  # no end by itself
        ids.append(feedback.id)
        feedback(1.0)
        if feedback.id == 4:
            feedback.end_loop()
    assert ids == [0, 1, 2, 3, 4]


def test_zero_examples():
    assert list(pl.sample(SPACE, pl.algorithms.random(), 0)) == []


def test_metrics_and_objectives():
    outs = []
    gen = pl.sample(SPACE, pl.algorithms.random(), 3, objectives={"loss": "min"})
    for example, feedback in gen:
        outs.append(feedback(metrics={"loss": example["lr"], "acc": 0.9}))
        engine = feedback._engine
    assert outs == ["complete"] * 3
    records = engine.records()
    assert all(r.reward == -r.metrics["loss"] for r in records)  # minimized: negated
    assert records[0].metrics["acc"] == 0.9


def test_tuple_reward_for_several_objectives():
    nsga2 = _nsga2()
    gen = pl.sample(SPACE, nsga2(population_size=4), 6, objectives={"acc": "max", "lat": "min"})
    for example, feedback in gen:
        assert feedback((example["lr"], example["w"])) == "complete"
        record = feedback._engine.record(feedback.id)
        assert record.reward == (example["lr"], -example["w"])
        assert record.metrics == {"acc": example["lr"], "lat": example["w"]}
    for _, feedback in pl.sample(SPACE, nsga2(population_size=4), 1, objectives=["a", "b"]):
        with pytest.raises(ValueError, match=r"got 3 reward values .* for 2 objective\(s\)"):
            feedback((1.0, 2.0, 3.0))
        feedback((1.0, 2.0))


def test_forgotten_feedback_on_the_last_example_raises_too():
    with pytest.raises(RuntimeError, match=r"trial\(s\) \[1\] still wait for feedback"):
        for _, feedback in pl.sample(SPACE, pl.algorithms.random(), 2):
            if feedback.id == 0:
                feedback(1.0)


def _nsga2():
    nsga2 = getattr(pl.algorithms, "nsga2", None)
    if not callable(nsga2):
        pytest.skip("pl.algorithms.nsga2 is not available in this build")
    return nsga2


def test_traced_space_examples_are_replays():
    def config(h):
        opt = h.oneof("opt", ["adam", "sgd"])
        momentum = h.floatv("momentum", 0.0, 0.9) if opt == "sgd" else 0.0
        return opt, momentum

    traced = pl.trace(config)
    for example, feedback in pl.sample(traced, pl.algorithms.random(), 6, seed=2):
        opt, momentum = example()
        assert opt == feedback.decisions["opt"]
        assert (opt == "adam") == ("momentum" not in feedback.decisions)
        feedback(momentum)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_examples": -1}, ValueError, "num_examples must be a non-negative int or None"),
        ({"num_examples": 2.0}, ValueError, "got 2.0"),
        ({"num_examples": 1, "max_pending": 0}, ValueError, "max_pending must be a positive int"),
        ({"num_examples": 1, "max_pending": True}, ValueError, "max_pending"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        pl.sample(SPACE, pl.algorithms.random(), **kwargs)


def test_bad_algorithm_and_objectives():
    with pytest.raises(TypeError, match=r"algorithm must be a pl.algorithms.Algorithm"):
        pl.sample(SPACE, "evolution", 3)
    with pytest.raises(ValueError, match=r"2 objectives \['a', 'b'\] need a multi-objective"):
        pl.sample(SPACE, pl.algorithms.regularized_evolution(), 3, objectives=["a", "b"])


def test_store_records_every_step(tmp_path):
    path = str(tmp_path / "s.db")
    gen = pl.sample(SPACE, pl.algorithms.random(), 3, store=path, study="mine")
    for i, (example, feedback) in enumerate(gen):
        records = pl.load_result(path, "mine").records
        assert [r.status for r in records] == ["complete"] * i + ["running"]
        feedback(example["lr"])
    records = pl.load_result(path, "mine").records
    assert [r.status for r in records] == ["complete"] * 3


def test_engine_refuses_a_second_outcome():
    engine = StudyEngine(SPACE, pl.algorithms.random())
    trial = engine.propose()
    engine.complete(trial, {"reward": 1.0})
    with pytest.raises(ValueError, match="trial 0 is not waiting for an outcome"):
        engine.complete(trial, {"reward": 1.0})
    with pytest.raises(ValueError, match="not waiting"):
        engine.complete(7, {"reward": 1.0})
