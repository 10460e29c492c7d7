"""Search quality on tabular benchmarks: pliant's algorithms next to PyGlove's and Optuna's.

Benchmarks (``pliant.benchmarks``): HPOLib FCNet (slice_localization, protein_structure,
naval_propulsion, parkinsons_telemonitoring; minimize validation MSE, regret on the incumbent's
MSE averaged over the 4 repeats) and NAS-Bench-Graph (cora, citeseer, pubmed; maximize
validation accuracy, report validation and test regret). The incumbent after n evaluations is
the config with the best *observed* value so far, as a user would pick it.

Each (algorithm, benchmark, seed) is one run of the largest budget; the smaller budgets read the
same run at their step (none of these algorithms knows the budget). Runs are independent and go
to ``--workers`` processes (spawn). Every run of a given seed draws the FCNet repeats from the
same seeded stream ``np.random.default_rng(seed)``.

How each algorithm is driven, as a user would run it:

- pliant algorithms (and PyGlove / Optuna through ``pl.algorithms.from_pyglove`` /
  ``from_optuna``): ``pl.sample(space, algo, budget, seed=seed, objectives=...)`` on the
  benchmark's placeholder space, in memory (no store);
- ``pyglove_re_native``: ``pg.sample`` over the same space written with ``pg.oneof``, with
  ``pg.evolution.regularized_evolution()`` (PyGlove's defaults), Python's ``random`` seeded
  before the run (its mutator draws from it);
- ``optuna_tpe_native``: ``study.optimize`` with ``TPESampler(seed=seed)`` (Optuna's defaults;
  multivariate in Optuna 5) over the same space in Optuna's define-by-run API.

Framework overhead is the wall time of a run minus the time spent in the table look-up (the
objective) and in the harness's own bookkeeping, per evaluation: proposing, materializing the
config, recording, feeding back. With several workers on a shared machine the timings contend;
use ``--workers 1`` for clean overhead numbers.

Run: ``python benchmarks/quality.py [--benchmarks ...] [--algorithms ...] [--budgets 100,300]
[--seeds 20] [--seeds-for ALGO=N,...] [--workers N] [--json PATH] [--plots DIR] [--quick]``;
``--from-json PATH [--plots DIR]`` re-prints the tables (and plots) of a saved report.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import importlib
import json
import math
import multiprocessing
import os
import platform
import random as pyrandom
import sys
import time
import types
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import pliant as pl
from pliant import benchmarks as B

SHORT = {
    "fcnet/slice_localization": "slice",
    "fcnet/protein_structure": "protein",
    "fcnet/naval_propulsion": "naval",
    "fcnet/parkinsons_telemonitoring": "parkinsons",
    "nasbench_graph/cora": "cora",
    "nasbench_graph/citeseer": "citeseer",
    "nasbench_graph/pubmed": "pubmed",
}
DEFAULT_BENCHMARKS = tuple(SHORT)
QUICK_BENCHMARKS = ("fcnet/naval_propulsion", "nasbench_graph/cora")
QUICK_ALGORITHMS = ("random", "re")


# ---------------------------------------------------------------------------------------------
# Algorithms


def _factory(name: str, *modules: str) -> Callable[..., Any] | None:
    """``pl.algorithms.<name>``, else ``<name>`` from one of its modules, if present.

    Other engineers' algorithms may live in ``pliant.algorithms`` before they are exported.
    """
    found = getattr(pl.algorithms, name, None)
    if callable(found) and not isinstance(found, types.ModuleType):
        return found
    for module in modules or (name,):
        try:
            found = getattr(importlib.import_module(f"pliant.algorithms.{module}"), name, None)
        except ImportError:
            continue
        if callable(found):
            return found
    return None


def _reinforce() -> pl.algorithms.Algorithm:
    factory = _factory("reinforce")
    if factory is None:
        raise ValueError("pl.algorithms.reinforce is not available in this checkout")
    return factory()


def _pyglove_re_adapter() -> pl.algorithms.Algorithm:
    import pyglove as pg

    return pl.algorithms.from_pyglove(lambda: pg.evolution.regularized_evolution())


def _pliant_algorithms() -> dict[str, Callable[[], pl.algorithms.Algorithm]]:
    A = pl.algorithms
    algos: dict[str, Callable[[], Any]] = {
        "random": A.random,
        "re": A.regularized_evolution,  # pliant's default: population 50, tournament 10
        "re+dedup": lambda: A.dedup(A.regularized_evolution()),
        "re20+dedup": lambda: A.dedup(A.regularized_evolution(20, 5)),
        "reinforce": _reinforce,
        "reinforce+dedup": lambda: A.dedup(_reinforce()),
    }
    neural_predictor = _factory("neural_predictor", "neural_predictor", "predictor")
    if neural_predictor is not None:  # another engineer's work in progress
        algos["neural_predictor"] = neural_predictor
    algos["pyglove_re"] = _pyglove_re_adapter
    algos["optuna_tpe"] = lambda: A.from_optuna()
    return algos


NATIVE = ("pyglove_re_native", "optuna_tpe_native")
DESCRIPTIONS = {
    "random": "pl.algorithms.random()",
    "re": "pl.algorithms.regularized_evolution() (population 50, tournament 10)",
    "re+dedup": "dedup(regularized_evolution())",
    "re20+dedup": "dedup(regularized_evolution(20, 5))",
    "reinforce": "reinforce() (lr 0.1, Adam, EMA baseline)",
    "reinforce+dedup": "dedup(reinforce())",
    "neural_predictor": "pl.algorithms.neural_predictor()",
    "pyglove_re": "from_pyglove(pg.evolution.regularized_evolution()) via pl.sample",
    "optuna_tpe": "from_optuna() (TPESampler defaults) via pl.sample",
    "pyglove_re_native": "pg.sample + pg.evolution.regularized_evolution() (population 100)",
    "optuna_tpe_native": "study.optimize + TPESampler(seed) (defaults)",
}


def available_algorithms() -> list[str]:
    """Every algorithm name this harness can run here."""
    return [*_pliant_algorithms(), *NATIVE]


# ---------------------------------------------------------------------------------------------
# The same spaces written for PyGlove and Optuna, as their users would write them


def _family(bench: B.TabularBenchmark) -> str:
    return bench.name.split("/")[0]


def _pg_space(bench: B.TabularBenchmark) -> Any:
    import pyglove as pg

    from pliant.benchmarks import fcnet, nasbench_graph

    if _family(bench) == "fcnet":
        return pg.Dict(
            {
                name: pg.oneof(list(ph.args["candidates"]))
                for name, ph in fcnet.space_value().items()
            }
        )
    ops = list(bench.space_value["ops"][0].args["candidates"])
    return pg.Dict(
        link=pg.oneof(list(nasbench_graph.LINKS)),
        ops=pg.List([pg.oneof(ops) for _ in range(4)]),
    )


def _optuna_suggest(bench: B.TabularBenchmark) -> Callable[[Any], dict[str, Any]]:
    from pliant.benchmarks import fcnet, nasbench_graph

    if _family(bench) == "fcnet":
        choices = {name: list(ph.args["candidates"]) for name, ph in fcnet.space_value().items()}
        return lambda trial: {n: trial.suggest_categorical(n, c) for n, c in choices.items()}
    links = nasbench_graph.LINKS
    ops = list(bench.space_value["ops"][0].args["candidates"])

    def suggest(trial: Any) -> dict[str, Any]:
        # Optuna's categoricals hold scalars, so the link pattern is chosen by its position.
        link = links[trial.suggest_categorical("link", list(range(len(links))))]
        return {"link": link, "ops": [trial.suggest_categorical(f"op{i}", ops) for i in range(4)]}

    return suggest


# ---------------------------------------------------------------------------------------------
# One run


class _Clock:
    """Cumulative look-up / bookkeeping time, and the overhead at each step."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.outside = 0.0  # look-up + bookkeeping: not the framework's
        self.framework: list[float] = []

    def step(self) -> None:
        self.framework.append(time.perf_counter() - self.start - self.outside)


