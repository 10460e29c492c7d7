"""TabNAS rejection sampling: REINFORCE on the feasible set, with the gradient corrected for it.

Yang et al. (2022) search under a hard resource budget without a cost term in the reward. With
``V = {dna : constraint(dna)}``, proposals are drawn from the REINFORCE policy ``pi`` until one is
feasible, so they follow ``pi(dna | V) = pi(dna) / P(V)``. The update maximizes ``E_{pi(.|V)}[R]``
with the surrogate ``L = -stop_grad(R - b) * [log pi(dna) - log P_theta(V)]``, where
``P(V) = sum_{z in V} pi(z)`` is

- EXACT when the space is finite with at most ``exact_limit`` DNAs: every DNA is enumerated once
  per space (the feasible ones are cached) and ``log P(V)`` is a differentiable logsumexp;
- else Monte-Carlo: ``num_mc`` samples ``z_k`` from the same policy snapshot, and
  ``P_hat = mean(1[z_k in V] * pi(z_k) / stop_grad(pi(z_k)))``, whose value is the feasible
  fraction and whose gradient is the mean score of the feasible samples. When no sample is
  feasible (``P_hat = 0``) the correction is skipped for that step (a plain REINFORCE step);
  the host warns.

The reward is quality only. The per-decision argmax can be infeasible, so pick the final
architecture with :func:`most_likely_feasible`.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from pliant.algorithms.base import Algorithm, Key, Reward, host_rng
from pliant.algorithms.reinforce import (
    ReinforceState,
    _batch_arrays,
    _config_of,
    _is_host_key,
    _log_prob_entropy,
    _plan,
    _sample_jax,
    _traced,
    _unwrap,
    _update,
    log_prob,
    most_likely,
    sample,
)
from pliant.spaces.dna import DNA, Space
from pliant.spaces.sampling import iterate_dna

__all__ = ["RejectionState", "most_likely_feasible", "rejection_sampling"]

Constraint = Callable[[DNA], Any]


class RejectionState(NamedTuple):
    """State of :func:`rejection_sampling`; a pytree that round-trips through JSON.

    Attributes:
        reinforce: The wrapped :class:`~pliant.algorithms.reinforce.ReinforceState`.
        mc_key: ``uint32[2]``: the Monte-Carlo samples of update ``t`` use ``fold_in(mc_key, t)``.
        p_feasible: P(V) (exact or estimated) used by the last update; NaN before the first.
        num_exhausted: Proposals made under ``jax.jit`` that found no feasible DNA within
            ``max_tries`` (tracing cannot raise; such a proposal is infeasible and its feedback
            is skipped).

    Example:
        >>> from pliant.algorithms.reinforce import reinforce
        >>> from pliant.spaces.dna import Slot, Space
        >>> algo = rejection_sampling(reinforce(), lambda d: d.index[..., 0] < 2)
        >>> int(algo.init(Space([Slot("a", "choice", 3)]), 0).num_exhausted)
        0
    """

    reinforce: ReinforceState
    mc_key: Any
    p_feasible: Any
    num_exhausted: Any


class _Table(NamedTuple):
    index: Any  # int32 [M, S]: the feasible DNAs (device arrays)
    active: Any  # bool [M, S]
    total: int  # size of the space


def _name(constraint: Any) -> str:
    return getattr(constraint, "__name__", None) or repr(constraint)


def _feasible(constraint: Constraint, dna: DNA, n: int) -> Any:
    """The constraint's bool ``[n]`` on a batch DNA, with its shape and dtype checked."""
    out = constraint(dna)
    if not hasattr(out, "shape") or not hasattr(out, "dtype"):
        out = np.asarray(out)
    if tuple(out.shape) != (n,):
        raise ValueError(
            f"rejection_sampling: the constraint {_name(constraint)} must return a bool array of "
            f"shape ({n},) for a DNA batch [{n}, S] (e.g. cost(dna) <= budget, vectorized over "
            f"rows), got shape {tuple(out.shape)}"
        )
    if out.dtype != np.bool_:
        raise TypeError(
            f"rejection_sampling: the constraint {_name(constraint)} must return booleans (e.g. "
            f"cost(dna) <= budget), got dtype {out.dtype}"
        )
    return out if _traced(out) else np.asarray(out)


