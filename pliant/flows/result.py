"""The result of a search: its trials as records and a DataFrame, the best, the Pareto front,
and plots. ``pl.load_result(path)`` reads one from a store, also while a search still writes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from pliant.flows.partial import Partial
from pliant.flows.store import Store, TrialRecord, open_store
from pliant.flows.study import Objective, parse_objectives
from pliant.spaces.dna import Space


class Result:
    """Trials of one study, in id order, with views for analysis.

    Rewards in records are what the algorithm saw: objectives to minimize are negated. The
    metrics are the evaluation's own values.

    Example:
        >>> import pliant as pl
        >>> result = pl.search({"x": pl.oneof([1, 2, 3])}, lambda v: v["x"],
        ...                    pl.algorithms.random(), budget=5)
        >>> result.best.metrics["reward"], len(result.records)
        (3.0, 5)
    """

    def __init__(
        self,
        records: Sequence[TrialRecord],
        objectives: Sequence[Objective],
        space: Space,
        *,
        study: str = "default",
        space_value: Any = None,
        store_path: str | None = None,
    ):
        self.records = list(records)
        self.objectives = tuple(objectives)
        self.space = space
        self.study = study
        self.space_value = space_value
        self.store_path = store_path

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for r in self.records:
            counts[r.status] = counts.get(r.status, 0) + 1
        return f"Result(study={self.study!r}, trials={len(self.records)}, {counts})"

    @property
    def completed(self) -> list[TrialRecord]:
        """The trials whose reward was fed back."""
        return [r for r in self.records if r.status == "complete"]

    @property
    def best(self) -> TrialRecord | None:
        """The complete trial with the best first objective (None when none completed)."""
        done = self.completed
        if not done:
            return None
        return max(done, key=lambda r: _first(r.reward))

    def best_value(self) -> Any:
        """The best trial's concrete value (materialized from the space value, when known).

        Raises:
            ValueError: when no trial completed or the space value is unknown.
        """
        from pliant.spaces.compiler import materialize

        best = self.best
        if best is None:
            raise ValueError("no trial completed, so there is no best value")
        if self.space_value is None:
            raise ValueError(
                "this result was loaded without its space value; pass "
                "space_value= to load_result to materialize trials"
            )
        dna = self.space.from_list(best.dna)
        if isinstance(self.space_value, Partial):
            return self.space_value.materialize(dna)
        return materialize(self.space_value, dna)

    def pareto_front(self) -> list[TrialRecord]:
        """Complete trials not dominated in every objective by another (all maximized)."""
        done = self.completed
        vectors = [tuple(r.reward) if isinstance(r.reward, tuple) else (r.reward,) for r in done]
        front = []
        for i, v in enumerate(vectors):
            dominated = any(
                all(a >= b for a, b in zip(w, v)) and any(a > b for a, b in zip(w, v))
                for j, w in enumerate(vectors)
                if j != i
            )
            if not dominated:
                front.append(done[i])
        return front

    def dataframe(self) -> Any:
        """The trials as a pandas DataFrame (needs ``pip install pliant[pandas]``).

        Columns: ``id``, ``status``, one per decision (by name or path; prefixed with
        ``decision:`` if a metric has the same name), one per metric, ``reward``, ``error``,
        ``attempts``, ``link`` (the inner study of a nested search), ``duration_s``.
        """
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "Result.dataframe() needs pandas: pip install 'pliant[pandas]'"
            ) from None
        metric_names = sorted({k for r in self.records for k in r.metrics})
        rows = []
        for r in self.records:
            row: dict[str, Any] = {"id": r.id, "status": r.status}
            for k, v in r.decisions.items():
                row[f"decision:{k}" if k in metric_names else k] = v
            for k in metric_names:
                row[k] = r.metrics.get(k)
            row["reward"] = r.reward
            row["error"] = r.error
            row["attempts"] = r.attempts
            row["link"] = r.link
            row["duration_s"] = None if r.finished_at is None else r.finished_at - r.proposed_at
            rows.append(row)
        return pd.DataFrame(rows)

    def inner(self, trial: int | TrialRecord, name: str | None = None) -> Result:
        """The result of the inner search that a trial ran (see ``trial.search``).

        Args:
            trial: a trial id or record of this result.
            name: the inner search's name, when the trial ran several.

        Raises:
            ValueError: if this result has no store, or the trial ran no inner search.

        Example:
            >>> import os, tempfile, pliant as pl
            >>> path = os.path.join(tempfile.mkdtemp(), "nested.db")
            >>> def outer(v, trial):
            ...     inner = trial.search({"b": pl.oneof([1, 2])}, lambda u: v["a"] * u["b"],
            ...                          pl.algorithms.grid(), budget=2)
            ...     return inner.best.reward
            >>> result = pl.search({"a": pl.oneof([1, 3])}, outer, pl.algorithms.grid(), 2,
            ...                    store=path, study="outer")
            >>> result.records[1].link, result.inner(1).best.reward
            ('outer/1', 6.0)
        """
        if isinstance(trial, int):
            found = [r for r in self.records if r.id == trial]
            if not found:
                raise ValueError(f"study {self.study!r} has no trial {trial}")
            trial = found[0]
        record = trial
        if record.link is None:
            raise ValueError(f"trial {record.id} of study {self.study!r} ran no inner search")
        if self.store_path is None:
            raise ValueError("this result has no store; inner searches are read from the store")
        study = record.link if name is None else f"{record.link}/{name}"
        return load_result(self.store_path, study)

    @property
    def trials(self) -> Any:
        """Shorthand for :meth:`dataframe`."""
        return self.dataframe()

    # -- plots -----------------------------------------------------------------------------
    def plot_history(self, metric: str | None = None, path: str | None = None) -> Any:
        """Plots a metric per trial and the best so far; returns the matplotlib Figure.

        Args:
            metric: default the first objective.
            path: also save the figure there (PNG, SVG, PDF by extension).
        """
        plt = _pyplot()
        objective = self.objectives[0]
        metric = metric or objective.metric
        maximize = objective.direction == "max" if metric == objective.metric else True
        fig, ax = plt.subplots(figsize=(6, 3.6))
        xs, ys, best, best_ys = [], [], None, []
        for r in self.records:
            if r.status != "complete" or metric not in r.metrics:
                continue
            v = float(r.metrics[metric])
            xs.append(r.id)
            ys.append(v)
            better = best is None or (v > best if maximize else v < best)
            best = v if better else best
            best_ys.append(best)
        failed = [r.id for r in self.records if r.status == "failed"]
        ax.scatter(xs, ys, s=14, alpha=0.6, label="trial")
        ax.step(xs, best_ys, where="post", color="C3", label="best so far")
        if failed:
            ax.scatter(
                failed,
                [min(ys) if ys else 0.0] * len(failed),
                marker="x",
                color="gray",
                label="failed",
            )
        ax.set_xlabel("trial")
        ax.set_ylabel(metric)
        ax.set_title(f"{self.study}: {metric}")
        ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        if path:
            fig.savefig(path, dpi=120)
        return fig

    def plot_pareto(
        self, x: str | None = None, y: str | None = None, path: str | None = None
    ) -> Any:
        """Plots two metrics of every complete trial and marks the Pareto front."""
        plt = _pyplot()
        names = [o.metric for o in self.objectives]
        if x is None or y is None:
            if len(names) < 2:
                raise ValueError("plot_pareto() needs two metrics: pass x= and y=")
            x, y = x or names[0], y or names[1]
        fig, ax = plt.subplots(figsize=(5, 4))
        pts = [
            (r.metrics[x], r.metrics[y])
            for r in self.completed
            if x in r.metrics and y in r.metrics
        ]
        front = {r.id for r in self.pareto_front()}
        fpts = sorted(
            (r.metrics[x], r.metrics[y])
            for r in self.completed
            if r.id in front and x in r.metrics and y in r.metrics
        )
        if pts:
            ax.scatter(*zip(*pts), s=14, alpha=0.5, label="trial")
        if fpts:
            ax.plot(*zip(*fpts), "o-", color="C3", label="Pareto front")
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        if path:
            fig.savefig(path, dpi=120)
        return fig

    def to_json(self) -> str:
        """The result as JSON (trials, objectives, space)."""
        return json.dumps(
            {
                "study": self.study,
                "objectives": [list(o) for o in self.objectives],
                "space": json.loads(self.space.to_json()),
                "trials": [r._asdict() for r in self.records],
            },
            allow_nan=False,
        )


def _first(reward: Any) -> float:
    return float(reward[0] if isinstance(reward, tuple) else reward)


def _pyplot() -> Any:
    try:
        import matplotlib

        if not os.environ.get("MPLBACKEND") and not os.environ.get("DISPLAY"):
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'pliant[plots]'") from None
    return plt


def load_result(
    store: str | os.PathLike[str] | Store, study: str = "default", *, space_value: Any = None
) -> Result:
    """Reads a study's trials from a store, as a consistent snapshot (safe during a search).

    Raises:
        KeyError: if the store has no such study.

    Example:
        >>> import os, tempfile, pliant as pl
        >>> path = os.path.join(tempfile.mkdtemp(), "s.db")
        >>> _ = pl.search({"x": pl.oneof([1, 2])}, lambda v: v["x"], pl.algorithms.random(),
        ...               budget=3, store=path)
        >>> len(pl.load_result(path).records)
        3
    """
    owned = isinstance(store, str | os.PathLike)
    s = store if isinstance(store, Store) else open_store(store, readonly=True)
    try:
        info = s.study_info(study)
        if info is None:
            raise KeyError(f"store {s.path!r} has no study {study!r}; it has {s.studies()}")
        space = Space.from_json(info["space"])
        objectives = parse_objectives({m: d for m, d in info["config"]["objectives"]})
        return Result(
            s.trials(study),
            objectives,
            space,
            study=study,
            space_value=space_value,
            store_path=s.path,
        )
    finally:
        if owned:
            s.close()
