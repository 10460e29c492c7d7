"""Does the supernet rank children like standalone training? Kendall tau per training strategy.

On scikit-learn's digits (train 1000 / validation 400 / test 397), the space is
``mlp_space(64, 10, widths=(8, 16, 32, 64, 128), num_layers=(1, 2))``: 30 children. Each child
is built with ``pl.materialize(...).build(...)`` and trained standalone with the recipe the
supernet uses (Adam 3e-3 with cosine decay, batch 64, label smoothing 0.1, ``--steps`` steps);
its validation accuracy is the ground truth. Then, per seed, one supernet is trained per
strategy with ``pl.nn.weight_sharing_search`` for the same number of steps:

- ``spos`` (uniform single path), ``fairnas`` (every width candidate once per step),
  ``sandwich`` (largest, smallest, 2 uniform; distillation from the largest);
- ``tunas`` with and without TuNAS's op / filter warm-up (cost: parameters, abs reward, target
  ``--target``; the controller's samples are what the weights train on).

Each child's accuracy under the shared weights (``supernet_accuracy``, batch statistics) is
ranked against its standalone accuracy: Kendall tau (MixPath reports ~0.6 on NAS-Bench-101;
FairNAS claims fairness raises it). The table quotes the median over seeds.

TuNAS vs random search at equal compute (its central question): TabNAS rejection (budget
``cost <= target``) runs ``--steps`` supernet steps and its child is retrained (the table's
standalone accuracy), about 2 standalone trainings of compute; random search gets the same
budget, 2 uniform feasible children trained standalone, best one kept. Its expected accuracy is
computed exactly over all pairs of feasible children. Both are shown as ratios to the best
feasible child (the oracle).

With ``--space mobile`` the space is ``mobile_space(8, in_channels=1, kernel_sizes=(3, 5))``
(two stages of two MobileNetV2 blocks on the 8×8 digit images: widths, kernel sizes,
expansions and skipped blocks) and ``--children`` distinct uniform children (default 30) are
ranked. Each is trained "standalone" through a fresh supernet driven by that child's fixed DNA:
the supernet computes exactly the child's function and its gradient reaches only the child's
slices (both tested in ``tests/nn/test_supernet.py``; Adam leaves never-touched weights at
zero update), so one compilation trains every child. The child's initial weights are slices of
the supernet's max-width initialization, and its accuracy is measured with batch statistics,
as the supernet's. There is no cost model there, so the TuNAS runs use the reward ``Q`` alone
and the TuNAS-vs-random comparison is left out.

Run: ``python benchmarks/supernet_ranking.py [--space mlp|mobile] [--steps N] [--seeds K]
[--children N] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import pliant as pl
from pliant.algorithms import kendall_tau
from pliant.spaces.dna import DNA
from pliant.spaces.library import mlp_param_cost, mlp_space, mobile_space
from pliant.spaces.sampling import iterate_dna

WIDTHS = (8, 16, 32, 64, 128)
DEPTHS = (1, 2)


def data(seed: int = 0) -> tuple:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x, y = (x / 16.0).astype(np.float32), y.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(y))
    x, y = jnp.asarray(x[order]), jnp.asarray(y[order])
    return (x[:1000], y[:1000]), (x[1000:1400], y[1000:1400]), (x[1400:], y[1400:])


def standalone(value: Any, train: tuple, val: tuple, steps: int, seed: int) -> float:
    """Validation accuracy of a child trained alone with the supernet's cpu recipe."""
    model = value.build(rngs=nnx.Rngs(seed))
    tx = optax.adam(optax.cosine_decay_schedule(3e-3, steps))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    opt = tx.init(params)
    x, y = train

    @jax.jit
    def run(params: Any, opt: Any, key: Any) -> Any:
        def step(carry: Any, k: Any) -> Any:
            params, opt = carry
            idx = jax.random.randint(k, (64,), 0, x.shape[0])

            def loss_fn(p: Any) -> Any:
                logits = nnx.merge(graphdef, p, rest)(x[idx])
                target = optax.smooth_labels(jax.nn.one_hot(y[idx], 10), 0.1)
                return optax.softmax_cross_entropy(logits, target).mean()

            grads = jax.grad(loss_fn)(params)
            updates, opt = tx.update(grads, opt, params)
            return (optax.apply_updates(params, updates), opt), None

        (params, opt), _ = jax.lax.scan(step, (params, opt), jax.random.split(key, steps))
        logits = nnx.merge(graphdef, params, rest)(val[0])
        return jnp.mean(jnp.argmax(logits, -1) == val[1])

    return float(run(params, opt, jax.random.key(seed)))


