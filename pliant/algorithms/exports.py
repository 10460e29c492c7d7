"""pliant's algorithms inside Optuna and PyGlove: :func:`to_optuna` and :func:`to_pyglove`.

The other direction from :mod:`pliant.algorithms.adapters`: a pliant algorithm becomes an
``optuna.samplers.BaseSampler`` or a ``pg.DNAGenerator``, so users of either library keep their
loop (``study.optimize``, ``pg.sample``) and swap in regularized evolution, REINFORCE, TabNAS or
the neural predictor.

Optuna and PyGlove are imported inside the functions (``import pliant`` stays cheap). The two
classes are built on first use and are found by name in this module (``exports.PliantSampler``,
``exports.PliantGenerator``). A sampler survives ``copy.deepcopy`` (the copy rebuilds its state
from the study); pickling it fails, as pliant's algorithms are closures.

Optuna distributions map onto slots of a flat :class:`~pliant.spaces.dna.Space`, one per
parameter, named by the parameter (see :func:`optuna_codec`):

=================================================  ============================================
Optuna                                             pliant slot
=================================================  ============================================
``FloatDistribution(lo, hi)`` / ``log=True``       float slot ``[lo, hi]``, linear / log scale
``FloatDistribution(lo, hi, step=s)``              int slot over the grid index ``k = 0..n``
``IntDistribution(lo, hi)`` / ``log=True``         int slot ``lo..hi``, linear / log scale
``IntDistribution(lo, hi, step=s)``                int slot over the grid index ``k = 0..n``
``CategoricalDistribution(choices)``               choice slot over the choice indices
=================================================  ============================================

pliant has no stepped float, so a stepped float (and a stepped int) is searched as the index
``k`` of its grid point ``lo + k * s``: an ordered int slot, which is what the grid is. The
codec keeps ``lo`` and ``s`` and gives the value back on the grid (exactly Optuna's grid point,
clipped to ``hi``), so nothing is lost either way: every Optuna value maps to one DNA and back.
"""

from __future__ import annotations

import functools
import math
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from pliant.algorithms.base import Algorithm, step_key
from pliant.spaces.dna import DNA, Slot, Space

if TYPE_CHECKING:
    import optuna
    import pyglove as pg

__all__ = ["OptunaCodec", "optuna_codec", "to_optuna", "to_pyglove"]

_INIT_STEP = (1 << 64) - 1  # the init key's step: no trial number reaches it
_PLAIN = (type(None), bool, int, float, str)
_MAX_PENDING = 10_000  # proposals a PyGlove generator remembers until their feedback


def _fresh_seed() -> int:
    return int.from_bytes(os.urandom(8), "little") >> 1


# ----------------------------------------------------------------------------------------------
# Optuna distributions <-> pliant slots


class _Param(NamedTuple):
    name: str
    kind: str  # "choice", "float", "int", "grid" (stepped float or int: index k of lo + k*step)
    dist: Any
    lo: float
    step: float
    n: int  # grid: number of grid points - 1


