"""TuNAS on scikit-learn's digits: a weight-sharing search for an MLP under a parameter target.

One supernet holds every MLP of the space (1 to 3 hidden layers of 8 to 128 units); one jitted
step samples a child from the controller, trains the shared weights on it, scores the same
child on a validation batch and updates the controller with TuNAS's reward
``Q + beta * |params / target - 1|``. The found child is then retrained from scratch on
train + validation and tested on a held-out split, next to the largest child trained the same
way. Runs in a few minutes on 2 CPU cores::

    JAX_PLATFORMS=cpu python examples/tunas_digits.py --steps 1500 --target 3000
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import pliant as pl
from pliant.spaces.library import mlp_param_cost, mlp_space

WIDTHS = (8, 16, 32, 64, 128)
DEPTHS = (1, 2, 3)


def load_splits(seed: int = 0) -> tuple[tuple[Any, Any], tuple[Any, Any], tuple[Any, Any]]:
    """Digits scaled to [0, 1], shuffled with ``seed``: 1000 train, 400 validation, 397 test."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x, y = (x / 16.0).astype(np.float32), y.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(y))
    x, y = jnp.asarray(x[order]), jnp.asarray(y[order])
    return (x[:1000], y[:1000]), (x[1000:1400], y[1000:1400]), (x[1400:], y[1400:])


def search_space() -> tuple[Any, pl.Space, Callable[[Any], Any]]:
    """The MLP space (symbolic value and compiled Space) and its in-jit parameter count."""
    value = mlp_space(64, 10, widths=WIDTHS, num_layers=DEPTHS)
    space = pl.space(value)
    return value, space, mlp_param_cost(space, 64, 10, widths=WIDTHS, num_layers=DEPTHS)


def retrain(value, train, test, *, epochs: int = 60, seed: int = 0) -> float:
    """Test accuracy of ``value`` built and trained from scratch (Adam, minibatch 64)."""
    model = value.build(rngs=nnx.Rngs(seed))
    opt = nnx.Optimizer(model, optax.adam(3e-3), wrt=nnx.Param)
    graphdef, state = nnx.split((model, opt))
    x, y = train
    nb = len(y) // 64

    @jax.jit
    def epoch(state, key):
        order = jax.random.permutation(key, len(y))[: nb * 64].reshape(nb, 64)

        def body(state, idx):
            model, opt = nnx.merge(graphdef, state)

            def loss_fn(m):
                logits = m(x[idx])
                return optax.softmax_cross_entropy_with_integer_labels(logits, y[idx]).mean()

            grads = nnx.grad(loss_fn)(model)
            opt.update(model, grads)
            return nnx.state((model, opt)), None

        return jax.lax.scan(body, state, order)[0]

    key = jax.random.key(seed)
    for e in range(epochs):
        state = epoch(state, jax.random.fold_in(key, e))
    model, _ = nnx.merge(graphdef, state)
    return float(jnp.mean(jnp.argmax(model(test[0]), -1) == test[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--target", type=float, default=3000.0, help="parameter target T0")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log", default=None, help="JSON log of the controller's probabilities")
    args = parser.parse_args()

    train, val, test = load_splits(args.seed)
    value, space, cost = search_space()
    t0 = time.perf_counter()
    result = pl.nn.weight_sharing_search(
        value,
        train,
        val,
        cost=cost,
        target=args.target,
        steps=args.steps,
        log_every=max(1, args.steps // 10),
        log=args.log,
        progress=True,
        seed=args.seed,
    )
    search_s = time.perf_counter() - t0
    print(f"\nsearch: {search_s:.1f} s ({result.compile_seconds:.1f} s in the first call)")
    print(f"found: {result.value}")
    print(f"parameters: {result.cost:.0f} (target {args.target:.0f})")
    both = (jnp.concatenate([train[0], val[0]]), jnp.concatenate([train[1], val[1]]))
    acc = retrain(result.value, both, test, seed=args.seed)
    largest = pl.materialize(value, pl.algorithms.extreme_dna(space, "largest"))
    acc_big = retrain(largest, both, test, seed=args.seed)
    big_cost = float(cost(pl.algorithms.extreme_dna(space, "largest")))
    print(f"test accuracy after retraining from scratch: {acc:.4f}")
    print(f"largest child ({big_cost:.0f} parameters), same recipe: {acc_big:.4f}")
    print(
        json.dumps(
            {
                "found": result.dna.to_dict(),
                "params": result.cost,
                "test_accuracy": acc,
                "largest_test_accuracy": acc_big,
            }
        )
    )


if __name__ == "__main__":
    main()
