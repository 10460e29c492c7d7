"""Symbolic nodes: immutable records of a callable and the arguments it will be called with.

``pl.symbolize(fn_or_class)`` returns a :class:`Symbolic` callable. Calling it checks the
arguments against the signature and returns a :class:`Node`; nothing of the user's code runs.
``node.build(**runtime)`` (or ``node(**runtime)``) builds nested nodes depth first and calls the
callable. Runtime arguments such as Flax NNX's ``rngs`` are passed at build time to every node
whose callable accepts them, and are never stored in the tree.

Lists, tuples and dicts inside arguments are frozen into :class:`SymList`, ``tuple`` and
:class:`SymDict`, so a whole tree is immutable, hashable and compares by structure.
"""

from __future__ import annotations

import enum
import functools
import inspect
import types
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from pliant.symbolic.keypath import Key, KeyPath

#: Names treated as runtime arguments when a callable accepts them (see ``symbolize``).
DEFAULT_RUNTIME = ("rngs",)

_PRIMITIVES = (type(None), bool, int, float, str)
_ROOT = KeyPath()

# The one NaN of symbolic trees. ``nan != nan``, but containers compare items by identity first,
# so trees holding this object compare equal and hash alike (after a JSON round trip too).
_NAN = float("nan")


class SymList(tuple):
    """An immutable list inside a symbolic tree; it builds to a plain ``list``.

    It compares equal to a ``list`` or ``SymList`` with equal items, not to a ``tuple``.

    Example:
        >>> from pliant.symbolic import freeze
        >>> xs = freeze([1, [2, 3]])
        >>> xs
        [1, [2, 3]]
        >>> xs == [1, [2, 3]], xs == (1, (2, 3))
        (True, False)
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "[" + ", ".join(map(repr, self)) + "]"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SymList | list):
            return tuple.__eq__(self, tuple(other))
        return False

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash((SymList, tuple(self)))

    def __getitem__(self, index):  # type: ignore[override]
        item = tuple.__getitem__(self, index)
        return SymList(item) if isinstance(index, slice) else item


class SymDict(Mapping[str, Any]):
    """An immutable dict with ``str`` keys inside a symbolic tree; it builds to a plain ``dict``.

    Keys keep their insertion order; identifier keys can also be read as attributes.

    Example:
        >>> from pliant.symbolic import freeze
        >>> d = freeze({"lr": 0.1, "layers": [64, 64]})
        >>> d["lr"], d.layers
        (0.1, [64, 64])
        >>> d == {"layers": [64, 64], "lr": 0.1}
        True
    """

    __slots__ = ("_data", "_hash")

    def __init__(self, data: Mapping[str, Any] = types.MappingProxyType({})):
        object.__setattr__(self, "_data", dict(data))
        object.__setattr__(self, "_hash", None)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(
                f"symbolic dict has no key {name!r}; keys: {list(self._data)}"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("symbolic values are immutable; use pl.replace(value, {path: new})")

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if isinstance(other, SymDict):
            return self._data == other._data
        if isinstance(other, dict):
            return self._data == other
        return False

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        h = self._hash
        if h is None:
            h = hash((SymDict, frozenset(self._data.items())))
            object.__setattr__(self, "_hash", h)
        return h

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: {v!r}" for k, v in self._data.items()) + "}"

    def __reduce__(self) -> tuple:
        # Pickling (used only to send values to worker processes and Ray, never to store them).
        return (SymDict, (self._data,))

    def __copy__(self) -> SymDict:
        return self

    def __deepcopy__(self, memo: dict) -> SymDict:
        return self


def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    # A class's own __init__ tells its arguments better than inspect.signature(cls), which
    # returns (*args, **kwargs) for classes whose metaclass defines __call__ (Flax NNX modules).
    init = vars(fn).get("__init__") if isinstance(fn, type) else None
    if init is None and isinstance(fn, type):
        init = next((vars(c)["__init__"] for c in fn.__mro__ if "__init__" in vars(c)), None)
    if isinstance(fn, type) and init is not None and init is not object.__init__:
        sig = inspect.signature(init)
        return sig.replace(parameters=list(sig.parameters.values())[1:])
    return inspect.signature(fn)


class CallableSpec:
    """What pliant knows about a symbolized callable: its signature and runtime arguments."""

    __slots__ = (
        "before_var",
        "fn",
        "name",
        "params",
        "posonly",
        "required",
        "runtime",
        "signature",
        "var_keyword",
        "var_positional",
    )

    def __init__(self, fn: Callable[..., Any], runtime: tuple[str, ...] | None = None):
        try:
            sig = _signature(fn)
        except (TypeError, ValueError) as e:
            raise TypeError(
                f"cannot symbolize {fn!r}: its signature cannot be read ({e}); wrap it in a "
                f"Python function with explicit parameters and symbolize that"
            ) from None
        self.fn = fn
        self.name = getattr(fn, "__name__", type(fn).__name__)
        self.signature = sig
        params = list(sig.parameters.values())
        names = [p.name for p in params]
        if isinstance(runtime, str):
            runtime = (runtime,)
        wanted = DEFAULT_RUNTIME if runtime is None else tuple(runtime)
        if runtime is not None:
            unknown = [r for r in runtime if r not in names]
            if unknown and not any(p.kind is p.VAR_KEYWORD for p in params):
                raise ValueError(
                    f"symbolize({self.name}): runtime arguments {unknown} are not parameters "
                    f"of {self.name}{sig}"
                )
        self.runtime = frozenset(r for r in wanted if r in names or runtime is not None)
        self.params = tuple(n for n in names if n not in self.runtime)
        self.posonly = frozenset(p.name for p in params if p.kind is p.POSITIONAL_ONLY)
        self.var_positional = next((p.name for p in params if p.kind is p.VAR_POSITIONAL), None)
        self.var_keyword = next((p.name for p in params if p.kind is p.VAR_KEYWORD), None)
        before: list[str] = []
        for p in params:
            if p.kind is p.VAR_POSITIONAL:
                break
            before.append(p.name)
        self.before_var = frozenset(before) if self.var_positional else frozenset()
        self.required = tuple(
            p.name
            for p in params
            if p.default is p.empty
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            and p.name not in self.runtime
        )

    def bind(self, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Binds call arguments to parameter names, in signature order, frozen."""
        for name in kwargs:
            if name in self.runtime:
                raise TypeError(
                    f"{self.name}(): {name!r} is a runtime argument; it is never stored in the "
                    f"symbolic tree. Pass it when building: node.build({name}=...)"
                )
        try:
            bound = self.signature.bind_partial(*args, **kwargs)
        except TypeError as e:
            raise TypeError(
                f"{self.name}(): {e}; the signature is {self.name}{self.signature}"
            ) from None
        for name in bound.arguments:
            if name in self.runtime:
                raise TypeError(
                    f"{self.name}(): {name!r} is a runtime argument and was passed "
                    f"positionally; it is never stored in the symbolic tree. Pass it when "
                    f"building: node.build({name}=...)"
                )
        missing = [n for n in self.required if n not in bound.arguments]
        if missing:
            raise TypeError(
                f"{self.name}(): missing required argument(s) {missing}; the signature is "
                f"{self.name}{self.signature}"
            )
        out: dict[str, Any] = {}
        for name, value in bound.arguments.items():
            if name == self.var_keyword:
                for k, v in value.items():
                    out[k] = freeze(v, KeyPath((k,)), self.name)
            else:
                out[name] = freeze(value, KeyPath((name,)), self.name)
        return out

    def check_arg_name(self, name: Key, where: KeyPath) -> None:
        """Raises if ``name`` cannot be an argument of this callable."""
        if name in self.runtime:
            raise ValueError(
                f"path {str(where)!r}: {name!r} is a runtime argument of {self.name}; pass it "
                f"to build() instead of storing it"
            )
        if type(name) is not str or (name not in self.params and self.var_keyword is None):
            raise ValueError(
                f"path {str(where)!r}: {self.name} has no argument {name!r}; its arguments "
                f"are {list(self.params)}"
            )


