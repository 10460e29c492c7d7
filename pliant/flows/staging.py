"""Staged search: the best trials of one search narrow the space of the next.

``pl.flows.narrow(space_value, result, top_k=10, mode=...)`` looks at the ``top_k`` complete
trials of ``result`` and rewrites ``space_value`` (the space that result searched), in the
spirit of search-space shrinkage (LISSNAS):

- ``mode='keep_seen'``: each choice keeps only the candidates that the top-k picked (a choice
  left with one candidate becomes that candidate); a float or int range shrinks to the top-k's
  minimum and maximum (``floats='keep'`` keeps float ranges whole).
- ``mode='fix_agreed'``: a decision on which the top-k agree becomes its value; the others are
  unchanged.

Conditional decisions are judged on the trials in which they were active: a decision under a
branch that no top trial took is dropped with its branch (``keep_seen``) or left as it is. The
result is an ordinary space value: print it, search it, narrow it again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pliant.flows.result import Result
from pliant.flows.store import TrialRecord
from pliant.spaces.compiler import compile_space
from pliant.spaces.dna import Space
from pliant.spaces.placeholders import FloatV, IntV, ManyOf, OneOf, Placeholder
from pliant.spaces.placeholders import floatv as _floatv
from pliant.spaces.placeholders import intv as _intv
from pliant.spaces.placeholders import manyof as _manyof
from pliant.spaces.placeholders import oneof as _oneof
from pliant.spaces.tracing import Traced
from pliant.symbolic import KeyPath, freeze, replace
from pliant.symbolic.node import Node, SymDict, SymList

MODES = ("keep_seen", "fix_agreed")


def top_trials(
    result: Result, top_k: int, key: Callable[[TrialRecord], float] | None = None
) -> list[TrialRecord]:
    """The ``top_k`` complete trials of a result, best first (by reward, or by ``key``).

    Example:
        >>> import pliant as pl
        >>> r = pl.search({"x": pl.oneof([1, 2, 3])}, lambda v: v["x"], pl.algorithms.grid(), 3)
        >>> [t.decisions["x"] for t in top_trials(r, 2)]
        [3, 2]
    """
    if type(top_k) is not int or top_k < 1:
        raise ValueError(f"top_k must be a positive int, got {top_k!r}")

    def first(r: TrialRecord) -> float:
        return float(r.reward[0] if isinstance(r.reward, tuple) else r.reward)

    done = sorted(result.completed, key=key or first, reverse=True)
    if not done:
        raise ValueError(f"study {result.study!r} has no complete trial to narrow the space with")
    return done[:top_k]


class _Top:
    """The top-k DNA as arrays: ``index``, ``value``, ``active`` of shape [k, slots]."""

    def __init__(self, space: Space, records: list[TrialRecord]):
        dnas = [space.from_list(r.dna) for r in records]
        self.index = np.stack([np.asarray(d.index) for d in dnas])
        self.value = np.stack([np.asarray(d.value, dtype=np.float64) for d in dnas])
        self.active = np.stack([np.asarray(d.active) for d in dnas])


def narrow(
    space_value: Any,
    result: Result,
    top_k: int = 10,
    *,
    mode: str = "keep_seen",
    floats: str = "range",
    key: Callable[[TrialRecord], float] | None = None,
) -> Any:
    """Narrows a space to what the best trials of a search on it chose (see module docstring).

    Args:
        space_value: the space value ``result`` searched.
        result: a search's result (``pl.search`` or ``pl.load_result``).
        top_k: how many of the best complete trials to follow.
        mode: ``'keep_seen'`` or ``'fix_agreed'``.
        floats: ``'range'`` (shrink float ranges to the top-k's, in ``keep_seen``) or ``'keep'``.
        key: ranks trials (default: the reward of the first objective, larger is better).

    Returns:
        The narrowed space value (concrete when every decision was fixed).

    Raises:
        ValueError: for a bad mode, top_k or floats, no complete trial, or a result of another
            space.
        TypeError: for a traced (define-by-run) space.

    Example:
        >>> import pliant as pl
        >>> space = {"a": pl.oneof([1, 2, 3, 4]), "b": pl.oneof(["x", "y"])}
        >>> r = pl.search(space, lambda v: v["a"] + (v["b"] == "y"), pl.algorithms.grid(), 8)
        >>> narrow(space, r, top_k=3)
        {'a': oneof(candidates=[3, 4]), 'b': oneof(candidates=['x', 'y'])}
        >>> narrow(space, r, top_k=2, mode="fix_agreed")
        {'a': oneof(candidates=[1, 2, 3, 4]), 'b': 'y'}
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if floats not in ("range", "keep"):
        raise ValueError(f"floats must be 'range' or 'keep', got {floats!r}")
    if isinstance(space_value, Traced):
        raise TypeError(
            "narrow() rewrites symbolic space values; a traced (define-by-run) space cannot be "
            "rewritten. Narrow a symbolic space, or fix decisions in the traced function"
        )
    compiled = compile_space(space_value)
    if compiled.space.fingerprint != result.space.fingerprint:
        raise ValueError(
            f"the result (study {result.study!r}) searched another space (fingerprint "
            f"{result.space.fingerprint}) than the given space value ({compiled.space.fingerprint})"
        )
    top = _Top(result.space, top_trials(result, top_k, key))
    ids = {s.id: i for i, s in enumerate(result.space.slots)}
    names = {s.name: i for i, s in enumerate(result.space.slots) if s.name is not None}
    rewriter = _Rewriter(top, ids, names, mode, floats)
    return rewriter.rewrite(compiled.value, KeyPath())


class _Rewriter:
    def __init__(
        self, top: _Top, ids: dict[str, int], names: dict[str, int], mode: str, floats: str
    ):
        self.top, self.ids, self.names, self.mode, self.floats = top, ids, names, mode, floats

    def slot(self, p: Placeholder, path: KeyPath) -> int:
        name = p.decision_name
        return self.names[name] if name is not None else self.ids[str(path)]

    def rewrite(self, v: Any, path: KeyPath) -> Any:
        if isinstance(v, Placeholder):
            return self.placeholder(v, path)
        if isinstance(v, Node):
            new = {k: self.rewrite(a, path.child(k)) for k, a in v.args.items()}
            changed: dict[str | KeyPath, Any] = {k: x for k, x in new.items() if x is not v.args[k]}
            return replace(v, changed) if changed else v
        if isinstance(v, SymDict):
            return freeze({k: self.rewrite(a, path.child(k)) for k, a in v.items()})
        if isinstance(v, SymList):
            return freeze([self.rewrite(a, path.child(i)) for i, a in enumerate(v)])
        if isinstance(v, tuple):
            return tuple(self.rewrite(a, path.child(i)) for i, a in enumerate(v))
        return v

    def _cands(self, p: Placeholder, path: KeyPath, keep: list[int]) -> list[Any]:
        cpath = path.child("candidates")
        return [self.rewrite(p.args["candidates"][j], cpath.child(j)) for j in keep]

    def placeholder(self, p: Placeholder, path: KeyPath) -> Any:
        common = {"name": p.decision_name, "hints": p.args.get("hints")}
        if isinstance(p, ManyOf):
            return self.many(p, path, common)
        s = self.slot(p, path)
        on = self.top.active[:, s]
        if isinstance(p, OneOf):
            seen = sorted({int(i) for i in self.top.index[on, s]})
            follow = len(seen) == 1 if self.mode == "fix_agreed" else bool(seen)
            keep = seen if follow else list(range(len(p.args["candidates"])))
            cands = _unique(self._cands(p, path, keep))
            return cands[0] if len(cands) == 1 else _oneof(cands, **common)
        if isinstance(p, IntV):
            vals = sorted({int(p.args["lo"]) + int(i) for i in self.top.index[on, s]})
            if not vals or (self.mode == "fix_agreed" and len(vals) > 1):
                return p
            return vals[0] if len(vals) == 1 else _intv(vals[0], vals[-1], **common)
        if isinstance(p, FloatV):
            fvals = sorted({float(x) for x in self.top.value[on, s]})
            if not fvals:
                return p
            if len(fvals) == 1:
                return fvals[0]
            if self.mode == "fix_agreed" or self.floats == "keep":
                return p
            return _floatv(fvals[0], fvals[-1], scale=p.args.get("scale", "linear"), **common)
        return p

    def many(self, p: Placeholder, path: KeyPath, common: dict[str, Any]) -> Any:
        k = int(p.args["k"])
        cols = [self.ids.get(f"{path}[{i}]") for i in range(k)]
        if any(c is None for c in cols):
            return p  # a shared (named) manyof: left as it is
        rows = [
            tuple(int(self.top.index[t, c]) for c in cols)  # type: ignore[call-overload]
            for t in range(self.top.index.shape[0])
            if self.top.active[t, cols[0]]
        ]
        if not rows:
            return p
        n = len(p.args["candidates"])
        if self.mode == "fix_agreed":
            if len(set(rows)) > 1:
                return p
            cands = list(p.args["candidates"])
            cpath = path.child("candidates")
            return freeze([self.rewrite(cands[j], cpath.child(j)) for j in rows[0]])
        keep = sorted({j for row in rows for j in row})
        if len(keep) == n:
            keep = list(range(n))
        distinct = p.args.get("distinct", True)
        return _manyof(
            k,
            self._cands(p, path, keep),
            distinct=distinct,
            sorted=p.args.get("sorted", False),
            **common,
        )


def _unique(values: list[Any]) -> list[Any]:
    """Drops values equal to an earlier one (narrowing can make two candidates equal)."""
    out: list[Any] = []
    for v in values:
        if not any(type(u) is type(v) and u == v for u in out):
            out.append(v)
    return out
