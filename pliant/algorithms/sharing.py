"""Which children a weight-sharing supernet trains on in one step: small rules over the DNA layer.

Each rule is a pure function of a :class:`~pliant.spaces.dna.Space` and a ``jax.random`` key
that returns the DNA (or batch of DNAs) to train on; all of them trace under ``jax.jit``, so
the sampling happens inside the jitted supernet step:

- :func:`uniform_path`: single-path one-shot with uniform sampling (SPOS, Guo et al. 2020);
- :func:`fair_paths`: strict fairness (FairNAS, Chu et al. 2021): ``k`` DNAs in which every
  candidate of every (unconditional) choice appears exactly once when all choices have ``k``
  candidates; gradients of the ``k`` children are accumulated before one update;
- :func:`sandwich_paths`: the sandwich rule (BigNAS, Yu et al. 2020): the largest child, the
  smallest child and ``n`` uniform ones; the caller distills the smaller ones from the largest
  one's predictions;
- :func:`warmup_path`: TuNAS's op and filter warm-up applied to a controller sample.

"Largest" and "smallest" need an order on candidates (:func:`extreme_dna`): a width slot (see
:func:`slot_roles`) is ordered by its numeric candidate values (int slots by value); an op slot
by the cost model when one is given (the candidate that raises ``cost_fn`` most, chosen slot by
slot, parents first), otherwise by candidate order (list the candidates smallest first).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection
from typing import Any

import numpy as np

from pliant.spaces.dna import DNA, Slot, Space

__all__ = [
    "extreme_dna",
    "fair_paths",
    "sandwich_paths",
    "slot_roles",
    "uniform_path",
    "warmup_path",
]

MAX_FAIR = 256
"""Most DNAs :func:`fair_paths` returns per step (the largest candidate count it accepts)."""


def _numeric(x: Any) -> bool:
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool)


def _role(s: Slot) -> str:
    if s.kind == "float":
        return "float"
    if s.kind == "int":
        return "width"
    key = (s.name or s.id).lower()
    if "kernel" in key:  # kernel sizes are numbers but TuNAS tags them `op`
        return "op"
    return "width" if s.literals and all(_numeric(x) for x in s.literals) else "op"


def slot_roles(space: Space, widths: Collection[str] | None = None) -> tuple[str, ...]:
    """The TuNAS tag of each slot: ``"width"`` (filters), ``"op"`` or ``"float"``.

    By default int slots and choice slots whose candidates are all numbers are widths (their
    largest candidate is the "full width" of filter warm-up), except slots whose name or id
    contains ``kernel``; every other choice (sub-trees, strings, layer types, skip) is an op.

    Args:
        space: The space.
        widths: Instead of the rule, the ids or names of the width slots.

    Raises:
        ValueError: When ``widths`` names a slot that is not in the space.

    Example:
        >>> space = Space([Slot("units", "choice", 3, literals=(16, 32, 64)),
        ...                Slot("act", "choice", 2, literals=("relu", "tanh"))])
        >>> slot_roles(space)
        ('width', 'op')
    """
    if widths is None:
        return tuple(_role(s) for s in space.slots)
    keys = {k for s in space.slots for k in (s.id, s.name) if k}
    unknown = sorted(set(widths) - keys)
    if unknown:
        raise ValueError(
            f"slot_roles: widths names {unknown!r}, which are not slots of the space; known: "
            f"{sorted(keys)!r:.200}"
        )
    return tuple(
        "float" if s.kind == "float" else "width" if {s.id, s.name} & set(widths) else "op"
        for s in space.slots
    )


def _order(s: Slot) -> np.ndarray:
    """Candidate indices of a width slot from smallest to largest value."""
    if s.kind == "int" or not s.literals:
        return np.arange(s.num_choices)
    return np.argsort(np.asarray([float(x) for x in s.literals]), kind="stable")


def extreme_dna(
    space: Space,
    which: str,
    *,
    cost_fn: Callable[[DNA], Any] | None = None,
    roles: tuple[str, ...] | None = None,
) -> DNA:
    """The largest or smallest child of a space (host NumPy, once per space).

    Width slots take their largest / smallest value; op slots take, slot by slot in order
    (parents first, so a child slot is decided under its parent's pick), the candidate with the
    highest / lowest ``cost_fn`` with the other slots as decided so far, or without a cost model
    the last / first candidate. Manyof groups take the last / first ``k`` candidates. Float
    slots sit at their upper / lower bound.

    Args:
        space: The space.
        which: ``"largest"`` or ``"smallest"``.
        cost_fn: ``dna -> scalar`` cost model used to order op candidates.
        roles: :func:`slot_roles` of the space (computed when None).

    Raises:
        ValueError: For another ``which`` or roles of the wrong length.

    Example:
        >>> space = Space([Slot("units", "choice", 3, literals=(64, 16, 32)),
        ...                Slot("act", "choice", 2, literals=("relu", "tanh"))])
        >>> extreme_dna(space, "largest").to_list(), extreme_dna(space, "smallest").to_list()
        ([0, 1], [1, 0])
    """
    if which not in ("largest", "smallest"):
        raise ValueError(f"extreme_dna: which must be 'largest' or 'smallest', got {which!r}")
    roles = slot_roles(space) if roles is None else roles
    if len(roles) != len(space):
        raise ValueError(f"extreme_dna: got {len(roles)} roles for a space of {len(space)} slots")
    big = which == "largest"
    index = np.zeros(len(space), np.int64)
    value = np.where(space.is_float, space.hi if big else space.lo, 0.0)
    grouped = {p: (g, j) for g in space.groups for j, p in enumerate(g.slots)}
    for i, s in enumerate(space.slots):
        if s.kind == "float":
            continue
        if i in grouped:
            g, j = grouped[i]
            k = len(g.slots)
            index[i] = s.num_choices - k + j if big else j
        elif roles[i] == "width":
            order = _order(s)
            index[i] = order[-1] if big else order[0]
        elif cost_fn is not None and s.num_choices > 1:
            costs = []
            for c in range(s.num_choices):
                trial = index.copy()
                trial[i] = c
                costs.append(float(cost_fn(space.make_dna(trial, value))))
            index[i] = int(np.argmax(costs) if big else np.argmin(costs))
        else:
            index[i] = s.num_choices - 1 if big else 0
    return space.make_dna(index, value)


def uniform_path(space: Space, key: Any) -> DNA:
    """SPOS: one DNA uniformly at random (per slot, within the space's constraints).

    Example:
        >>> import jax
        >>> space = Space([Slot("a", "choice", 3)])
        >>> uniform_path(space, jax.random.key(0)).batch_shape
        ()
    """
    from pliant.spaces.sampling import random_dna

    return random_dna(space, key)


@functools.lru_cache(maxsize=64)
def _fair_plan(space: Space) -> tuple[int, np.ndarray, tuple[tuple[tuple[int, ...], bool], ...]]:
    cat = ~space.is_float
    k = int(space.num_choices[cat].max()) if cat.any() else 1
    if k > MAX_FAIR:
        raise ValueError(
            f"fair_paths: the space has a decision with {k} candidates; strict fairness trains "
            f"one child per candidate per step and supports at most {MAX_FAIR}; search that "
            "decision with a coarser range"
        )
    grouped = np.zeros(len(space), bool)
    groups = []
    for g in space.groups:
        grouped[list(g.slots)] = True
        groups.append((tuple(g.slots), g.sorted))
    return k, grouped, tuple(groups)


def fair_paths(space: Space, key: Any) -> DNA:
    """FairNAS strict fairness: a batch ``[k, S]`` that trains each candidate once per step.

    ``k`` is the largest candidate count of any choice or int slot. For each slot, row ``r``
    takes candidate ``perm[r] % n`` of a fresh random permutation ``perm`` of ``0..k-1``, so a
    slot with ``k`` candidates has each of them in exactly one row, and a slot with fewer
    candidates has each in ``floor(k / n)`` or ``ceil(k / n)`` rows. Manyof positions ``j`` of
    a group take ``(perm[r] + j) % n`` (distinct within a row; each position covers each
    candidate once when ``n == k``), sorted for a sorted group. Slots under a choice are active
    only in the rows where their parent picks their branch, so fairness holds for them only
    within those rows. Float slots are uniform. Accumulate the ``k`` children's gradients and
    apply one update.

    Args:
        space: The space (static).
        key: A ``jax.random`` key.

    Raises:
        ValueError: When a slot has more than :data:`MAX_FAIR` candidates.

    Example:
        >>> import jax
        >>> space = Space([Slot("a", "choice", 3), Slot("b", "choice", 3)])
        >>> batch = fair_paths(space, jax.random.key(0))
        >>> sorted(batch.index[:, 0].tolist()), sorted(batch.index[:, 1].tolist())
        ([0, 1, 2], [0, 1, 2])
    """
    import jax
    import jax.numpy as jnp

    k, _, groups = _fair_plan(space)
    s = len(space)
    keys = jax.random.split(key, 2)
    perms = jax.vmap(lambda kk: jax.random.permutation(kk, k))(jax.random.split(keys[0], s))
    n = jnp.maximum(jnp.asarray(space.num_choices), 1)
    index = (perms.T % n).astype(jnp.int32)  # [k, S]
    for pos, is_sorted in groups:
        p = np.asarray(pos)
        m = int(space.num_choices[pos[0]])
        sel = (perms[pos[0]][:, None] + jnp.arange(len(pos))[None, :]) % m
        if is_sorted:
            sel = jnp.sort(sel, axis=-1)
        index = index.at[:, p].set(sel.astype(jnp.int32))
    value = None
    if space.is_float.any():
        u = uniform_path(space, keys[1])
        value = jnp.broadcast_to(u.value, (k, s))
    return space.make_dna(index, value)


def sandwich_paths(
    space: Space,
    key: Any,
    num_random: int = 2,
    *,
    largest: DNA | None = None,
    smallest: DNA | None = None,
) -> DNA:
    """BigNAS's sandwich rule: ``[largest, smallest, num_random uniform children]``.

    Row 0 is the largest child (train it on the labels), row 1 the smallest and the rest
    uniform (distill them from row 0's predictions). ``largest`` / ``smallest`` default to
    :func:`extreme_dna` by candidate values and order; pass ones computed with a cost model.

    Example:
        >>> import jax
        >>> space = Space([Slot("units", "choice", 3, literals=(16, 32, 64))])
        >>> sandwich_paths(space, jax.random.key(0), 2).index[:2, 0].tolist()
        [2, 0]
    """
    import jax.numpy as jnp

    if isinstance(num_random, bool) or not isinstance(num_random, int) or num_random < 0:
        raise ValueError(f"sandwich_paths: num_random must be an int >= 0, got {num_random!r}")
    big = extreme_dna(space, "largest") if largest is None else largest
    small = extreme_dna(space, "smallest") if smallest is None else smallest
    parts_i = [jnp.asarray(big.index)[None], jnp.asarray(small.index)[None]]
    parts_v = [jnp.asarray(big.value, float)[None], jnp.asarray(small.value, float)[None]]
    if num_random:
        from pliant.spaces.sampling import random_dna

        r = random_dna(space, key, num_random)
        parts_i.append(r.index)
        parts_v.append(r.value)
    return space.make_dna(jnp.concatenate(parts_i), jnp.concatenate(parts_v))


def warmup_path(
    dna: DNA,
    key: Any,
    p_ops: Any,
    p_filters: Any,
    *,
    roles: tuple[str, ...] | None = None,
    largest: DNA | None = None,
) -> tuple[DNA, Any]:
    """TuNAS warm-up on one controller sample: which DNA to train the weights on this step.

    Independently per slot: an op slot, with probability ``p_ops``, is replaced by a uniform
    candidate, and a width slot, with probability ``p_filters``, by its largest candidate. Slots
    that become active under a replaced op (inactive in ``dna``) draw uniform candidates too.
    Manyof positions keep their sampled candidates. TuNAS's op warm-up runs the *average of
    all ops* instead of one uniform op; a supernet that can do so (every branch runs, as under
    ``vmap``) reads the returned ``mixed`` mask, ``True`` where op warm-up fired; a single-path
    supernet trains the uniform op, which trains every op equally often in expectation. Warm-up
    DNAs are not policy samples: the controller learns from the original ``dna``, and only after
    the warm-up is over (:func:`~pliant.algorithms.tunas.tunas` validates the delay).

    Args:
        dna: One DNA from the controller (JAX arrays).
        key: A ``jax.random`` key.
        p_ops: Op warm-up probability (:func:`~pliant.algorithms.tunas.warmup_probability`).
        p_filters: Filter warm-up probability.
        roles: :func:`slot_roles` (computed when None).
        largest: The largest child (:func:`extreme_dna` when None).

    Returns:
        ``(dna, mixed)``: the DNA to train on and a bool ``[S]`` mask of the op slots warmed up.

    Example:
        >>> import jax
        >>> space = Space([Slot("units", "choice", 3, literals=(16, 32, 64))])
        >>> d, mixed = warmup_path(space.make_dna(jax.numpy.array([0])), jax.random.key(0), 0., 1.)
        >>> d.index.tolist()
        [2]
    """
    import jax
    import jax.numpy as jnp

    space = dna.space
    roles = slot_roles(space) if roles is None else roles
    big = extreme_dna(space, "largest", roles=roles) if largest is None else largest
    free = np.asarray([s.group < 0 for s in space.slots])  # manyof positions stay as sampled
    is_op = np.asarray([r == "op" for r in roles]) & free
    is_width = np.asarray([r == "width" for r in roles]) & free
    k1, k2, k3 = jax.random.split(key, 3)
    s = len(space)
    fire_op = (jax.random.uniform(k1, (s,)) < p_ops) & is_op
    fire_w = (jax.random.uniform(k2, (s,)) < p_filters) & is_width
    u = uniform_path(space, k3)
    index = jnp.asarray(dna.index)
    index = jnp.where(fire_op | ~jnp.asarray(dna.active), u.index, index)
    index = jnp.where(fire_w, jnp.asarray(big.index), index)
    value = jnp.where(jnp.asarray(dna.active), jnp.asarray(dna.value), u.value)
    out = space.make_dna(index, value)
    return out, fire_op & out.active
