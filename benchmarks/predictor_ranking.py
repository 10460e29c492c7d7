"""How well the neural predictor ranks held-out architectures of the tabular benchmarks.

For each table and training-set size ``n``: draw ``n`` distinct random architectures, give the
predictor what a search sees (one random repeat of the metric, as a reward), and predict
``--test`` other random architectures. Kendall tau is taken against the table's mean metric
(the regret the quality benchmark reports), median over seeds. The "one repeat" column is the
ceiling that noise sets: the tau of a single random repeat against the mean, over the same test
architectures (1.0 on tables with one repeat).

    python benchmarks/predictor_ranking.py                     # 7 tables, n = 20/60/100/300
    python benchmarks/predictor_ranking.py --seeds 3 --sizes 20,100 --json out.json

The model is :func:`pliant.algorithms.neural_predictor`'s default (through ``fit_predict``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

import pliant as pl
from pliant import benchmarks as B
from pliant.algorithms.predictor import fit_predict, kendall_tau

DEFAULT_BENCHMARKS = (
    "fcnet/slice_localization",
    "fcnet/protein_structure",
    "fcnet/naval_propulsion",
    "fcnet/parkinsons_telemonitoring",
    "nasbench_graph/cora",
    "nasbench_graph/citeseer",
    "nasbench_graph/pubmed",
)


def _distinct_random(
    bench: B.TabularBenchmark, rng: np.random.Generator, n: int, avoid: set
) -> Any:
    """``n`` random DNAs of distinct table points, none in ``avoid`` (point ids, updated)."""
    space = bench.space
    rows: list[np.ndarray] = []
    while len(rows) < n:
        batch = pl.random_dna(space, rng, n=4 * n)
        for index, point in zip(np.asarray(batch.index), bench.points(batch.index)):
            if int(point) not in avoid and len(rows) < n:
                avoid.add(int(point))
                rows.append(index)
    return space.make_dna(np.stack(rows))


def one(name: str, size: int, test: int, seed: int) -> dict[str, Any]:
    """Kendall tau of the predictor trained on ``size`` random points, on ``test`` others."""
    bench = B.load(name)
    rng = np.random.default_rng(seed)
    sign = 1.0 if bench.direction == "max" else -1.0
    seen: set = set()
    train = _distinct_random(bench, rng, size, seen)
    held = _distinct_random(bench, rng, test, seen)
    p_train, p_test = bench.points(train.index), bench.points(held.index)
    draw = lambda p: bench.values[p, rng.integers(bench.values.shape[1], size=p.size)]
    rewards = sign * draw(p_train)
    truth = -next(iter(bench.regrets.values()))[p_test]  # higher is better
    start = time.perf_counter()
    pred = fit_predict(bench.space, train, rewards, held, key=seed)
    fit_s = time.perf_counter() - start
    return {
        "benchmark": name,
        "size": size,
        "seed": seed,
        "tau": kendall_tau(pred, truth),
        "one_repeat_tau": kendall_tau(sign * draw(p_test), truth),
        "fit_s": fit_s,
    }


def run(benchmarks: Sequence[str], sizes: Sequence[int], seeds: int, test: int) -> dict[str, Any]:
    rows = [one(b, n, test, s) for b in benchmarks for n in sizes for s in range(seeds)]
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for b in benchmarks:
        for n in sizes:
            cell = [r for r in rows if r["benchmark"] == b and r["size"] == n]
            summary.setdefault(b, {})[str(n)] = {
                "tau_median": float(np.median([r["tau"] for r in cell])),
                "tau_min": float(np.min([r["tau"] for r in cell])),
                "tau_max": float(np.max([r["tau"] for r in cell])),
                "one_repeat_tau_median": float(np.median([r["one_repeat_tau"] for r in cell])),
                "fit_s_median": float(np.median([r["fit_s"] for r in cell])),
            }
    config = {
        "benchmarks": list(benchmarks),
        "sizes": list(sizes),
        "seeds": seeds,
        "test": test,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "pliant": pl.__version__,
    }
    return {"config": config, "summary": summary, "runs": rows}


def table(report: dict[str, Any]) -> str:
    cfg = report["config"]
    lines = [
        f"Neural predictor: Kendall tau on {cfg['test']} held-out random architectures vs the "
        f"table's mean metric, median [min, max] over {cfg['seeds']} seeds; trained on n random "
        "architectures with one random repeat each (what a search sees). 'one repeat' = tau of "
        "a single random repeat vs the mean (the noise ceiling).",
        "",
        "| benchmark | "
        + " | ".join(f"n={n}" for n in cfg["sizes"])
        + " | one repeat | fit s (largest n) |",
        "|---|" + "---:|" * (len(cfg["sizes"]) + 2),
    ]
    for b, cells in report["summary"].items():
        row = [
            f"{c['tau_median']:.2f} [{c['tau_min']:.2f}, {c['tau_max']:.2f}]"
            for c in (cells[str(n)] for n in cfg["sizes"])
        ]
        last = cells[str(cfg["sizes"][-1])]
        lines.append(
            f"| {b} | "
            + " | ".join(row)
            + f" | {last['one_repeat_tau_median']:.2f} | {last['fit_s_median']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmarks", help="comma-separated (default: the 7 of quality.py)")
    parser.add_argument("--sizes", default="20,60,100,300", help="training-set sizes")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--test", type=int, default=1000, help="held-out architectures")
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON here")
    args = parser.parse_args(argv)
    benchmarks = args.benchmarks.split(",") if args.benchmarks else list(DEFAULT_BENCHMARKS)
    try:
        sizes = [int(x) for x in args.sizes.split(",")]
    except ValueError:
        parser.error(f"--sizes must be comma-separated ints, got {args.sizes!r}")
    if args.seeds < 1 or args.test < 2 or min(sizes) < 2:
        parser.error("--seeds must be >= 1, --test and every size >= 2")
    for b in benchmarks:
        try:
            B.load(b)
        except (ValueError, KeyError, ImportError) as e:
            parser.error(str(e))
    report = run(benchmarks, sizes, args.seeds, args.test)
    print(table(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
    return report


if __name__ == "__main__":
    main()
