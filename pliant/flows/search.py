"""``pl.search``: evaluate proposals until the budget is spent, in parallel if asked, resumably."""

from __future__ import annotations

import concurrent.futures as cf
import os
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from pliant.algorithms.base import Algorithm
from pliant.flows.backends import resolve_backend, run_trials
from pliant.flows.context import Outcome, SearchControl
from pliant.flows.partial import partial_of
from pliant.flows.result import Result
from pliant.flows.store import Store
from pliant.flows.study import StudyEngine, Trial

Evaluate = Callable[[Any], Any]


def _outcome(value: Any, metric: str) -> tuple[str, Any]:
    """Normalizes what ``evaluate`` returned: ('ok', metrics) or ('error', message)."""
    if isinstance(value, Mapping):
        return "ok", dict(value)
    if isinstance(value, bool) or value is None:
        return "error", f"evaluate returned {value!r}; return a number or a dict of metrics"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "error", f"evaluate returned {value!r}; return a number or a dict of metrics"
    return "ok", {metric: number}


def _call(evaluate: Evaluate, example: Any) -> tuple[str, Any]:
    # ``example`` is the Trial when ``evaluate`` is bound by SearchControl.bind.
    try:
        return "ok", evaluate(example)
    except Exception as e:  # a trial that raises is recorded as failed; the search goes on
        tb = traceback.format_exception_only(type(e), e)
        return "error", "".join(tb).strip()


