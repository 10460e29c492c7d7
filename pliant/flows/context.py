"""The trial handle that ``pl.search`` gives an evaluate function, and nested searches.

An evaluate function receives the handle as its second argument when it takes one
(``def evaluate(example, trial)``: a second positional parameter without a default, or one
named ``trial``); ``evaluate(example)`` and ``evaluate(example, epochs=10)`` keep being called
with the example only, and reach the handle with :func:`current_trial`. Through the handle a
trial reports intermediate values (and is stopped early by the search's policy), skips itself,
ends the whole search, or runs an inner search in the same store under a study named after it::

    def evaluate(hw, trial):
        inner = trial.search(arch_space(hw), train_and_score, budget=20)
        return inner.best.reward

The inner study is ``"<outer study>/<trial id>"`` (``"outer/17"``), in the outer store, with a
seed derived from the outer seed and the trial id; the outer trial's record links to it
(``TrialRecord.link``, the ``link`` column of the DataFrame, ``Result.inner(trial)``). Re-running
the script resumes both levels: the interrupted outer trial is re-run with the same DNA, its
inner search finds its study and continues it.
"""

from __future__ import annotations

import contextvars
import inspect
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

from pliant.flows.stopping import Stopper, StoppingPolicy
from pliant.flows.study import StudyEngine, Trial

if TYPE_CHECKING:
    from pliant.algorithms.base import Algorithm
    from pliant.flows.result import Result


