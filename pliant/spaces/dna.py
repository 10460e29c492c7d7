"""The DNA layer: a `Space` of decision slots and `DNA`, a fixed-shape point of it.

This module is the contract between search spaces and search algorithms. It knows nothing of
the symbolic model: a `Space` is a flat tuple of `Slot`s (one per decision point) plus the
`Group`s that tie manyof positions together, and a `DNA` holds three arrays of shape `[..., S]`
(`index`, `value`, `active`) that numpy code and `jax.jit` code can both work on.

Only numpy is imported here; jax is imported lazily by the functions that meet jax arrays.

Example:
    >>> space = Space([
    ...     Slot('op', 'choice', 2, literals=('conv', 'pool')),
    ...     Slot('width', 'int', 3, lo=1, hi=3, conditions=((0, 0),)),
    ... ])
    >>> space.size
    4
    >>> dna = space.from_dict({'op': 'conv', 'width': 2})
    >>> dna.to_list()
    [0, 1]
    >>> space.from_list([1, None]).to_dict()
    {'op': 'pool'}
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from pliant.spaces._slots import (
    _FORMAT,
    Group,
    Slot,
    _as_float,
    _check_space,
    _first_problem,
    _literal_type,
    _match_literal,
    _normalize_group,
    _normalize_slot,
    _slot_active,
)

__all__ = ["DNA", "Group", "Slot", "Space", "register_pytree"]


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


# ----------------------------------------------------------------------------- Space


class Space:
    """An immutable, hashable description of the decisions of a search space.

    Args:
        slots: The decision slots, parents before their children.
        groups: Manyof groups over choice slots.

    Raises:
        ValueError: On an invalid slot, condition, decision key or group; the message names it.

    Example:
        >>> space = Space(
        ...     [Slot('layers[0]', 'choice', 3, group=0), Slot('layers[1]', 'choice', 3, group=0)],
        ...     groups=[Group((0, 1), distinct=True, sorted=True)],
        ... )
        >>> len(space), space.size
        (2, 3)
    """

    __slots__ = ("_cache", "_groups", "_hash", "_key", "_slots")

    _slots: tuple[Slot, ...]
    _groups: tuple[Group, ...]
    _key: tuple
    _hash: int
    _cache: dict[str, Any]

    def __init__(self, slots: Iterable[Slot], groups: Iterable[Group] = ()) -> None:
        slots_t = tuple(_normalize_slot(i, s) for i, s in enumerate(slots))
        groups_t = tuple(_normalize_group(j, g) for j, g in enumerate(groups))
        _check_space(slots_t, groups_t)
        # Literals are keyed with their type so that 1, 1.0 and True stay distinct decisions.
        key = (
            tuple(
                (s[:8], tuple((_literal_type(x), x) for x in s.literals), s.group) for s in slots_t
            ),
            groups_t,
        )
        object.__setattr__(self, "_slots", slots_t)
        object.__setattr__(self, "_groups", groups_t)
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_hash", hash(key))
        object.__setattr__(self, "_cache", {})

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Space is immutable; build a new Space instead.")

    # -- basic protocol

    @property
    def slots(self) -> tuple[Slot, ...]:
        """The slots, in order. Example: ``Space([Slot('a', 'choice', 2)]).slots[0].id == 'a'``."""
        return self._slots

    @property
    def groups(self) -> tuple[Group, ...]:
        """The manyof groups. Example: ``Space([]).groups == ()``."""
        return self._groups

    @property
    def num_slots(self) -> int:
        """Number of slots ``S``.

        Example:
            >>> Space([Slot('a', 'choice', 2)]).num_slots
            1
        """
        return len(self._slots)

    def __len__(self) -> int:
        return len(self._slots)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, Space):
            return NotImplemented
        return self._hash == other._hash and self._key == other._key

    def __repr__(self) -> str:
        lines = [
            f"Space(fingerprint={self.fingerprint!r}, {len(self)} slots, {len(self.groups)} groups)"
        ]
        for i, s in enumerate(self._slots):
            if s.kind == "choice":
                shown = ", ".join(repr(x) for x in s.literals[:6])
                desc = f"choice({s.num_choices}): {shown}" + (", ..." if s.num_choices > 6 else "")
            else:
                lo, hi = (int(s.lo), int(s.hi)) if s.kind == "int" else (s.lo, s.hi)
                desc = f"{s.kind}[{lo}, {hi}]" + (" log" if s.scale == "log" else "")
            if s.name is not None:
                desc += f" name={s.name!r}"
            if s.group >= 0:
                g = self._groups[s.group]
                desc += f" manyof#{s.group}(distinct={g.distinct}, sorted={g.sorted})"
            if s.conditions:
                desc += " if " + " or ".join(
                    f"{self._slots[p].id} == {self._display(p, c)!r}" for p, c in s.conditions
                )
            lines.append(f"  [{i}] {s.id!r} {desc}")
        return "\n".join(lines)

    def _display(self, i: int, index: int) -> Any:
        s = self._slots[i]
        return s.literals[index] if s.kind == "choice" else int(s.lo) + index

    def _cached(self, name: str, make: Any) -> Any:
        if name not in self._cache:
            self._cache[name] = make()
        return self._cache[name]

    # -- identity and serialization

    def _json_obj(self) -> dict:
        return {
            "format": _FORMAT,
            "version": 1,
            "slots": [
                {
                    "id": s.id,
                    "kind": s.kind,
                    "num_choices": s.num_choices,
                    "lo": s.lo,
                    "hi": s.hi,
                    "scale": s.scale,
                    "conditions": [list(c) for c in s.conditions],
                    "name": s.name,
                    "literals": list(s.literals),
                    "group": s.group,
                }
                for s in self._slots
            ],
            "groups": [
                {"slots": list(g.slots), "distinct": g.distinct, "sorted": g.sorted}
                for g in self._groups
            ],
        }

    @property
    def fingerprint(self) -> str:
        """First 16 hex chars of the sha256 of the canonical JSON; stable across processes.

        Example:
            >>> len(Space([Slot('a', 'choice', 2)]).fingerprint)
            16
        """

        def make() -> str:
            text = json.dumps(self._json_obj(), sort_keys=True, separators=(",", ":"))
            return hashlib.sha256(text.encode()).hexdigest()[:16]

        return self._cached("fingerprint", make)

    def to_json(self) -> str:
        """Lossless JSON text of the space.

        Example:
            >>> space = Space([Slot('a', 'choice', 2, literals=('x', None))])
            >>> Space.from_json(space.to_json()) == space
            True
        """
        return json.dumps(self._json_obj(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Space:
        """Inverse of `to_json`.

        Raises:
            ValueError: On malformed JSON or an invalid space.

        Example:
            >>> Space.from_json(Space([Slot('a', 'int', 3, lo=0, hi=2)]).to_json()).size
            3
        """
        try:
            obj = json.loads(text)
        except (TypeError, json.JSONDecodeError) as e:
            raise ValueError(
                f"Space.from_json: expected JSON text, got {text!r:.80} ({e})."
            ) from None
        except RecursionError:
            raise ValueError("Space.from_json: malformed JSON, nested too deeply.") from None
        if not isinstance(obj, dict) or obj.get("format") != _FORMAT or obj.get("version") != 1:
            raise ValueError(
                f"Space.from_json: expected an object with format {_FORMAT!r} and version 1 (as "
                f"written by Space.to_json), got {str(obj)[:80]!r}."
            )
        if not isinstance(obj.get("slots"), list) or not isinstance(obj.get("groups"), list):
            raise ValueError('Space.from_json: "slots" and "groups" must be lists.')
        slots, groups = [], []
        for i, d in enumerate(obj["slots"]):
            if not isinstance(d, dict) or set(d) != set(Slot._fields):
                raise ValueError(
                    f"Space.from_json: slots[{i}] must be an object with keys "
                    f"{sorted(Slot._fields)}, got {d!r:.120}."
                )
            if not isinstance(d["conditions"], list) or not isinstance(d["literals"], list):
                raise ValueError(f"Space.from_json: slots[{i}] conditions/literals must be lists.")
            conds = tuple(tuple(c) if isinstance(c, list) else c for c in d["conditions"])
            slots.append(Slot(**{**d, "conditions": conds, "literals": tuple(d["literals"])}))
        for g, d in enumerate(obj["groups"]):
            if (
                not isinstance(d, dict)
                or set(d) != {"slots", "distinct", "sorted"}
                or not isinstance(d["slots"], list)
            ):
                raise ValueError(
                    f"Space.from_json: groups[{g}] must be {{'slots': [...], 'distinct': bool, "
                    f"'sorted': bool}}, got {d!r:.120}."
                )
            groups.append(Group(tuple(d["slots"]), d["distinct"], d["sorted"]))
        return cls(slots, groups)

    # -- arrays for vectorized and JAX code

    def _arrays(self) -> dict[str, np.ndarray]:
        def make() -> dict[str, np.ndarray]:
            s = self._slots
            first = [c[0] if c else (-1, -1) for c in (x.conditions for x in s)]
            arrays = {
                "num_choices": np.array([x.num_choices for x in s], np.int32),
                "is_float": np.array([x.kind == "float" for x in s], bool),
                "is_int": np.array([x.kind == "int" for x in s], bool),
                "lo": np.array([x.lo for x in s], np.float64),
                "hi": np.array([x.hi for x in s], np.float64),
                "log_scale": np.array([x.scale == "log" for x in s], bool),
                "parent": np.array([p for p, _ in first], np.int32),
                "parent_choice": np.array([c for _, c in first], np.int32),
            }
            return {k: _readonly(v) for k, v in arrays.items()}

        return self._cached("arrays", make)

    @property
    def num_choices(self) -> np.ndarray:
        """int32[S]: candidates per choice slot, ``hi - lo + 1`` per int slot, 0 per float slot.

        Example:
            >>> Space([Slot('a', 'choice', 3), Slot('b', 'float', 0, hi=1)]).num_choices
            array([3, 0], dtype=int32)
        """
        return self._arrays()["num_choices"]

    @property
    def is_float(self) -> np.ndarray:
        """bool[S]: float slots. Example: ``space.is_float[i]``."""
        return self._arrays()["is_float"]

    @property
    def is_int(self) -> np.ndarray:
        """bool[S]: int slots. Example: ``space.is_int[i]``."""
        return self._arrays()["is_int"]

    @property
    def lo(self) -> np.ndarray:
        """float64[S]: lower bounds (0 for choice slots). Example: ``space.lo[i]``."""
        return self._arrays()["lo"]

    @property
    def hi(self) -> np.ndarray:
        """float64[S]: upper bounds (0 for choice slots). Example: ``space.hi[i]``."""
        return self._arrays()["hi"]

    @property
    def log_scale(self) -> np.ndarray:
        """bool[S]: slots on a log scale. Example: ``space.log_scale[i]``."""
        return self._arrays()["log_scale"]

    @property
    def parent(self) -> np.ndarray:
        """int32[S]: parent slot of each slot's first condition, -1 when unconditional.

        Example:
            >>> Space([Slot('a', 'choice', 2), Slot('b', 'choice', 2, conditions=((0, 1),))]).parent
            array([-1,  0], dtype=int32)
        """
        return self._arrays()["parent"]

    @property
    def parent_choice(self) -> np.ndarray:
        """int32[S]: parent index of each slot's first condition, -1 when unconditional.

        Example: ``space.parent_choice[i]``.
        """
        return self._arrays()["parent_choice"]

    @property
    def choice_mask(self) -> np.ndarray:
        """bool[S, max_choices]: valid candidate indices of choice and int slots.

        Float slots are all False; ``max_choices`` is at least 1. Built on first use: a huge int
        range makes it big.

        Example:
            >>> Space([Slot('a', 'choice', 2), Slot('b', 'int', 1, lo=5, hi=5)]).choice_mask
            array([[ True,  True],
                   [ True, False]])
        """

        def make() -> np.ndarray:
            nc = self.num_choices
            width = max(1, int(nc.max(initial=0)))
            return _readonly(np.arange(width)[None, :] < nc[:, None])

        return self._cached("choice_mask", make)

    # -- counting

    @property
    def size(self) -> int | float:
        """Exact number of distinct valid DNAs, or ``math.inf`` when a float slot exists.

        Counted combinatorially for tree-shaped conditions (each slot or group conditioned on a
        single parent slot), including manyof constraints and conditional children of manyof
        candidates. A slot conditioned on several different parents is counted by enumeration.

        Raises:
            ValueError: When enumeration is needed and the space has over 2**20 DNAs, or a
                distinct unsorted group with differing per-position children has over 16
                positions.

        Example:
            >>> Space([Slot('a', 'choice', 3), Slot('b', 'int', 4, lo=1, hi=4)]).size
            12
        """
        from pliant.spaces.sampling import _count  # counting lives with enumeration

        return self._cached("size", lambda: _count(self))

    # -- activity and construction

    def _conds(self) -> tuple[tuple[tuple[int, int], ...], ...]:
        return self._cached("conds", lambda: tuple(s.conditions for s in self._slots))

    def _active(self, index: Any, xp: Any) -> Any:
        conds = self._conds()
        if not any(conds):
            return xp.ones(index.shape, dtype=bool)
        true = xp.ones(index.shape[:-1], dtype=bool)
        cols: list[Any] = []
        for cs in conds:
            col = true
            for j, (p, c) in enumerate(cs):
                hit = cols[p] & (index[..., p] == c)
                col = hit if j == 0 else col | hit
            cols.append(col)
        return xp.stack(cols, axis=-1)

    def _index_array(self, index: Any, xp: Any) -> Any:
        index = xp.asarray(index)
        if not np.issubdtype(index.dtype, np.integer):
            raise TypeError(
                f"DNA index must be an integer array, got dtype {index.dtype}; round and cast it "
                "(e.g. x.astype(int32)) first."
            )
        if index.ndim == 0 or index.shape[-1] != len(self):
            raise ValueError(
                f"DNA index has shape {tuple(index.shape)}; expected [..., {len(self)}] "
                "(one entry per slot)."
            )
        return index if index.dtype == xp.int32 else index.astype(xp.int32)

    def active_mask(self, index: Any) -> Any:
        """Which slots are active given candidate indices ``[..., S]`` (numpy or jax, batched).

        Example:
            >>> b = Slot('b', 'choice', 2, conditions=((0, 1),))
            >>> space = Space([Slot('a', 'choice', 2), b])
            >>> space.active_mask(np.array([[0, 0], [1, 0]]))
            array([[ True, False],
                   [ True,  True]])
        """
        xp = _namespace(index)
        return self._active(self._index_array(index, xp), xp)

    def make_dna(self, index: Any, value: Any = None) -> DNA:
        """Builds a canonical DNA from indices (and float values), computing ``active``.

        Lenient: inactive slots are zeroed, indices of float slots and values of non-float
        slots are dropped; ranges are not checked (use `validate`). Works on numpy and
        jax.numpy arrays, batched over leading dimensions, and traces under ``jax.jit``.

        Args:
            index: Integer array ``[..., S]``.
            value: Float array of the same shape, or None for zeros.

        Example:
            >>> b = Slot('b', 'choice', 2, conditions=((0, 1),))
            >>> space = Space([Slot('a', 'choice', 2), b])
            >>> space.make_dna([0, 1]).to_list()
            [0, None]
        """
        if type(index) is np.ndarray and index.ndim == 1 and index.dtype.kind in "iu":
            fast = self._make_dna_fast(index, value)
            if fast is not None:
                return fast
        xp = _namespace(index, value)
        index = self._index_array(index, xp)
        ftype = np.float64 if xp is np else float
        if value is None:
            value = xp.zeros(index.shape, dtype=ftype)
        else:
            value = xp.asarray(value, dtype=ftype)
            if value.shape != index.shape:
                raise ValueError(
                    f"DNA value has shape {tuple(value.shape)}; expected the index shape "
                    f"{tuple(index.shape)}."
                )
        active = self._active(index, xp)
        is_float = xp.asarray(self.is_float)
        index = xp.where(active & ~is_float, index, 0).astype(xp.int32)
        value = xp.where(active & is_float, value, 0.0)
        if xp is np:
            index, value, active = _readonly(index), _readonly(value), _readonly(active)
        return DNA(self, index, value, active)

    def _make_dna_fast(self, index: np.ndarray, value: Any) -> DNA | None:
        # Host algorithms build one DNA per step; for spaces without conditions this skips the
        # generic (numpy-or-jax, batched) path, which costs several times more.
        if any(self._conds()) or index.shape[0] != len(self._slots):
            return None
        if value is not None and (type(value) is not np.ndarray or value.shape != index.shape):
            return None
        ones, zeros, is_float, any_float = self._cached("fast", self._fast_arrays)
        idx = index.astype(np.int32)  # always a copy: the caller keeps its array
        if any_float:
            idx[is_float] = 0
            if value is None:
                val = zeros
            else:
                val = _readonly(np.where(is_float, value, 0.0).astype(np.float64, copy=False))
        else:
            val = zeros
        return DNA(self, _readonly(idx), val, ones)

    def _fast_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
        n = len(self._slots)
        ones = _readonly(np.ones(n, dtype=bool))
        zeros = _readonly(np.zeros(n, dtype=np.float64))
        return ones, zeros, self.is_float, bool(self.is_float.any())

    def stack(self, dnas: Sequence[DNA]) -> DNA:
        """Stacks DNAs of this space into a batch ``[n, ..., S]``.

        Example:
            >>> space = Space([Slot('a', 'choice', 2)])
            >>> space.stack([space.from_list([0]), space.from_list([1])]).index
            array([[0],
                   [1]], dtype=int32)
        """
        dnas = list(dnas)
        if not dnas:
            raise ValueError("stack: expected at least one DNA, got an empty sequence.")
        for j, d in enumerate(dnas):
            if not isinstance(d, DNA) or d.space != self:
                raise ValueError(f"stack: item {j} is not a DNA of this space: {d!r:.100}.")
        xp = _namespace(*(d.index for d in dnas))
        parts = [xp.stack([getattr(d, f) for d in dnas]) for f in ("index", "value", "active")]
        if xp is np:
            parts = [_readonly(p) for p in parts]
        return DNA(self, *parts)

    # -- validation

    def validate(self, dna: DNA) -> DNA:
        """Checks that ``dna`` (single or batch) is a valid, canonical point of this space.

        Returns:
            ``dna`` itself, for chaining.

        Raises:
            TypeError: If ``dna`` is not a DNA.
            ValueError: Naming the first bad row and slot, with expected and got values.

        Example:
            >>> space = Space([Slot('a', 'choice', 2)])
            >>> space.validate(space.make_dna([1])).to_list()
            [1]
        """
        if not isinstance(dna, DNA):
            raise TypeError(f"validate: expected a DNA, got {dna!r:.100}.")
        if dna.space != self:
            raise ValueError(
                f"DNA belongs to a different space (fingerprint {dna.space.fingerprint} vs "
                f"{self.fingerprint}); build it with this space."
            )
        s = len(self)
        arrays = [np.asarray(a) for a in (dna.index, dna.value, dna.active)]
        for name, a, ok in zip(
            ("index", "value", "active"), arrays, (np.integer, np.floating, np.bool_)
        ):
            if a.ndim == 0 or a.shape[-1] != s or a.shape != arrays[0].shape:
                raise ValueError(
                    f"DNA.{name} has shape {a.shape}; expected [..., {s}] (one entry per slot), "
                    f"the same for index, value and active (index has {arrays[0].shape})."
                )
            if not np.issubdtype(a.dtype, ok):
                raise ValueError(f"DNA.{name} has dtype {a.dtype}; expected {ok.__name__}.")
        batch = arrays[0].shape[:-1]
        idx, val, act = (a.reshape(math.prod(batch), s) for a in arrays)
        message = _first_problem(self, idx, val, act)
        if message is not None:
            row, text = message
            where = f"row {tuple(int(j) for j in np.unravel_index(row, batch))}: " if batch else ""
            raise ValueError(f"invalid DNA: {where}{text}")
        return dna

    # -- conversions

    def _key_lookup(self) -> dict[str, int]:
        def make() -> dict[str, int]:
            out = {s.id: i for i, s in enumerate(self._slots)}
            out.update({s.name: i for i, s in enumerate(self._slots) if s.name is not None})
            return out

        return self._cached("keys", make)

    def _decision_key(self, i: int) -> str:
        s = self._slots[i]
        return s.name if s.name is not None else s.id

    def _finish(self, index: np.ndarray, value: np.ndarray, active: np.ndarray) -> DNA:
        return self.validate(DNA(self, _readonly(index), _readonly(value), _readonly(active)))

    def from_dict(self, d: Mapping[str, Any]) -> DNA:
        """Builds a DNA from ``{key: literal}`` as written by `DNA.to_dict` (keys: name or id).

        Raises:
            TypeError: If ``d`` is not a mapping.
            ValueError: On an unknown key, a missing active slot, a value set under an inactive
                slot, an unknown literal, an out-of-range number or a manyof constraint.

        Example:
            >>> a = Slot('a', 'choice', 2, literals=('x', 'y'))
            >>> space = Space([a, Slot('n', 'int', 3, lo=1, hi=3)])
            >>> space.from_dict({'a': 'y', 'n': 3}).to_list()
            [1, 2]
        """
        if not isinstance(d, Mapping):
            raise TypeError(f"from_dict: expected a mapping of decision keys, got {d!r:.100}.")
        lookup = self._key_lookup()
        given: dict[int, tuple[str, Any]] = {}
        for k, v in d.items():
            i = lookup.get(k)
            if i is None:
                known = [self._decision_key(j) for j in range(len(self))]
                raise ValueError(
                    f"from_dict: unknown decision key {k!r}; expected one of {known[:20]!r}"
                    + (" ..." if len(known) > 20 else "")
                )
            if i in given:
                raise ValueError(
                    f"from_dict: slot {self._slots[i].id!r} is given twice, as {given[i][0]!r} "
                    f"and {k!r}; give it once, by name or by id."
                )
            given[i] = (k, v)
        n = len(self)
        index, value, active = np.zeros(n, np.int32), np.zeros(n), np.zeros(n, bool)
        for i, s in enumerate(self._slots):
            key, v = given.get(i, (self._decision_key(i), None))
            active[i] = _slot_active(s.conditions, index, active)
            if not active[i]:
                if v is not None:
                    raise ValueError(
                        f"from_dict: slot {key!r} is inactive under the given parent choices but "
                        f"has value {v!r}; remove it or choose a parent candidate that "
                        "activates it."
                    )
                continue
            if i not in given:
                raise ValueError(f"from_dict: missing value for active slot {key!r}; add it.")
            if s.kind == "choice":
                index[i] = _match_literal(s, key, v)
            elif s.kind == "int":
                if isinstance(v, float | np.floating) and float(v).is_integer():
                    v = int(v)
                if isinstance(v, bool) or not isinstance(v, int | np.integer):
                    raise ValueError(f"from_dict: slot {key!r} expects an int, got {v!r}.")
                if not s.lo <= v <= s.hi:
                    raise ValueError(
                        f"from_dict: slot {key!r}: int {v!r} is out of range; expected "
                        f"{int(s.lo)} <= value <= {int(s.hi)}."
                    )
                index[i] = int(v) - int(s.lo)
            else:
                x = _as_float(v, f"from_dict: slot {key!r}")
                if not s.lo <= x <= s.hi:
                    raise ValueError(
                        f"from_dict: slot {key!r}: float {v!r} is out of bounds; expected "
                        f"{s.lo!r} <= value <= {s.hi!r}."
                    )
                value[i] = x
        return self._finish(index, value, active)

    def from_list(self, lst: Sequence[Any]) -> DNA:
        """Builds a DNA from the flat list written by `DNA.to_list` (None for inactive slots).

        Raises:
            TypeError: If ``lst`` is not a list or tuple.
            ValueError: On a wrong length, a wrong entry type, an out-of-range entry, None for
                an active slot, a number for an inactive slot, or a manyof constraint.

        Example:
            >>> x = Slot('x', 'float', 0, hi=1.0, conditions=((0, 1),))
            >>> space = Space([Slot('a', 'choice', 2), x])
            >>> space.from_list([1, 0.5]).to_dict()
            {'a': 1, 'x': 0.5}
        """
        if not isinstance(lst, list | tuple):
            raise TypeError(f"from_list: expected a list, got {lst!r:.100}.")
        n = len(self)
        if len(lst) != n:
            raise ValueError(f"from_list: expected {n} entries (one per slot), got {len(lst)}.")
        index, value, active = np.zeros(n, np.int32), np.zeros(n), np.zeros(n, bool)
        for i, (s, x) in enumerate(zip(self._slots, lst)):
            active[i] = _slot_active(s.conditions, index, active)
            if x is None and not active[i]:
                continue
            if x is None or not active[i]:
                state = "active" if active[i] else "inactive"
                need = "a number" if active[i] else "None"
                raise ValueError(
                    f"from_list: slot {s.id!r} (entry {i}) is {state} under the given parent "
                    f"choices; expected {need}, got {x!r}."
                )
            if s.kind == "float":
                value[i] = _as_float(x, f"from_list: slot {s.id!r} (entry {i})")
            else:
                if isinstance(x, bool) or not isinstance(x, int | np.integer):
                    raise ValueError(
                        f"from_list: slot {s.id!r} (entry {i}) expects an int index, got {x!r}."
                    )
                if not 0 <= x < s.num_choices:
                    raise ValueError(
                        f"from_list: slot {s.id!r} (entry {i}): index {x!r} is out of range; "
                        f"expected 0 <= index < {s.num_choices}."
                    )
                index[i] = x
        return self._finish(index, value, active)

    def from_json_dna(self, text: str) -> DNA:
        """Builds a DNA from the JSON written by `DNA.to_json`, checking the space fingerprint.

        Raises:
            ValueError: On malformed JSON, a different fingerprint, or an invalid DNA list.

        Example:
            >>> space = Space([Slot('a', 'choice', 2)])
            >>> space.from_json_dna(space.from_list([1]).to_json()).to_list()
            [1]
        """
        try:
            obj = json.loads(text)
        except (TypeError, json.JSONDecodeError) as e:
            raise ValueError(
                f"from_json_dna: expected JSON text, got {text!r:.80} ({e})."
            ) from None
        except RecursionError:
            raise ValueError("from_json_dna: malformed JSON, nested too deeply.") from None
        if (
            not isinstance(obj, dict)
            or set(obj) != {"space", "dna"}
            or not isinstance(obj["dna"], list)
        ):
            raise ValueError(
                'from_json_dna: expected {"space": "<fingerprint>", "dna": [...]} as written by '
                f"DNA.to_json, got {text!r:.80}."
            )
        if obj["space"] != self.fingerprint:
            raise ValueError(
                f"from_json_dna: the DNA was saved for space fingerprint {obj['space']!r} but this "
                f"space has {self.fingerprint!r}; load it with the space it was saved from."
            )
        return self.from_list(obj["dna"])


class DNA:
    """A fixed-shape point (or batch of points) of a `Space`.

    ``index`` is int32 ``[..., S]`` (candidate index; value - lo for int slots; 0 for float and
    inactive slots), ``value`` is float ``[..., S]`` (the float of float slots, else 0.0) and
    ``active`` is bool ``[..., S]``. The raw constructor does no checks; use `Space.make_dna`,
    `Space.from_dict` or `Space.from_list`, and `Space.validate`. After `register_pytree` (done
    for you when jax arrays meet `Space.make_dna`), a DNA is a JAX pytree with the space as
    static data.

    Example:
        >>> space = Space([Slot('a', 'choice', 2, literals=('x', 'y'))])
        >>> dna = space.from_dict({'a': 'y'})
        >>> dna
        DNA({'a': 'y'})
        >>> dna == space.from_list([1]), dna.batch_shape
        (True, ())
    """

    __slots__ = ("active", "index", "space", "value")

    space: Space
    index: Any
    value: Any
    active: Any

    def __init__(self, space: Space, index: Any, value: Any, active: Any) -> None:
        object.__setattr__(self, "space", space)
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "active", active)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("DNA is immutable; build a new one with space.make_dna(...).")

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Leading (batch) dimensions; ``()`` for a single DNA.

        Example:
            >>> space = Space([Slot('a', 'choice', 2)])
            >>> space.make_dna(np.zeros((4, 1), np.int32)).batch_shape
            (4,)
        """
        return tuple(self.index.shape[:-1])

    def _single(self, what: str) -> None:
        if self.batch_shape:
            raise TypeError(
                f"{what} needs a single DNA, got a batch of shape {self.batch_shape}; "
                f"iterate over the batch: [d.{what}() for d in dna]."
            )

    def __len__(self) -> int:
        if not self.batch_shape:
            raise TypeError("len() of a single DNA; only batches have a length.")
        return self.batch_shape[0]

    def __getitem__(self, i: Any) -> DNA:
        if not self.batch_shape:
            raise TypeError("a single DNA is not indexable; use dna.to_dict()[key].")
        return DNA(self.space, self.index[i], self.value[i], self.active[i])

    def __iter__(self) -> Iterator[DNA]:
        if not self.batch_shape:
            raise TypeError("a single DNA is not iterable; use dna.to_dict().items().")
        return (self[i] for i in range(self.batch_shape[0]))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DNA):
            return NotImplemented
        return self.space == other.space and all(
            np.array_equal(np.asarray(a), np.asarray(b))
            for a, b in (
                (self.index, other.index),
                (self.value, other.value),
                (self.active, other.active),
            )
        )

    def __hash__(self) -> int:
        self._single("__hash__")
        value = np.asarray(self.value, np.float64) + 0.0  # -0.0 == 0.0 must hash alike
        index = np.asarray(self.index, np.int32)
        return hash((self.space.fingerprint, index.tobytes(), value.tobytes()))

    def __repr__(self) -> str:
        try:
            if self.batch_shape:
                return f"DNA(batch_shape={self.batch_shape}, space={self.space.fingerprint!r})"
            return f"DNA({self.to_dict()!r})"
        except Exception:  # tracers and invalid DNAs still need a repr
            return f"DNA(index={self.index!r}, value={self.value!r}, active={self.active!r})"

    def to_dict(self) -> dict[str, Any]:
        """``{key: literal}`` for the active slots, in slot order (key: name, else id).

        Raises:
            TypeError: For a batch.

        Example:
            >>> space = Space([Slot('a', 'choice', 2, literals=('x', 'y'), name='A')])
            >>> space.from_list([0]).to_dict()
            {'A': 'x'}
        """
        self._single("to_dict")
        idx, val, act = (np.asarray(a) for a in (self.index, self.value, self.active))
        out: dict[str, Any] = {}
        for i, s in enumerate(self.space.slots):
            if act[i]:
                if s.kind == "choice":
                    out[self.space._decision_key(i)] = s.literals[int(idx[i])]
                elif s.kind == "int":
                    out[self.space._decision_key(i)] = int(s.lo) + int(idx[i])
                else:
                    out[self.space._decision_key(i)] = float(val[i])
        return out

    def to_list(self) -> list[int | float | None]:
        """One entry per slot: the index (choice/int), the float (float), None when inactive.

        Raises:
            TypeError: For a batch.

        Example:
            >>> Space([Slot('a', 'int', 3, lo=5, hi=7)]).from_dict({'a': 6}).to_list()
            [1]
        """
        self._single("to_list")
        idx, val, act = (np.asarray(a) for a in (self.index, self.value, self.active))
        return [
            None if not act[i] else float(val[i]) if s.kind == "float" else int(idx[i])
            for i, s in enumerate(self.space.slots)
        ]

    def to_json(self) -> str:
        """``'{"space": "<fingerprint>", "dna": [...to_list...]}'``; read by `Space.from_json_dna`.

        Raises:
            TypeError: For a batch.

        Example:
            >>> space = Space([Slot('a', 'choice', 2)])
            >>> space.from_list([1]).to_json() == f'{{"space": "{space.fingerprint}", "dna": [1]}}'
            True
        """
        self._single("to_json")
        return json.dumps({"space": self.space.fingerprint, "dna": self.to_list()})


