"""``pl.sample``: the loop users know from PyGlove, yielding ``(example, feedback)`` pairs."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

from pliant.algorithms.base import Algorithm
from pliant.flows.partial import partial_of
from pliant.flows.stopping import Stopper
from pliant.flows.store import Store
from pliant.flows.study import StudyEngine, Trial


class Feedback:
    """Reports the outcome of one trial of :func:`sample`.

    Call it with a reward (``feedback(0.93)``) or metrics (``feedback(metrics={"accuracy": 0.93,
    "latency": 3.1})``); or ``feedback.skip()`` to mark the trial infeasible (the algorithm never
    sees it), or ``feedback.fail(error)`` to record a failure. Exactly one of these, once.
    ``feedback.end_loop()`` stops the loop after this trial.

    For multi-fidelity evaluation, ``feedback.report(step, value)`` records an intermediate
    value and returns True when the loop's ``stopping`` policy stopped the trial (it is then
    recorded as ``'stopped'``: leave its evaluation, give no further feedback).
    ``feedback.search(...)`` runs a nested ``pl.search`` in the same store as study
    ``"<study>/<id>"``, linked from this trial.
    """

    def __init__(self, engine: StudyEngine, trial: Trial, loop: _Loop):
        self._engine, self._trial, self._loop = engine, trial, loop
        self.status: str | None = None

    @property
    def id(self) -> int:
        """The trial id (its position in the study)."""
        return self._trial.id

    @property
    def dna(self) -> Any:
        """The trial's DNA."""
        return self._trial.dna

    @property
    def decisions(self) -> dict[str, Any]:
        """The trial's decisions, by name or path."""
        return self._trial.decisions

    def _once(self) -> None:
        if self.status is not None:
            raise RuntimeError(
                f"trial {self.id} already has its outcome ({self.status}); feedback is given once"
            )

    def __call__(self, reward: Any = None, *, metrics: Mapping[str, Any] | None = None) -> str:
        """Records the outcome; returns the status (complete, infeasible or failed).

        A NaN or infinite reward, or metrics without the objective, record a failed trial. With
        several objectives, ``reward`` is a tuple with one value per objective, in order.

        Raises:
            RuntimeError: if this trial already has an outcome.
            TypeError: if both or neither of reward and metrics are given.
            ValueError: for a tuple reward whose length is not the number of objectives.
        """
        self._once()
        if (reward is None) == (metrics is None):
            raise TypeError("feedback() takes a reward or metrics=..., exactly one of them")
        if metrics is None:
            names = [o.metric for o in self._engine.objectives]
            if isinstance(reward, tuple | list):
                if len(reward) != len(names):
                    raise ValueError(
                        f"feedback() got {len(reward)} reward values {tuple(reward)!r} for "
                        f"{len(names)} objective(s) {names}; give one value per objective, and "
                        f"name them with pl.sample(..., objectives=[...])"
                    )
                metrics = dict(zip(names, reward))
            else:
                metrics = {names[0]: reward}
        metrics = dict(metrics)
        reports = self._loop.stopper.reports_of(self.id)
        if reports:
            metrics.setdefault("reports", reports)
        self.status = self._engine.complete(self._trial, metrics)
        self._loop.pending.discard(self.id)
        return self.status

    def report(self, step: int, value: Any) -> bool:
        """Records an intermediate value; True when the stopping policy stopped the trial.

        A stopped trial is recorded at once (status ``'stopped'``, its last value fed to the
        algorithm as its reward): ``break`` out of its evaluation and give no more feedback.

        Raises:
            RuntimeError: if this trial already has its outcome.
            ValueError: for a step not above the last one, or a value that is not finite.
        """
        self._once()
        reason = self._loop.stopper.report(self.id, step, value)
        if reason is None:
            return False
        reports = self._loop.stopper.reports_of(self.id)
        self.status = self._engine.stop(self._trial, reports[-1][1], {"reports": reports}, reason)
        self._loop.pending.discard(self.id)
        return True

    @property
    def store(self) -> Any:
        """The loop's store (None in memory)."""
        return self._engine.store

    def search(
        self,
        space_value: Any,
        evaluate: Any,
        algorithm: Algorithm | None = None,
        budget: int = 100,
        *,
        name: str | None = None,
        seed: int | None = None,
        **kwargs: Any,
    ) -> Any:
        """Runs an inner ``pl.search`` in this loop's store as study ``"<study>/<id>"``.

        See :meth:`pliant.flows.context.TrialContext.search`.
        """
        from pliant.flows.context import nested_search

        return nested_search(
            self._engine, self.id, space_value, evaluate, algorithm, budget, name, seed, kwargs
        )

    def skip(self, reason: str | None = None) -> None:
        """Marks the trial infeasible: recorded, never fed to the algorithm."""
        self._once()
        self._engine.skip(self._trial, reason)
        self.status = "infeasible"
        self._loop.pending.discard(self.id)

    def fail(self, error: str | BaseException) -> None:
        """Records the trial as failed with the given error."""
        self._once()
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self._engine.fail(self._trial, text)
        self.status = "failed"
        self._loop.pending.discard(self.id)

    def end_loop(self) -> None:
        """Ends the loop: no new trial is proposed after this one."""
        self._loop.ended = True

    def __repr__(self) -> str:
        return f"Feedback(trial={self.id}, status={self.status})"


