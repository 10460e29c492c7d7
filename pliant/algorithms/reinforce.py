"""REINFORCE over a factorized policy: the TuNAS controller, traceable and NumPy-fast on the host.

The policy has one independent categorical per choice/int slot (logits in one padded array
``[S, max_choices]`` under the Space's ``choice_mask``, initialised to 0, temperature 1) and one
Gaussian per float slot on an unconstrained ``z`` with ``value = lo + sigmoid(z) * (hi - lo)``
(in log space on a log scale; mean 0 and std 1 at init, so values start spread over the range;
the log-prob of a given value recovers ``z`` as the logit of its position in the range, clipped
to ``[1e-6, 1 - 1e-6]``). Manyof groups are sampled so that every DNA validates:

- distinct, unsorted: position ``j`` draws from its own logits with the earlier picks masked
  out; the log-prob of the ordered tuple is exact.
- distinct, sorted: a *conditional Poisson* distribution over k-subsets of the first position's
  logit row ``w``, ``p(set) = exp(sum_{c in set} w_c) / e_k(exp(w))``, sampled in ascending
  order; the log-prob of the set is exact (``e_k`` by dynamic programming).
- not distinct, sorted: k iid draws from the first position's row, sorted; the log-prob of the
  multiset is exact (it includes the multinomial coefficient, which has no gradient).
- not distinct, unsorted: independent categoricals, one per position.

Log-probs are exact and normalized over the valid DNAs of a finite space (TabNAS sums them to
get P(feasible)), and only ACTIVE slots contribute to log-prob and entropy (the hierarchical
log-prob of TuNAS). The loss for a DNA is ``-stop_grad(R - b) * log pi(dna) - entropy_weight *
H``, where ``b`` is a zero-debiased EMA of the (batch-mean) reward updated before the advantage.
The entropy is exact per categorical, Gaussian and sorted distinct group; a distinct unsorted
group adds the entropies of its positions given the DNA's earlier picks, and a sorted multiset
the entropy of its k ordered draws (an upper bound).

Keys: a ``jax.random`` key samples with ``jax.random`` (traceable: ``propose`` and ``feedback``
run inside ``jax.jit`` and ``lax.scan`` with the state as a carry); an int key samples on the
host with NumPy from the current probabilities. On the host, ``feedback`` validates the reward
and runs one jitted update per Space. Under tracing a non-finite reward cannot raise: the update
is skipped (the state comes back unchanged, step count included).
"""

from __future__ import annotations

import functools
import math
import sys
from typing import Any, NamedTuple

import numpy as np

from pliant.algorithms.base import (
    Algorithm,
    Key,
    Reward,
    check_reward,
    host_rng,
    register_space_pytree,
)
from pliant.spaces.dna import DNA, Space

__all__ = [
    "MAX_CATEGORICAL",
    "ReinforceParams",
    "ReinforceState",
    "log_prob",
    "most_likely",
    "probabilities",
    "reinforce",
    "sample",
]

MAX_CATEGORICAL = 4096
"""Most values an int slot may have: the policy keeps one logit per value."""

DEFAULT_LEARNING_RATE = 0.1
_NEG = -1e30  # finite "minus infinity": keeps gradients of masked entries at 0, never NaN
_CLIP = 1e-6
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
# Adam moves every parameter by about the learning rate per step, whatever the gradient's scale,
# and a Gaussian's score is far noisier than a categorical's: the z-mean is stored divided by 5
# (it moves 5x slower than a logit) and the std is floored at e^-3 ~ 0.05, so the policy cannot
# collapse onto one value and stop learning. Measured on a 2-float toy (lr 0.1, 400 steps, 8
# seeds): without them 3 of 8 runs ended far off; with them all within 1% of the range.
_MEAN_SCALE = 0.2
_MIN_LOG_STD = -3.0


class ReinforceParams(NamedTuple):
    """The policy parameters (the pytree the optimizer updates).

    Attributes:
        logits: float32 ``[S, max_choices]``; padding and float rows are unused.
        mean: float32 ``[S]``: Gaussian mean of ``z`` per float slot, divided by 5 (the mean of
            ``z`` is ``0.2 * mean``, so Adam moves it 5x slower than a logit).
        log_std: float32 ``[S]``: Gaussian log-std of ``z`` per float slot (the std used is
            floored at ``exp(-3)``).

    Example:
        >>> from pliant.spaces.dna import Slot, Space
        >>> state = reinforce().init(Space([Slot("op", "choice", 3)]), 0)
        >>> state.params.logits.shape
        (1, 3)
    """

    logits: Any
    mean: Any
    log_std: Any


