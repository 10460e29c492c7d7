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
# # Weight sharing (TuNAS) on a small supernet
#
# Instead of training every candidate, one supernet holds the weights of all the MLPs in the
# space (1 to 3 hidden layers of 8 to 128 units each) and a controller learns which child to
# sample. Each step of `pl.nn.weight_sharing_search` samples a child, trains the shared
# weights on it, scores the same child on a validation batch and updates the controller with
# TuNAS's reward `accuracy - beta * |params / target - 1|`; steps run in one jitted
# `lax.scan`. The found child is then retrained from scratch and compared with the largest
# child of the space, trained the same way.
#
# The space, data split, parameter count and retraining recipe are those of
# `examples/tunas_digits.py`. `PLIANT_NOTEBOOK_BUDGET=ci` runs 200 search steps and a short
# retraining; `full` (the default) 1500 steps and 60 epochs.

# %%
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import jax.numpy as jnp
import matplotlib.pyplot as plt

import pliant as pl

root = Path.cwd() if (Path.cwd() / "examples").is_dir() else Path.cwd().parent
sys.path.insert(0, str(root / "examples"))
import tunas_digits  # noqa: E402

FULL = os.environ.get("PLIANT_NOTEBOOK_BUDGET", "full") != "ci"
STEPS, EPOCHS = (1500, 60) if FULL else (200, 10)
TARGET = 3000.0  # parameters
print(f"{STEPS} search steps, retraining for {EPOCHS} epochs")

# %% [markdown]
# ## The space and its cost
#
# `pliant.spaces.library.mlp_space` is a symbolic MLP whose depth and per-layer widths are
# `pl.oneof` decisions; `mlp_param_cost` counts a child's parameters from its DNA inside
# `jax.jit`, which is what the controller's reward needs.

# %%
train, val, test = tunas_digits.load_splits(seed=0)
value, space, cost = tunas_digits.search_space()
print(space)
smallest = pl.algorithms.extreme_dna(space, "smallest")
largest = pl.algorithms.extreme_dna(space, "largest")
print(f"parameters: {float(cost(smallest)):.0f} (smallest) to {float(cost(largest)):.0f} (largest)")

# %% [markdown]
# ## The search
#
# The controller's probabilities are written to a JSON log every `log_every` steps (the
# same history is in `result.history`).

# %%
log = os.path.join(tempfile.mkdtemp(), "tunas.json")
start = time.perf_counter()
result = pl.nn.weight_sharing_search(
    value,
    train,
    val,
    cost=cost,
    target=TARGET,
    steps=STEPS,
    log_every=STEPS // 20,
    log=log,
    seed=0,
)
print(f"{time.perf_counter() - start:.1f} s ({result.compile_seconds:.1f} s in the first call)")
print(f"found: {result.value}")
print(f"parameters: {result.cost:.0f} (target {TARGET:.0f})")

# %% [markdown]
# ## The controller over time
#
# One panel per decision: the probability of each candidate after every logged chunk of
# steps, read back from the JSON log. Over the first quarter of the steps (TuNAS's warm-up,
# when the shared weights train on children drawn uniformly) the probabilities stay where they
# started. The width decisions of a depth only matter when that depth is sampled, so the widths
# of depths the controller has given up stop moving.

# %%
history = json.loads(Path(log).read_text())["history"]
steps = [entry["step"] for entry in history]
names = list(history[0]["probabilities"])
fig, axes = plt.subplots(2, 4, figsize=(13, 5.5), sharex=True)
for ax, name in zip(axes.flat, names):
    labels = (
        [f"{d} layer{'s' if d > 1 else ''}" for d in tunas_digits.DEPTHS]
        if name == "hidden"
        else [str(w) for w in tunas_digits.WIDTHS]
    )
    probs = [entry["probabilities"][name] for entry in history]
    for k, label in enumerate(labels[: len(probs[0])]):
        ax.plot(steps, [p[k] for p in probs], label=label)
    ax.set_ylim(0, 1)
    ax.set_title(name.replace("hidden.candidates", "widths"), fontsize=9)
    ax.legend(fontsize=7)
axes.flat[-1].plot(steps, [e["expected_cost"] for e in history], color="black")
axes.flat[-1].axhline(TARGET, linestyle="--", color="gray")
axes.flat[-1].set_title("expected parameters (target dashed)", fontsize=9)
axes.flat[-1].set_ylim(0, None)
for ax in axes[1]:
    ax.set_xlabel("step")
axes[0, 0].set_ylabel("probability")
axes[1, 0].set_ylabel("probability")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Retrained from scratch
#
# The found architecture and the largest child of the space, each built anew and trained on
# train + validation with the same recipe (Adam, minibatch 64), then tested once on the
# held-out split.

# %%
both = (jnp.concatenate([train[0], val[0]]), jnp.concatenate([train[1], val[1]]))
rows = []
for name, dna in {"found by TuNAS": result.dna, "largest child": largest}.items():
    child = pl.materialize(value, dna)
    accuracy = tunas_digits.retrain(child, both, test, epochs=EPOCHS)
    rows.append(
        {
            "": name,
            "hidden": list(child.hidden),
            "parameters": int(cost(dna)),
            "test accuracy": round(accuracy, 4),
        }
    )
import pandas as pd  # noqa: E402

pd.DataFrame(rows).set_index("")