class Node:
    """An immutable symbolic call: a callable plus its bound arguments.

    Nodes are created by calling a :class:`Symbolic` callable. Arguments are readable as
    attributes (``node.width``) or through ``node.args``. Equality and hashing are structural.

    Example:
        >>> import pliant as pl
        >>> @pl.symbolize
        ... def dense(features, activation="relu"):
        ...     return f"dense({features}, {activation})"
        >>> node = dense(64)
        >>> node
        dense(features=64)
        >>> node.features, node == dense(features=64)
        (64, True)
        >>> node.build()
        'dense(64, relu)'
    """

    __slots__ = ("__weakref__", "_args", "_concrete", "_hash", "_spec")

    #: True for nodes that stand for a choice (placeholders); trees holding one cannot build.
    abstract = False

    def __init__(self, spec: CallableSpec, args: dict[str, Any]):
        object.__setattr__(self, "_spec", spec)
        object.__setattr__(self, "_args", args)
        object.__setattr__(self, "_hash", None)
        object.__setattr__(self, "_concrete", None)

    @property
    def fn(self) -> Callable[..., Any]:
        """The user's callable that ``build`` calls."""
        return self._spec.fn

    @property
    def args(self) -> Mapping[str, Any]:
        """The bound arguments, by name, in signature order (read-only)."""
        return types.MappingProxyType(self._args)

    @property
    def spec(self) -> CallableSpec:
        """The signature information of the callable."""
        return self._spec

    def __getattr__(self, name: str) -> Any:
        try:
            return self._args[name]
        except KeyError:
            raise AttributeError(
                f"{self._spec.name} node has no argument {name!r}; it holds {list(self._args)}"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("symbolic values are immutable; use pl.replace(value, {path: new})")

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Node):
            return NotImplemented
        if type(self) is not type(other) or self._spec.fn is not other._spec.fn:
            return False
        if self._hash is not None and other._hash is not None and self._hash != other._hash:
            return False
        return self._args == other._args

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self) -> int:
        h = self._hash
        if h is None:
            # Unordered, as __eq__ is: **kwargs arguments keep the order they were given in.
            h = hash((type(self), self._spec.fn, frozenset(self._args.items())))
            object.__setattr__(self, "_hash", h)
        return h

    def __reduce__(self) -> tuple:
        # Pickling (used only to send values to worker processes and Ray, never to store them).
        return (make_node, (self._spec, self._args, type(self), self._concrete))

    def __copy__(self) -> Node:
        return self

    def __deepcopy__(self, memo: dict) -> Node:
        return self

    def __repr__(self) -> str:
        from pliant.symbolic.formatting import format_value

        return format_value(self)

    @property
    def is_concrete(self) -> bool:
        """True when no placeholder sits anywhere in this tree (so it can be built)."""
        c = self._concrete
        if c is None:
            c = not self.abstract and all(_is_concrete(v) for v in self._args.values())
            object.__setattr__(self, "_concrete", c)
        return c

    def build(self, **runtime: Any) -> Any:
        """Builds nested nodes depth first, then calls the callable with the built arguments.

        Args:
            **runtime: arguments that are not part of the symbolic value (Flax NNX's ``rngs``);
                each one is passed to every node in the tree whose callable accepts it.

        Returns:
            What the callable returns (a model, a module instance, any object).

        Raises:
            ValueError: if the tree still holds a placeholder (materialize it first).
            TypeError: if a runtime argument is accepted by no node in the tree.

        Example:
            >>> import pliant as pl
            >>> @pl.symbolize
            ... def scale(x, factor, rngs=None):
            ...     return x * factor + (rngs or 0)
            >>> scale(2, factor=3).build(rngs=1)
            7
        """
        if not self.is_concrete:
            from pliant.symbolic.ops import first_abstract_path

            path = first_abstract_path(self)
            raise ValueError(
                f"cannot build a search space: a placeholder sits at path {str(path)!r}. "
                f"Pick a point first, e.g. pl.materialize(space_value, dna) or "
                f"pl.random_sample(space_value, seed)"
            )
        used: set[str] = set()
        out = self._build(runtime, used)
        unused = set(runtime) - used
        if unused:
            raise TypeError(
                f"build(): no node in this tree accepts the runtime argument(s) {sorted(unused)}"
            )
        return out

    __call__ = build

    def _build(self, runtime: Mapping[str, Any], used: set[str]) -> Any:
        spec = self._spec
        positional: list[Any] = []
        kwargs: dict[str, Any] = {}
        for name, value in self._args.items():
            built = _build_value(value, runtime, used)
            if name == spec.var_positional:
                positional.extend(built)
            elif name in spec.posonly or name in spec.before_var:
                positional.append(built)
            else:
                kwargs[name] = built
        for name in spec.runtime:
            if name in runtime:
                kwargs[name] = runtime[name]
                used.add(name)
        return spec.fn(*positional, **kwargs)


