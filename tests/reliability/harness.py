"""Fault-injection driver for tests/reliability: run as ``python harness.py MODE ARGS...``.

It imports pliant once and forks a child per search run (no JAX is imported on this path, so
forking is safe and a run starts in milliseconds), so that many kills fit in a CI budget.
Every mode prints one JSON document on stdout.

Modes:
    kills DIR N SEED        SIGKILL a searching child N times at random moments, then let it
                            finish; compare with an uninterrupted run.
    crashpoints DIR         die (PLIANT_CRASH_AFTER) right after every write of an uninterrupted
                            run, and after each write that only a resume does; re-run each.
    readers DIR K BUDGET    K reader processes poll the store while a search writes.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sys
import time
import traceback

import pliant as pl
from pliant.flows.store import _WRITES, FINISHED, StoreError, open_store

BUDGET = 16
SLEEP = 0.002
SPACE = {
    "a": pl.oneof(range(6)),
    "b": pl.oneof(["x", "y", "z"]),
    "c": pl.intv(0, 9),
    "d": pl.floatv(0.0, 1.0),
}


def evaluate(v):
    time.sleep(SLEEP)
    return v["a"] * 10 + v["c"] + {"x": 0.0, "y": 0.5, "z": 0.25}[v["b"]] - v["d"]


def algorithms():
    return {
        "evolution": pl.algorithms.regularized_evolution(population_size=4, tournament_size=2),
        "random": pl.algorithms.random(),
    }


def run(db: str, budget: int = BUDGET) -> None:
    """The search under test: two studies (evolution, then random) in one store."""
    for study, algorithm in algorithms().items():
        pl.search(SPACE, evaluate, algorithm, budget, store=db, study=study, seed=7)


def summary(db: str) -> dict:
    """What must not change with interruptions: trials, rewards, best and algorithm state."""
    out = {}
    store = open_store(db, readonly=True)
    try:
        for study in algorithms():
            records = store.trials(study)
            info = store.study_info(study)
            done = [r for r in records if r.status == "complete"]
            best = max(done, key=lambda r: r.reward) if done else None
            out[study] = {
                "trials": [[r.id, r.dna, r.status, r.reward] for r in records],
                "best": None if best is None else [best.id, best.reward],
                "state": None if info is None else info["state"],
                "num_proposed": None if info is None else info["num_proposed"],
            }
    finally:
        store.close()
    return out


def fork(target, *args, env: dict | None = None) -> int:
    """Runs ``target(*args)`` in a forked child; returns its pid (exit 0 ok, 1 on exception)."""
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            os.environ.update(env or {})
            target(*args)
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return pid


def wait(pid: int) -> int:
    """The child's exit code, or -signal when it was killed."""
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def reference(directory: str) -> tuple[dict, float]:
    db = os.path.join(directory, "reference.db")
    start = time.perf_counter()
    code = wait(fork(run, db))
    assert code == 0, f"the uninterrupted run failed with exit code {code}"
    return summary(db), time.perf_counter() - start


def mode_kills(directory: str, n: int, seed: int) -> dict:
    global SLEEP
    SLEEP = 0.005  # the search, not the start of a process, takes most of a run
    ref, duration = reference(directory)
    db = os.path.join(directory, "killed.db")
    rng = random.Random(seed)
    kills, finished_early, runs, progress, total = 0, 0, 0, [], BUDGET * len(algorithms())
    base, stall = 2 * duration / (n + 1), 0.0
    while kills < n:
        # Spread the kills left over the search left (mean delay: an equal share of the
        # remaining run); a kill that found no new finished trial lengthens the next delay (a
        # loaded machine starts processes slowly).
        left = 1 - (progress[-1] if progress else 0) / total
        pid = fork(run, db)
        runs += 1
        time.sleep(rng.uniform(0, 2 * duration * left / (n - kills + 1)) + stall)
        with contextlib.suppress(ProcessLookupError):  # it finished before the kill
            os.kill(pid, signal.SIGKILL)
        code = wait(pid)
        if code == -signal.SIGKILL:
            kills += 1
            progress.append(_finished(db))
            stalled = progress[-1] == (progress[-2] if len(progress) > 1 else 0)
            stall = stall + base / 2 if stalled else 0.0
        elif code == 0:
            finished_early += 1
            if finished_early > 3 * n:
                break  # the search always finishes before the kill: nothing left to test
        else:
            return {"error": f"run {runs} exited with {code}"}
    code = wait(fork(run, db))
    runs += 1
    return {
        "kills": kills,
        "runs": runs,
        "finished_before_kill": finished_early,
        "finished_at_each_kill": progress,
        "final_exit": code,
        "reference": ref,
        "result": summary(db),
        "reference_s": duration,
    }


def _finished(db: str) -> int:
    if not os.path.exists(db):
        return 0
    try:
        store = open_store(db, readonly=True)
    except Exception:  # killed before the schema was committed: an empty database
        return 0
    try:
        return sum(r.status in FINISHED for r in store.trials())
    finally:
        store.close()


def _count_writes() -> None:
    run(os.environ["HARNESS_DB"])
    with open(os.environ["HARNESS_COUNTS"], "w") as f:
        json.dump(_WRITES, f)