class ReinforceState(NamedTuple):
    """State of :func:`reinforce`; a pytree (the Space is static) that round-trips through JSON.

    Attributes:
        space: The Space searched.
        params: The policy, :class:`ReinforceParams`.
        opt_state: The optax optimizer state.
        baseline: The zero-debiased EMA of the reward, ``num / den`` (0 before any feedback).
        baseline_den: Its denominator ``den = sum_t (1 - m) m^t`` (0 before any feedback).
        step: Number of updates applied.

    Example:
        >>> from pliant.spaces.dna import Slot, Space
        >>> state = reinforce().init(Space([Slot("op", "choice", 3)]), 0)
        >>> int(state.step)
        0
    """

    space: Space
    params: ReinforceParams
    opt_state: Any
    baseline: Any
    baseline_den: Any
    step: Any


class _Config(NamedTuple):
    optimizer: Any
    entropy_weight: float
    momentum: float


# ------------------------------------------------------------------------------------------
# Static per-space plan


class _Group(NamedTuple):
    kind: str  # "seq" (distinct), "subset" (distinct sorted), "multiset" (sorted)
    pos: tuple[int, ...]
    n: int


class _Plan(NamedTuple):
    num_slots: int
    width: int
    mask: np.ndarray  # bool [S, W]
    indep: np.ndarray  # bool [S]: choice/int slots drawn from their own row, unmasked
    groups: tuple[_Group, ...]
    has_float: bool
    float_ok: np.ndarray  # bool [S]: float slots with lo < hi (the others are constants)
    log_scale: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    log_lo: np.ndarray
    log_hi: np.ndarray
    lo32: np.ndarray  # float32 bounds rounded inwards
    hi32: np.ndarray
    top: np.ndarray  # int32 [S]: the last valid index of each slot


def _inward(bound: np.ndarray, up: bool) -> np.ndarray:
    b = bound.astype(np.float32)
    outside = b < bound if up else b > bound
    return np.where(outside, np.nextafter(b, np.float32(np.inf if up else -np.inf)), b)


@functools.lru_cache(maxsize=128)
def _plan(space: Space) -> _Plan:
    for s in space.slots:
        if s.kind == "int" and s.num_choices > MAX_CATEGORICAL:
            raise ValueError(
                f"reinforce: slot {s.id!r} is an int slot with {s.num_choices} values; the policy "
                f"keeps one logit per value and supports at most {MAX_CATEGORICAL}. Search it as "
                f"pl.floatv({int(s.lo)}, {int(s.hi)}) and round in your code, or use a coarser "
                "pl.intv range."
            )
    is_cat = ~space.is_float
    indep = is_cat.copy()
    groups = []
    for g in space.groups:
        pos = tuple(g.slots)
        n = int(space.num_choices[pos[0]])
        if g.distinct or g.sorted:
            kind = "subset" if g.distinct and g.sorted else "seq" if g.distinct else "multiset"
            groups.append(_Group(kind, pos, n))
            indep[list(pos)] = False
    log = space.log_scale & space.is_float
    lo, hi = space.lo, space.hi
    return _Plan(
        num_slots=len(space),
        width=space.choice_mask.shape[1],
        mask=space.choice_mask,
        indep=indep,
        groups=tuple(groups),
        has_float=bool(space.is_float.any()),
        float_ok=space.is_float & (hi > lo),
        log_scale=log,
        lo=lo,
        hi=hi,
        log_lo=np.log(np.where(log, lo, 1.0)),
        log_hi=np.log(np.where(log, hi, 1.0)),
        lo32=_inward(lo, up=True),
        hi32=_inward(hi, up=False),
        top=np.maximum(space.num_choices - 1, 0).astype(np.int32),
    )


# ------------------------------------------------------------------------------------------
# Sampling (NumPy or jax.numpy: one code path)


def _suffix_table(w: Any, k: int, xp: Any) -> Any:
    """``T[i, r] = log e_r(exp(w[i:]))`` for i in 0..n, r in 0..k (elementary symmetric)."""
    n = w.shape[0]
    col = xp.zeros((n + 1,), w.dtype)
    neg = xp.full((1,), _NEG, w.dtype)
    cols = [col]
    for _ in range(k):
        terms = w + col[1:]
        c: Any
        if xp is np:
            c = np.logaddexp.accumulate(terms[::-1])[::-1]
        elif n <= 256:  # a masked logsumexp compiles much faster than an associative scan
            import jax

            later = np.arange(n)[None, :] >= np.arange(n)[:, None]
            c = jax.nn.logsumexp(xp.where(later, terms[None, :], _NEG), axis=-1)
        else:
            import jax

            c = jax.lax.cumlogsumexp(terms, reverse=True)
        col = xp.concatenate([c, neg])
        cols.append(col)
    return xp.stack(cols, axis=-1)


