"""TuNAS's controller: REINFORCE with a resource-aware reward and the authors' schedule.

Bender et al. (2020) train one categorical per decision with REINFORCE (:func:`reinforce`:
active-path log-prob, Adam with ``b1 = 0``, a zero-debiased reward EMA with momentum 0.95) and
turn a quality ``Q`` (validation accuracy of the sampled child) into a reward with a cost model
``T`` and a target ``T0``:

- ``"abs"`` (the default, the paper's): ``R = Q + beta * |T / T0 - 1|`` with ``beta < 0``
  (default -0.10); the penalty is two-sided, so the search is pinned to the target;
- ``"mnas"``: ``R = Q * (T / T0) ** beta``; ``"mnas_hard"``: ``R = Q * min((T / T0) ** beta, 1)``;
- ``"rejection"``: TabNAS (:func:`rejection_sampling`) with the hard budget ``T <= T0`` and the
  reward ``Q`` alone.

``T`` is ``cost_fn(dna)``, a ``jax.numpy`` function of one DNA's arrays evaluated inside the
jitted update (a per-op latency table, a parameter count or FLOPs; :func:`cost_table` builds
the additive kind). The controller's learning rate follows the authors' schedule when ``steps``
is given: 0 for the first ``delay`` fraction of updates (25 %), then ``lr0 * 10 ** progress``.
The warm-up that trains all ops / the full width early (:func:`warmup_probability`) must end no
later than that delay, so warm-up samples never move the policy (pitfall 4); ``tunas`` checks it.

The final architecture is the policy's most likely DNA (:func:`final_architecture`): the
per-decision argmax, or the most likely *feasible* DNA under rejection sampling.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from pliant.algorithms.base import Algorithm, Key, Reward
from pliant.algorithms.reinforce import (
    ReinforceState,
    _batch_arrays,
    _config_of,
    _traced,
    _unwrap,
    _update,
    most_likely,
    reinforce,
)
from pliant.algorithms.rejection import most_likely_feasible, rejection_sampling
from pliant.spaces.dna import DNA, Space

__all__ = [
    "REWARDS",
    "TunasPreset",
    "controller_schedule",
    "cost_of",
    "cost_table",
    "final_architecture",
    "shaped_reward",
    "tunas",
    "tunas_preset",
    "warmup_probability",
]

REWARDS = ("abs", "mnas", "mnas_hard", "rejection")
"""The reward functions :func:`tunas` offers."""

CostFn = Callable[[DNA], Any]


class TunasPreset(NamedTuple):
    """Numbers of a weight-sharing search that change between a TPU pod and a laptop.

    Both presets run the same code; only these values differ.

    Attributes:
        name: ``"faithful"`` or ``"cpu"``.
        batch_size: Training batch per step (the validation batch is ``valid_factor`` times it).
        valid_factor: Validation batch size over the training batch (TuNAS: 4).
        controller_lr: Base controller learning rate ``lr0`` for ``steps`` total steps.
        weight_lr: Peak learning rate of the shared weights.
        warmup: Fraction of steps of op and filter warm-up (TuNAS: 0.25).
        delay: Fraction of steps with a zero controller learning rate (TuNAS: 0.25).
        label_smoothing: Label smoothing of the weight loss (TuNAS: 0.1).
        weight_decay: L2 coefficient on the (masked) kernels (TuNAS: 4e-5).

    Example:
        >>> p = tunas_preset("cpu", steps=4000)
        >>> p.name, p.batch_size, round(p.controller_lr, 4)
        ('cpu', 64, 0.0333)
    """

    name: str
    batch_size: int
    valid_factor: int
    controller_lr: float
    weight_lr: float
    warmup: float
    delay: float
    label_smoothing: float
    weight_decay: float


def tunas_preset(name: str, *, steps: int, batch_size: int | None = None) -> TunasPreset:
    """The ``faithful`` (paper) or ``cpu`` (small batches, scaled rates) numbers.

    ``faithful`` is TuNAS's: batch 4096, controller ``lr0 = 3e-4 * B / 256``, weight peak
    ``0.165 * B / 256`` (for TF1-style RMSProp). ``cpu`` keeps the product of the controller
    rate and the number of controller steps of the original run (about 100, so
    ``lr0 = 100 / (0.75 * steps)``, capped at 0.1), because ``3e-4 * B / 256`` at a batch of 64
    would never move the policy (pitfall 8); its weights use Adam-scale rates (3e-3).

    Args:
        name: ``"faithful"`` or ``"cpu"``.
        steps: Total search steps (the controller rate of ``cpu`` depends on it).
        batch_size: Overrides the preset's training batch (rates scale with it as above).

    Raises:
        ValueError: For another name, ``steps < 1`` or ``batch_size < 1``.

    Example:
        >>> tunas_preset("faithful", steps=27000).controller_lr
        0.0048
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"tunas_preset: steps must be an int >= 1, got {steps!r}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"tunas_preset: batch_size must be an int >= 1, got {batch_size!r}")
    if name == "faithful":
        b = 4096 if batch_size is None else batch_size
        return TunasPreset(name, b, 4, 3e-4 * b / 256, 0.165 * b / 256, 0.25, 0.25, 0.1, 4e-5)
    if name == "cpu":
        b = 64 if batch_size is None else batch_size
        lr0 = min(0.1, 100.0 / (0.75 * steps))
        return TunasPreset(name, b, 4, lr0, 3e-3 * math.sqrt(b / 64), 0.25, 0.25, 0.1, 4e-5)
    raise ValueError(f"tunas_preset: expected 'faithful' or 'cpu', got {name!r}")


