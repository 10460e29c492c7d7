"""One pliant algorithm, three routes: native, inside Optuna, inside PyGlove.

The same algorithm (regularized evolution by default; ``--algorithms re,neural_predictor``)
searches HPOLib FCNet and NAS-Bench-Graph tables (``pliant.benchmarks``) three ways:

- ``native``: ``pl.sample`` on the benchmark's pliant space, exactly as ``benchmarks/quality.py``
  runs it (its ``run_one``);
- ``optuna``: ``study.optimize`` with ``pl.algorithms.to_optuna(algo, seed=seed)`` over the
  space written in Optuna's define-by-run API (``quality._optuna_suggest``);
- ``pyglove``: ``pg.sample`` with ``pl.algorithms.to_pyglove(algo, seed=seed)`` over the space
  written with ``pg.oneof`` (``quality._pg_space``).

With ``--routes ...,pyglove_native``, a fourth row runs PyGlove's own regularized evolution in
``pg.sample`` (``quality.py``'s ``pyglove_re_native``: another algorithm, population 100): a
reference for how much of the ``pyglove`` route's overhead is ``pg.sample``'s own; likewise
``optuna_random`` runs ``study.optimize`` with Optuna's ``RandomSampler``: the floor of
Optuna's own per-trial cost, next to the ``optuna`` route.

The routes see the same decisions, but in different slot orders and encodings, and draw
different keys, so runs differ seed by seed; the claim is that regret is equal within noise.
The ``pyglove`` route's space converts to the native space slot for slot and its keys are the
native ones (``step_key(seed, i)``), so it evaluates exactly the same configurations as the native
run (the last column counts the seeds whose evaluated sequence is identical); Optuna's
route orders parameters by name and starts from one random trial, so it matches in
distribution only. The table gives, per benchmark and route, the median regret of the incumbent (best observed
config) after the budget over the seeds with its interquartile range, and the framework overhead
per evaluation (wall time minus the table look-up and the harness's bookkeeping, evaluations
2..budget, as in ``quality.py``), both also as ratios to the native route. Regret is computed by
``quality.py``'s own functions (``B.incumbent_regret`` on the evaluated points).

Optuna's route samples its first trial from the independent sampler (random), as every Optuna
relative sampler does; the algorithm takes over from the second. Its overhead includes Optuna's
in-memory storage and the replay of the finished trials (O(trials) per trial).

Run: ``python benchmarks/interop_routes.py [--benchmarks naval,cora] [--algorithms re]
[--budget 100] [--seeds 5] [--json PATH] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import quality

import pliant as pl
from pliant import benchmarks as B

ROUTES = ("native", "optuna", "pyglove", "pyglove_native", "optuna_random")
DEFAULT_ROUTES = ROUTES[:3]
DEFAULT_BENCHMARKS = (
    "fcnet/naval_propulsion",
    "fcnet/protein_structure",
    "nasbench_graph/cora",
    "nasbench_graph/citeseer",
)
QUICK_BENCHMARKS = ("fcnet/naval_propulsion", "nasbench_graph/cora")


def _algorithm(name: str) -> pl.algorithms.Algorithm:
    algos = quality._pliant_algorithms()
    if name not in algos:
        raise ValueError(f"unknown algorithm {name!r}; choose from {sorted(algos)}")
    return algos[name]()


def _run_optuna(
    algorithm: str,
    bench: B.TabularBenchmark,
    seed: int,
    budget: int,
    rng: Any,
    sampler: Any = None,
) -> tuple[list, list, quality._Clock]:
    points: list[int] = []
    observed: list[float] = []
    sampler = sampler or pl.algorithms.to_optuna(_algorithm(algorithm), seed=seed)
    clock = quality._run_optuna_native(bench, seed, budget, rng, points, observed, sampler)
    return points, observed, clock


def _run_pyglove(
    algorithm: str, bench: B.TabularBenchmark, seed: int, budget: int, rng: Any
) -> tuple[list, list, quality._Clock]:
    import pyglove as pg

    space = quality._pg_space(bench)
    sign = 1.0 if bench.direction == "max" else -1.0
    points: list[int] = []
    observed: list[float] = []
    clock = quality._Clock()
    generator = pl.algorithms.to_pyglove(_algorithm(algorithm), seed=seed)
    for example, feedback in pg.sample(space, generator, budget):
        t = time.perf_counter()
        value = bench.objective(example, rng)[bench.metric]
        points.append(bench.point(example))
        observed.append(value)
        clock.outside += time.perf_counter() - t
        feedback(sign * value)
        clock.step()
    return points, observed, clock


def run_one(algorithm: str, route: str, benchmark: str, seed: int, budget: int) -> dict[str, Any]:
    """One search; returns the final regret per kind and the overhead per evaluation."""
    if route in ("native", "pyglove_native"):
        name = algorithm if route == "native" else "pyglove_re_native"
        r = quality.run_one(name, benchmark, seed, budget)
        regret = {k: v[-1] for k, v in r["regret"].items()}
        framework, points = r["framework_s"], r["points"]
    else:
        bench = B.load(benchmark)
        rng = np.random.default_rng(seed)  # the FCNet repeats: the same stream as quality.py
        if route == "optuna_random":
            import optuna

            sampler = optuna.samplers.RandomSampler(seed=seed)
            points, observed, clock = _run_optuna(algorithm, bench, seed, budget, rng, sampler)
        else:
            runner = _run_optuna if route == "optuna" else _run_pyglove
            points, observed, clock = runner(algorithm, bench, seed, budget, rng)
        if len(points) != budget:
            raise RuntimeError(f"{route} on {benchmark}: {len(points)} evaluations")
        regret = {
            kind: float(B.incumbent_regret(bench, points, observed, kind)[-1])
            for kind in bench.regrets
        }
        framework = clock.framework
    return {
        "algorithm": algorithm,
        "route": route,
        "benchmark": benchmark,
        "seed": seed,
        "regret": regret,
        "overhead_ms": quality._overhead_ms(framework, budget),
        "points": [int(p) for p in points],
    }


def _median_iqr(x: list[float]) -> tuple[float, float, float]:
    a = np.asarray(x, np.float64)
    return float(np.median(a)), float(np.percentile(a, 25)), float(np.percentile(a, 75))


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (algorithm, benchmark, route): medians, IQRs and ratios to native."""
    cells: dict[tuple, list[dict[str, Any]]] = {}
    for r in runs:
        cells.setdefault((r["algorithm"], r["benchmark"], r["route"]), []).append(r)
    rows = []
    for (algo, bench, route), rs in sorted(cells.items()):
        native = cells.get((algo, bench, "native"), [])
        row: dict[str, Any] = {"algorithm": algo, "benchmark": bench, "route": route}
        row["seeds"] = len(rs)
        regret = _median_iqr([r["regret"]["val"] for r in rs])
        row["regret_median"], row["regret_q25"], row["regret_q75"] = regret
        row["overhead_ms_median"] = float(np.median([r["overhead_ms"] for r in rs]))
        if native:
            nat_regret = float(np.median([r["regret"]["val"] for r in native]))
            nat_ms = float(np.median([r["overhead_ms"] for r in native]))
            row["regret_ratio"] = regret[0] / nat_regret if nat_regret > 0 else float("nan")
            row["overhead_ratio"] = row["overhead_ms_median"] / nat_ms if nat_ms > 0 else 0.0
            same = {r["seed"]: r["points"] for r in native}
            row["same_points"] = sum(r["points"] == same.get(r["seed"]) for r in rs)
        rows.append(row)
    order = {r: i for i, r in enumerate(ROUTES)}
    rows.sort(key=lambda r: (r["algorithm"], r["benchmark"], order[r["route"]]))
    return rows