def _make_table(space: Space, constraint: Constraint, exact_limit: int) -> _Table | None:
    """The feasible DNAs of a small finite space, or None (then P(V) is estimated)."""
    import jax
    import jax.numpy as jnp

    if space.is_float.any():
        return None
    try:
        size = space.size
    except ValueError:  # too many DNAs to count
        return None
    if size > exact_limit:
        return None
    dnas = list(iterate_dna(space))
    index = np.stack([d.index for d in dnas]).astype(np.int32).reshape(len(dnas), len(space))
    everything = space.make_dna(index)
    feasible = _feasible(constraint, everything, len(dnas))
    with jax.ensure_compile_time_eval():  # concrete even when first built inside a trace
        return _Table(
            jnp.asarray(index[feasible]), jnp.asarray(everything.active[feasible]), len(dnas)
        )


def _raw_key(key: Key) -> Any:
    import jax
    import jax.numpy as jnp

    if _is_host_key(key):  # hashed by Philox, so nearby ints give unrelated keys
        words = host_rng(key).integers(0, 2**32, size=2, dtype=np.uint64)
        return jnp.asarray(words.astype(np.uint32))
    return jax.random.bits(jax.random.fold_in(key, 0x7AB), (2,), jnp.uint32)


def rejection_sampling(
    base: Algorithm,
    constraint: Constraint,
    *,
    num_mc: int = 4096,
    max_tries: int = 1000,
    exact_limit: int = 100_000,
) -> Algorithm:
    """TabNAS: REINFORCE restricted to feasible DNAs by rejection, with a corrected gradient.

    Args:
        base: A :func:`~pliant.algorithms.reinforce.reinforce` algorithm (its optimizer,
            baseline and entropy settings are used).
        constraint: ``dna -> bool array``: feasibility of a batch DNA ``[n, S]``, NumPy on the
            host and ``jax.numpy`` under ``jax.jit``; e.g. ``lambda d: cost(d) <= budget``.
        num_mc: Monte-Carlo samples per update when P(V) is not computed exactly.
        max_tries: Most policy samples per proposal before giving up.
        exact_limit: Largest finite space whose DNAs are enumerated for an exact P(V).

    Returns:
        A traceable single-objective :class:`~pliant.algorithms.base.Algorithm` with a
        :class:`RejectionState`. Rewards are quality only.

    Raises:
        TypeError: If ``base`` is not a reinforce algorithm or ``constraint`` is not callable.
        ValueError: For ``num_mc`` or ``max_tries`` below 1 or a negative ``exact_limit``.
            ``propose`` raises ValueError when no DNA of an enumerated space is feasible and
            RuntimeError when ``max_tries`` samples were all infeasible; ``feedback`` raises
            ValueError for an infeasible DNA (plus reinforce's reward checks).

    Example:
        >>> from pliant.algorithms.reinforce import reinforce
        >>> from pliant.spaces.dna import Slot, Space
        >>> space = Space([Slot("w1", "choice", 3), Slot("w2", "choice", 3)])
        >>> small = lambda d: d.index.sum(-1) <= 2  # a budget on the total width
        >>> algo = rejection_sampling(reinforce(), small)
        >>> state = algo.init(space, 0)
        >>> for step in range(150):
        ...     dna, state = algo.propose(state, step)
        ...     state = algo.feedback(state, dna, float(2 * dna.index[0] + dna.index[1]))
        >>> most_likely_feasible(state, small).to_list()
        [2, 0]
    """
    cfg = _config_of(base)
    if cfg is None:
        raise TypeError(
            "rejection_sampling: base must be pl.algorithms.reinforce(...) (TabNAS corrects "
            f"REINFORCE's policy gradient for the rejection), got {getattr(base, 'name', base)!r}"
        )
    if not callable(constraint):
        raise TypeError(
            f"rejection_sampling: constraint must be a function dna -> bool array, got "
            f"{constraint!r:.80}"
        )
    for label, v, least in (
        ("num_mc", num_mc, 1),
        ("max_tries", max_tries, 1),
        ("exact_limit", exact_limit, 0),
    ):
        if isinstance(v, bool) or not isinstance(v, int) or v < least:
            raise ValueError(f"rejection_sampling: {label} must be an int >= {least}, got {v!r}")
    name = _name(constraint)
    tables: dict[Space, _Table | None] = {}

    def table(space: Space) -> _Table | None:
        if space not in tables:
            tables[space] = _make_table(space, constraint, exact_limit)
        t = tables[space]
        if t is not None and t.index.shape[0] == 0:
            raise ValueError(
                f"rejection_sampling: no DNA of the space satisfies the constraint {name} (all "
                f"{t.total} checked); loosen the budget"
            )
        return t

    def init(space: Space, key: Key) -> RejectionState:
        import jax.numpy as jnp

        return RejectionState(
            base.init(space, key),
            _raw_key(key),
            jnp.full((), jnp.nan, jnp.float32),
            jnp.zeros((), jnp.int32),
        )

    chunk = min(max_tries, 64)

    def propose_traced(state: RejectionState, key: Any) -> tuple[DNA, RejectionState]:
        import jax
        import jax.numpy as jnp

        rs = state.reinforce
        table(rs.space)
        rounds = math.ceil(max_tries / chunk)

        def body(carry: tuple) -> tuple:
            i, _, _, _ = carry
            cands = _sample_jax(rs, jax.random.fold_in(key, i), chunk)
            ok = _feasible(constraint, cands, chunk)
            j = jnp.argmax(ok)
            return i + 1, jnp.any(ok), cands.index[j], cands.value[j]

        s = len(rs.space)
        start = (jnp.int32(0), jnp.array(False), jnp.zeros((s,), jnp.int32), jnp.zeros((s,), float))
        _, found, index, value = jax.lax.while_loop(lambda c: ~c[1] & (c[0] < rounds), body, start)
        exhausted = state.num_exhausted + (~found).astype(jnp.int32)
        return rs.space.make_dna(index, value), state._replace(num_exhausted=exhausted)

    @functools.cache
    def jitted_propose() -> Any:
        import jax

        return jax.jit(propose_traced)

    def propose(state: RejectionState, key: Key) -> tuple[DNA, RejectionState]:
        rs = state.reinforce
        t = table(rs.space)
        if not _is_host_key(key) or _traced(rs.params.logits):
            if _traced(rs.params.logits, key):
                return propose_traced(state, key)
            return jitted_propose()(state, key)
        rng = host_rng(key)
        tries, size = 0, min(16, max_tries)
        while tries < max_tries:
            m = min(size, max_tries - tries)
            cands = sample(rs, rng, m)
            ok = _feasible(constraint, cands, m)
            if ok.any():
                return cands[int(np.argmax(ok))], state
            tries, size = tries + m, min(2 * size, 256)
        if t is not None:
            lp = np.asarray(log_prob(rs, rs.space.make_dna(np.asarray(t.index))), np.float64)
            p = float(np.exp(np.logaddexp.reduce(lp)))
            seen = f"P(feasible) under the current policy is {p:.3g} (exact)"
        else:
            seen = f"P(feasible) estimated at the last update: {float(state.p_feasible):.3g}"
        raise RuntimeError(
            f"rejection_sampling: none of {max_tries} DNAs sampled from the policy satisfied the "
            f"constraint {name} (feasible fraction seen: 0/{tries}; {seen}); loosen the budget, "
            "raise max_tries, or check that the constraint admits enough of the space"
        )

    def feedback_pure(
        state: RejectionState,
        index: Any,
        value: Any,
        active: Any,
        rewards: Any,
        t_index: Any,
        t_active: Any,
        ok: Any,
    ) -> RejectionState:
        import jax
        import jax.numpy as jnp

        rs = state.reinforce
        plan = _plan(rs.space)
        if t_index is None:
            # MC samples from the same snapshot the proposals came from (pitfall 9).
            z = _sample_jax(rs, jax.random.fold_in(state.mc_key, rs.step), num_mc)
            f = _feasible(constraint, z, num_mc).astype(jnp.float32)

            def log_norm(params: Any) -> tuple[Any, Any]:
                lp = _log_prob_entropy(plan, params, z.index, z.value, z.active, False)[0]
                p = jnp.mean(f * jnp.exp(lp - jax.lax.stop_gradient(lp)))
                some = p > 0  # P_hat = 0: skip the correction this step
                return jnp.where(some, jnp.log(jnp.where(some, p, 1.0)), 0.0), p

        else:
            zeros = jnp.zeros(t_index.shape, jnp.float32)

            def log_norm(params: Any) -> tuple[Any, Any]:
                lp = _log_prob_entropy(plan, params, t_index, zeros, t_active, False)[0]
                log_p = jax.nn.logsumexp(lp)
                return log_p, jnp.exp(log_p)

        new, p, applied = _update(cfg, rs, index, value, active, rewards, log_norm, ok)
        return state._replace(reinforce=new, p_feasible=jnp.where(applied, p, state.p_feasible))

    @functools.cache
    def jitted_feedback() -> Any:
        import jax

        return jax.jit(feedback_pure)

    def feedback(state: RejectionState, dna: DNA, reward: Reward) -> RejectionState:
        rs = state.reinforce
        index, value, active, rewards = _batch_arrays(rs.space, dna, reward, "rejection_sampling")
        t = table(rs.space)
        t_index, t_active = (None, None) if t is None else (t.index, t.active)
        if _traced(rs.params.logits, index, rewards):
            # Under tracing an infeasible DNA (an exhausted proposal) cannot raise: skip it.
            ok = _feasible(constraint, DNA(rs.space, index, value, active), index.shape[0])
            return feedback_pure(state, index, value, active, rewards, t_index, t_active, ok.all())
        # Checked on the DNA as given (float64 values on the host), as propose() checked it.
        batch = dna if dna.batch_shape else rs.space.stack([dna])
        ok = _feasible(constraint, batch, index.shape[0])
        if not ok.all():
            row = int(np.argmin(ok))
            bad = batch[row]
            raise ValueError(
                f"rejection_sampling: feedback for a DNA that violates the constraint {name} "
                f"(row {row}: {bad!r:.120}); TabNAS only evaluates and learns from feasible DNAs, "
                "which propose() returns"
            )
        new = jitted_feedback()(state, index, value, active, rewards, t_index, t_active, True)
        if float(new.p_feasible) == 0.0:
            warnings.warn(
                f"rejection_sampling: none of the {num_mc} Monte-Carlo samples satisfied the "
                f"constraint {name}; the P(V) correction was skipped this step (raise num_mc)",
                RuntimeWarning,
                stacklevel=2,
            )
        return new

    return Algorithm(
        init, propose, feedback, name="rejection_sampling", traceable=True, multi_objective=False
    )


