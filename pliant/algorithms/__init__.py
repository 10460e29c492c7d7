"""Search algorithms behind one interface; they see only the DNA layer (Space and DNA).

See ``pliant/algorithms/README.md`` for the interface and its invariants.
"""

from pliant.algorithms.base import (
    Algorithm,
    check_reward,
    host_rng,
    key_to_int,
    keys,
    propose_many,
    state_from_json,
    state_to_json,
    step_key,
)
from pliant.algorithms.evolution import (
    RegularizedEvolutionState,
    mutate_one,
    regularized_evolution,
)
from pliant.algorithms.random_search import RandomState, random

__all__ = [
    "Algorithm",
    "RandomState",
    "RegularizedEvolutionState",
    "check_reward",
    "host_rng",
    "key_to_int",
    "keys",
    "mutate_one",
    "propose_many",
    "random",
    "regularized_evolution",
    "state_from_json",
    "state_to_json",
    "step_key",
]
