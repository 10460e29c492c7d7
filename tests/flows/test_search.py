"""``pl.search`` and its Result: failures, timeouts, constraints, objectives, workers, plots."""

from __future__ import annotations

import math
import sys
import threading
import time

import pytest

import pliant as pl
from pliant.flows.result import Result
from pliant.flows.study import StudyEngine, parse_constraints, parse_objectives

SPACE = {"w": pl.oneof([1, 2, 3, 4]), "x": pl.floatv(0.0, 1.0)}


def counting(algorithm):
    """The algorithm, and a list of the rewards its feedback received."""
    fed = []
    base = algorithm.feedback
    return algorithm._replace(feedback=lambda s, d, r: fed.append(r) or base(s, d, r)), fed


def test_search_returns_every_trial_and_the_best():
    algo, fed = counting(pl.algorithms.random())
    result = pl.search(SPACE, lambda v: v["w"] + v["x"], algo, budget=12, seed=5)
    assert isinstance(result, Result) and len(result.records) == 12
    assert [r.id for r in result.records] == list(range(12))
    assert {r.status for r in result.records} == {"complete"} and len(fed) == 12
    best = max(result.records, key=lambda r: r.reward)
    assert result.best == best and result.best.reward == pytest.approx(max(fed))
    value = result.best_value()
    assert value["w"] + value["x"] == pytest.approx(best.reward)
    assert repr(result) == "Result(study='default', trials=12, {'complete': 12})"


def test_default_algorithm_is_evolution():
    result = pl.search(SPACE, lambda v: v["w"], budget=3)
    assert len(result.completed) == 3


def _outcome_kind(v):
    """Which way the evaluation below ends, by the example's decisions."""
    if v["x"] < 0.2:
        return "raise"
    if v["x"] > 0.9:
        return "text"
    if v["x"] > 0.8:
        return "none"
    if v["x"] > 0.7:
        return "list"
    return {1: "ok", 2: "nan", 3: "inf", 4: "missing"}[v["w"]]


RETURNS = {
    "ok": 1.0,
    "text": "not a number",
    "none": None,
    "list": {"reward": [1, 2]},
    "nan": math.nan,
    "inf": -math.inf,
    "missing": {"accuracy": 0.5},  # no 'reward'
}


def test_failed_trials_are_recorded_and_the_search_goes_on():
    def evaluate(v):
        kind = _outcome_kind(v)
        if kind == "raise":
            raise RuntimeError(f"diverged at x={v['x']:.2f}")
        return RETURNS[kind]

    algo, fed = counting(pl.algorithms.random())
    result = pl.search(SPACE, evaluate, algo, budget=60, seed=0)
    assert len(result.records) == 60
    errors = {}
    for r in result.records:
        kind = _outcome_kind(r.decisions)
        assert r.status == ("complete" if kind == "ok" else "failed")
        if kind != "ok":
            assert r.reward is None
            errors.setdefault(kind, set()).add(r.error)
    assert set(errors) == set(RETURNS) - {"ok"} | {"raise"}  # every way of failing happened
    assert all(e.startswith("RuntimeError: diverged at x=") for e in errors["raise"])
    assert errors["text"] == {
        "evaluate returned 'not a number'; return a number or a dict of metrics"
    }
    assert errors["none"] == {"evaluate returned None; return a number or a dict of metrics"}
    assert errors["list"] == {"ValueError: metric 'reward' is not a number: [1, 2]"}
    assert errors["nan"] == {"ValueError: metric 'reward' is nan"}
    assert errors["inf"] == {"ValueError: metric 'reward' is -inf"}
    assert errors["missing"] == {
        "KeyError: \"the evaluation returned metrics ['accuracy', 'elapsed_s'] but the "
        "objective needs 'reward'\""
    }
    assert len(fed) == len(result.completed) > 0  # failed trials are never fed back
    df = result.dataframe()
    assert df[df.status == "failed"].reward.isna().all()


