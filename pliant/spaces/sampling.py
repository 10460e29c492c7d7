"""Producing DNAs of a `Space`: random sampling, exhaustive iteration, and counting.

`random_dna` has a numpy path (an int seed or a ``numpy.random.Generator``) and a JAX path (a
``jax.random`` key) that is jitted once per ``(space, n)`` and traces inside user ``jax.jit``
code. `iterate_dna` walks every valid DNA of a finite space in lexicographic order; the exact
combinatorial count behind `Space.size` lives here too, next to the enumeration it must agree
with.

Example:
    >>> from pliant.spaces.dna import Slot, Space
    >>> space = Space([Slot('a', 'choice', 3), Slot('b', 'int', 2, lo=0, hi=1)])
    >>> random_dna(space, 0) == random_dna(space, 0)
    True
    >>> len(list(iterate_dna(space))) == space.size == 6
    True
"""

from __future__ import annotations

import functools
import math
import operator
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from pliant.spaces.dna import DNA, Space, _readonly, _slot_active, register_pytree

__all__ = ["iterate_dna", "random_dna"]

# Space.size falls back to enumeration for slots conditioned on several parents; past this many
# DNAs it gives up rather than hang.
_ENUMERATION_LIMIT = 1 << 20
_SMALL_RANGE = 1 << 16


def random_dna(space: Space, key_or_seed: Any, n: int | None = None) -> DNA:
    """Samples DNAs uniformly per slot, then applies manyof constraints and conditions.

    Choice slots are uniform over candidates, int slots uniform on ``lo..hi`` (log-uniform on
    a log scale), float slots uniform on ``[lo, hi]`` in linear or log space. A distinct manyof
    takes k distinct candidates (a random permutation's first k), a sorted one sorts them.
    Inactive slots are canonical (index 0, value 0.0). The same seed or key gives the same DNAs.

    Args:
        space: The space to sample from (static under JAX).
        key_or_seed: An int seed or ``numpy.random.Generator`` (numpy path, float64 values), or
            a ``jax.random`` key, typed or ``uint32[2]`` (JAX path; value dtype is jax's default
            float, float32 unless x64 is enabled).
        n: None for a single DNA, else the batch size (DNA of shape ``[n, S]``).

    Returns:
        A DNA of ``space``; jax arrays on the JAX path.

    Raises:
        TypeError: If ``key_or_seed`` is neither a seed, a Generator nor a JAX key.
        ValueError: If ``n`` is negative or the JAX key is not a single key.

    Example:
        >>> import jax
        >>> from pliant.spaces.dna import Slot, Space
        >>> lr = Slot('lr', 'float', 0, lo=1e-4, hi=1.0, scale='log')
        >>> space = Space([Slot('a', 'choice', 3), lr])
        >>> random_dna(space, 0, n=5).batch_shape
        (5,)
        >>> random_dna(space, jax.random.key(0), n=5).index.shape
        (5, 2)
    """
    if n is not None:
        n = operator.index(n)
        if n < 0:
            raise ValueError(f"random_dna: n must be None or >= 0, got {n}.")
    if isinstance(key_or_seed, np.random.Generator) or (
        isinstance(key_or_seed, int | np.integer) and not isinstance(key_or_seed, bool)
    ):
        rng = np.random.default_rng(key_or_seed)
        return _random(space, np, functools.partial(_draw_numpy, rng), n)
    jax = sys.modules.get("jax")
    if jax is not None and isinstance(key_or_seed, jax.Array):
        key = key_or_seed
        typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
        if key.shape != (() if typed else (2,)) or not (typed or key.dtype == np.uint32):
            raise ValueError(
                "random_dna: expected one JAX key (a typed key of shape () or a raw uint32[2]), "
                f"got {key.dtype}{list(key.shape)}; use jax.random.key(seed) and jax.vmap over "
                "batches of keys."
            )
        return _jitted_sampler()(space, key, n)
    raise TypeError(
        f"random_dna: expected an int seed, a numpy.random.Generator or a jax.random key, got "
        f"{key_or_seed!r:.80}."
    )


def _draw_numpy(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    high: np.ndarray,
    uniform: bool,
    widths: list[int],
) -> tuple[Any, Any, list[Any]]:
    index = rng.integers(0, high, size=shape, dtype=np.int32)
    u = rng.random(shape) if uniform else None
    return index, u, [rng.random((*shape[:-1], w)) for w in widths]


