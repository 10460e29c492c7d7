"""Cost of weight sharing: one supernet training step against the largest child's own step.

For each input size, ``pliant.spaces.library.mobile_space(input_size, in_channels=3)`` is built
twice from the same layer implementations (``pliant.nn.layers``: ``nnx.Conv`` 1×1 convolutions,
the shifted-slice ``depthwise_conv``, BatchNorm on batch statistics):

- the supernet ``pl.nn.supernet(value, rngs=...)``, its step reading the DNA of the largest child
  (widest widths, largest kernels and expansions, no skipped block) as a *traced* argument, so
  the compiled program is the one a search runs;
- that child built standalone, ``pl.materialize(value, dna).build(rngs=...)``.

Both run the same jitted step: forward, softmax cross-entropy, ``nnx.value_and_grad``, an optax
Adam update, state donated, on the same batch. The table gives the median time per step (the
two are timed interleaved, one call each in turn, so load on the machine hits both alike), their
ratio, the supernet's median step over random children (other DNAs, same compiled program),
compile times, and XLA's memory analysis of each compiled step (temporary buffers, all
platforms); on a GPU also the process's peak device memory (``memory_stats``) at the end.

The full TuNAS search step is timed too, the function ``pl.nn.weight_sharing_search`` scans
(``pliant.nn.tunas.make_search_step``, one step per jitted call): the controller's sample,
TuNAS's warm-up rule, one shared-weight step on a training batch, the validation forward of the
same DNA with the updated weights on a batch 4x larger, the controller update (abs reward of
an additive per-candidate cost table, a stand-in for a latency table) and its monitors. Its
controller's logits are set so that it samples the largest child, so it trains what the
standalone step trains. It is compared with the standalone child's train step plus a
validation forward in one jitted call (``child+val``); ``supernet+val`` is the same for the
supernet without a controller, so ``tunas - supernet+val`` is the controller's overhead per
step, also timed alone (propose, warm-up rule, update: ``controller``). ``tunas_warmup`` is the
same compiled step at step 0 (op and filter warm-up with probability 1: every op choice runs
the average of its candidates), and ``tunas_sample*`` the step built with
``op_warmup="sample"`` (a uniform single op instead of the average). Every function's compile
time and XLA memory analysis (temporary, argument and output bytes) are recorded, and the
process's peak RSS after each size.

Run: ``python benchmarks/supernet_step.py [--sizes 8 32] [--batch 64] [--dtype float32|bfloat16]
[--steps 20] [--json PATH]``. For the GPU goal: ``--sizes 32 --batch 256 --dtype bfloat16``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from typing import Any

import numpy as np


def largest_child(space: Any) -> Any:
    """Every decision at its last candidate (widest, largest kernel), every block kept."""
    index = np.asarray(space.num_choices) - 1
    for i, slot in enumerate(space.slots):
        if slot.id.startswith("blocks[") and "." not in slot.id:  # oneof([block, Identity()])
            index[i] = 0
    return space.make_dna(index)


def _weight_update(model: Any, optimizer: Any, call: Any, x: Any, y: Any, dna: Any) -> Any:
    """One optimizer step of ``model`` on a batch (cross-entropy in float32); the loss."""
    import jax.numpy as jnp
    import optax
    from flax import nnx

    def loss_fn(m: Any) -> Any:
        logits = call(m, x, dna).astype(jnp.float32)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss


def make_step(graphdef: Any, call: Any) -> Any:
    import jax
    from flax import nnx

    def step(state: Any, x: Any, y: Any, dna: Any) -> Any:
        model, optimizer = nnx.merge(graphdef, state)
        loss = _weight_update(model, optimizer, call, x, y, dna)
        return nnx.state((model, optimizer)), loss

    return jax.jit(step, donate_argnums=0)


def prepare(
    model: Any, call: Any, dtype: Any, x: Any, y: Any, dna: Any, label: str = "step"
) -> dict[str, Any]:
    """Casts the parameters, compiles the step (timed) and reads XLA's memory analysis."""
    import jax
    import optax
    from flax import nnx

    _cast(model, dtype)
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    graphdef, state = nnx.split((model, optimizer))
    step = make_step(graphdef, call)
    compiled, compile_s, memory = _compile(label, step, state, x, y, dna)
    temp = memory["temp_mb"]
    state, loss = compiled(state, x, y, dna)  # warm-up
    jax.block_until_ready(loss)
    return {
        "step": compiled, "state": state, "compile_s": compile_s,
        "temp_bytes": None if temp is None else temp * 2**20, "memory": memory,
    }  # fmt: skip