class _Loop:
    def __init__(self, stopper: Stopper) -> None:
        self.pending: set[int] = set()
        self.ended = False
        self.stopper = stopper


def sample(
    space_value: Any,
    algorithm: Algorithm,
    num_examples: int | None = None,
    *,
    seed: int = 0,
    store: str | os.PathLike[str] | Store | None = None,
    study: str = "default",
    objectives: Any = None,
    max_pending: int = 1,
    stopping: Any = None,
    where: Any = None,
) -> Iterator[tuple[Any, Feedback]]:
    """Yields ``(example, feedback)`` for trials proposed by ``algorithm`` on a search space.

    Args:
        space_value: a symbolic value with placeholders, or a traced function (``pl.trace``);
            examples are its materializations (a replay callable for a traced function).
        algorithm: e.g. ``pl.algorithms.regularized_evolution()``.
        num_examples: the number of trials in the study in total (None: no end); a resumed
            study counts the trials it finished before.
        seed: makes the run reproducible.
        store: a SQLite path (or store) that records every trial; the same call resumes there.
        study: the study's name within the store.
        objectives: the metric(s) to maximize or minimize (see ``pl.search``).
        max_pending: how many trials may wait for feedback at once. With the default 1, asking
            for the next example before giving feedback raises, so that a forgotten feedback
            never goes unnoticed; raise it to evaluate several examples together.
        stopping: an early-stopping policy for ``feedback.report`` (e.g.
            ``pl.flows.median_stopping()``).
        where: search only the placeholders this predicate selects (PyGlove's ``where=``, see
            ``pl.flows.partial``); examples are then sub-spaces holding the others.

    Raises:
        RuntimeError: when more than ``max_pending`` trials wait for feedback.

    Example:
        >>> import pliant as pl
        >>> space = {"width": pl.oneof([16, 32, 64]), "lr": pl.floatv(0.01, 0.1)}
        >>> for example, feedback in pl.sample(space, pl.algorithms.random(), 3):
        ...     feedback(example["width"] * example["lr"])
        'complete'
        'complete'
        'complete'
    """
    if num_examples is not None and (type(num_examples) is not int or num_examples < 0):
        raise ValueError(f"num_examples must be a non-negative int or None, got {num_examples!r}")
    if type(max_pending) is not int or max_pending < 1:
        raise ValueError(f"max_pending must be a positive int, got {max_pending!r}")
    space_value = partial_of(space_value, where)
    engine = StudyEngine(
        space_value, algorithm, seed=seed, store=store, study=study, objectives=objectives
    )
    return _iterate(engine, num_examples, max_pending, Stopper(engine, stopping))


def _iterate(
    engine: StudyEngine, num_examples: int | None, max_pending: int, stopper: Stopper
) -> Iterator[tuple[Any, Feedback]]:
    loop = _Loop(stopper)
    rerun = list(engine.interrupted)
    while not loop.ended:
        if len(loop.pending) >= max_pending:
            waiting = sorted(loop.pending)
            raise RuntimeError(
                f"trial(s) {waiting} still wait for feedback: call feedback(reward), "
                f"feedback(metrics=...), feedback.skip() or feedback.fail(error) before asking "
                f"for the next example (or pass max_pending=N to evaluate several at once)"
            )
        if rerun:
            trial = engine.rerun(rerun.pop(0))
        else:
            if num_examples is not None and engine.num_proposed >= num_examples:
                return
            trial = engine.propose()
        loop.pending.add(trial.id)
        yield trial.example, Feedback(engine, trial, loop)