def as_images(split: tuple) -> tuple:
    return split[0].reshape(-1, 8, 8, 1), split[1]


def mobile_children(space: Any, n: int, seed: int = 0) -> list:
    """``n`` distinct uniform children (equal when they differ only in inactive slots)."""
    out, seen, i = [], set(), 0
    while len(out) < n:
        d = pl.random_dna(space, seed + i)
        i += 1
        key = tuple(np.where(np.asarray(d.active), np.asarray(d.index), -1).tolist())
        if key not in seen:
            seen.add(key)
            out.append(d)
        if i > 100 * n:
            raise ValueError(f"the space has fewer than {n} distinct children")
    return out


def standalone_fixed(value: Any, children: list, train: tuple, val: tuple, steps: int) -> Any:
    """Validation accuracy of each child trained alone, through a supernet on its fixed DNA."""
    net = pl.nn.supernet(value, rngs=nnx.Rngs(0))
    space = net.space
    graphdef, params0, rest = nnx.split(net, nnx.Param, ...)
    tx = optax.adam(optax.cosine_decay_schedule(3e-3, steps))
    x, y = train

    @jax.jit
    def run(index: Any, dvalue: Any, active: Any, key: Any) -> Any:
        dna = DNA(space, index, dvalue, active)

        def step(carry: Any, k: Any) -> Any:
            params, opt = carry
            idx = jax.random.randint(k, (64,), 0, x.shape[0])

            def loss_fn(p: Any) -> Any:
                logits = nnx.merge(graphdef, p, rest)(x[idx], dna)
                target = optax.smooth_labels(jax.nn.one_hot(y[idx], 10), 0.1)
                return optax.softmax_cross_entropy(logits, target).mean()

            grads = jax.grad(loss_fn)(params)
            updates, opt = tx.update(grads, opt, params)
            return (optax.apply_updates(params, updates), opt), None

        carry = (params0, tx.init(params0))
        (params, _), _ = jax.lax.scan(step, carry, jax.random.split(key, steps))
        logits = nnx.merge(graphdef, params, rest)(val[0], dna)
        return jnp.mean(jnp.argmax(logits, -1) == val[1])

    key = jax.random.key(0)
    return np.array(
        [
            float(run(jnp.asarray(d.index), jnp.asarray(d.value), jnp.asarray(d.active), key))
            for d in children
        ]
    )