class OptunaCodec(NamedTuple):
    """A flat pliant Space for a dict of Optuna distributions, and the maps both ways.

    Attributes:
        space: one slot per parameter (single-value distributions left out), in name order.
        params: per slot, how its values map (internal).

    Example:
        >>> import optuna
        >>> codec = optuna_codec({"x": optuna.distributions.FloatDistribution(0, 1, step=0.25)})
        >>> codec.space.slots[0].kind, codec.space.slots[0].hi
        ('int', 4.0)
        >>> codec.to_params(codec.space.from_list([3]))
        {'x': 0.75}
        >>> codec.to_dna({"x": 0.75}).to_list()
        [3]
    """

    space: Space
    params: tuple

    def to_params(self, dna: DNA) -> dict[str, Any]:
        """Optuna parameter values (external representation, plain Python types) of ``dna``."""
        index, value = np.asarray(dna.index), np.asarray(dna.value, np.float64)
        out: dict[str, Any] = {}
        for i, p in enumerate(self.params):
            d = p.dist
            if p.kind == "choice":
                out[p.name] = d.choices[int(index[i])]
            elif p.kind == "float":
                out[p.name] = float(min(max(float(value[i]), d.low), d.high))
            elif p.kind == "int":
                out[p.name] = int(p.lo) + int(index[i])
            else:
                k = min(max(int(index[i]), 0), p.n)
                if isinstance(p.dist.low, int) and isinstance(p.dist.step, int):
                    out[p.name] = int(min(d.low + k * d.step, d.high))
                else:
                    out[p.name] = float(min(d.low + k * d.step, d.high))
        return out

    def to_dna(self, params: Mapping[str, Any], distributions: Mapping | None = None) -> DNA | None:
        """The DNA of Optuna values ``params`` (external representation), or None.

        None when a parameter is missing, or (when ``distributions`` is given, e.g. a trial's)
        was drawn from another distribution than this codec's.
        """
        n = len(self.params)
        index, value = np.zeros(n, np.int64), np.zeros(n, np.float64)
        for i, p in enumerate(self.params):
            if p.name not in params:
                return None
            if distributions is not None and distributions.get(p.name) != p.dist:
                return None
            x = p.dist.to_internal_repr(params[p.name])
            if p.kind == "choice":
                index[i] = int(x)
            elif p.kind == "float":
                value[i] = float(x)
            elif p.kind == "int":
                index[i] = round(float(x)) - int(p.lo)
            else:
                index[i] = min(max(round((float(x) - p.lo) / p.step), 0), p.n)
        return self.space.make_dna(index.astype(np.int32), value)


def _param(name: str, dist: Any) -> tuple[_Param, Slot]:
    import optuna.distributions as od

    if isinstance(dist, od.CategoricalDistribution):
        choices = tuple(dist.choices)
        plain = all(
            type(c) in _PLAIN and not (isinstance(c, float) and math.isnan(c)) for c in choices
        )
        slot = Slot(name, "choice", len(choices), literals=choices if plain else ())
        return _Param(name, "choice", dist, 0.0, 1.0, len(choices) - 1), slot
    if isinstance(dist, od.FloatDistribution):
        if dist.step is None:
            scale = "log" if dist.log else "linear"
            slot = Slot(name, "float", 0, lo=dist.low, hi=dist.high, scale=scale)
            return _Param(name, "float", dist, dist.low, 0.0, 0), slot
        n = round((dist.high - dist.low) / dist.step)
        return _Param(name, "grid", dist, dist.low, dist.step, n), Slot(name, "int", n + 1, 0, n)
    if isinstance(dist, od.IntDistribution):
        if dist.step == 1:
            scale = "log" if dist.log else "linear"
            n = dist.high - dist.low + 1
            slot = Slot(name, "int", n, lo=dist.low, hi=dist.high, scale=scale)
            return _Param(name, "int", dist, dist.low, 1.0, n - 1), slot
        n = (dist.high - dist.low) // dist.step
        return _Param(name, "grid", dist, dist.low, dist.step, n), Slot(name, "int", n + 1, 0, n)
    raise TypeError(
        f"to_optuna(): parameter {name!r} has a distribution pliant cannot search: {dist!r}; "
        f"expected a Float-, Int- or CategoricalDistribution"
    )


