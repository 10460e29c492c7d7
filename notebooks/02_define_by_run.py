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
# # Define-by-run: tune an ordinary training function
#
# Not every search space is a model with placeholders. `pl.trace(fn)` turns a function that
# *asks* for its decisions through a handle (`h.oneof`, `h.floatv`, `h.intv`, `h.manyof`)
# into a search space, conditional decisions included: a decision asked for only under some
# candidates of an earlier one is active only there.
#
# Here the function trains a Flax NNX MLP on digits and chooses the optax optimizer, the
# learning-rate schedule and the width as it goes. `PLIANT_NOTEBOOK_BUDGET=ci` runs a few
# short trials.

# %%
import itertools
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import pliant as pl
from pliant import demo

FULL = os.environ.get("PLIANT_NOTEBOOK_BUDGET", "full") != "ci"
BUDGET, EPOCHS = (20, 10) if FULL else (3, 1)
data = demo.load_digits_splits(seed=0)

# %% [markdown]
# ## The training function
#
# `h.exploring` is True while pliant discovers the space (it runs the function once per
# candidate to find which decisions exist where); the function returns before training then.

# %%
BATCH = 64


def train(h):
    width = h.intv("width", 16, 128)
    depth = h.oneof("depth", [1, 2])
    lr = h.floatv("learning_rate", 1e-3, 1e-1, scale="log")
    schedule = h.oneof("schedule", ["constant", "cosine", "warmup_cosine"])
    if schedule == "warmup_cosine":  # only decided when the schedule has a warm-up
        warmup = h.floatv("warmup_fraction", 0.0, 0.3)
    name = h.oneof("optimizer", ["adam", "sgd"])
    if name == "sgd":  # only decided for SGD
        momentum = h.floatv("momentum", 0.0, 0.95)
    if h.exploring:
        return None

    x_train, y_train = data["train"]
    steps_per_epoch = len(x_train) // BATCH
    total = EPOCHS * steps_per_epoch
    if schedule == "constant":
        lr_fn = optax.constant_schedule(lr)
    elif schedule == "cosine":
        lr_fn = optax.cosine_decay_schedule(lr, total)
    else:
        lr_fn = optax.warmup_cosine_decay_schedule(0.0, lr, max(1, int(warmup * total)), total)
    tx = optax.adam(lr_fn) if name == "adam" else optax.sgd(lr_fn, momentum=momentum)

    sizes = [64] + [width] * depth + [10]
    model = nnx.Sequential(
        *[
            layer
            for a, b in itertools.pairwise(sizes)
            for layer in (nnx.Linear(a, b, rngs=nnx.Rngs(0)), nnx.relu)
        ][:-1]
    )
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    graphdef, state = nnx.split((model, optimizer))

    def loss_fn(model, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()

    @jax.jit
    def fit(state, xs, ys):  # every epoch and step in one compiled call
        def step(state, batch):
            model, optimizer = nnx.merge(graphdef, state)
            grads = nnx.grad(loss_fn)(model, *batch)
            optimizer.update(model, grads)
            return nnx.state((model, optimizer)), None

        return jax.lax.scan(step, state, (xs, ys))[0]

    rng = np.random.default_rng(0)
    order = np.concatenate([rng.permutation(len(x_train)) for _ in range(EPOCHS)])
    order = order[: total * BATCH].reshape(total, BATCH)
    state = fit(state, jnp.asarray(x_train[order]), jnp.asarray(y_train[order]))
    model, _ = nnx.merge(graphdef, state)
    x_val, y_val = data["val"]
    return float(jnp.mean(jnp.argmax(model(jnp.asarray(x_val)), -1) == y_val))


# %% [markdown]
# ## The space it defines
#
# `warmup_fraction` is conditioned on `schedule == 'warmup_cosine'` (candidate 2) and
# `momentum` on `optimizer == 'sgd'` (candidate 1).

# %%
traced = pl.trace(train)
sp = pl.space(traced)
for slot in sp.slots:
    print(f"{slot.id:>16}  conditions={slot.conditions}")

# %% [markdown]
# ## Search
#
# An example of a traced space is the function with its decisions fixed: calling it runs the
# training with them. Inactive decisions do not show up in the trial.

# %%
result = pl.search(traced, lambda run: run(), budget=BUDGET, seed=0)
df = result.dataframe()
df.sort_values("reward", ascending=False).head(8)

# %%
fig = result.plot_history()

# %%
print("best:", result.best.decisions, f"validation accuracy {result.best.reward:.3f}")
