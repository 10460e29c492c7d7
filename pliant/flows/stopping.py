"""Early stopping for multi-fidelity evaluation: policies that stop a trial from its reports.

A trial reports intermediate values (``trial.report(step, value)`` in ``pl.search``,
``feedback.report(step, value)`` in ``pl.sample``); after each report, the study's policy may
stop it. A policy is a :class:`StoppingPolicy`: a name and a pure ``decide(report) -> reason |
None``. Policies compare a trial with the *other* trials of the same study at *gates* (steps):
a trial's value at gate ``g`` is its first report at or past ``g`` (as in PyGlove), so trials
that report at different steps still compare. Directions follow the study's first objective.

A stopped trial is recorded with status ``'stopped'`` and its reports; its last reported value
is fed to the algorithm as its reward (single objective). Why: the trials a policy stops are
the bad ones, and an algorithm that never hears of them (REINFORCE, evolution) keeps proposing
their region; the last value is a pessimistic estimate of the final one, which keeps their rank
low where it belongs. Optuna's TPE treats pruned trials the same way.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple


class Report(NamedTuple):
    """One report of a trial, as a policy sees it.

    Attributes:
        trial: the trial id.
        step: the step reported now.
        previous: the trial's previous reported step (-1 if none): gates in
            ``(previous, step]`` fire now.
        value: the reported value, in the metric's own units.
        maximize: whether larger values are better.
        history: ``history(gate)`` are the other trials' values at that gate.
    """

    trial: int
    step: int
    previous: int
    value: float
    maximize: bool
    history: Callable[[int], list[float]]

    def fired(self, gates: Sequence[int]) -> list[int]:
        """The gates this report passes for the first time."""
        return [g for g in gates if self.previous < g <= self.step]

    def worse(self, a: float, b: float) -> bool:
        """Whether value ``a`` is strictly worse than ``b``."""
        return a < b if self.maximize else a > b


class StoppingPolicy(NamedTuple):
    """A named early-stopping rule: ``decide(report)`` returns a reason to stop, or None.

    Example:
        >>> from pliant.flows.stopping import Report, stop_below
        >>> policy = stop_below({2: 0.5})
        >>> policy.decide(Report(0, 2, 1, 0.3, True, lambda g: []))
        'value 0.3 at step 2 is worse than the gate 0.5 at step 2'
    """

    name: str
    decide: Callable[[Report], str | None]


def _gates(gates: Mapping[int, Any], where: str) -> dict[int, Any]:
    if not isinstance(gates, Mapping) or not gates:
        raise ValueError(f"{where}: gates must be a non-empty {{step: ...}} dict, got {gates!r}")
    for step in gates:
        if type(step) is not int or step < 0:
            raise ValueError(f"{where}: gate steps must be non-negative ints, got {step!r}")
    return dict(sorted(gates.items()))


def stop_below(gates: Mapping[int, float]) -> StoppingPolicy:
    """Stops a trial whose value at a gate step is worse than that gate's bound.

    Args:
        gates: ``{step: bound}``; for a metric to minimize, "worse" means above the bound.

    Raises:
        ValueError: for empty gates, a negative step or a bound that is not a finite number.

    Example:
        >>> policy = stop_below({1: 0.2, 5: 0.6})
        >>> policy.name
        'stop_below({1: 0.2, 5: 0.6})'
    """
    table = _gates(gates, "stop_below()")
    for step, bound in table.items():
        if not isinstance(bound, int | float) or not math.isfinite(bound):
            raise ValueError(
                f"stop_below(): the bound at step {step} must be a number, not {bound!r}"
            )

    def decide(r: Report) -> str | None:
        for g in r.fired(list(table)):
            if r.worse(r.value, table[g]):
                return (
                    f"value {r.value:g} at step {r.step} is worse than the gate {table[g]:g} "
                    f"at step {g}"
                )
        return None

    return StoppingPolicy(f"stop_below({table})", decide)


def _keep(rank_spec: float | int, n: int) -> int:
    """How many of ``n`` values survive: the best k (int) or the best fraction (float)."""
    if isinstance(rank_spec, float):
        return max(1, math.ceil(rank_spec * n))
    return rank_spec


def stop_by_rank(gates: Mapping[int, float | int], *, min_history: int = 5) -> StoppingPolicy:
    """Stops a trial that ranks too low among the other trials at a gate step.

    Args:
        gates: ``{step: keep}``; ``keep`` a float in (0, 1] keeps the best fraction of the trials
            at that gate (this one included), an int k keeps the k best.
        min_history: the rule applies only once this many other trials passed the gate.

    Raises:
        ValueError: for a bad gate, keep value or min_history.

    Example:
        >>> from pliant.flows.stopping import Report
        >>> policy = stop_by_rank({3: 0.5}, min_history=3)
        >>> policy.decide(Report(9, 3, 2, 0.1, True, lambda g: [0.4, 0.5, 0.6])) is not None
        True
    """
    table = _gates(gates, "stop_by_rank()")
    for step, keep in table.items():
        ok = (isinstance(keep, float) and 0 < keep <= 1) or (type(keep) is int and keep >= 1)
        if not ok:
            raise ValueError(
                f"stop_by_rank(): keep at step {step} must be a fraction in (0, 1] or a "
                f"positive int, got {keep!r}"
            )
    if type(min_history) is not int or min_history < 0:
        raise ValueError(f"stop_by_rank(): min_history must be an int >= 0, got {min_history!r}")

    def decide(r: Report) -> str | None:
        for g in r.fired(list(table)):
            others = r.history(g)
            if len(others) < min_history:
                continue
            better = sum(r.worse(r.value, v) for v in others)
            keep = _keep(table[g], len(others) + 1)
            if better >= keep:
                return (
                    f"rank {better + 1} of {len(others) + 1} at step {g} (keeping the best {keep})"
                )
        return None

    return StoppingPolicy(f"stop_by_rank({table}, min_history={min_history})", decide)


def median_stopping(*, min_history: int = 5, warmup: int = 0) -> StoppingPolicy:
    """Stops a trial whose value is worse than the median of the other trials at that step.

    The median stopping rule of Google Vizier, on values at each reported step (every report is
    a gate): the other trials' values are their first reports at or past the step.

    Args:
        min_history: apply only once this many other trials reached the step.
        warmup: never stop before this step.

    Example:
        >>> from pliant.flows.stopping import Report
        >>> policy = median_stopping(min_history=2)
        >>> policy.decide(Report(5, 4, 3, 0.7, True, lambda g: [0.5, 0.6, 0.9])) is None
        True
    """
    if type(min_history) is not int or min_history < 1:
        raise ValueError(f"median_stopping(): min_history must be an int >= 1, got {min_history!r}")
    if type(warmup) is not int or warmup < 0:
        raise ValueError(f"median_stopping(): warmup must be an int >= 0, got {warmup!r}")

    def decide(r: Report) -> str | None:
        if r.step < warmup:
            return None
        others = sorted(r.history(r.step))
        if len(others) < min_history:
            return None
        mid = len(others) // 2
        median = others[mid] if len(others) % 2 else (others[mid - 1] + others[mid]) / 2
        if r.worse(r.value, median):
            return f"value {r.value:g} at step {r.step} is worse than the median {median:g}"
        return None

    return StoppingPolicy(f"median_stopping(min_history={min_history}, warmup={warmup})", decide)


def successive_halving(
    min_step: int = 1, *, eta: int = 3, max_step: int | None = None
) -> StoppingPolicy:
    """Asynchronous successive halving: at rungs ``min_step * eta**k``, keep the best 1/eta.

    A trial that reaches a rung continues only if it is among the best ``1/eta`` of the trials
    that reached that rung so far, itself included (the best always continues, so the first
    trials are never stopped for lack of company). Nothing waits: as in ASHA (Li et al., 2020),
    decisions use the trials seen so far.

    Args:
        min_step: the first rung.
        eta: the reduction factor (>= 2).
        max_step: no rungs past it (default: unbounded).

    Example:
        >>> policy = successive_halving(1, eta=2, max_step=8)
        >>> policy.name
        'successive_halving(rungs=[1, 2, 4, 8], eta=2)'
    """
    if type(min_step) is not int or min_step < 1:
        raise ValueError(f"successive_halving(): min_step must be an int >= 1, got {min_step!r}")
    if type(eta) is not int or eta < 2:
        raise ValueError(f"successive_halving(): eta must be an int >= 2, got {eta!r}")
    limit = 1 << 40 if max_step is None else max_step
    rungs: list[int] = []
    step = min_step
    while step <= limit and len(rungs) < 40:
        rungs.append(step)
        step *= eta

    def decide(r: Report) -> str | None:
        for g in r.fired(rungs):
            others = r.history(g)
            better = sum(r.worse(r.value, v) for v in others)
            keep = max(1, (len(others) + 1) // eta)
            if better >= keep:
                return f"rank {better + 1} of {len(others) + 1} at rung {g} (keeping {keep})"
        return None

    shown = rungs if max_step is not None else [*rungs[:4], "..."]
    return StoppingPolicy(f"successive_halving(rungs={shown}, eta={eta})", decide)


def any_of(*policies: StoppingPolicy) -> StoppingPolicy:
    """Stops when any of the policies says so (the first reason is given).

    Example:
        >>> any_of(stop_below({1: 0.1}), median_stopping()).name.startswith("any_of(")
        True
    """
    checked = _policies(policies, "any_of")

    def decide(r: Report) -> str | None:
        for p in checked:
            reason = p.decide(r)
            if reason is not None:
                return reason
        return None

    return StoppingPolicy(f"any_of({', '.join(p.name for p in checked)})", decide)


def all_of(*policies: StoppingPolicy) -> StoppingPolicy:
    """Stops only when every policy says so (their reasons joined).

    Example:
        >>> all_of(stop_below({1: 0.1}), median_stopping()).name.startswith("all_of(")
        True
    """
    checked = _policies(policies, "all_of")

    def decide(r: Report) -> str | None:
        reasons = []
        for p in checked:
            reason = p.decide(r)
            if reason is None:
                return None
            reasons.append(reason)
        return " and ".join(reasons)

    return StoppingPolicy(f"all_of({', '.join(p.name for p in checked)})", decide)


def _policies(policies: Sequence[Any], where: str) -> list[StoppingPolicy]:
    if not policies:
        raise ValueError(f"{where}() needs at least one policy")
    for p in policies:
        if not isinstance(p, StoppingPolicy):
            raise TypeError(
                f"{where}() takes stopping policies (e.g. pl.flows.median_stopping()), got {p!r}"
            )
    return list(policies)


class Stopper:
    """The reports of one study's trials and its policy (used by the flows).

    Reports of finished trials come back from their records (``metrics['reports']``), so a
    resumed study compares new trials with the old ones.
    """

    def __init__(self, engine: Any, policy: StoppingPolicy | None):
        if policy is not None and not isinstance(policy, StoppingPolicy):
            raise TypeError(
                f"stopping must be a pl.flows stopping policy (e.g. pl.flows.median_stopping()), "
                f"got {policy!r}"
            )
        self.engine, self.policy = engine, policy
        self.maximize = engine.objectives[0].direction == "max"
        self.lock = threading.Lock()
        self.reports: dict[int, dict[int, float]] = {}
        for record in engine.records():
            past = record.metrics.get("reports") if record.status != "running" else None
            if past:
                self.reports[record.id] = {int(s): float(v) for s, v in past}

    def report(self, trial_id: int, step: int, value: Any) -> str | None:
        """Records a report; returns the policy's reason to stop, or None.

        Raises:
            ValueError: for a step that is not an int above the trial's last one, or a value
                that is not a finite number.
        """
        if type(step) is not int or step < 0:
            raise ValueError(f"report(): step must be a non-negative int, got {step!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"report(): value must be a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"report(): value must be finite, got {value!r} at step {step}")
        with self.lock:
            mine = self.reports.setdefault(trial_id, {})
            previous = max(mine) if mine else -1
            if step <= previous:
                raise ValueError(
                    f"report(): trial {trial_id} reported step {previous} already; steps must "
                    f"increase, got {step}"
                )
            mine[step] = number
            if self.policy is None:
                return None
            # Decided under the lock (policies are quick): other workers' reports stay put.
            history = _history(self.reports, trial_id)
            return self.policy.decide(
                Report(trial_id, step, previous, number, self.maximize, history)
            )

    def reports_of(self, trial_id: int) -> list[list[float]]:
        """The trial's reports as ``[[step, value], ...]``."""
        with self.lock:
            return [[s, v] for s, v in sorted(self.reports.get(trial_id, {}).items())]


def _history(reports: dict[int, dict[int, float]], exclude: int) -> Callable[[int], list[float]]:
    def at(gate: int) -> list[float]:
        out = []
        for trial_id, steps in reports.items():
            if trial_id == exclude:
                continue
            if gate in steps:
                out.append(steps[gate])
                continue
            past = [s for s in steps if s >= gate]
            if past:
                out.append(steps[min(past)])
        return out

    return at
