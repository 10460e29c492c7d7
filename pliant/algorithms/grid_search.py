"""Grid search: every DNA of a finite space once, in the order of ``iterate_dna``.

The state is one int, the position in that order, so a sweep resumes exactly from JSON and
proposals do not depend on the key. Float slots are swept only when ``float_points=k`` is given:
each becomes ``k`` evenly spaced values of its scale (linear or log), both bounds included.

Position ``p`` is decoded directly (unranked) in time polynomial in the number of slots, never
``O(p)``: for each slot in order, the number of valid completions of every candidate is counted
with the same per-unit products as ``Space.size`` (a unit is a plain slot or a whole manyof,
with everything conditioned below it). Spaces where a slot is conditioned on several parent
slots, or a distinct unsorted manyof over 12 positions whose positions have different
conditional children, fall back to ``iterate_dna``: a sweep then costs O(1) per proposal (each
thread keeps its running iterator), and a resume at position ``p`` costs one ``O(p)`` skip.

After the last DNA, ``propose`` raises :class:`GridExhausted` (and keeps raising it).
"""

from __future__ import annotations

import functools
import itertools
import math
import threading
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from pliant.algorithms.base import Algorithm, Key, Reward, check_reward
from pliant.spaces.dna import DNA, Slot, Space
from pliant.spaces.sampling import iterate_dna

__all__ = ["GridExhausted", "GridState", "grid"]

# A distinct unsorted manyof whose positions have different conditional children is counted by
# a DP over subsets of its positions; past this many positions grid falls back to iteration.
_MAX_MASK_POSITIONS = 12


class GridExhausted(Exception):
    """Raised by ``grid().propose`` once every DNA of the space was proposed.

    Attributes:
        num_proposals: how many DNAs the sweep proposed (the size of the swept grid).

    Example:
        >>> import pliant as pl
        >>> from pliant.algorithms.grid_search import GridExhausted, grid
        >>> space = pl.space([pl.oneof([1, 2])])
        >>> algo = grid()
        >>> state = algo.init(space, 0)
        >>> try:
        ...     while True:
        ...         dna, state = algo.propose(state, 0)
        ... except GridExhausted as e:
        ...     print(e.num_proposals)
        2
    """

    def __init__(self, num_proposals: int) -> None:
        super().__init__(num_proposals)  # args stay picklable: the message is built in __str__
        self.num_proposals = num_proposals

    def __str__(self) -> str:
        return (
            f"grid: exhausted after {self.num_proposals} proposals: every DNA of the space was "
            "proposed once; stop the search here (catch GridExhausted)"
        )


class GridState(NamedTuple):
    """State of :func:`grid`: the space and the position of the next proposal.

    Example:
        >>> from pliant.spaces.dna import Slot, Space
        >>> space = Space([Slot("a", "choice", 3)])
        >>> dna, state = grid().propose(GridState(space, 2), 0)  # resume at position 2
        >>> dna.to_list(), state.position
        ([2], 3)
    """

    space: Space
    position: int


