"""Random search: every proposal is a uniformly random DNA (per slot, within the constraints)."""

from __future__ import annotations

import sys
from typing import Any, NamedTuple

from pliant.algorithms.base import Algorithm, Key, Reward, check_reward, uniform_proposal
from pliant.spaces.dna import DNA, Space


class RandomState(NamedTuple):
    """State of :func:`random`: just the space (random search keeps no history)."""

    space: Space


def random() -> Algorithm:
    """Uniform random search; traceable with a JAX key, NumPy-fast with an int key.

    Example:
        >>> import pliant as pl
        >>> space = pl.space({"w": pl.oneof([16, 32, 64])})
        >>> algo = pl.algorithms.random()
        >>> dna, _ = algo.propose(algo.init(space, 0), 42)
        >>> dna == algo.propose(algo.init(space, 0), 42)[0]
        True
    """

    def init(space: Space, key: Key) -> RandomState:
        return RandomState(space)

    def propose(state: RandomState, key: Key) -> tuple[DNA, RandomState]:
        return uniform_proposal(state.space, key), state

    def feedback(state: RandomState, dna: DNA, reward: Reward) -> RandomState:
        if not _traced(reward):  # a traced reward has no value to check (under jax.jit)
            check_reward(reward, multi_objective=True, algorithm="random")
        return state

    return Algorithm(init, propose, feedback, name="random", traceable=True, multi_objective=True)


def _traced(reward: Any) -> bool:
    jax = sys.modules.get("jax")
    if jax is None:
        return False
    leaves = reward if isinstance(reward, tuple | list) else (reward,)
    return any(isinstance(x, jax.core.Tracer) for x in leaves)
