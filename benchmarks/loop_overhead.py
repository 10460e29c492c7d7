"""Overhead of pliant's search loop next to PyGlove's: ``pl.sample`` against ``pg.sample``.

The search space is written once, as plain functions, and symbolized by both libraries:
``net([block([layer(op=oneof(OPS), width=oneof(WIDTHS)) x 5]) x 5])``, 50 decisions of 8
candidates each. Every iteration of each loop does the whole job of a trial, with an evaluation
that costs next to nothing so that only the loop's own overhead is measured:

- pliant: ``for example, feedback in pl.sample(value, pl.algorithms.random(), N)``: build the
  example (``example.build()`` calls every symbolic function, depth first), compute a reward from
  the built value and ``feedback(reward)``; once in memory and once with ``store=<tmp>.db``, where
  every proposal and outcome is a committed SQLite transaction (a fresh file per repeat, so that
  nothing is resumed);
- PyGlove: ``for example, feedback in pg.sample(value, pg.geno.Random(seed=1), num_examples=N)``,
  calling the example's functors depth first (a PyGlove functor call does not call the functors
  in its arguments, pliant's ``build`` does), the same reward, and ``feedback(reward)``.

Each rate is the median of ``--repeats`` runs over a whole loop (including the loop's set-up:
compiling the space, opening and creating the store), in trials per wall-clock second
(``time.perf_counter``; the targets are judged on it) and per CPU second of the process
(``time.process_time``). Before timing, the script checks that both libraries see the same
space, that the same DNA builds the same value in both, and that the loops recorded every trial.
The machine's load average is printed with the table: wall-clock medians are only comparable on
an otherwise idle (or equally loaded) machine; on a busy one, the CPU-second rate is the better
estimate of what an idle machine would do.

Run: ``python benchmarks/loop_overhead.py [--repeats N] [--json PATH] [--quick]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pyglove as pg

import pliant as pl
from pliant.spaces.pyglove import to_pg_dna

OPS = [
    "conv1x1",
    "conv3x3",
    "conv5x5",
    "dwconv3x3",
    "dwconv5x5",
    "maxpool3x3",
    "avgpool3x3",
    "identity",
]
WIDTHS = [16, 32, 48, 64, 96, 128, 192, 256]
BLOCKS, LAYERS = 5, 5

# Targets from the issue (trials per second).
TARGETS = {"pl.sample, in memory": 2_000.0, "pl.sample, SQLite store": 500.0}


# The plain user code: both libraries symbolize exactly these.
def layer(op, width):
    return (op, width)


def block(layers):
    return tuple(layers)


def net(blocks):
    return tuple(blocks)


def library(symbolize: Callable[[Any], Any], oneof: Any) -> Any:
    ns = SimpleNamespace(**{f.__name__: symbolize(f) for f in (layer, block, net)})
    ns.oneof = oneof
    return ns


PL = library(pl.symbolize, pl.oneof)
PG = library(pg.symbolize, pg.oneof)


def space(s: Any) -> Any:
    """50 oneof(8) decisions: 5 blocks x 5 layers x {op, width}."""
    return s.net(
        [
            s.block([s.layer(op=s.oneof(OPS), width=s.oneof(WIDTHS)) for _ in range(LAYERS)])
            for _ in range(BLOCKS)
        ]
    )


def pg_build(value: Any) -> Any:
    """Calls PyGlove functors depth first, as pliant's ``Node.build`` does."""
    if isinstance(value, pg.Functor):
        args = {k: pg_build(v) for k, v in value.sym_init_args.items()}
        return value(override_args=True, **args)
    if isinstance(value, list):
        return [pg_build(v) for v in value]
    return value


def reward(built: Any) -> float:
    """A cheap evaluation of a built network: its total width, scaled."""
    return sum(width for blk in built for _, width in blk) / 1000.0


def pl_loop(value: Any, n: int, store: str | None) -> int:
    done = 0
    for example, feedback in pl.sample(value, pl.algorithms.random(), n, seed=1, store=store):
        feedback(reward(example.build()))
        done += 1
    return done


def pg_loop(value: Any, n: int) -> int:
    done = 0
    for example, feedback in pg.sample(value, pg.geno.Random(seed=1), num_examples=n):
        feedback(reward(pg_build(example)))
        done += 1
    return done


