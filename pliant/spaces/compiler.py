"""From a symbolic search space to a :class:`Space`, and between DNA and concrete values.

``pl.space(value)`` walks the tree once, gives every decision a slot (in traversal order, so a
parent slot always precedes the slots conditioned on it) and keeps a *plan*: a small tree of
objects that rebuilds a concrete value from a DNA by touching only the parts of the tree that hold
placeholders. Concrete sub-trees are shared, never copied. Compilations are cached per value.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from pliant.spaces.dna import DNA, Group, Slot, Space
from pliant.spaces.placeholders import FloatV, IntV, ManyOf, OneOf, Placeholder
from pliant.symbolic import KeyPath, Node, SymDict, SymList, format_value, freeze, make_node

_LITERAL_TYPES = (type(None), bool, int, float, str)


class _Mismatch(Exception):
    """Raised inside encode when a concrete value does not fit a plan; carries the path."""

    def __init__(self, where: KeyPath, message: str):
        super().__init__(f"at path {str(where)!r}: {message}")
        self.where = where


# ----------------------------------------------------------------------------------------------
# Plans: materialize(idx, val) builds a value; encode(x, idx, val, where) writes x's decisions.


class _Const:
    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def materialize(self, idx: list, val: list) -> Any:
        return self.value

    def encode(self, x: Any, idx: list, val: list, where: KeyPath) -> None:
        if x is not self.value and x != self.value:
            raise _Mismatch(where, f"expected {_short(self.value)}, got {_short(x)}")


class _NodePlan:
    __slots__ = ("cls", "items", "spec")

    def __init__(self, node: Node, items: list[tuple[str, Any]]):
        self.spec, self.cls, self.items = node.spec, type(node), items

    def materialize(self, idx: list, val: list) -> Any:
        args = {k: p.materialize(idx, val) for k, p in self.items}
        return make_node(self.spec, args, self.cls, concrete=True)  # placeholders are gone

    def encode(self, x: Any, idx: list, val: list, where: KeyPath) -> None:
        if not isinstance(x, Node) or x.fn is not self.spec.fn:
            raise _Mismatch(where, f"expected a {self.spec.name}(...) node, got {_short(x)}")
        if set(x.args) != {k for k, _ in self.items}:
            raise _Mismatch(
                where,
                f"{self.spec.name} arguments differ: {sorted(x.args)} vs "
                f"{sorted(k for k, _ in self.items)}",
            )
        for k, p in self.items:
            p.encode(x.args[k], idx, val, where.child(k))


class _SeqPlan:
    __slots__ = ("kind", "plans")

    def __init__(self, kind: type, plans: list[Any]):
        self.kind, self.plans = kind, plans

    def materialize(self, idx: list, val: list) -> Any:
        return self.kind([p.materialize(idx, val) for p in self.plans])

    def encode(self, x: Any, idx: list, val: list, where: KeyPath) -> None:
        ok = isinstance(x, SymList | list) if self.kind is SymList else type(x) is tuple
        if not ok or len(x) != len(self.plans):
            raise _Mismatch(
                where,
                f"expected a {self.kind.__name__} of {len(self.plans)} items, got {_short(x)}",
            )
        for i, (p, item) in enumerate(zip(self.plans, x)):
            p.encode(item, idx, val, where.child(i))


class _DictPlan:
    __slots__ = ("items",)

    def __init__(self, items: list[tuple[str, Any]]):
        self.items = items

    def materialize(self, idx: list, val: list) -> Any:
        return SymDict({k: p.materialize(idx, val) for k, p in self.items})

    def encode(self, x: Any, idx: list, val: list, where: KeyPath) -> None:
        if not isinstance(x, Mapping) or set(x) != {k for k, _ in self.items}:
            raise _Mismatch(
                where, f"expected a dict with keys {[k for k, _ in self.items]}, got {_short(x)}"
            )
        for k, p in self.items:
            p.encode(x[k], idx, val, where.child(k))


class _ChoicePlan:
    __slots__ = ("candidates", "slot")

    def __init__(self, slot: int, candidates: list[Any]):
        self.slot, self.candidates = slot, candidates

    def materialize(self, idx: list, val: list) -> Any:
        return self.candidates[idx[self.slot]].materialize(idx, val)

    def encode(self, x: Any, idx: list, val: list, where: KeyPath) -> None:
        _assign(idx, self.slot, _match_candidate(self.candidates, x, idx, val, where), where)


class _ManyPlan:
    __slots__ = ("distinct", "positions", "slots", "sorted")

    def __init__(self, slots: list[int], positions: list[list[Any]], distinct: bool, sort: bool):
        self.slots, self.positions, self.distinct, self.sorted = slots, positions, distinct, sort

    def materialize(self, idx: list, val: list) -> Any:
        return SymList(
            cands[idx[s]].materialize(idx, val) for s, cands in zip(self.slots, self.positions)
        )

    def encode(self, x: Any, idx: list, val: list, where: KeyPath) -> None:
        if not isinstance(x, SymList | list | tuple) or len(x) != len(self.slots):
            raise _Mismatch(where, f"expected a list of {len(self.slots)} picks, got {_short(x)}")
        taken: list[int] = []
        for t, (s, cands) in enumerate(zip(self.slots, self.positions)):
            # Equal-looking candidates are resolved so that the picks keep the group's rules.
            skip = set(taken) if self.distinct else set()
            if self.sorted and taken:
                skip.update(range(taken[-1]))
            j = _match_candidate(cands, x[t], idx, val, where.child(t), skip)
            _assign(idx, s, j, where.child(t))
            taken.append(j)


class _FloatPlan:
    __slots__ = ("hi", "lo", "slot")

    def __init__(self, slot: int, lo: float, hi: float):
        self.slot, self.lo, self.hi = slot, lo, hi

    def materialize(self, idx: list, val: list) -> Any:
        return val[self.slot]

    def encode(self, x: Any, idx: list, val: list, where: KeyPath) -> None:
        if isinstance(x, bool) or not isinstance(x, int | float) or not self.lo <= x <= self.hi:
            raise _Mismatch(where, f"expected a float in [{self.lo}, {self.hi}], got {_short(x)}")
        _assign(val, self.slot, float(x), where)


class _IntPlan:
    __slots__ = ("hi", "lo", "slot")

    def __init__(self, slot: int, lo: int, hi: int):
        self.slot, self.lo, self.hi = slot, lo, hi

    def materialize(self, idx: list, val: list) -> Any:
        return self.lo + idx[self.slot]

    def encode(self, x: Any, idx: list, val: list, where: KeyPath) -> None:
        if type(x) is not int or not self.lo <= x <= self.hi:
            raise _Mismatch(where, f"expected an int in [{self.lo}, {self.hi}], got {_short(x)}")
        _assign(idx, self.slot, x - self.lo, where)


def _assign(arr: list, slot: int, v: Any, where: KeyPath) -> None:
    # Slots start as None; a second write (a decision shared by name) must agree with the first.
    old = arr[slot]
    if old is not None and old != v:
        raise _Mismatch(
            where,
            f"the decision shared here was already set to another value "
            f"({old!r} vs {v!r}) at an earlier place",
        )
    arr[slot] = v


def _match_candidate(
    cands: list[Any], x: Any, idx: list, val: list, where: KeyPath, skip: set[int] | None = None
) -> int:
    for j, plan in enumerate(cands):
        if skip and j in skip:
            continue
        saved_idx, saved_val = idx[:], val[:]
        try:
            plan.encode(x, idx, val, where)
        except _Mismatch:
            idx[:], val[:] = saved_idx, saved_val  # undo what the failed candidate wrote
            continue
        return j
    shown = ", ".join(_short(getattr(c, "value", c), 30) for c in cands)
    raise _Mismatch(where, f"{_short(x)} matches no candidate; candidates: [{shown}]")


def _short(value: Any, limit: int = 60) -> str:
    text = format_value(value) if not isinstance(value, _NodePlan) else value.spec.name
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ----------------------------------------------------------------------------------------------
# Compilation.


class CompiledSpace:
    """A compiled search space: the :class:`Space` plus the plan that materializes its DNA."""

    __slots__ = ("plan", "space", "value")

    def __init__(self, value: Any, space: Space, plan: Any):
        self.value, self.space, self.plan = value, space, plan


class _Compiler:
    def __init__(self) -> None:
        self.slots: list[Slot] = []
        self.groups: list[Group] = []
        self.named: dict[str, tuple[Placeholder, KeyPath, tuple, Any]] = {}

    def compile(self, v: Any, where: KeyPath, cond: tuple, sid: KeyPath) -> Any:
        """Returns the plan of ``v``; ``sid`` is the path used to name new slots."""
        if type(v) in _LITERAL_TYPES:
            return _Const(v)
        if isinstance(v, Placeholder):
            return self.placeholder(v, where, cond, sid)
        if isinstance(v, Node):
            if v.is_concrete:
                return _Const(v)
            items = [
                (k, self.compile(x, where.child(k), cond, sid.child(k))) for k, x in v.args.items()
            ]
            return _NodePlan(v, items)
        if isinstance(v, SymDict):
            if _concrete(v):
                return _Const(v)
            return _DictPlan(
                [(k, self.compile(x, where.child(k), cond, sid.child(k))) for k, x in v.items()]
            )
        if isinstance(v, tuple):
            if _concrete(v):
                return _Const(v)
            plans = [self.compile(x, where.child(i), cond, sid.child(i)) for i, x in enumerate(v)]
            return _SeqPlan(SymList if isinstance(v, SymList) else tuple, plans)
        return _Const(v)

    def placeholder(self, p: Placeholder, where: KeyPath, cond: tuple, sid: KeyPath) -> Any:
        name = p.decision_name
        if name is not None and name in self.named:
            return self.shared(p, where, cond, name)
        plan = self.new_decision(p, where, cond, sid, name)
        if name is not None:
            self.named[name] = (p, where, cond, plan)
        return plan

    def shared(self, p: Placeholder, where: KeyPath, cond: tuple, name: str) -> Any:
        first, first_where, first_cond, plan = self.named[name]
        if _definition(first) != _definition(p):
            raise ValueError(
                f"decision name {name!r} is shared by different placeholders: at path "
                f"{str(first_where)!r} it is {_short(first)} but at {str(where)!r} it is "
                f"{_short(p)}; give them different names or make them identical"
            )
        if cond != first_cond:
            if cond and first_cond:
                raise ValueError(
                    f"decision name {name!r} is used under different branches (at "
                    f"{str(first_where)!r} under choice {_cond_text(self.slots, first_cond)} and "
                    f"at {str(where)!r} under {_cond_text(self.slots, cond)}); a shared "
                    f"decision must sit under the same choice, or outside any choice in one of "
                    f"its places. Inside manyof candidates each pick has its own branch"
                )
            for s in _plan_slots(plan):  # an unconditional use makes the decision unconditional
                if self.slots[s].conditions == first_cond:
                    self.slots[s] = self.slots[s]._replace(conditions=())
            self.named[name] = (first, first_where, (), plan)
        return plan

    def new_decision(
        self, p: Placeholder, where: KeyPath, cond: tuple, sid: KeyPath, name: str | None
    ) -> Any:
        ident = str(sid) or "<root>"
        args = p.args
        if isinstance(p, OneOf):
            s = self.add(
                Slot(
                    ident,
                    "choice",
                    len(args["candidates"]),
                    conditions=cond,
                    name=name,
                    literals=_literals(args["candidates"]),
                )
            )
            cands = self.candidates(args["candidates"], s, where, sid)
            return _ChoicePlan(s, cands)
        if isinstance(p, ManyOf):
            k, cands_v = args["k"], args["candidates"]
            group = len(self.groups)
            literals = _literals(cands_v)
            slots = [
                self.add(
                    Slot(
                        str(sid.child(t)),
                        "choice",
                        len(cands_v),
                        conditions=cond,
                        name=None if name is None else f"{name}[{t}]",
                        literals=literals,
                        group=group,
                    )
                )
                for t in range(k)
            ]
            self.groups.append(
                Group(tuple(slots), args.get("distinct", True), args.get("sorted", False))
            )
            positions = [
                self.candidates(cands_v, s, where, sid.child(t)) for t, s in enumerate(slots)
            ]
            return _ManyPlan(
                slots, positions, args.get("distinct", True), args.get("sorted", False)
            )
        if isinstance(p, FloatV):
            lo, hi = args["lo"], args["hi"]
            s = self.add(Slot(ident, "float", 0, lo, hi, args.get("scale", "linear"), cond, name))
            return _FloatPlan(s, lo, hi)
        if isinstance(p, IntV):
            lo, hi = args["lo"], args["hi"]
            s = self.add(Slot(ident, "int", hi - lo + 1, lo, hi, "linear", cond, name))
            return _IntPlan(s, lo, hi)
        raise TypeError(f"unknown placeholder type {type(p).__name__} at {ident!r}")

    def candidates(self, cands: Any, slot: int, where: KeyPath, sid: KeyPath) -> list[Any]:
        """Compiles the candidates of a choice; placeholders inside are conditioned on it."""
        out: list[Any] = []
        for j, c in enumerate(cands):
            if type(c) in _LITERAL_TYPES:  # the common case, without building key paths
                out.append(_Const(c))
                continue
            here, ident = where.child("candidates").child(j), sid.child("candidates").child(j)
            out.append(self.compile(c, here, ((slot, j),), ident))
        return out

    def add(self, slot: Slot) -> int:
        self.slots.append(slot)
        return len(self.slots) - 1


def _cond_text(slots: list[Slot], cond: tuple) -> str:
    return " or ".join(f"{slots[p].id}={j}" for p, j in cond)


def _definition(p: Placeholder) -> tuple:
    return (type(p), tuple((k, v) for k, v in p.args.items() if k != "hints"))


def _plan_slots(plan: Any) -> list[int]:
    if isinstance(plan, _ManyPlan):
        return list(plan.slots)
    return [plan.slot]


def _literals(candidates: Any) -> tuple:
    out = []
    for c in candidates:
        if type(c) in _LITERAL_TYPES:
            out.append(c)
        else:
            out.append(_short(c, 80))
    return tuple(out)


def _concrete(v: Any) -> bool:
    if isinstance(v, Node):
        return v.is_concrete
    if isinstance(v, SymDict):
        return all(_concrete(x) for x in v.values())
    if isinstance(v, tuple):
        return all(_concrete(x) for x in v)
    return True


_CACHE: collections.OrderedDict[Any, CompiledSpace] = collections.OrderedDict()
_CACHE_SIZE = 256
_LOCK = threading.Lock()


def compile_space(value: Any) -> CompiledSpace:
    """Compiles (or fetches from the cache) the search space of a symbolic value.

    Raises:
        ValueError: for an invalid space (e.g. a shared name bound to different placeholders).
        TypeError: if the value holds leaves a symbolic value cannot hold.

    Example:
        >>> import pliant as pl
        >>> cs = compile_space({"width": pl.oneof([32, 64]), "lr": pl.floatv(0.1, 1.0)})
        >>> [s.id for s in cs.space.slots]
        ['width', 'lr']
    """
    value = freeze(value)
    try:
        key: Any = (type(value), value)
        hash(key)
    except TypeError:
        key = None
    if key is not None:
        with _LOCK:
            hit = _CACHE.get(key)
            if hit is not None:
                _CACHE.move_to_end(key)
                return hit
    c = _Compiler()
    plan = c.compile(value, KeyPath(), (), KeyPath())
    compiled = CompiledSpace(value, Space(tuple(c.slots), tuple(c.groups)), plan)
    if key is not None:
        with _LOCK:
            _CACHE[key] = compiled
            if len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    return compiled


def space(value: Any) -> Space:
    """Compiles a search space (a symbolic value with placeholders, or a traced function).

    Returns:
        The :class:`Space`: one slot per decision, the exact size, and per-slot arrays.

    Example:
        >>> import pliant as pl
        >>> sp = pl.space([pl.oneof(["relu", "gelu"]), pl.manyof(2, [1, 2, 3])])
        >>> sp.size, [s.id for s in sp.slots]
        (12, ['[0]', '[1][0]', '[1][1]'])
    """
    from pliant.spaces.tracing import Traced

    if isinstance(value, Traced):
        return value.space
    return compile_space(value).space


def _as_dna(sp: Space, dna: Any) -> DNA:
    if isinstance(dna, DNA):
        return dna
    if isinstance(dna, Mapping):
        return sp.from_dict(dict(dna))
    if isinstance(dna, list | tuple):
        return sp.from_list(list(dna))
    raise TypeError(f"expected a DNA, a dict of decisions or a list of numbers, got {dna!r}")


def materialize(value: Any, dna: Any, *, check: bool = True) -> Any:
    """Returns the concrete value that a DNA picks from a search space.

    Args:
        value: the search space (a symbolic value with placeholders, or a traced function).
        dna: a :class:`DNA` of ``pl.space(value)``, or its dict (``{'width': 64}``) or list form.
        check: validate the DNA first (turn off only for DNA that is known to be valid).

    Returns:
        The concrete symbolic value (for a traced function: a replay callable).

    Raises:
        ValueError: if the DNA does not fit the space (naming the slot).

    Example:
        >>> import pliant as pl
        >>> sp = {"act": pl.oneof(["relu", "gelu"]), "width": pl.intv(1, 4)}
        >>> pl.materialize(sp, {"act": "gelu", "width": 3})
        {'act': 'gelu', 'width': 3}
    """
    from pliant.spaces.tracing import Traced

    if isinstance(value, Traced):
        return value.replay(dna)
    compiled = compile_space(value)
    dna = _as_dna(compiled.space, dna)
    if dna.index.ndim != 1:
        raise ValueError(
            f"materialize() takes one DNA, got a batch of shape {dna.index.shape}; "
            f"materialize each row: [pl.materialize(value, d) for d in batch]"
        )
    if check:
        compiled.space.validate(dna)
    return compiled.plan.materialize(np.asarray(dna.index).tolist(), np.asarray(dna.value).tolist())


def encode(value: Any, concrete: Any) -> DNA:
    """Returns the DNA with which ``materialize(value, dna) == concrete`` (the inverse).

    Raises:
        ValueError: if the concrete value is not a point of the space (naming the path).

    Example:
        >>> import pliant as pl
        >>> sp = pl.freeze({"act": pl.oneof(["relu", "gelu"]), "lr": pl.floatv(0.0, 1.0)})
        >>> pl.encode(sp, {"act": "gelu", "lr": 0.5}).to_dict()
        {'act': 'gelu', 'lr': 0.5}
    """
    compiled = compile_space(value)
    sp = compiled.space
    idx: list = [None] * len(sp.slots)
    val: list = [None] * len(sp.slots)
    try:
        compiled.plan.encode(freeze(concrete), idx, val, KeyPath())
    except _Mismatch as e:
        raise ValueError(f"encode(): the value is not a point of this space: {e}") from None
    idx = [0 if i is None else i for i in idx]
    val = [0.0 if v is None else v for v in val]
    dna = sp.make_dna(np.asarray(idx, np.int32), np.asarray(val, np.float64))
    return sp.validate(dna)


def iterate(value: Any, limit: int | None = None) -> Iterator[Any]:
    """Lazily yields every concrete value of a finite space, in a deterministic order.

    Raises:
        ValueError: if the space has a float decision (it is infinite).

    Example:
        >>> import pliant as pl
        >>> list(pl.iterate([pl.oneof([1, 2]), pl.oneof(["a", "b"])]))
        [[1, 'a'], [1, 'b'], [2, 'a'], [2, 'b']]
    """
    from pliant.spaces.sampling import iterate_dna

    compiled = compile_space(value)
    for i, dna in enumerate(iterate_dna(compiled.space)):
        if limit is not None and i >= limit:
            return
        yield materialize(value, dna, check=False)


def random_sample(value: Any, seed: Any = 0) -> Any:
    """Returns one uniformly random concrete value of a search space.

    Example:
        >>> import pliant as pl
        >>> pl.random_sample({"w": pl.oneof([8, 16])}, seed=1) in ({"w": 8}, {"w": 16})
        True
    """
    from pliant.spaces.sampling import random_dna

    return materialize(value, random_dna(space(value), seed), check=False)
