"""Adapters: PyGlove generators and Optuna samplers as pliant algorithms (host only).

Both wrap a live object of the other library (a ``pg.DNAGenerator`` or an ``optuna.Study``) that
is kept beside the pliant state, in the algorithm's closure, and rebuilt from the state's
history whenever the two disagree (after a restore, or when an old state is reused). So the
state itself stays a plain value: the space plus the ``(dna, reward)`` history, which
serializes to JSON, and a restored state continues exactly as the original would have.

Determinism: each proposal reseeds the other library from the key (PyGlove's generators draw
from Python's global ``random``, which is seeded for the call and restored afterwards; Optuna's
sampler is rebuilt with ``seed=key``), so the same keys and history give the same proposals.
"""

from __future__ import annotations

import itertools
import math
import random as _pyrandom
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from pliant.algorithms.base import Algorithm, Key, Reward, check_reward, host_rng, key_to_int
from pliant.spaces.dna import DNA, Space


class AdapterState(NamedTuple):
    """State of an adapter: the space and every ``(dna as list, reward, metadata)`` fed back."""

    space: Space
    history: tuple


def _dna_list(dna: DNA) -> tuple:
    return tuple(dna.to_list())


class _Live:
    """The other library's object, and how much of a history it has seen."""

    def __init__(self, obj: Any, history: tuple, extra: Any = None):
        self.obj, self.history, self.extra = obj, history, extra


def _synced(live: _Live | None, state: AdapterState) -> bool:
    return live is not None and live.history is state.history


# ----------------------------------------------------------------------------------------------
# PyGlove


def from_pyglove(generator: Any | Callable[[], Any]) -> Algorithm:
    """Drives a pliant space with a PyGlove ``DNAGenerator`` (host only).

    Args:
        generator: a ``pg.DNAGenerator`` (e.g. ``pg.evolution.regularized_evolution()``), or a
            zero-argument function returning a fresh one (needed to rebuild it after a restore;
            a generator instance is deep-copied for that purpose instead).

    Returns:
        A single-objective host algorithm (multi-objective if the generator says so).

    Example:
        >>> import pyglove as pg, pliant as pl
        >>> algo = pl.algorithms.from_pyglove(lambda: pg.geno.Random(seed=1))
        >>> space = pl.space({"w": pl.oneof([16, 32, 64]), "lr": pl.floatv(0.1, 1.0)})
        >>> dna, state = algo.propose(algo.init(space, 0), 7)
        >>> space.validate(dna) is dna
        True
    """
    import copy

    import pyglove as pg

    from pliant.spaces.pyglove import from_pg_dna, to_dna_spec, to_pg_dna

    if callable(generator) and not isinstance(generator, pg.DNAGenerator):
        factory = generator
    elif isinstance(generator, pg.DNAGenerator):
        template = copy.deepcopy(generator)
        factory = lambda: copy.deepcopy(template)
    else:
        raise TypeError(
            f"from_pyglove() takes a pg.DNAGenerator or a function returning one, got {generator!r}"
        )
    sample = factory()
    multi = bool(getattr(sample, "multi_objective", False))
    name = f"pyglove.{type(sample).__name__}"
    lives: dict[Space, _Live] = {}

    def live_for(state: AdapterState) -> _Live:
        live = lives.get(state.space)
        if _synced(live, state):
            return live  # type: ignore[return-value]
        gen = factory()
        gen.setup(to_dna_spec(state.space))
        if state.history:
            gen.recover([_pg_item(state.space, d, r, meta) for d, r, meta in state.history])
        live = lives[state.space] = _Live(gen, state.history, {})
        return live

    def init(space: Space, key: Key) -> AdapterState:
        to_dna_spec(space)  # fail early on spaces PyGlove cannot express
        return AdapterState(space, ())

    def propose(state: AdapterState, key: Key) -> tuple[DNA, AdapterState]:
        live = live_for(state)
        saved = _pyrandom.getstate()
        _pyrandom.seed(key_to_int(key))
        try:
            pg_dna = live.obj.propose()
        finally:
            _pyrandom.setstate(saved)
        dna = from_pg_dna(state.space, pg_dna)
        live.extra[_dna_list(dna)] = pg_dna  # its metadata matters to PyGlove's feedback
        return dna, state

    def feedback(state: AdapterState, dna: DNA, reward: Reward) -> AdapterState:
        r = check_reward(reward, multi_objective=multi, algorithm=name)
        if dna.space is not state.space and dna.space != state.space:
            raise ValueError(f"{name}: feedback for a DNA of another space")
        live = live_for(state)
        key = _dna_list(dna)
        pg_dna = live.extra.pop(key, None)
        if pg_dna is None:  # not proposed by this generator (e.g. a warm start)
            pg_dna = to_pg_dna(state.space, dna, spec=live.obj.dna_spec)
            _mark_foreign(pg_dna)
        live.obj.feedback(pg_dna, r)
        meta = tuple(sorted((str(k), _plain_meta(v)) for k, v in pg_dna.metadata.items()))
        new = AdapterState(state.space, (*state.history, (key, r, meta)))
        live.history = new.history
        return new

    return Algorithm(init, propose, feedback, name=name, multi_objective=multi)


