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
            *,
            rngs: nnx.Rngs,
        ):
            sizes = [64, *hidden]
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
    optimizer = nnx.Optimizer(model, optax.adam(config.learning_rate), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, x, y):
        def loss_fn(model):
            logits = model(x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    @nnx.jit
    def predict(model, x):
        return jnp.argmax(model(x), axis=-1)

    x_train, y_train = data["train"]
    rng = np.random.default_rng(seed)
    batch = config.batch_size
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(x_train))
        for i in range(0, len(order) - batch + 1, batch):
            idx = order[i : i + batch]
            step(model, optimizer, jnp.asarray(x_train[idx]), jnp.asarray(y_train[idx]))
    model.eval()
    out = {}
    for split in splits:
        x, y = data[split]
        out[split] = float(np.mean(np.asarray(jax.device_get(predict(model, jnp.asarray(x)))) == y))
    return out


def main(argv: list[str] | None = None) -> int:
    """Runs the demo search and prints the best architecture and its test accuracy."""
    parser = argparse.ArgumentParser(prog="pliant demo", description=__doc__)
    parser.add_argument("--budget", type=int, default=12, help="number of trials")
    parser.add_argument("--epochs", type=int, default=15, help="training epochs per trial")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    space_value = search_space()
    space = pl.space(space_value)
    print(
        f"search space: {len(space.slots)} decisions "
        f"({', '.join(s.name or s.id for s in space.slots)})"
    )
    data = load_digits_splits(args.seed)
    best: tuple[float, Any] | None = None
    start = time.perf_counter()
    for trial, dna in enumerate(pl.random_dna(space, args.seed, args.budget)):
        config = pl.materialize(space_value, dna)
        t0 = time.perf_counter()
        acc = train_and_score(config, data, epochs=args.epochs, seed=args.seed)["val"]
        if best is None or acc > best[0]:
            best = (acc, config)
        print(
            f"trial {trial + 1:3d}/{args.budget}  val_acc={acc:.4f}  best={best[0]:.4f}  "
            f"({time.perf_counter() - t0:4.1f} s)  {dna.to_dict()}",
            flush=True,
        )
    assert best is not None
    test = train_and_score(
        best[1], data, epochs=args.epochs, seed=args.seed, splits=("val", "test")
    )
    print(
        f"\nbest architecture after {args.budget} trials "
        f"({time.perf_counter() - start:.0f} s):\n{best[1]}"
    )
    print(f"validation accuracy {test['val']:.4f}, test accuracy {test['test']:.4f}")
    return 0
