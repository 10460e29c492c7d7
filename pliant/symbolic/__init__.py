"""The symbolic object model: immutable trees of symbolic calls, lists and dicts.

See ``pliant/symbolic/README.md`` for the invariants.
"""

from pliant.symbolic.formatting import format_value
from pliant.symbolic.keypath import KeyPath
from pliant.symbolic.node import (
    CallableSpec,
    Node,
    Symbolic,
    SymDict,
    SymList,
    freeze,
    make_node,
    symbolize,
)
from pliant.symbolic.ops import children, first_abstract_path, get, query, replace, traverse
from pliant.symbolic.serialization import from_json, load, save, to_json

__all__ = [
    "CallableSpec",
    "KeyPath",
    "Node",
    "SymDict",
    "SymList",
    "Symbolic",
    "children",
    "first_abstract_path",
    "format_value",
    "freeze",
    "from_json",
    "get",
    "load",
    "make_node",
    "query",
    "replace",
    "save",
    "symbolize",
    "to_json",
    "traverse",
]