def _set(index: Any, pos: tuple[int, ...], sel: Any, xp: Any) -> Any:
    if xp is np:
        index[..., list(pos)] = sel
        return index
    return index.at[..., np.array(pos)].set(sel)


class _Noise(NamedTuple):
    uniform: Any  # [..., S]: inverse-CDF draws of the categoricals, or None
    gumbel: Any  # [..., S, W]: Gumbel noise for the categoricals instead, or None
    gumbels: tuple  # per _Plan.groups entry, [..., k, n]: Gumbel noise of each position
    normal: Any  # [..., S] standard normals of the float slots, or None


def _inverse_cdf(plan: _Plan, logits: Any, u: Any, xp: Any) -> Any:
    """Categorical draws from uniforms ``[..., S]``: one uniform per slot, not one per choice."""
    e = xp.exp(logits - logits.max(axis=-1, keepdims=True))
    cdf = xp.cumsum(e / e.sum(axis=-1, keepdims=True), axis=-1)  # [S, W]
    if xp is np and u.size * plan.width > 1 << 20:  # avoid a big [n, S, W] temporary
        flat = u.reshape(-1, plan.num_slots)
        count = np.stack([np.searchsorted(cdf[i], flat[:, i]) for i in range(plan.num_slots)], -1)
        count = count.reshape(u.shape)
    else:  # XLA fuses the comparison into the sum
        count = (cdf < u[..., None]).sum(axis=-1)
    return xp.minimum(count, plan.top).astype(np.int32)  # rounding may overshoot the last


def _draw(plan: _Plan, params: ReinforceParams, noise: _Noise | None, xp: Any) -> tuple:
    """Indices and values from noise; the per-decision mode when ``noise`` is None."""
    logits = xp.where(plan.mask, params.logits, _NEG)
    if noise is not None and noise.uniform is not None:
        index = _inverse_cdf(plan, logits, noise.uniform, xp)
    else:
        noisy = logits if noise is None else logits + noise.gumbel
        index = xp.argmax(noisy, axis=-1).astype(np.int32)
    batch = index.shape[:-1]
    for gi, g in enumerate(plan.groups):
        n, k = g.n, len(g.pos)
        ar = xp.arange(n)

        def gumbel(j: int, gi: int = gi) -> Any:
            return 0.0 if noise is None else noise.gumbels[gi][..., j, :]

        w = logits[g.pos[0], :n]
        if g.kind == "seq":
            taken = xp.zeros((*batch, n), bool)
            picks = []
            for j, p in enumerate(g.pos):
                a = xp.argmax(xp.where(taken, _NEG, logits[p, :n]) + gumbel(j), axis=-1)
                picks.append(a)
                taken = taken | (ar == a[..., None])
            sel = xp.stack(picks, axis=-1)
        elif g.kind == "subset" and noise is None:  # the mode: the k largest weights
            sel = xp.broadcast_to(xp.sort(xp.argsort(-w)[:k]), (*batch, k))
        elif g.kind == "subset":
            # Conditional Poisson sampling in ascending order: the next element is i with
            # probability proportional to exp(w_i) * e_r(exp(w[i+1:])), r = elements still needed.
            table = _suffix_table(w, k, xp)
            prev = xp.full(batch, -1)
            picks = []
            for j in range(k):
                score = w + table[1:, k - j - 1]
                a = xp.argmax(xp.where(ar > prev[..., None], score, _NEG) + gumbel(j), axis=-1)
                picks.append(a)
                prev = a
            sel = xp.stack(picks, axis=-1)
        else:  # multiset: iid draws from the shared row, sorted
            sel = xp.sort(xp.stack([xp.argmax(w + gumbel(j), axis=-1) for j in range(k)], -1), -1)
        index = _set(index, g.pos, sel.astype(np.int32), xp)
    value = None
    if plan.has_float:
        mean = params.mean * _MEAN_SCALE
        std = xp.exp(xp.clip(params.log_std, _MIN_LOG_STD, None))
        z = mean if noise is None else mean + std * noise.normal
        u = 0.5 * (1.0 + xp.tanh(0.5 * z))  # sigmoid without overflow
        lin = plan.lo + u * (plan.hi - plan.lo)
        log = xp.exp(plan.log_lo + u * (plan.log_hi - plan.log_lo))
        lo, hi = (plan.lo, plan.hi) if xp is np else (plan.lo32, plan.hi32)
        value = xp.clip(xp.where(plan.log_scale, log, lin), lo, hi)
    return index, value


