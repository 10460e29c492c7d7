"""Fault injection: SIGKILL at random moments, death between any two store writes, dying
workers and concurrent readers. Every interrupted search, re-run with the same call, must end
exactly like the uninterrupted one: the same trials, rewards, best and algorithm state.

The short form runs in CI; ``PLIANT_FAULTS=50`` kills 50 times instead of 10.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import pliant as pl
from pliant.flows.store import CRASH_EXIT_CODE, FINISHED, StoreError

pytestmark = pytest.mark.reliability

HARNESS = os.path.join(os.path.dirname(__file__), "harness.py")
KILLS = int(os.environ.get("PLIANT_FAULTS", "10"))


def _harness(*args, timeout=300):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("PLIANT_CRASH_AFTER", None)
    proc = subprocess.run(
        [sys.executable, HARNESS, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _check_complete(summary, budget):
    """Exactly ``budget`` finished trials per study, ids 0..budget-1: none lost or doubled."""
    for study, s in summary.items():
        ids = [t[0] for t in s["trials"]]
        assert ids == list(range(budget)), f"{study}: trial ids {ids}"
        assert all(t[2] in FINISHED for t in s["trials"]), study
        assert s["num_proposed"] == budget, study


def test_sigkill_at_random_moments_then_rerun_equals_the_uninterrupted_run(tmp_path):
    out = _harness("kills", tmp_path, KILLS, 2026)
    mid = sum(0 < n < 2 * 16 for n in out["finished_at_each_kill"])
    print(
        f"\nkills survived: {out['kills']} ({mid} mid-search) in {out['runs']} runs; finished "
        f"trials at each kill: {out['finished_at_each_kill']}; uninterrupted run "
        f"{out['reference_s']:.2f} s"
    )
    assert out["final_exit"] == 0
    assert out["kills"] == KILLS
    # The kills landed throughout the search, not all before its first trial or after its end.
    progress = out["finished_at_each_kill"]
    assert len(set(progress)) >= min(3, KILLS), progress
    _check_complete(out["reference"], 16)
    _check_complete(out["result"], 16)
    for study in out["reference"]:
        assert out["result"][study] == out["reference"][study], study


def test_death_after_every_store_write_then_rerun_converges(tmp_path):
    out = _harness("crashpoints", tmp_path)
    writes, cases = out["writes"], out["cases"]
    # create_schema, two create_study, and one add_trial and one finish_trial per trial.
    assert writes == {
        "*": 1 + 2 + 4 * 16,
        "create_schema": 1,
        "create_study": 2,
        "add_trial": 32,
        "finish_trial": 32,
    }
    assert len([c for c in cases if len(c["chain"]) == 1]) == writes["*"]
    _check_complete(out["reference"], 16)
    crashes = 0
    for case in cases:
        *died, last = case["exits"]
        assert died == [CRASH_EXIT_CODE] * len(died), case
        assert last == 0, case
        assert case["same"], case
        crashes += len(died)
    resume_only = {c["chain"][-1].split(":")[0] for c in cases if len(c["chain"]) > 1}
    assert {"mark_interrupted", "restart_trial"} <= resume_only
    print(f"\ncrash points: {len(cases)} runs re-run after {crashes} deaths, all converged")


def test_readers_poll_while_a_search_writes(tmp_path):
    out = _harness("readers", tmp_path, 2, 16)
    assert out["writer_exit"] == 0 and out["reader_exits"] == [0, 0]
    _check_complete(out["result"], 16)
    reads = [r["reads"] for r in out["readers"]]
    for reader in out["readers"]:
        assert reader["errors"] == [] and reader["violations"] == [], reader
    assert min(reads) >= 3, reads  # they did read during the search
    print(f"\nreaders x writes: {len(reads)} readers, {sum(reads)} reads x {out['writes']} writes")


_WORKER_SPACE = {"a": pl.oneof(range(6)), "c": pl.intv(0, 9)}


def _dies_on_first_attempt(markers):
    def evaluate(v):
        # Trials with c % 3 == 0 kill their worker process the first time they run.
        marker = os.path.join(markers, f"{v['a']}-{v['c']}")
        if v["c"] % 3 == 0 and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return v["a"] * 10 + v["c"]

    return evaluate


def test_workers_killed_mid_trial_are_recorded_and_rerun(tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    algorithm = pl.algorithms.regularized_evolution(population_size=4, tournament_size=2)
    kwargs = dict(backend="processes", workers=1, seed=3, retries=1)
    db = str(tmp_path / "workers.db")
    result = pl.search(
        _WORKER_SPACE, _dies_on_first_attempt(str(markers)), algorithm, 12, store=db, **kwargs
    )
    reference = pl.search(_WORKER_SPACE, lambda v: v["a"] * 10 + v["c"], algorithm, 12, **kwargs)
    killed = [r for r in result.records if r.attempts == 2]
    assert killed, "no worker was killed: the test did not test anything"
    assert len(os.listdir(markers)) == len(killed)
    for r in killed:
        (error,) = r.metrics["attempt_errors"]
        assert "WorkerCrashedError" in error and "SIGKILL" in error, error
    assert all(r.status == "complete" for r in result.records)
    assert [(r.id, r.dna, r.reward) for r in result.records] == [
        (r.id, r.dna, r.reward) for r in reference.records
    ]
    stored = pl.load_result(db).records
    assert [(r.id, r.reward, r.attempts) for r in stored] == [
        (r.id, r.reward, r.attempts) for r in result.records
    ]
    print(f"\nworkers killed mid-trial: {len(killed)}, re-run, none lost")


DRIVER = """
import os, sys, time
import pliant as pl

