"""The Ray backend of ``pl.search`` and the Ray Tune searcher, on a local 2-CPU Ray.

One Ray is started for the whole module (about 5-10 s); the fresh-machine test starts its own in
a subprocess and checks that nothing of it is left running.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import pytest

ray = pytest.importorskip("ray")

import pliant as pl  # noqa: E402
from pliant.flows.backends import RayBackend  # noqa: E402
from pliant.flows.store import open_store  # noqa: E402
from pliant.flows.tune import PliantSearcher  # noqa: E402

SPACE = {"w": pl.oneof([1, 2, 3, 4]), "x": pl.floatv(0.0, 1.0), "act": pl.oneof(["a", "b"])}


def score(v):
    return v["w"] * v["x"] + (v["act"] == "b")


def summary(result):
    return [(r.id, r.dna, r.status, r.reward, r.attempts) for r in result.records]


@pytest.fixture(scope="module")
def local_ray():
    if ray.is_initialized():
        yield ray
        return
    ray.init(num_cpus=2, include_dashboard=False, address="local", log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def test_ray_backend_equals_threads(local_ray):
    rand = pl.algorithms.random()
    threads = pl.search(SPACE, score, rand, budget=8, seed=2, workers=2)
    on_ray = pl.search(SPACE, score, rand, budget=8, seed=2, workers=2, backend="ray")
    assert summary(on_ray) == summary(threads)
    assert local_ray.is_initialized()  # a Ray it did not start is left running


def test_ray_worker_killed_mid_trial_is_failed_and_rerun(local_ray, tmp_path):
    marker, log, db = (str(tmp_path / n) for n in ("killed", "calls.log", "s.db"))

    def evaluate(v):
        with open(log, "a") as f:
            f.write(f"{v['w']} {os.getpid()}\n")
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return score(v)
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)

    budget = 6
    result = pl.search(
        SPACE,
        evaluate,
        pl.algorithms.random(),
        budget=budget,
        seed=1,
        workers=2,
        store=db,
        backend=RayBackend(num_cpus=1),
    )
    assert [r.id for r in result.records] == list(range(budget))
    assert {r.status for r in result.records} == {"complete"}
    retried = [r for r in result.records if r.attempts == 2]
    assert len(retried) == 1
    (errors,) = [r.metrics["attempt_errors"] for r in retried]
    assert len(errors) == 1 and "WorkerCrashedError" in errors[0]
    with open(log) as f:
        assert len(f.read().splitlines()) == budget + 1
    stored = open_store(db, readonly=True).trials("default")
    assert [(r.id, r.status, r.attempts) for r in stored] == [
        (r.id, r.status, r.attempts) for r in result.records
    ]


def test_ray_timeout_cancels_the_task(local_ray):
    def slow(v):
        if v["w"] == 1 and v["x"] == 0.0 and v["act"] == "a":
            time.sleep(120)
        return score(v)

    # On Ray the clock of a timeout starts at submission: it includes a worker's start-up, so
    # the timeout here leaves room for that on a loaded 2-core machine.
    start = time.perf_counter()
    result = pl.search(
        SPACE, slow, pl.algorithms.grid(float_points=2), budget=4, workers=2, timeout=8.0,
        backend="ray",
    )  # fmt: skip
    assert time.perf_counter() - start < 60
    failed = [r for r in result.records if r.status == "failed"]
    assert len(failed) == 1 and "TimeoutError" in failed[0].error
    assert failed[0].decisions == {"w": 1, "x": 0.0, "act": "a"}
    assert [r.status for r in result.records].count("complete") == 3


def test_tune_searcher_drives_a_tuner(local_ray, tmp_path):
    from ray import tune

    def train(config):
        v = config["example"]
        for step in range(1, 3):
            tune.report({"score": score(v) * step / 2})

    searcher = PliantSearcher(
        SPACE, pl.algorithms.regularized_evolution(population_size=3, tournament_size=2),
        metric="score", mode="max", budget=6,
    )  # fmt: skip
    tuner = tune.Tuner(
        train,
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=-1, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="t", verbose=0),
    )
    results = tuner.fit()
    assert len(results) == 6 and not results.errors
    trials = searcher.trials()
    assert sorted(t["id"] for t in trials) == list(range(6))
    assert {t["status"] for t in trials} == {"complete"}
    for t in trials:
        example = pl.materialize(SPACE, t["dna"])
        assert t["value"] == pytest.approx(score(example))
        assert [s for s, _ in t["reports"]] == [1, 2]  # on_trial_result saw both reports
    tune_best = results.get_best_result(metric="score", mode="max").metrics["score"]
    assert searcher.best()["value"] == pytest.approx(tune_best)
    # The searcher's checkpoint, written by Tune through save(), is JSON.
    (ckpt,) = [
        os.path.join(dp, f) for dp, _, fs in os.walk(tmp_path) for f in fs
        if f.startswith("searcher-state")
    ]  # fmt: skip
    with open(ckpt) as f:
        assert json.load(f)["format"] == "pliant-tune-searcher/1"


def test_tune_searcher_errors_not_now_finished_and_json_round_trip(tmp_path):
    s = PliantSearcher(SPACE, pl.algorithms.random(), metric="loss", mode="min", budget=4)
    s.set_max_concurrency(2)
    a, b = s.suggest("a"), s.suggest("b")
    assert a is not None and b is not None and s.suggest("c") is None  # not now
    s.on_trial_result("a", {"loss": 3.0, "training_iteration": 1})
    s.on_trial_complete("a", None, error=True)
    path = str(tmp_path / "s.json")
    s.save(path)
    twin = PliantSearcher(SPACE, pl.algorithms.random(), metric="loss", mode="min", budget=4)
    twin.restore(path)
    assert twin.get_state() == s.get_state()
    c, d = s.suggest("c"), twin.suggest("c")
    assert c is not None and c == d  # same next proposal after the restore
    s.on_trial_complete("b", {"loss": 1.5})
    assert [t["status"] for t in s.trials()] == ["failed", "complete"]
    assert s.trials()[1]["reward"] == -1.5 and s.best()["value"] == 1.5
    assert s.suggest("d") is not None and s.suggest("e") == "FINISHED"
    wrong = PliantSearcher(SPACE, pl.algorithms.random(), metric="loss", mode="max")
    with pytest.raises(ValueError, match="mode="):
        wrong.restore(path)
    with pytest.raises(ValueError, match="example_key"):
        PliantSearcher({"example": pl.oneof([1, 2])}, metric="m").suggest("x")


CLIENT = textwrap.dedent(
    """
    import sys
    import pliant as pl
    from pliant.flows.backends import RayBackend
    backend = RayBackend(address=sys.argv[1], init_kwargs={"log_to_driver": False})
    r = pl.search({"w": pl.oneof([1, 2, 3])}, lambda v: v["w"], pl.algorithms.random(),
                  budget=4, workers=2, backend=backend)
    import ray
    print("RESULT", [x.status for x in r.records], ray.is_initialized())
    """
)


def test_existing_cluster_by_address_is_left_running(local_ray):
    address = local_ray.get_runtime_context().gcs_address
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    out = subprocess.run(
        [sys.executable, "-c", CLIENT, address],
        env={**env, "JAX_PLATFORMS": "cpu"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "RESULT ['complete', 'complete', 'complete', 'complete'] False" in out.stdout
    # The client disconnected; the cluster it used still runs tasks.
    assert local_ray.get(local_ray.remote(lambda: 7).remote()) == 7


FRESH = textwrap.dedent(
    """
    import os, sys
    import pliant as pl
    from pliant.flows.backends import RayBackend
    tmp = sys.argv[1]
    backend = RayBackend(num_cpus=1, init_kwargs={"_temp_dir": tmp, "log_to_driver": False})
    r = pl.search({"w": pl.oneof([1, 2, 3])}, lambda v: v["w"], pl.algorithms.random(),
                  budget=3, workers=2, backend=backend)
    import ray
    print("RESULT", [x.status for x in r.records], ray.is_initialized())
    """
)


@pytest.mark.parametrize("auth", [None, pytest.param("disabled", marks=pytest.mark.slow)])
def test_fresh_machine_local_ray_starts_and_leaves_nothing(tmp_path, auth):
    home = tmp_path / "home"
    home.mkdir()
    temp = tempfile.mkdtemp(prefix="plr")  # short: Ray's socket paths have a length limit
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(HOME=str(home), JAX_PLATFORMS="cpu")
    if auth is not None:
        env["RAY_AUTH_MODE"] = auth
    out = subprocess.run(
        [sys.executable, "-c", FRESH, temp], env=env, capture_output=True, text=True, timeout=240
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "RESULT ['complete', 'complete', 'complete'] False" in out.stdout
    token = home / ".ray" / "auth_token"
    new_ray = tuple(int(p) for p in ray.__version__.split(".")[:2]) >= (2, 60)
    assert token.exists() == (new_ray and auth is None)
    time.sleep(1.0)
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    assert [line for line in ps.splitlines() if temp in line] == []  # no stray Ray processes