def _sample_host(state: ReinforceState, rng: np.random.Generator, n: int | None) -> DNA:
    plan = _plan(state.space)
    batch = () if n is None else (n,)
    shape = (*batch, plan.num_slots)
    # Gumbel-argmax is fewer NumPy calls for small draws; the inverse CDF needs S uniforms, not
    # S * W, which wins for big batches (Monte-Carlo) and wide int slots.
    small = math.prod(shape) * plan.width <= 1 << 14
    noise = _Noise(
        None if small else rng.random(shape),
        rng.gumbel(size=(*shape, plan.width)) if small else None,
        tuple(rng.gumbel(size=(*batch, len(g.pos), g.n)) for g in plan.groups),
        rng.standard_normal((*batch, plan.num_slots)) if plan.has_float else None,
    )
    index, value = _draw(plan, _host_params(state.params, plan), noise, np)
    return state.space.make_dna(index, value)


def _host_params(params: ReinforceParams, plan: _Plan) -> ReinforceParams:
    logits = np.asarray(params.logits, np.float64)
    if not plan.has_float:  # each device-to-host read costs a few microseconds
        return ReinforceParams(logits, None, None)
    return ReinforceParams(logits, *(np.asarray(p, np.float64) for p in params[1:]))


def _sample_jax(state: ReinforceState, key: Any, n: int | None) -> DNA:
    import jax
    import jax.numpy as jnp

    plan = _plan(state.space)
    batch = () if n is None else (n,)
    s = plan.num_slots
    # One block of random bits: each jax.random sampler compiles its own threefry copy, which
    # dominates compile time on CPU. Uniforms in (0, 1) from the top 24 bits, centered.
    sizes = [s, *(len(g.pos) * g.n for g in plan.groups)] + [s] * plan.has_float
    bits = jax.random.bits(key, (*batch, sum(sizes)), jnp.uint32)
    u = (bits >> 8).astype(jnp.float32) * np.float32(2.0**-24) + np.float32(2.0**-25)
    parts = jnp.split(u, np.cumsum(sizes)[:-1].tolist(), axis=-1)
    gumbels = tuple(
        -jnp.log(-jnp.log(part.reshape(*batch, len(g.pos), g.n)))
        for g, part in zip(plan.groups, parts[1:])
    )
    normal = None
    if plan.has_float:
        normal = np.float32(math.sqrt(2)) * jax.lax.erf_inv(2 * parts[-1] - 1)
    index, value = _draw(plan, state.params, _Noise(parts[0], None, gumbels, normal), jnp)
    return state.space.make_dna(index, value)


@functools.cache
def _jitted_sample() -> Any:
    import jax

    return jax.jit(_sample_jax, static_argnums=2)


def _is_host_key(key: Any) -> bool:
    return isinstance(key, int | np.integer | np.random.Generator) and not isinstance(key, bool)


def _traced(*xs: Any) -> bool:
    jax = sys.modules.get("jax")
    return jax is not None and any(isinstance(x, jax.core.Tracer) for x in xs)


def _unwrap(state: Any, where: str) -> ReinforceState:
    if isinstance(state, ReinforceState):
        return state
    inner = getattr(state, "reinforce", None)
    if isinstance(inner, ReinforceState):
        return inner
    raise TypeError(
        f"{where}: expected a ReinforceState (from reinforce().init) or a state that wraps one "
        f"(rejection_sampling), got {type(state).__name__}"
    )


def sample(state: Any, key: Key, n: int | None = None) -> DNA:
    """Samples DNAs from the current policy (one, or a batch ``[n, S]``) without a state change.

    Args:
        state: A :class:`ReinforceState` (or a state wrapping one, such as TabNAS's).
        key: An int (NumPy on the host) or a ``jax.random`` key (traceable).
        n: None for one DNA, else the batch size.

    Raises:
        TypeError: For an int key while the state is being traced (pass a JAX key under jit).

    Example:
        >>> from pliant.spaces.dna import Slot, Space
        >>> space = Space([Slot("op", "choice", 3)])
        >>> sample(reinforce().init(space, 0), 1, n=4).batch_shape
        (4,)
    """
    rs = _unwrap(state, "sample")
    if _is_host_key(key):
        if _traced(rs.params.logits):
            raise TypeError(
                "reinforce: got an int key while the state is traced (inside jax.jit or "
                "lax.scan); pass a jax.random key there, e.g. jax.random.key(seed)."
            )
        return _sample_host(rs, host_rng(key), n)
    if _traced(rs.params.logits, key):
        return _sample_jax(rs, key, n)
    return _jitted_sample()(rs, key, n)


# ------------------------------------------------------------------------------------------
# Log-probability, entropy and the update (jax.numpy)