def warmup_probability(step: Any, steps: int, fraction: float = 0.25) -> Any:
    """TuNAS's op / filter warm-up: ``1 - min(1, step / (fraction * steps))``.

    The probability, at ``step``, of training all ops (op warm-up) or the full width (filter
    warm-up) instead of the sampled choice: 1 at step 0, decaying linearly to 0 at
    ``fraction * steps``. Traceable (``step`` may be a traced int); ``fraction = 0`` disables it.

    Example:
        >>> [float(warmup_probability(t, 100)) for t in (0, 10, 25, 80)]
        [1.0, 0.6, 0.0, 0.0]
    """
    width = fraction * steps
    if width <= 0:
        return 0.0 * step
    ramp = step / width
    if isinstance(ramp, int | float):
        return 1.0 - min(1.0, ramp)
    import jax.numpy as jnp

    return 1.0 - jnp.minimum(1.0, ramp)


def controller_schedule(
    learning_rate: float, steps: int, *, delay: float = 0.25, ramp: float = 10.0
) -> Callable[[Any], Any]:
    """The controller's learning rate per update: 0 during the delay, then ``lr0 * ramp ** p``.

    ``p = (t - D) / (steps - D)`` is the progress after the delay ``D = ceil(delay * steps)``,
    so the rate grows ``ramp``-fold (TuNAS: 10) by the last step and stays there after it. The
    returned function maps an update count (an optax schedule) to a rate.

    Example:
        >>> f = controller_schedule(0.01, 100)
        >>> [round(float(f(t)), 4) for t in (0, 24, 25, 100)]
        [0.0, 0.0, 0.01, 0.1]
    """
    d = _delay_steps(delay, steps)
    span = max(steps - d, 1)

    def schedule(count: Any) -> Any:
        import jax.numpy as jnp

        progress = jnp.clip((count - d) / span, 0.0, 1.0)
        return jnp.where(count < d, 0.0, learning_rate * ramp**progress)

    return schedule


def _delay_steps(fraction: float, steps: int) -> int:
    return math.ceil(fraction * steps - 1e-9)


def cost_table(table: Sequence[Sequence[float]] | np.ndarray, bias: float = 0.0) -> CostFn:
    """An additive cost model: ``bias + sum over active slots s of table[s][index[s]]``.

    The per-op lookup table of TuNAS's latency model without the neighbour conditioning (or a
    per-choice parameter / FLOP count). Rows may have different lengths (one entry per
    candidate of each slot); float slots need a row too (it is ignored). Traceable and
    vectorized over leading batch dimensions.

    Example:
        >>> from pliant.spaces.dna import Slot, Space
        >>> space = Space([Slot("a", "choice", 2), Slot("b", "choice", 3)])
        >>> cost = cost_table([[1.0, 2.0], [0.0, 10.0, 20.0]], bias=0.5)
        >>> float(cost(space.make_dna(np.array([1, 2]))))
        22.5
    """
    rows = [np.asarray(r, np.float64).reshape(-1) for r in table]
    if not rows or any(r.size == 0 or not np.all(np.isfinite(r)) for r in rows):
        raise ValueError(
            f"cost_table: expected one non-empty row of finite costs per slot, got {table!r:.80}"
        )
    width = max(r.size for r in rows)
    padded = np.zeros((len(rows), width), np.float32)
    for i, r in enumerate(rows):
        padded[i, : r.size] = r

    def cost(dna: DNA) -> Any:
        if dna.index.shape[-1] != len(rows):
            raise ValueError(
                f"cost_table: the table has {len(rows)} rows but the DNA has "
                f"{dna.index.shape[-1]} slots; give one row per slot of the space"
            )
        host = isinstance(dna.index, np.ndarray)
        xp: Any = np
        if not host:
            import jax.numpy as xp
        per = xp.take_along_axis(
            xp.broadcast_to(padded, (*dna.index.shape, width)), dna.index[..., None], axis=-1
        )[..., 0]
        return bias + xp.sum(xp.where(dna.active, per, 0.0), axis=-1)

    return cost


