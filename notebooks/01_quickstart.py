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
# # Quick start: search a Flax NNX model on digits
#
# A Flax NNX model becomes a search space when its constructor arguments are placeholders.
# This notebook searches depth, widths, activation, dropout, learning rate and batch size of
# an MLP on scikit-learn's digits, looks at the trials, then swaps the search algorithm in one
# line (regularized evolution, REINFORCE, Optuna's TPE) and compares them.
#
# The model and its training loop are the ones of `python -m pliant demo`
# (`pliant/demo.py`), imported rather than copied. `PLIANT_NOTEBOOK_BUDGET=ci` (what CI sets)
# runs a few short trials; `full` (the default) runs the budget the stored outputs come from.

# %%
import os
import time

import matplotlib.pyplot as plt
import numpy as np

import pliant as pl
from pliant import demo

FULL = os.environ.get("PLIANT_NOTEBOOK_BUDGET", "full") != "ci"
BUDGET, EPOCHS = (12, 10) if FULL else (3, 1)
print(f"budget {BUDGET} trials of {EPOCHS} epochs each")

# %% [markdown]
# ## The space: ordinary NNX code with placeholders
#
# `demo.search_space()` returns a symbolized `Classifier(nnx.Module)` whose arguments are
# `pl.oneof` / `pl.floatv` placeholders, next to the training choices. Printing it shows the
# symbolic value; `pl.space` compiles it into the decisions a search algorithm sees.

# %%
space = demo.search_space()
print(space)
print(pl.space(space))

# %% [markdown]
# ## Search
#
# The evaluation function gets one materialized example (`config.model` is a symbolic
# `Classifier(...)` with concrete arguments; `config.model.build(rngs=...)` makes the
# `nnx.Module`), trains it with optax and returns the validation accuracy.

# %%
data = demo.load_digits_splits(seed=0)


def evaluate(config):
    return demo.train_and_score(config, data, epochs=EPOCHS)["val"]


start = time.perf_counter()
result = pl.search(space, evaluate, pl.algorithms.regularized_evolution(8, 3), budget=BUDGET)
print(f"{time.perf_counter() - start:.1f} s; best validation accuracy {result.best.reward:.3f}")
result.best.decisions

# %% [markdown]
# Every trial, with its decisions and metrics, as a DataFrame:

# %%
result.dataframe().sort_values("reward", ascending=False).head(8)

# %%
fig = result.plot_history()

# %% [markdown]
# ## Swap the algorithm in one line
#
# Algorithms see only the DNA, so any of them runs any space. Here the same search with
# REINFORCE (a policy-gradient controller) and with Optuna's TPE through the
# `pl.algorithms.from_optuna()` adapter.

# %%
algorithms = {
    "regularized evolution": pl.algorithms.regularized_evolution(8, 3),
    "REINFORCE": pl.algorithms.reinforce(),
    "Optuna TPE": pl.algorithms.from_optuna(),
}
results = {"regularized evolution": result}
for name, algorithm in algorithms.items():
    if name not in results:
        results[name] = pl.search(space, evaluate, algorithm, budget=BUDGET)
for name, r in results.items():
    print(f"{name:>22}: best validation accuracy {r.best.reward:.3f}")

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, r in results.items():
    rewards = r.dataframe()["reward"].to_numpy(dtype=float)
    ax.plot(np.fmax.accumulate(np.nan_to_num(rewards, nan=0.0)), label=name)
ax.set_xlabel("trial")
ax.set_ylabel("best validation accuracy so far")
ax.legend()
plt.show()

# %% [markdown]
# ## The winner on the test split
#
# `result.best_value()` materializes the best trial's configuration from the space; train it
# again and score it once on the held-out test data.

# %%
best_name = max(results, key=lambda n: results[n].best.reward)
best = results[best_name].best_value()
print(best_name, best.model)
demo.train_and_score(best, data, epochs=EPOCHS, splits=("val", "test"))
