"""JSON round trip of symbolic values, safe by construction.

Format (version 1): ``{"__pliant__": 1, "value": <v>}`` where ``<v>`` is

- ``null``, booleans, integers, strings and finite floats as themselves;
  ``{"__float__": "nan" | "inf" | "-inf"}`` for the others;
- a JSON array for a list, ``{"__tuple__": [...]}`` for a tuple;
- a JSON object for a dict, or ``{"__dict__": {...}}`` when a key starts with ``"__"``;
- ``{"__call__": "module:qualname", "args": {...}}`` for a node;
- ``{"__ref__": "module:qualname"}`` for a function or class held as a value
  (``"symbolic": true`` when it was a symbolized callable), ``{"__enum__": ..., "name": ...}``
  for an enum member.

Loading never executes code it was not allowed to: a callable is rebuilt only when it was
symbolized in this process, when ``allowed=`` names it or its module, or (for plain references
held as values, never for nodes) when it lives in one of :data:`SAFE_REFERENCE_MODULES`. A module
is imported only for names on ``allowed=`` or in those safe modules. No pickle anywhere.
"""

from __future__ import annotations

import enum
import importlib
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from typing import Any

from pliant.symbolic.keypath import KeyPath
from pliant.symbolic.node import (
    _SYMBOLIZED,
    CallableSpec,
    Node,
    Symbolic,
    SymDict,
    SymList,
    freeze,
    import_path,
    make_node,
    spec_of,
    symbolic_of,
)

FORMAT_VERSION = 1

#: Modules whose functions and classes may be loaded as plain values (never called by loading).
SAFE_REFERENCE_MODULES = ("jax.nn", "jax.numpy", "jax._src.nn", "flax.nnx", "flax.linen", "optax")

# Each level of nesting takes two Python frames to decode; 200 levels stays well inside the
# default recursion limit (1000) and far above any real configuration.
_MAX_DEPTH = 200


def to_json(value: Any, *, indent: int | None = None) -> str:
    """Serializes a symbolic value to a JSON string.

    Args:
        value: a symbolic value (plain lists and dicts are frozen first).
        indent: passed to ``json.dumps`` for pretty output.

    Raises:
        TypeError: naming the path of a value that JSON cannot hold (a local function, a lambda).

    Example:
        >>> to_json({"lr": 0.1, "sizes": (1, 2)})
        '{"__pliant__": 1, "value": {"lr": 0.1, "sizes": {"__tuple__": [1, 2]}}}'
    """
    encoded = _encode(freeze(value), KeyPath())
    return json.dumps(
        {"__pliant__": FORMAT_VERSION, "value": encoded}, indent=indent, allow_nan=False
    )