def most_likely_feasible(
    state: Any,
    constraint: Constraint,
    *,
    exact_limit: int = 100_000,
    num_samples: int = 10_000,
    key: Key = 0,
) -> DNA:
    """The most probable feasible DNA under the policy (TabNAS's final choice).

    Exact on a finite space with at most ``exact_limit`` DNAs (all are enumerated). Otherwise
    ``num_samples`` DNAs are drawn from the policy with ``key`` and, together with the
    per-decision mode, the feasible one with the highest log-probability is returned (on a
    discrete space the most probable feasible DNA seen; the most frequent one converges to the
    same DNA, with more noise).

    Args:
        state: A :class:`RejectionState` or a ReinforceState.
        constraint: The feasibility function, as given to :func:`rejection_sampling`.
        exact_limit: Largest space enumerated exactly.
        num_samples: Samples drawn otherwise.
        key: Host key (int) for those samples.

    Raises:
        ValueError: When no DNA of an enumerated space is feasible.
        RuntimeError: When none of the samples is feasible.

    Example:
        >>> from pliant.algorithms.reinforce import reinforce
        >>> from pliant.spaces.dna import Slot, Space
        >>> state = reinforce().init(Space([Slot("a", "choice", 4)]), 0)
        >>> most_likely_feasible(state, lambda d: d.index[..., 0] >= 2).to_list()
        [2]
    """
    rs = _unwrap(state, "most_likely_feasible")
    space = rs.space
    t = _make_table(space, constraint, exact_limit)
    if t is not None:
        if t.index.shape[0] == 0:
            raise ValueError(
                f"most_likely_feasible: no DNA of the space satisfies the constraint "
                f"{_name(constraint)} (all {t.total} checked)"
            )
        cands = space.make_dna(np.asarray(t.index))
        ok = np.ones(t.index.shape[0], bool)
    else:
        drawn, mode = sample(rs, key, num_samples), most_likely(rs)
        cands = space.make_dna(
            np.concatenate([np.asarray(mode.index)[None], np.asarray(drawn.index)]),
            np.concatenate([np.asarray(mode.value, np.float64)[None], drawn.value]),
        )
        ok = _feasible(constraint, cands, num_samples + 1)
        if not ok.any():
            raise RuntimeError(
                f"most_likely_feasible: none of {num_samples} samples from the policy satisfied "
                f"the constraint {_name(constraint)}; raise num_samples or check the constraint"
            )
    # All rows at once (one log_prob compile per shape); infeasible rows are masked out.
    lp = np.where(ok, np.asarray(log_prob(rs, cands), np.float64), -np.inf)
    best = int(np.argmax(lp))
    return space.make_dna(np.asarray(cands.index)[best], np.asarray(cands.value)[best])