def test_failed_metrics_are_kept():
    result = pl.search(SPACE, lambda v: {"reward": math.nan, "loss": 3.0}, budget=2)
    assert [r.status for r in result.records] == ["failed", "failed"]
    assert result.records[0].metrics["loss"] == 3.0
    assert result.best is None


@pytest.mark.parametrize("workers", [1, 2])
def test_timeouts_fail_the_slow_trial_only(workers):
    def evaluate(v):
        if v["w"] == 4:
            time.sleep(1.5)  # the thread cannot be stopped: it finishes in the background
        return v["w"]

    result = pl.search(
        SPACE, evaluate, pl.algorithms.random(), budget=10, seed=1, workers=workers, timeout=0.3
    )
    slow = [r for r in result.records if r.decisions["w"] == 4]
    fast = [r for r in result.records if r.decisions["w"] != 4]
    assert slow and fast
    assert {r.status for r in slow} == {"failed"}
    assert {r.error for r in slow} == {"TimeoutError: the trial took longer than 0.3 s"}
    assert all(0.3 <= r.metrics["elapsed_s"] < 1.5 for r in slow)
    # Trials after a timed-out one run at once in fresh threads: they do not queue behind the
    # abandoned one (and then time out without having run).
    assert {r.status for r in fast} == {"complete"}
    assert all(r.metrics["elapsed_s"] < 0.3 for r in fast)


def test_constraints_make_trials_infeasible_and_are_not_fed_back():
    def evaluate(v):
        return {"reward": v["x"], "params": v["w"] * 10, "latency": v["w"] * v["x"]}

    def fast_enough(metrics):
        return metrics["latency"] < 2.5

    def broken(metrics):
        return metrics["no such metric"] > 0

    algo, fed = counting(pl.algorithms.regularized_evolution(population_size=4, tournament_size=2))
    result = pl.search(
        SPACE,
        evaluate,
        algo,
        budget=40,
        constraints={"params": ("<=", 30)},
        seed=2,
    )
    for r in result.records:
        if r.decisions["w"] == 4:
            assert r.status == "infeasible" and r.error == "violates params <= 30"
            assert r.metrics["params"] == 40 and r.reward is None
        else:
            assert r.status == "complete"
    assert len(fed) == len(result.completed) < 40
    assert result.best.decisions["w"] != 4

    algo, fed = counting(pl.algorithms.random())
    result = pl.search(
        SPACE, evaluate, algo, budget=40, seed=3, constraints=[fast_enough, ("params", (">", 10))]
    )
    for r in result.records:
        ok = r.metrics["latency"] < 2.5 and r.metrics["params"] > 10
        assert r.status == ("complete" if ok else "infeasible")
        if r.metrics["params"] <= 10:
            assert "params > 10" in r.error
        if r.metrics["latency"] >= 2.5:
            assert "fast_enough" in r.error
    assert len(fed) == len(result.completed)

    result = pl.search(SPACE, evaluate, pl.algorithms.random(), budget=2, constraints=broken)
    assert {r.status for r in result.records} == {"infeasible"}
    assert "broken (KeyError: 'no such metric')" in result.records[0].error