def grid(float_points: int | None = None) -> Algorithm:
    """Grid search over a finite space, in the order of ``iterate_dna``.

    Args:
        float_points: None to refuse float slots; else ``k >= 2``: each float slot is swept
            over ``k`` evenly spaced values of its scale (geometrically spaced on a log scale),
            both bounds included (fewer when the bounds are too close for ``k`` distinct floats,
            e.g. one value when ``lo == hi``).

    Returns:
        A host algorithm; proposals ignore the key and rewards are ignored (any number of
        objectives). ``propose`` raises :class:`GridExhausted` after the last DNA.

    Raises:
        ValueError: if ``float_points`` is not None or an int >= 2; from ``init``, if the space
            has a float slot and ``float_points`` is None (the message names the slot).

    Example:
        >>> import pliant as pl
        >>> space = pl.space([pl.oneof([1, 2]), pl.oneof(["a", "b"])])
        >>> algo = grid()
        >>> state = algo.init(space, 0)
        >>> for _ in range(4):
        ...     dna, state = algo.propose(state, 0)
        ...     print(dna.to_list())
        [0, 0]
        [0, 1]
        [1, 0]
        [1, 1]
    """
    if float_points is not None and (type(float_points) is not int or float_points < 2):
        raise ValueError(
            f"grid: float_points must be None or an int >= 2 (values per float slot, both "
            f"bounds included), got {float_points!r}"
        )

    def init(space: Space, key: Key) -> GridState:
        _plan(space, float_points)  # validates float slots now rather than at the first propose
        return GridState(space, 0)

    def propose(state: GridState, key: Key) -> tuple[DNA, GridState]:
        plan = _plan(state.space, float_points)
        p = int(state.position)
        if plan.tables is not None:
            if p >= plan.tables.size:
                raise GridExhausted(plan.tables.size)
            index = _unrank(plan.tables, plan.grid_space, p)
        else:
            index = _nth_by_iteration(plan, float_points, p)
        return _to_dna(plan, state.space, index), GridState(state.space, p + 1)

    def feedback(state: GridState, dna: DNA, reward: Reward) -> GridState:
        check_reward(reward, multi_objective=True, algorithm="grid")
        return state

    return Algorithm(init, propose, feedback, name="grid", multi_objective=True)


# ----------------------------------------------------------------------------------------------
# The swept grid: float slots replaced by choice slots over their points.


class _Plan(NamedTuple):
    grid_space: Space  # finite; equals the space when it has no float slot
    points: tuple[np.ndarray | None, ...]  # per slot: the swept floats of a float slot
    tables: _Tables | None  # None: decode by iteration


@functools.lru_cache(maxsize=32)
def _plan(space: Space, float_points: int | None) -> _Plan:
    slots: list[Slot] = []
    points: list[np.ndarray | None] = []
    for s in space.slots:
        if s.kind != "float":
            slots.append(s)
            points.append(None)
            continue
        if float_points is None:
            raise ValueError(
                f"grid: slot {s.id!r} is a float slot, so the space is infinite; pass "
                f"grid(float_points=k) to sweep k evenly spaced values of every float slot "
                f"(both bounds included), or make it a choice of values"
            )
        pts = _float_points(s.lo, s.hi, float_points, s.scale == "log")
        points.append(pts)
        literals = tuple(float(x) for x in pts)
        slots.append(Slot(s.id, "choice", len(pts), conditions=s.conditions, literals=literals))
    grid_space = space if all(p is None for p in points) else Space(slots, space.groups)
    return _Plan(grid_space, tuple(points), _tables(grid_space))


def _float_points(lo: float, hi: float, k: int, log: bool) -> np.ndarray:
    if log:
        pts = np.exp(np.linspace(np.log(lo), np.log(hi), k))
    else:
        pts = np.linspace(lo, hi, k)
    pts[0], pts[-1] = lo, hi  # exact bounds, whatever exp(log(x)) rounds to
    return np.unique(np.clip(pts, lo, hi))


def _to_dna(plan: _Plan, space: Space, index: np.ndarray) -> DNA:
    if plan.grid_space is space:
        return space.make_dna(index)
    value = np.zeros(len(index))
    for i, pts in enumerate(plan.points):
        if pts is not None:
            value[i] = pts[index[i]]
            index[i] = 0
    return space.make_dna(index, value)


# ----------------------------------------------------------------------------------------------
# Fallback: the p-th DNA by iteration, with each thread's running iterator kept for the next p.

_LOCAL = threading.local()


def _nth_by_iteration(plan: _Plan, float_points: int | None, p: int) -> np.ndarray:
    key = (plan.grid_space, float_points)
    cached = getattr(_LOCAL, "iterator", None)
    if cached is not None and cached[0] == key and cached[2] == p:
        it, seen = cached[1], p
    else:
        it = iterate_dna(plan.grid_space)
        seen = sum(1 for _ in itertools.islice(it, p))
    dna = next(it, None)
    if dna is None:
        _LOCAL.iterator = None
        raise GridExhausted(seen)
    _LOCAL.iterator = (key, it, p + 1)
    return np.array(dna.index, dtype=np.int32)