def optuna_codec(distributions: Mapping[str, Any]) -> OptunaCodec:
    """The pliant Space of Optuna ``distributions`` (name -> distribution) and its maps.

    Single-value distributions are left out (Optuna's trial fills them in without asking the
    sampler); the slots are in name order.

    Raises:
        TypeError: for a distribution that is not a Float-, Int- or CategoricalDistribution.

    Example:
        >>> import optuna.distributions as od
        >>> codec = optuna_codec({
        ...     "lr": od.FloatDistribution(1e-4, 1e-1, log=True),
        ...     "units": od.IntDistribution(16, 256, log=True),
        ...     "act": od.CategoricalDistribution(["relu", "gelu"]),
        ... })
        >>> [(s.id, s.kind, s.scale) for s in codec.space.slots]
        [('act', 'choice', 'linear'), ('lr', 'float', 'log'), ('units', 'int', 'log')]
    """
    pairs = []
    for name, dist in sorted(distributions.items(), key=lambda kv: kv[0]):
        single = getattr(dist, "single", None)
        if callable(single) and single():
            continue
        pairs.append(_param(name, dist))
    space = Space([s for _, s in pairs])
    return OptunaCodec(space, tuple(p for p, _ in pairs))


# ----------------------------------------------------------------------------------------------
# Optuna sampler


class _Run:
    """The algorithm's live state for one study and one relative search space."""

    def __init__(self, where: tuple, space_key: tuple, codec: OptunaCodec, state: Any):
        self.where, self.space_key, self.codec, self.state = where, space_key, codec, state
        self.seen: set[int] = set()  # trial numbers already considered (fed or skipped)
        self.fed = 0  # how many rewards reached the algorithm


def to_optuna(
    algorithm: Algorithm,
    *,
    seed: int | None = None,
    independent_sampler: optuna.samplers.BaseSampler | None = None,
) -> optuna.samplers.BaseSampler:
    """A pliant algorithm as an Optuna sampler (``optuna.samplers.BaseSampler``).

    Optuna's spaces are define-by-run, so the algorithm searches the *relative* search space:
    the parameters, with their distributions, that every completed trial shares (Optuna's
    ``IntersectionSearchSpace``, as its CMA-ES sampler uses), less single-value ones, as a flat
    pliant Space (see :func:`optuna_codec`). Parameters outside it (new ones, conditional ones,
    ones whose range changes between trials, and every parameter of the first trial) are drawn
    by ``independent_sampler``.

    How trials reach the algorithm: each ``sample_relative`` call reads the study's trials and
    feeds the COMPLETE ones it has not seen yet, in trial-number order (replay, not
    ``after_trial``). So the sampler follows whatever the storage holds: trials finished by
    other threads (``n_jobs``) or processes, trials added with ``study.add_trial``, and a
    resumed study (a new sampler on an existing storage rebuilds its state from the trials; for
    algorithms whose ``propose`` keeps no state, such as random search, regularized evolution
    and REINFORCE, it then proposes what the first sampler would have, given the same seed).

    What the algorithm sees: the objective values of COMPLETE trials, negated for ``minimize``
    directions (pliant maximizes). Failed trials (Optuna records a NaN objective as failed) and
    pruned trials never reach it, as in Optuna's CMA-ES and NSGA-II samplers; neither do
    COMPLETE trials with an infinite value (pliant rewards are finite) or that lack one of the
    relative space's parameters. Multi-objective studies need a multi-objective algorithm
    (e.g. ``nsga2()``), which gets one reward per direction.

    Cost of a changed relative space: when the shared parameters change (a parameter appears in
    every trial, or its range changes), the algorithm is started afresh on the new space with
    ``init`` and every finished trial is fed again: O(trials) feedback calls, plus a new compile
    for JAX algorithms (REINFORCE traces its update once per space) and a refit for the neural
    predictor. A study whose parameters settle after the first few trials pays this a few
    times at the start.

    Determinism: the n-th trial's proposal uses the key ``step_key(seed, trial.number)``; with
    ``n_jobs=1`` the same seed gives the same study. ``reseed_rng`` draws a new seed (Optuna
    calls it in each worker thread when ``n_jobs > 1``) and reseeds the independent sampler.

    Args:
        algorithm: a pliant :class:`~pliant.algorithms.base.Algorithm`.
        seed: seed of the proposals (and of the default independent sampler); None draws one.
        independent_sampler: the sampler for parameters outside the relative space (default
            ``optuna.samplers.RandomSampler(seed=seed)``).

    Returns:
        An ``optuna.samplers.BaseSampler``.

    Raises:
        TypeError: if ``algorithm`` is not a pliant Algorithm, or ``independent_sampler`` not
            an Optuna sampler.
        ValueError: (when sampling) for a multi-objective study and a single-objective
            algorithm.

    Example:
        >>> import optuna, pliant as pl
        >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
        >>> sampler = pl.algorithms.to_optuna(pl.algorithms.regularized_evolution(8, 3), seed=0)
        >>> study = optuna.create_study(sampler=sampler)
        >>> study.optimize(lambda t: (t.suggest_float("x", -1, 1) - 0.5) ** 2, n_trials=30)
        >>> len(study.trials), study.best_value < 0.05
        (30, True)
    """
    if not isinstance(algorithm, Algorithm):
        raise TypeError(f"to_optuna() takes a pliant Algorithm, got {algorithm!r:.100}")
    return _sampler_class()(algorithm, seed=seed, independent_sampler=independent_sampler)