def test_constraint_on_a_missing_metric_is_violated():
    result = pl.search(SPACE, lambda v: 1.0, budget=2, constraints={"params": ("<", 5)})
    assert [r.status for r in result.records] == ["infeasible"] * 2


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"params": ("~", 5)}, r"constraint on 'params': expected \(op, bound\)"),
        ({"params": ["<=", 5]}, r"got \['<=', 5\]"),
        ({"params": ("<=",)}, "expected"),
    ],
)
def test_bad_constraints(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_constraints(spec)
    with pytest.raises(ValueError, match=match):
        pl.search(SPACE, lambda v: 1.0, budget=1, constraints=spec)


def test_objectives_parse():
    assert parse_objectives(None) == (("reward", "max"),)
    assert parse_objectives("acc") == (("acc", "max"),)
    assert parse_objectives(["a", "b"]) == (("a", "max"), ("b", "max"))
    assert parse_objectives({"loss": "min"}) == (("loss", "min"),)
    with pytest.raises(ValueError, match="objectives must name at least one metric"):
        parse_objectives([])
    with pytest.raises(ValueError, match=r"objective 'loss': direction must be 'max' or 'min'"):
        parse_objectives({"loss": "minimize"})


def test_reward_of_checks_the_objective_metrics():
    engine = StudyEngine(SPACE, pl.algorithms.random(), objectives={"loss": "min"})
    assert engine.reward_of({"loss": 2, "acc": "text is fine here"}) == -2.0
    with pytest.raises(KeyError, match=r"metrics \['acc'\] but the objective needs 'loss'"):
        engine.reward_of({"acc": 1.0})
    with pytest.raises(ValueError, match="metric 'loss' is not a number: 'low'"):
        engine.reward_of({"loss": "low"})
    with pytest.raises(ValueError, match="metric 'loss' is inf"):
        engine.reward_of({"loss": math.inf})


def test_minimized_objective():
    algo, fed = counting(pl.algorithms.random())
    result = pl.search(
        SPACE, lambda v: {"loss": v["x"] * v["w"]}, algo, budget=15, objectives={"loss": "min"}
    )
    losses = [r.metrics["loss"] for r in result.records]
    assert result.best.metrics["loss"] == min(losses)
    assert fed == [-loss for loss in losses]  # the algorithm maximizes the negated loss
    assert all(r.reward == -r.metrics["loss"] for r in result.records)


def test_maximized_named_metric():
    result = pl.search(SPACE, lambda v: {"acc": v["x"]}, budget=8, objectives="acc")
    assert result.best.metrics["acc"] == max(r.metrics["acc"] for r in result.records)


def test_several_objectives_need_a_multi_objective_algorithm():
    with pytest.raises(ValueError, match="need a multi-objective algorithm such as"):
        pl.search(SPACE, lambda v: {"a": 1, "b": 2}, pl.algorithms.regularized_evolution(),
                  budget=2, objectives=["a", "b"])  # fmt: skip


def _nsga2():
    nsga2 = getattr(pl.algorithms, "nsga2", None)
    if not callable(nsga2):
        pytest.skip("pl.algorithms.nsga2 is not available in this build")
    return nsga2


def _dominates(a, b):
    return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))


def test_multi_objective_search_and_pareto_front(tmp_path):
    nsga2 = _nsga2()

    def evaluate(v):
        return {"acc": v["w"] * v["x"], "latency": v["w"] ** 2 + v["x"]}

    algo, fed = counting(nsga2(population_size=8))
    result = pl.search(
        SPACE,
        evaluate,
        algo,
        budget=40,
        objectives={"acc": "max", "latency": "min"},
        seed=0,
    )
    assert len(fed) == 40 and all(isinstance(r, tuple) and len(r) == 2 for r in fed)
    done = result.completed
    assert all(r.reward == (r.metrics["acc"], -r.metrics["latency"]) for r in done)
    front = result.pareto_front()
    expected = [r for r in done if not any(_dominates(o.reward, r.reward) for o in done)]
    assert front == expected and 1 <= len(front) < len(done)
    fig = result.plot_pareto(path=str(tmp_path / "front.png"))
    assert _is_png(tmp_path / "front.png")
    assert fig.axes[0].get_xlabel() == "acc" and fig.axes[0].get_ylabel() == "latency"
    # The same front from the store.
    path = str(tmp_path / "mo.db")
    pl.search(SPACE, evaluate, nsga2(population_size=8), 10, store=path,
              objectives={"acc": "max", "latency": "min"})  # fmt: skip
    loaded = pl.load_result(path)
    assert loaded.objectives == (("acc", "max"), ("latency", "min"))
    assert all(isinstance(r.reward, tuple) for r in loaded.pareto_front())


def test_pareto_front_of_one_objective_is_the_best():
    result = pl.search(SPACE, lambda v: v["w"], budget=10, seed=1)
    front = result.pareto_front()
    assert {r.reward for r in front} == {result.best.reward}