# ----------------------------------------------------------------------------------------------
# Unranking. Units are plain slots and whole manyof groups; a unit's total counts its fillings
# and everything conditioned below it, given that it is active. A slot's weight for candidate c
# is the product of the totals of the units that c activates.


class _Group(NamedTuple):
    slots: tuple[int, ...]
    n: int
    distinct: bool
    sorted: bool
    rows: tuple[tuple[int, ...], ...]  # per position, the weight of each candidate
    suffix: tuple[int, ...]  # free groups: ways to fill positions j.. (suffix[k] = 1)
    tail: tuple[tuple[int, ...], ...]  # sorted groups: tail[j][c] = ways with position j >= c
    equal_rows: bool


class _Tables(NamedTuple):
    size: int
    total: dict[int, int]  # first slot of a unit -> its total
    weights: tuple[dict[int, int], ...]  # per slot: candidate -> weight, when not 1
    specials: tuple[tuple[tuple[int, int], ...], ...]  # weights sorted by candidate
    groups: tuple[_Group, ...]
    position: tuple[int, ...]  # per slot: its position in its group, else -1


def _tables(space: Space) -> _Tables | None:
    slots, n_slots = space.slots, len(space.slots)
    units = [i for i, s in enumerate(slots) if s.group < 0 or space.groups[s.group].slots[0] == i]
    children: list[list[tuple[int, set[int]]]] = [[] for _ in range(n_slots)]
    for u in units:
        parents = {p for p, _ in slots[u].conditions}
        if len(parents) > 1:
            return None
        if parents:
            children[parents.pop()].append((u, {c for _, c in slots[u].conditions}))
    total: dict[int, int] = {}
    weights: list[dict[int, int]] = [{} for _ in range(n_slots)]
    groups: dict[int, _Group] = {}

    def fill_weights(i: int) -> None:
        for v, values in children[i]:
            for c in values:
                weights[i][c] = weights[i].get(c, 1) * total[v]

    for u in reversed(units):  # children come after their parents
        s = slots[u]
        if s.group < 0:
            fill_weights(u)
            total[u] = s.num_choices - len(weights[u]) + sum(weights[u].values())
            continue
        g = space.groups[s.group]
        for p in g.slots:
            fill_weights(p)
        info = _group_tables(g.slots, s.num_choices, g.distinct, g.sorted, weights)
        if info is None:
            return None
        groups[s.group] = info
        total[u] = _group_total(info)
    size = math.prod(total[u] for u in units if not slots[u].conditions)
    position = [-1] * n_slots
    for g in space.groups:
        for j, p in enumerate(g.slots):
            position[p] = j
    return _Tables(
        size,
        total,
        tuple(weights),
        tuple(tuple(sorted(w.items())) for w in weights),
        tuple(groups[j] for j in range(len(space.groups))),
        tuple(position),
    )


def _group_tables(
    positions: tuple[int, ...], n: int, distinct: bool, sorted_: bool, weights: list[dict]
) -> _Group | None:
    k = len(positions)
    rows = tuple(tuple(weights[p].get(c, 1) for c in range(n)) for p in positions)
    equal = all(r == rows[0] for r in rows)
    suffix: tuple[int, ...] = ()
    tail: tuple[tuple[int, ...], ...] = ()
    if not distinct and not sorted_:
        products = [1]
        for r in reversed(rows):
            products.append(products[-1] * sum(r))
        suffix = tuple(reversed(products))
    elif sorted_:
        d = 1 if distinct else 0
        tails = [(1,) * (n + 2)]
        for r in reversed(rows):
            nxt, t, acc = tails[-1], [0] * (n + 2), 0
            for c in reversed(range(n)):
                acc += r[c] * nxt[c + d]
                t[c] = acc
            tails.append(tuple(t))
        tail = tuple(reversed(tails))
    elif not equal and k > _MAX_MASK_POSITIONS:
        return None
    return _Group(positions, n, distinct, sorted_, rows, suffix, tail, equal)


