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

Run: ``python benchmarks/supernet_step.py [--sizes 8 32] [--batch 64] [--dtype float32|bfloat16]
[--steps 20] [--json PATH]``. For the GPU goal: ``--sizes 32 --batch 256 --dtype bfloat16``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from typing import Any


def largest_child(space: Any) -> Any:
    """Every decision at its last candidate (widest, largest kernel), every block kept."""
    import numpy as np

    index = np.asarray(space.num_choices) - 1
    for i, slot in enumerate(space.slots):
        if slot.id.startswith("blocks[") and "." not in slot.id:  # oneof([block, Identity()])
            index[i] = 0
    return space.make_dna(index)


def make_step(graphdef: Any, call: Any) -> Any:
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    def step(state: Any, x: Any, y: Any, dna: Any) -> Any:
        model, optimizer = nnx.merge(graphdef, state)

        def loss_fn(m: Any) -> Any:
            logits = call(m, x, dna).astype(jnp.float32)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return nnx.state((model, optimizer)), loss

    return jax.jit(step, donate_argnums=0)


def prepare(model: Any, call: Any, dtype: Any, x: Any, y: Any, dna: Any) -> dict[str, Any]:
    """Casts the parameters, compiles the step (timed) and reads XLA's memory analysis."""
    import jax
    import optax
    from flax import nnx

    params = nnx.state(model, nnx.Param)
    nnx.update(model, jax.tree.map(lambda a: a.astype(dtype), params))
    optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    graphdef, state = nnx.split((model, optimizer))
    step = make_step(graphdef, call)
    t0 = time.perf_counter()
    compiled = step.lower(state, x, y, dna).compile()
    compile_s = time.perf_counter() - t0
    mem = compiled.memory_analysis()
    temp = getattr(mem, "temp_size_in_bytes", None) if mem is not None else None
    state, loss = compiled(state, x, y, dna)  # warm-up
    jax.block_until_ready(loss)
    return {"step": compiled, "state": state, "compile_s": compile_s, "temp_bytes": temp}


def run_size(size: int, batch: int, dtype_name: str, steps: int, seed: int) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp
    from flax import nnx

    import pliant as pl
    from pliant.spaces.library import mobile_space

    dtype = jnp.bfloat16 if dtype_name == "bfloat16" else jnp.float32
    value = mobile_space(size, in_channels=3, num_classes=10)
    space = pl.space(value)
    big = largest_child(space)
    kx, ky = jax.random.split(jax.random.key(seed))
    x = jax.random.normal(kx, (batch, size, size, 3)).astype(dtype)
    y = jax.random.randint(ky, (batch,), 0, 10)
    net = pl.nn.supernet(value, rngs=nnx.Rngs(seed))  # also registers DNA as a pytree
    dna = jax.device_put(big)
    sup = prepare(net, lambda m, x, d: m(x, d), dtype, x, y, dna)
    child = pl.materialize(value, big).build(rngs=nnx.Rngs(seed))
    alone = prepare(child, lambda m, x, d: m(x), dtype, x, y, dna)
    randoms = [jax.device_put(pl.random_dna(space, seed + i)) for i in range(steps)]

    times: dict[str, list[float]] = {"supernet": [], "child": [], "random": []}
    for i in range(steps):
        for name, run, d in (("supernet", sup, dna), ("child", alone, dna), ("random", sup, None)):
            d = randoms[i] if d is None else d
            t0 = time.perf_counter()
            run["state"], loss = run["step"](run["state"], x, y, d)
            jax.block_until_ready(loss)
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    return {
        "input_size": size,
        "batch": batch,
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
