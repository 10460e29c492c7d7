"""Execution backends of ``pl.search``: local processes against threads, crashes, timeouts."""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import signal
import sys
import threading
import time

import cloudpickle
import pytest

import pliant as pl
from pliant.flows.backends import ProcessBackend, RayBackend, ThreadBackend, resolve_backend
from pliant.flows.store import open_store

SPACE = {"w": pl.oneof([1, 2, 3, 4]), "x": pl.floatv(0.0, 1.0), "act": pl.oneof(["a", "b"])}


def score(v):
    """A deterministic evaluate (module level, so it travels by reference)."""
    return v["w"] * v["x"] + (v["act"] == "b")


def summary(result):
    return [(r.id, r.dna, r.status, r.reward, r.attempts) for r in result.records]


def kill_once(marker: str, log: str):
    """An evaluate that kills its own worker process on the first call of the whole search."""

    def evaluate(v):
        with open(log, "a") as f:
            f.write(f"{v['w']} {v['x']!r} {os.getpid()}\n")
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return score(v)
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(30)  # never reached

    return evaluate


def check_store_consistent(result, path, budget):
    stored = open_store(path, readonly=True).trials("default")
    assert [r.id for r in stored] == list(range(budget))  # none lost, none duplicated
    assert [(r.id, r.status, r.reward, r.attempts) for r in stored] == [
        (r.id, r.status, r.reward, r.attempts) for r in result.records
    ]


def test_process_backend_equals_threads():
    algo = pl.algorithms.dedup(
        pl.algorithms.regularized_evolution(population_size=4, tournament_size=2)
    )
    one = pl.search(SPACE, score, algo, budget=10, seed=3)
    procs = pl.search(SPACE, score, algo, budget=10, seed=3, backend="processes")
    assert summary(procs) == summary(one)
    # Two workers: an algorithm that ignores feedback gives the same trials in any order.
    rand = pl.algorithms.random()
    threads = pl.search(SPACE, score, rand, budget=12, seed=4, workers=2)
    procs2 = pl.search(SPACE, score, rand, budget=12, seed=4, workers=2, backend=ProcessBackend())
    assert summary(procs2) == summary(threads)
    assert {r.status for r in procs2.records} == {"complete"}
    assert not mp.active_children()  # the workers are gone


def test_closures_and_symbolic_examples_travel():
    @pl.symbolize
    def block(width, act="relu"):
        return {"width": width, "act": act}

    space = [block(pl.oneof([8, 16])), block(pl.oneof([32, 64]), act=pl.oneof(["relu", "gelu"]))]
    offset = 0.5
    result = pl.search(
        space,
        lambda m: sum(b.build()["width"] for b in m) + offset,
        pl.algorithms.random(),
        budget=4,
        backend="processes",
    )
    for r in result.records:
        widths = [d for k, d in r.decisions.items() if isinstance(d, int)]
        assert r.status == "complete" and r.reward == sum(widths) + offset


def test_killed_worker_fails_the_attempt_and_reruns_it(tmp_path):
    marker, log, db = (str(tmp_path / n) for n in ("killed", "calls.log", "s.db"))
    budget = 6
    result = pl.search(
        SPACE,
        kill_once(marker, log),
        pl.algorithms.random(),
        budget=budget,
        seed=1,
        workers=2,
        store=db,
        backend="processes",
    )
    assert [r.id for r in result.records] == list(range(budget))
    assert {r.status for r in result.records} == {"complete"}
    retried = [r for r in result.records if r.attempts == 2]
    assert len(retried) == 1 and all(r.attempts == 1 for r in result.records if r not in retried)
    (errors,) = [r.metrics["attempt_errors"] for r in retried]
    assert len(errors) == 1 and "WorkerCrashedError" in errors[0] and "SIGKILL" in errors[0]
    with open(log) as f:
        calls = f.read().splitlines()
    assert len(calls) == budget + 1  # one more call: the killed attempt
    assert len({c.split()[2] for c in calls}) >= 2  # the dead worker was replaced
    for r in result.records:
        assert r.reward == pytest.approx(score(pl.materialize(SPACE, r.decisions)))
    check_store_consistent(result, db, budget)
    assert not mp.active_children()


def test_no_retries_leaves_the_trial_failed_with_the_reason(tmp_path):
    marker, log, db = (str(tmp_path / n) for n in ("killed", "calls.log", "s.db"))
    result = pl.search(
        SPACE,
        kill_once(marker, log),
        pl.algorithms.random(),
        budget=4,
        store=db,
        backend="processes",
        retries=0,
    )
    statuses = [r.status for r in result.records]
    assert statuses == ["failed", "complete", "complete", "complete"]
    assert "attempt 1: WorkerCrashedError" in result.records[0].error
    assert "SIGKILL" in result.records[0].error
    check_store_consistent(result, db, 4)


def slow_on_w1(v):
    if v["w"] == 1 and v["x"] == 0.0 and v["act"] == "a":
        time.sleep(60)
    return score(v)