def run_one(algorithm: str, benchmark: str, seed: int, budget: int) -> dict[str, Any]:
    """Runs one search; returns regret curves, distinct points and overhead per step."""
    bench = B.load(benchmark)
    rng = np.random.default_rng(seed)
    metric, direction = bench.metric, bench.direction
    points: list[int] = []
    observed: list[float] = []
    if algorithm == "pyglove_re_native":
        clock = _run_pyglove_native(bench, seed, budget, rng, points, observed)
    elif algorithm == "optuna_tpe_native":
        clock = _run_optuna_native(bench, seed, budget, rng, points, observed)
    else:
        algos = _pliant_algorithms()
        if algorithm not in algos:
            raise ValueError(
                f"unknown algorithm {algorithm!r}; choose from {available_algorithms()}"
            )
        algo = algos[algorithm]()
        indices: list[np.ndarray] = []
        clock = _Clock()
        for example, feedback in pl.sample(
            bench.space_value, algo, budget, seed=seed, objectives={metric: direction}
        ):
            t = time.perf_counter()
            metrics = bench.objective(example, rng)
            indices.append(feedback.dna.index)
            observed.append(metrics[metric])
            clock.outside += time.perf_counter() - t
            status = feedback(metrics=metrics)
            if status != "complete":
                raise RuntimeError(f"{algorithm} on {benchmark}: trial {feedback.id} {status}")
            clock.step()
        points = bench.points(np.stack(indices)).tolist() if indices else []
    if len(points) != budget:
        raise RuntimeError(f"{algorithm} on {benchmark}: {len(points)} evaluations, not {budget}")
    curves = {
        kind: B.incumbent_regret(bench, points, observed, kind).tolist() for kind in bench.regrets
    }
    return {
        "algorithm": algorithm,
        "benchmark": benchmark,
        "seed": seed,
        "regret": curves,
        "points": points,
        "framework_s": clock.framework,
    }


