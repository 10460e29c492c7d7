"""Slots, groups and the checks behind the DNA layer (split out of ``dna.py`` to keep it short).

Everything here is private to :mod:`pliant.spaces.dna`, which re-exports `Slot` and `Group`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from pliant.spaces.dna import Space

_KINDS = ("choice", "int", "float")
_SCALES = ("linear", "log")
_INT32_MAX = 2**31 - 1
_FORMAT = "pliant.Space"


class Slot(NamedTuple):
    """One decision point of a `Space`.

    Attributes:
        id: Stable decision id, e.g. ``'blocks[0].op'``; unique within a space.
        kind: ``'choice'``, ``'int'`` or ``'float'``.
        num_choices: Candidates of a choice slot; ``hi - lo + 1`` for an int slot; 0 for float.
        lo: Inclusive lower bound of an int/float slot (0 for choice).
        hi: Inclusive upper bound of an int/float slot (0 for choice).
        scale: ``'linear'`` or ``'log'`` (int/float slots; log needs ``lo > 0``).
        conditions: ``()`` when always active; else ``((p, c), ...)``: active iff ANY parent
            slot ``p`` (an earlier choice/int slot) is active and holds index ``c``.
        name: User-given shared decision name; `DNA.to_dict` keys by it when set.
        literals: Choice slots: one display value (None/bool/int/float/str) per candidate;
            ``()`` means ``(0, 1, ..., num_choices - 1)``.
        group: Index into `Space.groups` for manyof positions, else -1.

    Example:
        >>> Slot('lr', 'float', 0, lo=1e-4, hi=1e-1, scale='log').scale
        'log'
    """

    id: str
    kind: str
    num_choices: int
    lo: float = 0.0
    hi: float = 0.0
    scale: str = "linear"
    conditions: tuple[tuple[int, int], ...] = ()
    name: str | None = None
    literals: tuple = ()
    group: int = -1


class Group(NamedTuple):
    """A manyof: ``k`` choice slots (positions) that are jointly constrained.

    Attributes:
        slots: Slot indices of the positions, strictly increasing.
        distinct: No two positions may hold the same candidate.
        sorted: Position indices must be ascending (non-decreasing when not distinct).

    Example:
        >>> Group((0, 1), distinct=True, sorted=False).distinct
        True
    """

    slots: tuple[int, ...]
    distinct: bool
    sorted: bool


# ----------------------------------------------------------------------------- construction


_PLAIN_LITERALS = frozenset({str, int, bool, type(None)})


def _literal_type(x: Any) -> str:
    if x is None:
        return "none"
    for name, t in (("bool", bool), ("int", int), ("float", float), ("str", str)):
        if isinstance(x, t):
            return name
    return ""


def _normalize_literal(x: Any, where: str) -> Any:
    if isinstance(x, np.generic):
        x = x.item()
    kind = _literal_type(x)
    if not kind:
        raise ValueError(
            f"{where}: literal {x!r} has type {type(x).__name__}; expected None, bool, int, float"
            " or str. Pass a short display string for other candidates."
        )
    if kind == "float":
        if math.isnan(x):
            raise ValueError(f'{where}: literal nan cannot be matched; use the string "nan".')
        return float(x) + 0.0  # folds -0.0 into 0.0 so equal spaces share a fingerprint
    if kind == "none":
        return None
    return {"bool": bool, "int": int, "str": str}[kind](x)  # drops subclasses such as IntEnum


def _as_int(x: Any, where: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int | np.integer):
        raise ValueError(f"{where}: expected an int, got {x!r}.")
    return int(x)


def _as_float(x: Any, where: str) -> float:
    if isinstance(x, bool) or not isinstance(x, int | float | np.integer | np.floating):
        raise ValueError(f"{where}: expected a real number, got {x!r}.")
    return float(x) + 0.0


def _normalize_slot(i: int, s: Any) -> Slot:
    if not isinstance(s, Slot):
        raise TypeError(
            f"slots[{i}]: expected a Slot, got {s!r}; build it with Slot(id, kind, ...)."
        )
    if not isinstance(s.id, str) or not s.id:
        raise ValueError(f"slots[{i}]: slot id must be a non-empty str, got {s.id!r}.")
    where = f"slot {s.id!r}"
    if s.kind not in _KINDS:
        raise ValueError(f"{where}: unknown kind {s.kind!r}; expected 'choice', 'int' or 'float'.")
    if s.scale not in _SCALES:
        raise ValueError(f"{where}: unknown scale {s.scale!r}; expected 'linear' or 'log'.")
    if s.name is not None and (not isinstance(s.name, str) or not s.name):
        raise ValueError(f"{where}: name must be None or a non-empty str, got {s.name!r}.")
    n = _as_int(s.num_choices, f"{where}.num_choices")
    lo, hi = _as_float(s.lo, f"{where}.lo"), _as_float(s.hi, f"{where}.hi")
    literals: tuple = ()
    if s.kind == "choice":
        if n < 1:
            raise ValueError(f"{where}: a choice slot needs num_choices >= 1, got {n}.")
        if lo != 0.0 or hi != 0.0 or s.scale != "linear":
            raise ValueError(
                f"{where}: a choice slot takes no bounds or scale; got lo={lo!r}, hi={hi!r}, "
                f"scale={s.scale!r}. Leave them at their defaults."
            )
        raw = tuple(s.literals) if len(s.literals) else tuple(range(n))
        if len(raw) != n:
            raise ValueError(f"{where}: expected {n} literals (one per candidate), got {len(raw)}.")
        if all(type(x) in _PLAIN_LITERALS for x in raw):
            literals = raw  # already normal (the common case: compiled spaces)
        else:
            literals = tuple(
                _normalize_literal(x, f"{where}.literals[{j}]") for j, x in enumerate(raw)
            )
    else:
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"{where}: bounds must be finite, got lo={lo!r}, hi={hi!r}.")
        if lo > hi:
            raise ValueError(f"{where}: lo > hi (lo={lo!r}, hi={hi!r}); swap the bounds.")
        if s.scale == "log" and lo <= 0:
            raise ValueError(f"{where}: log scale needs lo > 0, got lo={lo!r}.")
        if len(s.literals):
            raise ValueError(f"{where}: only choice slots take literals, got {s.literals!r}.")
        if s.kind == "int":
            if not (lo.is_integer() and hi.is_integer()):
                raise ValueError(f"{where}: int bounds must be integers, got lo={lo!r}, hi={hi!r}.")
            if n != hi - lo + 1:
                raise ValueError(
                    f"{where}: an int slot needs num_choices == hi - lo + 1 == {int(hi - lo + 1)}"
                    f", got {n}."
                )
            if n > _INT32_MAX:
                raise ValueError(f"{where}: int range of {n} values does not fit int32 indices.")
        elif n != 0:
            raise ValueError(f"{where}: a float slot needs num_choices == 0, got {n}.")
    try:
        conditions = tuple((int(p), int(c)) for p, c in s.conditions)
    except (TypeError, ValueError):
        raise ValueError(
            f"{where}: conditions must be ((parent_slot, choice_index), ...), got {s.conditions!r}."
        ) from None
    group = _as_int(s.group, f"{where}.group")
    return Slot(s.id, s.kind, n, lo, hi, s.scale, conditions, s.name, literals, group)


def _normalize_group(j: int, g: Any) -> Group:
    if not isinstance(g, Group):
        raise TypeError(f"groups[{j}]: expected a Group, got {g!r}; build it with Group(...).")
    if not isinstance(g.slots, tuple | list) or not all(
        isinstance(d, bool) for d in (g.distinct, g.sorted)
    ):
        raise ValueError(
            f"groups[{j}]: expected Group(slots: tuple[int, ...], distinct: bool, sorted: bool), "
            f"got {g!r}."
        )
    return Group(tuple(_as_int(p, f"groups[{j}].slots") for p in g.slots), g.distinct, g.sorted)


def _check_space(slots: tuple[Slot, ...], groups: tuple[Group, ...]) -> None:
    ids: dict[str, int] = {}
    keys: dict[str, int] = {}
    for i, s in enumerate(slots):
        if s.id in ids:
            raise ValueError(f"duplicate slot id {s.id!r} (slots {ids[s.id]} and {i}).")
        ids[s.id] = i
        for p, c in s.conditions:
            if not 0 <= p < i:
                raise ValueError(
                    f"slot {s.id!r} (slot {i}): condition parent {p} must be an earlier slot "
                    f"(0 <= parent < {i}); order parents before their children."
                )
            parent = slots[p]
            if parent.kind == "float":
                raise ValueError(
                    f"slot {s.id!r}: condition parent {parent.id!r} is a float slot; "
                    "expected a choice or int slot."
                )
            if not 0 <= c < parent.num_choices:
                raise ValueError(
                    f"slot {s.id!r}: condition index {c} is out of range for parent {parent.id!r};"
                    f" expected 0 <= index < {parent.num_choices}."
                )
        if not -1 <= s.group < len(groups):
            raise ValueError(
                f"slot {s.id!r}: group {s.group} does not exist; expected -1 or "
                f"0..{len(groups) - 1}."
            )
    for i, s in enumerate(slots):
        key = s.name if s.name is not None else s.id
        other = keys.get(key)
        if other is None and s.name is not None and ids.get(s.name, i) != i:
            other = ids[s.name]
        if other is not None:
            raise ValueError(
                f"decision key {key!r} is used by slots {slots[other].id!r} and {s.id!r}; "
                "names and ids must not collide (one key per decision)."
            )
        keys[key] = i
    for g, group in enumerate(groups):
        pos = group.slots
        if not pos or any(not 0 <= p < len(slots) for p in pos) or list(pos) != sorted(set(pos)):
            raise ValueError(
                f"groups[{g}]: slots must be non-empty, strictly increasing slot indices in "
                f"0..{len(slots) - 1}, got {pos!r}."
            )
        first = slots[pos[0]]
        for p in pos:
            s = slots[p]
            if s.group != g:
                raise ValueError(f"slot {s.id!r} is listed in groups[{g}] but has group={s.group}.")
            if s.kind != "choice":
                raise ValueError(
                    f"slot {s.id!r} in groups[{g}] is a {s.kind} slot; expected choice."
                )
            if s.num_choices != first.num_choices or s.conditions != first.conditions:
                raise ValueError(
                    f"slot {s.id!r} in groups[{g}] differs from {first.id!r}; all positions of a "
                    "group need equal num_choices and conditions."
                )
        if group.distinct and len(pos) > first.num_choices:
            raise ValueError(
                f"groups[{g}] (first slot {first.id!r}): {len(pos)} distinct positions but only "
                f"{first.num_choices} candidates; use distinct=False or fewer positions."
            )
    for i, s in enumerate(slots):
        if s.group >= 0 and i not in groups[s.group].slots:
            raise ValueError(f"slot {s.id!r} has group={s.group} but that group does not list it.")


def _slot_active(conds: tuple[tuple[int, int], ...], index: Any, active: Any) -> bool:
    return not conds or any(active[p] and index[p] == c for p, c in conds)


def _match_literal(s: Slot, key: str, v: Any) -> int:
    if isinstance(v, np.generic):
        v = v.item()
    t = _literal_type(v)
    hits = [j for j, x in enumerate(s.literals) if _literal_type(x) == t and x == v]
    if not hits and t in ("int", "float"):  # 3 matches the literal 3.0 (but never True)
        hits = [
            j for j, x in enumerate(s.literals) if _literal_type(x) in ("int", "float") and x == v
        ]
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise ValueError(
            f"from_dict: slot {key!r}: value {v!r} matches candidates {hits} (equal display "
            "literals); use from_list with the candidate index instead."
        )
    raise ValueError(
        f"from_dict: slot {key!r}: value {v!r} is not a candidate; expected one of "
        f"{list(s.literals)!r}."
    )


def _first_problem(
    space: Space, idx: np.ndarray, val: np.ndarray, act: np.ndarray
) -> tuple[int, str] | None:
    """Returns (row, message) for the first row with a problem, else None."""
    nc, isf, lo, hi = space.num_choices, space.is_float, space.lo, space.hi
    slots = space.slots
    checks: list[tuple[np.ndarray, Any]] = []

    def index_msg(r: int, i: int) -> str:
        s, x = slots[i], int(idx[r, i])
        if s.kind == "int":
            return (
                f"slot {s.id!r}: int {int(s.lo) + x} (index {x}) is out of range; expected "
                f"{int(s.lo)} <= value <= {int(s.hi)}."
            )
        return f"slot {s.id!r}: index {x} is out of range; expected 0 <= index < {s.num_choices}."

    checks.append((act & ~isf & ((idx < 0) | (idx >= nc)), index_msg))
    with np.errstate(invalid="ignore"):
        bad_float = act & isf & ~((val >= lo) & (val <= hi))
    checks.append(
        (
            bad_float,
            lambda r, i: (
                f"slot {slots[i].id!r}: float {float(val[r, i])!r} is out of bounds or NaN; "
                f"expected {slots[i].lo!r} <= value <= {slots[i].hi!r}."
            ),
        )
    )
    checks.append(
        (
            ~act & ((idx != 0) | (val != 0)),
            lambda r, i: (
                f"slot {slots[i].id!r} is inactive but set (index {int(idx[r, i])}, value "
                f"{float(val[r, i])!r}); expected index 0 and value 0.0. Build DNAs with "
                "space.make_dna."
            ),
        )
    )
    checks.append(
        (
            act & ((isf & (idx != 0)) | (~isf & (val != 0))),
            lambda r, i: (
                f"slot {slots[i].id!r} is not canonical (index {int(idx[r, i])}, value "
                f"{float(val[r, i])!r}); expected index 0 for float slots and value 0.0 for others."
            ),
        )
    )
    expected = space._active(idx, np)
    checks.append(
        (
            act != expected,
            lambda r, i: (
                f"slot {slots[i].id!r}: active={bool(act[r, i])} is inconsistent with the "
                f"indices of its parent slots; expected active={bool(expected[r, i])}. Compute "
                "it with space.active_mask(index) or build DNAs with space.make_dna."
            ),
        )
    )
    for g in space.groups:
        pos = list(g.slots)
        gi, on = idx[:, pos], act[:, pos[0]]
        names = [slots[p].id for p in pos]
        if g.distinct:
            dup = np.zeros(idx.shape, bool)
            for j in range(1, len(pos)):
                dup[:, pos[j]] = on & (gi[:, :j] == gi[:, j : j + 1]).any(axis=1)
            checks.append(
                (
                    dup,
                    lambda r, i, gi=gi, names=names: (
                        f"slot {slots[i].id!r}: manyof indices "
                        f"{gi[r].tolist()} (slots {names}) repeat a candidate; expected distinct "
                        "indices."
                    ),
                )
            )
        if g.sorted:
            uns = np.zeros(idx.shape, bool)
            uns[:, pos[1:]] = on[:, None] & (gi[:, 1:] < gi[:, :-1])
            checks.append(
                (
                    uns,
                    lambda r, i, gi=gi, names=names: (
                        f"slot {slots[i].id!r}: manyof indices "
                        f"{gi[r].tolist()} (slots {names}) are not sorted; expected ascending "
                        "indices."
                    ),
                )
            )
    best: tuple[int, str] | None = None
    for mask, msg in checks:
        rows = mask.any(axis=1)
        if rows.any():
            r = int(rows.argmax())
            if best is None or r < best[0]:
                best = (r, msg(r, int(mask[r].argmax())))
    return best


# ----------------------------------------------------------------------------- DNA
