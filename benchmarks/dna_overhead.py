"""Overhead of pliant's DNA layer next to PyGlove's: compiling, sampling and materializing spaces.

Two search spaces are written once, as plain functions, and symbolized by both libraries
(``pl.symbolize`` with ``pl.oneof``/``pl.manyof``/``pl.floatv``, and ``pg.symbolize`` with
``pg.oneof``/``pg.manyof``/``pg.floatv``):

- A: ``net([block([layer(op=oneof(OPS), width=oneof(WIDTHS)) x 5]) x 5])``, 50 decisions of
  8 candidates each;
- B: a conditional space: each of the 25 layers picks its op among sub-structures, some with
  their own decisions (``conv(kernel=oneof, width=oneof)``, ``sepconv(...)``, ``pool(kind=oneof)``,
  ``dropout(rate=floatv)``, ``identity()``) plus a residual flag, and each block a sorted
  ``manyof(2, ...)`` of extras: 210 decisions, 25 of them floats.

Each operation is timed in the same process, side by side, as the median of ``--repeats`` runs
of ``time.perf_counter``:

- compile the space: ``pl.space(value)`` with pliant's compile cache cleared before each run,
  against ``pg.dna_spec(value)``;
- random DNA, one at a time: ``pl.random_dna(space, seed)`` (NumPy) against
  ``pg.random_dna(spec, random.Random(seed))``;
- random DNA + materialize + build: ``pl.materialize(value, dna).build()`` against
  ``pg.materialize(value, dna)`` followed by calling every functor depth first (a PyGlove functor
  call does not call the functors in its arguments, pliant's ``build`` does);
- batched random DNA (``n`` per call: 100,000 for A, 20,000 for B): ``pl.random_dna(space, key, n)`` jitted with a
  ``jax.random`` key (after a warm-up compile, whose time is reported once; timed to
  ``jax.block_until_ready``; for A also with a ``jax.random.key(seed, impl="unsafe_rbg")``
  key, much cheaper on CPU than the default threefry), and on the NumPy path with an int seed. PyGlove has no batched
  sampler: its column is its one-at-a-time ``pg.random_dna`` rate.

Before timing, the script checks that both libraries see the same space (number of decisions,
size) and that the same DNA, converted with ``pliant.spaces.to_pg_dna``/``from_pg_dna``, builds
the very same value in both. The machine's load average is printed with the table: the medians
are only comparable on an otherwise idle (or equally loaded) machine.

Run: ``python benchmarks/dna_overhead.py [--repeats N] [--json PATH] [--quick]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import jax
import numpy as np
import pyglove as pg

import pliant as pl
from pliant.spaces import compiler
from pliant.spaces.pyglove import from_pg_dna, to_pg_dna

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

# Targets for space A (from the issue); None where there is none.
TARGETS = {
    "compile space": ("<=", 2.0),
    "random DNA + materialize + build": (">=", 2_000.0),
    "batched random DNA, JAX (jit)": (">=", 1_000_000.0),
}

# JAX's default key (threefry2x32) dominates batched sampling on CPU; "unsafe_rbg" is the fast
# alternative a user can pass (A only: B's trace + compile takes seconds per key type).
# DNAs per batched call; B's are 4x longer and its rate needs no bigger batch to settle.
BATCH = {"A": 100_000, "B": 20_000}
JAX_KEY_IMPLS = {"A": ("threefry2x32", "unsafe_rbg"), "B": ("threefry2x32",)}


# The plain user code: both libraries symbolize exactly these.
def layer(op, width):
    return (op, width)


def block(layers):
    return tuple(layers)


def net(blocks):
    return tuple(blocks)


def conv(kernel, width):
    return ("conv", kernel, width)


def sepconv(kernel, multiplier):
    return ("sepconv", kernel, multiplier)


def pool(kind):
    return ("pool", kind)


def dropout(rate):
    return ("dropout", rate)


def identity():
    return ("identity",)


def cond_layer(op, residual):
    return (op, residual)


def cond_block(layers, extras):
    return (tuple(layers), tuple(extras))


def library(symbolize: Callable[[Any], Any], oneof: Any, manyof: Any, floatv: Any) -> Any:
    fns = (layer, block, net, conv, sepconv, pool, dropout, identity, cond_layer, cond_block)
    ns = SimpleNamespace(**{f.__name__: symbolize(f) for f in fns})
    ns.oneof, ns.manyof, ns.floatv = oneof, manyof, floatv
    return ns


PL = library(pl.symbolize, pl.oneof, pl.manyof, pl.floatv)
PG = library(pg.symbolize, pg.oneof, pg.manyof, pg.floatv)


def space_a(s: Any) -> Any:
    """50 oneof(8) decisions: 5 blocks x 5 layers x {op, width}."""
    return s.net(
        [
            s.block([s.layer(op=s.oneof(OPS), width=s.oneof(WIDTHS)) for _ in range(LAYERS)])
            for _ in range(BLOCKS)
        ]
    )


def space_b(s: Any) -> Any:
    """A conditional space: per layer an op among sub-structures with their own decisions."""

    def one_layer() -> Any:
        op = s.oneof(
            [
                s.conv(kernel=s.oneof([1, 3, 5]), width=s.oneof(WIDTHS)),
                s.sepconv(kernel=s.oneof([3, 5, 7]), multiplier=s.oneof([1, 2, 4])),
                s.pool(kind=s.oneof(["max", "avg"])),
                s.dropout(rate=s.floatv(0.0, 0.5)),
                s.identity(),
            ]
        )
        return s.cond_layer(op=op, residual=s.oneof([True, False]))

    extras = ["se", "batchnorm", "layernorm", "swish"]
    return s.net(
        [
            s.cond_block([one_layer() for _ in range(LAYERS)], s.manyof(2, extras, sorted=True))
            for _ in range(BLOCKS)
        ]
    )


SPACES = {"A": space_a, "B": space_b}


def pg_build(value: Any) -> Any:
    """Calls PyGlove functors depth first, as pliant's ``Node.build`` does."""
    if isinstance(value, pg.Functor):
        args = {k: pg_build(v) for k, v in value.sym_init_args.items()}
        return value(override_args=True, **args)
    if isinstance(value, list):
        return [pg_build(v) for v in value]
    return value