class TrialStopped(Exception):
    """Raised by ``trial.report`` when the early-stopping policy stops the trial.

    Let it propagate out of evaluate (the trial is recorded as ``'stopped'``); catch it only to
    clean up, then re-raise.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class StopSearch(Exception):
    """Raise it in evaluate to end the search: no new trial is proposed in any worker.

    The raising trial is recorded as infeasible (never fed to the algorithm); trials running in
    other workers finish, or are stopped at their next report. Running the same search again
    continues it up to its budget.
    """


class _Skip(Exception):
    def __init__(self, reason: str | None):
        super().__init__(reason)
        self.reason = reason


_CURRENT: contextvars.ContextVar[TrialContext | None] = contextvars.ContextVar(
    "pliant_trial", default=None
)


def current_trial() -> TrialContext:
    """The handle of the trial that the calling evaluate function runs.

    Raises:
        RuntimeError: outside an evaluate function called by ``pl.search``.

    Example:
        >>> import pliant as pl
        >>> def evaluate(v):
        ...     return float(pl.flows.current_trial().id)
        >>> [r.reward for r in pl.search({"x": pl.oneof([1, 2])}, evaluate,
        ...                              pl.algorithms.random(), budget=2).records]
        [0.0, 1.0]
    """
    ctx = _CURRENT.get()
    if ctx is None:
        raise RuntimeError(
            "current_trial() is only available inside an evaluate function run by pl.search; "
            "in a pl.sample loop, use the feedback object"
        )
    return ctx


def inner_seed(seed: int, trial_id: int) -> int:
    """The seed of the inner search run by an outer trial (stable across resumes).

    Example:
        >>> inner_seed(0, 3) == inner_seed(0, 3) != inner_seed(0, 4)
        True
    """
    return (int(seed) * 1_000_003 + int(trial_id) + 1) % (1 << 31)


def nested_search(
    engine: StudyEngine,
    trial_id: int,
    space_value: Any,
    evaluate: Callable[..., Any],
    algorithm: Algorithm | None,
    budget: int,
    name: str | None,
    seed: int | None,
    kwargs: dict[str, Any],
) -> Result:
    """Runs ``pl.search`` as the inner study of an outer trial (see the module docstring)."""
    from pliant.flows.search import search

    for key in ("store", "study"):
        if key in kwargs:
            raise TypeError(
                f"trial.search() sets {key}= itself (the outer store, study "
                f"{inner_study_name(engine, trial_id, name)!r}); pass name= to run several inner "
                f"searches per trial"
            )
    study = inner_study_name(engine, trial_id, name)
    engine.set_link(trial_id, inner_study_name(engine, trial_id, None))
    return search(
        space_value,
        evaluate,
        algorithm,
        budget,
        store=engine.store,
        study=study,
        seed=inner_seed(engine.seed, trial_id) if seed is None else seed,
        **kwargs,
    )


def inner_study_name(engine: StudyEngine, trial_id: int, name: str | None = None) -> str:
    """``"<study>/<trial id>"``, or ``"<study>/<trial id>/<name>"``."""
    if name is not None and (not isinstance(name, str) or not name or "/" in name):
        raise ValueError(f"inner search name must be a non-empty str without '/', got {name!r}")
    base = f"{engine.study}/{trial_id}"
    return base if name is None else f"{base}/{name}"


class TrialContext:
    """The handle of one running trial of ``pl.search`` (see the module docstring)."""

    def __init__(self, control: SearchControl, trial: Trial):
        self._control, self._trial = control, trial

    @property
    def id(self) -> int:
        """The trial id."""
        return self._trial.id

    @property
    def attempt(self) -> int:
        """1, or more when an interrupted trial is re-run."""
        return self._trial.attempt

    @property
    def study(self) -> str:
        """The study's name."""
        return self._control.engine.study

    @property
    def dna(self) -> Any:
        """The trial's DNA."""
        return self._trial.dna

    @property
    def decisions(self) -> dict[str, Any]:
        """The trial's decisions, by name or path."""
        return self._trial.decisions

    @property
    def store(self) -> Any:
        """The study's store (None in memory)."""
        return self._control.engine.store

    def report(self, step: int, value: Any) -> None:
        """Reports an intermediate value; raises :class:`TrialStopped` if the policy stops it.

        Raises:
            TrialStopped: the search's ``stopping`` policy stopped the trial (or the search was
                ended): let it propagate.
            ValueError: for a step not above the last one, or a value that is not finite.
        """
        reason = self._control.stopper.report(self.id, step, value)
        if reason is None and self._control.ended.is_set():
            reason = "the search was ended"
        if reason is not None:
            raise TrialStopped(reason)

    def skip(self, reason: str | None = None) -> NoReturn:
        """Ends the trial as infeasible: recorded, never fed to the algorithm."""
        raise _Skip(reason)

    def end_search(self) -> None:
        """Ends the search after the running trials: no new trial is proposed, in any worker."""
        self._control.ended.set()

    def search(
        self,
        space_value: Any,
        evaluate: Callable[..., Any],
        algorithm: Algorithm | None = None,
        budget: int = 100,
        *,
        name: str | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> Result:
        """Runs an inner ``pl.search`` in this search's store, as study ``"<study>/<id>"``.

        Args:
            space_value, evaluate, algorithm, budget: as for ``pl.search``.
            name: a further name, for several inner searches per trial (``"<study>/<id>/<name>"``).
            seed: default: derived from the outer seed and this trial's id.
            **kwargs: other ``pl.search`` arguments (not ``store`` or ``study``).
        """
        engine = self._control.engine
        return nested_search(
            engine, self.id, space_value, evaluate, algorithm, budget, name, seed, kwargs
        )

    def __repr__(self) -> str:
        return f"TrialContext(study={self.study!r}, id={self.id})"


class Outcome(NamedTuple):
    """What a bound evaluate returns instead of a value when a trial ends otherwise."""

    kind: str  # 'stopped' or 'skipped'
    reason: str | None
    feed: bool


def _takes_trial(evaluate: Callable[..., Any]) -> bool:
    try:
        params = list(inspect.signature(evaluate).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [
        p
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    # A second parameter with a default (``evaluate(example, epochs=10)``) is the user's own,
    # unless it is called ``trial``: such functions keep being called with the example only.
    if len(positional) < 2:
        return False
    second = positional[1]
    return second.default is inspect.Parameter.empty or second.name == "trial"


class SearchControl:
    """Per-search state shared by workers: the stop flag and the reports (used by pl.search)."""

    def __init__(self, engine: StudyEngine, stopping: StoppingPolicy | None):
        self.engine = engine
        self.stopper = Stopper(engine, stopping)
        self.ended = threading.Event()
        self.metric = engine.objectives[0].metric

    def bind(self, evaluate: Callable[..., Any]) -> Callable[[Trial], Any]:
        """``trial -> value or Outcome``: calls evaluate with the handle where it takes one."""
        two = _takes_trial(evaluate)

        def run(trial: Trial) -> Any:
            ctx = TrialContext(self, trial)
            token = _CURRENT.set(ctx)
            try:
                value = evaluate(trial.example, ctx) if two else evaluate(trial.example)
            except TrialStopped as e:
                return Outcome("stopped", e.reason, e.reason != "the search was ended")
            except _Skip as e:
                return Outcome("skipped", e.reason, False)
            except StopSearch as e:
                self.ended.set()
                return Outcome("skipped", f"StopSearch: {e}" if str(e) else "StopSearch", False)
            finally:
                _CURRENT.reset(token)
            return self._with_reports(trial.id, value)

        return run

    def _with_reports(self, trial_id: int, value: Any) -> Any:
        reports = self.stopper.reports_of(trial_id)
        if not reports:
            return value
        if isinstance(value, Mapping):
            return {"reports": reports, **value}
        if isinstance(value, bool) or value is None:
            return value
        try:
            number = float(value)
        except (TypeError, ValueError):
            return value
        return {self.metric: number, "reports": reports}

    def record(self, trial: Trial, outcome: Outcome, elapsed: float) -> str:
        """Records a stopped or skipped trial; returns its status."""
        reports = self.stopper.reports_of(trial.id)
        metrics: dict[str, Any] = {"elapsed_s": elapsed}
        if reports:
            metrics["reports"] = reports
        if outcome.kind == "skipped":
            self.engine.skip(trial, outcome.reason, metrics)
            return "infeasible"
        last = reports[-1][1] if reports and outcome.feed else None
        return self.engine.stop(trial, last, metrics, outcome.reason)
