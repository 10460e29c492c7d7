"""A nested hardware-in-the-loop search on scikit-learn's digits, in one resumable store.

Outer level: the input resolution (the 8x8 digits downsampled to 4x4 or 6x6, or kept) and a
latency target. Inner level, once per outer trial: an architecture search of a small Flax NNX
MLP (the model and training loop of ``pliant/demo.py``), each candidate trained, scored on a
validation split and timed on this machine with ``pliant.nn.cost.measure_latency``. The inner
reward is MnasNet's soft-constrained accuracy, ``accuracy * min(1, target / latency) ** w``; the
outer trial's reward is its inner search's best. The outer sweep therefore traces how accuracy
and latency trade off against resolution and target.

Joint search (all decisions in one space) is pliant's default and what NAHAS found better; this
example shows the nested form, for when the outer decision is expensive to change (new data
pipeline, new hardware). Both levels live in one SQLite file: ``hil`` and ``hil/0`` ...
``hil/5``. Kill it at any moment and run the same command again: it finishes the interrupted
inner study and goes on with the outer one.

    python examples/nested_hil_search.py --store /tmp/hil.db [--joint]

``--joint`` then runs the joint form too, per latency target with as many trials as the nested
form spent on it, and prints the best reward of each side by side. Latencies are measured on a
CPU that may be shared: expect noise of tens of µs between runs.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import pliant as pl
from pliant.demo import _model_class, load_digits_splits, train_and_score

CLASSIFIER = _model_class()
LATENCY_BATCH = 256  # examples per timed call: large enough that compute, not dispatch, shows
SOFTNESS = 0.3  # w in accuracy * min(1, target / latency) ** w


def outer_space() -> Any:
    """Hardware-side decisions: input resolution and a latency target (µs per batch)."""
    return {"resolution": pl.oneof([4, 6, 8]), "target_us": pl.oneof([100.0, 250.0])}


def arch_space(resolution: int) -> Any:
    """The inner architecture space for one input resolution."""
    return pl.freeze(
        {
            "model": CLASSIFIER(
                hidden=pl.oneof([[16], [64], [256], [64, 64], [256, 128]]),
                activation=pl.oneof(["relu", "tanh"]),
                dropout=0.0,
                inputs=resolution * resolution,
            ),
            "learning_rate": pl.floatv(3e-3, 3e-2, scale="log"),
            "batch_size": 64,
        }
    )


def joint_space() -> Any:
    """Resolution and architecture in one space (the joint form): one branch per resolution."""
    branches = [
        {"resolution": r, "model": arch_space(r)["model"]}
        for r in outer_space()["resolution"].candidates
    ]
    return pl.freeze(
        {
            "data": pl.oneof(branches),
            "learning_rate": pl.floatv(3e-3, 3e-2, scale="log"),
            "batch_size": 64,
        }
    )


def downsample(data: dict[str, Any], resolution: int) -> dict[str, Any]:
    """The digits at ``resolution`` x ``resolution`` (bilinear, from the 8x8 originals)."""
    import jax
    import numpy as np

    if resolution == 8:
        return data
    out = {}
    for split, (x, y) in data.items():
        images = jax.image.resize(x.reshape(-1, 8, 8), (len(x), resolution, resolution), "linear")
        out[split] = (np.asarray(images).reshape(len(x), -1), y)
    return out


def latency_us(
    config: Any, inputs: int, *, batch_size: int = LATENCY_BATCH, dtype: str = "float32"
) -> float:
    """Median latency of the model's forward pass on this machine, in µs per batch.

    ``dtype`` is the precision of the input and of the weights during the timed calls (the
    model is trained in float32 either way).
    """
    from flax import nnx

    from pliant.nn.cost import measure_latency

    model = config.model.build(rngs=nnx.Rngs(0))
    model.eval()
    lat = measure_latency(model, input_shape=(inputs,), batch_size=batch_size, dtype=dtype, runs=15)
    return lat.median * 1e6


def soft_reward(accuracy: float, latency: float, target: float) -> float:
    """MnasNet's soft-constrained reward: ``accuracy * min(1, target / latency) ** SOFTNESS``."""
    return accuracy * min(1.0, target / latency) ** SOFTNESS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=os.path.join("/tmp", "nested_hil.db"))
    parser.add_argument("--inner-budget", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument(
        "--joint",
        action="store_true",
        help="also run the joint search (same number of trials per target) and compare",
    )
    args = parser.parse_args(argv)
    data = load_digits_splits(seed=0)
    start = time.perf_counter()
    cache: dict[int, dict[str, Any]] = {}

    def score(config: Any, resolution: int, target: float) -> dict[str, float]:
        if resolution not in cache:
            cache[resolution] = downsample(data, resolution)
        accuracy = train_and_score(config, cache[resolution], epochs=args.epochs)["val"]
        latency = latency_us(config, resolution * resolution)
        return {
            "reward": soft_reward(accuracy, latency, target),
            "accuracy": accuracy,
            "latency_us": latency,
        }

    def outer(hw: Any, trial: Any) -> float:
        resolution, target = hw["resolution"], hw["target_us"]

        def evaluate_arch(config: Any) -> dict[str, float]:
            return score(config, resolution, target)

        algo = pl.algorithms.dedup(pl.algorithms.regularized_evolution(4, 2))
        inner = trial.search(arch_space(resolution), evaluate_arch, algo, args.inner_budget)
        best = inner.best
        print(
            f"outer {trial.id}: {resolution}x{resolution}, target {target:.0f} µs -> "
            f"acc {best.metrics['accuracy']:.3f}, {best.metrics['latency_us']:.0f} µs, "
            f"reward {best.reward:.3f} ({inner.study}: {len(inner.records)} trials)",
            flush=True,
        )
        return best.reward

    result = pl.search(
        outer_space(), outer, pl.algorithms.grid(), 6, store=args.store, study="hil", seed=0
    )
    print(f"\nstore {args.store}: studies {pl.open_store(args.store, readonly=True).studies()}")
    print(f"{'res':>4} {'target µs':>9} {'acc':>6} {'lat µs':>7} {'reward':>7}  best architecture")
    for record in result.records:
        inner = result.inner(record.id)
        best = inner.best
        arch = best.decisions
        print(
            f"{record.decisions['resolution']:>4} {record.decisions['target_us']:>9.0f} "
            f"{best.metrics['accuracy']:>6.3f} {best.metrics['latency_us']:>7.0f} "
            f"{best.reward:>7.3f}  {arch}"
        )
    b = result.best
    print(f"\nbest outer trial: {b.decisions} reward {b.reward:.3f} (inner study {b.link})")
    print(f"wall time {time.perf_counter() - start:.1f} s")
    if args.joint:
        _joint(args, score, result)
    return 0


def _joint(args: Any, score: Any, nested: Any) -> None:
    """The joint form, per latency target, with as many trials as the nested form used."""
    start = time.perf_counter()
    targets = list(outer_space()["target_us"].candidates)
    per_target = len(nested.records) * args.inner_budget // len(targets)
    print(f"\njoint search: resolution and architecture together, {per_target} trials per target")
    print(f"{'target µs':>9} {'nested best':>11} {'joint best':>10}  joint's choice")
    for target in targets:

        def evaluate(example: Any, target: float = target) -> dict[str, float]:
            branch = example["data"]
            config = pl.freeze(
                {
                    "model": branch["model"],
                    "learning_rate": example["learning_rate"],
                    "batch_size": example["batch_size"],
                }
            )
            return score(config, branch["resolution"], target)

        algo = pl.algorithms.dedup(pl.algorithms.regularized_evolution(4, 2))
        joint = pl.search(
            joint_space(), evaluate, algo, per_target, store=args.store, study=f"joint/{target:g}"
        )
        nested_best = max(
            nested.inner(r.id).best.reward
            for r in nested.records
            if r.decisions["target_us"] == target
        )
        b, value = joint.best, joint.best_value()
        model = value["data"]["model"]
        print(
            f"{target:>9.0f} {nested_best:>11.3f} {b.reward:>10.3f}  "
            f"{value['data']['resolution']}x{value['data']['resolution']} "
            f"hidden={list(model.hidden)} {model.activation}, "
            f"{b.metrics['accuracy']:.3f} acc, {b.metrics['latency_us']:.0f} µs"
        )
    print(f"joint wall time {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    raise SystemExit(main())
