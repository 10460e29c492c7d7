"""Overhead of pliant's symbolic trees next to PyGlove's, on the same plain functions and classes.

The same ~400-call tree (a network of 10 stages x 10 blocks x 3 layers, with lists and dicts) is
built twice: once through ``pl.symbolize`` and once through ``pg.symbolize`` of the very same
plain callables. Each operation is timed in the same process, side by side, as the median of
``--repeats`` runs of ``time.perf_counter``:

- build: calling the symbolized callables to make the tree;
- hash: a structural hash (``hash(tree)`` for pliant, ``pg.hash(tree)`` for PyGlove, whose plain
  ``hash`` is by identity). pliant caches hashes in nodes, so each repeat hashes a fresh tree;
- replace a deep leaf: ``pl.replace`` (functional: the input is unchanged) against PyGlove's
  functional equivalent ``clone(deep=True)`` + ``rebind``, and against PyGlove's plain in-place
  ``rebind`` (which mutates the tree, so it does less work than a functional replace);
- JSON round trip: ``pl.from_json(pl.to_json(t))`` against
  ``pg.from_json_str(pg.to_json_str(t))``;
- equality of two equal, separately built trees (``==`` for pliant, ``pg.eq`` for PyGlove).

Run: ``python benchmarks/symbolic_overhead.py [--repeats N] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pyglove as pg

import pliant as pl

STAGES, BLOCKS = 10, 10
DEEP_PATH = "stages[7].blocks[5].layers[0].features"


# The plain user code: both libraries symbolize exactly these.
def conv(features, kernel=3, stride=1, act="relu"):
    return ("conv", features, kernel, stride, act)


def norm(kind="batch", eps=1e-5):
    return ("norm", kind, eps)


def activation(fn="relu"):
    return ("act", fn)


class Block:
    def __init__(self, layers, config, residual=True):
        self.layers, self.config, self.residual = layers, config, residual


class Stage:
    def __init__(self, blocks, downsample=False):
        self.blocks, self.downsample = blocks, downsample


class Network:
    def __init__(self, stages, head):
        self.stages, self.head = stages, head


def symbolized(symbolize: Callable[[Any], Any]) -> SimpleNamespace:
    return SimpleNamespace(
        conv=symbolize(conv),
        norm=symbolize(norm),
        activation=symbolize(activation),
        Block=symbolize(Block),
        Stage=symbolize(Stage),
        Network=symbolize(Network),
    )


PL = symbolized(pl.symbolize)
PG = symbolized(pg.symbolize)


def make_tree(s: SimpleNamespace) -> Any:
    """The same construction code for both libraries."""
    stages = []
    for i in range(STAGES):
        width = 16 * (i + 1)
        blocks = [
            s.Block(
                layers=[
                    s.conv(width, kernel=3 if j % 2 else 5, stride=1),
                    s.norm("layer" if j % 3 else "batch"),
                    s.activation("gelu" if j % 2 else "relu"),
                ],
                config={"drop": 0.1 * j, "se": j % 2 == 0, "widths": [width, 2 * width]},
                residual=j > 0,
            )
            for j in range(BLOCKS)
        ]
        stages.append(s.Stage(blocks=blocks, downsample=i % 3 == 0))
    return s.Network(stages=stages, head=s.conv(10, kernel=1))


def median_ms(fn: Callable[[], Any], repeats: int, setup: Callable[[], Any] | None = None) -> float:
    """Median wall time of ``fn(setup())`` (or ``fn()``) in milliseconds; setup is not timed."""
    times = []
    for _ in range(repeats):
        arg = setup() if setup is not None else None
        gc.collect()
        start = time.perf_counter()
        fn(arg) if setup is not None else fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def pg_replace_functional(tree: Any, value: int) -> Any:
    new = tree.clone(deep=True)
    new.rebind({DEEP_PATH: value})
    return new


def check(pl_tree: Any, pg_tree: Any) -> dict[str, int]:
    """Sanity checks that both sides compute the same things; returns the tree's size."""
    assert pl.from_json(pl.to_json(pl_tree)) == pl_tree
    assert pg.eq(pg.from_json_str(pg.to_json_str(pg_tree)), pg_tree)
    assert pl_tree == make_tree(PL) and hash(pl_tree) == hash(make_tree(PL))
    assert pg.eq(pg_tree, make_tree(PG)) and pg.hash(pg_tree) == pg.hash(make_tree(PG))
    new = pl.replace(pl_tree, {DEEP_PATH: 999})
    assert pl.get(new, DEEP_PATH) == 999 and pl.get(pl_tree, DEEP_PATH) == 128
    new_pg = pg_replace_functional(pg_tree, 999)
    assert new_pg.sym_get(DEEP_PATH) == 999 and pg_tree.sym_get(DEEP_PATH) == 128
    values = list(pl.traverse(pl_tree))
    return {
        "calls": sum(isinstance(v, pl.Node) for _, v in values),
        "containers": sum(isinstance(v, pl.SymList | pl.SymDict | tuple) for _, v in values),
        "values": len(values),
    }


