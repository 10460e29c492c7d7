"""Placeholders: the symbolic nodes that mark a choice in a tree.

``pl.oneof``, ``pl.manyof``, ``pl.floatv`` and ``pl.intv`` return nodes that sit anywhere in a
symbolic tree (arguments of symbolized calls, lists, dicts). A tree holding one is a search
space: it cannot be built, only compiled by ``pl.space``, sampled and materialized. Candidates
may hold further placeholders (conditional sub-spaces); ``name=`` makes several places share one
decision. ``hints`` is free-form, JSON-able data for the user (tags to select decisions by).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pliant.symbolic import CallableSpec, KeyPath, Node, freeze, make_node


class Placeholder(Node):
    """Base class of placeholder nodes: abstract, so a tree holding one cannot build."""

    __slots__ = ()
    abstract = True

    @property
    def decision_name(self) -> str | None:
        """The shared decision name, if any."""
        return self._args.get("name")


class OneOf(Placeholder):
    """A choice of exactly one candidate (see :func:`oneof`)."""

    __slots__ = ()


class ManyOf(Placeholder):
    """A choice of ``k`` candidates (see :func:`manyof`)."""

    __slots__ = ()


class FloatV(Placeholder):
    """A float in ``[lo, hi]`` (see :func:`floatv`)."""

    __slots__ = ()


class IntV(Placeholder):
    """An integer in ``[lo, hi]`` (see :func:`intv`)."""

    __slots__ = ()


def _check_name(name: Any, where: str) -> None:
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(f"{where}: name must be a non-empty str or None, got {name!r}")


def _candidates(candidates: Any, where: str) -> Any:
    if isinstance(candidates, str | bytes) or not isinstance(candidates, Sequence):
        raise TypeError(
            f"{where}: candidates must be a list of values, got {candidates!r}; e.g. "
            f"oneof([32, 64, 128])"
        )
    if len(candidates) == 0:
        raise ValueError(f"{where}: candidates must not be empty")
    frozen = freeze(list(candidates), KeyPath(("candidates",)), where.split("(")[0])
    for j, c in enumerate(frozen):
        for i in range(j):
            if type(frozen[i]) is type(c) and frozen[i] == c:
                raise ValueError(
                    f"{where}: candidates {i} and {j} are equal ({c!r}); each candidate must "
                    f"differ, or DNA and values could not be mapped one to one"
                )
    return frozen


def oneof(candidates: Sequence[Any], *, name: str | None = None, hints: Any = None) -> OneOf:
    """A decision that picks one of ``candidates``.

    Args:
        candidates: values to choose from; they may hold further placeholders, which are then
            decided only when their candidate is chosen.
        name: share this decision with every other placeholder of the same name.
        hints: free-form JSON-able data (e.g. a tag) kept with the decision.

    Raises:
        TypeError: if candidates is not a list or name is not a str.
        ValueError: if candidates is empty.

    Example:
        >>> import pliant as pl
        >>> pl.oneof([32, 64, 128])
        oneof(candidates=[32, 64, 128])
    """
    _check_name(name, "oneof()")
    args: dict[str, Any] = {"candidates": _candidates(candidates, "oneof()")}
    if name is not None:
        args["name"] = name
    if hints is not None:
        args["hints"] = freeze(hints, KeyPath(("hints",)), "oneof")
    return make_node(_ONEOF, args, OneOf)  # type: ignore[return-value]


def manyof(
    k: int,
    candidates: Sequence[Any],
    *,
    distinct: bool = True,
    sorted: bool = False,
    name: str | None = None,
    hints: Any = None,
) -> ManyOf:
    """A decision that picks ``k`` of ``candidates``; it materializes to a list of length k.

    Args:
        k: how many to pick (1 ≤ k; k ≤ len(candidates) when distinct).
        candidates: values to choose from (may hold placeholders).
        distinct: no candidate is picked twice.
        sorted: picks come in candidate order (so the list is a set, not a sequence).
        name: share this decision.
        hints: free-form JSON-able data.

    Raises:
        ValueError: if k is out of range.

    Example:
        >>> import pliant as pl
        >>> pl.manyof(2, ["a", "b", "c"], sorted=True)
        manyof(k=2, candidates=['a', 'b', 'c'], sorted=True)
    """
    _check_name(name, "manyof()")
    cands = _candidates(candidates, "manyof()")
    if type(k) is not int or k < 1 or (distinct and k > len(cands)):
        limit = f" and at most {len(cands)} (the number of candidates) when distinct" * distinct
        raise ValueError(f"manyof(): k must be an int ≥ 1{limit}, got {k!r}")
    args: dict[str, Any] = {"k": k, "candidates": cands}
    if not distinct:
        args["distinct"] = False
    if sorted:
        args["sorted"] = True
    if name is not None:
        args["name"] = name
    if hints is not None:
        args["hints"] = freeze(hints, KeyPath(("hints",)), "manyof")
    return make_node(_MANYOF, args, ManyOf)  # type: ignore[return-value]


def floatv(
    lo: float, hi: float, *, scale: str = "linear", name: str | None = None, hints: Any = None
) -> FloatV:
    """A float decision in ``[lo, hi]``, searched on a linear or log scale.

    Raises:
        ValueError: if the bounds are not finite, lo > hi, the scale is unknown, or a log scale
            has lo ≤ 0.

    Example:
        >>> import pliant as pl
        >>> pl.floatv(1e-4, 1e-1, scale="log")
        floatv(lo=0.0001, hi=0.1, scale='log')
    """
    _check_name(name, "floatv()")
    for label, v in (("lo", lo), ("hi", hi)):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ValueError(f"floatv(): {label} must be a finite number, got {v!r}")
    if lo > hi:
        raise ValueError(f"floatv(): lo must be ≤ hi, got lo={lo!r} > hi={hi!r}")
    if scale not in ("linear", "log"):
        raise ValueError(f"floatv(): scale must be 'linear' or 'log', got {scale!r}")
    if scale == "log" and lo <= 0:
        raise ValueError(f"floatv(): a log scale needs lo > 0, got lo={lo!r}")
    args: dict[str, Any] = {"lo": float(lo), "hi": float(hi)}
    if scale != "linear":
        args["scale"] = scale
    if name is not None:
        args["name"] = name
    if hints is not None:
        args["hints"] = freeze(hints, KeyPath(("hints",)), "floatv")
    return make_node(_FLOATV, args, FloatV)  # type: ignore[return-value]


def intv(lo: int, hi: int, *, name: str | None = None, hints: Any = None) -> IntV:
    """An integer decision in ``[lo, hi]`` (both inclusive).

    Raises:
        ValueError: if the bounds are not ints or lo > hi.

    Example:
        >>> import pliant as pl
        >>> pl.intv(1, 8)
        intv(lo=1, hi=8)
    """
    _check_name(name, "intv()")
    for label, v in (("lo", lo), ("hi", hi)):
        if type(v) is not int:
            raise ValueError(f"intv(): {label} must be an int, got {v!r}")
    if lo > hi:
        raise ValueError(f"intv(): lo must be ≤ hi, got lo={lo!r} > hi={hi!r}")
    args: dict[str, Any] = {"lo": lo, "hi": hi}
    if name is not None:
        args["name"] = name
    if hints is not None:
        args["hints"] = freeze(hints, KeyPath(("hints",)), "intv")
    return make_node(_INTV, args, IntV)  # type: ignore[return-value]


# The JSON loader rebuilds placeholder nodes through these attributes (see serialization).
oneof.__pliant_node_class__ = OneOf  # type: ignore[attr-defined]
manyof.__pliant_node_class__ = ManyOf  # type: ignore[attr-defined]
floatv.__pliant_node_class__ = FloatV  # type: ignore[attr-defined]
intv.__pliant_node_class__ = IntV  # type: ignore[attr-defined]

_ONEOF = CallableSpec(oneof)
_MANYOF = CallableSpec(manyof)
_FLOATV = CallableSpec(floatv)
_INTV = CallableSpec(intv)