SPACE = {"a": pl.oneof(range(6)), "c": pl.intv(0, 9)}


def evaluate(v):
    open(os.path.join(sys.argv[2], str(os.getpid())), "w").close()
    time.sleep(0.3)
    return v["a"] * 10 + v["c"]


if __name__ == "__main__":
    algorithm = pl.algorithms.regularized_evolution(population_size=4, tournament_size=2)
    pl.search(SPACE, evaluate, algorithm, 8, store=sys.argv[1], seed=4, backend="processes")
    print("done", flush=True)
"""


def _gone(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return any(line.split()[:2] == ["State:", "Z"] for line in f)  # a zombie is dead
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_driver_killed_while_a_worker_process_runs_a_trial(tmp_path):
    script, db, pids = tmp_path / "driver.py", str(tmp_path / "d.db"), tmp_path / "pids"
    script.write_text(DRIVER)
    pids.mkdir()
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen([sys.executable, str(script), db, str(pids)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not (os.path.exists(db) and _finished_trials(db) >= 2):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # mid-trial: the worker is in its 0.3 s sleep
    finally:
        proc.kill()
        proc.wait()
    workers = [int(p) for p in os.listdir(pids)]
    assert workers
    # The orphaned worker ends with its trial (its pipe to the dead driver is closed).
    deadline = time.monotonic() + 10
    while not all(_gone(p) for p in workers):
        assert time.monotonic() < deadline, f"worker processes outlived their driver: {workers}"
        time.sleep(0.05)
    again = subprocess.run(
        [sys.executable, str(script), db, str(pids)], env=env, capture_output=True, text=True
    )
    assert again.returncode == 0 and "done" in again.stdout, again.stderr[-2000:]
    records = pl.load_result(db).records
    assert [r.id for r in records] == list(range(8))
    assert all(r.status == "complete" for r in records)
    assert sum(r.attempts == 2 for r in records) == 1  # the trial in flight, re-run
    algorithm = pl.algorithms.regularized_evolution(population_size=4, tournament_size=2)
    reference = pl.search(
        {"a": pl.oneof(range(6)), "c": pl.intv(0, 9)},
        lambda v: v["a"] * 10 + v["c"],
        algorithm,
        8,
        seed=4,
    )
    assert [(r.id, r.dna, r.reward) for r in records] == [
        (r.id, r.dna, r.reward) for r in reference.records
    ]


def _finished_trials(db):
    try:
        return sum(r.status in FINISHED for r in pl.load_result(db).records)
    except (KeyError, StoreError):
        return 0