def _name(fn: Any) -> str:
    return getattr(fn, "__name__", None) or repr(fn)


def shaped_reward(
    quality: Any, cost: Any, target: float, *, reward: str = "abs", beta: float = -0.10
) -> Any:
    """TuNAS's reward from a quality and a cost (traceable; ``"rejection"`` returns ``quality``).

    Example:
        >>> round(float(shaped_reward(0.9, 120.0, 100.0)), 4)  # 20 % over the target
        0.88
        >>> round(float(shaped_reward(0.9, 80.0, 100.0)), 4)  # 20 % under: penalised too
        0.88
    """
    if reward not in REWARDS:
        raise ValueError(f"shaped_reward: reward must be one of {REWARDS}, got {reward!r}")
    if reward == "rejection":
        return quality
    import jax.numpy as jnp

    ratio = jnp.asarray(cost, jnp.float32) / target
    if reward == "abs":
        return quality + beta * jnp.abs(ratio - 1.0)
    factor = ratio**beta
    if reward == "mnas_hard":
        factor = jnp.minimum(factor, 1.0)
    return quality * factor


class _Tunas(NamedTuple):
    cost_fn: CostFn | None
    target: float | None
    reward: str
    beta: float
    constraint: Callable[[DNA], Any] | None
    steps: int | None
    delay: float


def _vmapped(cost_fn: CostFn, space: Space, index: Any, value: Any, active: Any) -> Any:
    import jax
    import jax.numpy as jnp

    def one(index: Any, value: Any, active: Any) -> Any:
        return jnp.asarray(cost_fn(DNA(space, index, value, active)), jnp.float32)

    out = jax.vmap(one)(jnp.asarray(index), jnp.asarray(value), jnp.asarray(active))
    if out.shape != index.shape[:1]:
        raise ValueError(
            f"tunas: cost_fn {_name(cost_fn)} must return a scalar for one DNA, got shape "
            f"{out.shape[1:]}"
        )
    return out


@functools.lru_cache(maxsize=64)
def _jitted_cost(cost_fn: CostFn) -> Any:
    import jax

    return jax.jit(functools.partial(_vmapped, cost_fn), static_argnums=0)


def _batched(cost_fn: CostFn, dna: DNA) -> Any:
    """``cost_fn`` (written for one DNA) over a batch ``[n, S]`` -> ``[n]``, as float32.

    Host DNAs give concrete costs even while some caller is being traced (TabNAS builds its
    table of feasible DNAs on first use, possibly inside ``jax.jit``).
    """
    if _traced(dna.index, dna.value, dna.active):
        return _vmapped(cost_fn, dna.space, dna.index, dna.value, dna.active)
    import jax

    out = _jitted_cost(cost_fn)(dna.space, dna.index, dna.value, dna.active)
    if _traced(out):  # called inside a trace: evaluate op by op, concretely
        with jax.ensure_compile_time_eval():
            out = _vmapped(cost_fn, dna.space, dna.index, dna.value, dna.active)
    return out