def _log_prob_entropy(
    plan: _Plan, params: ReinforceParams, index: Any, value: Any, active: Any, entropy: bool
) -> tuple[Any, Any]:
    """Log-prob ``[...]`` of DNAs (active slots only), and their entropy when asked."""
    import jax
    import jax.numpy as jnp

    logits = jnp.where(plan.mask, params.logits, _NEG)
    logsm = jax.nn.log_softmax(logits, axis=-1)
    slot_lp = logsm[jnp.arange(plan.num_slots), index]
    on = active & plan.indep
    lp = jnp.sum(jnp.where(on, slot_lp, 0.0), axis=-1)
    ent = jnp.zeros(lp.shape, lp.dtype)
    if entropy:
        h = -jnp.sum(jnp.where(plan.mask, jnp.exp(logsm) * logsm, 0.0), axis=-1)
        ent = jnp.sum(jnp.where(on, h, 0.0), axis=-1)
    for g in plan.groups:
        n, k = g.n, len(g.pos)
        a = index[..., np.array(g.pos)]
        g_on = active[..., g.pos[0]]
        w = logits[g.pos[0], :n]
        if g.kind == "seq":
            onehot = jax.nn.one_hot(a, n, dtype=jnp.int32)
            taken = (jnp.cumsum(onehot, axis=-2) - onehot) > 0  # picked at an earlier position
            lsm = jax.nn.log_softmax(jnp.where(taken, _NEG, logits[np.array(g.pos), :n]), -1)
            glp = jnp.sum(jnp.take_along_axis(lsm, a[..., None], -1)[..., 0], axis=-1)
            gh = -jnp.sum(jnp.where(taken, 0.0, jnp.exp(lsm) * lsm), axis=(-2, -1))
        elif g.kind == "subset":

            def log_z(w: Any, k: int = k) -> Any:
                return _suffix_table(w, k, jnp)[0, k]

            lz = log_z(w)
            glp = jnp.sum(w[a], axis=-1) - lz
            gh = lz - jnp.dot(w, jax.grad(log_z)(w)) if entropy else jnp.zeros(())
        else:
            lsm = jax.nn.log_softmax(w)
            counts = jnp.sum(jax.nn.one_hot(a, n), axis=-2)
            coef = math.lgamma(k + 1) - jnp.sum(jax.lax.lgamma(counts + 1.0), axis=-1)
            glp = jnp.sum(lsm[a], axis=-1) + coef
            gh = -k * jnp.sum(jnp.exp(lsm) * lsm)  # entropy of the ordered draws (an upper bound)
        lp = lp + jnp.where(g_on, glp, 0.0)
        if entropy:
            ent = ent + jnp.where(g_on, gh, 0.0)
    if plan.has_float:
        fo = active & plan.float_ok
        span = np.where(plan.float_ok, plan.hi - plan.lo, 1.0)
        log_span = np.where(plan.float_ok & plan.log_scale, plan.log_hi - plan.log_lo, 1.0)
        lin_u = (value - plan.lo) / span
        log_u = (jnp.log(jnp.where(fo & plan.log_scale, value, 1.0)) - plan.log_lo) / log_span
        u = jnp.clip(jnp.where(plan.log_scale, log_u, lin_u), _CLIP, 1.0 - _CLIP)
        z = jnp.where(fo, jnp.log(u) - jnp.log1p(-u), 0.0)
        log_std = jnp.clip(params.log_std, _MIN_LOG_STD, None)
        std = jnp.exp(log_std)
        flp = -0.5 * jnp.square((z - params.mean * _MEAN_SCALE) / std) - log_std - _HALF_LOG_2PI
        lp = lp + jnp.sum(jnp.where(fo, flp, 0.0), axis=-1)
        if entropy:
            ent = ent + jnp.sum(jnp.where(fo, 0.5 + _HALF_LOG_2PI + log_std, 0.0), -1)
    return lp, ent