def _draw_jax(
    key: Any, shape: tuple[int, ...], high: np.ndarray, uniform: bool, widths: list[int]
) -> tuple[Any, Any, list[Any]]:
    import jax
    import jax.numpy as jnp

    # One block of random bits for everything: each jax.random call compiles its own copy of
    # the threefry hash, which dominates compile time on CPU.
    small = int(high.max(initial=1)) <= _SMALL_RANGE
    s = shape[-1]
    cuts = np.cumsum([s if small else 0, s if uniform else 0, *widths])
    if not small:
        key, int_key = jax.random.split(key)
    bits = jax.random.bits(key, (*shape[:-1], int(cuts[-1])), jnp.uint32)
    parts = jnp.split(bits, cuts[:-1].tolist(), axis=-1)
    if small:
        # A remainder of one 32-bit draw: the bias is below 2**-16 (0 for powers of two), and
        # it is about twice as fast as randint, whose second draw only matters for big ranges.
        index = (parts[0] % high.astype(np.uint32)).astype(jnp.int32)
    else:
        index = jax.random.randint(int_key, shape, 0, high, dtype=jnp.int32)
    u = None
    if uniform:
        ftype = jnp.zeros(()).dtype
        if ftype == jnp.float32:  # 24 random bits fill a float32 mantissa exactly
            u = (parts[1] >> 8).astype(ftype) * np.float32(2.0**-24)
        else:
            u = parts[1].astype(ftype) * 2.0**-32
    return index, u, list(parts[2:])


def _random_jax(space: Space, key: Any, n: int | None) -> DNA:
    import jax.numpy as jnp

    register_pytree()
    return _random(space, jnp, functools.partial(_draw_jax, key), n)


@functools.cache
def _jitted_sampler() -> Any:
    import jax

    # jit caches one compiled sampler per static (space, n).
    return jax.jit(_random_jax, static_argnums=(0, 2))


def _inward(bound: np.ndarray, dtype: Any, up: bool) -> np.ndarray:
    """Rounds float64 bounds to ``dtype`` towards the inside of the range."""
    b = bound.astype(dtype)
    outside = b < bound if up else b > bound
    return np.where(outside, np.nextafter(b, np.array(np.inf if up else -np.inf, dtype)), b)


def _random(space: Space, xp: Any, draw: Any, n: int | None) -> DNA:
    batch = () if n is None else (n,)
    shape = (*batch, len(space))
    nc, is_float, is_int, log = space.num_choices, space.is_float, space.is_int, space.log_scale
    log_int = is_int & log
    distinct = [g for g in space.groups if g.distinct]
    index, u, noises = draw(
        shape,
        np.maximum(nc, 1),
        bool(is_float.any() or log_int.any()),
        [int(nc[g.slots[0]]) for g in distinct],
    )
    ftype = np.float64 if xp is np else xp.zeros(()).dtype
    value = None
    lo, hi = space.lo, space.hi
    if is_float.any():
        log_lo, log_hi = np.log(np.where(log, lo, 1.0)), np.log(np.where(log, hi, 1.0))
        x = xp.where(
            log,
            xp.exp(log_lo.astype(ftype) + u * (log_hi - log_lo).astype(ftype)),
            lo.astype(ftype) + u * (hi - lo).astype(ftype),
        )
        # Values must stay inside [lo, hi] after rounding to the value dtype.
        value = xp.clip(x, _inward(lo, ftype, True), _inward(hi, ftype, False))
    if log_int.any():
        a = np.log(np.where(log_int, lo, 1.0))
        b = np.log(np.where(log_int, hi + 1.0, 2.0))
        v = xp.floor(xp.exp(a.astype(ftype) + u * (b - a).astype(ftype)))
        j = xp.clip(v - lo.astype(ftype), 0, np.maximum(nc - 1, 0)).astype(np.int32)
        index = xp.where(log_int, j, index)
    noise = iter(noises)
    for g in space.groups:
        pos = np.array(g.slots)
        if g.distinct:  # the first k of a random permutation
            picked = xp.argsort(next(noise), axis=-1)[..., : len(pos)]
        else:
            picked = index[..., pos]
        if g.sorted:
            picked = xp.sort(picked, axis=-1)
        if g.distinct or g.sorted:
            picked = picked.astype(np.int32)
            if xp is np:
                index[..., pos] = picked
            else:
                index = index.at[..., pos].set(picked)
    return space.make_dna(index, value)


def iterate_dna(space: Space) -> Iterator[DNA]:
    """Yields every valid DNA of a finite space exactly once, lazily.

    The order is lexicographic over the index vector (slots in order, candidates ascending,
    inactive slots fixed at 0); ``len(list(iterate_dna(space))) == space.size``.

    Raises:
        ValueError: If the space has a float slot (named in the message).

    Example:
        >>> from pliant.spaces.dna import Slot, Space
        >>> space = Space([Slot('a', 'choice', 2), Slot('b', 'choice', 2, conditions=((0, 1),))])
        >>> [d.to_list() for d in iterate_dna(space)]
        [[0, None], [1, 0], [1, 1]]
    """
    for s in space.slots:
        if s.kind == "float":
            raise ValueError(
                f"iterate_dna: slot {s.id!r} is a float slot, so the space is infinite; "
                "discretize it (a choice of values) or sample with random_dna."
            )
    return _iterate(space)


def _iterate(space: Space) -> Iterator[DNA]:
    value = _readonly(np.zeros(len(space)))
    for index, active in _enumerate(space):
        yield DNA(space, _readonly(index), value, _readonly(active))


