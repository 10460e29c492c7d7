"""Weight-sharing architecture search: one jitted step trains a supernet and its controller.

:func:`weight_sharing_search` ties a supernet (an NNX module called as ``net(x, dna)``, by
default ``pl.nn.supernet(space_value, rngs=...)``), training and validation data, a sampling
rule and, for TuNAS, the controller :func:`pliant.algorithms.tunas` together. One step, inside
one ``jax.jit`` (``log_every`` steps per call, in a ``lax.scan``):

1. draw the DNA(s) to train on: the controller's sample with TuNAS's op / filter warm-up
   (``"tunas"``), a uniform child (``"spos"``), ``k`` children covering every candidate once
   (``"fairnas"``), or the largest, the smallest and ``num_random`` uniform children with
   in-place distillation from the largest (``"sandwich"``);
2. one shared-weight update on a training batch (the children's gradients are averaged first;
   cross-entropy with label smoothing, children after the first of the sandwich distilled from
   its predictions);
3. for ``"tunas"``: the accuracy ``Q`` of the *same* sampled DNA on a validation batch, with the
   *updated* weights and batch statistics, and a controller update on TuNAS's reward of ``Q``
   and the DNA's cost (the warm-up only changes what the weights train on; the controller's
   learning rate is 0 until the warm-up is over).

Batches are drawn inside the step from the arrays given (they live on the device), so a whole
chunk of steps is one compiled call. Progress (loss, validation accuracy, controller entropy and
expected cost) and the controller's probabilities are logged every ``log_every`` steps, to a
JSON file when ``log`` is a path.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from pliant.algorithms import sharing
from pliant.algorithms.base import Algorithm, register_space_pytree
from pliant.algorithms.reinforce import (
    _log_prob_entropy,
    _plan,
    _sample_jax,
    _unwrap,
    probabilities,
)
from pliant.algorithms.tunas import (
    _batched,
    _settings,
    final_architecture,
    tunas,
    tunas_preset,
    warmup_probability,
)
from pliant.spaces.dna import DNA, Space

__all__ = ["STRATEGIES", "SearchResult", "supernet_accuracy", "weight_sharing_search"]

STRATEGIES = ("tunas", "spos", "fairnas", "sandwich")
"""The supernet training strategies :func:`weight_sharing_search` offers."""


class SearchResult(NamedTuple):
    """What :func:`weight_sharing_search` returns.

    Attributes:
        dna: The found architecture (TuNAS: the controller's most likely, or most likely
            feasible, DNA; other strategies: the child with the best supernet validation
            accuracy among ``num_candidates`` uniform ones within the cost target).
        value: ``pl.materialize(space_value, dna)`` when a symbolic space value was searched,
            else None.
        cost: The cost of ``dna`` under the cost model (None without one).
        net: The trained supernet.
        controller: The final controller state (None for strategies without one).
        history: One dict per ``log_every`` steps: ``step`` (steps done), the means over those
            steps of ``loss``, ``val_accuracy`` (of the controller's sample, else of the first
            child trained), ``entropy`` and ``expected_cost`` (TuNAS: of the policy, over 64
            samples), the controller's ``probabilities`` at the end (TuNAS) and ``seconds``.
        compile_seconds: Time of this process's first call (compile plus one chunk).
    """

    dna: DNA
    value: Any
    cost: float | None
    net: Any
    controller: Any
    history: list[dict]
    compile_seconds: float


def _as_space(space_value: Any) -> tuple[Space, Any]:
    if isinstance(space_value, Space):
        return space_value, None
    import pliant as pl

    return pl.space(space_value), space_value


def _check_data(data: Any, where: str) -> tuple[Any, Any]:
    if not (isinstance(data, tuple | list) and len(data) == 2):
        raise TypeError(f"weight_sharing_search: {where} must be a pair (x, y), got {data!r:.80}")
    x, y = jnp.asarray(data[0]), jnp.asarray(data[1])
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(
            f"weight_sharing_search: {where} has {x.shape[0]} inputs and {y.shape[0]} labels; "
            "expected the same positive number"
        )
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise TypeError(
            f"weight_sharing_search: {where} labels must be integer class ids, got {y.dtype}"
        )
    return x, y


def _cross_entropy(logits: Any, labels: Any, smoothing: float) -> Any:
    n = logits.shape[-1]
    target = optax.smooth_labels(jax.nn.one_hot(labels, n), smoothing) if smoothing else None
    if target is None:
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return optax.softmax_cross_entropy(logits, target).mean()


def _weight_optimizer(kind: str, lr: float, steps: int) -> Any:
    if kind == "faithful":  # TF1 RMSProp (mean square starts at 1, eps inside the sqrt)
        sched = optax.warmup_cosine_decay_schedule(0.0, lr, max(1, int(0.025 * steps)), steps)
        return optax.rmsprop(
            sched, decay=0.9, eps=1.0, momentum=0.9, eps_in_sqrt=True, initial_scale=1.0
        )
    return optax.adam(optax.cosine_decay_schedule(lr, steps))


def supernet_accuracy(net: Any, dna: DNA, data: tuple[Any, Any], *, batch_size: int = 512) -> Any:
    """Validation accuracy of children with the supernet's shared weights (batch statistics).

    Args:
        net: The supernet (``net(x, dna)``).
        dna: One DNA or a batch ``[n, S]`` (one jitted call per child, never ``vmap``).
        data: ``(x, y)``; accuracy over all of it, in batches of ``batch_size`` (BatchNorm
            uses each batch's statistics, as during the search).

    Returns:
        A float, or float ``[n]`` for a batch.

    Example:
        >>> import numpy as np
        >>> from flax import nnx
        >>> import pliant as pl
        >>> from pliant.spaces.library import mlp_space
        >>> value = mlp_space(4, 2, widths=(2, 4), num_layers=1)
        >>> net = pl.nn.supernet(value, rngs=nnx.Rngs(0))
        >>> x, y = np.ones((8, 4), np.float32), np.zeros(8, np.int32)
        >>> dnas = pl.space(value).make_dna(np.array([[0], [1]]))
        >>> supernet_accuracy(net, dnas, (x, y)).shape
        (2,)
    """
    x, y = _check_data(data, "data")
    graphdef, params, rest = _split(net)
    n = x.shape[0]
    b = min(batch_size, n)
    nb = n // b
    xs = x[: nb * b].reshape(nb, b, *x.shape[1:])
    ys = y[: nb * b].reshape(nb, b)

    @jax.jit
    def acc(index: Any, value: Any, active: Any) -> Any:
        d = DNA(dna.space, index, value, active)

        def one(carry: Any, batch: Any) -> Any:
            m = nnx.merge(graphdef, params, rest)
            logits = m(batch[0], d)
            return carry + jnp.sum(jnp.argmax(logits, -1) == batch[1]), None

        return jax.lax.scan(one, jnp.zeros((), jnp.int32), (xs, ys))[0] / (nb * b)

    register_space_pytree()
    rows = [dna] if not dna.batch_shape else list(dna)
    out = np.array([float(acc(jnp.asarray(r.index), jnp.asarray(r.value), r.active)) for r in rows])
    return float(out[0]) if not dna.batch_shape else out


def weight_sharing_search(
    space_value: Any,
    train_data: tuple[Any, Any],
    val_data: tuple[Any, Any],
    *,
    net: Any = None,
    strategy: str = "tunas",
    controller: Algorithm | None = None,
    cost: Callable[[DNA], Any] | None = None,
    target: float | None = None,
    reward: str = "abs",
    steps: int = 1000,
    preset: str = "cpu",
    batch_size: int | None = None,
    warmup: bool = True,
    op_warmup: str | None = None,
    num_random: int = 2,
    num_candidates: int = 64,
    log_every: int = 50,
    log: str | os.PathLike | None = None,
    checkpoint: str | os.PathLike | None = None,
    progress: bool | Callable[[dict], Any] = False,
    seed: int = 0,
) -> SearchResult:
    """Weight-sharing NAS: trains a supernet with a sampling rule and returns the found child.

    Args:
        space_value: The symbolic search space (a model whose arguments hold placeholders), or
            a bare :class:`~pliant.spaces.dna.Space` together with ``net``.
        train_data: ``(x, y)`` arrays for the shared weights (``y`` integer labels).
        val_data: ``(x, y)`` held-out arrays for the controller's reward (and the final pick).
        net: The supernet, an NNX module called as ``net(x, dna)``; default
            ``pl.nn.supernet(space_value, rngs=nnx.Rngs(seed))``.
        strategy: One of :data:`STRATEGIES`.
        controller: A :func:`~pliant.algorithms.tunas` algorithm planned for ``steps`` updates
            (``"tunas"`` only); default ``tunas(cost, target, reward=reward, steps=steps)`` with
            the preset's controller learning rate.
        cost: ``dna -> scalar`` cost model (``jax.numpy``), e.g. ``functools.partial(
            pl.nn.predict, table)`` or a parameter count.
        target: The cost target ``T0`` (required with ``cost`` for ``"tunas"``; a ceiling on
            the final pick of the other strategies).
        reward: TuNAS reward (``"abs"``, ``"mnas"``, ``"mnas_hard"``, ``"rejection"``).
        steps: Search steps (one weight update, plus one controller update for TuNAS, each).
        preset: ``"cpu"`` or ``"faithful"`` (:func:`~pliant.algorithms.tunas_preset`).
        batch_size: Training batch (default: the preset's); validation batches are 4x larger.
        warmup: Apply TuNAS's op and filter warm-up over the preset's first 25 % of steps.
        op_warmup: How op warm-up trains a warmed-up op slot: ``"average"`` (TuNAS: the
            layer's output is the mean of all its candidates' outputs; the net is called as
            ``net(x, dna, mixed=mask)``) or ``"sample"`` (one uniform candidate). None: average
            for a ``pl.nn.Supernet``, sample for any other net.
        num_random: Uniform children per sandwich step.
        num_candidates: Children scored with the supernet to pick the result of the
            strategies without a controller.
        log_every: Steps per compiled call and per log entry.
        log: Path of a JSON file rewritten at every log entry with the history so far.
        checkpoint: A directory: every ``log_every`` steps the supernet weights, the
            optimizer and controller states, the RNG key and the history are saved there with
            orbax (the latest step only), and a search started with the same arguments and
            directory resumes from it, continuing exactly as if it had not stopped.
        progress: True to print a line per log entry, or a function called with each entry.
        seed: Seeds the supernet, the data order and every sample.

    Returns:
        A :class:`SearchResult`.

    Raises:
        ValueError: For an unknown strategy, preset or ``op_warmup``, bad data, ``steps`` or
            ``log_every`` below 1, a controller with another strategy, ``"tunas"`` with a
            controller that plans another number of steps or whose delay is shorter than the
            warm-up, or a cost without a target.
        TypeError: For a controller that is not from ``pl.algorithms.tunas``.

    Example:
        >>> import numpy as np
        >>> import pliant as pl
        >>> from pliant.spaces.library import mlp_space
        >>> value = mlp_space(4, 2, widths=(2, 4, 8), num_layers=1)
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(64, 4)).astype(np.float32)
        >>> y = (x[:, 0] > 0).astype(np.int32)
        >>> units = lambda dna: (2.0 ** (dna.index[0] + 1))  # the hidden width
        >>> result = weight_sharing_search(
        ...     value, (x, y), (x, y), cost=units, target=4.0, steps=8, log_every=4)
        >>> [entry["step"] for entry in result.history]
        [4, 8]
        >>> type(result.value).__name__, result.value == pl.materialize(value, result.dna)
        ('Node', True)
    """
    if isinstance(log_every, bool) or not isinstance(log_every, int) or log_every < 1:
        raise ValueError(f"weight_sharing_search: log_every must be an int >= 1, got {log_every!r}")
    built = make_search_step(  # checks every other argument
        space_value,
        train_data,
        val_data,
        net=net,
        strategy=strategy,
        controller=controller,
        cost=cost,
        target=target,
        reward=reward,
        steps=steps,
        preset=preset,
        batch_size=batch_size,
        warmup=warmup,
        op_warmup=op_warmup,
        num_random=num_random,
        seed=seed,
    )
    step, net, space, algo = built.step, built.net, built.space, built.controller
    cost, target, symbolic = built.cost, built.target, built.symbolic

    @jax.jit
    def chunk(carry: tuple, ts: Any) -> tuple[tuple, dict]:
        carry, metrics = jax.lax.scan(step, carry, ts)
        return carry, jax.tree_util.tree_map(lambda m: jnp.mean(m), metrics)

    history: list[dict] = []
    carry = built.carry
    compile_s = 0.0
    done = 0
    if checkpoint is not None:
        restored = _restore(checkpoint, carry, steps)
        if restored is not None:
            carry, history = restored
            done = history[-1]["step"] if history else 0
    while done < steps:
        n = min(log_every, steps - done)
        t0 = time.perf_counter()
        carry, metrics = chunk(carry, jnp.arange(done, done + n))
        metrics = {k: float(v) for k, v in metrics.items()}
        if not compile_s:  # the first call of this process compiles
            compile_s = time.perf_counter() - t0
        done += n
        entry: dict[str, Any] = {"step": done, **metrics, "seconds": time.perf_counter() - t0}
        if algo is not None:
            entry["probabilities"] = probabilities(carry[3])
        history.append(entry)
        if checkpoint is not None:
            _save(checkpoint, carry, history, steps)
        if log is not None:
            _write_log(log, strategy, space, history)
        if callable(progress):
            progress(entry)
        elif progress:
            extra = (
                f" entropy {entry['entropy']:.3f} E[cost] {entry['expected_cost']:.4g}"
                if algo is not None
                else ""
            )
            print(
                f"step {done}/{steps}: loss {entry['loss']:.4f} "
                f"val_acc {entry['val_accuracy']:.3f}{extra}"
            )
    params, rest, _, cstate, _ = carry
    nnx.update(net, params, rest)
    xv, yv = built.val_data
    if algo is not None:
        dna = final_architecture(algo, cstate)
    else:
        dna = _best_child(net, space, (xv, yv), cost, target, num_candidates, seed)
    c = None if cost is None else float(np.asarray(_batched(cost, space.stack([dna])))[0])
    value = None
    if symbolic is not None:
        import pliant as pl

        value = pl.materialize(symbolic, dna)
    return SearchResult(dna, value, c, net, cstate, history, compile_s)


class SearchStep(NamedTuple):
    """One step of a weight-sharing search, as :func:`weight_sharing_search` runs it.

    Attributes:
        step: ``step(carry, t) -> (carry, metrics)``, pure and traceable: draws the DNA(s) of
            step ``t`` (an int32 scalar, it sets the warm-up and controller schedules), one
            shared-weight update on a training batch, the validation forward of the scored
            DNA and, for TuNAS, the controller update. The runner scans it ``log_every``
            steps per ``jax.jit`` call; ``jax.jit(step)`` runs one step.
        carry: The initial carry ``(params, rest, opt_state, controller_state, key)``.
        net: The supernet (its variables are the carry's ``params`` and ``rest``).
        space: The space searched.
        symbolic: The symbolic space value (None for a bare Space).
        controller: The TuNAS algorithm (None for the other strategies).
        cost: The cost model (the controller's when none was given; may be None).
        target: The cost target ``T0`` (may be None).
        val_data: The validation arrays ``(x, y)`` as JAX arrays.
        op_warmup: ``"average"`` or ``"sample"`` (how op warm-up trains an op slot).
    """

    step: Callable[[tuple, Any], tuple[tuple, dict]]
    carry: tuple
    net: Any
    space: Space
    symbolic: Any
    controller: Algorithm | None
    cost: Callable[[DNA], Any] | None
    target: float | None
    val_data: tuple[Any, Any]
    op_warmup: str


def make_search_step(
    space_value: Any,
    train_data: tuple[Any, Any],
    val_data: tuple[Any, Any],
    *,
    net: Any = None,
    strategy: str = "tunas",
    controller: Algorithm | None = None,
    cost: Callable[[DNA], Any] | None = None,
    target: float | None = None,
    reward: str = "abs",
    steps: int = 1000,
    preset: str = "cpu",
    batch_size: int | None = None,
    warmup: bool = True,
    op_warmup: str | None = None,
    num_random: int = 2,
    seed: int = 0,
) -> SearchStep:
    """Builds the step :func:`weight_sharing_search` runs (same arguments, same checks).

    For benchmarks and custom loops: ``jax.jit(built.step)(built.carry, t)`` is one search
    step, exactly the runner's (which scans it). Arguments are those of
    :func:`weight_sharing_search`.

    Raises:
        ValueError, TypeError: As :func:`weight_sharing_search`.

    Example:
        >>> import jax, numpy as np
        >>> from pliant.spaces.library import mlp_space
        >>> value = mlp_space(4, 2, widths=(2, 4), num_layers=1)
        >>> x = np.ones((8, 4), np.float32); y = np.zeros(8, np.int32)
        >>> built = make_search_step(value, (x, y), (x, y), strategy="spos", steps=4)
        >>> carry, metrics = jax.jit(built.step)(built.carry, 0)
        >>> sorted(metrics)
        ['loss', 'val_accuracy']
    """
    if strategy not in STRATEGIES:
        raise ValueError(
            f"weight_sharing_search: strategy must be one of {STRATEGIES}, got {strategy!r}"
        )
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"weight_sharing_search: steps must be an int >= 1, got {steps!r}")
    if op_warmup not in (None, "average", "sample"):
        raise ValueError(
            f"weight_sharing_search: op_warmup must be 'average', 'sample' or None, got "
            f"{op_warmup!r}"
        )
    p = tunas_preset(preset, steps=steps, batch_size=batch_size)
    if controller is not None and strategy != "tunas":
        raise ValueError(
            f"weight_sharing_search: strategy={strategy!r} samples children without a "
            "controller; pass controller= only with strategy='tunas'"
        )
    if cost is not None and target is None:
        raise ValueError("weight_sharing_search: a cost model needs a target T0 (target=...)")
    space, symbolic = _as_space(space_value)
    register_space_pytree()
    xt, yt = _check_data(train_data, "train_data")
    xv, yv = _check_data(val_data, "val_data")
    if net is None:
        if symbolic is None:
            raise ValueError(
                "weight_sharing_search: pass the symbolic space value (or net=...) to build the "
                "supernet; a bare Space has no layers"
            )
        from pliant import nn as plnn

        make = getattr(plnn, "supernet", None)
        if make is None:
            raise ValueError("weight_sharing_search: pl.nn.supernet is not available; pass net=")
        net = make(symbolic, rngs=nnx.Rngs(seed))
    from pliant.nn.supernet import Supernet

    # TuNAS's op warm-up trains the average of all candidates of a warmed-up op slot; a
    # pl.nn.Supernet computes it (net(x, dna, mixed)), another net trains one uniform op.
    average_ops = op_warmup or ("average" if isinstance(net, Supernet) else "sample")

    warm_frac = p.warmup if warmup else 0.0
    algo = None
    if strategy == "tunas":
        if controller is None:
            controller = tunas(
                cost,
                target,
                reward=reward,
                steps=steps,
                learning_rate=p.controller_lr,
                delay=p.delay,
                warmup=warm_frac,
            )
        cfg = _settings(controller, "weight_sharing_search")
        if cfg.steps is not None and cfg.steps != steps:
            raise ValueError(
                f"weight_sharing_search: the controller plans its schedule for {cfg.steps} steps "
                f"but the search runs {steps}; build it with tunas(..., steps={steps})"
            )
        if warm_frac > cfg.delay:
            raise ValueError(
                f"weight_sharing_search: the controller delay ({cfg.delay!r} of the steps) must "
                f"be at least as long as the warm-up ({warm_frac!r}); warm-up samples must not "
                "reach a non-zero controller learning rate"
            )
        algo = controller
        if cost is None:
            cost = cfg.cost_fn
            target = cfg.target

    roles = sharing.slot_roles(space)
    largest = sharing.extreme_dna(space, "largest", cost_fn=cost, roles=roles)
    smallest = sharing.extreme_dna(space, "smallest", cost_fn=cost, roles=roles)
    b_train = min(p.batch_size, xt.shape[0])
    b_val = min(p.valid_factor * p.batch_size, xv.shape[0])
    smoothing = p.label_smoothing
    optimizer = _weight_optimizer(p.name, p.weight_lr, steps)
    graphdef, params, rest = _split(net)
    opt_state = optimizer.init(params)
    key = jax.random.key(seed)
    cstate = None if algo is None else algo.init(space, jax.random.fold_in(key, 1))
    distill = strategy == "sandwich"

    def apply(params: Any, rest: Any, x: Any, dna: DNA, mixed: Any = None) -> tuple[Any, Any]:
        m = nnx.merge(graphdef, params, rest)
        out = m(x, dna) if mixed is None else m(x, dna, mixed=mixed)
        return out, nnx.state(m, nnx.Not(nnx.Param))

    def paths(k: Any, t: Any, cs: Any) -> tuple[DNA, DNA | None, Any, Any]:
        """(DNAs to train on [k, S], the controller's own sample or None, controller state,
        the op-warm-up mask of the first row to average or None)."""
        if algo is not None:
            own, cs = algo.propose(cs, k)  # feasible under rejection sampling
            pw = warmup_probability(t, steps, warm_frac)
            trained, mixed = sharing.warmup_path(
                own, jax.random.fold_in(k, 7), pw, pw, roles=roles, largest=largest
            )
            if average_ops != "average" or not warm_frac:
                mixed = None
            return _stack(trained), own, cs, mixed
        if strategy == "spos":
            return _stack(sharing.uniform_path(space, k)), None, cs, None
        if strategy == "fairnas":
            return sharing.fair_paths(space, k), None, cs, None
        rows = sharing.sandwich_paths(space, k, num_random, largest=largest, smallest=smallest)
        return rows, None, cs, None

    def weight_loss(
        params: Any, rest: Any, x: Any, y: Any, rows: DNA, mixed: Any
    ) -> tuple[Any, Any]:
        def child(dna: DNA, rest: Any, teacher: Any, mix: Any = None) -> tuple[Any, Any, Any]:
            logits, rest = apply(params, rest, x, dna, mix)
            if teacher is None:
                loss = _cross_entropy(logits, y, smoothing)
            else:
                loss = optax.softmax_cross_entropy(logits, teacher).mean()
            return loss, rest, logits

        k = rows.batch_shape[0]
        loss, rest, first = child(rows[0], rest, None, mixed)
        if k == 1:
            return loss, rest
        teacher = jax.nn.softmax(jax.lax.stop_gradient(first)) if distill else None

        # One DNA per supernet call (never vmap over its switches); a scan compiles the
        # supernet once for all the other children instead of once per child.
        def body(carry: tuple, row: tuple) -> tuple[tuple, None]:
            total, rest = carry
            li, rest, _ = child(DNA(space, *row), rest, teacher)
            return (total + li, rest), None

        tail = (rows.index[1:], rows.value[1:], rows.active[1:])
        (loss, rest), _ = jax.lax.scan(body, (loss, rest), tail)
        return loss / k, rest

    def expected(cs: Any, k: Any) -> tuple[Any, Any]:
        rs = _unwrap(cs, "weight_sharing_search")
        z = _sample_jax(rs, k, 64)
        _, ent = _log_prob_entropy(_plan(space), rs.params, z.index, z.value, z.active, True)
        ec = jnp.mean(_batched(cost, z)) if cost is not None else jnp.nan
        return jnp.mean(ent), ec

    def step(carry: tuple, t: Any) -> tuple[tuple, dict]:
        params, rest, opt_state, cs, key = carry
        key, k_path, k_tr, k_val, k_exp = jax.random.split(jax.random.fold_in(key, t), 5)
        rows, own, cs, mixed = paths(k_path, t, cs)
        it = jax.random.randint(k_tr, (b_train,), 0, xt.shape[0])
        (loss, rest), grads = jax.value_and_grad(weight_loss, has_aux=True)(
            params, rest, xt[it], yt[it], rows, mixed
        )
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        iv = jax.random.randint(k_val, (b_val,), 0, xv.shape[0])
        scored = own if own is not None else rows[0]
        logits, _ = apply(params, rest, xv[iv], scored)  # batch statistics; discarded
        q: Any = jnp.mean(jnp.argmax(logits, -1) == yv[iv]).astype(jnp.float32)
        metrics = {"loss": loss, "val_accuracy": q}
        if algo is not None:
            cs = algo.feedback(cs, scored, q)
            metrics["entropy"], metrics["expected_cost"] = expected(cs, k_exp)
        return (params, rest, opt_state, cs, key), metrics

    return SearchStep(
        step,
        (params, rest, opt_state, cstate, key),
        net,
        space,
        symbolic,
        algo,
        cost,
        target,
        (xv, yv),
        average_ops,
    )


def _split(net: Any) -> tuple[Any, Any, Any]:
    """(graph, parameters, everything else: batch statistics, RNG state)."""
    parts: Any = nnx.split(net, nnx.Param, ...)
    return parts[0], parts[1], parts[2]


def _stack(dna: DNA) -> DNA:
    return DNA(dna.space, dna.index[None], dna.value[None], dna.active[None])


def _best_child(
    net: Any,
    space: Space,
    val: tuple[Any, Any],
    cost: Callable[[DNA], Any] | None,
    target: float | None,
    num: int,
    seed: int,
) -> DNA:
    from pliant.spaces.sampling import random_dna

    cands = random_dna(space, seed + 1, num)
    if cost is not None and target is not None:
        ok = np.asarray(_batched(cost, cands)) <= target
        if not ok.any():
            raise ValueError(
                f"weight_sharing_search: none of {num} uniform children is within the cost "
                f"target {target!r}; raise num_candidates or the target"
            )
        cands = space.make_dna(np.asarray(cands.index)[ok], np.asarray(cands.value)[ok])
    acc = supernet_accuracy(net, cands, val)
    return cands[int(np.argmax(acc))]


def _leaves(carry: tuple) -> tuple[list, Any]:
    params, rest, opt_state, cstate, key = carry
    leaves, treedef = jax.tree_util.tree_flatten(
        (params, rest, opt_state, cstate, jax.random.key_data(key))
    )
    return leaves, treedef


def _save(directory: Any, carry: tuple, history: list[dict], steps: int) -> None:
    import orbax.checkpoint as ocp

    root = os.path.abspath(os.fspath(directory))
    os.makedirs(root, exist_ok=True)
    leaves, _ = _leaves(carry)
    step = history[-1]["step"]
    path = os.path.join(root, f"step_{step}")
    with ocp.StandardCheckpointer() as ckptr:
        ckptr.save(path, {f"{i:05d}": leaf for i, leaf in enumerate(leaves)}, force=True)
    meta = {"step": step, "steps": steps, "num_leaves": len(leaves), "history": history}
    tmp = os.path.join(root, "latest.json.tmp")
    with open(tmp, "w") as f:
        json.dump(meta, f, allow_nan=True)
    os.replace(tmp, os.path.join(root, "latest.json"))  # the commit point
    for name in os.listdir(root):  # older steps are no longer needed
        if name.startswith("step_") and name != f"step_{step}":
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)


def _restore(directory: Any, carry: tuple, steps: int) -> tuple[tuple, list[dict]] | None:
    import orbax.checkpoint as ocp

    root = os.path.abspath(os.fspath(directory))
    latest = os.path.join(root, "latest.json")
    if not os.path.exists(latest):
        return None
    with open(latest) as f:
        meta = json.load(f)
    leaves, treedef = _leaves(carry)
    if meta["steps"] != steps or meta["num_leaves"] != len(leaves):
        raise ValueError(
            f"weight_sharing_search: the checkpoint in {root!r} is of a search of "
            f"{meta['steps']} steps with {meta['num_leaves']} state arrays; this one runs {steps} "
            f"steps with {len(leaves)}; resume with the same arguments or use another directory"
        )
    target = {f"{i:05d}": leaf for i, leaf in enumerate(leaves)}
    with ocp.StandardCheckpointer() as ckptr:
        saved = ckptr.restore(os.path.join(root, f"step_{meta['step']}"), target)
    params, rest, opt_state, cstate, key_data = jax.tree_util.tree_unflatten(
        treedef, [jnp.asarray(saved[k]) for k in sorted(saved)]
    )
    return (params, rest, opt_state, cstate, jax.random.wrap_key_data(key_data)), meta["history"]


def _write_log(path: Any, strategy: str, space: Space, history: list[dict]) -> None:
    data = {"strategy": strategy, "space": json.loads(space.to_json()), "history": history}
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, allow_nan=True)
    os.replace(tmp, path)