def make_train_val_step(graphdef: Any, call: Any) -> Any:
    """The weight step of :func:`make_step` followed by a forward pass on a validation batch.

    What a TuNAS step does besides the controller: train on one batch, then score the same
    architecture with the updated weights on a validation batch (accuracy, batch statistics).
    """
    import jax
    import jax.numpy as jnp
    from flax import nnx

    def step(state: Any, x: Any, y: Any, xv: Any, yv: Any, dna: Any) -> Any:
        model, optimizer = nnx.merge(graphdef, state)
        loss = _weight_update(model, optimizer, call, x, y, dna)
        acc = jnp.mean(jnp.argmax(call(model, xv, dna), -1) == yv)
        return nnx.state((model, optimizer)), (loss, acc)

    return jax.jit(step, donate_argnums=0)


def _memory(compiled: Any) -> dict[str, float | None]:
    """XLA's memory analysis of a compiled function, in MB (None where the backend has none)."""
    mem = compiled.memory_analysis()
    out: dict[str, float | None] = {}
    for name in ("temp", "argument", "output", "alias"):
        b = getattr(mem, f"{name}_size_in_bytes", None) if mem is not None else None
        out[f"{name}_mb"] = _mb(b)
    return out


def _compile(label: str, fn: Any, *args: Any) -> tuple[Any, float, dict[str, float | None]]:
    t0 = time.perf_counter()
    compiled = fn.lower(*args).compile()
    seconds = time.perf_counter() - t0
    print(f"  compiled {label} in {seconds:.1f} s", file=sys.stderr, flush=True)
    return compiled, seconds, _memory(compiled)


def _cast(model: Any, dtype: Any) -> None:
    import jax
    from flax import nnx

    params = nnx.state(model, nnx.Param)
    nnx.update(model, jax.tree.map(lambda a: a.astype(dtype), params))


def prepare_pair(model: Any, call: Any, dtype: Any, args: tuple, label: str) -> dict[str, Any]:
    """Like :func:`prepare` for the train + validation step (``args``: x, y, xv, yv, dna)."""
    import jax
    import optax
    from flax import nnx

    _cast(model, dtype)
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    graphdef, state = nnx.split((model, optimizer))
    compiled, compile_s, mem = _compile(label, make_train_val_step(graphdef, call), state, *args)
    state, out = compiled(state, *args)
    jax.block_until_ready(out)
    return {"step": compiled, "state": state, "compile_s": compile_s, **mem}