def _run_pyglove_native(
    bench: B.TabularBenchmark, seed: int, budget: int, rng: Any, points: list, observed: list
) -> _Clock:
    import pyglove as pg

    space = _pg_space(bench)
    sign = 1.0 if bench.direction == "max" else -1.0
    pyrandom.seed(seed)  # PyGlove's evolution and mutator draw from Python's global random
    clock = _Clock()
    for example, feedback in pg.sample(space, pg.evolution.regularized_evolution(), budget):
        t = time.perf_counter()
        value = bench.objective(example, rng)[bench.metric]
        points.append(bench.point(example))
        observed.append(value)
        clock.outside += time.perf_counter() - t
        feedback(sign * value)
        clock.step()
    return clock


def _run_optuna_native(
    bench: B.TabularBenchmark,
    seed: int,
    budget: int,
    rng: Any,
    points: list,
    observed: list,
    sampler: Any = None,
) -> _Clock:
    """``study.optimize`` with Optuna's TPE (default settings), or the ``sampler`` given."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    suggest = _optuna_suggest(bench)
    clock = _Clock()
    study = optuna.create_study(
        direction="maximize" if bench.direction == "max" else "minimize",
        sampler=sampler or optuna.samplers.TPESampler(seed=seed),
    )

    def objective(trial: Any) -> float:
        config = suggest(trial)
        t = time.perf_counter()
        value = bench.objective(config, rng)[bench.metric]
        points.append(bench.point(config))
        observed.append(value)
        clock.outside += time.perf_counter() - t
        return value

    study.optimize(objective, n_trials=budget, callbacks=[lambda study, trial: clock.step()])
    return clock


def _run_task(task: tuple[str, str, int, int]) -> dict[str, Any]:
    return run_one(*task)


# ---------------------------------------------------------------------------------------------
# Aggregation


def _stats(x: Sequence[float]) -> dict[str, float]:
    a = np.asarray(x, dtype=np.float64)
    se = float(a.std(ddof=1) / math.sqrt(a.size)) if a.size > 1 else 0.0
    return {"mean": float(a.mean()), "se": se, "median": float(np.median(a)), "n": int(a.size)}


def _overhead_ms(framework_s: Sequence[float], budget: int) -> float:
    """Framework ms per evaluation over evaluations 2..budget (the first one is setup)."""
    if budget < 2:
        return 1e3 * framework_s[0]
    return 1e3 * (framework_s[budget - 1] - framework_s[0]) / (budget - 1)


def _ranks(values: Sequence[float]) -> list[float]:
    """Ranks, 1 = lowest; ties share their average rank."""
    a = np.asarray(values, dtype=np.float64)
    order = np.argsort(a, kind="stable")
    ranks = np.empty(a.size)
    i = 0
    while i < a.size:
        j = i
        while j + 1 < a.size and a[order[j + 1]] == a[order[i]]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks.tolist()


def _average_ranks(
    cells: dict[str, dict[str, Any]], algorithms: Sequence[str], benchmarks: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Per algorithm and regret kind, its rank by mean regret averaged over the benchmarks
    that report that kind (ties share a rank)."""
    ranks: dict[str, dict[str, list[float]]] = {a: {} for a in algorithms}
    for kind in ("val", "test"):
        for b in [b for b in benchmarks if kind in cells[algorithms[0]][b]]:
            for a, r in zip(algorithms, _ranks([cells[a][b][kind]["mean"] for a in algorithms])):
                ranks[a].setdefault(kind, []).append(r)
    return {a: {kind: float(np.mean(v)) for kind, v in ranks[a].items()} for a in algorithms}