def tunas(
    cost_fn: CostFn | None = None,
    target: float | None = None,
    *,
    reward: str = "abs",
    beta: float = -0.10,
    learning_rate: float | None = None,
    steps: int | None = None,
    delay: float = 0.25,
    warmup: float = 0.25,
    ramp: float = 10.0,
    entropy_weight: float = 0.0,
    baseline_momentum: float = 0.95,
    num_mc: int = 4096,
    max_tries: int = 1000,
) -> Algorithm:
    """TuNAS's controller as an Algorithm: REINFORCE on a cost-shaped reward (traceable).

    ``feedback(state, dna, quality)`` takes the child's quality ``Q`` (validation accuracy) and
    learns from the shaped reward of ``Q`` and ``cost_fn(dna)`` (evaluated inside the jitted
    update); without ``cost_fn`` the reward is ``Q``. Proposals come from the policy, in the
    graph under ``jax.jit`` with a JAX key. ``pl.nn.weight_sharing_search`` runs it against a
    supernet; as a plain Algorithm it works with host rewards in ``pl.search`` too.

    Args:
        cost_fn: ``dna -> scalar`` cost of one DNA in ``jax.numpy`` (latency table, parameter
            count, FLOPs; see :func:`cost_table`), or None for quality-only rewards.
        target: The resource target ``T0 > 0``; required with ``cost_fn``.
        reward: One of :data:`REWARDS`; ``"rejection"`` is TabNAS (hard budget ``T <= T0``).
        beta: Cost exponent / weight, < 0 (TuNAS: -0.10).
        learning_rate: Base controller rate ``lr0``; default 0.1 (see :func:`reinforce`), or
            :func:`tunas_preset`'s ``cpu`` rule when ``steps`` is given.
        steps: Total controller updates planned. When given, the rate follows
            :func:`controller_schedule` (zero for the first ``delay`` fraction, then a
            ``ramp``-fold exponential ramp); when None the rate is constant.
        delay: Fraction of updates with a zero rate (TuNAS: 0.25).
        warmup: The op / filter warm-up fraction the caller uses (TuNAS: 0.25); it must not
            exceed ``delay``, so that warm-up samples never move the policy.
        ramp: Growth of the rate from the end of the delay to the last step (TuNAS: 10).
        entropy_weight: Entropy bonus (TuNAS: 0).
        baseline_momentum: Momentum of the zero-debiased reward EMA (TuNAS: 0.95).
        num_mc: TabNAS Monte-Carlo samples for P(feasible) (``reward="rejection"``).
        max_tries: TabNAS policy samples per proposal before giving up.

    Returns:
        A traceable single-objective :class:`~pliant.algorithms.base.Algorithm` named
        ``"tunas"``; its state is a :class:`~pliant.algorithms.reinforce.ReinforceState` (a
        :class:`~pliant.algorithms.rejection.RejectionState` with ``"rejection"``), so
        :func:`~pliant.algorithms.reinforce.probabilities` and friends read it.

    Raises:
        ValueError: For an unknown reward, ``beta >= 0``, a cost without a positive finite
            target (or a target or ``"rejection"`` without a cost), ``warmup > delay``,
            fractions outside [0, 1), ``steps < 1``, ``ramp <= 0`` or a bad learning rate.

    Example:
        >>> from pliant.spaces.dna import Slot, Space
        >>> space = Space([Slot("w1", "choice", 4), Slot("w2", "choice", 4)])
        >>> cost = cost_table([[1, 2, 3, 4], [1, 2, 3, 4]])  # e.g. parameters per width
        >>> algo = tunas(cost, target=5.0, beta=-2.0)
        >>> state = algo.init(space, 0)
        >>> for step in range(300):  # quality grows with both widths
        ...     dna, state = algo.propose(state, step)
        ...     state = algo.feedback(state, dna, 0.1 * float(sum(dna.to_list())))
        >>> float(cost(final_architecture(algo, state)))
        5.0
    """
    if reward not in REWARDS:
        raise ValueError(f"tunas: reward must be one of {REWARDS}, got {reward!r}")
    if not (isinstance(beta, int | float) and math.isfinite(beta) and beta < 0):
        raise ValueError(
            f"tunas: beta must be a negative number (TuNAS: -0.10; a cost over or under the "
            f"target lowers the reward), got {beta!r}"
        )
    if cost_fn is not None and not callable(cost_fn):
        raise TypeError(f"tunas: cost_fn must be a function dna -> scalar, got {cost_fn!r:.80}")
    if cost_fn is not None:
        if not (isinstance(target, int | float) and math.isfinite(target) and target > 0):
            raise ValueError(
                f"tunas: a cost_fn needs a positive finite target T0 (the resource budget), got "
                f"target={target!r}"
            )
    elif target is not None or reward == "rejection":
        raise ValueError(
            f"tunas: target={target!r} and reward={reward!r} need a cost_fn (dna -> scalar) to "
            "compare with the target"
        )
    for label, v in (("delay", delay), ("warmup", warmup)):
        if not (isinstance(v, int | float) and 0.0 <= v < 1.0):
            raise ValueError(f"tunas: {label} must be a fraction of the steps in [0, 1), got {v!r}")
    if warmup > delay:
        raise ValueError(
            f"tunas: the controller delay ({delay!r} of the steps) must be at least as long as "
            f"the op/filter warm-up ({warmup!r}): warm-up samples are not policy samples and "
            "must not reach a non-zero controller learning rate; raise delay or lower warmup"
        )
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(f"tunas: steps must be None or an int >= 1, got {steps!r}")
    if not (isinstance(ramp, int | float) and math.isfinite(ramp) and ramp > 0):
        raise ValueError(f"tunas: ramp must be a positive number, got {ramp!r}")
    if learning_rate is None:
        learning_rate = 0.1 if steps is None else tunas_preset("cpu", steps=steps).controller_lr
    if not (isinstance(learning_rate, int | float) and math.isfinite(learning_rate)):
        raise ValueError(f"tunas: learning_rate must be a positive float, got {learning_rate!r}")
    if learning_rate <= 0:
        raise ValueError(f"tunas: learning_rate must be a positive float, got {learning_rate!r}")

    import optax

    rate: Any = learning_rate
    if steps is not None:
        rate = controller_schedule(learning_rate, steps, delay=delay, ramp=ramp)
    optimizer = optax.adam(rate, b1=0.0, b2=0.999, eps=1e-8)
    base = reinforce(
        optimizer=optimizer, entropy_weight=entropy_weight, baseline_momentum=baseline_momentum
    )
    cfg = _config_of(base)
    assert cfg is not None  # reinforce always records it

    if reward == "rejection":
        assert cost_fn is not None and target is not None
        budget = float(target)

        def within_budget(dna: DNA) -> Any:
            costs = _batched(cost_fn, dna)
            return (costs if _traced(costs) else np.asarray(costs)) <= budget

        within_budget.__name__ = f"cost <= {budget:g}"
        algo = rejection_sampling(base, within_budget, num_mc=num_mc, max_tries=max_tries)._replace(
            name="tunas"
        )
        algo.init.tunas_config = _Tunas(cost_fn, budget, reward, beta, within_budget, steps, delay)  # type: ignore[attr-defined]
        return algo

    settings = _Tunas(cost_fn, target, reward, float(beta), None, steps, delay)

    def rewards_of(index: Any, value: Any, active: Any, quality: Any, space: Space) -> Any:
        if cost_fn is None:
            return quality
        assert target is not None
        costs = _batched(cost_fn, DNA(space, index, value, active))
        return shaped_reward(quality, costs, target, reward=reward, beta=beta)

    def update(state: ReinforceState, index: Any, value: Any, active: Any, quality: Any) -> Any:
        shaped = rewards_of(index, value, active, quality, state.space)
        return _update(cfg, state, index, value, active, shaped)[0]

    @functools.cache
    def jitted_update() -> Any:
        import jax

        return jax.jit(update)

    def init(space: Space, key: Key) -> ReinforceState:
        return base.init(space, key)

    def feedback(state: ReinforceState, dna: DNA, reward: Reward) -> ReinforceState:
        # ``reward`` is the child's quality Q; the cost term is added in the update.
        index, value, active, q = _batch_arrays(state.space, dna, reward, "tunas")
        if _traced(state.params.logits, index, q):
            return update(state, index, value, active, q)
        return jitted_update()(state, index, value, active, q)

    init.reinforce_config = cfg  # type: ignore[attr-defined]  # so rejection_sampling accepts it
    init.tunas_config = settings  # type: ignore[attr-defined]
    return Algorithm(
        init, base.propose, feedback, name="tunas", traceable=True, multi_objective=False
    )


