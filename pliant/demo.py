"""The main job: a real architecture search on scikit-learn's digits with a Flax NNX model.

The model below is ordinary Flax NNX code; the search space is that code with placeholders in
its arguments. Each trial materializes one architecture, builds it with ``rngs``, trains it with
optax, and is scored on a validation split; the best is then scored on the held-out test split.
"""

from __future__ import annotations

import argparse
import itertools
import time
from typing import Any

import pliant as pl


def _model_class() -> Any:
    from flax import nnx

    class Classifier(nnx.Module):
        """An MLP whose depth, widths, activation and dropout come from its arguments."""

        def __init__(
            self,
            hidden: list[int],
            activation: str,
            dropout: float,
            num_classes: int = 10,
            inputs: int = 64,
            *,
            rngs: nnx.Rngs,
        ):
            sizes = [inputs, *hidden]
            pairs = itertools.pairwise(sizes)
            self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in pairs])
            self.head = nnx.Linear(sizes[-1], num_classes, rngs=rngs)
            self.dropout = nnx.Dropout(dropout, rngs=rngs)
            self.act = getattr(nnx, activation)

        def __call__(self, x):
            for layer in self.layers:
                x = self.dropout(self.act(layer(x)))
            return self.head(x)

    return pl.symbolize(Classifier)


def search_space() -> Any:
    """The demo's search space: architecture and training choices in one symbolic value."""
    classifier = _model_class()
    return pl.freeze(
        {
            "model": classifier(
                hidden=pl.oneof([[32], [64], [128], [64, 64], [128, 64], [256, 128]]),
                activation=pl.oneof(["relu", "gelu", "tanh", "silu"]),
                dropout=pl.floatv(0.0, 0.4),
            ),
            "learning_rate": pl.floatv(3e-4, 3e-2, scale="log"),
            "batch_size": pl.oneof([32, 64, 128]),
        }
    )


def load_digits_splits(seed: int = 0) -> dict[str, Any]:
    """Digits (8×8 images, 10 classes) split into train / validation / test, scaled to [0, 1]."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    x_tmp, x_test, y_tmp, y_test = train_test_split(
        x, y, test_size=0.2, random_state=seed, stratify=y
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_tmp, y_tmp, test_size=0.25, random_state=seed, stratify=y_tmp
    )
    return {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}


def train_and_score(
    config: Any,
    data: dict[str, Any],
    *,
    epochs: int = 20,
    seed: int = 0,
    splits: tuple[str, ...] = ("val",),
) -> dict[str, float]:
    """Builds and trains one configuration; returns accuracy on the requested splits."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    from flax import nnx

    model = config.model.build(rngs=nnx.Rngs(seed))
    model.train()  # before split: the train/eval mode is part of the static graph definition
    optimizer = nnx.Optimizer(model, optax.adam(config.learning_rate), wrt=nnx.Param)
    graphdef, state = nnx.split((model, optimizer))

    def loss_fn(model: Any, x: Any, y: Any) -> Any:
        return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()

    @jax.jit
    def epoch(state: Any, xs: Any, ys: Any) -> Any:
        # One compiled call per epoch: the minibatch loop runs inside lax.scan.
        def body(state: Any, batch: Any) -> Any:
            model, optimizer = nnx.merge(graphdef, state)
            loss, grads = nnx.value_and_grad(loss_fn)(model, *batch)
            optimizer.update(model, grads)
            return nnx.state((model, optimizer)), loss

        return jax.lax.scan(body, state, (xs, ys))

    x_train, y_train = data["train"]
    rng = np.random.default_rng(seed)
    batch = config.batch_size
    steps = len(x_train) // batch
    for _ in range(epochs):
        order = rng.permutation(len(x_train))[: steps * batch].reshape(steps, batch)
        state, _ = epoch(state, jnp.asarray(x_train[order]), jnp.asarray(y_train[order]))
    nnx.update((model, optimizer), state)
    model.eval()
    out = {}
    for split in splits:
        x, y = data[split]
        predicted = np.asarray(jnp.argmax(model(jnp.asarray(x)), axis=-1))
        out[split] = float(np.mean(predicted == y))
    return out


ALGORITHMS = {
    "evolution": lambda: pl.algorithms.dedup(
        pl.algorithms.regularized_evolution(population_size=8, tournament_size=3)
    ),
    "random": pl.algorithms.random,
    "tpe": lambda: pl.algorithms.from_optuna(),
    "pyglove": lambda: pl.algorithms.from_pyglove(_pyglove_evolution),
}


def _pyglove_evolution() -> Any:
    import pyglove as pg

    return pg.evolution.regularized_evolution(population_size=8, tournament_size=3)


def main(argv: list[str] | None = None) -> int:
    """Runs the demo search and prints the best architecture and its test accuracy."""
    import os

    parser = argparse.ArgumentParser(prog="pliant demo", description=__doc__)
    parser.add_argument(
        "--algorithm",
        default="evolution",
        choices=sorted(_available()),
        help="search algorithm (one word swaps it)",
    )
    parser.add_argument("--budget", type=int, default=24, help="number of trials")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs per trial")
    parser.add_argument(
        "--store",
        default="pliant-demo/trials.db",
        help="SQLite store; re-running with the same store resumes",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    args = parser.parse_args(argv)

    space_value = search_space()
    space = pl.space(space_value)
    print(
        f"search space: {space.num_slots} decisions "
        f"({', '.join(s.name or s.id for s in space.slots)})"
    )
    data = load_digits_splits(args.seed)
    out_dir = os.path.dirname(args.store) or "."
    os.makedirs(out_dir, exist_ok=True)
    study = f"{args.algorithm}-seed{args.seed}"

    def evaluate(config: Any) -> dict[str, float]:
        t0 = time.perf_counter()
        acc = train_and_score(config, data, epochs=args.epochs, seed=args.seed)["val"]
        if not args.quiet:
            print(
                f"  val_acc={acc:.4f} ({time.perf_counter() - t0:4.1f} s) {_short(config)}",
                flush=True,
            )
        return {"accuracy": acc}

    start = time.perf_counter()
    result = pl.search(
        space_value,
        evaluate,
        ALGORITHMS[args.algorithm](),
        budget=args.budget,
        store=args.store,
        study=study,
        objectives={"accuracy": "max"},
        seed=args.seed,
        progress=False,
    )
    best = result.best
    if best is None:
        print("no trial completed; see the errors in the store")
        return 1
    config = result.best_value()
    test = train_and_score(config, data, epochs=args.epochs, seed=args.seed, splits=("val", "test"))
    history = os.path.join(out_dir, f"{study}-history.png")
    result.plot_history(path=history)
    print(
        f"\n{len(result.records)} trials of {args.algorithm} in "
        f"{time.perf_counter() - start:.0f} s (store: {args.store}, study: {study})"
    )
    print(f"best architecture (trial {best.id}):\n{config}")
    print(f"validation accuracy {test['val']:.4f}, test accuracy {test['test']:.4f}")
    print(f"history plot: {history}")
    return 0


def _short(config: Any) -> str:
    return " ".join(str(config).split())[:110]


def _available() -> list[str]:
    return list(ALGORITHMS)