def _plain_meta(v: Any) -> Any:
    if isinstance(v, list | tuple):
        return tuple(_plain_meta(x) for x in v)
    if isinstance(v, np.generic):
        return v.item()
    return v


def _mark_foreign(pg_dna: Any) -> None:
    # PyGlove's evolution reads these on feedback; a DNA it did not propose joins the population
    # as an ordinary member of generation 0.
    pg_dna.set_metadata("initial_population", False)
    pg_dna.set_metadata("generation_id", 0)


def _pg_item(space: Space, d: tuple, reward: Any, meta: tuple) -> tuple:
    from pliant.spaces.pyglove import to_pg_dna

    pg_dna = to_pg_dna(space, space.from_list(list(d)))
    for k, v in meta:
        pg_dna.set_metadata(k, list(v) if isinstance(v, tuple) else v)
    return (pg_dna, reward)


# ----------------------------------------------------------------------------------------------
# Optuna

_MAX_GROUP_CHOICES = 10_000


class _OptunaLayout(NamedTuple):
    """How the slots of a space map onto Optuna parameters."""

    params: tuple  # per parameter: (name, kind, slots, extra)


def _optuna_layout(space: Space) -> _OptunaLayout:
    params: list[tuple[str, str, tuple[int, ...], Any]] = []
    done: set[int] = set()
    for i, slot in enumerate(space.slots):
        if i in done:
            continue
        if slot.group >= 0:
            group = space.groups[slot.group]
            n, k = slot.num_choices, len(group.slots)
            if group.distinct:
                combos = itertools.combinations if group.sorted else itertools.permutations
                count = math.comb(n, k) if group.sorted else math.perm(n, k)
                options = list(combos(range(n), k)) if count <= _MAX_GROUP_CHOICES else None
            else:
                count = math.comb(n + k - 1, k) if group.sorted else n**k
                maker = (
                    itertools.combinations_with_replacement
                    if group.sorted
                    else lambda r, kk: itertools.product(r, repeat=kk)
                )
                options = list(maker(range(n), k)) if count <= _MAX_GROUP_CHOICES else None
            if options is None:
                raise ValueError(
                    f"from_optuna(): the manyof at slot {slot.id!r} has {count} possible picks, "
                    f"more than Optuna can hold as one categorical ({_MAX_GROUP_CHOICES}); "
                    f"use a pliant algorithm for this space"
                )
            params.append((slot.id, "group", group.slots, tuple(options)))
            done.update(group.slots)
        else:
            params.append((slot.id, slot.kind, (i,), None))
    return _OptunaLayout(tuple(params))


def _distribution(space: Space, param: tuple) -> Any:
    import optuna

    _, kind, slots, options = param
    slot = space.slots[slots[0]]
    if kind == "group":
        return optuna.distributions.CategoricalDistribution(list(range(len(options))))
    if kind == "choice":
        return optuna.distributions.CategoricalDistribution(list(range(slot.num_choices)))
    if kind == "int":
        return optuna.distributions.IntDistribution(
            int(slot.lo), int(slot.hi), log=slot.scale == "log"
        )
    return optuna.distributions.FloatDistribution(slot.lo, slot.hi, log=slot.scale == "log")