def _update(
    cfg: _Config,
    state: ReinforceState,
    index: Any,
    value: Any,
    active: Any,
    rewards: Any,
    log_norm: Any = None,
    extra_ok: Any = True,
) -> tuple[ReinforceState, Any, Any]:
    """One REINFORCE step on a batch ``[n, S]``; returns (state, log_norm's aux, applied).

    ``log_norm(params) -> (log_z, aux)`` is subtracted from every log-prob (TabNAS uses
    log P(feasible)). The step is skipped, state unchanged, when a reward is not finite or
    ``extra_ok`` is False.
    """
    import jax
    import jax.numpy as jnp
    import optax

    plan = _plan(state.space)
    rewards = jnp.asarray(rewards, jnp.float32)
    ok = jnp.all(jnp.isfinite(rewards)) & extra_ok
    # The debiased EMA num/den, updated before the advantage, in the equivalent form
    # b += (x - b) * (1 - m) / den: a constant reward gives exactly b == x, so the advantage is
    # exactly 0. (num/den rounds differently from x, and Adam with b1 = 0 turns a 1-ulp
    # advantage into a full step.)
    m = cfg.momentum
    den = m * state.baseline_den + (1.0 - m)
    baseline = state.baseline + (jnp.mean(rewards) - state.baseline) * ((1.0 - m) / den)
    advantage = jax.lax.stop_gradient(rewards - baseline)
    want_entropy = cfg.entropy_weight != 0.0

    def loss_fn(params: ReinforceParams) -> tuple[Any, Any]:
        lp, ent = _log_prob_entropy(plan, params, index, value, active, want_entropy)
        aux = None
        if log_norm is not None:
            log_z, aux = log_norm(params)
            lp = lp - log_z
        loss = -jnp.mean(advantage * lp)
        if want_entropy:
            loss = loss - cfg.entropy_weight * jnp.mean(ent)
        return loss, aux

    grads, aux = jax.grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = cfg.optimizer.update(grads, state.opt_state, state.params)
    new = state._replace(
        params=optax.apply_updates(state.params, updates),
        opt_state=opt_state,
        baseline=baseline,
        baseline_den=den,
        step=state.step + 1,
    )
    new = jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), new, state)
    return new, aux, ok