def prepare_tunas(value: Any, space: Any, big: Any, dtype: Any, train: tuple, val: tuple,
                  batch: int, seed: int, op_warmup: str = "average") -> dict[str, Any]:  # fmt: skip
    """The search step of ``pl.nn.weight_sharing_search`` (TuNAS), one step per jitted call.

    Built by ``pliant.nn.tunas.make_search_step``, the function the runner scans, with an
    in-jit additive cost model (a per-candidate table, like a latency table's lookups) and the
    controller's logits set so that it samples the largest child (probability ~1 - 1e-12 per
    decision), so the weight step trains the same child as the standalone step.
    """
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    import pliant as pl
    from pliant.nn.tunas import make_search_step

    table = [np.arange(1.0, n + 1.0) for n in space.num_choices]
    cost = pl.algorithms.cost_table(table)
    target = float(cost(big)) * 0.75
    net = pl.nn.supernet(value, rngs=nnx.Rngs(seed))
    _cast(net, dtype)
    built = make_search_step(
        value, train, val, net=net, strategy="tunas", cost=cost, target=target,
        steps=1000, batch_size=batch, seed=seed, op_warmup=op_warmup,
    )  # fmt: skip
    # Fresh buffers: the initial carry holds some arrays twice (equal zeros), and a donated
    # argument must not alias another.
    params, rest, opt_state, cs, key = jax.tree.map(_fresh, built.carry)
    logits = cs.params.logits
    peaked = 30.0 * jax.nn.one_hot(jnp.asarray(big.index), logits.shape[-1], dtype=logits.dtype)
    cs = cs._replace(params=cs.params._replace(logits=peaked))
    carry = (params, rest, opt_state, cs, key)
    step = jax.jit(built.step, donate_argnums=0)
    t_live = jnp.asarray(999, jnp.int32)  # after warm-up and controller delay
    compiled, compile_s, mem = _compile(f"tunas search step ({op_warmup})", step, carry, t_live)
    carry, metrics = compiled(carry, t_live)
    jax.block_until_ready(metrics)

    algo = built.controller

    def controller_only(cs: Any, k: Any) -> Any:  # what the controller adds to a step
        own, cs = algo.propose(cs, k)
        trained, mixed = pl.algorithms.sharing.warmup_path(own, jax.random.fold_in(k, 7), 0.0, 0.0)
        q = jnp.mean(trained.index.astype(jnp.float32))  # any scalar Q
        return algo.feedback(cs, own, q), mixed

    ctrl = jax.jit(controller_only, donate_argnums=0)
    ctrl_c, ctrl_compile_s, _ = _compile("controller", ctrl, carry[3], jax.random.key(seed))
    return {
        "step": compiled, "carry": carry, "compile_s": compile_s, **mem,
        "controller": ctrl_c, "controller_compile_s": ctrl_compile_s, "search": built,
    }  # fmt: skip


def _fresh(a: Any) -> Any:
    import jax
    import jax.numpy as jnp

    if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(jnp.copy(jax.random.key_data(a)))
    return jnp.copy(a)


