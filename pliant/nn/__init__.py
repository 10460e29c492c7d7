"""Flax integration: cost of JAX models (latency, XLA cost, per-op tables) and weight sharing.

``import pliant`` does not import this package (it imports JAX and Flax); ``pl.nn`` loads it on
first use.
"""

from pliant.nn.cost import (
    Latency,
    Target,
    XlaCost,
    measure_latency,
    measure_op_latency,
    measure_targets,
    normalized_cost,
    param_count,
    target_constraints,
    xla_cost,
)
from pliant.nn.latency_table import (
    LatencyTable,
    PredictionQuality,
    Term,
    fit_table,
    measure_table,
    predict,
    prediction_quality,
    terms_by_prefix,
)
from pliant.nn.supernet import Supernet, extract, supernet
from pliant.nn.tunas import SearchResult, supernet_accuracy, weight_sharing_search

__all__: list[str] = [
    "Latency",
    "LatencyTable",
    "PredictionQuality",
    "SearchResult",
    "Supernet",
    "Target",
    "Term",
    "XlaCost",
    "extract",
    "fit_table",
    "measure_latency",
    "measure_op_latency",
    "measure_table",
    "measure_targets",
    "normalized_cost",
    "param_count",
    "predict",
    "prediction_quality",
    "supernet",
    "supernet_accuracy",
    "target_constraints",
    "terms_by_prefix",
    "weight_sharing_search",
    "xla_cost",
]
