"""The engine under ``pl.sample`` and ``pl.search``: one study, its algorithm, its trials.

A study proposes with the key ``step_key(seed, n)`` for its n-th proposal, so a run is a pure
function of the seed and the rewards. With a store, each proposal is committed together with the
algorithm state that produced it, and each outcome together with the state after its feedback;
re-opening the same study reloads that state and its trials, re-runs (with the same DNA) the
trials that were in flight when the process died, and continues where it stopped.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from pliant.algorithms.base import Algorithm, state_from_json, state_to_json, step_key
from pliant.flows.partial import Partial
from pliant.flows.store import FINISHED, Store, StoreError, TrialRecord, open_store
from pliant.spaces.compiler import compile_space, materialize
from pliant.spaces.dna import DNA, Space
from pliant.spaces.tracing import Traced

Metrics = dict[str, Any]


class Objective(NamedTuple):
    """A metric to optimize and its direction (``'max'`` or ``'min'``)."""

    metric: str
    direction: str


def parse_objectives(objectives: Any) -> tuple[Objective, ...]:
    """Normalizes ``objectives``: None (maximize ``reward``), a name, a list, or a dict.

    Raises:
        ValueError: for an empty spec or a direction other than 'max'/'min'.

    Example:
        >>> [tuple(o) for o in parse_objectives({"accuracy": "max", "latency": "min"})]
        [('accuracy', 'max'), ('latency', 'min')]
    """
    if objectives is None:
        return (Objective("reward", "max"),)
    if isinstance(objectives, str):
        return (Objective(objectives, "max"),)
    if isinstance(objectives, Mapping):
        items = list(objectives.items())
    else:
        items = [(o, "max") for o in objectives]
    if not items:
        raise ValueError("objectives must name at least one metric")
    out = []
    for metric, direction in items:
        if direction not in ("max", "min"):
            raise ValueError(
                f"objective {metric!r}: direction must be 'max' or 'min', got {direction!r}"
            )
        out.append(Objective(str(metric), direction))
    return tuple(out)


Constraint = Callable[[Metrics], bool]


def parse_constraints(constraints: Any) -> tuple[tuple[str, Constraint], ...]:
    """Normalizes constraints: ``{'params': ('<=', 1e5)}``, callables on metrics, or both.

    Raises:
        ValueError: for an unknown comparison or a malformed spec.

    Example:
        >>> [name for name, _ in parse_constraints({"params": ("<=", 10)})]
        ['params <= 10']
    """
    if not constraints:
        return ()
    ops = {
        "<=": lambda a, b: a <= b,
        "<": lambda a, b: a < b,
        ">=": lambda a, b: a >= b,
        ">": lambda a, b: a > b,
        "==": lambda a, b: a == b,
    }
    out: list[tuple[str, Constraint]] = []
    items: Sequence[Any]
    if isinstance(constraints, Mapping):
        items = list(constraints.items())
    elif callable(constraints):
        items = [constraints]
    else:
        items = list(constraints)
    for item in items:
        if callable(item):
            out.append((getattr(item, "__name__", "constraint"), item))
            continue
        metric, spec = item
        if not (isinstance(spec, tuple) and len(spec) == 2 and spec[0] in ops):
            raise ValueError(
                f"constraint on {metric!r}: expected (op, bound) with op in {sorted(ops)}, "
                f"e.g. ('<=', 1e5), got {spec!r}"
            )
        op, bound = spec
        compare = ops[op]
        out.append((f"{metric} {op} {bound}", _threshold(metric, compare, bound)))
    return tuple(out)


def _threshold(metric: str, compare: Callable[[Any, Any], bool], bound: Any) -> Constraint:
    def check(metrics: Metrics) -> bool:
        return metric in metrics and compare(metrics[metric], bound)

    return check


class Trial(NamedTuple):
    """A trial being evaluated: its id, DNA, readable decisions and the concrete example."""

    id: int
    dna: DNA
    example: Any
    attempt: int

    @property
    def decisions(self) -> dict[str, Any]:
        """The trial's decisions, by decision name or path."""
        return self.dna.to_dict()