def from_optuna(sampler: Any | Callable[[int], Any] | None = None) -> Algorithm:
    """Drives a pliant space with an Optuna sampler (host only), e.g. TPE.

    Each decision becomes an Optuna parameter named by its slot id (a categorical over candidate
    indices, an int or a float with its log scale); decisions under unchosen branches are not
    asked for, as in Optuna's define-by-run spaces; a manyof becomes one categorical over its
    valid picks.

    Args:
        sampler: a function ``seed -> optuna sampler`` (default: ``TPESampler(seed=seed)`` with
            Optuna's defaults), or a sampler instance, used as is (then proposals are
            reproducible only as far as that sampler is).

    Returns:
        A single-objective host algorithm.

    Example:
        >>> import pliant as pl
        >>> algo = pl.algorithms.from_optuna()
        >>> space = pl.space({"w": pl.oneof([16, 32, 64]), "lr": pl.floatv(1e-3, 1.0, scale="log")})
        >>> state = algo.init(space, 0)
        >>> dna, state = algo.propose(state, 1)
        >>> state = algo.feedback(state, dna, 0.5)
        >>> len(state.history)
        1
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if sampler is None:
        factory: Callable[[int], Any] = lambda seed: optuna.samplers.TPESampler(seed=seed)
    elif isinstance(sampler, optuna.samplers.BaseSampler):
        factory = lambda seed: sampler
    elif callable(sampler):
        factory = sampler
    else:
        raise TypeError(
            f"from_optuna() takes an optuna sampler or a function seed -> sampler, got {sampler!r}"
        )
    name = "optuna"
    lives: dict[Space, _Live] = {}

    def live_for(state: AdapterState) -> _Live:
        live = lives.get(state.space)
        if _synced(live, state):
            return live  # type: ignore[return-value]
        study = optuna.create_study(direction="maximize", sampler=factory(0))
        layout = _optuna_layout(state.space)
        for d, r, _ in state.history:
            dna = state.space.from_list(list(d))
            params, dists = _params_of(state.space, layout, dna)
            study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=r))
        live = lives[state.space] = _Live(study, state.history, layout)
        return live

    def init(space: Space, key: Key) -> AdapterState:
        _optuna_layout(space)  # fail early on spaces Optuna cannot hold
        return AdapterState(space, ())

    def propose(state: AdapterState, key: Key) -> tuple[DNA, AdapterState]:
        live = live_for(state)
        study, layout = live.obj, live.extra
        study.sampler = factory(int(host_rng(key).integers(2**32)))  # all bits of the key
        trial = study.ask()
        space = state.space
        index = np.zeros(space.num_slots, np.int32)
        value = np.zeros(space.num_slots, np.float64)
        active = np.zeros(space.num_slots, bool)
        for param in layout.params:
            pname, kind, slots, options = param
            slot = space.slots[slots[0]]
            if slot.conditions and not any(active[p] and index[p] == c for p, c in slot.conditions):
                continue
            dist = _distribution(space, param)
            v = trial._suggest(pname, dist)
            if kind == "group":
                index[list(slots)] = options[int(v)]
                active[list(slots)] = True
            elif kind == "float":
                value[slots[0]] = float(v)
                active[slots[0]] = True
            elif kind == "int":
                index[slots[0]] = int(v) - int(slot.lo)
                active[slots[0]] = True
            else:
                index[slots[0]] = int(v)
                active[slots[0]] = True
        # The trial stays open in the study; feedback closes it (or adds a new one).
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return space.make_dna(index, value), state

    def feedback(state: AdapterState, dna: DNA, reward: Reward) -> AdapterState:
        r = float(check_reward(reward, multi_objective=False, algorithm=name))  # type: ignore[arg-type]
        if dna.space is not state.space and dna.space != state.space:
            raise ValueError(f"{name}: feedback for a DNA of another space")
        live = live_for(state)
        params, dists = _params_of(state.space, live.extra, dna)
        live.obj.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=r))
        new = AdapterState(state.space, (*state.history, (_dna_list(dna), r, ())))
        live.history = new.history
        return new

    return Algorithm(init, propose, feedback, name=name)


def _params_of(space: Space, layout: _OptunaLayout, dna: DNA) -> tuple[dict, dict]:
    params: dict[str, Any] = {}
    dists: dict[str, Any] = {}
    index, value, active = (np.asarray(a) for a in (dna.index, dna.value, dna.active))
    for param in layout.params:
        pname, kind, slots, options = param
        if not active[slots[0]]:
            continue
        slot = space.slots[slots[0]]
        if kind == "group":
            v: Any = options.index(tuple(int(index[s]) for s in slots))
        elif kind == "float":
            v = float(value[slots[0]])
        elif kind == "int":
            v = int(index[slots[0]]) + int(slot.lo)
        else:
            v = int(index[slots[0]])
        params[pname] = v
        dists[pname] = _distribution(space, param)
    return params, dists