def _is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_dataframe_columns_and_values():
    def evaluate(v):
        if v["w"] == 4:
            raise ValueError("no")
        return {"reward": v["x"], "w": 100, "params": v["w"] * 3}

    result = pl.search(SPACE, evaluate, pl.algorithms.random(), budget=12, seed=0)
    df = result.dataframe()
    assert list(df.columns) == [
        "id",
        "status",
        "decision:w",  # a metric is also called 'w'
        "x",
        "elapsed_s",
        "params",
        "reward",
        "w",
        "error",
        "attempts",
        "link",
        "duration_s",
    ]
    assert list(df.id) == list(range(12)) and set(df.attempts) == {1}
    for row, r in zip(df.itertuples(index=False), result.records):
        assert row.status == r.status
        assert row._2 == r.decisions["w"] and row.x == r.decisions["x"]
        assert row.duration_s >= 0 and row.elapsed_s >= 0
        if r.status == "complete":
            assert (row.reward, row.params, row.w) == (r.decisions["x"], 3 * row._2, 100)
            assert row.error is None or math.isnan(row.error)
        else:
            assert row._2 == 4 and row.error == "ValueError: no" and math.isnan(row.params)
    assert result.trials.equals(df)


def test_plot_history_writes_a_png(tmp_path):
    def evaluate(v):
        if v["w"] == 1:
            raise ValueError("failed")
        return {"loss": v["x"]}

    result = pl.search(
        SPACE, evaluate, pl.algorithms.random(), budget=15, objectives={"loss": "min"}
    )
    fig = result.plot_history(path=str(tmp_path / "history.png"))
    assert _is_png(tmp_path / "history.png")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "loss" and ax.get_xlabel() == "trial"
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["trial", "best so far", "failed"]
    best_line = ax.lines[0].get_ydata()
    assert list(best_line) == sorted(best_line, reverse=True)  # minimized: never goes up
    result.plot_history("elapsed_s", path=str(tmp_path / "elapsed.svg"))
    assert (tmp_path / "elapsed.svg").read_text().lstrip().startswith("<?xml")


def test_plot_pareto_needs_two_metrics(tmp_path):
    result = pl.search(SPACE, lambda v: {"reward": v["x"], "cost": v["w"]}, budget=6)
    with pytest.raises(ValueError, match=r"plot_pareto\(\) needs two metrics: pass x= and y="):
        result.plot_pareto()
    result.plot_pareto(x="reward", y="cost", path=str(tmp_path / "p.png"))
    assert _is_png(tmp_path / "p.png")


def test_missing_optional_packages_are_explained(monkeypatch):
    result = pl.search(SPACE, lambda v: v["w"], budget=2)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"dataframe\(\) needs pandas: pip install"):
        result.dataframe()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"plots need matplotlib: pip install 'pliant\[plots\]'"):
        result.plot_history()


def test_best_value_errors(tmp_path):
    failed = pl.search(SPACE, lambda v: math.nan, budget=2)
    with pytest.raises(ValueError, match="no trial completed, so there is no best value"):
        failed.best_value()
    path = str(tmp_path / "s.db")
    pl.search(SPACE, lambda v: v["w"], budget=3, store=path)
    with pytest.raises(ValueError, match="loaded without its space value; pass space_value="):
        pl.load_result(path).best_value()
    best = pl.load_result(path, space_value=SPACE).best_value()
    assert best["w"] == pl.load_result(path).best.decisions["w"]


def test_result_to_json():
    import json

    result = pl.search(SPACE, lambda v: v["w"], budget=3)
    doc = json.loads(result.to_json())
    assert doc["study"] == "default" and doc["objectives"] == [["reward", "max"]]
    assert [t["id"] for t in doc["trials"]] == [0, 1, 2]


