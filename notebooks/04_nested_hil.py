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
# # Nested hardware-in-the-loop search
#
# Two levels of search in one store. The outer search picks how the model is served on this
# machine: the batch size of a call and the precision (`float32` or `bfloat16`) of its weights
# and inputs. For each outer choice, an inner search looks for the MLP architecture (widths,
# activation, learning rate) that is best *for that setting*: every candidate is trained on
# scikit-learn's digits, scored on a validation split and its forward pass is timed here with
# `pl.nn.measure_latency`. The inner reward is MnasNet's soft-constrained accuracy,
# `accuracy * min(1, target / latency) ** 0.3`, with the latency per example; the outer
# trial's reward is its inner search's best.
#
# The spaces, the latency measurement and the reward come from
# `examples/nested_hil_search.py` (which searches the input resolution instead); the model
# and its training loop from `pliant/demo.py`. `PLIANT_NOTEBOOK_BUDGET=ci` runs two outer
# trials of two short inner trials; `full` (the default) all six settings.

# %%
import os
import sys
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt

import pliant as pl
from pliant.demo import load_digits_splits, train_and_score

root = Path.cwd() if (Path.cwd() / "examples").is_dir() else Path.cwd().parent
sys.path.insert(0, str(root / "examples"))
import nested_hil_search as hil  # noqa: E402

FULL = os.environ.get("PLIANT_NOTEBOOK_BUDGET", "full") != "ci"
OUTER_BUDGET, INNER_BUDGET, EPOCHS = (6, 6, 10) if FULL else (2, 2, 1)
TARGET_US = 2.0  # latency target, µs per example
print(f"{OUTER_BUDGET} outer trials x {INNER_BUDGET} inner trials, {EPOCHS} epochs each")

# %% [markdown]
# ## The two spaces
#
# The outer space holds the serving-side decisions; the inner one is the example's
# architecture space at the digits' full 8x8 resolution.

# %%
outer_space = {"batch_size": pl.oneof([1, 32, 256]), "dtype": pl.oneof(["float32", "bfloat16"])}
print(pl.space(outer_space))
print(pl.space(hil.arch_space(8)))

# %% [markdown]
# ## The search
#
# Training does not depend on the serving setting, so each architecture is trained once and
# its validation accuracy reused; the latency is measured anew for every setting. Each outer
# trial runs its inner search with `trial.search(...)`, which stores it in the same SQLite
# file as study `hil/<outer trial id>`.

# %%
data = load_digits_splits(seed=0)
accuracy_cache: dict[str, float] = {}


def accuracy(config):
    key = repr(config)  # the symbolic value prints every argument
    if key not in accuracy_cache:
        accuracy_cache[key] = train_and_score(config, data, epochs=EPOCHS)["val"]
    return accuracy_cache[key]


def outer(hw, trial):
    batch, dtype = hw["batch_size"], hw["dtype"]

    def evaluate_arch(config):
        acc = accuracy(config)
        per_example = hil.latency_us(config, 64, batch_size=batch, dtype=dtype) / batch
        return {
            "reward": hil.soft_reward(acc, per_example, TARGET_US),
            "accuracy": acc,
            "latency_us": per_example,
        }

    algo = pl.algorithms.dedup(pl.algorithms.regularized_evolution(4, 2))
    inner = trial.search(hil.arch_space(8), evaluate_arch, algo, INNER_BUDGET)
    best = inner.best
    print(
        f"outer {trial.id}: batch {batch:>3}, {dtype:>8} -> acc {best.metrics['accuracy']:.3f}, "
        f"{best.metrics['latency_us']:.2f} µs/example, reward {best.reward:.3f}"
    )
    return best.reward


store = os.path.join(tempfile.mkdtemp(), "hil.db")
start = time.perf_counter()
result = pl.search(outer_space, outer, pl.algorithms.grid(), OUTER_BUDGET, store=store, study="hil")
print(f"{time.perf_counter() - start:.1f} s; studies in the store:")
print(pl.open_store(store, readonly=True).studies())

# %% [markdown]
# ## The nested store
#
# `result.inner(trial)` opens the inner search an outer trial ran, as an ordinary `Result`.
# The outer trials with the best architecture each found:

# %%
rows = []
for record in result.records:
    best = result.inner(record.id).best
    rows.append(
        {
            **record.decisions,
            "reward": best.reward,
            "accuracy": best.metrics["accuracy"],
            "µs/example": best.metrics["latency_us"],
            "hidden": best.decisions["model.hidden"],
            "activation": best.decisions["model.activation"],
        }
    )
import pandas as pd  # noqa: E402

pd.DataFrame(rows).sort_values("reward", ascending=False).round(3)

# %% [markdown]
# And one inner study in full:

# %%
result.inner(result.best.id).dataframe()

# %% [markdown]
# ## Accuracy against latency
#
# Every architecture the inner searches tried, per serving setting (log scale; the dashed line
# is the target). At batch size 1 every model is far over the target, dominated by the cost of
# one call, so the penalty hardly tells the architectures apart; with larger batches the
# per-example cost of a wide network starts to count.

# %%
fig, ax = plt.subplots(figsize=(6.5, 4))
for record in result.records:
    trials = result.inner(record.id).dataframe()
    label = f"batch {record.decisions['batch_size']}, {record.decisions['dtype']}"
    points = ax.scatter(trials["latency_us"], trials["accuracy"], label=label, alpha=0.7)
    best = result.inner(record.id).best
    ax.scatter(
        best.metrics["latency_us"],
        best.metrics["accuracy"],
        marker="*",
        s=200,
        color=points.get_facecolor()[0],
        edgecolor="black",
    )
ax.axvline(TARGET_US, linestyle="--", color="gray")
ax.set_xscale("log")
ax.set_xlabel("latency on this machine (µs per example)")
ax.set_ylabel("validation accuracy")
ax.set_title("inner trials; ★ = each inner search's pick")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Kill a nested search at any point and call the same `pl.search` again with the same store:
# the outer study resumes, the interrupted inner study finishes, and nothing already stored
# is re-run (`python examples/nested_hil_search.py --store /tmp/hil.db` shows it from a
# terminal; `--joint` compares with searching everything in one space).