@functools.cache
def _sampler_class() -> type:
    import optuna
    from optuna.samplers import BaseSampler
    from optuna.search_space import IntersectionSearchSpace
    from optuna.study import StudyDirection
    from optuna.trial import TrialState

    class PliantSampler(BaseSampler):
        """A pliant algorithm as an Optuna sampler; built by :func:`to_optuna`."""

        def __init__(
            self, algorithm: Algorithm, *, seed: int | None = None, independent_sampler: Any = None
        ) -> None:
            self._algorithm = algorithm
            self._seed = _fresh_seed() if seed is None else int(seed)
            if independent_sampler is None:
                independent_sampler = optuna.samplers.RandomSampler(seed=seed)
            elif not isinstance(independent_sampler, BaseSampler):
                raise TypeError(
                    f"to_optuna(): independent_sampler must be an Optuna sampler, got "
                    f"{independent_sampler!r:.100}"
                )
            self._independent = independent_sampler
            self._lock = threading.Lock()
            self._run: _Run | None = None
            # Per study: Optuna's incremental intersection (it only reads trials added since
            # the last call; recomputing it from all trials cost O(trials) per trial).
            self._spaces: dict[tuple, Any] = {}

        def __str__(self) -> str:
            return f"PliantSampler({self._algorithm.name})"

        # Copies (copy.deepcopy) leave the lock and the live state behind: the state is rebuilt
        # from the study's trials on the next relative proposal.
        def __getstate__(self) -> dict[str, Any]:
            skip = ("_lock", "_run", "_spaces")
            return {k: v for k, v in self.__dict__.items() if k not in skip}

        def __setstate__(self, state: dict[str, Any]) -> None:
            self.__dict__.update(state)
            self._lock = threading.Lock()
            self._run = None
            self._spaces = {}

        @property
        def algorithm(self) -> Algorithm:
            """The pliant algorithm this sampler drives."""
            return self._algorithm

        @property
        def state(self) -> Any:
            """The algorithm's current state (None before the first relative proposal)."""
            return None if self._run is None else self._run.state

        def reseed_rng(self) -> None:
            with self._lock:
                self._seed = _fresh_seed()
            self._independent.reseed_rng()

        def _check(self, study: Any) -> None:
            if len(study.directions) > 1 and not self._algorithm.multi_objective:
                raise ValueError(
                    f"to_optuna({self._algorithm.name}): the study has "
                    f"{len(study.directions)} objectives but {self._algorithm.name} optimizes "
                    f"one; use a multi-objective algorithm such as pl.algorithms.nsga2()"
                )

        def infer_relative_search_space(self, study: Any, trial: Any) -> dict[str, Any]:
            self._check(study)
            with self._lock:
                where = (id(study._storage), study._study_id)
                if where not in self._spaces:
                    self._spaces[where] = IntersectionSearchSpace()
                space = self._spaces[where].calculate(study)
            return {k: v for k, v in sorted(space.items()) if not v.single()}

        def sample_relative(
            self, study: Any, trial: Any, search_space: dict[str, Any]
        ) -> dict[str, Any]:
            self._check(study)
            if not any(not d.single() for d in search_space.values()):
                return {}
            with self._lock:
                run = self._sync(study, search_space)
                key = step_key(self._seed, trial.number)
                dna, run.state = self._algorithm.propose(run.state, key)
                return run.codec.to_params(dna)

        def sample_independent(
            self, study: Any, trial: Any, param_name: str, param_distribution: Any
        ) -> Any:
            self._check(study)
            return self._independent.sample_independent(
                study, trial, param_name, param_distribution
            )

        def before_trial(self, study: Any, trial: Any) -> None:
            self._independent.before_trial(study, trial)

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            self._independent.after_trial(study, trial, state, values)

        def _sync(self, study: Any, search_space: dict[str, Any]) -> _Run:
            where = (id(study._storage), study._study_id)
            space_key = tuple(sorted(search_space.items(), key=lambda kv: kv[0]))
            run = self._run
            if run is None or run.where != where or run.space_key != space_key:
                codec = optuna_codec(search_space)
                state = self._algorithm.init(codec.space, step_key(self._seed, _INIT_STEP))
                run = self._run = _Run(where, space_key, codec, state)
            signs = [1.0 if d == StudyDirection.MAXIMIZE else -1.0 for d in study.directions]
            multi = self._algorithm.multi_objective
            trials = study._get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            for t in sorted(trials, key=lambda t: t.number):
                if t.number in run.seen:
                    continue
                run.seen.add(t.number)
                values = t.values
                if values is None or not all(math.isfinite(v) for v in values):
                    continue
                dna = run.codec.to_dna(t.params, t.distributions)
                if dna is None:
                    continue
                rewards = tuple(s * float(v) for s, v in zip(signs, values))
                reward = rewards if multi else rewards[0]
                run.state = self._algorithm.feedback(run.state, dna, reward)
                run.fed += 1
            return run

    PliantSampler.__module__ = __name__
    PliantSampler.__qualname__ = "PliantSampler"
    return PliantSampler


