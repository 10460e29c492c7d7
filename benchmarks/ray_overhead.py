"""Where trials run: overhead per trial and parallel speed-up of pliant's execution backends.

Side by side, in one run, on one local Ray (2 CPUs) started by the script:

- ``pl.search(..., backend='threads')`` (the default),
- ``pl.search(..., backend='processes')`` (local worker processes, spawned per search),
- ``pl.search(..., backend='ray')`` (one Ray task per trial),
- Ray Tune driven by pliant's searcher (``PliantSearcher``), with ``reuse_actors=True`` and with
  Tune's default (a new actor per trial).

Two measurements per route, both in the steady state, from the times at which the driver
recorded each trial as finished (``finished_at`` of the store's records; the searcher's trial
log for Tune), so that the fixed cost of a search (spawning processes, setting up a Tune
experiment) is left out; it is reported on its own as ``start-up`` (the wall time of the whole
no-op search minus its trials at the steady-state rate):

1. **Overhead per trial** of no-op trials (evaluate returns a constant), one worker: the mean
   time between consecutive finishes. Target: <= 20 ms per trial.
2. **Speed-up from 1 to 2 workers** on trials that sleep 0.5 s (Tune: ``max_concurrent_trials``
   1 and 2): the ratio of throughputs, each ``(n - w) / (finish[n-1] - finish[w-1])`` for ``w``
   workers (the first round is the start-up). Target: >= 1.8x.

Every route must record every trial as complete (checked). Figures are medians over
``--repeats`` runs; ratios are to the threads backend. The machine's load average is printed:
compare wall times only on an idle (or equally loaded) machine.

Run: ``python benchmarks/ray_overhead.py [--repeats N] [--json PATH] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import pliant as pl

SPACE = {"w": pl.oneof([1, 2, 3, 4]), "x": pl.floatv(0.0, 1.0)}
TARGET_OVERHEAD_MS = 20.0
TARGET_SPEEDUP = 1.8
SLEEP_S = 0.5


def noop(example: Any) -> float:
    return 1.0


def sleepy(example: Any) -> float:
    time.sleep(SLEEP_S)
    return 1.0


Run = Callable[[Callable[[Any], float], int, int], tuple[float, list[float]]]


def search_route(backend: str) -> Run:
    def run(evaluate: Callable[[Any], float], n: int, workers: int) -> tuple[float, list[float]]:
        start = time.perf_counter()
        result = pl.search(
            SPACE, evaluate, pl.algorithms.random(), budget=n, workers=workers, backend=backend
        )
        wall = time.perf_counter() - start
        statuses = [r.status for r in result.records]
        assert statuses == ["complete"] * n, (backend, statuses)
        return wall, sorted(float(r.finished_at) for r in result.records)

    return run


def tune_route(reuse_actors: bool, storage: str) -> Run:
    from ray import tune

    from pliant.flows.tune import PliantSearcher

    def trainable_of(evaluate: Callable[[Any], float]) -> Callable[[dict], None]:
        def train(config: dict) -> None:
            tune.report({"score": evaluate(config["example"])})

        return train

    def run(evaluate: Callable[[Any], float], n: int, workers: int) -> tuple[float, list[float]]:
        searcher = PliantSearcher(
            SPACE, pl.algorithms.random(), metric="score", mode="max", budget=n
        )
        start = time.perf_counter()
        tuner = tune.Tuner(
            trainable_of(evaluate),
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                num_samples=-1,
                max_concurrent_trials=workers,
                reuse_actors=reuse_actors,
            ),
            run_config=tune.RunConfig(storage_path=storage, verbose=0),
        )
        results = tuner.fit()
        wall = time.perf_counter() - start
        statuses = [t["status"] for t in searcher.trials()]
        assert len(results) == n and statuses == ["complete"] * n, statuses
        return wall, sorted(t["finished_at"] for t in searcher.trials())

    return run


def throughput(finished: list[float], workers: int) -> float:
    """Trials per second after the first round: ``(n - w) / (finish[n-1] - finish[w-1])``."""
    n = len(finished)
    return (n - workers) / max(finished[-1] - finished[workers - 1], 1e-9)


def measure(run: Run, n_noop: int, n_sleep: int, repeats: int) -> dict[str, float]:
    overheads, startups, walls, rate1, rate2 = [], [], [], [], []
    for _ in range(repeats):
        wall, finished = run(noop, n_noop, 1)
        per_trial = 1.0 / throughput(finished, 1)
        overheads.append(per_trial)
        walls.append(wall)
        startups.append(wall - n_noop * per_trial)
        rate1.append(throughput(run(sleepy, n_sleep, 1)[1], 1))
        rate2.append(throughput(run(sleepy, n_sleep, 2)[1], 2))
    return {
        "overhead_ms": 1e3 * statistics.median(overheads),
        "noop_search_wall_s": statistics.median(walls),
        "startup_s": statistics.median(startups),
        "sleep_trials_per_s_1_worker": statistics.median(rate1),
        "sleep_trials_per_s_2_workers": statistics.median(rate2),
        "speedup": statistics.median(b / a for a, b in zip(rate1, rate2, strict=True)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="write the results to this JSON file")
    parser.add_argument("--quick", action="store_true", help="fewer trials and one repeat")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    n_noop, n_sleep = (30, 8) if args.quick else (100, 12)
    tune_noop = 8 if args.quick else 10  # Tune's default spends seconds per trial

    import ray

    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, address="local", log_to_driver=False)
    ray_start_s = time.perf_counter() - start
    rows: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory() as storage:
            routes: list[tuple[str, Run, int]] = [
                ("threads", search_route("threads"), n_noop),
                ("processes", search_route("processes"), n_noop),
                ("ray backend", search_route("ray"), n_noop),
                ("tune + PliantSearcher, reuse_actors", tune_route(True, storage), n_noop),
                ("tune + PliantSearcher, default", tune_route(False, storage), tune_noop),
            ]
            for name, run, n in routes:
                print(f"... {name}", file=sys.stderr, flush=True)
                rows.append({"route": name, "n_noop": n, **measure(run, n, n_sleep, repeats)})
    finally:
        ray.shutdown()
    base = rows[0]
    for row in rows:
        row["overhead_vs_threads"] = row["overhead_ms"] / max(base["overhead_ms"], 1e-6)
        row["overhead_met"] = row["overhead_ms"] <= TARGET_OVERHEAD_MS
        row["speedup_met"] = row["speedup"] >= TARGET_SPEEDUP
    report = {
        "repeats": repeats,
        "quick": args.quick,
        "sleep_s": SLEEP_S,
        "sleep_trials": n_sleep,
        "ray_init_s": ray_start_s,
        "ray": ray.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": {"before": load_before, "after": os.getloadavg()[0]},
        "targets": {"overhead_ms": TARGET_OVERHEAD_MS, "speedup": TARGET_SPEEDUP},
        "rows": rows,
    }
    print(
        f"\nmedians of {repeats} run(s); no-op overhead in the steady state of {n_noop} trials "
        f"(Tune default: {tune_noop}); speed-up on {n_sleep} trials of {SLEEP_S} s; local Ray "
        f"with 2 CPUs (ray.init took {ray_start_s:.1f} s); "
        f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}\n"
    )
    header = (
        f"{'route':<38} {'overhead ms/trial':>17} {'x threads':>9} {'<=20ms':>6} "
        f"{'start-up s':>10} {'1 worker /s':>11} {'2 workers /s':>12} {'speed-up':>8} "
        f"{'>=1.8x':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['route']:<38} {r['overhead_ms']:>17.2f} {r['overhead_vs_threads']:>9.1f} "
            f"{'yes' if r['overhead_met'] else 'NO':>6} {r['startup_s']:>10.2f} "
            f"{r['sleep_trials_per_s_1_worker']:>11.2f} {r['sleep_trials_per_s_2_workers']:>12.2f} "
            f"{r['speedup']:>8.2f} {'yes' if r['speedup_met'] else 'NO':>6}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
