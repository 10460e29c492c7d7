"""Partial search, as PyGlove's ``where=``: decide only the placeholders a predicate selects.

``pl.flows.partial(space_value, where)`` is a space whose examples are *sub-spaces*: the
selected decisions are made, every other placeholder stays in place, unresolved. An outer loop
over it yields values that an inner search then searches::

    hw_and_arch = {"resolution": pl.oneof([4, 6, 8], hints="hw"), "width": pl.oneof([16, 32])}
    outer = pl.flows.partial(hw_and_arch, pl.flows.tagged("hw"))
    for sub_space, feedback in pl.sample(outer, pl.algorithms.grid(), 3):
        inner = feedback.search(sub_space, evaluate, budget=10)   # searches "width" only
        feedback(inner.best.reward)

``pl.search`` and ``pl.sample`` take ``where=`` as a shorthand. The predicate sees each
placeholder with its key path: ``where(path, placeholder)`` or ``where(placeholder)``;
:func:`by_name`, :func:`by_path` and :func:`tagged` build the common ones. An unselected
placeholder is kept whole, with whatever its candidates hold (a decision under it is decided
by the inner search, once its parent is).
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from pliant.spaces.compiler import compile_space, materialize
from pliant.spaces.dna import Space
from pliant.spaces.placeholders import Placeholder
from pliant.symbolic import KeyPath, freeze, replace, symbolize, traverse
from pliant.symbolic.node import Node

Where = Callable[..., bool]


@symbolize
def unresolved(index: int) -> None:
    """Stands for the ``index``-th unselected placeholder while the outer space is compiled."""
    raise TypeError("an unresolved placeholder of a partial space cannot be built")


def _is_hole(v: Any) -> bool:
    return isinstance(v, Node) and v.fn is unresolved.target


def _as_where(where: Any) -> Callable[[KeyPath, Placeholder], bool]:
    if not callable(where):
        raise TypeError(
            f"where must be a predicate (path, placeholder) -> bool or placeholder -> bool, e.g. "
            f"pl.flows.tagged('hw'), got {where!r}"
        )
    try:
        params = [
            p
            for p in inspect.signature(where).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
        two = len(params) >= 2
    except (TypeError, ValueError):
        two = False
    if two:
        return lambda path, p: bool(where(path, p))
    return lambda path, p: bool(where(p))


class Partial:
    """A space over the selected decisions of ``value``; its examples are sub-spaces.

    Attributes:
        value: the full space value.
        space: the :class:`~pliant.spaces.dna.Space` of the selected decisions.
        selected: key paths (text) of the selected placeholders.
        unresolved: key paths (text) of the placeholders left to the sub-spaces.

    Example:
        >>> import pliant as pl
        >>> full = {"res": pl.oneof([4, 8], hints="hw"), "width": pl.oneof([16, 32])}
        >>> outer = pl.flows.partial(full, pl.flows.tagged("hw"))
        >>> [s.id for s in outer.space.slots], outer.unresolved
        (['res'], ['width'])
        >>> outer.materialize({"res": 8})
        {'res': 8, 'width': oneof(candidates=[16, 32])}
    """

    def __init__(self, value: Any, where: Any):
        from pliant.spaces.tracing import Traced

        if isinstance(value, Traced | Partial):
            raise TypeError(
                f"partial() takes a symbolic space value, got {type(value).__name__}; a traced "
                f"(define-by-run) function decides its own placeholders: pass the outer decisions "
                f"to it as arguments instead"
            )
        self.value = freeze(value)
        keep = _as_where(where)
        holes: dict[KeyPath, Placeholder] = {}
        selected: list[KeyPath] = []
        names: dict[str, set[bool]] = {}
        for path, v in traverse(self.value):
            if not isinstance(v, Placeholder):
                continue
            inside = any(path[: len(h)] == h for h in holes)
            chosen = not inside and keep(path, v)
            if v.decision_name is not None:
                names.setdefault(v.decision_name, set()).add(chosen or inside)
            if inside:
                continue
            if chosen:
                selected.append(path)
            else:
                holes[path] = v
        split = sorted(n for n, kinds in names.items() if len(kinds) > 1)
        if split:
            raise ValueError(
                f"partial(): the shared decision(s) {split} are selected in one place and not in "
                f"another; select every placeholder of a name or none"
            )
        self.holes = list(holes.values())
        self.masked = replace(self.value, {p: unresolved(i) for i, p in enumerate(holes)})
        self.space: Space = compile_space(self.masked).space
        self.selected = [str(p) for p in selected]
        self.unresolved = [str(p) for p in holes]

    def materialize(self, dna: Any) -> Any:
        """The sub-space a DNA of :attr:`space` picks: selected decisions made, others left."""
        value = materialize(self.masked, dna)
        found: dict[str | KeyPath, Any] = {
            p: self.holes[v.index] for p, v in traverse(value) if _is_hole(v)
        }
        return replace(value, found) if found else value

    def __repr__(self) -> str:
        return f"Partial(selected={self.selected}, unresolved={self.unresolved})"


def partial(value: Any, where: Any) -> Partial:
    """A space over only the decisions that ``where`` selects (PyGlove's ``where=``).

    Args:
        value: a space value (a symbolic value with placeholders).
        where: ``(path, placeholder) -> bool`` or ``placeholder -> bool``; e.g.
            :func:`tagged`, :func:`by_name` or :func:`by_path`.

    Returns:
        A :class:`Partial`, which ``pl.search`` and ``pl.sample`` accept as a space; its
        examples are sub-spaces.

    Raises:
        TypeError: if ``where`` is not callable.
        ValueError: if a shared decision is selected in one place and not in another.

    Example:
        >>> import pliant as pl
        >>> full = {"res": pl.oneof([4, 8]), "width": pl.oneof([16, 32])}
        >>> pl.flows.partial(full, pl.flows.by_name("res"))
        Partial(selected=['res'], unresolved=['width'])
    """
    return Partial(value, where)


def tagged(*tags: Any) -> Where:
    """Selects placeholders whose ``hints`` is one of ``tags`` or a list holding one of them.

    Example:
        >>> import pliant as pl
        >>> tagged("hw")(pl.oneof([1, 2], hints=["hw", "fast"]))
        True
    """

    def where(p: Placeholder) -> bool:
        hints = p.args.get("hints")
        if isinstance(hints, Sequence) and not isinstance(hints, str):
            return any(t in hints for t in tags)
        return hints in tags

    return where


def by_name(*names: str) -> Where:
    """Selects placeholders by key path (``'blocks[0].op'``) or decision name (``name=``).

    Example:
        >>> import pliant as pl
        >>> pl.flows.partial({"a": pl.oneof([1, 2]), "b": pl.oneof([3, 4], name="bee")},
        ...                  by_name("bee")).selected
        ['b']
    """
    wanted = set(names)

    def where(path: KeyPath, p: Placeholder) -> bool:
        return str(path) in wanted or p.decision_name in wanted

    return where


def by_path(*patterns: str) -> Where:
    """Selects placeholders whose key path matches a glob pattern (``'blocks[*].op'``).

    Example:
        >>> import pliant as pl
        >>> space = {"hw": {"res": pl.oneof([4, 8]), "bs": pl.oneof([8, 16])}, "w": pl.intv(1, 3)}
        >>> pl.flows.partial(space, by_path("hw.*")).selected
        ['hw.res', 'hw.bs']
    """

    def where(path: KeyPath, p: Placeholder) -> bool:
        text = str(path).replace("[", "<").replace("]", ">")  # brackets are glob syntax
        return any(
            fnmatch.fnmatchcase(text, pat.replace("[", "<").replace("]", ">")) for pat in patterns
        )

    return where


def partial_of(value: Any, where: Any) -> Any:
    """``value``, or ``partial(value, where)`` when ``where`` is given (for pl.search/sample)."""
    if where is None:
        return value
    if isinstance(value, Partial):
        raise ValueError("where= was given for a space that is already a pl.flows.partial(...)")
    return partial(value, where)