def __getattr__(name: str) -> Any:
    # The classes are built on first use (they subclass Optuna's and PyGlove's); pickle and
    # users find them here by name.
    if name == "PliantSampler":
        return _sampler_class()
    if name == "PliantGenerator":
        return _generator_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ----------------------------------------------------------------------------------------------
# PyGlove generator


def to_pyglove(algorithm: Algorithm, seed: int | None = None) -> pg.DNAGenerator:
    """A pliant algorithm as a PyGlove ``pg.DNAGenerator``, for ``pg.sample(space, generator)``.

    ``setup(dna_spec)`` converts PyGlove's DNASpec to a pliant Space
    (:func:`pliant.spaces.pyglove.from_dna_spec`) and calls ``algorithm.init``; ``propose``
    returns the algorithm's proposal as a ``pg.DNA`` of that spec; ``feedback`` hands the reward
    back (PyGlove's rewards are maximized, as pliant's); ``recover(history)`` (PyGlove's replay
    after a restart) replays each past trial as the original run made it: the proposal with the
    same key, then the feedback of the recorded DNA and reward. So a generator recovered from
    the history of a sequential run proposes next exactly what the original would have, even
    for algorithms whose ``propose`` changes their state (the neural predictor).

    The i-th proposal uses the key ``step_key(seed, i)``.

    Args:
        algorithm: a pliant :class:`~pliant.algorithms.base.Algorithm`; a multi-objective one
            makes a multi-objective generator (rewards are tuples).
        seed: seed of the proposals; None (the default, as in PyGlove) draws one.

    Returns:
        A ``pg.DNAGenerator`` (a ``PliantGenerator``).

    Raises:
        TypeError: if ``algorithm`` is not a pliant Algorithm.

    Example:
        >>> import pyglove as pg, pliant as pl
        >>> space = pg.Dict(x=pg.oneof([1, 2, 3]), y=pg.floatv(0.0, 1.0))
        >>> gen = pl.algorithms.to_pyglove(pl.algorithms.regularized_evolution(8, 3), seed=0)
        >>> for value, feedback in pg.sample(space, gen, num_examples=20):
        ...     feedback(value.x + value.y)
        >>> gen.num_feedbacks
        20
    """
    if not isinstance(algorithm, Algorithm):
        raise TypeError(f"to_pyglove() takes a pliant Algorithm, got {algorithm!r:.100}")
    return _generator_class()(
        algorithm=algorithm, seed=_fresh_seed() if seed is None else int(seed)
    )