def pl_sample_build(value: Any, space: pl.Space, seed: int) -> Any:
    return pl.materialize(value, pl.random_dna(space, seed)).build()


def pg_sample_build(value: Any, spec: Any, rng: random.Random) -> Any:
    return pg_build(pg.materialize(value, pg.random_dna(spec, rng)))


def check(name: str, pl_value: Any, pg_value: Any, spec: Any) -> dict[str, Any]:
    """Checks that both libraries see the same space and build the same values from one DNA."""
    space = pl.space(pl_value)
    assert len(space) == len(spec.decision_points), (len(space), len(spec.decision_points))
    finite = space.size != math.inf
    if finite:
        assert space.size == spec.space_size, (space.size, spec.space_size)
    rng = random.Random(0)
    for seed in range(4):
        dna = pl.random_dna(space, seed)
        built = pl.materialize(pl_value, dna).build()
        assert pg_build(pg.materialize(pg_value, to_pg_dna(space, dna))) == built, name
        pg_dna = pg.random_dna(spec, rng)
        assert pg_build(pg.materialize(pg_value, pg_dna)) == (
            pl.materialize(pl_value, from_pg_dna(space, pg_dna)).build()
        ), name
    space.validate(pl.random_dna(space, 0, n=64))
    return {
        "space": name,
        "decisions": len(space),
        "float_decisions": int(space.is_float.sum()),
        "conditional_decisions": sum(bool(s.conditions) for s in space.slots),
        "size": str(space.size) if finite else "inf",
    }


def median_ms(fn: Callable[[], Any], repeats: int, setup: Callable[[], Any] | None = None) -> float:
    """Median wall time of ``fn()`` in milliseconds; ``setup()`` runs untimed before each."""
    times = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def median_rate(fn: Callable[[int], Any], count: int, repeats: int, per_call: int = 1) -> float:
    """Median of ``count * per_call / seconds`` over repeats of ``fn(i)`` for ``count`` i's."""
    rates, i = [], 0
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        for _ in range(count):
            fn(i)
            i += 1
        rates.append(count * per_call / (time.perf_counter() - start))
    return statistics.median(rates)