def _batch_arrays(space: Space, dna: Any, reward: Any, where: str) -> tuple:
    """``(index, value, active, rewards)`` as ``[n, S]`` / ``[n]``; host values are checked."""
    if not isinstance(dna, DNA):
        raise TypeError(f"{where}: expected a DNA of the searched space, got {dna!r:.80}")
    if dna.space != space:
        raise ValueError(
            f"{where}: the DNA belongs to space {dna.space.fingerprint!r}, but the state searches "
            f"{space.fingerprint!r}; feed back DNAs proposed for this state's space"
        )
    shape = dna.batch_shape
    if len(shape) > 1:
        raise ValueError(
            f"{where}: expected one DNA [S] or a batch [n, S], got batch shape {shape}; flatten "
            "the batch first"
        )
    s = len(space)
    rewards: Any
    if _traced(dna.index, dna.value, dna.active, reward):
        import jax.numpy as jnp

        rewards = jnp.asarray(reward, jnp.float32)
        if rewards.shape != shape:
            raise ValueError(
                f"{where}: rewards have shape {rewards.shape}; expected {shape} for a DNA of "
                f"batch shape {shape}"
            )
        arrays = (jnp.reshape(jnp.asarray(a), (-1, s)) for a in (dna.index, dna.value, dna.active))
        return (*arrays, rewards.reshape(-1))
    if not shape:
        rewards = np.array([check_reward(reward, multi_objective=False, algorithm=where)])
    else:
        try:
            rewards = np.asarray(reward, np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{where}: rewards must be numbers, got {reward!r:.80}") from None
        if rewards.shape != shape:
            raise ValueError(
                f"{where}: a batch of {shape[0]} DNAs needs rewards of shape {shape}, got shape "
                f"{rewards.shape}"
            )
        if not np.all(np.isfinite(rewards)):
            raise ValueError(
                f"{where}: rewards must be finite, got {rewards.tolist()!r:.80}; record failed "
                "trials in the flow instead of feeding them back"
            )
    return (
        np.asarray(dna.index, np.int32).reshape(-1, s),
        np.asarray(dna.value, np.float32).reshape(-1, s),
        np.asarray(dna.active, bool).reshape(-1, s),
        rewards.astype(np.float32),
    )


# ------------------------------------------------------------------------------------------
# The factory


def _init_state(space: Space, optimizer: Any) -> ReinforceState:
    import jax.numpy as jnp

    register_space_pytree()
    if not isinstance(space, Space):
        raise TypeError(f"reinforce: init expects a Space, got {space!r:.80}")
    plan = _plan(space)
    s = plan.num_slots
    params = ReinforceParams(
        jnp.zeros((s, plan.width), jnp.float32),
        jnp.zeros((s,), jnp.float32),
        jnp.zeros((s,), jnp.float32),
    )
    zero = jnp.zeros((), jnp.float32)
    return ReinforceState(
        space, params, optimizer.init(params), zero, zero, jnp.zeros((), jnp.int32)
    )


def reinforce(
    learning_rate: float | None = None,
    *,
    optimizer: Any = None,
    entropy_weight: float = 0.0,
    baseline_momentum: float = 0.95,
) -> Algorithm:
    """REINFORCE with a factorized policy, as TuNAS's controller (traceable).

    Args:
        learning_rate: Step size of the default optimizer, ``optax.adam(learning_rate, b1=0.0,
            b2=0.999, eps=1e-8)`` (TuNAS's controller Adam). Default 0.1: with Adam's
            normalized steps a logit moves by about 0.1 per consistent feedback, so a small
            space (tens of slots of a few choices) concentrates within a few hundred feedbacks.
            TuNAS's own value (3e-4 * batch / 256, ramped 10x) assumes ~20k steps.
        optimizer: Any ``optax.GradientTransformation`` instead (e.g. with a schedule).
        entropy_weight: Weight of the entropy bonus (TuNAS: 0).
        baseline_momentum: Momentum of the zero-debiased reward EMA (TuNAS: 0.95).

    Returns:
        An :class:`~pliant.algorithms.base.Algorithm` (traceable, single objective) whose state
        is a :class:`ReinforceState`. ``feedback`` takes one DNA and a float, or a batch DNA
        ``[n, S]`` and rewards ``[n]`` (mean loss; the baseline sees the batch mean). Under
        ``jax.jit`` a non-finite reward skips the update: the state comes back unchanged.

    Raises:
        ValueError: For a non-positive learning rate, both ``learning_rate`` and ``optimizer``,
            a negative entropy weight or a momentum outside [0, 1); at ``init`` for an int slot
            with more than :data:`MAX_CATEGORICAL` values. ``feedback`` on the host raises
            ValueError for NaN/inf rewards and TypeError for vector rewards.

    Example:
        >>> from pliant.spaces.dna import Slot, Space
        >>> space = Space([Slot(f"s{i}", "choice", 3) for i in range(4)])
        >>> algo = reinforce()
        >>> state = algo.init(space, 0)
        >>> for step in range(200):
        ...     dna, state = algo.propose(state, step)
        ...     state = algo.feedback(state, dna, float(sum(dna.to_list())))
        >>> most_likely(state).to_list()
        [2, 2, 2, 2]
    """
    if optimizer is not None and learning_rate is not None:
        raise ValueError(
            "reinforce: pass either learning_rate (for the default Adam) or optimizer, not both; "
            f"got learning_rate={learning_rate!r} and optimizer={optimizer!r:.60}"
        )
    lr = DEFAULT_LEARNING_RATE if learning_rate is None else learning_rate
    if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"reinforce: learning_rate must be a positive float, got {lr!r}")
    if not (math.isfinite(entropy_weight) and entropy_weight >= 0):
        raise ValueError(f"reinforce: entropy_weight must be >= 0, got {entropy_weight!r}")
    if not 0.0 <= baseline_momentum < 1.0:
        raise ValueError(
            f"reinforce: baseline_momentum must be in [0, 1), got {baseline_momentum!r}"
        )
    if optimizer is None:
        import optax

        optimizer = optax.adam(lr, b1=0.0, b2=0.999, eps=1e-8)
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise TypeError(
            f"reinforce: optimizer must be an optax.GradientTransformation, got {optimizer!r:.80}"
        )
    cfg = _Config(optimizer, float(entropy_weight), float(baseline_momentum))

    @functools.cache
    def jitted_update() -> Any:
        import jax

        return jax.jit(lambda s, i, v, a, r: _update(cfg, s, i, v, a, r)[0])

    def init(space: Space, key: Key) -> ReinforceState:
        return _init_state(space, optimizer)

    def propose(state: ReinforceState, key: Key) -> tuple[DNA, ReinforceState]:
        return sample(state, key), state

    def feedback(state: ReinforceState, dna: DNA, reward: Reward) -> ReinforceState:
        index, value, active, rewards = _batch_arrays(state.space, dna, reward, "reinforce")
        if _traced(state.params.logits, index, rewards):
            return _update(cfg, state, index, value, active, rewards)[0]
        return jitted_update()(state, index, value, active, rewards)

    init.reinforce_config = cfg  # type: ignore[attr-defined]  # read by rejection_sampling
    return Algorithm(
        init, propose, feedback, name="reinforce", traceable=True, multi_objective=False
    )


def _config_of(algo: Any) -> _Config | None:
    return getattr(getattr(algo, "init", None), "reinforce_config", None)


# ------------------------------------------------------------------------------------------
# Reading the policy


def _dna_arrays(dna: DNA) -> tuple[Any, Any, Any]:
    return dna.index, dna.value, dna.active


