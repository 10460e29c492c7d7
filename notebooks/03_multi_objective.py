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
# # Multi-objective and constrained search
#
# Accuracy is rarely the only thing that matters. This notebook searches the quick start's
# digits MLP for **accuracy and parameter count** at once with NSGA-II and plots the Pareto
# front, then searches under a **hard parameter budget** with TabNAS rejection sampling, which
# only ever proposes architectures within the budget.
# `PLIANT_NOTEBOOK_BUDGET=ci` runs a few short trials.

# %%
import os

import jax.numpy as jnp
from flax import nnx

import pliant as pl
from pliant import demo

FULL = os.environ.get("PLIANT_NOTEBOOK_BUDGET", "full") != "ci"
BUDGET, EPOCHS = (24, 8) if FULL else (3, 1)
space = demo.search_space()
data = demo.load_digits_splits(seed=0)


def evaluate(config):
    params = pl.nn.param_count(config.model.build(rngs=nnx.Rngs(0)))
    accuracy = demo.train_and_score(config, data, epochs=EPOCHS)["val"]
    return {"accuracy": accuracy, "params": params}


# %% [markdown]
# ## Two objectives: accuracy up, parameters down
#
# `objectives` names the metrics and their directions; a multi-objective algorithm
# (`pl.algorithms.nsga2`) ranks trials by Pareto dominance.

# %%
result = pl.search(
    space,
    evaluate,
    pl.algorithms.nsga2(population_size=8),
    budget=BUDGET,
    objectives={"accuracy": "max", "params": "min"},
)
front = result.pareto_front()
print(f"{len(front)} of {len(result.trials)} trials on the Pareto front")
for t in sorted(front, key=lambda t: t.metrics["params"]):
    print(f"{t.metrics['params']:>7} params  accuracy {t.metrics['accuracy']:.3f}  {t.decisions}")

# %%
fig = result.plot_pareto("params", "accuracy")

# %% [markdown]
# ## A hard budget: TabNAS rejection sampling
#
# TabNAS (Yang et al., 2022) trains a REINFORCE policy only on architectures that satisfy the
# constraint, and corrects the policy gradient for the rejected ones. The constraint is a
# function of the DNA: here the parameter count, which depends only on the hidden layer
# sizes (decision 0), looked up from a small table. It works on NumPy on the host and on
# `jax.numpy` inside the algorithm's compiled update.

# %%
LIMIT = 9_000
sp = pl.space(space)
counts = []
for label in sp.slots[0].literals:  # slot 0 is 'model.hidden'
    dna = sp.from_dict({**pl.random_dna(sp, 0).to_dict(), "model.hidden": label})
    counts.append(pl.nn.param_count(pl.materialize(space, dna).model.build(rngs=nnx.Rngs(0))))
print("parameters per hidden-size candidate:", counts)
table = jnp.asarray(counts)


def within_budget(dna):
    return table[dna.index[..., 0]] <= LIMIT


tabnas = pl.algorithms.rejection_sampling(pl.algorithms.reinforce(), within_budget)
constrained = pl.search(space, evaluate, tabnas, budget=BUDGET, objectives="accuracy")
df = constrained.dataframe()
print("largest model proposed:", df["params"].max(), "parameters; limit", LIMIT)
assert df["params"].max() <= LIMIT
df.sort_values("accuracy", ascending=False).head(5)
