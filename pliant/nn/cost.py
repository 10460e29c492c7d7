"""What a JAX or Flax NNX model costs: measured latency, XLA's static cost, parameter count.

`measure_latency` compiles once, warms up, then times calls one by one with
``block_until_ready``, so the numbers are per-call latency on the device the arguments live on
(CPU or GPU alike), not throughput. `xla_cost` reads FLOPs and bytes accessed from the compiled
executable, without running it. `param_count` sums the sizes of a module's parameters.

Several targets (devices, batch sizes, precisions) cost one architecture at once with
`measure_targets`; `normalized_cost` folds them into one objective as in Chu et al.'s
multi-hardware models, and `target_constraints` turns the same targets into per-target
constraints for `pl.search`.

Everything here accepts either a function of arrays or an NNX module: a module is split into
its graph and state once, and the timed function merges them inside ``jax.jit``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "Latency",
    "Target",
    "XlaCost",
    "measure_latency",
    "measure_op_latency",
    "measure_targets",
    "normalized_cost",
    "param_count",
    "target_constraints",
    "xla_cost",
]


class Latency(NamedTuple):
    """Per-call latency in seconds, from `measure_latency`.

    Attributes:
        median: Median over the timed runs; the number to compare.
        p10: 10th percentile.
        p90: 90th percentile.
        mean: Mean (sensitive to a loaded machine; prefer the median).
        runs: Number of timed runs.
        compile_s: Seconds spent lowering and compiling (once).
        times: Every timed run, in order.
    """

    median: float
    p10: float
    p90: float
    mean: float
    runs: int
    compile_s: float
    times: tuple[float, ...]

    @property
    def spread(self) -> float:
        """Relative spread ``(p90 - p10) / median``; small means a steady measurement."""
        return (self.p90 - self.p10) / self.median if self.median > 0 else math.inf


class XlaCost(NamedTuple):
    """Static cost of one call from XLA's cost analysis of the compiled executable.

    Attributes:
        flops: Floating-point operations XLA counts (a multiply-add is 2; elementwise ops
            such as a bias add count one per element).
        bytes_accessed: Bytes read and written by the executable's operations.
        transcendentals: exp/log/tanh-like operations (0 when XLA reports none).
        raw: The whole cost-analysis dictionary, for the keys not listed above.
    """

    flops: float
    bytes_accessed: float
    transcendentals: float
    raw: dict[str, float]


class Target(NamedTuple):
    """One hardware target to cost a model on.

    Attributes:
        name: Key of the target in results and metric names (``'cpu_b1'``).
        batch_size: Leading dimension of the input built for this target.
        dtype: Input and floating-point parameter dtype (``'float32'``, ``'bfloat16'``, ...).
        device: A ``jax.Device`` to run on; None for the default device.
    """

    name: str
    batch_size: int = 1
    dtype: str = "float32"
    device: Any = None


def _is_module(obj: Any) -> bool:
    try:
        from flax import nnx
    except ImportError:  # pragma: no cover - flax is a dependency
        return False
    return isinstance(obj, nnx.Module)


def _as_function(fn: Any, dtype: Any = None) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """A pure function and leading arguments: modules become ``f(state, *args)``."""
    if _is_module(fn):
        import jax
        from flax import nnx

        graphdef, state = nnx.split(fn)
        if dtype is not None:
            state = jax.tree.map(lambda a: _cast_float(a, dtype), state)

        def call(state: Any, *args: Any) -> Any:
            return nnx.merge(graphdef, state)(*args)

        return call, (state,)
    if not callable(fn):
        raise TypeError(
            f"expected a function of arrays or a flax.nnx.Module, got {fn!r}; wrap other "
            "models in a function of their inputs."
        )
    return fn, ()


def _cast_float(a: Any, dtype: Any) -> Any:
    import jax.numpy as jnp

    if hasattr(a, "dtype") and jnp.issubdtype(a.dtype, jnp.floating):
        return a.astype(dtype)
    return a


def _inputs(
    args: tuple[Any, ...], input_shape: Sequence[int] | None, batch_size: int, dtype: Any
) -> tuple[Any, ...]:
    if input_shape is None:
        if not args:
            raise ValueError(
                "no inputs: pass the arguments after fn (measure_latency(model, x)) or "
                "input_shape=(...) (without the batch dimension) and batch_size=."
            )
        return args
    if args:
        raise ValueError(
            f"got both positional arguments ({len(args)}) and input_shape={input_shape!r}; "
            "pass one or the other."
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    import jax.numpy as jnp

    return (jnp.ones((batch_size, *input_shape), dtype=dtype),)


def _compiled(
    fn: Any, args: tuple[Any, ...], input_shape: Any, batch_size: int, dtype: Any, device: Any
) -> tuple[Any, tuple[Any, ...], float]:
    import jax

    call, lead = _as_function(fn, None if input_shape is None else dtype)
    inputs = lead + _inputs(args, input_shape, batch_size, dtype)
    if device is not None:
        inputs = jax.device_put(inputs, device)
    start = time.perf_counter()
    compiled = jax.jit(call).lower(*inputs).compile()
    return compiled, inputs, time.perf_counter() - start


def _check_count(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}.")
    return value


def measure_latency(
    fn: Any,
    *args: Any,
    input_shape: Sequence[int] | None = None,
    batch_size: int = 1,
    dtype: Any = "float32",
    device: Any = None,
    warmup: int = 3,
    runs: int = 20,
    number: int = 1,
) -> Latency:
    """Times one call of ``fn`` (or an NNX module) on the device, compiled once.

    The function is compiled with ``jax.jit`` once (timed as ``compile_s``), called ``warmup``
    times untimed, then ``runs`` times; each timed sample is ``number`` calls, each followed by
    ``block_until_ready``, divided by ``number``. Use ``number > 1`` for calls of a few
    microseconds, where the timer's own cost would otherwise show.

    Args:
        fn: A function of arrays, or a ``flax.nnx.Module`` called as ``module(*inputs)``
            (its state is passed as a jit argument, so its weights are not constants).
        *args: Inputs. Leave them out and give ``input_shape`` to build one input of ones.
        input_shape: Shape of one example, without the batch dimension.
        batch_size: Leading dimension of the built input.
        dtype: Dtype of the built input; a module's floating-point parameters are cast to it
            too (so ``'bfloat16'`` costs the model in that precision).
        device: Run on this ``jax.Device`` (default: JAX's default device).
        warmup: Untimed calls after compiling.
        runs: Timed samples.
        number: Calls per timed sample.

    Returns:
        A `Latency` in seconds per call.

    Raises:
        ValueError: for missing or conflicting inputs, or counts that are not positive.
        TypeError: if ``fn`` is neither callable nor a module.

    Example:
        >>> import jax.numpy as jnp
        >>> lat = measure_latency(lambda x: jnp.tanh(x @ x), jnp.ones((8, 8)), runs=5)
        >>> lat.runs, lat.p10 <= lat.median <= lat.p90
        (5, True)
    """
    import jax

    _check_count("warmup", warmup, 0)
    _check_count("runs", runs, 1)
    _check_count("number", number, 1)
    compiled, inputs, compile_s = _compiled(fn, args, input_shape, batch_size, dtype, device)
    for _ in range(warmup):
        jax.block_until_ready(compiled(*inputs))
    times = []
    clock = time.perf_counter
    for _ in range(runs):
        start = clock()
        for _ in range(number):
            jax.block_until_ready(compiled(*inputs))
        times.append((clock() - start) / number)
    t = np.asarray(times)
    return Latency(
        median=float(np.median(t)),
        p10=float(np.percentile(t, 10)),
        p90=float(np.percentile(t, 90)),
        mean=float(t.mean()),
        runs=runs,
        compile_s=compile_s,
        times=tuple(times),
    )


def measure_op_latency(
    fn: Any,
    *args: Any,
    input_shape: Sequence[int] | None = None,
    batch_size: int = 1,
    dtype: Any = "float32",
    device: Any = None,
    loops: tuple[int, int] = (1, 11),
    warmup: int = 2,
    runs: int = 10,
    unroll: bool = False,
) -> Latency:
    """Latency of one op (a layer) without the cost of calling into the device.

    Per-op tables sum many entries, but a model runs as one call: timing each layer as its own
    call would add one dispatch overhead per layer. Here the layer runs ``n`` times in a loop
    inside one compiled call (the loop count is an argument, so it compiles once); the two
    loop counts of ``loops`` are timed and the difference of their medians divided by the
    difference of the counts is the per-run cost, less the same slope of an empty loop (the
    loop's own cost per iteration). Optimization barriers tie each iteration's inputs and
    output to the loop carry, so XLA can neither hoist the op out of the loop nor drop it,
    without adding work to it.

    With ``unroll=True`` the ``n`` runs are written out one after another instead (compiled
    once per loop count, no loop overhead): closer to how the op runs inside a model where a
    backend launches a straight-line program differently from a loop body (GPU command
    buffers), at the price of two compilations.

    Args:
        fn, args, input_shape, batch_size, dtype, device: As in `measure_latency`.
        loops: Two loop counts ``(n1, n2)``, ``n2 > n1 >= 1``.
        warmup: Untimed calls per loop count.
        runs: Timed calls per loop count.
        unroll: Write the runs out instead of looping (see above).

    Returns:
        A `Latency` per run of the op: ``median`` is the slope of the medians; ``p10``/``p90``
        the slopes of those percentiles; ``times`` the per-call samples at ``n2`` divided by
        ``n2``.

    Raises:
        ValueError: for loop counts that are not ``n2 > n1 >= 1``, or as in `measure_latency`.

    Example:
        >>> import jax.numpy as jnp
        >>> lat = measure_op_latency(lambda x: jnp.tanh(x @ x), jnp.ones((64, 64)), runs=3)
        >>> lat.median > 0
        True
    """
    import jax
    import jax.numpy as jnp

    if not (
        isinstance(loops, tuple)
        and len(loops) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) for n in loops)
        and 1 <= loops[0] < loops[1]
    ):
        raise ValueError(f"loops must be two ints (n1, n2) with n2 > n1 >= 1, got {loops!r}.")
    _check_count("warmup", warmup, 0)
    _check_count("runs", runs, 1)
    call, lead = _as_function(fn, None if input_shape is None else dtype)
    inputs = lead + _inputs(args, input_shape, batch_size, dtype)
    if device is not None:
        inputs = jax.device_put(inputs, device)
    barrier = jax.lax.optimization_barrier

    def step(inputs: tuple[Any, ...], carry: Any) -> Any:
        # The barriers tie the inputs to the carry (so the op cannot be hoisted out of the
        # loop) and the carry to the output (so it cannot be dropped), at no runtime cost;
        # reading one element keeps the output alive.
        ins, carry = barrier((inputs, carry))
        out, carry = barrier((call(*ins), carry))
        first = jax.tree.leaves(out)[0].reshape(-1)[0]
        return carry + (first != first).astype(jnp.int32)

    def looped(n: Any, *inputs: Any) -> Any:
        return jax.lax.fori_loop(0, n, lambda _, c: step(inputs, c), jnp.zeros((), jnp.int32))

    k = len(lead)  # inputs[:k] is a module's state, inputs[k:] the data

    def unrolled(n: int) -> Callable[..., Any]:
        # Each run gets its own copy of the data: runs on equal operands would be merged
        # into one by XLA's common-subexpression elimination.
        def run(*inputs: Any) -> Any:
            carry = jnp.zeros((), jnp.int32)
            data = inputs[k:]
            per = len(data) // n
            for i in range(n):
                carry = step((*inputs[:k], *data[i * per : (i + 1) * per]), carry)
            return carry

        return run

    def put(x: Any) -> Any:
        return x if device is None else jax.device_put(x, device)

    n1, n2 = loops
    start = time.perf_counter()
    if unroll:
        copies = {
            n: inputs[:k] + tuple(jnp.array(x, copy=True) for _ in range(n) for x in inputs[k:])
            for n in loops
        }
        compiled = {n: jax.jit(unrolled(n)).lower(*copies[n]).compile() for n in loops}
        run_n = {n: (lambda n=n: compiled[n](*copies[n])) for n in loops}
    else:
        loop = jax.jit(looped).lower(jnp.asarray(n1, jnp.int32), *inputs).compile()
        counts = {n: put(jnp.asarray(n, jnp.int32)) for n in loops}
        run_n = {n: (lambda n=n: loop(counts[n], *inputs)) for n in loops}
    compile_s = time.perf_counter() - start
    a, b = _time_loops(run_n, loops, warmup, runs)
    if unroll:
        e_a = e_b = np.zeros(runs)
    else:
        # The loop itself costs something per iteration (on a GPU, the trip-count test goes
        # through the host); an empty loop measured the same way is subtracted.
        empty, scalar = _empty_loop(), put(jnp.zeros((), jnp.int32))
        e_run = {n: (lambda n=n: empty(counts[n], scalar)) for n in loops}
        e_a, e_b = _time_loops(e_run, loops, warmup, runs)

    def slope(f: Callable[[np.ndarray], float]) -> float:
        return float(max(0.0, ((f(b) - f(a)) - (f(e_b) - f(e_a))) / (n2 - n1)))

    return Latency(
        median=slope(np.median),
        p10=slope(lambda t: float(np.percentile(t, 10))),
        p90=slope(lambda t: float(np.percentile(t, 90))),
        mean=slope(np.mean),
        runs=runs,
        compile_s=compile_s,
        times=tuple(float(t) / n2 for t in b),
    )


def _time_loops(
    run_n: Mapping[int, Callable[[], Any]], loops: tuple[int, int], warmup: int, runs: int
) -> tuple[np.ndarray, np.ndarray]:
    import jax

    out = []
    clock = time.perf_counter
    for n in loops:
        for _ in range(warmup):
            jax.block_until_ready(run_n[n]())
        times = []
        for _ in range(runs):
            t0 = clock()
            jax.block_until_ready(run_n[n]())
            times.append(clock() - t0)
        out.append(np.asarray(times))
    return out[0], out[1]


_EMPTY_LOOP: list[Any] = []


def _empty_loop() -> Any:
    """A jitted loop whose body does nothing but pass the carry through a barrier."""
    if not _EMPTY_LOOP:
        import jax

        def loop(n: Any, carry: Any) -> Any:
            body = lambda _, c: jax.lax.optimization_barrier(c) + 1
            return jax.lax.fori_loop(0, n, body, carry)

        _EMPTY_LOOP.append(jax.jit(loop))
    return _EMPTY_LOOP[0]


def xla_cost(
    fn: Any,
    *args: Any,
    input_shape: Sequence[int] | None = None,
    batch_size: int = 1,
    dtype: Any = "float32",
) -> XlaCost:
    """FLOPs and bytes accessed of one call, from XLA's analysis of the compiled executable.

    Nothing is run. The counts are XLA's after its optimizations (fusion can lower bytes
    accessed), for the backend the arguments live on.

    Args:
        fn: A function of arrays, or a ``flax.nnx.Module``.
        *args: Inputs (or leave them out and give ``input_shape``, as in `measure_latency`).
        input_shape: Shape of one example, without the batch dimension.
        batch_size: Leading dimension of the built input.
        dtype: Dtype of the built input (and of a module's floating-point parameters).

    Returns:
        An `XlaCost`.

    Raises:
        ValueError: if the backend gives no cost analysis, or as in `measure_latency`.

    Example:
        >>> import jax.numpy as jnp
        >>> xla_cost(lambda a, b: a @ b, jnp.ones((4, 16)), jnp.ones((16, 8))).flops
        1024.0
    """
    compiled, _, _ = _compiled(fn, args, input_shape, batch_size, dtype, None)
    raw = compiled.cost_analysis()
    # Older jax returned a list with one dict per computation; 0.10 returns one dict.
    if isinstance(raw, list | tuple):
        raw = raw[0] if raw else None
    if not raw:
        raise ValueError(
            "this backend reports no XLA cost analysis for the compiled function; "
            "use measure_latency or param_count instead."
        )
    raw = {str(k): float(v) for k, v in raw.items()}
    return XlaCost(
        flops=raw.get("flops", 0.0),
        bytes_accessed=raw.get("bytes accessed", 0.0),
        transcendentals=raw.get("transcendentals", 0.0),
        raw=raw,
    )


def param_count(module: Any, filter: Any = None) -> int:
    """Number of scalar parameters of an NNX module (``nnx.Param`` by default).

    Args:
        module: A ``flax.nnx.Module``.
        filter: An NNX filter selecting the variables to count (default ``nnx.Param``; pass
            ``...`` for every variable, batch statistics included).

    Raises:
        TypeError: if ``module`` is not an NNX module.

    Example:
        >>> from flax import nnx
        >>> param_count(nnx.Linear(16, 8, rngs=nnx.Rngs(0)))
        136
    """
    if not _is_module(module):
        raise TypeError(f"param_count expects a flax.nnx.Module, got {module!r}.")
    import jax
    from flax import nnx

    state = nnx.state(module, nnx.Param if filter is None else filter)
    return int(sum(np.size(leaf) for leaf in jax.tree.leaves(state)))


def measure_targets(
    model: Any,
    input_shape: Sequence[int],
    targets: Sequence[Target],
    **measure_kwargs: Any,
) -> dict[str, Latency]:
    """Latency of one model on several targets (devices, batch sizes, precisions).

    Args:
        model: A ``flax.nnx.Module`` or a function of one input array.
        input_shape: Shape of one example, without the batch dimension.
        targets: The `Target`s; names must be distinct.
        **measure_kwargs: Passed to `measure_latency` (``runs``, ``warmup``, ``number``).

    Returns:
        ``{target.name: Latency}`` in the order of ``targets``.

    Raises:
        ValueError: for no targets or a repeated name.

    Example:
        >>> from flax import nnx
        >>> model = nnx.Linear(4, 2, rngs=nnx.Rngs(0))
        >>> out = measure_targets(model, (4,), [Target('b1'), Target('b8', batch_size=8)], runs=3)
        >>> sorted(out)
        ['b1', 'b8']
    """
    targets = list(targets)
    if not targets:
        raise ValueError("measure_targets needs at least one Target.")
    names = [t.name for t in targets]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"target names must be distinct; repeated: {repeated!r}.")
    return {
        t.name: measure_latency(
            model,
            input_shape=input_shape,
            batch_size=t.batch_size,
            dtype=t.dtype,
            device=t.device,
            **measure_kwargs,
        )
        for t in targets
    }


def _latency_value(name: str, v: Any) -> float:
    x = v.median if isinstance(v, Latency) else v
    if isinstance(x, bool) or not isinstance(x, int | float | np.number) or not x > 0:
        raise ValueError(f"cost of target {name!r} must be a positive number, got {v!r}.")
    return float(x)


def normalized_cost(
    costs: Mapping[str, Any], references: Mapping[str, float], reduce: str = "mean"
) -> float:
    """One multi-hardware cost: each target's cost over its reference, then mean or max.

    This is the metric of Chu et al.'s multi-hardware models: ``r_h = T_h / T_h0`` per target
    ``h``, then ``mean_h r_h`` (their "AVG" model) or ``max_h r_h`` ("MAX"). A value of 1 means
    on target on average (or on the worst target). Use it as one objective of a multi-objective
    search, or inside TuNAS's absolute reward.

    Args:
        costs: ``{target: cost}``; a `Latency` counts as its median.
        references: ``{target: reference or target cost}``, the same keys.
        reduce: ``'mean'`` or ``'max'``.

    Raises:
        ValueError: for mismatched keys, non-positive values or an unknown ``reduce``.

    Example:
        >>> normalized_cost({'cpu': 2.0, 'gpu': 1.0}, {'cpu': 4.0, 'gpu': 0.5}, reduce='max')
        2.0
    """
    if reduce not in ("mean", "max"):
        raise ValueError(f"reduce must be 'mean' or 'max', got {reduce!r}.")
    if set(costs) != set(references) or not costs:
        raise ValueError(
            f"costs and references must name the same targets; got costs for {sorted(costs)!r}"
            f" and references for {sorted(references)!r}."
        )
    ratios = [
        _latency_value(k, costs[k]) / _latency_value(f"{k} (reference)", references[k])
        for k in costs
    ]
    return float(np.mean(ratios) if reduce == "mean" else np.max(ratios))


def target_constraints(
    limits: Mapping[str, float], prefix: str = "latency/"
) -> dict[str, tuple[str, float]]:
    """Per-target constraints for `pl.search`: ``{prefix + target: ('<=', limit)}``.

    The evaluation reports each target's latency as the metric ``prefix + target``; a trial
    over any limit is recorded as infeasible.

    Example:
        >>> target_constraints({'cpu_b1': 0.002})
        {'latency/cpu_b1': ('<=', 0.002)}
    """
    out = {}
    for name, limit in limits.items():
        out[f"{prefix}{name}"] = ("<=", _latency_value(name, limit))
    return out
