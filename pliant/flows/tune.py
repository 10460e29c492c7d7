"""A Ray Tune searcher that runs any pliant algorithm on any pliant space.

Ray Tune users keep their trainables, schedulers and clusters and take pliant's spaces and
algorithms::

    from ray import tune
    from pliant.flows.tune import PliantSearcher

    searcher = PliantSearcher(space, pl.algorithms.regularized_evolution(),
                              metric="accuracy", mode="max", budget=50)
    tuner = tune.Tuner(train, tune_config=tune.TuneConfig(search_alg=searcher, num_samples=-1))

How a symbolic example maps to Tune's flat config: each decision appears under its name (or
path) with its readable value, as in ``Trial.decisions``, and the materialized example (the
concrete symbolic value, ready to ``build()``) under ``'example'``. A trainable usually reads
``config['example']``; the decision keys make Tune's tables and loggers readable.

The searcher's state (the algorithm state, its trials, the trials in flight) is saved and
restored as JSON.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import Any

from pliant.algorithms.base import Algorithm, state_from_json, state_to_json, step_key
from pliant.spaces.compiler import compile_space, materialize
from pliant.spaces.dna import DNA, Space
from pliant.spaces.tracing import Traced

RAY_EXTRA = 'pip install "pliant[ray]"'
_FORMAT = "pliant-tune-searcher/1"

try:
    from ray.tune.search import Searcher as _Searcher

    _HAVE_RAY = True
except ImportError:  # the class below still imports; creating a searcher explains what to do
    _Searcher = object  # type: ignore[assignment,misc]
    _HAVE_RAY = False

FINISHED = "FINISHED"  # what Searcher.FINISHED is


class PliantSearcher(_Searcher):  # type: ignore[misc,valid-type]
    """``ray.tune.search.Searcher`` over a pliant space, driven by a pliant algorithm.

    Args:
        space_value: a symbolic value with placeholders, or a traced function.
        algorithm: any single-objective pliant algorithm (default: regularized evolution).
        metric: the result key Tune reports and the algorithm optimizes. Required here: Tune
            only passes it through ``set_search_properties`` when ``param_space`` is non-empty.
        mode: ``'max'`` or ``'min'``.
        budget: suggestions in total; then ``suggest`` returns ``Searcher.FINISHED`` (None: run
            until Tune's ``num_samples``).
        seed: the proposal keys, as in ``pl.search``.
        max_concurrent: trials in flight at most (``suggest`` returns None beyond it); Tune's
            ``ConcurrencyLimiter`` sets it too.
        example_key: the config key of the materialized example.

    Raises:
        ImportError: without Ray Tune installed (naming the extra).
        ValueError: for a bad mode, budget, or a decision named like ``example_key``.

    Example:
        >>> import pliant as pl
        >>> s = PliantSearcher({"lr": pl.floatv(1e-4, 1e-1, scale="log"), "depth":
        ...     pl.oneof([1, 2])}, pl.algorithms.random(), metric="loss", mode="min", budget=2)
        >>> config = s.suggest("t1")
        >>> sorted(config), config["example"]["depth"] == config["depth"]
        (['depth', 'example', 'lr'], True)
        >>> s.on_trial_complete("t1", {"loss": 0.5})
        >>> s.suggest("t2") is not None, s.suggest("t3")
        (True, 'FINISHED')
    """

    def __init__(
        self,
        space_value: Any,
        algorithm: Algorithm | None = None,
        *,
        metric: str,
        mode: str = "max",
        budget: int | None = None,
        seed: int = 0,
        max_concurrent: int | None = None,
        example_key: str = "example",
    ):
        if not _HAVE_RAY:
            raise ImportError(
                f"PliantSearcher needs Ray Tune, which is not installed; install the extra: "
                f"{RAY_EXTRA}"
            )
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        if not isinstance(metric, str) or not metric:
            raise ValueError(f"metric must be the name of a reported metric, got {metric!r}")
        if budget is not None and (type(budget) is not int or budget < 0):
            raise ValueError(f"budget must be None or a non-negative int, got {budget!r}")
        if max_concurrent is not None and (type(max_concurrent) is not int or max_concurrent < 1):
            raise ValueError(
                f"max_concurrent must be None or a positive int, got {max_concurrent!r}"
            )
        super().__init__(metric=metric, mode=mode)
        if algorithm is None:
            from pliant.algorithms.evolution import regularized_evolution

            algorithm = regularized_evolution()
        if not isinstance(algorithm, Algorithm):
            raise TypeError(f"algorithm must be a pliant Algorithm, got {algorithm!r}")
        self._args = (space_value, algorithm)
        self._kwargs: dict[str, Any] = {
            "metric": metric,
            "mode": mode,
            "budget": budget,
            "seed": seed,
            "max_concurrent": max_concurrent,
            "example_key": example_key,
        }
        self._setup()

    def _setup(self) -> None:
        space_value, algorithm = self._args
        self.space_value = space_value
        self.space: Space = (
            space_value.space
            if isinstance(space_value, Traced)
            else compile_space(space_value).space
        )
        self.algorithm: Algorithm = algorithm
        kw = self._kwargs
        self.budget: int | None = kw["budget"]
        self.seed: int = int(kw["seed"])
        self.max_concurrent: int | None = kw["max_concurrent"]
        self.example_key: str = kw["example_key"]
        self.state = algorithm.init(self.space, step_key(self.seed, 1 << 62))
        self.num_proposed = 0
        self._live: dict[str, tuple[int, DNA]] = {}
        self._reports: dict[str, list[list[Any]]] = {}
        self._trials: list[dict[str, Any]] = []

    # -- the Searcher interface ------------------------------------------------------------
    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        """Accepts Tune's metric and mode if they agree with ours; refuses a param_space."""
        if config:
            return False  # the space is ours
        if metric is not None and metric != self._metric:
            return False
        return mode is None or mode == self._mode

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        self.max_concurrent = max_concurrent
        return True

    def suggest(self, trial_id: str) -> Any:  # a config dict, None, or FINISHED
        """The next config, None while ``max_concurrent`` trials run, or FINISHED."""
        if self.budget is not None and self.num_proposed >= self.budget:
            return FINISHED
        if self.max_concurrent is not None and len(self._live) >= self.max_concurrent:
            return None
        from pliant.algorithms.grid_search import GridExhausted

        try:
            dna, self.state = self.algorithm.propose(
                self.state, step_key(self.seed, self.num_proposed)
            )
        except GridExhausted:
            return FINISHED
        self._live[trial_id] = (self.num_proposed, dna)
        self.num_proposed += 1
        return self._config(dna)

    def _config(self, dna: DNA) -> dict[str, Any]:
        config = dict(dna.to_dict())
        if self.example_key in config:
            raise ValueError(
                f"a decision is named {self.example_key!r}, the key of the example in Tune's "
                f"config; pass PliantSearcher(..., example_key=...) with another name"
            )
        config[self.example_key] = materialize(self.space_value, dna, check=False)
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Keeps the trial's intermediate values of the metric (step, value)."""
        value = result.get(self._metric)
        if trial_id in self._live and isinstance(value, int | float):
            step = result.get("training_iteration", len(self._reports.get(trial_id, ())) + 1)
            self._reports.setdefault(trial_id, []).append([step, float(value)])

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        """Feeds a finished trial back; an errored one (or one without the metric) fails."""
        if trial_id not in self._live:
            return
        number, dna = self._live.pop(trial_id)
        entry: dict[str, Any] = {
            "id": number,
            "tune_id": trial_id,
            "dna": dna.to_list(),
            "reports": self._reports.pop(trial_id, []),
            "finished_at": time.time(),
        }
        value = None if result is None else result.get(self._metric)
        if error:
            entry.update(status="failed", error="Ray Tune reported the trial as errored")
        elif not isinstance(value, int | float) or not math.isfinite(value):
            entry.update(
                status="failed", error=f"the result has no finite {self._metric!r}: {value!r}"
            )
        else:
            reward = float(value) if self._mode == "max" else -float(value)
            self.state = self.algorithm.feedback(self.state, dna, reward)
            entry.update(status="complete", value=float(value), reward=reward)
        self._trials.append(entry)

    # -- state as JSON ---------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """The searcher's state as a JSON-able dict."""
        return {
            "format": _FORMAT,
            "algorithm": self.algorithm.name,
            "seed": self.seed,
            "metric": self._metric,
            "mode": self._mode,
            "num_slots": len(self.space.slots),
            "num_proposed": self.num_proposed,
            "state": state_to_json(self.state),
            "live": {k: [n, d.to_list()] for k, (n, d) in self._live.items()},
            "reports": self._reports,
            "trials": self._trials,
        }

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restores :meth:`get_state` (of a searcher made with the same arguments).

        Raises:
            ValueError: for another format, algorithm, seed, metric, mode or space.
        """
        if state.get("format") != _FORMAT:
            raise ValueError(f"not a PliantSearcher state (format {state.get('format')!r})")
        mine = self.get_state()
        for field in ("algorithm", "seed", "metric", "mode", "num_slots"):
            if state[field] != mine[field]:
                raise ValueError(
                    f"the saved searcher has {field}={state[field]!r}, this one "
                    f"{mine[field]!r}; restore into a searcher made with the same arguments"
                )
        self.state = state_from_json(state["state"], self.state)
        self.num_proposed = int(state["num_proposed"])
        self._live = {k: (int(n), self.space.from_list(d)) for k, (n, d) in state["live"].items()}
        self._reports = {k: [list(r) for r in v] for k, v in state["reports"].items()}
        self._trials = [dict(t) for t in state["trials"]]

    def save(self, checkpoint_path: str) -> None:
        """Writes the state as JSON (Tune calls it to checkpoint the experiment)."""
        with open(checkpoint_path, "w") as f:
            json.dump(self.get_state(), f)

    def restore(self, checkpoint_path: str) -> None:
        """Reads a state written by :meth:`save`."""
        with open(checkpoint_path) as f:
            self.set_state(json.load(f))

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles the searcher with the experiment: the constructor arguments plus the
        # JSON state, not our internals.
        return {"args": self._args, "kwargs": self._kwargs, "json": json.dumps(self.get_state())}

    def __setstate__(self, pickled: dict[str, Any]) -> None:
        self._args = pickled["args"]
        self._kwargs = pickled["kwargs"]
        self._metric: str = self._kwargs["metric"]
        self._mode: str = self._kwargs["mode"]
        self._setup()
        self.set_state(json.loads(pickled["json"]))

    # -- views -----------------------------------------------------------------------------
    def trials(self) -> list[dict[str, Any]]:
        """Finished trials in the order they finished: id, tune_id, dna, status, value, time."""
        return [dict(t) for t in self._trials]

    def best(self) -> dict[str, Any] | None:
        """The finished trial with the best value (with its decisions), or None."""
        done = [t for t in self._trials if t["status"] == "complete"]
        if not done:
            return None
        top = max(done, key=lambda t: t["reward"])
        return {**top, "decisions": self.space.from_list(top["dna"]).to_dict()}