def bench_space(
    name: str, repeats: int, quick: bool, pl_count: int, pg_count: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    n = BATCH[name] // 10 if quick else BATCH[name]
    pl_value, pg_value = SPACES[name](PL), SPACES[name](PG)
    spec = pg.dna_spec(pg_value)
    info = check(name, pl_value, pg_value, spec)
    space = pl.space(pl_value)
    rows = []

    def row(op: str, unit: str, ours: float, theirs: float | None, note: str = "") -> None:
        speedup = None
        if theirs is not None:
            speedup = theirs / ours if unit == "ms" else ours / theirs
        target = TARGETS.get(op) if name == "A" else None
        met = None
        if target is not None:
            met = ours <= target[1] if target[0] == "<=" else ours >= target[1]
        rows.append(
            {
                "space": name,
                "operation": op,
                "unit": unit,
                "pliant": ours,
                "pyglove": theirs,
                "speedup": speedup,
                "target": None if target is None else f"{target[0]} {target[1]:,.0f} {unit}",
                "met": met,
                "note": note,
            }
        )

    row(
        "compile space",
        "ms",
        median_ms(lambda: pl.space(pl_value), repeats, setup=compiler._CACHE.clear),
        median_ms(lambda: pg.dna_spec(pg_value), repeats),
    )
    rng = random.Random(0)
    pg_random = median_rate(lambda i: pg.random_dna(spec, rng), pg_count, repeats)
    row(
        "random DNA, one at a time",
        "DNA/s",
        median_rate(lambda i: pl.random_dna(space, i), pl_count, repeats),
        pg_random,
    )
    row(
        "random DNA + materialize + build",
        "/s",
        median_rate(lambda i: pl_sample_build(pl_value, space, i), pl_count, repeats),
        median_rate(lambda i: pg_sample_build(pg_value, spec, rng), pg_count, repeats),
    )
    for impl in JAX_KEY_IMPLS[name]:
        keys = [jax.random.key(i, impl=impl) for i in range(repeats + 1)]
        start = time.perf_counter()
        first = jax.block_until_ready(pl.random_dna(space, keys[-1], n=n))
        compile_ms = (time.perf_counter() - start) * 1e3
        space.validate(first)  # every sampled DNA fits the space
        key_note = "" if impl == "threefry2x32" else f", key impl={impl!r}"
        row(
            f"batched random DNA, JAX (jit){key_note}",
            "DNA/s",
            median_rate(
                lambda i, keys=keys: jax.block_until_ready(pl.random_dna(space, keys[i], n=n)),
                1,
                repeats,
                n,
            ),
            pg_random,
            note=f"n={n:,}; PyGlove: one at a time",
        )
        row(
            f"first batched JAX call (trace + compile + run){key_note}",
            "ms",
            compile_ms,
            None,
            note=f"n={n:,}; one run",
        )
    row(
        "batched random DNA, NumPy",
        "DNA/s",
        median_rate(lambda i: pl.random_dna(space, i, n=n), 1, repeats, n),
        pg_random,
        note=f"n={n:,}; PyGlove: one at a time",
    )
    return info, rows


def run(repeats: int, quick: bool) -> dict[str, Any]:
    pl_count, pg_count = (50, 1) if quick else (300, 2)
    load_before = os.getloadavg()
    spaces, rows = [], []
    for name in SPACES:
        info, r = bench_space(name, repeats, quick, pl_count, pg_count)
        spaces.append(info)
        rows.extend(r)
    return {
        "repeats": repeats,
        "quick": quick,
        "batch": {k: v // 10 if quick else v for k, v in BATCH.items()},
        "iterations_per_repeat": {"pliant": pl_count, "pyglove": pg_count},
        "spaces": spaces,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": {"before": load_before[0], "after": os.getloadavg()[0]},
        "jax": jax.__version__,
        "jax_backend": jax.default_backend(),
        "numpy": np.__version__,
        "pyglove": pg.__version__,
        "pliant": pl.__version__,
        "results": rows,
    }


def _fmt(x: float | None, unit: str) -> str:
    if x is None:
        return "—"
    if unit == "ms":
        return f"{x:.3f}"
    return f"{x:,.0f}" if x >= 100 else f"{x:.2f}"


def table(report: dict[str, Any]) -> str:
    desc = "; ".join(
        f"{s['space']}: {s['decisions']} decisions ({s['conditional_decisions']} conditional, "
        f"{s['float_decisions']} float), size {s['size']}"
        for s in report["spaces"]
    )
    load = report["load_average"]
    lines = [
        f"Spaces {desc}. Median of {report['repeats']} repeats"
        f"{' (--quick)' if report['quick'] else ''}; Python {report['python']}, JAX "
        f"{report['jax']} ({report['jax_backend']}), PyGlove {report['pyglove']}, pliant "
        f"{report['pliant']}; {report['cpus']} CPUs, 1-min load average {load['before']:.2f} "
        f"before, {load['after']:.2f} after.",
        "",
        "| space | operation | unit | pliant | PyGlove | pliant speed-up | target (A) | note |",
        "|---|---|---|---:|---:|---:|---|---|",
    ]
    for r in report["results"]:
        speedup = "—" if r["speedup"] is None else f"{r['speedup']:,.1f}x"
        target = "" if r["target"] is None else f"{r['target']} {'✓' if r['met'] else '✗'}"
        lines.append(
            f"| {r['space']} | {r['operation']} | {r['unit']} | {_fmt(r['pliant'], r['unit'])} "
            f"| {_fmt(r['pyglove'], r['unit'])} | {speedup} | {target} | {r['note']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, help="timed runs per operation (default 5, 2 quick)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a fast smoke run: fewer iterations, batches 10x smaller",
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
