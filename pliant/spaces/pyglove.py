"""Lossless interop with PyGlove: `Space` <-> ``pg.DNASpec`` and `DNA` <-> ``pg.DNA``.

A choice slot becomes ``pg.geno.Choices(1, ...)`` with ``literal_values``, an int slot a
Choices over the literals ``lo..hi``, a float slot ``pg.geno.Float(lo, hi, scale=None|'log')``,
a manyof group ``Choices(k, ..., distinct=, sorted=)``. A slot conditioned on candidate c of p
is an element of the ``pg.geno.Space`` of that candidate; one conditioned on c1 OR c2 of p is
copied under both. Ids become relative locations and literals are shown as ``pg.dna_spec``
shows them, so ``{'a': pl.oneof([1, {'b': ...}])}`` reads ``a[=1/2].b`` as if written with
``pg.oneof``. What PyGlove has no field for (int slots and their scale, ids and names that
locations do not give, the slot order, a manyof of one position, the merging of copies) rides
in the root's ``hints={'pliant': {...}}``, written only when needed, so that
``from_dna_spec(to_dna_spec(space)) == space``. DNA conversion does not read hints.

PyGlove cannot express a slot conditioned on several parent slots, manyof positions with
different conditional sub-spaces (PyGlove shares candidates between positions), or an int slot
over more than `MAX_INT_CHOICES` values: these raise ValueError naming the slot. PyGlove is
imported lazily, never by ``import pliant``.

Example:
    >>> import pliant as pl
    >>> space = pl.space({'act': pl.oneof(['relu', 'gelu']), 'lr': pl.floatv(1e-4, 0.1)})
    >>> spec = to_dna_spec(space)
    >>> [str(dp.id) for dp in spec.decision_points], list(spec.elements[0].literal_values)
    (['act', 'lr'], ["'relu'", "'gelu'"])
    >>> from_dna_spec(spec) == space
    True
    >>> dna = space.from_dict({'act': 'gelu', 'lr': 0.01})
    >>> to_pg_dna(space, dna), from_pg_dna(space, to_pg_dna(space, dna)) == dna
    (DNA([1, 0.01]), True)
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from pliant.spaces.dna import DNA, Group, Slot, Space
from pliant.symbolic import KeyPath

if TYPE_CHECKING:
    import pyglove as pg

__all__ = [
    "MAX_INT_CHOICES",
    "PyGloveSpace",
    "from_dna_spec",
    "from_pg_dna",
    "pyglove_space",
    "to_dna_spec",
    "to_pg_dna",
]

# PyGlove has no int decision point; an int slot becomes one candidate per value, and PyGlove
# builds candidates at about 1 ms each.
MAX_INT_CHOICES = 4096
_HINTS = "pliant"
_VERSION = 1


def _pg() -> Any:
    import pyglove

    return pyglove


# ----------------------------------------------------------------------------- the pliant tree


class _Tree(NamedTuple):
    """A space as PyGlove sees it: units (a slot, or a manyof's positions) nested by condition."""

    units: tuple[tuple[int, ...], ...]
    roots: tuple[int, ...]
    kids: dict[tuple[int, int], tuple[int, ...]]  # (parent slot, candidate) -> units, in order


@functools.lru_cache(maxsize=256)
def _tree(space: Space) -> _Tree:
    slots, groups = space.slots, space.groups
    units = tuple(
        groups[s.group].slots if s.group >= 0 else (i,)
        for i, s in enumerate(slots)
        if s.group < 0 or groups[s.group].slots[0] == i
    )
    roots: list[int] = []
    kids: dict[tuple[int, int], list[int]] = {}
    for u, pos in enumerate(units):
        s = slots[pos[0]]
        if s.kind == "int" and s.num_choices > MAX_INT_CHOICES:
            raise ValueError(
                f"slot {s.id!r}: an int slot of {s.num_choices} values becomes one PyGlove "
                f"candidate per value, and at most {MAX_INT_CHOICES} are supported; use a float "
                "slot or a coarser choice of values."
            )
        parents = sorted({p for p, _ in s.conditions})
        if len(parents) > 1:
            raise ValueError(
                f"slot {s.id!r} is conditioned on several parent slots "
                f"({[slots[p].id for p in parents]}), which a PyGlove DNASpec cannot express: "
                "each of its decisions sits under one candidate of one parent. Condition the slot "
                "on a single parent (or split it into one slot per parent)."
            )
        if not parents:
            roots.append(u)
        for c in sorted({c for _, c in s.conditions}):
            kids.setdefault((parents[0], c), []).append(u)
    tree = _Tree(units, tuple(roots), {k: tuple(v) for k, v in kids.items()})
    for pos in units:
        if len(pos) > 1 and len({_signature(space, tree, slot=p) for p in pos}) > 1:
            raise ValueError(
                f"manyof {slots[pos[0]].id!r}: its positions have different conditional "
                "sub-spaces, but PyGlove's Choices(num_choices=k) shares one set of candidates "
                "between its positions. Give every position the same sub-spaces."
            )
    return tree


def _signature(space: Space, tree: _Tree, unit: int | None = None, slot: int = -1) -> tuple:
    """What fixes the shape of a PyGlove DNA: of the roots, of ``unit``, or of ``slot``'s kids."""
    if unit is None and slot < 0:
        return tuple(_signature(space, tree, u) for u in tree.roots)
    if unit is None:
        n = space.slots[slot].num_choices
        kids = [tree.kids.get((slot, c), ()) for c in range(n)]
        return tuple(tuple(_signature(space, tree, v) for v in vs) for vs in kids)
    pos = tree.units[unit]
    s = space.slots[pos[0]]
    if s.kind == "float":
        return ("float", s.lo, s.hi, s.scale == "log")
    flags = (space.groups[s.group].distinct, space.groups[s.group].sorted) if len(pos) > 1 else None
    return ("choices", s.num_choices, len(pos), flags, _signature(space, tree, slot=pos[0]))


@functools.lru_cache(maxsize=256)
def _space_signature(space: Space) -> tuple:
    return _signature(space, _tree(space))


def _pg_signature(dp: Any) -> tuple:
    if _is_space(dp):
        return tuple(_pg_signature(e) for e in dp.elements)
    if dp.is_numerical:
        return ("float", dp.min_value, dp.max_value, dp.scale == "log")
    if not dp.is_categorical:
        return (type(dp).__name__,)
    k = dp.num_choices
    flags = (dp.distinct, dp.sorted) if k > 1 else None
    cands = tuple(_pg_signature(c) for c in dp.candidates)
    return ("choices", len(dp.candidates), k, flags, cands)


def _is_space(spec: Any) -> bool:
    return bool(getattr(spec, "is_space", False))


# ----------------------------------------------------------------------------- ids and literals


def _keys(ident: str) -> tuple:
    """The key path of a slot id (``()`` for ``'<root>'``); one odd key if it does not parse."""
    if ident == "<root>":
        return ()
    try:
        path = KeyPath.parse(ident)
    except ValueError:
        return (ident,)
    return tuple(path) if str(path) == ident else (ident,)


def _ident(keys: tuple) -> str:
    return str(KeyPath(keys)) or "<root>"


def _pg_key(key: Any) -> str | int:
    return key if type(key) in (str, int) else str(key)


def _encode_literal(x: Any) -> Any:
    # As pg.dna_spec shows candidates: numbers (and bools) as they are, the rest formatted.
    return repr(x) if x is None or isinstance(x, str) else x


def _decode_literal(x: Any) -> Any:
    if isinstance(x, str):
        try:
            v = ast.literal_eval(x)
        except Exception:  # any text that is not a quoted string or None stays as it is
            return x
        if v is None or isinstance(v, str):
            return v
    return x


def _typed(literals: Sequence[Any]) -> tuple:
    return tuple((type(x), x) for x in literals)


# ----------------------------------------------------------------------------- Space -> DNASpec


def to_dna_spec(space: Space) -> pg.geno.Space:
    """Converts a `Space` into a PyGlove ``DNASpec`` (see the module docstring for the mapping).

    Args:
        space: The space to convert.

    Returns:
        A new ``pg.geno.Space`` with ``space_size == space.size`` for finite spaces.

    Raises:
        TypeError: If ``space`` is not a `Space`.
        ValueError: For a slot conditioned on several parent slots, a manyof whose positions
            have different conditional sub-spaces, an int slot over more than
            `MAX_INT_CHOICES` values, or names that PyGlove rejects; the message names the slot.

    Example:
        >>> from pliant.spaces.dna import Slot
        >>> space = Space([Slot('op', 'choice', 2, literals=('conv', None)),
        ...                Slot('k', 'int', 3, lo=1, hi=3, conditions=((0, 0),))])
        >>> spec = to_dna_spec(space)
        >>> spec.space_size == space.size == 4
        True
        >>> [str(dp.id) for dp in spec.decision_points]
        ['op', 'op[=0/2].k']
        >>> spec.hints['pliant'].sym_jsonify()
        {'version': 1, 'slots': [[1, {'id': 'k', 'kind': 'int'}]]}
    """
    if not isinstance(space, Space):
        raise TypeError(f"to_dna_spec: expected a pliant Space, got {space!r:.100}.")
    pg = _pg()
    tree = _tree(space)
    builder = _Builder(space, tree, pg)
    try:
        root = pg.geno.Space(builder.elements(tree.roots, None, 0, "", True))
    except ValueError as e:
        raise ValueError(f"to_dna_spec: PyGlove rejected the DNASpec of this space: {e}") from e
    recs, cgroups = _canonical(root)
    patch = _diff(space, recs, cgroups, builder.occurrences)
    if patch:
        root.rebind(hints={_HINTS: patch})
    return root


class _Builder:
    """Builds PyGlove decision points in the canonical walk order, recording the slots met."""

    def __init__(self, space: Space, tree: _Tree, pg: Any) -> None:
        self.space, self.tree, self.pg = space, tree, pg
        self.occurrences: list[int] = []  # slot of each decision, in `_canonical`'s order
        self.named: set[str] = set()
        self.unit_keys = [self._unit_keys(pos) for pos in tree.units]

    def _unit_keys(self, pos: tuple[int, ...]) -> tuple:
        ids = [self.space.slots[p].id for p in pos]
        if self.space.slots[pos[0]].group >= 0 and ids[0].endswith("[0]"):
            stem = ids[0][:-3]
            if all(x == f"{stem}[{t}]" for t, x in enumerate(ids)):
                return _keys(stem)
        return _keys(ids[0])

    def elements(
        self, units: Sequence[int], parent: tuple | None, c: int, suffix: str, emit: bool
    ) -> list[Any]:
        base = () if parent is None else (*parent, "candidates", c)
        used: set[tuple] = set()
        out = []
        for u in units:
            keys = self.unit_keys[u]
            if keys[: len(base)] == base:
                loc = keys[len(base) :]
            elif parent and keys[: len(parent)] == parent and len(keys) > len(parent):
                loc = keys[len(parent) :]
            else:
                loc = keys
            while loc in used:  # only ids that were not derived from paths can meet here
                loc = (*loc, f"_{u}")
            used.add(loc)
            out.append(self.unit(u, (*base, *loc), loc, suffix, emit))
        return out

    def name(self, name: str | None, suffix: str) -> str | None:
        if name is None or not name.endswith(suffix) or name[: len(name) - len(suffix)] == "":
            return None
        stem = name[: len(name) - len(suffix)]
        if stem in self.named:  # PyGlove names are unique; copies stay unnamed (see the hints)
            return None
        self.named.add(stem)
        return stem

    def unit(self, u: int, sid: tuple, loc: tuple, suffix: str, emit: bool) -> Any:
        pg, slots, kids = self.pg, self.space.slots, self.tree.kids
        pos = self.tree.units[u]
        s = slots[pos[0]]
        self.occurrences.extend(pos)
        location = pg.KeyPath([_pg_key(k) for k in loc])
        if s.kind == "float":
            if not emit:
                return None
            scale = "log" if s.scale == "log" else None
            name = self.name(s.name, suffix)
            return pg.geno.Float(s.lo, s.hi, scale=scale, location=location, name=name)
        k = len(pos)
        cands: list[Any] = []
        for t, p in enumerate(pos):
            sub_sid, sub_suffix = (sid, suffix) if k == 1 else ((*sid, t), f"{suffix}[{t}]")
            spaces = [
                self.elements(kids.get((p, c), ()), sub_sid, c, sub_suffix, emit and t == 0)
                for c in range(s.num_choices)
            ]
            if t == 0:
                cands = spaces
        if not emit:
            return None
        if s.kind == "int":
            literals = list(range(int(s.lo), int(s.hi) + 1))
        else:
            literals = [_encode_literal(x) for x in s.literals]
        distinct, sorted_ = True, False
        if s.group >= 0:
            g = self.space.groups[s.group]
            distinct, sorted_ = g.distinct, g.sorted
        stem = s.name
        if k > 1:  # positions named like pl.manyof names them: 'm[0]', 'm[1]', ...
            names = [slots[p].name for p in pos]
            stem = None if s.name is None else s.name.removesuffix("[0]")
            if names != [f"{stem}[{t}]" for t in range(k)]:
                stem = None
        name = self.name(stem, suffix)
        return pg.geno.Choices(
            k,
            [pg.geno.Space(e) for e in cands],
            literal_values=literals,
            distinct=distinct,
            sorted=sorted_,
            location=location,
            name=name,
        )


def _diff(space: Space, recs: list[_Rec], cgroups: list, occurrences: list[int]) -> dict:
    """The hints that turn the canonical reading of a spec back into ``space``."""
    if len(recs) != len(occurrences):
        raise RuntimeError("to_dna_spec: internal error (walks disagree); please report it.")
    fixes = []
    for k, (r, i) in enumerate(zip(recs, occurrences)):
        s, fix = space.slots[i], dict[str, Any]()
        if r.id != s.id:
            fix["id"] = s.id
        if r.name != s.name:
            fix["name"] = s.name
        if s.kind == "int":
            fix["kind"] = "int"
            if s.scale == "log":
                fix["scale"] = "log"
        elif s.kind == "choice" and _typed(r.literals) != _typed(s.literals):
            fix["literals"] = list(s.literals)
        if s.group >= 0 and len(space.groups[s.group].slots) == 1:
            g = space.groups[s.group]
            fix["group"] = [g.distinct, g.sorted]
        if fix:
            fixes.append([k, fix])
    patch: dict[str, Any] = {"version": _VERSION, "slots": fixes}
    got = _assemble(recs, cgroups, patch)
    if [s.id for s in got.slots] != [s.id for s in space.slots]:
        patch["order"] = [s.id for s in space.slots]
        got = _assemble(recs, cgroups, patch)
    ids = [s.id for s in space.slots]
    conditions = [
        [s.id, [[ids[p], c] for p, c in s.conditions]]
        for s, g in zip(space.slots, got.slots)
        if s.conditions != g.conditions
    ]
    if conditions:
        patch["conditions"] = conditions
    if got.groups != space.groups:
        patch["groups"] = [ids[g.slots[0]] for g in space.groups]
    if conditions or "groups" in patch:
        got = _assemble(recs, cgroups, patch)
    if got != space:
        raise RuntimeError(
            "to_dna_spec: internal error, the DNASpec would not convert back to this space; "
            f"please report it with the space: {space.to_json()[:300]}"
        )
    return patch if fixes or len(patch) > 2 else {}  # {} when no hints are needed


# ----------------------------------------------------------------------------- DNASpec -> Space


class _Rec(NamedTuple):  # one decision of a DNASpec as read canonically, before the hints
    id: str
    kind: str
    num_choices: int
    lo: float
    hi: float
    scale: str
    name: str | None
    literals: tuple
    conditions: tuple[tuple[int, int], ...]  # (record, candidate)


def _canonical(spec: Any) -> tuple[list[_Rec], list[tuple[tuple[int, ...], bool, bool]]]:
    """Reads a DNASpec the way `pl.space` would compile the same space.

    Slots come in pre-order (a manyof's positions, then each position's sub-spaces), ids are
    key paths (``a.candidates[1].b``, ``c[0]``), names inside manyof candidates get the
    position as a suffix, literals are decoded from PyGlove's display form.
    """
    pg = _pg()
    recs: list[_Rec] = []
    groups: list[tuple[tuple[int, ...], bool, bool]] = []

    def elements(space: Any, parent: tuple | None, c: int, cond: tuple, suffix: str) -> None:
        base = () if parent is None else (*parent, "candidates", c)
        for dp in space.elements:
            unit(dp, base, cond, suffix)

    def unit(dp: Any, base: tuple, cond: tuple, suffix: str) -> None:
        sid = (*base, *(_pg_key(k) for k in dp.location.keys))
        ident = _ident(sid)
        name = None if dp.name is None else f"{dp.name}{suffix}"
        if isinstance(dp, pg.geno.Float):
            if dp.scale not in (None, "linear", "log"):
                raise ValueError(
                    f"from_dna_spec: Float {str(dp.id)!r} has scale {dp.scale!r}; pliant supports "
                    "None, 'linear' and 'log'."
                )
            scale = "log" if dp.scale == "log" else "linear"
            lo, hi = float(dp.min_value), float(dp.max_value)
            recs.append(_Rec(ident, "float", 0, lo, hi, scale, name, (), cond))
            return
        if not isinstance(dp, pg.geno.Choices):
            raise ValueError(
                f"from_dna_spec: decision point {str(dp.id)!r} is a {type(dp).__name__}; pliant "
                "converts pg.geno.Choices (oneof, manyof) and pg.geno.Float (floatv) only."
            )
        n, k = len(dp.candidates), dp.num_choices
        lits = tuple(_decode_literal(x) for x in dp.literal_values or ())
        if k == 1:
            r = len(recs)
            recs.append(_Rec(ident, "choice", n, 0.0, 0.0, "linear", name, lits, cond))
            for c, cand in enumerate(dp.candidates):
                elements(cand, sid, c, ((r, c),), suffix)
            return
        first = len(recs)
        for t in range(k):
            pname = None if name is None else f"{name}[{t}]"
            recs.append(_Rec(f"{ident}[{t}]", "choice", n, 0.0, 0.0, "linear", pname, lits, cond))
        groups.append((tuple(range(first, first + k)), dp.distinct, dp.sorted))
        for t in range(k):
            for c, cand in enumerate(dp.subchoice(t).candidates):
                elements(cand, (*sid, t), c, ((first + t, c),), f"{suffix}[{t}]")

    if _is_space(spec):
        elements(spec, None, 0, (), "")
    else:
        unit(spec, (), (), "")
    return recs, groups


def _assemble(recs: list[_Rec], cgroups: list, patch: Any) -> Space:
    """Applies the hints to canonical records: fixes fields, merges copies, orders slots."""
    stale = "the 'pliant' hints of this DNASpec do not match its decision points"
    fixes = {int(k): dict(f) for k, f in patch.get("slots", ())}
    rows: list[_Rec] = []
    for k, r in enumerate(recs):
        fix = fixes.get(k, {})
        r = r._replace(id=fix.get("id", r.id), name=fix.get("name", r.name))
        if fix.get("kind") == "int":
            lits = r.literals
            if (
                not lits
                or any(type(x) is not int for x in lits)
                or (list(lits) != list(range(lits[0], lits[0] + len(lits))))
            ):
                raise ValueError(f"from_dna_spec: {stale} (decision {k} is no int range).")
            scale = fix.get("scale", "linear")
            r = r._replace(kind="int", lo=float(lits[0]), hi=float(lits[-1]), scale=scale)
            r = r._replace(literals=())
        elif "literals" in fix:
            r = r._replace(literals=tuple(fix["literals"]))
        rows.append(r)
    where: dict[str, int] = {}
    firsts: list[int] = []
    slot_of: list[int] = []
    for k, r in enumerate(rows):
        i = where.setdefault(r.id, len(firsts))
        if i == len(firsts):
            firsts.append(k)
        elif "id" not in fixes.get(k, {}):
            raise ValueError(
                f"from_dna_spec: two decision points read as the same slot id {r.id!r}; give "
                "them distinct locations."
            )
        elif r[1:6] != rows[firsts[i]][1:6]:
            raise ValueError(f"from_dna_spec: {stale} (copies of {r.id!r} differ).")
        slot_of.append(i)
    conds: list[list[tuple[int, int]]] = [[] for _ in firsts]
    for k, r in enumerate(rows):
        for p, c in r.conditions:
            if (slot_of[p], c) not in conds[slot_of[k]]:
                conds[slot_of[k]].append((slot_of[p], c))
    groups: list[tuple[tuple[int, ...], bool, bool]] = []
    for pos, distinct, sorted_ in cgroups:
        g = (tuple(slot_of[p] for p in pos), distinct, sorted_)
        if g not in groups:
            groups.append(g)
    for k in range(len(rows)):
        flags = fixes.get(k, {}).get("group")  # a manyof of one position: [distinct, sorted]
        if flags is not None:
            g = ((slot_of[k],), bool(flags[0]), bool(flags[1]))
            if g not in groups:
                groups.append(g)
    ids = [rows[k].id for k in firsts]
    order = list(range(len(firsts)))
    if "order" in patch:
        want = list(patch["order"])
        if sorted(want) != sorted(ids):
            raise ValueError(f"from_dna_spec: {stale} (the slot order lists other ids).")
        at = {x: i for i, x in enumerate(ids)}
        order = [at[x] for x in want]
    new = {old: i for i, old in enumerate(order)}
    index = {ids[old]: i for old, i in new.items()}
    fixed_conds = {x: cs for x, cs in patch.get("conditions", ())}
    group_ids = [rows[firsts[g[0][0]]].id for g in groups]
    if "groups" in patch:
        if sorted(patch["groups"]) != sorted(group_ids):
            raise ValueError(f"from_dna_spec: {stale} (the group order lists other slots).")
        groups = [groups[group_ids.index(x)] for x in patch["groups"]]
    else:
        groups.sort(key=lambda g: new[g[0][0]])
    group_of = {new[p]: j for j, g in enumerate(groups) for p in g[0]}
    slots = []
    for i, old in enumerate(order):
        r = rows[firsts[old]]
        if r.id in fixed_conds:
            try:
                cond = tuple((index[p], int(c)) for p, c in fixed_conds[r.id])
            except KeyError:
                raise ValueError(f"from_dna_spec: {stale} (conditions of {r.id!r}).") from None
        else:
            cond = tuple((new[p], c) for p, c in conds[old])
        group = group_of.get(i, -1)
        slots.append(
            Slot(r.id, r.kind, r.num_choices, r.lo, r.hi, r.scale, cond, r.name, r.literals, group)
        )
    out = [Group(tuple(sorted(new[p] for p in g[0])), g[1], g[2]) for g in groups]
    try:
        return Space(slots, out)
    except ValueError as e:
        why = stale if patch else "the DNASpec does not read as a valid space"
        raise ValueError(f"from_dna_spec: {why} ({e})") from None


def from_dna_spec(spec: pg.DNASpec) -> Space:
    """Converts a PyGlove ``DNASpec`` into a `Space` (the inverse of `to_dna_spec`).

    Slots get the order and ids that `pl.space` gives the same space written with pliant
    placeholders (parents first, a manyof's positions ``c[0]``, ``c[1]`` before their
    sub-spaces, ``a.candidates[j].b`` under candidate j of ``a``); display literals are decoded
    (``"'x'"`` to ``'x'``, ``'None'`` to None); names inside manyof candidates get the position
    as a suffix. For a spec made by `to_dna_spec`, the hints restore the space exactly.

    Args:
        spec: A ``pg.geno.Space`` (or a single ``pg.geno.Choices`` / ``pg.geno.Float``).

    Returns:
        A `Space` with ``size == spec.space_size`` (``math.inf`` for PyGlove's -1).

    Raises:
        TypeError: If ``spec`` is not a PyGlove DNASpec.
        ValueError: For a decision point other than Choices and Float (e.g. a
            ``pg.geno.CustomDecisionPoint``), a float scale other than linear or log,
            colliding ids, or hints that no longer fit the spec.

    Example:
        >>> import pyglove as pg
        >>> value = pg.Dict(a=pg.oneof([1, pg.Dict(b=pg.oneof(['x', 'y']))]),
        ...                 c=pg.manyof(2, [1, 2, 3]), d=pg.floatv(0.1, 1.0))
        >>> space = from_dna_spec(pg.dna_spec(value))
        >>> [s.id for s in space.slots]
        ['a', 'a.candidates[1].b', 'c[0]', 'c[1]', 'd']
        >>> space.slots[1].literals, space.slots[1].conditions
        (('x', 'y'), ((0, 1),))
    """
    pg = _pg()
    if not isinstance(spec, pg.DNASpec):
        raise TypeError(
            f"from_dna_spec: expected a PyGlove DNASpec (e.g. pg.dna_spec(value)), got "
            f"{spec!r:.100}."
        )
    recs, cgroups = _canonical(spec)
    hints = spec.hints if _is_space(spec) else None
    patch = hints.get(_HINTS) if isinstance(hints, dict) else None
    if patch is None:
        return _assemble(recs, cgroups, {})
    if not isinstance(patch, dict) or patch.get("version") != _VERSION:
        raise ValueError(
            f"from_dna_spec: hints['pliant'] must be written by to_dna_spec (version "
            f"{_VERSION}), got {patch!r:.100}."
        )
    space = _assemble(recs, cgroups, patch)
    if _space_signature(space) != _pg_signature(spec):
        raise ValueError(
            "from_dna_spec: the 'pliant' hints of this DNASpec do not match its decision points "
            "(was the spec edited?); drop spec.hints['pliant'] to convert it structurally."
        )
    return space


# ----------------------------------------------------------------------------- DNA conversion


@functools.lru_cache(maxsize=64)
def _spec(space: Space) -> Any:
    return to_dna_spec(space)  # private: only read (validate), never handed out


def to_pg_dna(space: Space, dna: DNA, spec: pg.DNASpec | None = None) -> pg.DNA:
    """Converts a DNA of ``space`` into the PyGlove DNA of ``to_dna_spec(space)``, exactly.

    Args:
        space: The space of ``dna``.
        dna: A single, valid DNA of ``space``.
        spec: If given, a DNASpec of the space (such as the one a PyGlove generator was set up
            with) to attach with ``use_spec``, which also validates the result against it.

    Returns:
        A ``pg.DNA``.

    Raises:
        TypeError: If ``dna`` is not a DNA or is a batch.
        ValueError: If ``dna`` is not a valid DNA of ``space``, the space cannot be expressed
            in PyGlove (see `to_dna_spec`), or ``spec`` does not fit the DNA.

    Example:
        >>> import pliant as pl
        >>> space = pl.space({'c': pl.manyof(2, ['a', 'b', 'c']), 'x': pl.floatv(0.0, 1.0)})
        >>> dna = space.from_list([2, 0, 0.25])
        >>> to_pg_dna(space, dna, spec=to_dna_spec(space)).to_dict()
        {'c[0]': 2, 'c[1]': 0, 'x': 0.25}
    """
    if not isinstance(dna, DNA):
        raise TypeError(f"to_pg_dna: expected a pliant DNA, got {dna!r:.100}.")
    if dna.batch_shape:
        raise TypeError(
            f"to_pg_dna: expected a single DNA, got a batch of shape {dna.batch_shape}; convert "
            "each row: [to_pg_dna(space, d) for d in batch]."
        )
    space.validate(dna)
    pg = _pg()
    tree = _tree(space)
    index = np.asarray(dna.index).tolist()
    value = np.asarray(dna.value, np.float64).tolist()
    slots = space.slots

    def unit(u: int) -> Any:
        pos = tree.units[u]
        if slots[pos[0]].kind == "float":
            return pg.DNA(value[pos[0]])
        picks = [pg.DNA(index[p], [unit(v) for v in tree.kids.get((p, index[p]), ())]) for p in pos]
        return picks[0] if len(picks) == 1 else pg.DNA(None, picks)

    out = pg.DNA(None, [unit(u) for u in tree.roots])
    if spec is not None:
        try:
            out.use_spec(spec)
        except ValueError as e:
            raise ValueError(
                f"to_pg_dna: the DNA does not fit the given spec ({e}); pass to_dna_spec(space)."
            ) from None
    return out


def from_pg_dna(space: Space, pg_dna: pg.DNA) -> DNA:
    """Converts a PyGlove DNA of ``to_dna_spec(space)`` into a DNA of ``space``.

    Args:
        space: The space the DNA is for.
        pg_dna: A ``pg.DNA``, with or without a spec attached (e.g. proposed by a PyGlove
            generator set up with ``to_dna_spec(space)``).

    Returns:
        A valid `DNA` of ``space``.

    Raises:
        TypeError: If ``pg_dna`` is not a ``pg.DNA``.
        ValueError: If it does not fit ``to_dna_spec(space)`` (a DNA of another space).

    Example:
        >>> import pyglove as pg
        >>> import pliant as pl
        >>> space = pl.space({'a': pl.oneof(['x', {'b': pl.intv(1, 3)}])})
        >>> from_pg_dna(space, pg.DNA((1, 2))).to_list()
        [1, 2]
    """
    pg = _pg()
    if not isinstance(pg_dna, pg.DNA):
        raise TypeError(f"from_pg_dna: expected a pg.DNA, got {pg_dna!r:.100}.")
    tree, slots = _tree(space), space.slots
    spec = pg_dna.spec  # a generator's proposal carries the spec it was set up with
    if spec is None or _pg_signature(spec) != _space_signature(space):
        spec = _spec(space)
    try:
        spec.validate(pg_dna)
    except (ValueError, TypeError, IndexError, KeyError, AttributeError) as e:
        raise ValueError(
            f"from_pg_dna: {pg_dna!r:.100} is not a DNA of this space's DNASpec ({e}); convert "
            "DNAs proposed for to_dna_spec(space) only."
        ) from None
    index, value = np.zeros(len(slots), np.int32), np.zeros(len(slots))
    numbers: Iterator[Any] = iter(pg_dna.to_numbers())

    def unit(u: int) -> None:
        for p in tree.units[u]:  # the spec has validated the shape, so the numbers line up
            x = next(numbers)
            if slots[p].kind == "float":
                value[p] = x
                continue
            index[p] = x
            for v in tree.kids.get((p, x), ()):
                unit(v)

    for u in tree.roots:
        unit(u)
    return space.validate(space.make_dna(index, value))


# ----------------------------------------------------------------------------- hyper values


class PyGloveSpace(NamedTuple):
    """A PyGlove hyper value seen as a pliant search space (see `pyglove_space`).

    Attributes:
        value: The PyGlove hyper value (e.g. a ``pg.Dict`` holding ``pg.oneof``).
        spec: Its DNASpec, ``pg.dna_spec(value)``.
        space: ``from_dna_spec(spec)``: the space pliant algorithms search.

    Example:
        >>> import pyglove as pg
        >>> ps = pyglove_space(pg.Dict(x=pg.oneof([1, 2])))
        >>> ps.materialize(ps.space.from_dict({'x': 2}))
        {x=2}
    """

    value: Any
    spec: pg.DNASpec
    space: Space

    def materialize(self, dna: DNA) -> Any:
        """The concrete PyGlove value that ``dna`` (a DNA of ``self.space``) picks.

        Example:
            >>> import pyglove as pg
            >>> ps = pyglove_space(pg.oneof(['a', 'b']))
            >>> ps.materialize(ps.space.from_list([1]))
            'b'
        """
        return _pg().materialize(self.value, to_pg_dna(self.space, dna))

    def encode(self, value: Any) -> DNA:
        """The DNA of ``self.space`` that materializes to ``value`` (a concrete PyGlove value).

        Example:
            >>> import pyglove as pg
            >>> ps = pyglove_space(pg.Dict(x=pg.oneof([1, 2])))
            >>> ps.encode(pg.Dict(x=2)).to_list()
            [1]
        """
        return from_pg_dna(self.space, _pg().template(self.value).encode(value))


def pyglove_space(hyper_value: Any) -> PyGloveSpace:
    """Wraps a PyGlove hyper value so that pliant can search it.

    Args:
        hyper_value: Any value ``pg.dna_spec`` accepts: a symbolic value holding ``pg.oneof``,
            ``pg.manyof``, ``pg.floatv`` (not ``pg.evolve``/``pg.custom``).

    Returns:
        A `PyGloveSpace` with the spec, the pliant space and ``materialize``/``encode``.

    Raises:
        ValueError: If the value holds a decision pliant cannot represent.

    Example:
        >>> import pyglove as pg
        >>> ps = pyglove_space(pg.Dict(c=pg.manyof(2, [1, 2, 3]), d=pg.floatv(0.1, 1.0)))
        >>> ps.space.size, ps.spec.space_size
        (inf, -1)
        >>> ps.materialize(ps.space.from_list([2, 0, 0.5])).sym_jsonify()
        {'c': [3, 1], 'd': 0.5}
    """
    spec = _pg().dna_spec(hyper_value)
    return PyGloveSpace(hyper_value, spec, from_dna_spec(spec))
