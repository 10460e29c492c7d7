"""Overhead of pliant's search algorithms next to PyGlove's, on one 50-decision space.

The space is A of ``dna_overhead.py``: ``net([block([layer(op=oneof(OPS), width=oneof(WIDTHS))
x 5]) x 5])``, 50 decisions of 8 candidates, written once as plain functions and symbolized by
both libraries (``pl.space`` of the pliant value, ``pg.dna_spec`` of the PyGlove one). The
reward is cheap and synthetic: the sum of the candidate indices (for a multi-objective
algorithm, the sums over the op and over the width decisions), so the timings are the
algorithms' own overhead.

Each algorithm runs one search: a warm-up (for evolution: until the population is full, so the
timed steps are tournaments and mutations; it also calibrates how many steps a repeat takes),
then ``--repeats`` timed chunks of ``propose`` + ``feedback`` steps in a Python loop; the table
shows the median rate.

- pliant: every factory in ``pliant.algorithms`` among ``ALGORITHMS`` that exists when the
  script runs (looked up by name, so new algorithms join the table without edits), driven with
  host keys from ``pl.algorithms.keys(seed)``;
- PyGlove: ``pg.geno.Random(seed=...)`` and ``pg.evolution.regularized_evolution(...)`` driven
  directly with ``setup(spec)``, ``propose()`` and ``feedback(dna, reward)``. PyGlove's mutator
  draws from Python's global ``random``, which is seeded first;
- each traceable pliant algorithm (REINFORCE, random search) also runs as one jitted
  ``lax.scan`` with JAX keys: proposals per second excluding compilation, and the compile time.

Before timing, the script checks that every proposal fits the space (PyGlove's through
``pliant.spaces.from_pg_dna``), and that pliant's evolution beats random search on the reward.
The machine's load average is printed with the table: the medians are only comparable on an
otherwise idle (or equally loaded) machine.

Run: ``python benchmarks/algorithm_overhead.py [--repeats N] [--json PATH] [--quick]``.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import platform
import random
import statistics
import sys
import time
import types
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pyglove as pg

import pliant as pl
from pliant.spaces.pyglove import from_pg_dna

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
POPULATION, TOURNAMENT = 50, 10  # pliant's defaults, passed to both libraries
QUICK_POPULATION, QUICK_TOURNAMENT = 10, 5

# Looked up in pliant.algorithms when the script runs; the missing ones are listed as such.
ALGORITHMS = ("random", "regularized_evolution", "reinforce", "nsga2", "grid", "sequence", "dedup")
MULTI_OBJECTIVE = frozenset({"nsga2"})
TARGETS = {"regularized_evolution": 20_000.0}  # host proposals/s (from the issue)


# The plain user code: both libraries symbolize exactly these.
def layer(op, width):
    return (op, width)


def block(layers):
    return tuple(layers)


def net(blocks):
    return tuple(blocks)


def space_a(symbolize: Callable[[Any], Any], oneof: Callable[[Any], Any]) -> Any:
    lay, blk, nt = symbolize(layer), symbolize(block), symbolize(net)
    return nt(
        [
            blk([lay(op=oneof(OPS), width=oneof(WIDTHS)) for _ in range(LAYERS)])
            for _ in range(BLOCKS)
        ]
    )


# ----------------------------------------------------------------------------------------------
# Finding and driving pliant's algorithms.


def find_factory(name: str) -> Callable[..., Any] | None:
    """``pl.algorithms.<name>``, or the same-named factory of module ``pliant.algorithms.<name>``."""
    obj = getattr(pl.algorithms, name, None)
    if obj is None:
        try:
            obj = importlib.import_module(f"pliant.algorithms.{name}")
        except ModuleNotFoundError:
            return None
    if isinstance(obj, types.ModuleType):  # a submodule not re-exported (yet)
        obj = getattr(obj, name, None)
    return obj if callable(obj) else None


def _evolution(quick: bool) -> Any:
    if quick:
        return pl.algorithms.regularized_evolution(QUICK_POPULATION, QUICK_TOURNAMENT)
    return pl.algorithms.regularized_evolution(POPULATION, TOURNAMENT)


# How to build each algorithm: (label, recipe(factory, quick)); others are built as factory().
RECIPES: dict[str, tuple[str, Callable[[Callable[..., Any], bool], Any]]] = {
    "regularized_evolution": ("regularized_evolution", lambda f, quick: _evolution(quick)),
    "sequence": (
        "sequence(random, then regularized_evolution)",
        lambda f, quick: f(
            (pl.algorithms.random(), QUICK_POPULATION if quick else POPULATION),
            (_evolution(quick), None),
        ),
    ),
    "dedup": ("dedup(regularized_evolution)", lambda f, quick: f(_evolution(quick))),
}


def make_algorithm(name: str, factory: Callable[..., Any], quick: bool) -> tuple[str, Any]:
    """Returns ``(label, algorithm)``; raises if the factory's signature is not the expected one."""
    label, recipe = RECIPES.get(name, (name, lambda f, quick: f()))
    return label, recipe(factory, quick)