@functools.cache
def _jitted_log_prob() -> Any:
    import jax

    def f(params: ReinforceParams, dna: DNA) -> Any:
        lp, _ = _log_prob_entropy(_plan(dna.space), params, *_dna_arrays(dna), False)
        return lp

    return jax.jit(f)


def log_prob(state: Any, dna: DNA) -> Any:
    """Log-probability of DNAs under the policy: active slots only, exact for manyof groups.

    For float slots it is the Gaussian log-density of ``z`` (the value's logit), so it is a
    density, not a probability. On a finite space the probabilities of all valid DNAs sum to 1.

    Args:
        state: A :class:`ReinforceState` (or a state wrapping one).
        dna: One DNA (returns a scalar) or a batch ``[n, S]`` (returns ``[n]``).

    Raises:
        ValueError: For a DNA of another space.

    Example:
        >>> from pliant.spaces.dna import Slot, Space
        >>> space = Space([Slot("a", "choice", 4), Slot("b", "choice", 2, conditions=((0, 1),))])
        >>> state = reinforce().init(space, 0)
        >>> round(float(log_prob(state, space.from_list([0, None]))), 4)  # b is inactive
        -1.3863
    """
    rs = _unwrap(state, "log_prob")
    if not isinstance(dna, DNA) or dna.space != rs.space:
        raise ValueError(f"log_prob: expected a DNA of the state's space, got {dna!r:.80}")
    if _traced(rs.params.logits, dna.index, dna.value, dna.active):
        lp, _ = _log_prob_entropy(_plan(rs.space), rs.params, *_dna_arrays(dna), False)
        return lp
    return _jitted_log_prob()(rs.params, dna)


def most_likely(state: Any) -> DNA:
    """The per-decision mode along the active path; float slots at the policy mean.

    Each categorical takes its argmax (children of unchosen branches are inactive); a distinct
    manyof takes the greedy argmax position by position, a sorted distinct one its k largest
    weights (the exact mode of its set distribution), a sorted multiset the argmax k times.

    Example:
        >>> from pliant.spaces.dna import Slot, Space
        >>> state = reinforce().init(Space([Slot("a", "choice", 3)]), 0)
        >>> most_likely(state).to_list()  # ties go to the first candidate
        [0]
    """
    rs = _unwrap(state, "most_likely")
    plan = _plan(rs.space)
    if _traced(rs.params.logits):
        import jax.numpy as jnp

        index, value = _draw(plan, rs.params, None, jnp)
    else:
        index, value = _draw(plan, _host_params(rs.params, plan), None, np)
    return rs.space.make_dna(index, value)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def _inclusion(w: np.ndarray, k: int) -> np.ndarray:
    """P(candidate in the set) under the conditional Poisson k-subset distribution."""
    n = w.shape[0]
    suffix = _suffix_table(w, k, np)  # suffix[i, r]: log e_r(w[i:])
    prefix = _suffix_table(w[::-1].copy(), k, np)[::-1]  # prefix[i, r]: log e_r(w[:i])
    out = np.empty(n)
    for i in range(n):
        terms = [prefix[i, r] + suffix[i + 1, k - 1 - r] for r in range(k)]
        out[i] = np.exp(w[i] + np.logaddexp.reduce(terms) - suffix[0, k])
    return out


def probabilities(state: Any) -> dict[str, list[float]]:
    """Per choice/int slot, the candidate probabilities (for logs and plots).

    A slot's list is its own categorical given that it is active. Positions of a sorted manyof
    share one distribution: for a distinct one each candidate's inclusion probability divided
    by k (the law of a uniformly chosen member of the set), else the per-draw softmax. Positions
    of a distinct unsorted manyof show their row before earlier picks are masked. Float slots
    are left out (their mean is in ``most_likely``).

    Example:
        >>> from pliant.spaces.dna import Slot, Space
        >>> state = reinforce().init(Space([Slot("a", "choice", 4)]), 0)
        >>> probabilities(state)
        {'a': [0.25, 0.25, 0.25, 0.25]}
    """
    rs = _unwrap(state, "probabilities")
    plan = _plan(rs.space)
    logits = np.asarray(rs.params.logits, np.float64)
    shared: dict[int, np.ndarray] = {}
    for g in plan.groups:
        w = logits[g.pos[0], : g.n]
        if g.kind == "subset":
            p = _inclusion(w, len(g.pos)) / len(g.pos)
        elif g.kind == "multiset":
            p = _softmax(w)
        else:
            continue
        shared.update(dict.fromkeys(g.pos, p))
    out = {}
    for i, s in enumerate(rs.space.slots):
        if s.kind != "float":
            own = shared.get(i)
            out[s.id] = (_softmax(logits[i, : s.num_choices]) if own is None else own).tolist()
    return out