def test_parallel_workers_lose_and_duplicate_nothing():
    lock = threading.Lock()
    calls, active, peak = [], [0], [0]

    def evaluate(v):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.002 * v["w"])
        with lock:
            active[0] -= 1
            calls.append((v["w"], v["x"]))
        if v["w"] == 3 and v["x"] < 0.3:
            raise RuntimeError("boom")
        return v["w"] * v["x"]

    algo, fed = counting(pl.algorithms.regularized_evolution(population_size=6, tournament_size=3))
    result = pl.search(SPACE, evaluate, algo, budget=60, workers=4, seed=9)
    assert [r.id for r in result.records] == list(range(60))
    assert sorted(calls) == sorted((r.decisions["w"], r.decisions["x"]) for r in result.records)
    assert peak[0] > 1  # trials really ran at once
    failed = sum(r.status == "failed" for r in result.records)
    assert len(fed) == len(result.completed) == 60 - failed
    for r in result.records:
        if r.status == "complete":
            assert r.reward == pytest.approx(r.decisions["w"] * r.decisions["x"])


def test_reader_polls_while_parallel_search_writes(tmp_path):
    path = str(tmp_path / "s.db")
    algo = pl.algorithms.random()
    pl.search(SPACE, lambda v: 1.0, algo, budget=0, store=path)  # the study exists from here on
    seen, errors, stop = [], [], threading.Event()

    def reader():
        while not stop.is_set():
            try:
                records = pl.load_result(path).records
                seen.append((len(records), sum(r.status == "complete" for r in records)))
            except Exception as e:
                errors.append(e)
            time.sleep(0.001)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        result = pl.search(
            SPACE, lambda v: time.sleep(0.003) or v["x"], algo, budget=40, workers=2, store=path
        )
    finally:
        stop.set()
        thread.join()
    assert errors == []
    assert len(seen) > 3
    for column in zip(*seen):  # proposals and completions only ever grow
        assert list(column) == sorted(column)
    assert all(done <= n for n, done in seen)
    assert len(result.records) == 40 == len(pl.load_result(path).completed)


def test_traced_space_search():
    def config(h):
        opt = h.oneof("opt", ["adam", "sgd"])
        lr = h.floatv("lr", 1e-3, 1e-1, scale="log")
        momentum = h.floatv("momentum", 0.0, 0.9) if opt == "sgd" else 0.0
        return {"opt": opt, "lr": lr, "momentum": momentum}

    traced = pl.trace(config)
    result = pl.search(
        traced, lambda replay: replay()["momentum"] + replay()["lr"], budget=12, seed=0
    )
    assert len(result.completed) == 12
    assert {r.decisions["opt"] for r in result.records} == {"adam", "sgd"}
    assert all(("momentum" in r.decisions) == (r.decisions["opt"] == "sgd") for r in result.records)
    best = result.best_value()()
    assert best["opt"] == result.best.decisions["opt"]
    assert best["momentum"] + best["lr"] == pytest.approx(result.best.reward)
    df = result.dataframe()
    assert {"opt", "lr", "momentum"} <= set(df.columns)


def test_progress_is_reported(capsys, monkeypatch):
    pl.search(SPACE, lambda v: v["w"], budget=3, progress=True)
    assert "3/3" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # no tqdm: plain lines
    pl.search(SPACE, lambda v: v["w"] if v["w"] > 1 else math.nan, budget=4, seed=2, progress=True)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 4 and lines[-1].startswith("[4/4] best=")
    pl.search(SPACE, lambda v: v["w"], budget=2, progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"budget": -1}, ValueError, "budget must be a non-negative int, got -1"),
        ({"budget": 1.5}, ValueError, "budget must be"),
        ({"workers": 0}, ValueError, "workers must be a positive int, got 0"),
        ({"timeout": 0}, ValueError, "timeout must be a positive number of seconds, got 0"),
        ({"timeout": "1"}, ValueError, "timeout must be"),
        ({"on_interrupted": "skip"}, ValueError, "on_interrupted must be 'rerun' or 'fail'"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        pl.search(SPACE, lambda v: 1.0, pl.algorithms.random(), **kwargs)


def test_evaluate_must_be_callable():
    with pytest.raises(TypeError, match="evaluate must be a function example -> reward"):
        pl.search(SPACE, 1.0, pl.algorithms.random(), budget=1)
