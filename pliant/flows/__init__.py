"""Flows: the search loop, the trial store, and results.

See ``pliant/flows/README.md`` for the guarantees (what a store records, how resume works).
"""

from pliant.flows.backends import Backend, ProcessBackend, RayBackend, ThreadBackend
from pliant.flows.context import StopSearch, TrialContext, TrialStopped, current_trial
from pliant.flows.partial import Partial, by_name, by_path, partial, tagged
from pliant.flows.result import Result, load_result
from pliant.flows.sample import Feedback, sample
from pliant.flows.search import search
from pliant.flows.staging import narrow
from pliant.flows.stopping import (
    StoppingPolicy,
    all_of,
    any_of,
    median_stopping,
    stop_below,
    stop_by_rank,
    successive_halving,
)
from pliant.flows.store import Store, StoreError, TrialRecord, open_store
from pliant.flows.study import Objective, StudyEngine, Trial

__all__ = [
    "Backend",
    "Feedback",
    "Objective",
    "Partial",
    "ProcessBackend",
    "RayBackend",
    "Result",
    "StopSearch",
    "StoppingPolicy",
    "Store",
    "StoreError",
    "StudyEngine",
    "ThreadBackend",
    "Trial",
    "TrialContext",
    "TrialRecord",
    "TrialStopped",
    "all_of",
    "any_of",
    "by_name",
    "by_path",
    "current_trial",
    "load_result",
    "median_stopping",
    "narrow",
    "open_store",
    "partial",
    "sample",
    "search",
    "stop_below",
    "stop_by_rank",
    "successive_halving",
    "tagged",
]
