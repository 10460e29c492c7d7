"""Define-by-run search spaces: decisions made inside ordinary (non-symbolic) code.

A function takes a decision handle and asks it for values::

    def train(h):
        width = h.oneof("width", [64, 128])
        opt = h.oneof("optimizer", ["adam", "sgd"])
        if opt == "sgd":
            momentum = h.floatv("momentum", 0.0, 0.99)
        ...

``pl.trace(train)`` wraps it. ``pl.space(traced)`` *discovers* the space by running the function
with an exploring handle: once with every choice at its first candidate, then once more for each
other candidate of each choice, recursively for decisions that only appear under a choice. That
costs ``1 + Σ (candidates - 1)`` runs, so the function should decide first and work later; the
handle's ``exploring`` flag is True during discovery so that expensive work can be skipped
(``if h.exploring: return``). ``pl.materialize(traced, dna)`` returns a replay: calling it runs
the function with the DNA's decisions.

Decisions are identified by name (so a function may ask in any order, or several times for the
same name with the same definition). A decision that appears only under some candidates of an
earlier choice is conditioned on that choice. Conditions are found per decision against one
parent choice; a decision that needs two choices at once to appear is conditioned on the last.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pliant.spaces.dna import DNA, Group, Slot, Space

_LITERALS = (type(None), bool, int, float, str)


class _Definition:
    __slots__ = ("candidates", "distinct", "hi", "k", "kind", "lo", "scale", "sorted")

    def __init__(self, kind: str, **kw: Any):
        self.kind = kind
        self.candidates: tuple = kw.get("candidates", ())
        self.k: int = kw.get("k", 1)
        self.distinct: bool = kw.get("distinct", True)
        self.sorted: bool = kw.get("sorted", False)
        self.lo = kw.get("lo", 0)
        self.hi = kw.get("hi", 0)
        self.scale: str = kw.get("scale", "linear")

    def key(self) -> tuple:
        return (
            self.kind,
            self.candidates,
            self.k,
            self.distinct,
            self.sorted,
            self.lo,
            self.hi,
            self.scale,
        )


class DecisionHandle:
    """Hands out decisions to a define-by-run function (see :func:`trace`).

    Example:
        >>> import pliant as pl
        >>> def config(h):
        ...     return {"width": h.oneof("width", [64, 128]), "lr": h.floatv("lr", 0.01, 0.1)}
        >>> traced = pl.trace(config)
        >>> pl.materialize(traced, {"width": 128, "lr": 0.05})()
        {'width': 128, 'lr': 0.05}
    """

    def __init__(self, decide: Callable[[str, _Definition], Any], exploring: bool):
        self._decide = decide
        self.exploring = exploring

    def oneof(self, name: str, candidates: Sequence[Any]) -> Any:
        """Returns one of ``candidates``."""
        cands = _check_candidates(name, candidates)
        return self._decide(name, _Definition("choice", candidates=cands))

    def manyof(
        self,
        name: str,
        k: int,
        candidates: Sequence[Any],
        *,
        distinct: bool = True,
        sorted: bool = False,
    ) -> list[Any]:
        """Returns a list of ``k`` of ``candidates``."""
        cands = _check_candidates(name, candidates)
        if type(k) is not int or k < 1 or (distinct and k > len(cands)):
            raise ValueError(f"decision {name!r}: k must be an int in [1, {len(cands)}], got {k!r}")
        return self._decide(
            name, _Definition("many", candidates=cands, k=k, distinct=distinct, sorted=sorted)
        )

    def floatv(self, name: str, lo: float, hi: float, *, scale: str = "linear") -> float:
        """Returns a float in ``[lo, hi]`` (``scale`` is ``'linear'`` or ``'log'``)."""
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
            raise ValueError(f"decision {name!r}: need finite lo ≤ hi, got {lo!r}, {hi!r}")
        if scale not in ("linear", "log") or (scale == "log" and lo <= 0):
            raise ValueError(
                f"decision {name!r}: scale must be 'linear' or 'log' (with lo > 0), "
                f"got {scale!r} with lo={lo!r}"
            )
        return self._decide(name, _Definition("float", lo=float(lo), hi=float(hi), scale=scale))

    def intv(self, name: str, lo: int, hi: int) -> int:
        """Returns an int in ``[lo, hi]``."""
        if type(lo) is not int or type(hi) is not int or lo > hi:
            raise ValueError(f"decision {name!r}: need int lo ≤ hi, got {lo!r}, {hi!r}")
        return self._decide(name, _Definition("int", lo=lo, hi=hi))


def _check_candidates(name: str, candidates: Sequence[Any]) -> tuple:
    if not isinstance(name, str) or not name:
        raise TypeError(f"a define-by-run decision needs a non-empty str name, got {name!r}")
    if isinstance(candidates, str) or not isinstance(candidates, Sequence) or not candidates:
        raise ValueError(
            f"decision {name!r}: candidates must be a non-empty list, got {candidates!r}"
        )
    return tuple(candidates)


class Replay:
    """A traced function bound to one DNA; call it to run the function with those decisions."""

    def __init__(self, traced: Traced, dna: DNA):
        self.traced, self.dna = traced, dna

    @property
    def decisions(self) -> dict[str, Any]:
        """The decisions of this DNA, by name (active ones only)."""
        return self.dna.to_dict()

    def __call__(self) -> Any:
        return self.traced.run(self.dna)

    def __repr__(self) -> str:
        return f"Replay({self.traced.fn.__name__}, {self.decisions})"


class Traced:
    """A define-by-run function and the search space discovered from it (see :func:`trace`)."""

    def __init__(self, fn: Callable[..., Any], args: tuple, kwargs: dict, max_runs: int):
        self.fn, self.args, self.kwargs, self.max_runs = fn, args, kwargs, max_runs
        self._space: Space | None = None
        self._slot_of: dict[str, int] = {}
        self._defs: dict[str, _Definition] = {}

    # -- discovery -------------------------------------------------------------------------
    @property
    def space(self) -> Space:
        """The discovered :class:`Space` (discovery runs the function on first access)."""
        if self._space is None:
            self._space = self._discover()
        return self._space

    def _run_exploring(self, fixed: dict[str, int]) -> list[str]:
        seen: list[str] = []

        def decide(name: str, d: _Definition) -> Any:
            known = self._defs.get(name)
            if known is None:
                self._defs[name] = d
            elif known.key() != d.key():
                raise ValueError(
                    f"decision {name!r} is defined twice differently; give the "
                    f"second one another name"
                )
            if name not in seen:
                seen.append(name)
            return _default(d, fixed.get(name, 0))

        self._runs += 1
        if self._runs > self.max_runs:
            raise RuntimeError(
                f"trace(): discovering the space of {self.fn.__name__} needed more than "
                f"max_runs={self.max_runs} runs; raise max_runs or use fewer choices"
            )
        self.fn(DecisionHandle(decide, exploring=True), *self.args, **self.kwargs)
        return seen

    def _discover(self) -> Space:
        self._runs = 0
        order: list[str] = []
        parent_of: dict[str, str] = {}  # decision -> the choice it is conditioned on
        present_under: dict[str, set[int]] = {}  # decision -> candidates of its parent

        def explore(
            fixed: dict[str, int], known: set[str], via: str | None, seen: list[str]
        ) -> None:
            new = [e for e in seen if e not in known]
            for e in new:
                if e not in order:
                    order.append(e)
                    if via is not None:
                        parent_of[e] = via
                if via is not None and parent_of.get(e) == via:
                    present_under.setdefault(e, set()).add(fixed[via])
            inner = known | set(new)
            for d in new:
                n = len(self._defs[d].candidates)
                if self._defs[d].kind != "choice" or n == 1:
                    continue
                runs = {0: seen}
                for c in range(1, n):
                    runs[c] = self._run_exploring({**fixed, d: c})
                after = order.index(d)
                for e in seen:  # decisions of this run that vanish under another candidate of d
                    if e in parent_of or order.index(e) <= after:
                        continue
                    where = {c for c in range(n) if e in runs[c]}
                    if len(where) < n:
                        parent_of[e], present_under[e] = d, where
                for c in range(1, n):
                    explore({**fixed, d: c}, inner, d, runs[c])

        explore({}, set(), None, self._run_exploring({}))
        slots: list[Slot] = []
        groups: list[Group] = []
        for name in order:
            d = self._defs[name]
            parent = parent_of.get(name)
            cond: tuple = ()
            if parent is not None:
                p = self._slot_of[parent]
                cond = tuple((p, c) for c in sorted(present_under[name]))
            self._slot_of[name] = len(slots)
            if d.kind == "choice":
                slots.append(
                    Slot(
                        name,
                        "choice",
                        len(d.candidates),
                        conditions=cond,
                        name=name,
                        literals=_literals(d.candidates),
                    )
                )
            elif d.kind == "many":
                first = len(slots)
                for t in range(d.k):
                    slots.append(
                        Slot(
                            f"{name}[{t}]",
                            "choice",
                            len(d.candidates),
                            conditions=cond,
                            name=f"{name}[{t}]",
                            literals=_literals(d.candidates),
                            group=len(groups),
                        )
                    )
                groups.append(Group(tuple(range(first, first + d.k)), d.distinct, d.sorted))
            elif d.kind == "float":
                slots.append(Slot(name, "float", 0, d.lo, d.hi, d.scale, cond, name))
            else:
                slots.append(Slot(name, "int", d.hi - d.lo + 1, d.lo, d.hi, "linear", cond, name))
        return Space(tuple(slots), tuple(groups))

    # -- replay ----------------------------------------------------------------------------
    def run(self, dna: Any) -> Any:
        """Runs the function with the decisions of ``dna`` (a DNA, dict or list)."""
        sp = self.space
        if not isinstance(dna, DNA):
            dna = sp.from_dict(dna) if isinstance(dna, dict) else sp.from_list(list(dna))
        sp.validate(dna)
        index = np.asarray(dna.index).tolist()
        value = np.asarray(dna.value).tolist()
        active = np.asarray(dna.active).tolist()

        def decide(name: str, d: _Definition) -> Any:
            known = self._defs.get(name)
            if known is None or known.key() != d.key():
                raise ValueError(
                    f"decision {name!r} is not part of the traced space (or is defined "
                    f"differently than during discovery); the function takes a path discovery "
                    f"did not see. Decisions must depend only on earlier decisions"
                )
            s = self._slot_of[name]
            if not active[s]:
                raise ValueError(
                    f"decision {name!r} is inactive in this DNA, yet the function "
                    f"asked for it; its condition was discovered wrongly"
                )
            if d.kind == "choice":
                return d.candidates[index[s]]
            if d.kind == "many":
                return [d.candidates[index[s + t]] for t in range(d.k)]
            if d.kind == "float":
                return value[s]
            return d.lo + index[s]

        return self.fn(DecisionHandle(decide, exploring=False), *self.args, **self.kwargs)

    def replay(self, dna: Any) -> Replay:
        """Binds a DNA; the returned :class:`Replay` runs the function when called."""
        sp = self.space
        if not isinstance(dna, DNA):
            dna = sp.from_dict(dna) if isinstance(dna, dict) else sp.from_list(list(dna))
        return Replay(self, sp.validate(dna))

    def __repr__(self) -> str:
        return f"pl.trace({self.fn.__name__})"


def _default(d: _Definition, choice: int) -> Any:
    if d.kind == "choice":
        return d.candidates[choice]
    if d.kind == "many":
        return [d.candidates[t if d.distinct else 0] for t in range(d.k)]
    if d.kind == "float":
        if d.scale == "log":
            return math.sqrt(d.lo * d.hi)
        return (d.lo + d.hi) / 2
    return d.lo


def _literals(candidates: tuple) -> tuple:
    return tuple(c if type(c) in _LITERALS else repr(c)[:80] for c in candidates)


def trace(fn: Callable[..., Any], *args: Any, max_runs: int = 10_000, **kwargs: Any) -> Traced:
    """Makes a define-by-run function (``fn(handle, *args, **kwargs)``) a search space.

    Args:
        fn: a function whose first argument is a :class:`DecisionHandle`.
        *args: further arguments passed on every run.
        max_runs: a bound on the runs spent discovering the space.
        **kwargs: further keyword arguments passed on every run.

    Returns:
        A :class:`Traced` value, usable wherever a search space is (``pl.space``,
        ``pl.materialize``, ``pl.random_sample``).

    Example:
        >>> import pliant as pl
        >>> def config(h):
        ...     opt = h.oneof("optimizer", ["adam", "sgd"])
        ...     momentum = h.floatv("momentum", 0.0, 0.9) if opt == "sgd" else None
        ...     return opt, momentum
        >>> traced = pl.trace(config)
        >>> [(s.id, s.conditions) for s in pl.space(traced).slots]
        [('optimizer', ()), ('momentum', ((0, 1),))]
        >>> pl.materialize(traced, {"optimizer": "sgd", "momentum": 0.5})()
        ('sgd', 0.5)
    """
    if not callable(fn):
        raise TypeError(f"trace() takes a function fn(handle, ...), got {fn!r}")
    return Traced(fn, args, kwargs, max_runs)