@functools.cache
def _generator_class() -> type:
    import pyglove as pg

    @pg.members(
        [
            ("algorithm", pg.typing.Any(), "The pliant Algorithm."),
            ("seed", pg.typing.Int(), "Seed of the proposals."),
        ]
    )
    class PliantGenerator(pg.DNAGenerator):
        """A pliant algorithm as a PyGlove DNAGenerator; built by :func:`to_pyglove`."""

        def _on_bound(self) -> None:
            super()._on_bound()
            self._space: Space | None = None
            self._state: Any = None
            # Proposals awaiting feedback: id -> (pg DNA, its numbers, pliant DNA). pg.sample
            # feeds back the very object proposed, so feedback skips the conversion (and
            # PyGlove's validation of it), a third of this route's own cost.
            self._proposed: dict[int, tuple[Any, list, DNA]] = {}

        @property
        def multi_objective(self) -> bool:
            return bool(self.algorithm.multi_objective)

        @property
        def space(self) -> Space:
            """The pliant Space of the DNASpec this generator was set up with."""
            if self._space is None:
                raise ValueError("to_pyglove(): call setup(dna_spec) first (pg.sample does)")
            return self._space

        @property
        def state(self) -> Any:
            """The algorithm's current state."""
            return self._state

        def _setup(self) -> None:
            from pliant.spaces.pyglove import from_dna_spec

            self._space = from_dna_spec(self.dna_spec)
            self._state = self.algorithm.init(self._space, step_key(self.seed, _INIT_STEP))
            self._proposed = {}

        def _key(self, i: int) -> int:
            return step_key(self.seed, i)

        def _propose(self) -> Any:
            from pliant.spaces.pyglove import to_pg_dna

            space = self.space
            dna, self._state = self.algorithm.propose(self._state, self._key(self.num_proposals))
            pg_dna = to_pg_dna(space, dna, spec=self.dna_spec)
            if len(self._proposed) >= _MAX_PENDING:  # proposals never fed back: drop the oldest
                self._proposed.pop(next(iter(self._proposed)))
            self._proposed[id(pg_dna)] = (pg_dna, pg_dna.to_numbers(), dna)
            return pg_dna

        def _to_dna(self, pg_dna: Any) -> DNA:
            from pliant.spaces.pyglove import from_pg_dna

            hit = self._proposed.pop(id(pg_dna), None)
            if hit is not None and hit[0] is pg_dna and hit[1] == pg_dna.to_numbers():
                return hit[2]
            return from_pg_dna(self.space, pg_dna)

        def _feedback(self, dna: Any, reward: Any) -> None:
            self._state = self.algorithm.feedback(self._state, self._to_dna(dna), reward)

        def _replay(self, trial_id: int, dna: Any, reward: Any) -> None:
            # recover() counts proposals after each _replay; replay the proposal with the key
            # the original used, then its feedback, so a state that propose changes comes back.
            _, self._state = self.algorithm.propose(self._state, self._key(self.num_proposals))
            if reward is not None:
                self._feedback(dna, reward)

    PliantGenerator.__qualname__ = "PliantGenerator"
    return PliantGenerator