def aggregate(
    runs: list[dict[str, Any]],
    algorithms: Sequence[str],
    benchmarks: Sequence[str],
    budgets: Sequence[int],
) -> dict[str, Any]:
    """Summary statistics per budget, algorithm and benchmark, ranks, overhead and curves."""
    by: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in runs:
        by.setdefault((r["algorithm"], r["benchmark"]), []).append(r)
    kinds = {b: list(B.load(b).regrets) for b in benchmarks}
    summary: dict[str, Any] = {}
    for budget in budgets:
        cells: dict[str, dict[str, Any]] = {}
        for a in algorithms:
            cells[a] = {}
            for b in benchmarks:
                rs = by.get((a, b), [])
                cell: dict[str, Any] = {
                    kind: _stats([r["regret"][kind][budget - 1] for r in rs]) for kind in kinds[b]
                }
                cell["distinct"] = _stats([len(set(r["points"][:budget])) for r in rs])
                cell["overhead_ms"] = _stats([_overhead_ms(r["framework_s"], budget) for r in rs])
                cell["first_ms"] = _stats([1e3 * r["framework_s"][0] for r in rs])
                cells[a][b] = cell
        summary[str(budget)] = {
            "cells": cells,
            "average_rank": _average_ranks(cells, algorithms, benchmarks),
            "overhead_ms": {
                a: float(np.mean([cells[a][b]["overhead_ms"]["mean"] for b in benchmarks]))
                for a in algorithms
            },
            "first_ms": {
                a: float(np.mean([cells[a][b]["first_ms"]["mean"] for b in benchmarks]))
                for a in algorithms
            },
        }
    curves = {
        a: {
            b: {
                kind: {
                    "mean": np.mean([r["regret"][kind] for r in by[(a, b)]], axis=0).tolist(),
                    "se": (
                        np.std([r["regret"][kind] for r in by[(a, b)]], axis=0, ddof=1)
                        / math.sqrt(len(by[(a, b)]))
                    ).tolist()
                    if len(by[(a, b)]) > 1
                    else [0.0] * len(by[(a, b)][0]["regret"][kind]),
                }
                for kind in kinds[b]
            }
            for b in benchmarks
            if (a, b) in by
        }
        for a in algorithms
    }
    return {"budgets": summary, "curves": curves}


# ---------------------------------------------------------------------------------------------
# Output


def _fmt(s: dict[str, float]) -> str:
    return f"{s['mean']:.3g} ± {s['se']:.2g} ({s['median']:.3g})"