def _build_value(value: Any, runtime: Mapping[str, Any], used: set[str]) -> Any:
    if isinstance(value, Node):
        return value._build(runtime, used)
    if isinstance(value, SymList):
        return [_build_value(v, runtime, used) for v in value]
    if type(value) is tuple:
        return tuple(_build_value(v, runtime, used) for v in value)
    if isinstance(value, SymDict):
        return {k: _build_value(v, runtime, used) for k, v in value._data.items()}
    return value


def _is_concrete(value: Any) -> bool:
    if isinstance(value, Node):
        return value.is_concrete
    if isinstance(value, tuple):  # SymList and tuple
        return all(_is_concrete(v) for v in value)
    if isinstance(value, SymDict):
        return all(_is_concrete(v) for v in value._data.values())
    return True


def make_node(
    spec: CallableSpec, args: dict[str, Any], cls: type[Node] = Node, concrete: bool | None = None
) -> Node:
    """Creates a node from already frozen, already checked arguments (no validation).

    ``concrete=True`` records that no placeholder is inside (callers that know it, such as
    materialize, save ``build`` a walk over the tree).
    """
    node = cls.__new__(cls)
    object.__setattr__(node, "_spec", spec)
    object.__setattr__(node, "_args", args)
    object.__setattr__(node, "_hash", None)
    object.__setattr__(node, "_concrete", concrete)
    return node


