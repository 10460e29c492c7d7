"""Flows: the search loop, the trial store, and results.

See ``pliant/flows/README.md`` for the guarantees (what a store records, how resume works).
"""

from pliant.flows.result import Result, load_result
from pliant.flows.sample import Feedback, sample
from pliant.flows.search import search
from pliant.flows.store import Store, StoreError, TrialRecord, open_store
from pliant.flows.study import Objective, StudyEngine, Trial

__all__ = [
    "Feedback",
    "Objective",
    "Result",
    "Store",
    "StoreError",
    "StudyEngine",
    "Trial",
    "TrialRecord",
    "load_result",
    "open_store",
    "sample",
    "search",
]