class _Progress:
    def __init__(self, total: int, enabled: bool | None, name: str):
        self.total = total
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.bar = None
        self.best: float | None = None
        self.failed = 0
        if self.enabled:
            try:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=total, desc=name, unit="trial", leave=True)
            except ImportError:
                self.bar = None

    def update(self, status: str, reward: Any, done: int) -> None:
        if status == "failed":
            self.failed += 1
        if status == "complete" and isinstance(reward, int | float):
            self.best = reward if self.best is None else max(self.best, reward)
        if not self.enabled:
            return
        best = "-" if self.best is None else f"{self.best:.4g}"
        if self.bar is not None:
            self.bar.set_postfix(best=best, failed=self.failed, refresh=False)
            self.bar.update(1)
        else:
            print(f"[{done}/{self.total}] best={best} failed={self.failed}", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def search(
    space_value: Any,
    evaluate: Evaluate,
    algorithm: Algorithm | None = None,
    budget: int = 100,
    *,
    store: str | os.PathLike[str] | Store | None = None,
    study: str = "default",
    objectives: Any = None,
    constraints: Any = None,
    workers: int = 1,
    seed: int = 0,
    timeout: float | None = None,
    progress: bool | None = None,
    on_interrupted: str = "rerun",
    backend: Any = "threads",
    retries: int = 1,
    stopping: Any = None,
    where: Any = None,
) -> Result:
    """Searches a space: proposes, evaluates and feeds back until ``budget`` trials are done.

    Args:
        space_value: a symbolic value with placeholders, or a traced function.
        evaluate: ``example -> reward`` (a number) or ``-> {metric: value}``. A trial that
            raises, returns NaN/inf or exceeds ``timeout`` is recorded as failed and the search
            goes on; one that violates a constraint is recorded as infeasible. Neither is fed to
            the algorithm.
        algorithm: the search algorithm (default: regularized evolution that never repeats a
            trial, ``dedup(regularized_evolution())``).
        budget: trials in the study in total (a resumed study counts what it already did).
        store: a SQLite path (or store): every trial is recorded as it happens, and calling
            ``search`` again with the same arguments resumes the study.
        study: the study's name within the store.
        objectives: None (maximize ``reward``), a metric name to maximize, a list of them, or a
            dict ``{metric: 'max' | 'min'}``; several objectives need a multi-objective
            algorithm.
        constraints: ``{metric: (op, bound)}`` (e.g. ``{'params': ('<=', 1e5)}``) and/or
            callables ``metrics -> bool``.
        workers: trials evaluated at once (threads); feedback is asynchronous.
        seed: makes the run reproducible.
        timeout: seconds per trial; a slower trial is recorded as failed (its thread cannot be
            stopped and finishes in the background; its late result is ignored).
        progress: show a progress bar (default: when stderr is a terminal).
        on_interrupted: what to do with trials that were running when a previous process died:
            ``'rerun'`` them with the same DNA (default), or ``'fail'`` them and propose anew.
        backend: where trials run: ``'threads'`` (default), ``'processes'`` (local worker
            processes; evaluate and each example are sent in memory with cloudpickle) or
            ``'ray'`` (Ray tasks; ``pl.flows.RayBackend(address=..., num_gpus=...)`` for a
            cluster or per-trial resources). Off threads, evaluate takes the example only.
        retries: how often a trial whose worker died (process killed, Ray worker crashed) is
            re-run with the same DNA; each failed attempt is recorded with its reason.
        stopping: an early-stopping policy (``pl.flows.median_stopping()``, ...) applied to what
            trials report with ``trial.report(step, value)``; a stopped trial is recorded as
            ``'stopped'`` (see ``pliant/flows/stopping.py`` for how it is fed back).
        where: search only the placeholders this predicate selects (PyGlove's ``where=``, see
            ``pl.flows.partial``); examples are then sub-spaces holding the others.

    An evaluate function that takes a second parameter, ``evaluate(example, trial)``, gets the
    trial's handle (:class:`~pliant.flows.context.TrialContext`): ``trial.report(step, value)``,
    ``trial.skip()``, ``trial.end_search()``, and ``trial.search(...)`` for a nested search in
    the same store. ``pl.flows.current_trial()`` returns the same handle.

    Returns:
        A :class:`~pliant.flows.result.Result`.

    Raises:
        ValueError: for a bad budget, worker count, timeout or policy.

    Example:
        >>> import pliant as pl
        >>> space = {"x": pl.floatv(-2.0, 2.0), "y": pl.oneof([0, 1, 2])}
        >>> result = pl.search(space, lambda v: -(v["x"] - 1) ** 2 - v["y"],
        ...                    pl.algorithms.random(), budget=30)
        >>> len(result.records), result.best.decisions["y"]
        (30, 0)
    """
    from pliant.algorithms.combinators import dedup
    from pliant.algorithms.evolution import regularized_evolution

    if type(budget) is not int or budget < 0:
        raise ValueError(f"budget must be a non-negative int, got {budget!r}")
    if type(workers) is not int or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    if timeout is not None and not (isinstance(timeout, int | float) and timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if on_interrupted not in ("rerun", "fail"):
        raise ValueError(f"on_interrupted must be 'rerun' or 'fail', got {on_interrupted!r}")
    if type(retries) is not int or retries < 0:
        raise ValueError(f"retries must be a non-negative int, got {retries!r}")
    runner = resolve_backend(backend)
    if runner is not None and stopping is not None:
        raise ValueError(f"stopping needs backend='threads' for now, got backend={backend!r}")
    if not callable(evaluate):
        raise TypeError(f"evaluate must be a function example -> reward, got {evaluate!r}")
    # dedup(evolution) ranked above plain evolution at 100 and 300 trials on the tabular
    # benchmarks (benchmarks/results/quality.md): a repeated architecture wastes a trial.
    algorithm = dedup(regularized_evolution()) if algorithm is None else algorithm
    space_value = partial_of(space_value, where)
    engine = StudyEngine(
        space_value,
        algorithm,
        seed=seed,
        store=store,
        study=study,
        objectives=objectives,
        constraints=constraints,
    )
    metric = engine.objectives[0].metric
    control = SearchControl(engine, stopping)
    run = control.bind(evaluate)
    rerun = list(engine.interrupted)
    if on_interrupted == "fail":
        for trial_id in rerun:
            engine.fail(trial_id, "interrupted: the process evaluating it died")
        rerun = []
    remaining = len(rerun) + max(0, budget - engine.num_proposed)
    bar = _Progress(engine.num_finished() + remaining, progress, f"search[{study}]")

    def next_trial() -> Trial | None:
        if control.ended.is_set():
            return None
        if rerun:
            return engine.rerun(rerun.pop(0))
        if engine.num_proposed < budget:
            return engine.propose()
        return None

    def record(trial: Trial, kind: str, value: Any, elapsed: float) -> None:
        if kind == "ok" and isinstance(value, Outcome):
            bar.update(control.record(trial, value, elapsed), None, engine.num_finished())
            return
        if kind == "ok":
            kind, value = _outcome(value, metric)
        if kind == "ok":
            metrics = dict(value)
            metrics.setdefault("elapsed_s", elapsed)
            status = engine.complete(trial, metrics)
        else:
            engine.fail(trial, str(value), {"elapsed_s": elapsed})
            status = "failed"
        reward = _last_reward(engine, trial.id)
        bar.update(
            status, reward if isinstance(reward, int | float) else None, engine.num_finished()
        )

    try:
        if runner is not None:
            run_trials(runner, engine, evaluate, next_trial, record, workers, timeout, retries)
        elif workers == 1 and timeout is None:
            while (trial := next_trial()) is not None:
                start = time.perf_counter()
                kind, value = _call(run, trial)
                record(trial, kind, value, time.perf_counter() - start)
        else:
            _run_parallel(engine, run, next_trial, record, workers, timeout)
    finally:
        bar.close()
    return Result(
        engine.records(),
        engine.objectives,
        engine.space,
        study=study,
        space_value=space_value,
        store_path=getattr(engine.store, "path", None),
    )


def _last_reward(engine: StudyEngine, trial_id: int) -> Any:
    return engine.record(trial_id).reward


def _run_parallel(
    engine: StudyEngine,
    evaluate: Evaluate,
    next_trial: Callable[[], Trial | None],
    record: Callable[[Trial, str, Any, float], None],
    workers: int,
    timeout: float | None,
) -> None:
    def new_pool() -> cf.ThreadPoolExecutor:
        return cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pliant-trial")

    pool = new_pool()
    running: dict[cf.Future, tuple[Trial, float]] = {}
    try:
        while True:
            while len(running) < workers:
                trial = next_trial()
                if trial is None:
                    break
                running[pool.submit(_call, evaluate, trial)] = (trial, time.perf_counter())
            live = dict(running)
            if not live:
                break
            wait = None
            if timeout is not None:
                oldest = min(start for _, start in live.values())
                wait = max(0.0, oldest + timeout - time.perf_counter())
            done, _ = cf.wait(list(live), timeout=wait, return_when=cf.FIRST_COMPLETED)
            now = time.perf_counter()
            for future in done:
                trial, start = running.pop(future)
                kind, value = future.result()
                record(trial, kind, value, now - start)
            if timeout is not None:
                abandoned = False
                for future, (trial, start) in list(live.items()):
                    if future in done or now - start < timeout:
                        continue
                    # The thread cannot be stopped: record the trial as failed and let the thread
                    # finish on its own, ignoring its result.
                    running.pop(future)
                    abandoned = True
                    record(
                        trial,
                        "error",
                        f"TimeoutError: the trial took longer than {timeout:g} s",
                        now - start,
                    )
                if abandoned:
                    # The abandoned thread still holds a worker of this pool: later trials would
                    # queue behind it and time out without having run. They get a fresh pool.
                    pool.shutdown(wait=False)
                    pool = new_pool()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