def test_timeout_kills_the_worker_process():
    start = time.perf_counter()
    result = pl.search(
        SPACE,
        slow_on_w1,
        pl.algorithms.grid(float_points=2),
        budget=6,
        workers=2,
        timeout=3.0,
        backend="processes",
    )
    assert time.perf_counter() - start < 50  # it did not wait for the 60 s sleep
    failed = [r for r in result.records if r.status == "failed"]
    assert len(failed) == 1 and "TimeoutError" in failed[0].error
    assert failed[0].decisions == {"w": 1, "x": 0.0, "act": "a"}
    assert [r.status for r in result.records].count("complete") == 5
    assert not mp.active_children()  # the killed worker is gone, the others stopped


def test_an_example_that_cannot_travel_fails_its_trial():
    lock = threading.Lock()

    def config(h):
        return h.oneof("w", [1, 2]), lock

    # The example of a traced function replays it: it closes over the lock.
    result = pl.search(
        pl.trace(config), lambda ex: ex()[0], pl.algorithms.random(), budget=2, backend="processes"
    )
    assert [r.status for r in result.records] == ["failed", "failed"]
    assert all("cannot be sent to a worker process" in r.error for r in result.records)


def test_raising_evaluate_is_a_failure_not_a_crash():
    def bad(v):
        raise ValueError(f"no good: {v['w']}")

    result = pl.search(SPACE, bad, pl.algorithms.random(), budget=2, backend="processes")
    assert [r.status for r in result.records] == ["failed", "failed"]
    assert all(r.attempts == 1 and "ValueError: no good" in r.error for r in result.records)


def test_bad_backends_and_unpicklable_evaluate():
    with pytest.raises(ValueError, match="backend must be one of"):
        pl.search(SPACE, score, budget=1, backend="gpu")
    with pytest.raises(TypeError, match=r"pliant\.flows\.Backend"):
        pl.search(SPACE, score, budget=1, backend=3)
    with pytest.raises(ValueError, match="retries"):
        pl.search(SPACE, score, budget=1, backend="processes", retries=-1)
    lock = threading.Lock()
    with pytest.raises(TypeError, match="cannot be sent to a worker process"):
        pl.search(SPACE, lambda v: lock and 1.0, budget=1, backend="processes")
    with pytest.raises(ValueError, match="trial handle"):
        pl.search(SPACE, lambda v, trial: 1.0, budget=1, backend="processes")
    assert resolve_backend(ThreadBackend()) is None and resolve_backend("threads") is None
    with pytest.raises(ValueError, match="num_gpus"):
        RayBackend(num_gpus=-1)


def test_ray_missing_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ImportError, match=r'pip install "pliant\[ray\]"'):
        pl.search(SPACE, score, budget=1, backend="ray")
    with pytest.raises(ImportError, match=r"pliant\[ray\]"):
        pl.search(SPACE, score, budget=1, backend=RayBackend())


@pl.symbolize
def layer(width, act="relu"):
    return (width, act)


def test_symbolic_values_pickle():
    plain = {"a": [pl.oneof([1, 2]), 3], "b": pl.floatv(0.0, 1.0)}
    value = pl.materialize(plain, pl.random_dna(pl.space(plain), 0))
    assert pickle.loads(pickle.dumps(value)) == value
    # A decorated function is not the module attribute of its name: cloudpickle sends it.
    space = {"a": [layer(pl.oneof([1, 2])), 3], "b": pl.floatv(0.0, 1.0)}
    for seed in range(3):
        value = pl.materialize(space, pl.random_dna(pl.space(space), seed))
        back = pickle.loads(cloudpickle.dumps(value))
        assert back["b"] == value["b"] and back["a"][1] == 3
        assert back["a"][0].build() == value["a"][0].build()


def slow_on_w4_fast_else(v):
    if v["w"] == 4 and v["x"] == 0.0:
        time.sleep(2.5)
    return score(v)


def test_feedback_is_asynchronous():
    # One trial is slow; meanwhile the other worker's trials are recorded and new ones proposed.
    space = {"w": pl.oneof([4, 1, 2, 3]), "x": pl.oneof([0.0, 0.5, 1.0])}
    result = pl.search(
        space, slow_on_w4_fast_else, pl.algorithms.grid(), budget=6, workers=2, backend="processes"
    )
    by_finish = sorted(result.records, key=lambda r: r.finished_at)
    slow = [r for r in result.records if r.decisions == {"w": 4, "x": 0.0}]
    assert len(slow) == 1 and by_finish[-1] == slow[0]
    fast_before = [r for r in by_finish if r.finished_at < min(s.finished_at for s in slow)]
    assert len(fast_before) >= 2  # proposed and finished while the slow trial ran


def test_a_rerun_that_raises_keeps_every_reason(tmp_path):
    marker = str(tmp_path / "killed")

    def evaluate(v):
        if os.path.exists(marker):
            raise ValueError("second attempt fails too")
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)

    result = pl.search(SPACE, evaluate, pl.algorithms.random(), budget=1, backend="processes")
    (r,) = result.records
    assert r.status == "failed" and r.attempts == 2
    assert r.error.startswith("attempt 1: WorkerCrashedError")
    assert "attempt 2: ValueError: second attempt fails too" in r.error