# ----------------------------------------------------------------------------- JAX interop

_REGISTER_LOCK = threading.Lock()
_REGISTERED = [False]


def register_pytree() -> None:
    """Registers `DNA` as a JAX pytree (children: index, value, active; static data: space).

    Idempotent and cheap after the first call. Call it before passing DNAs into ``jax.jit``
    when they were not made by jax-aware code (`Space.make_dna` on jax arrays and the JAX path
    of ``random_dna`` call it for you).

    Example:
        >>> import jax
        >>> register_pytree()
        >>> space = Space([Slot('a', 'choice', 3)])
        >>> jax.jit(lambda d: space.make_dna(d.index + 1))(space.make_dna([1])).to_list()
        [2]
    """
    if _REGISTERED[0]:
        return
    with _REGISTER_LOCK:
        if _REGISTERED[0]:
            return
        import jax

        keys = tuple(jax.tree_util.GetAttrKey(k) for k in ("index", "value", "active"))
        jax.tree_util.register_pytree_with_keys(
            DNA,
            lambda d: (tuple(zip(keys, (d.index, d.value, d.active))), d.space),
            lambda space, children: DNA(space, *children),
            lambda d: ((d.index, d.value, d.active), d.space),
        )
        _REGISTERED[0] = True


def _namespace(*xs: Any) -> Any:
    """numpy, or jax.numpy when any argument is a jax array (or tracer)."""
    jax = sys.modules.get("jax")
    if jax is not None and any(isinstance(x, jax.Array) for x in xs):
        register_pytree()
        import jax.numpy as jnp

        return jnp
    return np