def run(repeats: int) -> dict[str, Any]:
    size = check(make_tree(PL), make_tree(PG))
    pl_tree, pg_tree = make_tree(PL), make_tree(PG)
    counter = iter(range(10**9))
    rows = [
        (
            "build tree",
            median_ms(lambda: make_tree(PL), repeats),
            median_ms(lambda: make_tree(PG), repeats),
        ),
        (
            "structural hash (fresh tree)",
            median_ms(hash, repeats, setup=lambda: make_tree(PL)),
            median_ms(pg.hash, repeats, setup=lambda: make_tree(PG)),
        ),
        (
            "replace deep leaf: pl.replace vs clone(deep=True)+rebind",
            median_ms(lambda: pl.replace(pl_tree, {DEEP_PATH: next(counter)}), repeats),
            median_ms(lambda: pg_replace_functional(pg_tree, next(counter)), repeats),
        ),
        (
            "replace deep leaf: pl.replace vs in-place rebind",
            median_ms(lambda: pl.replace(pl_tree, {DEEP_PATH: next(counter)}), repeats),
            median_ms(lambda: pg_tree.rebind({DEEP_PATH: next(counter)}), repeats),
        ),
        (
            "to_json + from_json",
            median_ms(lambda: pl.from_json(pl.to_json(pl_tree)), repeats),
            median_ms(lambda: pg.from_json_str(pg.to_json_str(pg_tree)), repeats),
        ),
        (
            "equality of two equal trees",
            median_ms(
                lambda pair: pair[0] == pair[1],
                repeats,
                setup=lambda: (make_tree(PL), make_tree(PL)),
            ),
            median_ms(
                lambda pair: pg.eq(pair[0], pair[1]),
                repeats,
                setup=lambda: (make_tree(PG), make_tree(PG)),
            ),
        ),
    ]
    return {
        "repeats": repeats,
        "tree": size,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "pyglove": pg.__version__,
        "pliant": pl.__version__,
        "results": [
            {"operation": op, "pliant_ms": a, "pyglove_ms": b, "ratio_pyglove_over_pliant": b / a}
            for op, a, b in rows
        ],
    }


def table(report: dict[str, Any]) -> str:
    lines = [
        f"Tree: {report['tree']['calls']} symbolic calls, {report['tree']['containers']} lists/"
        f"dicts, {report['tree']['values']} values in all; median of {report['repeats']} "
        f"repeats; Python {report['python']}, PyGlove {report['pyglove']}, pliant "
        f"{report['pliant']}.",
        "",
        "| operation | pliant ms | PyGlove ms | ratio PyGlove/pliant |",
        "|---|---:|---:|---:|",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['operation']} | {r['pliant_ms']:.3f} | {r['pyglove_ms']:.3f} "
            f"| {r['ratio_pyglove_over_pliant']:.1f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed runs per operation")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    report = run(args.repeats)
    print(table(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