def expected_best_of(accs: np.ndarray, k: int) -> float:
    """E[max of k uniform draws with replacement] (exact, by sorting)."""
    a = np.sort(accs)
    n = len(a)
    cdf = (np.arange(1, n + 1) / n) ** k
    return float(np.sum(a * np.diff(np.concatenate([[0.0], cdf]))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--target", type=float, default=3000.0)
    parser.add_argument("--json", default=None)
    parser.add_argument("--space", choices=["mlp", "mobile"], default="mlp")
    parser.add_argument("--children", type=int, default=30, help="children ranked (mobile)")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]

    train, val, _ = data()
    mobile = args.space == "mobile"
    cost: Any
    t0 = time.perf_counter()
    if mobile:
        train, val = as_images(train), as_images(val)
        value = mobile_space(8, in_channels=1, num_classes=10, kernel_sizes=(3, 5))
        space = pl.space(value)
        cost = None
        children = mobile_children(space, args.children)
        costs = np.zeros(len(children))
        truth = standalone_fixed(value, children, train, val, args.steps)
    else:
        value = mlp_space(64, 10, widths=WIDTHS, num_layers=DEPTHS)
        space = pl.space(value)
        cost = mlp_param_cost(space, 64, 10, widths=WIDTHS, num_layers=DEPTHS)
        children = list(iterate_dna(space))
        costs = np.array([float(cost(d)) for d in children])
        truth = np.array(
            [standalone(pl.materialize(value, d), train, val, args.steps, 0) for d in children]
        )
    batch = space.stack(children)
    standalone_s = (time.perf_counter() - t0) / len(children)
    print(f"{len(children)} children trained standalone: {standalone_s:.2f} s each")

    runs: dict[str, list[dict]] = {}
    configs = [
        ("spos", {}, "-"),
        ("fairnas", {}, "-"),
        ("sandwich", {}, "-"),
        ("tunas", {"warmup": True}, "yes"),
        ("tunas", {"warmup": False}, "no"),
    ]
    for seed in range(args.seeds):
        for strategy, kw, warm in configs:
            t = time.perf_counter()
            r = pl.nn.weight_sharing_search(
                value,
                train,
                val,
                strategy=strategy,
                cost=cost,
                target=None if mobile else args.target if strategy == "tunas" else 1e9,
                steps=args.steps,
                log_every=args.steps,
                num_candidates=4,
                seed=seed,
                **kw,
            )
            seconds = time.perf_counter() - t
            shared = pl.nn.supernet_accuracy(r.net, batch, val)
            tau = kendall_tau(shared, truth)
            runs.setdefault(f"{strategy}/{warm}", []).append(
                {"seed": seed, "tau": tau, "seconds": seconds, "shared": shared.tolist()}
            )
            print(f"seed {seed} {strategy:8s} warm-up {warm:3s}: tau {tau:+.3f} ({seconds:.0f} s)")

    # TuNAS (TabNAS rejection under the budget) vs random search at equal compute.
    feasible = costs <= args.target
    oracle = float(truth[feasible].max())
    random2 = expected_best_of(truth[feasible], 2)
    found = []
    for seed in range(0 if mobile else args.seeds):
        r = pl.nn.weight_sharing_search(
            value,
            train,
            val,
            cost=cost,
            target=args.target,
            reward="rejection",
            steps=args.steps,
            log_every=args.steps,
            seed=seed,
        )
        i = next(j for j, d in enumerate(children) if d == r.dna)
        found.append(float(truth[i]))

    print()
    print(f"Kendall tau, supernet vs standalone validation accuracy ({len(children)} children, ")
    print(f"{args.steps} steps, median over {args.seeds} seeds)")
    print(f"{'strategy':10s} {'warm-up':8s} {'tau':>7s} {'min':>7s} {'max':>7s} {'s/run':>7s}")
    table = {}
    for name, rs in runs.items():
        strategy, warm = name.split("/")
        taus = [x["tau"] for x in rs]
        med = statistics.median(taus)
        sec = statistics.median(x["seconds"] for x in rs)
        table[name] = {"median_tau": med, "taus": taus, "median_seconds": sec}
        print(f"{strategy:10s} {warm:8s} {med:7.3f} {min(taus):7.3f} {max(taus):7.3f} {sec:7.1f}")
    print(
        f"standalone validation accuracy: min {truth.min():.4f}, median {np.median(truth):.4f}, "
        f"max {truth.max():.4f}"
    )
    print()
    if mobile:
        print("TuNAS vs random search: not run on the mobile space (no cost model here)")
    else:
        _tunas_vs_random(args.target, oracle, feasible, found, random2)
    print(
        f"\n{os.cpu_count()} CPUs, 1-min load average {load_before:.2f} before, "
        f"{os.getloadavg()[0]:.2f} after; standalone training {standalone_s:.2f} s per child"
    )
    if args.json:
        report = {
            "space": args.space,
            "steps": args.steps,
            "seeds": args.seeds,
            "target": args.target,
            "children": [d.to_dict() for d in children],
            "costs": costs.tolist(),
            "standalone_accuracy": truth.tolist(),
            "standalone_seconds": standalone_s,
            "ranking": table,
            "runs": runs,
            "tunas_vs_random": None
            if mobile
            else {
                "oracle": oracle,
                "tunas": found,
                "random_best_of_2": random2,
                "feasible": int(feasible.sum()),
            },
            "platform": platform.platform(),
            "load_average": {"before": load_before, "after": os.getloadavg()[0]},
        }
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


def _tunas_vs_random(
    target: float, oracle: float, feasible: Any, found: list, random2: float
) -> None:
    print(f"TuNAS (rejection, params <= {target:g}) vs random search, equal compute")
    print("(2 standalone trainings), validation accuracy as a ratio to the best feasible child")
    tun = statistics.median(found)
    print(f"  best feasible (oracle): {oracle:.4f}   feasible children: {int(feasible.sum())}")
    print(f"  TuNAS found:            {tun:.4f}   ratio {tun / oracle:.4f}   per seed {found}")
    print(f"  random search, best of 2 (expected): {random2:.4f}   ratio {random2 / oracle:.4f}")


if __name__ == "__main__":
    main()
