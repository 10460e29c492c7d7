"""Search algorithms behind one interface; they see only the DNA layer (Space and DNA).

See ``pliant/algorithms/README.md`` for the interface and its invariants.
"""

from pliant.algorithms.adapters import AdapterState, from_optuna, from_pyglove
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
from pliant.algorithms.combinators import (
    DedupState,
    PartitionState,
    SequenceState,
    dedup,
    partition,
    sequence,
)
from pliant.algorithms.evolution import (
    RegularizedEvolutionState,
    mutate_one,
    regularized_evolution,
)
from pliant.algorithms.exports import OptunaCodec, optuna_codec, to_optuna, to_pyglove
from pliant.algorithms.grid_search import GridExhausted, GridState, grid
from pliant.algorithms.nsga import (
    NSGA2State,
    crowding_distance,
    non_dominated_sort,
    nsga2,
    pareto_front,
    uniform_crossover,
)
from pliant.algorithms.predictor import (
    NeuralPredictorState,
    fit_predict,
    kendall_tau,
    mutate_batch,
    neural_predictor,
)
from pliant.algorithms.random_search import RandomState, random
from pliant.algorithms.reinforce import (
    ReinforceParams,
    ReinforceState,
    log_prob,
    most_likely,
    probabilities,
    reinforce,
)
from pliant.algorithms.rejection import RejectionState, most_likely_feasible, rejection_sampling
from pliant.algorithms.sharing import (
    extreme_dna,
    fair_paths,
    sandwich_paths,
    slot_roles,
    uniform_path,
    warmup_path,
)
from pliant.algorithms.tunas import (
    TunasPreset,
    controller_schedule,
    cost_table,
    final_architecture,
    shaped_reward,
    tunas,
    tunas_preset,
    warmup_probability,
)

__all__ = [
    "AdapterState",
    "Algorithm",
    "DedupState",
    "GridExhausted",
    "GridState",
    "NSGA2State",
    "NeuralPredictorState",
    "OptunaCodec",
    "PartitionState",
    "RandomState",
    "RegularizedEvolutionState",
    "ReinforceParams",
    "ReinforceState",
    "RejectionState",
    "SequenceState",
    "TunasPreset",
    "check_reward",
    "controller_schedule",
    "cost_table",
    "crowding_distance",
    "dedup",
    "extreme_dna",
    "fair_paths",
    "final_architecture",
    "fit_predict",
    "from_optuna",
    "from_pyglove",
    "grid",
    "host_rng",
    "kendall_tau",
    "key_to_int",
    "keys",
    "log_prob",
    "most_likely",
    "most_likely_feasible",
    "mutate_batch",
    "mutate_one",
    "neural_predictor",
    "non_dominated_sort",
    "nsga2",
    "optuna_codec",
    "pareto_front",
    "partition",
    "probabilities",
    "propose_many",
    "random",
    "regularized_evolution",
    "reinforce",
    "rejection_sampling",
    "sandwich_paths",
    "sequence",
    "shaped_reward",
    "slot_roles",
    "state_from_json",
    "state_to_json",
    "step_key",
    "to_optuna",
    "to_pyglove",
    "tunas",
    "tunas_preset",
    "uniform_crossover",
    "uniform_path",
    "warmup_path",
    "warmup_probability",
]