def _settings(algo: Algorithm, where: str) -> _Tunas:
    cfg = getattr(algo.init, "tunas_config", None)
    if not isinstance(cfg, _Tunas):
        raise TypeError(f"{where}: expected an algorithm from tunas(...), got {algo.name!r}")
    return cfg


def final_architecture(algo: Algorithm, state: Any, **kwargs: Any) -> DNA:
    """TuNAS's output: the policy's most likely DNA (most likely feasible one for TabNAS).

    Args:
        algo: The :func:`tunas` algorithm that produced ``state``.
        state: Its state.
        **kwargs: Passed to :func:`~pliant.algorithms.rejection.most_likely_feasible` under
            ``reward="rejection"`` (``exact_limit``, ``num_samples``, ``key``).

    Raises:
        TypeError: When ``algo`` is not a tunas algorithm.

    Example:
        >>> from pliant.spaces.dna import Slot, Space
        >>> algo = tunas()
        >>> final_architecture(algo, algo.init(Space([Slot("a", "choice", 2)]), 0)).to_list()
        [0]
    """
    cfg = _settings(algo, "final_architecture")
    _unwrap(state, "final_architecture")
    if cfg.constraint is not None:
        return most_likely_feasible(state, cfg.constraint, **kwargs)
    return most_likely(state)


def cost_of(algo: Algorithm, dna: DNA) -> Any:
    """The cost of DNAs under ``algo``'s ``cost_fn`` (``[n]`` for a batch); None without one."""
    cfg = _settings(algo, "cost_of")
    if cfg.cost_fn is None:
        return None
    if dna.batch_shape:
        return _batched(cfg.cost_fn, dna)
    return cfg.cost_fn(dna)