def mode_crashpoints(directory: str) -> dict:
    global SLEEP
    SLEEP = 0.0  # ~160 runs: the points between writes matter here, not the timing
    ref, _ = reference(directory)
    counts_path = os.path.join(directory, "counts.json")
    env = {
        "PLIANT_CRASH_AFTER": "0",  # counts every write, never dies
        "HARNESS_DB": os.path.join(directory, "count.db"),
        "HARNESS_COUNTS": counts_path,
    }
    assert wait(fork(_count_writes, env=env)) == 0
    with open(counts_path) as f:
        writes = json.load(f)
    cases = []
    # Every write of an uninterrupted run, then the writes only a resume does (after a crash
    # that leaves a trial running: its 5th add_trial, then a finish with a trial in flight).
    specs = [[str(k)] for k in range(1, writes["*"] + 1)]
    for first in ("add_trial:5", "finish_trial:9", "add_trial:20"):
        for resume_write in ("mark_interrupted", "restart_trial", "add_trial", "finish_trial"):
            if not (first.startswith("finish") and resume_write == "restart_trial"):
                specs.append([first, resume_write])  # (nothing is in flight after a finish)
    specs.append(["add_trial:3", "restart_trial", "mark_interrupted", "restart_trial:1"])
    for i, chain in enumerate(specs):
        db = os.path.join(directory, f"crash{i}.db")
        exits = [wait(fork(run, db, env={"PLIANT_CRASH_AFTER": spec})) for spec in chain]
        exits.append(wait(fork(run, db)))
        result = summary(db)
        cases.append(
            {
                "chain": chain,
                "exits": exits,
                "same": result == ref,
                "diff": None if result == ref else _diff(ref, result),
            }
        )
    return {"writes": writes, "cases": cases, "reference": ref}


def _diff(ref: dict, got: dict) -> str:
    for study in ref:
        for field in ref[study]:
            if ref[study][field] != got[study][field]:
                want, have = str(ref[study][field])[:300], str(got[study][field])[:300]
                return f"{study}.{field}: {want} != {have}"
    return "?"


def _reader(db: str, stop_file: str, out: str) -> None:
    """Polls the store through pliant's API until told to stop; checks every snapshot."""
    reads, errors, violations, last_complete, seen = 0, [], [], {}, set()
    while True:
        stopping = os.path.exists(stop_file)
        snapshot = {}
        for study in algorithms():
            try:
                snapshot[study] = pl.load_result(db, study).records
                seen.add(study)
            except (FileNotFoundError, KeyError, StoreError) as e:
                # Before the writer created the file, schema or study: not an error yet.
                if study in seen:
                    errors.append(f"{type(e).__name__}: {e}")
            except Exception as e:
                errors.append(f"{type(e).__name__}: {e}")
        if not snapshot:
            if stopping:
                break
            time.sleep(0.002)
            continue
        reads += 1
        for study, records in snapshot.items():
            if [r.id for r in records] != list(range(len(records))):
                violations.append(f"{study}: ids {[r.id for r in records]}")
            for r in records:
                if r.status == "complete" and (
                    r.reward is None or "reward" not in r.metrics or r.finished_at is None
                ):
                    violations.append(f"{study}/{r.id}: half-written complete trial {r}")
                if r.status == "running" and (r.reward is not None or r.finished_at is not None):
                    violations.append(f"{study}/{r.id}: running trial with an outcome {r}")
            done = sum(r.status == "complete" for r in records)
            if done < last_complete.get(study, 0):
                violations.append(f"{study}: complete went {last_complete[study]} -> {done}")
            last_complete[study] = done
        if stopping:
            break
    with open(out, "w") as f:
        json.dump({"reads": reads, "errors": errors[:20], "violations": violations[:20]}, f)


def _writer(db: str, budget: int) -> None:
    os.environ["PLIANT_CRASH_AFTER"] = "0"  # counts writes
    run(db, budget)
    with open(db + ".writes", "w") as f:
        json.dump(_WRITES, f)


def mode_readers(directory: str, k: int, budget: int) -> dict:
    db = os.path.join(directory, "shared.db")
    stop = os.path.join(directory, "stop")
    outs = [os.path.join(directory, f"reader{i}.json") for i in range(k)]
    readers = [fork(_reader, db, stop, out) for out in outs]
    writer = fork(_writer, db, budget)
    writer_exit = wait(writer)
    open(stop, "w").close()
    reader_exits = [wait(pid) for pid in readers]
    results = []
    for out in outs:
        with open(out) as f:
            results.append(json.load(f))
    with open(db + ".writes") as f:
        writes = json.load(f)["*"]
    return {
        "writer_exit": writer_exit,
        "reader_exits": reader_exits,
        "readers": results,
        "writes": writes,
        "result": summary(db),
    }


def main(argv: list[str]) -> None:
    mode, directory, *rest = argv
    if mode == "kills":
        out = mode_kills(directory, int(rest[0]), int(rest[1]))
    elif mode == "crashpoints":
        out = mode_crashpoints(directory)
    elif mode == "readers":
        out = mode_readers(directory, int(rest[0]), int(rest[1]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
