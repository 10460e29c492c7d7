"""A readable ``repr`` for symbolic trees: one line when it fits, indented lines otherwise."""

from __future__ import annotations

import enum
from typing import Any

from pliant.symbolic.node import Node, Symbolic, SymDict, SymList, import_path

_WIDTH = 88


def format_value(value: Any, indent: int = 0) -> str:
    """Formats a symbolic value as Python-like text that shows the tree.

    Example:
        >>> import pliant as pl
        >>> @pl.symbolize
        ... def block(op, width):
        ...     pass
        >>> print(format_value(pl.freeze({"blocks": [block("conv", 64)] * 2})))
        {'blocks': [block(op='conv', width=64), block(op='conv', width=64)]}
    """
    flat = _one_line(value)
    if len(flat) + indent <= _WIDTH or not _has_children(value):
        return flat
    pad = " " * (indent + 2)
    if isinstance(value, Node):
        items = [f"{pad}{k}={format_value(v, indent + 2)}" for k, v in value.args.items()]
        return f"{value.spec.name}(\n" + ",\n".join(items) + ")"
    if isinstance(value, SymDict):
        items = [f"{pad}{k!r}: {format_value(v, indent + 2)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "}"
    open_, close = ("[", "]") if isinstance(value, SymList) else ("(", ")")
    items = [pad + format_value(v, indent + 2) for v in value]
    trail = "," if len(value) == 1 and open_ == "(" else ""
    return open_ + "\n" + ",\n".join(items) + trail + close


def _has_children(value: Any) -> bool:
    return (
        isinstance(value, Node | SymDict | tuple)
        and len(value.args if isinstance(value, Node) else value) > 0
    )


def _one_line(value: Any) -> str:
    if isinstance(value, Node):
        args = ", ".join(f"{k}={_one_line(v)}" for k, v in value.args.items())
        return f"{value.spec.name}({args})"
    if isinstance(value, SymList):
        return "[" + ", ".join(_one_line(v) for v in value) + "]"
    if type(value) is tuple:
        inner = ", ".join(_one_line(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, SymDict):
        return "{" + ", ".join(f"{k!r}: {_one_line(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Symbolic):
        return repr(value)
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, type) or callable(value):
        return getattr(value, "__qualname__", None) or import_path(value).replace(":", ".")
    return repr(value)
