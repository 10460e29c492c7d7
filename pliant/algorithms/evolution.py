"""Regularized (aging) evolution, Real et al. 2019, on the host with NumPy.

The population is a ring buffer of the last ``population_size`` DNAs that received feedback,
oldest first out. Until it is full, proposals are uniformly random (the paper's random initial
population). After that, each proposal samples ``tournament_size`` members without replacement,
takes the one with the best reward as parent, and mutates it. Feedback may arrive in any order
and for any DNA of the space: it simply enters the population (asynchronous evolution).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from pliant.algorithms.base import Algorithm, Key, Reward, check_reward, host_rng, uniform_proposal
from pliant.spaces.dna import DNA, Space
from pliant.spaces.sampling import random_dna

Mutation = Callable[[Space, DNA, np.random.Generator], DNA]


class RegularizedEvolutionState(NamedTuple):
    """State of :func:`regularized_evolution`: the population as arrays, oldest at ``oldest``."""

    space: Space
    indices: np.ndarray  # [P, S] int32
    values: np.ndarray  # [P, S] float64
    actives: np.ndarray  # [P, S] bool
    rewards: np.ndarray  # [P] float64
    size: int  # members so far (≤ P)
    oldest: int  # ring position of the oldest member once full
    num_feedback: int


class _Structure(NamedTuple):
    unconditioned: Space  # the same slots without conditions: every slot gets a valid draw
    mutable: np.ndarray  # slots with more than one possible value
    descendants: tuple[np.ndarray, ...]  # per slot, the slots conditioned on it (transitively)
    group_slots: tuple[np.ndarray, ...]  # per group, its slots


@functools.lru_cache(maxsize=64)
def _structure(space: Space) -> _Structure:
    n = space.num_slots
    children: list[list[int]] = [[] for _ in range(n)]
    for i, slot in enumerate(space.slots):
        for p, _ in slot.conditions:
            children[p].append(i)
    descendants: list[np.ndarray] = []
    for i in range(n):
        seen: list[int] = []
        stack = list(children[i])
        while stack:
            j = stack.pop()
            if j not in seen:
                seen.append(j)
                stack.extend(children[j])
        descendants.append(np.asarray(sorted(seen), dtype=np.intp))
    mutable = (space.num_choices > 1) | (space.is_float & (space.hi > space.lo))
    groups = tuple(np.asarray(g.slots, dtype=np.intp) for g in space.groups)
    for g, group_slots in zip(space.groups, groups):
        if g.distinct and g.sorted and len(g.slots) == space.slots[g.slots[0]].num_choices:
            mutable[group_slots] = False  # all candidates picked, in order: nothing can move
    free = Space([s._replace(conditions=()) for s in space.slots], space.groups)
    return _Structure(free, mutable, tuple(descendants), groups)


def mutate_one(space: Space, dna: DNA, rng: np.random.Generator) -> DNA:
    """Re-samples one active decision and keeps the DNA valid.

    A choice or int slot moves to a different value; a float slot is re-drawn in its bounds.
    Decisions conditioned on the changed one are re-drawn (a new branch gets a random
    sub-architecture). In a distinct manyof the new pick avoids the other picks (or swaps with
    one when every candidate is taken); a sorted manyof is re-sorted.

    Example:
        >>> import numpy as np, pliant as pl
        >>> space = pl.space([pl.oneof([1, 2, 3]), pl.oneof([4, 5, 6])])
        >>> parent = pl.random_dna(space, 0)
        >>> child = mutate_one(space, parent, np.random.default_rng(0))
        >>> int((child.index != parent.index).sum())
        1
    """
    info = _structure(space)
    index = np.array(dna.index, dtype=np.int32)
    value = np.array(dna.value, dtype=np.float64)
    candidates = np.flatnonzero(np.asarray(dna.active) & info.mutable)
    if candidates.size == 0:
        return space.make_dna(index, value)
    s = int(candidates[int(rng.random() * candidates.size)])
    slot = space.slots[s]
    redraw = [info.descendants[s]]
    if slot.kind == "float":
        value[s] = _draw_float(slot.lo, slot.hi, slot.scale == "log", rng)
    else:
        group = space.groups[slot.group] if slot.group >= 0 else None
        current = int(index[s])
        if group is not None and group.distinct:
            others = [int(index[t]) for t in group.slots if t != s]
            free = np.setdiff1d(np.arange(slot.num_choices), [*others, current])
            if free.size:
                index[s] = free[rng.integers(free.size)]
            else:  # every candidate is picked: swap with another position
                t = int(group.slots[rng.integers(len(group.slots) - 1)])
                t = t if t != s else int(group.slots[-1])
                index[s], index[t] = index[t], index[s]
                redraw.append(info.descendants[t])
        else:
            new = int(rng.random() * (slot.num_choices - 1))  # uniform over the other values
            index[s] = new + (new >= current)
        if group is not None and group.sorted:
            g_slots = info.group_slots[slot.group]
            index[g_slots] = np.sort(index[g_slots])
            redraw.extend(info.descendants[int(t)] for t in g_slots)
    sub = np.concatenate(redraw) if len(redraw) > 1 else redraw[0]
    if sub.size:
        # Drawn without conditions, so that a decision the mutation switches on gets a valid
        # value (a conditioned draw would leave it at the inactive placeholder 0).
        fresh = random_dna(info.unconditioned, rng)
        index[sub] = fresh.index[sub]
        value[sub] = fresh.value[sub]
    return space.make_dna(index, value)


def _draw_float(lo: float, hi: float, log: bool, rng: np.random.Generator) -> float:
    if log:
        return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    return float(rng.uniform(lo, hi))


def regularized_evolution(
    population_size: int = 50,
    tournament_size: int = 10,
    mutation: Mutation = mutate_one,
) -> Algorithm:
    """Regularized (aging) evolution (Real et al., 2019).

    Args:
        population_size: how many of the latest evaluated DNAs form the population; until that
            many rewards arrived, proposals are uniformly random.
        tournament_size: how many members a tournament samples (without replacement).
        mutation: ``(space, parent_dna, rng) -> child_dna``; the default re-samples one decision.

    Returns:
        A host algorithm (single objective).

    Raises:
        ValueError: if the sizes are not positive or the tournament exceeds the population.

    Example:
        >>> import pliant as pl
        >>> space = pl.space([pl.oneof(range(8)) for _ in range(4)])
        >>> algo = pl.algorithms.regularized_evolution(population_size=10, tournament_size=3)
        >>> state, best = algo.init(space, 0), 0.0
        >>> for step, key in zip(range(300), pl.algorithms.keys(0)):
        ...     dna, state = algo.propose(state, key)
        ...     reward = float(dna.index.sum())
        ...     state, best = algo.feedback(state, dna, reward), max(best, reward)
        >>> best  # 4 decisions of 8 choices: the optimum is 28
        28.0
    """
    if type(population_size) is not int or population_size < 1:
        raise ValueError(f"population_size must be a positive int, got {population_size!r}")
    if type(tournament_size) is not int or not 1 <= tournament_size <= population_size:
        raise ValueError(
            f"tournament_size must be an int in [1, population_size={population_size}], "
            f"got {tournament_size!r}"
        )
    if not callable(mutation):
        raise TypeError(f"mutation must be a function (space, dna, rng) -> dna, got {mutation!r}")

    def init(space: Space, key: Key) -> RegularizedEvolutionState:
        p, s = population_size, space.num_slots
        return RegularizedEvolutionState(
            space,
            np.zeros((p, s), np.int32),
            np.zeros((p, s), np.float64),
            np.zeros((p, s), bool),
            np.full((p,), -np.inf),
            0,
            0,
            0,
        )

    def propose(
        state: RegularizedEvolutionState, key: Key
    ) -> tuple[DNA, RegularizedEvolutionState]:
        if state.size < population_size:
            return uniform_proposal(state.space, host_rng(key)), state
        rng = host_rng(key)
        members = np.argpartition(rng.random(population_size), tournament_size - 1)
        contenders = members[:tournament_size]
        parent = int(contenders[np.argmax(state.rewards[contenders])])
        dna = DNA(state.space, state.indices[parent], state.values[parent], state.actives[parent])
        return mutation(state.space, dna, rng), state

    def feedback(
        state: RegularizedEvolutionState, dna: DNA, reward: Reward
    ) -> RegularizedEvolutionState:
        r = check_reward(reward, multi_objective=False, algorithm="regularized_evolution")
        if dna.space is not state.space and dna.space != state.space:
            raise ValueError(
                "regularized_evolution: feedback for a DNA of another space "
                f"({dna.space.fingerprint} vs {state.space.fingerprint})"
            )
        if np.ndim(dna.index) != 1:
            raise ValueError(
                f"regularized_evolution: feedback takes one DNA, got a batch of shape "
                f"{np.shape(dna.index)}; feed each one"
            )
        if state.size < population_size:
            pos, size, oldest = state.size, state.size + 1, state.oldest
        else:
            pos, size, oldest = state.oldest, state.size, (state.oldest + 1) % population_size
        index, value, active = state.indices.copy(), state.values.copy(), state.actives.copy()
        rewards = state.rewards.copy()
        index[pos], value[pos], active[pos], rewards[pos] = dna.index, dna.value, dna.active, r
        return RegularizedEvolutionState(
            state.space, index, value, active, rewards, size, oldest, state.num_feedback + 1
        )

    return Algorithm(init, propose, feedback, name="regularized_evolution")