def tables(report: dict[str, Any]) -> str:
    """The markdown tables of a report."""
    cfg = report["config"]
    benchmarks, algorithms = cfg["benchmarks"], cfg["algorithms"]
    nbg = [b for b in benchmarks if b.startswith("nasbench_graph/")]
    other = cfg.get("seeds_for") or {}
    fewer = "".join(f", {n} for {a}" for a, n in other.items())
    lines = [
        f"Search quality: {cfg['seeds']} seeds per cell{fewer}; mean regret ± standard error (median); "
        f"average rank over the benchmarks (1 = best, by mean regret); framework overhead in ms "
        f"per evaluation (wall time outside the table look-up, evaluations 2..budget; the first "
        f"one, with setup and compilation, is shown apart; {cfg['workers']} worker(s) on "
        f"{cfg['cpus']} CPUs). Python {cfg['python']}, pliant {cfg['pliant']}, PyGlove "
        f"{cfg['pyglove']}, Optuna {cfg['optuna']} (TPE defaults: multivariate in Optuna 5).",
        "",
    ]
    for note in dict.fromkeys(cfg["notes"].values()):
        lines.append(f"> {note}")
    lines.append("")
    for budget in cfg["budgets"]:
        s = report["results"]["budgets"][str(budget)]
        cols = [SHORT.get(b, b) for b in benchmarks]
        lines += [
            f"### {budget} evaluations: validation regret",
            "",
            "| algorithm | "
            + " | ".join(cols)
            + " | avg rank | overhead ms/eval | first eval ms |",
            "|---|" + "---:|" * (len(cols) + 3),
        ]
        for a in algorithms:
            row = [_fmt(s["cells"][a][b]["val"]) for b in benchmarks]
            rank = s["average_rank"][a].get("val", float("nan"))
            lines.append(
                f"| {a} | "
                + " | ".join(row)
                + f" | {rank:.2f} | {s['overhead_ms'][a]:.2f} | {s['first_ms'][a]:.0f} |"
            )
        lines.append("")
        if nbg:
            lines += [
                f"### {budget} evaluations: NAS-Bench-Graph test regret (of the incumbent "
                f"picked on validation accuracy)",
                "",
                "| algorithm | " + " | ".join(SHORT.get(b, b) for b in nbg) + " | avg rank |",
                "|---|" + "---:|" * (len(nbg) + 1),
            ]
            for a in algorithms:
                row = [_fmt(s["cells"][a][b]["test"]) for b in nbg]
                rank = s["average_rank"][a].get("test", float("nan"))
                lines.append(f"| {a} | " + " | ".join(row) + f" | {rank:.2f} |")
            lines.append("")
        lines += [
            f"Distinct points among the first {budget} evaluations (mean over seeds): "
            + "; ".join(
                f"{a} "
                + "/".join(f"{s['cells'][a][b]['distinct']['mean']:.0f}" for b in benchmarks)
                for a in algorithms
            ),
            "",
        ]
    lines.append(
        "Algorithms: " + "; ".join(f"`{a}` = {DESCRIPTIONS.get(a, a)}" for a in algorithms)
    )
    return "\n".join(lines)