def pl_reward(name: str, index: np.ndarray) -> Any:
    if name in MULTI_OBJECTIVE:
        return (float(index[0::2].sum()), float(index[1::2].sum()))
    return float(index.sum())


def pl_runner(name: str, algo: Any, space: pl.Space, seed: int) -> Callable[[int], float]:
    """Returns ``run(steps) -> best reward so far``, continuing one search across calls."""
    keys = pl.algorithms.keys(seed)
    state = algo.init(space, next(keys))
    best = [-np.inf]

    def run(steps: int) -> float:
        nonlocal state
        for _ in range(steps):
            dna, state = algo.propose(state, next(keys))
            reward = pl_reward(name, dna.index)
            state = algo.feedback(state, dna, reward)
            total = reward if type(reward) is float else sum(reward)
            if total > best[0]:
                best[0] = total
        return best[0]

    return run


def pg_runner(algo: Any, spec: Any) -> Callable[[int], float]:
    algo.setup(spec)
    best = [-np.inf]

    def run(steps: int) -> float:
        for _ in range(steps):
            dna = algo.propose()
            reward = float(sum(dna.to_numbers()))
            algo.feedback(dna, reward)
            if reward > best[0]:
                best[0] = reward
        return best[0]

    return run


# ----------------------------------------------------------------------------------------------
# Checks and timing.


def check(space: pl.Space, spec: Any, algos: dict[str, Any], quick: bool) -> None:
    """Proposals fit the space in both libraries; evolution beats random search on the reward."""
    assert len(space) == len(spec.decision_points) == 2 * BLOCKS * LAYERS
    assert space.size == spec.space_size
    for name, algo in algos.items():
        keys = pl.algorithms.keys(1)
        state = algo.init(space, next(keys))
        for _ in range(3):
            dna, state = algo.propose(state, next(keys))
            space.validate(dna)
            state = algo.feedback(state, dna, pl_reward(name, dna.index))
    random.seed(0)
    for algo in (pg.geno.Random(seed=1), pg_evolution(quick)):
        algo.setup(spec)
        for _ in range(2):
            dna = algo.propose()
            space.validate(from_pg_dna(space, dna))
            algo.feedback(dna, float(sum(dna.to_numbers())))
    steps = 300 if quick else 1_000
    evolution = pl_runner("regularized_evolution", algos["regularized_evolution"], space, 2)
    uniform = pl_runner("random", algos["random"], space, 2)
    best_evolution, best_random = evolution(steps), uniform(steps)
    assert best_evolution > best_random, (best_evolution, best_random)