def table(report: dict[str, Any]) -> str:
    cfg = report["config"]
    lines = [
        f"Interop routes: budget {cfg['budget']} evaluations, {cfg['seeds']} seeds per cell; "
        "validation regret of the incumbent: median [25%, 75%]; framework overhead: median ms "
        "per evaluation; ratios are to the native route's medians.",
        "",
        "| algorithm | benchmark | route | regret (median [IQR]) | regret / native | "
        "overhead ms/eval | overhead / native | runs identical to native |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['algorithm']} | {quality.SHORT.get(r['benchmark'], r['benchmark'])} | "
            f"{r['route']} | {r['regret_median']:.3g} [{r['regret_q25']:.3g}, "
            f"{r['regret_q75']:.3g}] | {r.get('regret_ratio', float('nan')):.2f} | "
            f"{r['overhead_ms_median']:.2f} | {r.get('overhead_ratio', float('nan')):.1f} | "
            f"{r.get('same_points', '-')}/{r['seeds']} |"
        )
    lines.append("")
    lines.append(
        f"wall {cfg['wall_s']:.0f} s on {cfg['cpus']} CPUs (load average {cfg['load']}); "
        f"pyglove {cfg['pyglove']}, optuna {cfg['optuna']}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", help="comma-separated (short names work: naval, cora)")
    parser.add_argument("--algorithms", default="re", help="comma-separated (default: re)")
    parser.add_argument(
        "--routes",
        default=",".join(DEFAULT_ROUTES),
        help=f"comma-separated from {ROUTES} (default: {','.join(DEFAULT_ROUTES)})",
    )
    parser.add_argument("--budget", type=int, help="evaluations per run (default 100)")
    parser.add_argument("--seeds", type=int, help="runs per cell (default 5)")
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON here")
    parser.add_argument("--quick", action="store_true", help="2 benchmarks, budget 30, 2 seeds")
    args = parser.parse_args(argv)
    if args.benchmarks:
        benchmarks = [b if "/" in b else quality._long(b) for b in quality._csv(args.benchmarks)]
    else:
        benchmarks = list(QUICK_BENCHMARKS if args.quick else DEFAULT_BENCHMARKS)
    algorithms = quality._csv(args.algorithms)
    routes = quality._csv(args.routes)
    budget = args.budget or (30 if args.quick else 100)
    seeds = args.seeds or (2 if args.quick else 5)
    if any(r not in ROUTES for r in routes):
        parser.error(f"--routes: choose from {ROUTES}")
    if budget < 2 or seeds < 1:
        parser.error("--budget must be >= 2 and --seeds >= 1")
    try:
        for a in algorithms:
            _algorithm(a)
        for b in benchmarks:
            B.load(b)
    except ValueError as e:
        parser.error(str(e))
    start = time.perf_counter()
    runs = []
    for a in algorithms:
        for b in benchmarks:
            for route in routes:
                for seed in range(seeds):
                    runs.append(run_one(a, route, b, seed, budget))
    report = {
        "config": {
            "benchmarks": benchmarks,
            "algorithms": algorithms,
            "routes": routes,
            "budget": budget,
            "seeds": seeds,
            "wall_s": time.perf_counter() - start,
            "cpus": os.cpu_count(),
            "load": ", ".join(f"{x:.1f}" for x in os.getloadavg()),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "pyglove": quality._version("pyglove"),
            "optuna": quality._version("optuna"),
        },
        "rows": summarize(runs),
        "runs": runs,
    }
    print(table(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
    return report


if __name__ == "__main__":
    main()