def merge(reports: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One report from several runs of disjoint algorithms (e.g. slow routes run apart).

    The benchmarks and budgets must agree; average ranks are recomputed over all algorithms.
    """
    if not reports:
        raise ValueError("merge: no reports")
    first = reports[0]["config"]
    algorithms: list[str] = []
    seeds: dict[str, int] = {}
    for r in reports:
        cfg = r["config"]
        for field in ("benchmarks", "budgets"):
            if cfg[field] != first[field]:
                raise ValueError(
                    f"merge: reports disagree on {field}: {first[field]} vs {cfg[field]}"
                )
        for a in cfg["algorithms"]:
            if a in algorithms:
                raise ValueError(f"merge: algorithm {a!r} is in more than one report")
            algorithms.append(a)
            seeds[a] = (cfg.get("seeds_for") or {}).get(a, cfg["seeds"])
    common = max(set(seeds.values()), key=list(seeds.values()).count)
    results: dict[str, Any] = {"budgets": {}, "curves": {}}
    for r in reports:
        results["curves"].update(r["results"]["curves"])
    benchmarks = first["benchmarks"]
    for budget in first["budgets"]:
        parts = [r["results"]["budgets"][str(budget)] for r in reports]
        cells = {a: c for p in parts for a, c in p["cells"].items()}
        results["budgets"][str(budget)] = {
            "cells": cells,
            "average_rank": _average_ranks(cells, algorithms, benchmarks),
            "overhead_ms": {a: v for p in parts for a, v in p["overhead_ms"].items()},
            "first_ms": {a: v for p in parts for a, v in p["first_ms"].items()},
        }
    config = dict(first)
    config.update(
        algorithms=algorithms,
        seeds=common,
        seeds_for={a: n for a, n in seeds.items() if n != common},
        wall_s=sum(r["config"]["wall_s"] for r in reports),
        descriptions={a: DESCRIPTIONS.get(a, a) for a in algorithms},
        merged_from=[
            {k: r["config"][k] for k in ("algorithms", "workers", "wall_s", "platform")}
            for r in reports
        ],
    )
    return {
        "config": config,
        "results": results,
        "runs": [run for r in reports for run in r.get("runs", [])],
    }


def goals(
    report: dict[str, Any],
    default: str = "neural_predictor",
    peers: Sequence[str] = ("pyglove_re", "optuna_tpe"),
    reference: str = "re",
    within: int = 60,
) -> str:
    """The issue's goals, checked per benchmark: ``default`` below every peer's mean regret at
    each budget, and ``default``'s mean curve reaching ``reference``'s regret at the largest
    budget within ``within`` evaluations."""
    cfg, res = report["config"], report["results"]
    missing = [a for a in (default, *peers, reference) if a not in cfg["algorithms"]]
    if missing:
        return f"Goals not checked: no results for {', '.join(missing)}."
    benchmarks, budgets = cfg["benchmarks"], cfg["budgets"]
    head = [f"{default} < {' and '.join(peers)} at {b}" for b in budgets]
    lines = [
        f"### Goals ({default})",
        "",
        "| benchmark | " + " | ".join(head) + f" | evals to {reference}@{budgets[-1]} |",
        "|---|" + "---:|" * (len(head) + 1),
    ]
    met = dict.fromkeys(head, 0)
    reached = 0
    for b in benchmarks:
        row = []
        for h, budget in zip(head, budgets):
            cells = res["budgets"][str(budget)]["cells"]
            mine = cells[default][b]["val"]["mean"]
            ok = all(mine < cells[p][b]["val"]["mean"] for p in peers)
            met[h] += ok
            row.append("yes" if ok else "no")
        target = res["budgets"][str(budgets[-1])]["cells"][reference][b]["val"]["mean"]
        curve = np.asarray(res["curves"][default][b]["val"]["mean"])
        hit = np.flatnonzero(curve <= target)
        n = int(hit[0]) + 1 if hit.size else None
        reached += n is not None and n <= within
        row.append("never" if n is None else f"{n}" + (" (yes)" if n <= within else ""))
        lines.append(f"| {SHORT.get(b, b)} | " + " | ".join(row) + " |")
    total = len(benchmarks)
    lines.append(
        "| met on | "
        + " | ".join(f"{met[h]}/{total}" for h in head)
        + f" | {reached}/{total} within {within} |"
    )
    return "\n".join(lines)


def plots(report: dict[str, Any], directory: str) -> list[str]:
    """One PNG per benchmark: regret vs evaluations, mean ± s.e. per algorithm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(directory, exist_ok=True)
    cfg, curves = report["config"], report["results"]["curves"]
    written = []
    for b in cfg["benchmarks"]:
        kinds = list(B.load(b).regrets)
        fig, axes = plt.subplots(1, len(kinds), figsize=(6.5 * len(kinds), 4.5), squeeze=False)
        for ax, kind in zip(axes[0], kinds):
            for a in cfg["algorithms"]:
                if b not in curves.get(a, {}):
                    continue
                mean = np.asarray(curves[a][b][kind]["mean"])
                se = np.asarray(curves[a][b][kind]["se"])
                x = np.arange(1, mean.size + 1)
                style = "--" if a.startswith("pyglove") else ":" if a.startswith("optuna") else "-"
                n = (cfg.get("seeds_for") or {}).get(a, cfg["seeds"])
                (line,) = ax.plot(x, mean, style, label=f"{a} ({n} seeds)", lw=1.4)
                ax.fill_between(x, mean - se, mean + se, color=line.get_color(), alpha=0.15)
            ax.set_yscale("log")
            ax.set_xlabel("evaluations")
            label = (
                "mean val MSE regret (4 repeats)"
                if b.startswith("fcnet/")
                else f"{kind} accuracy regret"
            )
            ax.set_ylabel(label)
            ax.set_title(f"{b}: {kind} regret, mean ± s.e. over seeds")
            ax.grid(alpha=0.3, which="both")
        axes[0][-1].legend(fontsize=7)
        fig.tight_layout()
        path = os.path.join(directory, f"{b.replace('/', '_')}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


# ---------------------------------------------------------------------------------------------
# Driver


def _version(module: str) -> str:
    try:
        return importlib.import_module(module).__version__
    except ImportError:
        return "not installed"


def run(
    benchmarks: Sequence[str],
    algorithms: Sequence[str],
    budgets: Sequence[int],
    seeds: int,
    workers: int = 1,
    progress: bool = False,
    seeds_for: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Runs every (algorithm, benchmark, seed) and returns the report (config and results).

    ``seeds_for`` gives some algorithms another number of seeds (e.g. slow natives fewer).
    """
    known = available_algorithms()
    seeds_for = dict(seeds_for or {})
    for a in [*algorithms, *seeds_for]:
        if a not in known:
            raise ValueError(f"unknown algorithm {a!r}; choose from {known}")
    per_algo = {a: seeds_for.get(a, seeds) for a in algorithms}
    for b in benchmarks:
        B.load(b)  # fail early (unknown name, missing package or file)
    horizon = max(budgets)
    # Slow algorithms first, so that the pool ends with short tasks.
    cost = {
        "pyglove_re_native": 0,
        "pyglove_re": 1,
        "neural_predictor": 2,
        "optuna_tpe": 3,
        "optuna_tpe_native": 4,
    }
    tasks = [
        (a, b, seed, horizon)
        for a in sorted(algorithms, key=lambda a: cost.get(a, 9))
        for b in benchmarks
        for seed in range(per_algo[a])
    ]
    start = time.perf_counter()
    runs: list[dict[str, Any]] = []
    if workers == 1:
        for i, task in enumerate(tasks):
            runs.append(_run_task(task))
            if progress:
                print(f"[{i + 1}/{len(tasks)}] {task[:3]}", file=sys.stderr)
    else:
        # Runs are single-threaded; keep BLAS from oversubscribing the cores (spawned workers
        # inherit the environment, and read it when they import numpy).
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            futures = [pool.submit(_run_task, t) for t in tasks]
            for i, future in enumerate(cf.as_completed(futures)):
                runs.append(future.result())
                if progress:
                    r = runs[-1]
                    print(
                        f"[{i + 1}/{len(tasks)}] {r['algorithm']} {r['benchmark']} seed "
                        f"{r['seed']} ({time.perf_counter() - start:.0f} s)",
                        file=sys.stderr,
                    )
    runs.sort(key=lambda r: (r["algorithm"], r["benchmark"], r["seed"]))
    config = {
        "benchmarks": list(benchmarks),
        "algorithms": list(algorithms),
        "budgets": list(budgets),
        "seeds": seeds,
        "seeds_for": {a: n for a, n in per_algo.items() if n != seeds},
        "workers": workers,
        "cpus": os.cpu_count(),
        "wall_s": time.perf_counter() - start,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "pliant": pl.__version__,
        "pyglove": _version("pyglove"),
        "optuna": _version("optuna"),
        "notes": {b: B.load(b).note for b in benchmarks},
        "descriptions": {a: DESCRIPTIONS.get(a, a) for a in algorithms},
    }
    return {
        "config": config,
        "results": aggregate(runs, algorithms, benchmarks, budgets),
        "runs": [
            {k: r[k] for k in ("algorithm", "benchmark", "seed")}
            | {"final_regret": {k: v[-1] for k, v in r["regret"].items()}}
            | {
                "regret_at": {
                    str(b): {k: v[b - 1] for k, v in r["regret"].items()} for b in budgets
                }
            }
            for r in runs
        ],
    }


def _csv(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--benchmarks",
        help=f"comma-separated (default: {','.join(DEFAULT_BENCHMARKS)}); also 'all' for every table",
    )
    parser.add_argument("--algorithms", help="comma-separated (default: all available)")
    parser.add_argument("--budgets", help="comma-separated evaluation counts (default: 100,300)")
    parser.add_argument("--seeds", type=int, help="runs per cell (default: 20)")
    parser.add_argument(
        "--seeds-for", metavar="ALGO=N,...", help="other seed counts for some algorithms"
    )
    parser.add_argument("--workers", type=int, default=1, help="processes (spawn)")
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON here")
    parser.add_argument("--plots", metavar="DIR", help="write regret-vs-evaluations PNGs here")
    parser.add_argument(
        "--quick", action="store_true", help="2 seeds, budget 20, 2 algorithms, 2 benchmarks"
    )
    parser.add_argument("--progress", action="store_true", help="print each finished run")
    parser.add_argument(
        "--from-json",
        metavar="PATH",
        nargs="+",
        help="print the tables (and --plots) of saved reports, merged when several",
    )
    args = parser.parse_args(argv)
    if args.from_json:
        saved_reports = []
        for path in args.from_json:
            with open(path, encoding="utf-8") as f:
                saved_reports.append(json.load(f))
        try:
            saved = merge(saved_reports) if len(saved_reports) > 1 else saved_reports[0]
        except ValueError as e:
            parser.error(str(e))
        print(tables(saved))
        print()
        print(goals(saved))
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump(saved, f, indent=1)
        if args.plots:
            for path in plots(saved, args.plots):
                print(f"wrote {path}", file=sys.stderr)
        return saved
    if args.benchmarks == "all":
        benchmarks = list(B.NAMES)
    elif args.benchmarks:
        benchmarks = [b if "/" in b else _long(b) for b in _csv(args.benchmarks)]
    else:
        benchmarks = list(QUICK_BENCHMARKS if args.quick else DEFAULT_BENCHMARKS)
    algorithms = (
        _csv(args.algorithms)
        if args.algorithms
        else list(QUICK_ALGORITHMS if args.quick else available_algorithms())
    )
    try:
        budgets = sorted(
            {int(x) for x in _csv(args.budgets or ("20" if args.quick else "100,300"))}
        )
    except ValueError:
        parser.error(f"--budgets must be comma-separated ints, got {args.budgets!r}")
    seeds = args.seeds if args.seeds is not None else (2 if args.quick else 20)
    if seeds < 1 or not budgets or budgets[0] < 1 or args.workers < 1:
        parser.error("--seeds, --budgets and --workers must be positive")
    try:
        seeds_for = {
            k: int(v) for k, _, v in (x.partition("=") for x in _csv(args.seeds_for or ""))
        }
    except ValueError:
        parser.error(
            f"--seeds-for must look like 'pyglove_re_native=5,...', got {args.seeds_for!r}"
        )
    if any(n < 1 for n in seeds_for.values()):
        parser.error("--seeds-for counts must be positive")
    try:
        report = run(benchmarks, algorithms, budgets, seeds, args.workers, args.progress, seeds_for)
    except ValueError as e:
        parser.error(str(e))
    print(tables(report))
    print()
    print(goals(report))
    if args.plots:
        for path in plots(report, args.plots):
            print(f"wrote {path}", file=sys.stderr)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
    return report


def _long(short: str) -> str:
    for name, s in SHORT.items():
        if s == short:
            return name
    for name in B.NAMES:
        if name.split("/")[1] == short:
            return name
    return short


if __name__ == "__main__":
    main()