class StudyEngine:
    """Drives one study: proposals, outcomes, persistence and resume (used by the flows).

    Example:
        >>> import pliant as pl
        >>> from pliant.flows.study import StudyEngine
        >>> engine = StudyEngine({"w": pl.oneof([1, 2, 3])}, pl.algorithms.random(), seed=0)
        >>> trial = engine.propose()
        >>> engine.complete(trial, {"reward": 1.0})
        'complete'
        >>> [t.status for t in engine.records()]
        ['complete']
    """

    def __init__(
        self,
        space_value: Any,
        algorithm: Algorithm,
        *,
        seed: int = 0,
        store: str | os.PathLike[str] | Store | None = None,
        study: str = "default",
        objectives: Any = None,
        constraints: Any = None,
        link: str | None = None,
    ):
        if not isinstance(algorithm, Algorithm):
            raise TypeError(
                f"algorithm must be a pl.algorithms.Algorithm (e.g. "
                f"pl.algorithms.regularized_evolution()), got {algorithm!r}"
            )
        self.space_value = space_value
        self.space: Space = (
            space_value.space
            if isinstance(space_value, Traced | Partial)
            else (compile_space(space_value).space)
        )
        self.algorithm = algorithm
        self.seed = int(seed)
        self.study = study
        self.objectives = parse_objectives(objectives)
        self.constraints = parse_constraints(constraints)
        if len(self.objectives) > 1 and not algorithm.multi_objective:
            names = [o.metric for o in self.objectives]
            raise ValueError(
                f"{len(names)} objectives {names} need a multi-objective algorithm such as "
                f"pl.algorithms.nsga2(); {algorithm.name} optimizes one objective"
            )
        self.lock = threading.RLock()
        self.store: Store | None = (
            open_store(store) if isinstance(store, str | os.PathLike) else store
        )
        self._records: dict[int, TrialRecord] = {}
        self.state = algorithm.init(self.space, step_key(self.seed, 1 << 62))
        self.num_proposed = 0
        self.interrupted: list[int] = []
        self._dnas: dict[int, DNA] = {}
        self._unread: dict[int, DNA] = {}  # in memory: DNA not yet decoded into its record
        self._num_finished = 0
        self.link = link
        if self.store is not None:
            self._open_study()

    # -- persistence -----------------------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        return {
            "algorithm": self.algorithm.name,
            "seed": self.seed,
            "objectives": [list(o) for o in self.objectives],
        }

    def _open_study(self) -> None:
        assert self.store is not None
        info = self.store.study_info(self.study)
        self.store.create_study(self.study, self.space, self._config())
        if info is None:
            return
        config = info["config"]
        mine = self._config()
        for field in ("algorithm", "seed", "objectives"):
            if config.get(field) != mine[field]:
                raise StoreError(
                    f"study {self.study!r} in {self.store.path!r} was run with {field}="
                    f"{config.get(field)!r}, now {mine[field]!r}; resume it with the same "
                    f"settings, or use another study name"
                )
        if info["state"] is not None:
            try:
                self.state = state_from_json(info["state"], self.state)
            except ValueError as e:
                raise StoreError(
                    f"study {self.study!r}: cannot restore its algorithm state: {e}"
                ) from None
        self.num_proposed = info["num_proposed"]
        self.interrupted = self.store.mark_interrupted(self.study)
        for record in self.store.trials(self.study):
            self._records[record.id] = record
            self._num_finished += record.status in FINISHED

    def _state_json(self) -> str | None:
        return None if self.store is None else state_to_json(self.state)

    # -- trials ----------------------------------------------------------------------------
    def example_of(self, dna: DNA) -> Any:
        if isinstance(self.space_value, Partial):
            return self.space_value.materialize(dna)
        return materialize(self.space_value, dna, check=False)

    def propose(self) -> Trial:
        """Proposes the next trial (and records it as running)."""
        with self.lock:
            trial_id = self.num_proposed
            key = step_key(self.seed, trial_id)
            dna, self.state = self.algorithm.propose(self.state, key)
            self.num_proposed += 1
            if self.store is None:
                # Decoding the DNA costs as much as proposing it: in memory, it waits for a read.
                record = _running_record(self.study, trial_id, None, None, key)
                self._unread[trial_id] = dna
            else:
                record = _running_record(self.study, trial_id, dna.to_list(), dna.to_dict(), key)
                self.store.add_trial(
                    self.study,
                    trial_id,
                    dna,
                    key=key,
                    state=self._state_json(),
                    link=self.link,
                    decoded=(record.dna, record.decisions),
                )
            self._dnas[trial_id] = dna
            self._records[trial_id] = record
        return Trial(trial_id, dna, self.example_of(dna), 1)

    def rerun(self, trial_id: int) -> Trial:
        """Re-opens an interrupted trial with the same DNA."""
        with self.lock:
            record = self.record(trial_id)
            dna = self.space.from_list(record.dna)
            if self.store is not None:
                self.store.restart_trial(self.study, trial_id)
            self._dnas[trial_id] = dna
            self._records[trial_id] = record._replace(
                status="running", attempts=record.attempts + 1
            )
        return Trial(trial_id, dna, self.example_of(dna), record.attempts + 1)

    def retry(self, trial: Trial, error: str, metrics: Metrics | None = None) -> Trial:
        """Records a failed attempt (e.g. its worker died) and re-opens the trial, same DNA.

        The failure is committed first: a driver that dies right after leaves the trial failed
        with its reason, never lost. The trial keeps its id; its ``attempts`` grows by one.
        """
        with self.lock:
            self.fail(trial, error, metrics)
            self._num_finished -= 1  # running again
            return self.rerun(trial.id)

    def reward_of(self, metrics: Metrics) -> Any:
        """The algorithm's reward for a trial's metrics (maximized; 'min' objectives negated).

        Raises:
            KeyError: if an objective's metric is missing.
            ValueError: if it is not a finite number.
        """
        values = []
        for objective in self.objectives:
            if objective.metric not in metrics:
                raise KeyError(
                    f"the evaluation returned metrics {sorted(metrics)} but the objective needs "
                    f"{objective.metric!r}"
                )
            v = metrics[objective.metric]
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise ValueError(f"metric {objective.metric!r} is not a number: {v!r}") from None
            if not math.isfinite(v):
                raise ValueError(f"metric {objective.metric!r} is {v!r}")
            values.append(v if objective.direction == "max" else -v)
        return values[0] if len(values) == 1 else tuple(values)

    def violated(self, metrics: Metrics) -> list[str]:
        """Names of the constraints the metrics violate."""
        out = []
        for name, check in self.constraints:
            try:
                ok = bool(check(metrics))
            except Exception as e:  # a constraint that cannot be evaluated is violated
                ok = False
                name = f"{name} ({type(e).__name__}: {e})"
            if not ok:
                out.append(name)
        return out

    def complete(self, trial: Trial | int, metrics: Metrics) -> str:
        """Records an outcome: complete (fed back), infeasible or failed. Returns the status."""
        trial_id = trial if isinstance(trial, int) else trial.id
        with self.lock:
            dna = self._dnas.get(trial_id)
            if dna is None or self._records[trial_id].status != "running":
                raise ValueError(f"trial {trial_id} is not waiting for an outcome")
            try:
                reward = self.reward_of(metrics)
            except (KeyError, ValueError) as e:
                self.fail(trial_id, f"{type(e).__name__}: {e}", metrics)
                return "failed"
            broken = self.violated(metrics)
            if broken:
                self._finish(trial_id, "infeasible", None, metrics, "violates " + ", ".join(broken))
                return "infeasible"
            self.state = self.algorithm.feedback(self.state, dna, reward)
            self._finish(trial_id, "complete", reward, metrics, None)
            return "complete"

    def stop(
        self, trial: Trial | int, value: Any, metrics: Metrics, reason: str | None = None
    ) -> str:
        """Records a trial stopped early. ``value`` (its last report, in the first objective's
        units; None: nothing) is fed to the algorithm as its reward when there is one objective.
        Returns ``'stopped'``."""
        trial_id = trial if isinstance(trial, int) else trial.id
        with self.lock:
            dna = self._dnas.get(trial_id)
            if dna is None or self._records[trial_id].status != "running":
                raise ValueError(f"trial {trial_id} is not waiting for an outcome")
            reward = None
            if value is not None and len(self.objectives) == 1:
                reward = float(value) if self.objectives[0].direction == "max" else -float(value)
                self.state = self.algorithm.feedback(self.state, dna, reward)
            self._finish(trial_id, "stopped", reward, metrics, reason)
            return "stopped"

    def set_link(self, trial_id: int, link: str | None) -> None:
        """Links a trial to another study (its inner search), in the store and the record."""
        with self.lock:
            record = self.record(trial_id)
            if record.link == link:
                return
            if self.store is not None:
                self.store.set_link(self.study, trial_id, link)
            self._records[trial_id] = record._replace(link=link)

    def fail(self, trial: Trial | int, error: str, metrics: Metrics | None = None) -> None:
        """Records a failed trial (not fed back to the algorithm)."""
        trial_id = trial if isinstance(trial, int) else trial.id
        with self.lock:
            self._finish(trial_id, "failed", None, metrics or {}, error)

    def skip(
        self, trial: Trial | int, reason: str | None = None, metrics: Metrics | None = None
    ) -> None:
        """Records an infeasible trial (not fed back to the algorithm)."""
        trial_id = trial if isinstance(trial, int) else trial.id
        with self.lock:
            self._finish(trial_id, "infeasible", None, metrics or {}, reason)

    def _finish(
        self, trial_id: int, status: str, reward: Any, metrics: Metrics, error: str | None
    ) -> None:
        if self.store is not None:
            state = self._state_json() if reward is not None else None
            self.store.finish_trial(
                self.study,
                trial_id,
                status,
                reward=reward,
                metrics=metrics,
                error=error,
                state=state,
            )
        record = self._records[trial_id]
        if record.status not in FINISHED:
            self._num_finished += 1
        self._records[trial_id] = record._replace(
            status=status,
            reward=reward,
            metrics=dict(metrics),
            error=error,
            finished_at=time.time(),
        )
        self._dnas.pop(trial_id, None)

    # -- views -----------------------------------------------------------------------------
    def records(self) -> list[TrialRecord]:
        """The study's trials so far, by id."""
        with self.lock:
            return [self.record(i) for i in sorted(self._records)]

    def record(self, trial_id: int) -> TrialRecord:
        """One trial's record."""
        with self.lock:
            record = self._records[trial_id]
            dna = self._unread.pop(trial_id, None)
            if dna is not None:
                record = record._replace(dna=dna.to_list(), decisions=dna.to_dict())
                self._records[trial_id] = record
            return record

    def num_finished(self) -> int:
        """How many trials are complete, failed or infeasible."""
        with self.lock:
            return self._num_finished


def _running_record(
    study: str, trial_id: int, dna_list: Any, decisions: Any, key: int
) -> TrialRecord:
    return TrialRecord(
        study,
        trial_id,
        dna_list,
        decisions,
        "running",
        None,
        {},
        None,
        key,
        time.time(),
        None,
        1,
        None,
    )