def _encode(value: Any, where: KeyPath) -> Any:
    t = type(value)
    if t is float:
        if math.isfinite(value):
            return value
        return {"__float__": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if value is None or t is bool or t is int or t is str:
        return value
    if isinstance(value, Node):
        return {
            "__call__": _checked_path(value.fn, where),
            "args": {k: _encode(v, where.child(k)) for k, v in value.args.items()},
        }
    if isinstance(value, SymList):
        return [_encode(v, where.child(i)) for i, v in enumerate(value)]
    if t is tuple:
        return {"__tuple__": [_encode(v, where.child(i)) for i, v in enumerate(value)]}
    if isinstance(value, SymDict):
        body = {k: _encode(v, where.child(k)) for k, v in value.items()}
        return {"__dict__": body} if any(k.startswith("__") for k in body) else body
    if isinstance(value, enum.Enum):
        return {"__enum__": _checked_path(type(value), where), "name": value.name}
    if isinstance(value, Symbolic):
        return {"__ref__": _checked_path(value.target, where), "symbolic": True}
    if callable(value):
        return {"__ref__": _checked_path(value, where)}
    raise TypeError(
        f"to_json(): value at path {str(where)!r} of type {type(value).__name__} cannot be "
        f"written as JSON: {value!r}"
    )


def _checked_path(obj: Any, where: KeyPath) -> str:
    path = import_path(obj)
    module, _, qualname = path.partition(":")
    if "<locals>" in qualname or "<lambda>" in qualname:
        raise TypeError(
            f"to_json(): the callable at path {str(where)!r} ({qualname}) is a lambda or a "
            f"local function, which cannot be found again by import path; define it at "
            f"module level"
        )
    found = _lookup(sys.modules.get(module), qualname)
    if found is not obj and not (isinstance(found, Symbolic) and found.target is obj):
        raise TypeError(
            f"to_json(): the callable at path {str(where)!r} is not reachable as {path!r}; "
            f"define it at module level under its own name"
        )
    return path


def _lookup(module: Any, qualname: str) -> Any:
    obj = module
    for part in qualname.split("."):
        if obj is None:
            return None
        obj = getattr(obj, part, None)
    return obj


def from_json(text: str | bytes, *, allowed: Iterable[str | Callable[..., Any]] = ()) -> Any:
    """Rebuilds a symbolic value from :func:`to_json` output.

    Args:
        text: the JSON text.
        allowed: callables, exact paths (``'pkg.models:Block'``) or module names/prefixes
            (``'pkg.models'``) whose callables may be rebuilt and imported. Callables symbolized
            in this process are always allowed.

    Returns:
        The symbolic value, equal to the one written.

    Raises:
        ValueError: for malformed JSON, an unknown format version or marker, a callable that is
            not allowed, a path that does not resolve, or arguments the callable does not take;
            the message names the key path.

    Example:
        >>> import pliant as pl
        >>> from_json(to_json([1, (2.5, None)])) == pl.freeze([1, (2.5, None)])
        True
        >>> from_json('{"__pliant__": 1, "value": {"__call__": "os:system", "args": {}}}')
        Traceback (most recent call last):
        ...
        ValueError: at path '': 'os:system' is not allowed to load...
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="strict")
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise ValueError(f"malformed JSON: {e}") from None
    except RecursionError:
        raise ValueError("malformed JSON: nested too deeply") from None
    if not isinstance(doc, dict) or "__pliant__" not in doc or "value" not in doc:
        raise ValueError(
            "not a pliant symbolic value: expected an object with keys '__pliant__' and 'value', "
            f"got {_preview(doc)}"
        )
    if doc["__pliant__"] != FORMAT_VERSION:
        raise ValueError(
            f"unsupported format version {doc['__pliant__']!r}; this pliant reads version "
            f"{FORMAT_VERSION}"
        )
    try:
        return _Decoder(allowed).decode(doc["value"], KeyPath(), 0)
    except RecursionError:
        # Reached only when the caller's own stack is already deep.
        raise ValueError("symbolic value nested too deeply for the Python stack") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(
        f"malformed JSON: {name} is not valid JSON (write non-finite floats as "
        f'{{"__float__": "nan"}})'
    )


def _preview(doc: Any) -> str:
    text = repr(doc)
    return text if len(text) < 80 else text[:77] + "..."


class _Decoder:
    def __init__(self, allowed: Iterable[str | Callable[..., Any]]):
        self.objects: set[int] = set()
        self.prefixes: list[str] = []
        if isinstance(allowed, str):
            allowed = [allowed]
        for item in allowed:
            if isinstance(item, str):
                self.prefixes.append(item)
            elif isinstance(item, Symbolic):
                self.objects.add(id(item.target))
            else:
                self.objects.add(id(item))

    def decode(self, v: Any, where: KeyPath, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise ValueError(f"at path {str(where)!r}: nested deeper than {_MAX_DEPTH} levels")
        if v is None or isinstance(v, bool | int | str):
            return v
        if isinstance(v, float):
            return v
        if isinstance(v, list):
            return SymList(self.decode(x, where.child(i), depth + 1) for i, x in enumerate(v))
        if not isinstance(v, dict):
            raise ValueError(f"at path {str(where)!r}: unexpected JSON value {_preview(v)}")
        markers = [k for k in v if k.startswith("__")]
        if not markers:
            return SymDict({k: self.decode(x, where.child(k), depth + 1) for k, x in v.items()})
        marker = markers[0]
        if marker == "__call__":
            return self._node(v, where, depth)
        if marker == "__tuple__" and isinstance(v["__tuple__"], list) and len(v) == 1:
            return tuple(
                self.decode(x, where.child(i), depth + 1) for i, x in enumerate(v["__tuple__"])
            )
        if marker == "__dict__" and isinstance(v["__dict__"], dict) and len(v) == 1:
            body = v["__dict__"]
            return SymDict({k: self.decode(x, where.child(k), depth + 1) for k, x in body.items()})
        if marker == "__float__" and len(v) == 1 and v["__float__"] in ("nan", "inf", "-inf"):
            return freeze(float(v["__float__"]))
        if marker == "__ref__" and isinstance(v["__ref__"], str):
            obj = self._resolve(v["__ref__"], where, node=False)
            return symbolic_of(obj) if v.get("symbolic") else obj
        if marker == "__enum__" and isinstance(v.get("__enum__"), str):
            cls = self._resolve(v["__enum__"], where, node=False)
            name = v.get("name")
            if not (isinstance(cls, type) and issubclass(cls, enum.Enum)) or not (
                isinstance(name, str) and name in cls.__members__
            ):
                raise ValueError(f"at path {str(where)!r}: {v!r} is not a member of an enum")
            return cls[v["name"]]
        raise ValueError(f"at path {str(where)!r}: malformed or unknown marker in {_preview(v)}")

    def _node(self, v: dict, where: KeyPath, depth: int) -> Node:
        path, args = v.get("__call__"), v.get("args", {})
        if not isinstance(path, str) or not isinstance(args, dict) or set(v) - {"__call__", "args"}:
            raise ValueError(f"at path {str(where)!r}: malformed node {_preview(v)}")
        fn = self._resolve(path, where, node=True)
        spec = spec_of(fn)
        decoded = {}
        for name, raw in args.items():
            here = where.child(name)
            try:
                spec.check_arg_name(name, here)
            except ValueError as e:
                raise ValueError(str(e)) from None
            decoded[name] = self.decode(raw, here, depth + 1)
        missing = [n for n in spec.required if n not in decoded]
        if missing:
            raise ValueError(f"at path {str(where)!r}: {spec.name} misses required {missing}")
        if hasattr(fn, "__pliant_node_class__"):
            # Nodes of pliant's own factories (placeholders) are rebuilt through the factory,
            # so that their arguments are checked as when a user writes them.
            try:
                return fn(**decoded)  # type: ignore[no-any-return]
            except (TypeError, ValueError) as e:
                raise ValueError(f"at path {str(where)!r}: {e}") from None
        ordered = {n: decoded[n] for n in spec.params if n in decoded}
        ordered.update((k, x) for k, x in decoded.items() if k not in ordered)
        return make_node(spec, ordered)

    def _resolve(self, path: str, where: KeyPath, *, node: bool) -> Any:
        module, sep, qualname = path.partition(":")
        if not sep or not module or not qualname:
            raise ValueError(f"at path {str(where)!r}: malformed import path {path!r}")
        spec: CallableSpec | None = _SYMBOLIZED.get(path)
        if spec is not None:
            return spec.fn
        if not self._trusts(module, path, node=node):
            obj = _lookup(sys.modules.get(module), qualname)
            if obj is not None and id(obj) in self.objects:
                return obj
            kind = "node" if node else "reference"
            raise ValueError(
                f"at path {str(where)!r}: {path!r} is not allowed to load (a {kind} of a "
                f"callable that was neither symbolized in this process nor listed). Symbolize it "
                f"before loading, or pass allowed=[{module!r}] if you trust that module"
            )
        try:
            mod = importlib.import_module(module)
        except ImportError as e:
            raise ValueError(f"at path {str(where)!r}: cannot import {module!r}: {e}") from None
        obj = _lookup(mod, qualname)
        if obj is None:
            raise ValueError(f"at path {str(where)!r}: {module!r} has no attribute {qualname!r}")
        if isinstance(obj, Symbolic):
            obj = obj.target
        # A trusted module re-exports names from elsewhere (``flax.linen:relu``); follow them
        # only into trusted modules, so that ``safe.module:os.system`` does not load.
        home = import_path(obj)
        home_module = home.partition(":")[0]
        if (
            home != path
            and not self._trusts(home_module, home, node=node)
            and id(obj) not in self.objects
        ):
            raise ValueError(
                f"at path {str(where)!r}: {path!r} is {home!r}, which is not allowed to load. "
                f"Pass allowed=[{home_module!r}] if you trust that module"
            )
        spec = _SYMBOLIZED.get(home)
        if spec is not None and spec.fn is obj:
            return obj
        if (
            node
            and _is_pliant(module)
            and not self._explicit(module, path)
            and not hasattr(obj, "__pliant_node_class__")
        ):
            # pliant's own functions (save, load, ...) are trusted to import, not to be called
            # by building a tree someone else wrote.
            raise ValueError(
                f"at path {str(where)!r}: {path!r} is not a symbolic callable of pliant and "
                f"cannot be loaded as a node"
            )
        return obj

    def _explicit(self, module: str, path: str) -> bool:
        return any(module == p or module.startswith(p + ".") or path == p for p in self.prefixes)

    def _trusts(self, module: str, path: str, *, node: bool) -> bool:
        """Whether callables of ``module`` may be imported (and, for nodes, built later)."""
        safe = not node and any(
            module == m or module.startswith(m + ".") for m in SAFE_REFERENCE_MODULES
        )
        return safe or _is_pliant(module) or self._explicit(module, path)


def _is_pliant(module: str) -> bool:
    return module == "pliant" or module.startswith("pliant.")


def save(value: Any, path: str | os.PathLike[str]) -> None:
    """Writes a symbolic value to a JSON file atomically (a crash leaves the old file intact).

    Example:
        >>> import tempfile, os
        >>> f = os.path.join(tempfile.mkdtemp(), "v.json")
        >>> save({"width": 64}, f)
        >>> load(f)
        {'width': 64}
    """
    text = to_json(value, indent=1)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".pliant-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(path: str | os.PathLike[str], *, allowed: Iterable[str | Callable[..., Any]] = ()) -> Any:
    """Reads a symbolic value written by :func:`save` (see :func:`from_json` for ``allowed``).

    Raises:
        ValueError: as :func:`from_json`, with the file name.
        FileNotFoundError: if the file does not exist.

    Example:
        >>> import tempfile, os
        >>> f = os.path.join(tempfile.mkdtemp(), "v.json")
        >>> save([1, 2], f)
        >>> load(f)
        [1, 2]
    """
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        return from_json(text, allowed=allowed)
    except ValueError as e:
        raise ValueError(f"{os.fspath(path)}: {e}") from None