def freeze(value: Any, where: KeyPath = _ROOT, owner: str | None = None) -> Any:
    """Returns ``value`` as a symbolic value: lists, tuples and dicts frozen, leaves checked.

    Leaves may be ``None``, ``bool``, ``int``, ``float``, ``str``, enum members, functions and
    classes (stored by reference), symbolic nodes, and numpy scalars (turned into Python
    numbers).

    Raises:
        TypeError: naming the path of a leaf of any other type, or a dict key that is not a str.

    Example:
        >>> freeze({"widths": (32, 64), "act": None})
        {'widths': (32, 64), 'act': None}
    """
    t = type(value)
    if t in _PRIMITIVES or isinstance(value, Node | SymList | SymDict):
        return _NAN if t is float and value != value else value
    if t is list:
        return SymList(freeze(v, where.child(i), owner) for i, v in enumerate(value))
    if t is tuple:
        return tuple(freeze(v, where.child(i), owner) for i, v in enumerate(value))
    if t is dict or isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                raise TypeError(
                    f"{_where(where, owner)}: dict keys in a symbolic value must be str, got "
                    f"{k!r} of type {type(k).__name__}; convert the key, e.g. str({k!r})"
                )
            out[k] = freeze(v, where.child(k), owner)
        return SymDict(out)
    if isinstance(value, np.generic) and value.ndim == 0 and value.dtype.kind in "biuf":
        item = value.item()
        return _NAN if item != item else item
    if isinstance(value, enum.Enum):
        return value
    if isinstance(value, type | types.FunctionType | types.BuiltinFunctionType | Symbolic):
        return value
    if callable(value) and hasattr(value, "__module__") and hasattr(value, "__qualname__"):
        return value
    raise TypeError(
        f"{_where(where, owner)}: unsupported value {_short(value)} of type "
        f"{type(value).__name__}. A symbolic value holds None, bool, int, float, str, lists, "
        f"tuples and dicts of them, symbolic nodes, and functions or classes. Convert it "
        f"(e.g. array.tolist()) or symbolize the callable that makes it"
    )