def run_size(size: int, batch: int, dtype_name: str, steps: int, seed: int) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp
    from flax import nnx

    import pliant as pl
    from pliant.spaces.library import mobile_space

    dtype = jnp.bfloat16 if dtype_name == "bfloat16" else jnp.float32
    print(f"{size}x{size}:", file=sys.stderr, flush=True)
    value = mobile_space(size, in_channels=3, num_classes=10)
    space = pl.space(value)
    big = largest_child(space)
    kx, ky, kxv, kyv = jax.random.split(jax.random.key(seed), 4)
    x = jax.random.normal(kx, (batch, size, size, 3)).astype(dtype)
    y = jax.random.randint(ky, (batch,), 0, 10)
    # TuNAS scores on validation batches 4x the training batch (valid_factor of the presets).
    xv = jax.random.normal(kxv, (4 * batch, size, size, 3)).astype(dtype)
    yv = jax.random.randint(kyv, (4 * batch,), 0, 10)
    net = pl.nn.supernet(value, rngs=nnx.Rngs(seed))  # also registers DNA as a pytree
    dna = jax.device_put(big)
    sup = prepare(net, lambda m, x, d: m(x, d), dtype, x, y, dna, "supernet step")
    child = pl.materialize(value, big).build(rngs=nnx.Rngs(seed))
    alone = prepare(child, lambda m, x, d: m(x), dtype, x, y, dna, "child step")
    pair_args = (x, y, xv, yv, dna)
    net2 = pl.nn.supernet(value, rngs=nnx.Rngs(seed))
    sup_val = prepare_pair(net2, lambda m, x, d: m(x, d), dtype, pair_args, "supernet+val")
    child2 = pl.materialize(value, big).build(rngs=nnx.Rngs(seed))
    alone_val = prepare_pair(child2, lambda m, x, d: m(x), dtype, pair_args, "child+val")
    tun = prepare_tunas(value, space, big, dtype, (x, y), (xv, yv), batch, seed)
    tun_s = prepare_tunas(value, space, big, dtype, (x, y), (xv, yv), batch, seed, "sample")
    randoms = [jax.device_put(pl.random_dna(space, seed + i)) for i in range(steps)]
    t_live = jnp.asarray(999, jnp.int32)
    t_warm = jnp.asarray(0, jnp.int32)  # op and filter warm-up with probability 1

    def train(run: dict, d: Any) -> Any:
        run["state"], loss = run["step"](run["state"], x, y, d)
        return loss

    def pair(run: dict) -> Any:
        run["state"], out = run["step"](run["state"], *pair_args)
        return out

    def search(t: Any, run: dict = tun) -> Any:
        run["carry"], metrics = run["step"](run["carry"], t)
        return metrics

    def controller(i: int) -> Any:
        cs, mixed = tun["controller"](tun["carry"][3], jax.random.key(seed + i))
        carry = tun["carry"]
        tun["carry"] = (*carry[:3], cs, carry[4])
        return mixed

    variants = {
        "supernet": lambda i: train(sup, dna),
        "child": lambda i: train(alone, dna),
        "random": lambda i: train(sup, randoms[i]),
        "supernet_val": lambda i: pair(sup_val),
        "child_val": lambda i: pair(alone_val),
        "tunas": lambda i: search(t_live),
        "tunas_warmup": lambda i: search(t_warm),
        "tunas_sample": lambda i: search(t_live, tun_s),
        "tunas_sample_warmup": lambda i: search(t_warm, tun_s),
        "controller": controller,
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    for i in range(steps):  # interleaved: one call of each in turn
        for name, fn in variants.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn(i))
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    sampled = np.asarray(tun["carry"][3].params.logits).argmax(-1)
    assert (sampled[: space.num_slots] == np.asarray(big.index)).all(), "controller drifted"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux
    return {
        "input_size": size,
        "batch": batch,
        "val_batch": 4 * batch,
        "dtype": dtype_name,
        "steps": steps,
        "num_slots": space.num_slots,
        "supernet_ms": med["supernet"],
        "child_ms": med["child"],
        "ratio": med["supernet"] / med["child"],
        "supernet_random_child_ms": med["random"],
        "supernet_compile_s": sup["compile_s"],
        "child_compile_s": alone["compile_s"],
        "supernet_temp_mb": _mb(sup["temp_bytes"]),
        "child_temp_mb": _mb(alone["temp_bytes"]),
        "tunas_ms": med["tunas"],
        "tunas_warmup_ms": med["tunas_warmup"],
        "tunas_sample_ms": med["tunas_sample"],
        "tunas_sample_warmup_ms": med["tunas_sample_warmup"],
        "supernet_val_ms": med["supernet_val"],
        "child_val_ms": med["child_val"],
        "tunas_ratio": med["tunas"] / med["child_val"],
        "tunas_warmup_ratio": med["tunas_warmup"] / med["child_val"],
        "controller_overhead_ms": med["tunas"] - med["supernet_val"],
        "controller_alone_ms": med["controller"],
        "compile_s": {
            "supernet": sup["compile_s"],
            "child": alone["compile_s"],
            "supernet_val": sup_val["compile_s"],
            "child_val": alone_val["compile_s"],
            "tunas": tun["compile_s"],
            "tunas_sample": tun_s["compile_s"],
            "controller": tun["controller_compile_s"],
        },
        "memory_mb": {
            "supernet": sup["memory"],
            "child": alone["memory"],
            "supernet_val": {k: sup_val[k] for k in sup["memory"]},
            "child_val": {k: alone_val[k] for k in sup["memory"]},
            "tunas": {k: tun[k] for k in sup["memory"]},
            "tunas_sample": {k: tun_s[k] for k in sup["memory"]},
        },
        "process_peak_rss_mb": rss,
        "times_ms": {k: [t * 1e3 for t in v] for k, v in times.items()},
    }