# ----------------------------------------------------------------------------- counting


def _count(space: Space) -> int | float:
    slots, groups = space.slots, space.groups
    for s in slots:
        if s.kind == "float":
            return math.inf
    # A unit is a plain slot or a whole group; its count is the number of ways to fill it and
    # everything conditioned below it, given that it is active.
    units: dict[int, tuple[int, ...]] = {}  # first slot -> slots of the unit
    for i, s in enumerate(slots):
        if s.group < 0:
            units[i] = (i,)
        elif groups[s.group].slots[0] == i:
            units[i] = groups[s.group].slots
    children: dict[int, list[tuple[int, set[int]]]] = {}  # parent slot -> [(unit, values)]
    for u in units:
        parents = {p for p, _ in slots[u].conditions}
        if len(parents) > 1:
            return _count_by_enumeration(space, slots[u].id)
        if parents:
            (p,) = parents
            children.setdefault(p, []).append((u, {c for _, c in slots[u].conditions}))
    total: dict[int, int] = {}

    def weights(i: int) -> dict[int, int]:
        w: dict[int, int] = {}
        for u, values in children.get(i, ()):
            for v in values:
                w[v] = w.get(v, 1) * total[u]
        return w

    for u in sorted(units, reverse=True):  # children have larger indices than their parents
        pos = units[u]
        n = slots[u].num_choices
        if slots[u].group < 0:
            w = weights(u)
            total[u] = n - len(w) + sum(w.values())
        else:
            g = groups[slots[u].group]
            ws = [[weights(p).get(c, 1) for c in range(n)] for p in pos]
            total[u] = _group_count(ws, g.distinct, g.sorted, slots[u].id)
    return math.prod(total[u] for u in units if not slots[u].conditions)


def _group_count(ws: list[list[int]], distinct: bool, sorted_: bool, where: str) -> int:
    """Sum over allowed candidate tuples (c_1..c_k) of prod_j ws[j][c_j]."""
    k, n = len(ws), len(ws[0])
    if not distinct and not sorted_:
        return math.prod(sum(w) for w in ws)
    if sorted_:
        f = list(ws[0])  # f[c]: ways to fill positions 0..j with position j holding c
        for j in range(1, k):
            g, acc = [0] * n, 0
            for c in range(n):
                if not distinct:
                    acc += f[c]
                g[c] = acc * ws[j][c]
                if distinct:
                    acc += f[c]
            f = g
        return sum(f)
    if all(w == ws[0] for w in ws):  # k! times the elementary symmetric polynomial e_k(w)
        e = [1] + [0] * k
        for x in ws[0]:
            for j in range(k, 0, -1):
                e[j] += e[j - 1] * x
        return math.factorial(k) * e[k]
    if k > 16:
        raise ValueError(
            f"Space.size: manyof starting at {where!r} has {k} distinct unsorted positions with "
            "different conditional children; counting supports at most 16."
        )
    dp = [0] * (1 << k)  # dp[mask]: ways with the positions in mask filled by earlier candidates
    dp[0] = 1
    for c in range(n):
        new = list(dp)
        for mask, ways in enumerate(dp):
            if ways:
                for j in range(k):
                    if not mask >> j & 1:
                        new[mask | 1 << j] += ways * ws[j][c]
        dp = new
    return dp[-1]


def _count_by_enumeration(space: Space, where: str) -> int:
    count = 0
    for _ in _enumerate(space):
        count += 1
        if count > _ENUMERATION_LIMIT:
            raise ValueError(
                f"Space.size: slot {where!r} is conditioned on several parent slots, which is "
                f"counted by enumeration, and the space has over {_ENUMERATION_LIMIT} DNAs; "
                "restructure it so each slot has one parent, or avoid Space.size."
            )
    return count


def _enumerate(space: Space) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yields (index, active) of every valid DNA in lexicographic order (no float slots)."""
    slots, n = space.slots, len(space)
    index, active = np.zeros(n, np.int32), np.zeros(n, bool)
    its: list[Iterator[int] | None] = [None] * n
    i = 0
    while i >= 0:
        if i == n:
            yield index.copy(), active.copy()
            i -= 1
            continue
        it = its[i]
        if it is None:
            s = slots[i]
            active[i] = _slot_active(s.conditions, index, active)
            cands: Iterable[int] = range(s.num_choices) if active[i] else (0,)
            if active[i] and s.group >= 0:
                g = space.groups[s.group]
                prev = [int(index[p]) for p in g.slots[: g.slots.index(i)]]
                if prev and g.sorted:
                    cands = range(prev[-1] + (1 if g.distinct else 0), s.num_choices)
                if g.distinct:
                    cands = [c for c in cands if c not in prev]
            it = its[i] = iter(cands)
        nxt = next(it, None)
        if nxt is None:
            its[i], index[i], active[i] = None, 0, False
            i -= 1
        else:
            index[i] = nxt
            i += 1