def _where(where: KeyPath, owner: str | None) -> str:
    if owner is None:
        return f"at path {str(where)!r}"
    return f"{owner}(): argument {str(where)!r}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


class Symbolic:
    """A symbolized callable: calling it returns a :class:`Node` instead of running the code.

    The original callable is untouched and stays available as ``.target`` (and
    ``__wrapped__``).

    Example:
        >>> import pliant as pl
        >>> def mlp(width, depth=2):
        ...     return [width] * depth
        >>> MLP = pl.symbolize(mlp)
        >>> MLP(8, depth=3)
        mlp(width=8, depth=3)
        >>> MLP(8, depth=3).build(), mlp(8)
        ([8, 8, 8], [8, 8])
    """

    __slots__ = ("__dict__", "_spec")

    def __init__(self, fn: Callable[..., Any], runtime: tuple[str, ...] | None = None):
        self._spec = CallableSpec(fn, runtime)
        functools.update_wrapper(self, fn, updated=())
        _SYMBOLIZED[import_path(fn)] = self._spec

    @property
    def target(self) -> Callable[..., Any]:
        """The original callable."""
        return self._spec.fn

    def __call__(self, *args: Any, **kwargs: Any) -> Node:
        return make_node(self._spec, self._spec.bind(args, kwargs))

    def __repr__(self) -> str:
        return f"pl.symbolize({self._spec.name})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Symbolic) and other._spec.fn is self._spec.fn

    def __hash__(self) -> int:
        return hash((Symbolic, self._spec.fn))

    def __copy__(self) -> Symbolic:
        return self

    def __deepcopy__(self, memo: dict) -> Symbolic:
        return self


# Symbolized callables by import path: loading JSON rebuilds these without an explicit
# allow-list, because the user symbolized them in this process (their module is imported).
_SYMBOLIZED: dict[str, CallableSpec] = {}


def import_path(obj: Any) -> str:
    """Returns ``'module:qualname'`` for a function or class (no check that it resolves)."""
    module = getattr(obj, "__module__", None) or "?"
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", "?")
    return f"{module}:{qualname}"


def symbolize(
    fn: Callable[..., Any] | None = None, *, runtime: tuple[str, ...] | None = None
) -> Any:
    """Makes a function, a class or a Flax module class symbolic.

    Calling the result checks the arguments against the signature and returns an immutable
    :class:`Node`; the user's code runs only when the node is built. Works as a decorator, with
    or without arguments.

    Args:
        fn: the callable to symbolize. The object itself is not modified.
        runtime: names (or one name) of arguments passed only at build time and never stored
            (default: ``('rngs',)`` where the callable has such a parameter, as Flax NNX modules
            do).

    Returns:
        A :class:`Symbolic` callable (or a decorator when ``fn`` is omitted).

    Raises:
        TypeError: if the callable's signature cannot be read.
        ValueError: if ``runtime`` names an argument the callable does not have.

    Example:
        >>> import pliant as pl
        >>> @pl.symbolize(runtime=("seed",))
        ... def noisy(scale, seed):
        ...     return scale * seed
        >>> noisy(2.0).build(seed=3)
        6.0
    """
    if fn is None:
        return lambda f: symbolize(f, runtime=runtime)
    if isinstance(fn, Symbolic):
        return fn
    if not callable(fn):
        raise TypeError(f"symbolize() takes a function or class, got {fn!r}")
    return Symbolic(fn, runtime)


def symbolic_of(fn: Callable[..., Any]) -> Symbolic:
    """Returns a :class:`Symbolic` for ``fn`` sharing its registered spec; registers nothing.

    Loading a reference must not replace what the user symbolized (e.g. its runtime names).
    """
    sym = Symbolic.__new__(Symbolic)
    sym._spec = spec_of(fn)
    functools.update_wrapper(sym, fn, updated=())
    return sym


def spec_of(fn: Callable[..., Any]) -> CallableSpec:
    """Returns the CallableSpec of a symbolized callable, creating one if needed."""
    if isinstance(fn, Symbolic):
        return fn._spec
    spec = _SYMBOLIZED.get(import_path(fn))
    if spec is not None and spec.fn is fn:
        return spec
    return CallableSpec(fn)
