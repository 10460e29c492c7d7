"""NSGA-II (Deb et al., 2002) for vector rewards, on the host with NumPy; all objectives maximized.

Steady-state and asynchronous: each reward, for any DNA proposed earlier, enters the population
at once. The population is the evaluated archive and is bounded: it holds at most
``population_size`` DNAs, and when a reward arrives for a full population, NSGA-II's elitist
truncation drops one member, from the worst non-domination rank the one with the smallest
crowding distance (the oldest on ties). So the Pareto front of everything evaluated stays in the
population while it fits; flows compute the front of a whole run from their trials table with
:func:`pareto_front`.

The first ``population_size`` proposals (and any proposal while no reward has arrived) are
uniformly random. After that, each parent wins a binary tournament on (rank, crowding distance);
with probability ``crossover_rate`` the child is a :func:`uniform_crossover` of two parents,
otherwise a copy of the first; then it is mutated (by default :func:`mutate_one`).

A scalar reward is a 1-objective tuple (NSGA-II then reduces to an elitist steady-state GA);
every reward of a run must have the same number of objectives.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from pliant.algorithms.base import Algorithm, Key, Reward, check_reward, host_rng, uniform_proposal
from pliant.algorithms.evolution import Mutation, mutate_one
from pliant.spaces.dna import DNA, Space
from pliant.spaces.sampling import random_dna

__all__ = [
    "NSGA2State",
    "crowding_distance",
    "non_dominated_sort",
    "nsga2",
    "pareto_front",
    "uniform_crossover",
]


class NSGA2State(NamedTuple):
    """State of :func:`nsga2`: the population (oldest first) with its ranks and crowding.

    Example:
        >>> from pliant.spaces.dna import Slot, Space
        >>> algo = nsga2(population_size=4)
        >>> state = algo.init(Space([Slot("a", "choice", 3)]), 0)
        >>> dna, state = algo.propose(state, 1)
        >>> algo.feedback(state, dna, (1.0, 2.0)).rewards
        array([[1., 2.]])
    """

    space: Space
    indices: np.ndarray  # [n, S] int32, n <= population_size
    values: np.ndarray  # [n, S] float64
    actives: np.ndarray  # [n, S] bool
    rewards: np.ndarray  # [n, M] float64 (M = 0 before the first reward)
    ranks: np.ndarray  # [n] int64, 0 = non-dominated
    crowding: np.ndarray  # [n] float64, within each rank; inf at a front's extremes
    num_proposed: int
    num_feedback: int


def nsga2(
    population_size: int = 50,
    mutation: Mutation = mutate_one,
    crossover_rate: float = 0.9,
) -> Algorithm:
    """NSGA-II (Deb et al., 2002), steady-state, for rewards that are tuples to maximize.

    Args:
        population_size: the most evaluated DNAs kept for selection, and the number of
            uniformly random proposals that start the search.
        mutation: ``(space, dna, rng) -> dna`` applied to every child; the default re-samples
            one decision.
        crossover_rate: probability that a child is a uniform crossover of two parents rather
            than a copy of one.

    Returns:
        A host, multi-objective algorithm. ``feedback`` takes a tuple of floats (a scalar is
        one objective) with the same length on every call.

    Raises:
        ValueError: if ``population_size`` is not a positive int or ``crossover_rate`` is not
            in [0, 1].
        TypeError: if ``mutation`` is not callable.

    Example:
        >>> import pliant as pl
        >>> from pliant.algorithms.nsga import nsga2, pareto_front
        >>> space = pl.space([pl.oneof(range(4)) for _ in range(6)])
        >>> algo = nsga2(population_size=20)
        >>> state = algo.init(space, 0)
        >>> for key in pl.algorithms.keys(0):
        ...     if state.num_feedback == 300:
        ...         break
        ...     dna, state = algo.propose(state, key)
        ...     state = algo.feedback(state, dna, (int((dna.index == 3).sum()),
        ...                                        int((dna.index == 0).sum())))
        >>> front = state.rewards[pareto_front(state.rewards)]
        >>> bool((front.sum(axis=1) == 6).all())  # every slot is 3 or 0: the true front
        True
    """
    if type(population_size) is not int or population_size < 1:
        raise ValueError(f"nsga2: population_size must be a positive int, got {population_size!r}")
    if isinstance(crossover_rate, bool) or not (
        isinstance(crossover_rate, int | float) and 0.0 <= crossover_rate <= 1.0
    ):
        raise ValueError(
            f"nsga2: crossover_rate must be a probability in [0, 1], got {crossover_rate!r}"
        )
    if not callable(mutation):
        raise TypeError(
            f"nsga2: mutation must be a function (space, dna, rng) -> dna, got {mutation!r}"
        )

    def init(space: Space, key: Key) -> NSGA2State:
        s = space.num_slots
        return NSGA2State(
            space,
            np.zeros((0, s), np.int32),
            np.zeros((0, s), np.float64),
            np.zeros((0, s), bool),
            np.zeros((0, 0), np.float64),
            np.zeros((0,), np.int64),
            np.zeros((0,), np.float64),
            0,
            0,
        )

    def tournament(state: NSGA2State, rng: np.random.Generator) -> DNA:
        i, j = (int(x) for x in rng.integers(len(state.ranks), size=2))
        if (state.ranks[j], -state.crowding[j]) < (state.ranks[i], -state.crowding[i]):
            i = j
        return DNA(state.space, state.indices[i], state.values[i], state.actives[i])

    def propose(state: NSGA2State, key: Key) -> tuple[DNA, NSGA2State]:
        rng = host_rng(key)
        after = state._replace(num_proposed=state.num_proposed + 1)
        if state.num_proposed < population_size or not len(state.ranks):
            return uniform_proposal(state.space, rng), after
        first = tournament(state, rng)
        second = tournament(state, rng)
        if rng.random() < crossover_rate:
            child = uniform_crossover(state.space, first, second, rng)
        else:
            child = first
        return mutation(state.space, child, rng), after

    def feedback(state: NSGA2State, dna: DNA, reward: Reward) -> NSGA2State:
        checked = check_reward(reward, multi_objective=True, algorithm="nsga2")
        r = checked if isinstance(checked, tuple) else (checked,)
        if dna.space is not state.space and dna.space != state.space:
            raise ValueError(
                "nsga2: feedback for a DNA of another space "
                f"({dna.space.fingerprint} vs {state.space.fingerprint})"
            )
        if np.ndim(dna.index) != 1:
            raise ValueError(
                f"nsga2: feedback takes one DNA, got a batch of shape {np.shape(dna.index)}; "
                "feed each one"
            )
        n = len(state.ranks)
        if n and len(r) != state.rewards.shape[1]:
            raise ValueError(
                f"nsga2: reward {r!r} has {len(r)} objectives but earlier rewards had "
                f"{state.rewards.shape[1]}; give every trial the same objectives"
            )
        index = np.concatenate([state.indices, np.asarray(dna.index, np.int32)[None]])
        value = np.concatenate([state.values, np.asarray(dna.value, np.float64)[None]])
        active = np.concatenate([state.actives, np.asarray(dna.active, bool)[None]])
        rewards = np.concatenate([state.rewards.reshape(n, len(r)), np.asarray([r])])
        ranks = _ranks(rewards)
        if n + 1 > population_size:
            worst = np.flatnonzero(ranks == ranks.max())
            drop = int(worst[np.argmin(crowding_distance(rewards[worst]))])  # first: oldest
            keep = np.arange(n + 1) != drop
            index, value, active = index[keep], value[keep], active[keep]
            rewards, ranks = rewards[keep], ranks[keep]
        return NSGA2State(
            state.space,
            index,
            value,
            active,
            rewards,
            ranks,
            _crowding_by_rank(rewards, ranks),
            state.num_proposed,
            state.num_feedback + 1,
        )

    return Algorithm(init, propose, feedback, name="nsga2", multi_objective=True)


# ----------------------------------------------------------------------------------------------
# Crossover.


@functools.lru_cache(maxsize=64)
def _units(space: Space) -> tuple[np.ndarray, tuple[tuple[int, ...], ...], bool]:
    """(unit of each slot, slots of each unit in order, whether any slot is conditional)."""
    units: list[tuple[int, ...]] = []
    of_slot = np.zeros(space.num_slots, np.intp)
    for i, s in enumerate(space.slots):
        if s.group < 0:
            units.append((i,))
        elif space.groups[s.group].slots[0] == i:
            units.append(space.groups[s.group].slots)
        else:
            continue
        of_slot[list(units[-1])] = len(units) - 1
    return of_slot, tuple(units), any(s.conditions for s in space.slots)


@functools.lru_cache(maxsize=64)
def _unconditioned(space: Space) -> Space:
    # Its random DNAs hold a valid value in every slot, including those inactive in `space`.
    return Space([s._replace(conditions=()) for s in space.slots], space.groups)


def uniform_crossover(space: Space, a: DNA, b: DNA, rng: np.random.Generator) -> DNA:
    """A child taking each decision from parent ``a`` or ``b`` with equal probability.

    A decision is one slot or a whole manyof group, so group constraints hold. A decision that
    the child's choices activate but its chosen parent has inactive comes from the other parent,
    or is drawn at random when both have it inactive.

    Example:
        >>> import numpy as np, pliant as pl
        >>> space = pl.space([pl.oneof(range(5)) for _ in range(8)])
        >>> a, b = space.make_dna(np.zeros(8, int)), space.make_dna(np.full(8, 4))
        >>> child = uniform_crossover(space, a, b, np.random.default_rng(0))
        >>> set(child.index.tolist()) <= {0, 4}
        True
    """
    of_slot, units, conditional = _units(space)
    take_b = rng.random(len(units)) < 0.5
    ia, va, aa = (np.asarray(x) for x in (a.index, a.value, a.active))
    ib, vb, ab = (np.asarray(x) for x in (b.index, b.value, b.active))
    if not conditional:
        from_b = take_b[of_slot]
        return space.make_dna(np.where(from_b, ib, ia), np.where(from_b, vb, va))
    n = space.num_slots
    index, value, active = np.zeros(n, np.int32), np.zeros(n), np.zeros(n, bool)
    fresh: DNA | None = None
    for u, slots in enumerate(units):
        conds = space.slots[slots[0]].conditions
        if conds and not any(active[p] and index[p] == c for p, c in conds):
            continue
        pos = list(slots)
        active[pos] = True
        first, second = ((ib, vb, ab), (ia, va, aa)) if take_b[u] else ((ia, va, aa), (ib, vb, ab))
        if first[2][slots[0]]:
            src = first
        elif second[2][slots[0]]:
            src = second
        else:
            if fresh is None:
                fresh = random_dna(_unconditioned(space), rng)
            src = (fresh.index, fresh.value, fresh.active)
        index[pos], value[pos] = src[0][pos], src[1][pos]
    return space.make_dna(index, value)


# ----------------------------------------------------------------------------------------------
# Non-dominated sorting and crowding distance.


def _points(rewards: object, where: str) -> np.ndarray:
    try:
        r = np.asarray(rewards, dtype=np.float64)
    except (TypeError, ValueError):
        r = None
    if r is not None and r.ndim == 1 and r.size == 0:
        return r.reshape(0, 1)
    if r is None or r.ndim != 2 or r.shape[1] == 0:
        shape = None if r is None else r.shape
        raise ValueError(
            f"{where}: rewards must be an [N, M] array of numbers (one row per trial, one "
            f"column per objective, M >= 1), got shape {shape} from {str(rewards)[:80]}; for "
            "scalar rewards pass [[r] for r in rewards]"
        )
    if not np.isfinite(r).all():
        raise ValueError(f"{where}: rewards must be finite; drop failed trials first")
    return r


def _ranks(r: np.ndarray) -> np.ndarray:
    n = len(r)
    ge = np.ones((n, n), bool)
    gt = np.zeros((n, n), bool)
    for m in range(r.shape[1]):
        col = r[:, m]
        ge &= col[:, None] >= col[None, :]
        gt |= col[:, None] > col[None, :]
    dominates = ge & gt  # [i, j]: i dominates j
    count = dominates.sum(axis=0)
    ranks = np.zeros(n, np.int64)
    front, k = np.flatnonzero(count == 0), 0
    while front.size:
        ranks[front] = k
        count -= dominates[front].sum(axis=0)
        count[front] = -1
        front, k = np.flatnonzero(count == 0), k + 1
    return ranks


def non_dominated_sort(rewards: object) -> np.ndarray:
    """The non-domination rank of each point (0 = Pareto front; all objectives maximized).

    Point ``i`` dominates ``j`` when it is at least as good in every objective and better in
    one. Rank k holds the points dominated only by points of ranks below k. Takes O(N² M) time
    and O(N²) memory; for the front of a large table use :func:`pareto_front`.

    Args:
        rewards: ``[N, M]`` array-like, one row per point.

    Returns:
        int64 ``[N]`` ranks.

    Raises:
        ValueError: for a ragged, non-2-D or non-finite ``rewards``.

    Example:
        >>> non_dominated_sort([[1, 3], [2, 2], [3, 1], [2, 1], [1, 1], [0, 0]]).tolist()
        [0, 0, 0, 1, 2, 3]
    """
    return _ranks(_points(rewards, "non_dominated_sort"))


def crowding_distance(rewards: object) -> np.ndarray:
    """Crowding distance of each point of one front (Deb et al., 2002).

    Per objective, points are sorted (stably) by value; the first and last get infinity and
    each other point adds the gap between its neighbours divided by the objective's range
    (0 when the range is 0). Larger means less crowded.

    Args:
        rewards: ``[N, M]`` array-like, usually the points of one rank.

    Returns:
        float64 ``[N]``.

    Raises:
        ValueError: for a ragged, non-2-D or non-finite ``rewards``.

    Example:
        >>> crowding_distance([[1, 3], [2, 2], [3, 1], [2.5, 1.5]]).tolist()
        [inf, 1.5, inf, 1.0]
    """
    return _crowding(_points(rewards, "crowding_distance"))


def _crowding(r: np.ndarray) -> np.ndarray:
    return _crowding_by_rank(r, np.zeros(len(r), np.int64))


def _crowding_by_rank(r: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """Crowding distance within each rank, all ranks at once (one stable sort per objective)."""
    n, m = r.shape
    out = np.zeros(n)
    if n == 0:
        return out
    # Sorted by rank first, each rank occupies the same block of positions for every objective.
    sorted_ranks = np.sort(ranks)
    starts = np.flatnonzero(np.concatenate(([True], sorted_ranks[1:] != sorted_ranks[:-1])))
    ends = np.append(starts[1:], n) - 1
    sizes = ends - starts + 1
    for j in range(m):
        order = np.lexsort((r[:, j], ranks))  # by rank, then value; stable on ties
        col = r[order, j]
        span = np.repeat(col[ends] - col[starts], sizes)
        gap = np.zeros(n)
        gap[1:-1] = col[2:] - col[:-2]
        part = np.divide(gap, span, out=np.zeros(n), where=span > 0)
        part[starts] = part[ends] = np.inf
        out[order] += part
    return out


def pareto_front(rewards: object) -> np.ndarray:
    """Indices (ascending) of the non-dominated points; all objectives maximized.

    Equal points are all kept. Sorting the points lexicographically (best first) means a point
    can only be dominated by an earlier one, and only by an earlier front member, so this takes
    O(N log N + N·F·M) for a front of F points. Negate an objective to minimize it.

    Args:
        rewards: ``[N, M]`` array-like, one row per point (e.g. per trial of a Result).

    Returns:
        int64 ``[F]`` indices into ``rewards``.

    Raises:
        ValueError: for a ragged, non-2-D or non-finite ``rewards``.

    Example:
        >>> pareto_front([[1, 3], [2, 1], [3, 1], [1, 3], [0, 4]]).tolist()
        [0, 2, 3, 4]
    """
    r = _points(rewards, "pareto_front")
    order = np.lexsort(-r.T[::-1])  # descending, objective 0 first
    front: list[int] = []
    kept = np.empty_like(r)
    for i in order.tolist():
        p = r[i]
        f = kept[: len(front)]
        if not ((f >= p).all(axis=1) & (f > p).any(axis=1)).any():
            kept[len(front)] = p
            front.append(i)
    return np.sort(np.asarray(front, dtype=np.int64))
