"""Free functions over symbolic trees: traverse, query, get and replace by key path.

Every operation is functional: ``replace`` returns a new tree in which only the nodes on the
paths to the replaced values are new; every other sub-tree is the same object as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pliant.symbolic.keypath import Key, KeyPath
from pliant.symbolic.node import Node, Symbolic, SymDict, SymList, freeze, make_node

_ROOT = KeyPath()


def children(value: Any) -> Iterator[tuple[Key, Any]]:
    """Yields ``(key, child)`` for the direct children of a symbolic value.

    Example:
        >>> list(children(freeze({"a": [1, 2]})))
        [('a', [1, 2])]
    """
    if isinstance(value, Node):
        yield from value._args.items()
    elif isinstance(value, SymDict):
        yield from value._data.items()
    elif isinstance(value, tuple):
        yield from enumerate(value)


def traverse(value: Any, root: KeyPath = _ROOT) -> Iterator[tuple[KeyPath, Any]]:
    """Yields ``(path, sub_value)`` for every value in the tree, parents before children.

    Example:
        >>> [str(p) for p, _ in traverse(freeze({"a": [1, {"b": 2}]}))]
        ['', 'a', 'a[0]', 'a[1]', 'a[1].b']
    """
    yield root, value
    for key, child in children(value):
        yield from traverse(child, root.child(key))


def query(value: Any, where: Any) -> dict[KeyPath, Any]:
    """Finds the sub-values that match ``where``, by path, in traversal order.

    Args:
        value: a symbolic value.
        where: a symbolized callable (matches its nodes), a class (matches nodes built by it or
            a subclass, and leaves that are instances of it), or a predicate
            ``(path, value) -> bool``.

    Returns:
        A dict from key path to matching sub-value.

    Example:
        >>> import pliant as pl
        >>> @pl.symbolize
        ... def conv(features):
        ...     pass
        >>> net = pl.freeze({"stem": conv(16), "body": [conv(32), conv(64)]})
        >>> {str(p): n.features for p, n in pl.query(net, conv).items()}
        {'stem': 16, 'body[0]': 32, 'body[1]': 64}
        >>> [str(p) for p in pl.query(net, lambda p, v: v == 64)]
        ['body[1].features']
    """
    if isinstance(where, Symbolic):
        target = where.target
        match: Callable[[KeyPath, Any], bool] = lambda p, v: isinstance(v, Node) and v.fn is target
    elif isinstance(where, type) and not isinstance(where, Symbolic):
        cls = where
        match = lambda p, v: (
            isinstance(v, cls)
            or (isinstance(v, Node) and isinstance(v.fn, type) and issubclass(v.fn, cls))
        )
    elif callable(where):
        match = where
    else:
        raise TypeError(
            f"query(): 'where' must be a symbolized callable, a class or a predicate "
            f"(path, value) -> bool, got {where!r}"
        )
    return {p: v for p, v in traverse(value) if match(p, v)}


def get(value: Any, path: str | KeyPath) -> Any:
    """Returns the sub-value at a key path.

    Raises:
        KeyError: naming the path and the keys that exist there.

    Example:
        >>> get(freeze({"a": [{"b": 7}]}), "a[0].b")
        7
    """
    path = KeyPath.parse(path)
    current = value
    for i, key in enumerate(path):
        current = _child(current, key, path[: i + 1])
    return current


def _child(value: Any, key: Key, where: KeyPath) -> Any:
    if isinstance(value, Node):
        if type(key) is str and key in value._args:
            return value._args[key]
        raise KeyError(
            f"path {str(where)!r} does not exist: {value.spec.name} has arguments "
            f"{list(value._args)}"
        )
    if isinstance(value, SymDict):
        if type(key) is str and key in value._data:
            return value._data[key]
        raise KeyError(f"path {str(where)!r} does not exist: the dict has keys {list(value)}")
    if isinstance(value, tuple):
        if type(key) is int and -len(value) <= key < len(value):
            return value[key]
        raise KeyError(
            f"path {str(where)!r} does not exist: index {key!r} is out of range for a sequence "
            f"of length {len(value)}"
        )
    raise KeyError(
        f"path {str(where)!r} does not exist: {str(where.parent)!r} is a leaf "
        f"({type(value).__name__}), not a node, list or dict"
    )


def replace(
    value: Any, updates: Mapping[str | KeyPath, Any] | None = None, /, **kwargs: Any
) -> Any:
    """Returns a new tree with the values at the given paths replaced.

    The input is unchanged; sub-trees off the replaced paths are shared with it. A path may
    name an argument a node does not hold yet (it is set), or a new key of a dict.

    Args:
        value: a symbolic value.
        updates: ``{path: new_value}``; the empty path replaces the whole value.
        **kwargs: shorthand for top-level paths (``replace(node, width=64)``).

    Returns:
        The new tree.

    Raises:
        KeyError: if a path does not exist (naming the first missing part).
        ValueError: if a path names an argument the callable does not have, or a runtime one,
            or if two paths are the same or one lies under the other.
        TypeError: if a new value is not a valid symbolic leaf.

    Example:
        >>> import pliant as pl
        >>> @pl.symbolize
        ... def block(width, act="relu"):
        ...     pass
        >>> net = pl.freeze([block(32), block(64)])
        >>> new = pl.replace(net, {"[1].width": 128, "[0].act": "gelu"})
        >>> new
        [block(width=32, act='gelu'), block(width=128)]
        >>> net[1].width
        64
    """
    items: dict[KeyPath, Any] = {}
    given = [(KeyPath.parse(path), new) for path, new in (updates or {}).items()]
    for path, new in given + [(KeyPath((name,)), new) for name, new in kwargs.items()]:
        if path in items:
            raise ValueError(f"replace(): path {str(path)!r} is given twice")
        items[path] = new
    if KeyPath() in items:
        if len(items) > 1:
            raise ValueError("replace(): the root path '' cannot be combined with other paths")
        return freeze(items[KeyPath()])
    trie: dict = {}
    for path, new in items.items():
        node = trie
        for key in path[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict) or _LEAF in node:
                raise ValueError(f"replace(): path {str(path)!r} overlaps another replaced path")
        if path[-1] in node:
            raise ValueError(f"replace(): path {str(path)!r} overlaps another replaced path")
        node[path[-1]] = {_LEAF: new}
    return _apply(value, trie, KeyPath())


_LEAF = object()


def _apply(value: Any, trie: dict, where: KeyPath) -> Any:
    if _LEAF in trie:
        return freeze(trie[_LEAF], where)
    if isinstance(value, Node):
        args = dict(value._args)
        spec = value.spec
        for key, sub in trie.items():
            here = where.child(key)
            if key not in args:
                spec.check_arg_name(key, here)
                if _LEAF not in sub:
                    raise KeyError(
                        f"path {str(here)!r} does not exist: {spec.name} holds no argument "
                        f"{key!r}, so nothing below it can be replaced"
                    )
                args[key] = freeze(sub[_LEAF], here)
            else:
                args[key] = _apply(args[key], sub, here)
        ordered = {n: args[n] for n in spec.params if n in args}
        ordered.update((k, v) for k, v in args.items() if k not in ordered)
        return make_node(spec, ordered, type(value))
    if isinstance(value, SymDict):
        data = dict(value._data)
        for key, sub in trie.items():
            here = where.child(key)
            if type(key) is not str:
                raise KeyError(f"path {str(here)!r} does not exist: dict keys are str")
            if key not in data:
                if _LEAF not in sub:
                    raise KeyError(
                        f"path {str(here)!r} does not exist: the dict has keys {list(data)}"
                    )
                data[key] = freeze(sub[_LEAF], here)
            else:
                data[key] = _apply(data[key], sub, here)
        return SymDict(data)
    if isinstance(value, tuple):
        seq = list(value)
        # [-1] and [n-1] name the same item: merge their sub-paths, so an overlap is caught.
        merged: dict[int, tuple[dict, KeyPath]] = {}
        for key, sub in trie.items():
            here = where.child(key)
            if type(key) is not int or not -len(seq) <= key < len(seq):
                raise KeyError(
                    f"path {str(here)!r} does not exist: the sequence has length {len(seq)}"
                )
            index = key % len(seq)
            if index in merged:
                sub = _merge(merged[index][0], sub, here)
                here = merged[index][1]
            merged[index] = (sub, here)
        for index, (sub, here) in merged.items():
            seq[index] = _apply(seq[index], sub, here)
        return SymList(seq) if isinstance(value, SymList) else tuple(seq)
    first = next(iter(trie))
    raise KeyError(
        f"path {str(where.child(first))!r} does not exist: {str(where)!r} is a leaf "
        f"({type(value).__name__})"
    )


def _merge(a: dict, b: dict, where: KeyPath) -> dict:
    if _LEAF in a or _LEAF in b:
        raise ValueError(f"replace(): path {str(where)!r} overlaps another replaced path")
    out = dict(a)
    for key, sub in b.items():
        out[key] = _merge(out[key], sub, where.child(key)) if key in out else sub
    return out


def first_abstract_path(value: Any) -> KeyPath | None:
    """Returns the path of the first placeholder in traversal order, or None.

    Example:
        >>> first_abstract_path(freeze([1, 2])) is None
        True
    """
    for path, sub in traverse(value):
        if isinstance(sub, Node) and sub.abstract:
            return path
    return None