def check(pl_value: Any, pg_value: Any, tmp: str) -> dict[str, Any]:
    """Both libraries see the same space and build the same values; the loops record trials."""
    sp = pl.space(pl_value)
    spec = pg.dna_spec(pg_value)
    assert len(sp) == len(spec.decision_points) == 2 * BLOCKS * LAYERS
    assert sp.size == spec.space_size
    for seed in range(4):
        dna = pl.random_dna(sp, seed)
        built = pl.materialize(pl_value, dna).build()
        assert pg_build(pg.materialize(pg_value, to_pg_dna(sp, dna))) == built
    path = os.path.join(tmp, "check.db")
    assert pl_loop(pl_value, 20, path) == 20
    records = pl.load_result(path).records
    assert [r.status for r in records] == ["complete"] * 20
    assert [r.id for r in records] == list(range(20))
    assert pg_loop(pg_value, 2) == 2
    return {"decisions": len(sp), "size": str(sp.size)}


def median_rate(run: Callable[[int], int], n: int, repeats: int) -> tuple[float, float]:
    """Medians of ``n / wall seconds`` and ``n / CPU seconds`` over ``repeats`` runs of ``run(i)``
    (which must do ``n`` trials)."""
    wall, cpu = [], []
    for i in range(repeats):
        gc.collect()
        start, start_cpu = time.perf_counter(), time.process_time()
        done = run(i)
        wall.append(n / (time.perf_counter() - start))
        cpu.append(n / max(time.process_time() - start_cpu, 1e-9))
        assert done == n, (done, n)
    return statistics.median(wall), statistics.median(cpu)


def run(repeats: int, quick: bool) -> dict[str, Any]:
    pl_n, pg_n = (300, 5) if quick else (2_000, 20)
    pl_value, pg_value = space(PL), space(PG)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        info = check(pl_value, pg_value, tmp)
        pg_rate = median_rate(lambda i: pg_loop(pg_value, pg_n), pg_n, repeats)
        memory = median_rate(lambda i: pl_loop(pl_value, pl_n, None), pl_n, repeats)
        stored = median_rate(
            lambda i: pl_loop(pl_value, pl_n, os.path.join(tmp, f"run{i}.db")), pl_n, repeats
        )
    rows = []
    for name, (rate, cpu_rate), n in (
        ("pl.sample, in memory", memory, pl_n),
        ("pl.sample, SQLite store", stored, pl_n),
        ("pg.sample (local, in memory)", pg_rate, pg_n),
    ):
        target = TARGETS.get(name)
        rows.append(
            {
                "loop": name,
                "trials_per_s": rate,
                "trials_per_cpu_s": cpu_rate,
                "trials_per_repeat": n,
                "ratio_pliant_over_pyglove": rate / pg_rate[0],
                "target": target,
                "met": None if target is None else rate >= target,
            }
        )
    return {
        "repeats": repeats,
        "quick": quick,
        "space": info,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": {"before": load_before[0], "after": os.getloadavg()[0]},
        "pyglove": pg.__version__,
        "pliant": pl.__version__,
        "results": rows,
    }


def _fmt(rate: float) -> str:
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:.2f}"


def table(report: dict[str, Any]) -> str:
    load = report["load_average"]
    lines = [
        f"Space: {report['space']['decisions']} oneof(8) decisions (size "
        f"{float(report['space']['size']):.3g}); each trial: propose, materialize, build, reward, "
        f"feedback. Median of {report['repeats']} repeats"
        f"{' (--quick)' if report['quick'] else ''}; Python {report['python']}, PyGlove "
        f"{report['pyglove']}, pliant {report['pliant']}; {report['cpus']} CPUs, 1-min load "
        f"average {load['before']:.2f} before, {load['after']:.2f} after.",
        "",
        "| loop | trials/s | trials per CPU-s | trials per repeat | ratio pliant/PyGlove | target |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in report["results"]:
        target = "" if r["target"] is None else f">= {r['target']:,.0f}/s "
        target += "" if r["met"] is None else ("✓" if r["met"] else "✗")
        lines.append(
            f"| {r['loop']} | {_fmt(r['trials_per_s'])} | {_fmt(r['trials_per_cpu_s'])} "
            f"| {r['trials_per_repeat']:,} | {r['ratio_pliant_over_pyglove']:,.1f}x | {target} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, help="timed loops per row (default 5, 2 quick)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    parser.add_argument(
        "--quick", action="store_true", help="a fast smoke run: 300 pliant and 5 PyGlove trials"
    )
    args = parser.parse_args(argv)
    repeats = args.repeats if args.repeats is not None else (2 if args.quick else 5)
    if repeats < 1:
        parser.error(f"--repeats must be at least 1, got {repeats}")
    report = run(repeats, args.quick)
    print(table(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
