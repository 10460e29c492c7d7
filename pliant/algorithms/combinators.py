"""Combinators: algorithms built from algorithms, returning the same :class:`Algorithm` type.

- :func:`sequence` runs stages one after another (random warm-up, then evolution), while every
  stage sees all feedback, so a later stage starts from everything learned before it.
- :func:`dedup` never proposes the same DNA twice (within a retry budget).
- :func:`partition` gives different groups of decisions to different algorithms.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from pliant.algorithms.base import Algorithm, Key, Reward, check_reward, key_to_int, step_key
from pliant.spaces.dna import DNA, Group, Slot, Space

# ----------------------------------------------------------------------------------------------
# sequence


class SequenceState(NamedTuple):
    """State of :func:`sequence`: one state per stage and the proposals made so far."""

    states: tuple[Any, ...]
    num_proposed: int


def sequence(*stages: tuple[Algorithm, int | None]) -> Algorithm:
    """Runs algorithms in stages: ``(algo, n)`` proposes ``n`` times, then the next one takes over.

    The last stage's count is ``None`` (it runs for the rest of the search). Feedback goes to every
    stage, so e.g. evolution after a random warm-up starts with the warm-up's results.

    Raises:
        ValueError: if no stage is given, a count is not a positive int, or a stage other than
            the last has ``None``.

    Example:
        >>> import pliant as pl
        >>> A = pl.algorithms
        >>> algo = A.sequence((A.random(), 20), (A.regularized_evolution(10, 3), None))
        >>> space = pl.space([pl.oneof(range(4)) for _ in range(3)])
        >>> state = algo.init(space, 0)
        >>> for key in list(zip(range(30), A.keys(0))):
        ...     dna, state = algo.propose(state, key[1])
        ...     state = algo.feedback(state, dna, float(dna.index.sum()))
        >>> state.num_proposed, state.states[1].size
        (30, 10)
    """
    if not stages:
        raise ValueError("sequence() needs at least one (algorithm, count) stage")
    algos: list[Algorithm] = []
    ends: list[float] = []
    total = 0
    for i, stage in enumerate(stages):
        if not (isinstance(stage, tuple) and len(stage) == 2 and isinstance(stage[0], Algorithm)):
            raise ValueError(
                f"sequence(): stage {i} must be an (algorithm, count) pair, got {stage!r}"
            )
        algo, count = stage
        last = i == len(stages) - 1
        if count is None and not last:
            raise ValueError(
                f"sequence(): only the last stage may run without a count; stage {i} "
                f"({algo.name}) has None"
            )
        if count is not None and (type(count) is not int or count < 1):
            raise ValueError(f"sequence(): stage {i} count must be a positive int, got {count!r}")
        total += count if count is not None else 0
        ends.append(float("inf") if count is None else total)
        algos.append(algo)
    multi = all(a.multi_objective for a in algos)
    name = "sequence(" + ", ".join(a.name for a in algos) + ")"

    def init(space: Space, key: Key) -> SequenceState:
        base = key_to_int(key)
        return SequenceState(
            tuple(a.init(space, step_key(base, i)) for i, a in enumerate(algos)), 0
        )

    def propose(state: SequenceState, key: Key) -> tuple[DNA, SequenceState]:
        i = next((j for j, end in enumerate(ends) if state.num_proposed < end), len(algos) - 1)
        dna, sub = algos[i].propose(state.states[i], key)
        states = (*state.states[:i], sub, *state.states[i + 1 :])
        return dna, SequenceState(states, state.num_proposed + 1)

    def feedback(state: SequenceState, dna: DNA, reward: Reward) -> SequenceState:
        r = check_reward(reward, multi_objective=multi, algorithm=name)
        return SequenceState(
            tuple(a.feedback(s, dna, r) for a, s in zip(algos, state.states)), state.num_proposed
        )

    return Algorithm(init, propose, feedback, name=name, multi_objective=multi)


# ----------------------------------------------------------------------------------------------
# dedup


class DedupState(NamedTuple):
    """State of :func:`dedup`: the inner state and every DNA proposed or fed back so far."""

    inner: Any
    seen: frozenset


def _dna_key(dna: DNA) -> tuple:
    return (tuple(np.asarray(dna.index).tolist()), tuple(np.asarray(dna.value).tolist()))


def dedup(algorithm: Algorithm, max_retries: int = 100) -> Algorithm:
    """Wraps an algorithm so that it does not propose a DNA it proposed (or was told of) before.

    Each proposal asks the inner algorithm up to ``max_retries`` times, with keys derived from
    the given one. When every try repeats (a nearly exhausted finite space), the last try is
    returned even though it is a repeat, so the search goes on instead of hanging. Memory and
    time per proposal grow with the history (a set of all DNAs seen).

    Raises:
        ValueError: if ``max_retries`` is not a positive int.

    Example:
        >>> import pliant as pl
        >>> A = pl.algorithms
        >>> algo = A.dedup(A.random())
        >>> space = pl.space([pl.oneof(range(3)), pl.oneof(range(3))])
        >>> state = algo.init(space, 0)
        >>> seen = set()
        >>> for key in list(zip(range(9), A.keys(1))):
        ...     dna, state = algo.propose(state, key[1])
        ...     seen.add(tuple(dna.index.tolist()))
        >>> len(seen)  # all 9 points of the space, no repeat
        9
    """
    if type(max_retries) is not int or max_retries < 1:
        raise ValueError(f"dedup(): max_retries must be a positive int, got {max_retries!r}")

    def init(space: Space, key: Key) -> DedupState:
        return DedupState(algorithm.init(space, key), frozenset())

    def propose(state: DedupState, key: Key) -> tuple[DNA, DedupState]:
        inner = state.inner
        base = key_to_int(key)
        for attempt in range(max_retries):
            dna, inner = algorithm.propose(inner, key if attempt == 0 else step_key(base, attempt))
            k = _dna_key(dna)
            if k not in state.seen:
                break
        return dna, DedupState(inner, state.seen | {k})

    def feedback(state: DedupState, dna: DNA, reward: Reward) -> DedupState:
        inner = algorithm.feedback(state.inner, dna, reward)
        k = _dna_key(dna)
        return DedupState(inner, state.seen if k in state.seen else state.seen | {k})

    return Algorithm(
        init,
        propose,
        feedback,
        name=f"dedup({algorithm.name})",
        multi_objective=algorithm.multi_objective,
    )


# ----------------------------------------------------------------------------------------------
# partition

Selector = str | Callable[[Slot], bool]


class PartitionState(NamedTuple):
    """State of :func:`partition`: one state per group of decisions."""

    space: Space
    states: tuple[Any, ...]


class _Split(NamedTuple):
    members: tuple[np.ndarray, ...]  # per part, slot indices in the full space
    spaces: tuple[Space, ...]


def _matches(selector: Selector, slot: Slot) -> bool:
    if isinstance(selector, str):
        return slot.id.startswith(selector) or (slot.name or "").startswith(selector)
    return bool(selector(slot))


def _split(space: Space, selectors: Sequence[Selector]) -> _Split:
    owner = []
    for slot in space.slots:
        part = next((i for i, sel in enumerate(selectors) if _matches(sel, slot)), None)
        if part is None:
            raise ValueError(
                f"partition(): no part claims slot {slot.id!r}; add a catch-all part such as "
                f"(lambda slot: True, pl.algorithms.random())"
            )
        owner.append(part)
    for g, group in enumerate(space.groups):
        parts = {owner[s] for s in group.slots}
        if len(parts) > 1:
            first = space.slots[group.slots[0]].id
            raise ValueError(
                f"partition(): the picks of manyof group {g} (slot {first!r}) fall into "
                f"different parts {sorted(parts)}; a manyof must stay in one part"
            )
    members, spaces = [], []
    for part in range(len(selectors)):
        mine = [i for i, o in enumerate(owner) if o == part]
        where = {full: sub for sub, full in enumerate(mine)}
        groups: list[Group] = []
        group_of: dict[int, int] = {}
        slots = []
        for full in mine:
            slot = space.slots[full]
            conditions = tuple((where[p], c) for p, c in slot.conditions if p in where)
            if slot.conditions and not conditions:
                conditions = ()  # conditioned only on another part: always decided here
            group_index = -1
            if slot.group >= 0:
                if slot.group not in group_of:
                    old = space.groups[slot.group]
                    group_of[slot.group] = len(groups)
                    groups.append(
                        Group(tuple(where[s] for s in old.slots), old.distinct, old.sorted)
                    )
                group_index = group_of[slot.group]
            slots.append(slot._replace(conditions=conditions, group=group_index))
        members.append(np.asarray(mine, dtype=np.intp))
        spaces.append(Space(tuple(slots), tuple(groups)))
    return _Split(tuple(members), tuple(spaces))


def partition(parts: Sequence[tuple[Selector, Algorithm]]) -> Algorithm:
    """Searches different groups of decisions with different algorithms.

    Each part is ``(selector, algorithm)``: the selector is a prefix of slot ids or names
    (``'model.'``) or a predicate on :class:`~pliant.spaces.dna.Slot`; each slot goes to the
    first part whose selector matches. Every part searches its own sub-space (its slots; a
    condition on a slot of another part is dropped there, since that part decides it), all parts
    propose together, and every part receives every reward.

    Raises:
        ValueError: if no part is given, a slot matches no part, or a manyof is split.

    Example:
        >>> import pliant as pl
        >>> A = pl.algorithms
        >>> value = {"model": [pl.oneof(range(4))] * 3, "lr": pl.floatv(0.01, 0.1)}
        >>> algo = A.partition([("model", A.regularized_evolution(8, 2)), ("lr", A.random())])
        >>> state = algo.init(pl.space(value), 0)
        >>> dna, state = algo.propose(state, 1)
        >>> sorted(dna.to_dict())
        ['lr', 'model[0]', 'model[1]', 'model[2]']
    """
    parts = list(parts)
    if not parts:
        raise ValueError("partition() needs at least one (selector, algorithm) part")
    for i, part in enumerate(parts):
        if not (isinstance(part, tuple) and len(part) == 2 and isinstance(part[1], Algorithm)):
            raise ValueError(f"partition(): part {i} must be (selector, algorithm), got {part!r}")
    selectors = [p[0] for p in parts]
    algos = [p[1] for p in parts]
    multi = all(a.multi_objective for a in algos)
    name = "partition(" + ", ".join(a.name for a in algos) + ")"
    cache: dict[Space, _Split] = {}

    def split(space: Space) -> _Split:
        s = cache.get(space)
        if s is None:
            s = cache[space] = _split(space, selectors)
        return s

    def init(space: Space, key: Key) -> PartitionState:
        sp = split(space)
        base = key_to_int(key)
        return PartitionState(
            space,
            tuple(
                a.init(sub, step_key(base, i)) for i, (a, sub) in enumerate(zip(algos, sp.spaces))
            ),
        )

    def propose(state: PartitionState, key: Key) -> tuple[DNA, PartitionState]:
        sp = split(state.space)
        base = key_to_int(key)
        index = np.zeros(state.space.num_slots, np.int32)
        value = np.zeros(state.space.num_slots, np.float64)
        states = []
        for i, (algo, sub_state, members) in enumerate(zip(algos, state.states, sp.members)):
            sub, new_state = algo.propose(sub_state, step_key(base, i))
            index[members] = np.asarray(sub.index)
            value[members] = np.asarray(sub.value)
            states.append(new_state)
        return state.space.make_dna(index, value), PartitionState(state.space, tuple(states))

    def feedback(state: PartitionState, dna: DNA, reward: Reward) -> PartitionState:
        r = check_reward(reward, multi_objective=multi, algorithm=name)
        if dna.space is not state.space and dna.space != state.space:
            raise ValueError(f"{name}: feedback for a DNA of another space")
        sp = split(state.space)
        index, value = np.asarray(dna.index), np.asarray(dna.value)
        states = tuple(
            algo.feedback(s, sub.make_dna(index[m], value[m]), r)
            for algo, s, sub, m in zip(algos, state.states, sp.spaces, sp.members)
        )
        return PartitionState(state.space, states)

    return Algorithm(init, propose, feedback, name=name, multi_objective=multi)