def _mb(b: Any) -> float | None:
    return None if b is None else b / 2**20


def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per variant")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    args = parser.parse_args(argv)

    import jax

    rows = [run_size(s, args.batch, args.dtype, args.steps, args.seed) for s in args.sizes]
    device = jax.devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    peak = _mb(stats.get("peak_bytes_in_use")) if stats else None
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(
        f"device {device.device_kind} ({device.platform}), batch {args.batch}, {args.dtype}, "
        f"median of {args.steps} steps, load average {_fmt(load, '.1f')}"
    )
    head = (
        f"{'input':>6} {'supernet ms':>12} {'child ms':>9} {'ratio':>6} {'random ms':>10} "
        f"{'compile s (sup/child)':>22} {'temp MB (sup/child)':>20}"
    )
    print(head)
    for r in rows:
        print(
            f"{r['input_size']:>6} {r['supernet_ms']:>12.2f} {r['child_ms']:>9.2f} "
            f"{r['ratio']:>6.2f} {r['supernet_random_child_ms']:>10.2f} "
            f"{r['supernet_compile_s']:>10.1f} / {r['child_compile_s']:<9.1f} "
            f"{_fmt(r['supernet_temp_mb'], '9.1f')} / {_fmt(r['child_temp_mb'], '<8.1f')}"
        )
    head2 = (
        f"{'input':>6} {'tunas ms':>9} {'child+val ms':>13} {'ratio':>6} {'warm-up ms':>11} "
        f"{'sup+val ms':>11} {'ctrl ms (diff/alone)':>21} {'compile s (tunas/child+val)':>28}"
    )
    print(head2)
    for r in rows:
        c = r["compile_s"]
        print(
            f"{r['input_size']:>6} {r['tunas_ms']:>9.2f} {r['child_val_ms']:>13.2f} "
            f"{r['tunas_ratio']:>6.2f} {r['tunas_warmup_ms']:>11.2f} {r['supernet_val_ms']:>11.2f} "
            f"{r['controller_overhead_ms']:>10.2f} / {r['controller_alone_ms']:<8.2f} "
            f"{c['tunas']:>13.1f} / {c['child_val']:<11.1f}"
        )
    print("op warm-up (average of all candidates vs one uniform candidate), ms per step:")
    for r in rows:
        print(
            f"{r['input_size']:>6} in warm-up {r['tunas_warmup_ms']:.2f} vs "
            f"{r['tunas_sample_warmup_ms']:.2f}; after it {r['tunas_ms']:.2f} vs "
            f"{r['tunas_sample_ms']:.2f}; compile s {r['compile_s']['tunas']:.1f} vs "
            f"{r['compile_s']['tunas_sample']:.1f}"
        )
    print("XLA memory analysis, MB (temp / argument / output):")
    for r in rows:
        for name, m in r["memory_mb"].items():
            print(
                f"{r['input_size']:>6} {name:<13} {_fmt(m['temp_mb'], '9.1f')} / "
                f"{_fmt(m['argument_mb'], '8.1f')} / {_fmt(m['output_mb'], '8.1f')}"
            )
        print(f"{r['input_size']:>6} process peak RSS so far: {r['process_peak_rss_mb']:.0f} MB")
    if peak is not None:
        print(f"peak device memory of the process: {peak:.0f} MB")
    if args.json:
        report = {
            "benchmark": "supernet_step",
            "device": f"{device.device_kind} ({device.platform})",
            "python": platform.python_version(),
            "jax": jax.__version__,
            "load_average": load,
            "peak_device_mb": peak,
            "rows": rows,
        }
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