def _group_options(g: _Group, j: int, prev: list[int]) -> Iterator[tuple[int, int]]:
    """Yields (candidate of position j, ways to fill positions after j) in candidate order."""
    if not g.distinct and not g.sorted:
        rest = g.suffix[j + 1]
        for c in range(g.n):
            yield c, rest
    elif g.sorted:
        d = 1 if g.distinct else 0
        for c in range(prev[-1] + d if prev else 0, g.n):
            yield c, g.tail[j + 1][c + d]
    else:
        used = set(prev)
        avail = [c for c in range(g.n) if c not in used]
        later = g.rows[j + 1 :]
        if not later:
            for c in avail:
                yield c, 1
        elif g.equal_rows:
            # k'! * e_k'(weights of the free candidates), with c's factor divided out of e.
            m = len(later)
            e = _esym([later[0][c] for c in avail], m)
            for c in avail:
                x, quot = later[0][c], [1]
                for i in range(1, m + 1):
                    quot.append(e[i] - x * quot[-1])
                yield c, math.factorial(m) * quot[m]
        else:
            for c in avail:
                yield c, _perm_count(later, [a for a in avail if a != c], False)


def _group_total(g: _Group) -> int:
    if g.suffix:
        return g.suffix[0]
    if g.tail:
        return g.tail[0][0]
    return _perm_count(g.rows, list(range(g.n)), g.equal_rows)


def _esym(xs: list[int], k: int) -> list[int]:
    e = [1] + [0] * k
    for x in xs:
        for m in range(k, 0, -1):
            e[m] += e[m - 1] * x
    return e


def _perm_count(rows: tuple[tuple[int, ...], ...], avail: list[int], equal: bool) -> int:
    """Weighted count of injective fillings of the positions ``rows`` from ``avail``."""
    k = len(rows)
    if equal or k <= 1:
        return math.factorial(k) * _esym([rows[0][c] for c in avail], k)[k] if k else 1
    full = (1 << k) - 1
    dp = [0] * (full + 1)
    dp[0] = 1
    for c in avail:
        for mask in range(full, -1, -1):  # downwards: each candidate fills one position at most
            ways = dp[mask]
            if ways:
                for p in range(k):
                    if not mask >> p & 1:
                        dp[mask | 1 << p] += ways * rows[p][c]
    return dp[full]


def _pick(q: int, specials: tuple[tuple[int, int], ...]) -> tuple[int, int]:
    """The candidate c whose block holds q, and the total weight of the candidates before c."""
    before, start = 0, 0
    for s, w in specials:
        if q < before + (s - start):
            return start + (q - before), q
        before += s - start
        if q < before + w:
            return s, before
        before += w
        start = s + 1
    return start + (q - before), q


def _unrank(t: _Tables, space: Space, r: int) -> np.ndarray:
    """The DNA index at rank r of the lexicographic order of ``iterate_dna``.

    P is the product of the totals of the units still open (active, not yet decided); at each
    slot, a candidate's block of ranks is P / (this unit's factor) * (its own count).
    """
    slots = space.slots
    index, active = [0] * len(slots), [False] * len(slots)
    big = t.size
    group_factor: dict[int, int] = {}
    for i, s in enumerate(slots):
        if s.conditions and not any(active[p] and index[p] == c for p, c in s.conditions):
            continue
        active[i] = True
        if s.group < 0:
            rest = big // t.total[i]
            q, r = divmod(r, rest)
            c, before = _pick(q, t.specials[i])
            r += (q - before) * rest
            index[i] = c
            big = rest * t.weights[i].get(c, 1)
            continue
        g, j = t.groups[s.group], t.position[i]
        rest = big // (t.total[i] if j == 0 else group_factor[s.group])
        prev = [index[p] for p in g.slots[:j]]
        for c, after in _group_options(g, j, prev):
            block = rest * g.rows[j][c] * after
            if r < block:
                break
            r -= block
        index[i] = c
        group_factor[s.group] = after
        big = rest * g.rows[j][c] * after
    return np.array(index, dtype=np.int32)