def pg_evolution(quick: bool) -> Any:
    if quick:
        return pg.evolution.regularized_evolution(
            population_size=QUICK_POPULATION, tournament_size=QUICK_TOURNAMENT, seed=1
        )
    return pg.evolution.regularized_evolution(
        population_size=POPULATION, tournament_size=TOURNAMENT, seed=1
    )


def median_rate(
    run: Callable[[int], float], warmup: int, repeats: int, seconds: float
) -> dict[str, Any]:
    """Warms ``run`` up, then times ``repeats`` chunks of about ``seconds`` each."""
    run(warmup)
    probe = max(1, warmup // 10)
    start = time.perf_counter()
    run(probe)
    per_step = (time.perf_counter() - start) / probe
    steps = int(min(50_000, max(3, seconds / max(per_step, 1e-9))))
    rates, best = [], -np.inf
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        best = run(steps)
        rates.append(steps / (time.perf_counter() - start))
    return {"rate": statistics.median(rates), "steps_per_repeat": steps, "best_reward": best}


def scan_rate(name: str, algo: Any, space: pl.Space, steps: int, repeats: int) -> dict[str, Any]:
    """Proposals/s of a jitted ``lax.scan`` of propose + feedback, and its compile time."""
    multi = name in MULTI_OBJECTIVE

    def step(state: Any, key: Any) -> tuple[Any, Any]:
        dna, state = algo.propose(state, key)
        index = dna.index.astype(jnp.float32)
        reward = jnp.stack([index[0::2].sum(), index[1::2].sum()]) if multi else jnp.sum(index)
        return algo.feedback(state, dna, reward), jnp.sum(reward)

    def search(state: Any, keys: Any) -> tuple[Any, Any]:
        return jax.lax.scan(step, state, keys)

    state = algo.init(space, jax.random.key(0))
    keys = [jax.random.split(jax.random.key(i + 1), steps) for i in range(repeats)]
    start = time.perf_counter()
    compiled = jax.jit(search).lower(state, keys[0]).compile()
    compile_s = time.perf_counter() - start
    rates, rewards = [], []
    for k in keys:  # one search, continued across repeats
        gc.collect()
        start = time.perf_counter()
        state, r = jax.block_until_ready(compiled(state, k))
        rates.append(steps / (time.perf_counter() - start))
        rewards.append(np.asarray(r))
    tenth = max(1, steps // 10)
    return {
        "rate": statistics.median(rates),
        "compile_ms": compile_s * 1e3,
        "steps_per_repeat": steps,
        "mean_reward_first_tenth": float(rewards[0][:tenth].mean()),
        "mean_reward_last_tenth": float(rewards[-1][-tenth:].mean()),
    }


def run(repeats: int, quick: bool) -> dict[str, Any]:
    seconds = 0.05 if quick else 0.3
    scan_steps = 1_000 if quick else 10_000
    population = QUICK_POPULATION if quick else POPULATION
    load_before = os.getloadavg()
    space = pl.space(space_a(pl.symbolize, pl.oneof))
    spec = pg.dna_spec(space_a(pg.symbolize, pg.oneof))
    factories = {name: find_factory(name) for name in ALGORITHMS}
    algos, labels, skipped = {}, {}, {}
    for name, factory in factories.items():
        if factory is None:
            continue
        try:
            labels[name], algos[name] = make_algorithm(name, factory, quick)
        except (TypeError, ValueError) as e:  # the factory's signature changed: say so, go on
            skipped[name] = f"{type(e).__name__}: {e}"
    check(space, spec, algos, quick)

    random.seed(0)
    pg_rates = {
        "random": median_rate(pg_runner(pg.geno.Random(seed=1), spec), 3, repeats, 4 * seconds),
        "regularized_evolution": median_rate(
            pg_runner(pg_evolution(quick), spec), population + 5, repeats, 4 * seconds
        ),
    }
    rows = []
    for name, algo in algos.items():
        timed = median_rate(pl_runner(name, algo, space, 0), 2 * population, repeats, seconds)
        theirs = pg_rates.get(name)
        target = TARGETS.get(name)
        rows.append(
            {
                "algorithm": labels[name],
                "mode": "host loop, int keys",
                "pliant_per_s": timed["rate"],
                "pyglove_per_s": None if theirs is None else theirs["rate"],
                "speedup": None if theirs is None else timed["rate"] / theirs["rate"],
                "target_per_s": target,
                "met": None if target is None else timed["rate"] >= target,
                "pliant_steps_per_repeat": timed["steps_per_repeat"],
                "pyglove_steps_per_repeat": None if theirs is None else theirs["steps_per_repeat"],
                "pliant_best_reward": timed["best_reward"],
                "pyglove_best_reward": None if theirs is None else theirs["best_reward"],
            }
        )
    scans = []
    for name, algo in algos.items():
        if getattr(algo, "traceable", False):
            timed = scan_rate(name, algo, space, scan_steps, repeats)
            scans.append({"algorithm": labels[name], **timed})
    return {
        "repeats": repeats,
        "quick": quick,
        "space": {"decisions": len(space), "candidates": 8, "size": str(space.size)},
        "population_size": population,
        "tournament_size": QUICK_TOURNAMENT if quick else TOURNAMENT,
        "missing": [name for name, f in factories.items() if f is None],
        "skipped": skipped,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": {"before": load_before[0], "after": os.getloadavg()[0]},
        "jax": jax.__version__,
        "jax_backend": jax.default_backend(),
        "pyglove": pg.__version__,
        "pliant": pl.__version__,
        "results": rows,
        "scan": scans,
    }


def _rate(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:,.0f}" if x >= 100 else f"{x:.2f}"


def table(report: dict[str, Any]) -> str:
    load = report["load_average"]
    missing = ", ".join(report["missing"]) or "none"
    skipped = "".join(f" Skipped {k} ({v})." for k, v in report["skipped"].items())
    lines = [
        f"Space: {report['space']['decisions']} decisions x {report['space']['candidates']} "
        f"candidates; evolution with population {report['population_size']}, tournament "
        f"{report['tournament_size']} (both libraries); median of {report['repeats']} repeats"
        f"{' (--quick)' if report['quick'] else ''}; Python {report['python']}, JAX "
        f"{report['jax']} ({report['jax_backend']}), PyGlove {report['pyglove']}, pliant "
        f"{report['pliant']}; {report['cpus']} CPUs, 1-min load average {load['before']:.2f} "
        f"before, {load['after']:.2f} after. Not in pliant.algorithms: {missing}.{skipped}",
        "",
        "| algorithm | mode | pliant propose+feedback/s | PyGlove /s | pliant speed-up | target |",
        "|---|---|---:|---:|---:|---|",
    ]
    for r in report["results"]:
        speedup = "—" if r["speedup"] is None else f"{r['speedup']:,.0f}x"
        target = ""
        if r["target_per_s"] is not None:
            target = f">= {r['target_per_s']:,.0f}/s {'✓' if r['met'] else '✗'}"
        lines.append(
            f"| {r['algorithm']} | {r['mode']} | {_rate(r['pliant_per_s'])} "
            f"| {_rate(r['pyglove_per_s'])} | {speedup} | {target} |"
        )
    for s in report["scan"]:
        lines.append(
            f"| {s['algorithm']} | jit(lax.scan) of {s['steps_per_repeat']:,} steps, JAX keys "
            f"(compile {s['compile_ms']:,.0f} ms, excluded; mean reward "
            f"{s['mean_reward_first_tenth']:.0f} -> {s['mean_reward_last_tenth']:.0f}) "
            f"| {_rate(s['rate'])} | — | — | |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, help="timed runs per algorithm (default 5, 2 quick)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    parser.add_argument(
        "--quick", action="store_true", help="a fast smoke run: shorter runs, population 10"
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
