"""Per-op latency tables (TuNAS, MobileDets): an architecture's latency as a sum of lookups.

A `LatencyTable` holds, for each *term* (usually one layer position), a cost for every joint
state of a few decision slots: the layer's own choices (op, kernel, expansion, skip) and,
where widths are searched, the slots of its input and output width. That is TuNAS's cost model
(a per-layer lookup indexed by input width, output width and op, summed over layers, plus a
bias). Each slot of a term takes ``num_choices + 1`` states: its candidate index, or one more
state meaning "inactive" (the layer sits under an unchosen branch), so conditional spaces need
no special rules. Entries that were never measured or fitted are NaN.

Tables are built by measuring each entry once (`measure_table`) or by least squares on
whole-model latencies (`fit_table`), saved as JSON, and evaluated with `predict`: on the host,
or on a (batched) DNA inside ``jax.jit``, where it is one gather and one sum over a dense
array (the cost model of weight-sharing search). `prediction_quality` says how well a table
ranks and predicts measured latencies (Spearman rho, mean relative error).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from pliant.spaces.dna import DNA, Space

__all__ = [
    "LatencyTable",
    "PredictionQuality",
    "Term",
    "fit_table",
    "measure_table",
    "predict",
    "prediction_quality",
    "terms_by_prefix",
]

_FORMAT = "pliant.LatencyTable"


class Term(NamedTuple):
    """Costs of one layer (or any group of decisions) for every joint state of its slots.

    Attributes:
        name: Display name, usually the layer's key path (``'blocks[3]'``).
        slots: Slot ids of the decisions the cost depends on.
        costs: Array of shape ``(n_1 + 1, ..., n_k + 1)`` for slots with ``n_i`` candidates;
            the last index of each axis means that slot is inactive. NaN marks an entry that
            was neither measured nor fitted.
    """

    name: str
    slots: tuple[str, ...]
    costs: np.ndarray


class LatencyTable(NamedTuple):
    """A per-op latency table of a `Space`: ``latency(dna) = bias + sum of term lookups``.

    Attributes:
        space: The space whose DNAs the table prices.
        terms: The `Term`s.
        bias: The part no decision changes (stem, head, call overhead).
        unit: Unit of every cost, e.g. ``'s'`` or ``'ms'``.

    Example:
        >>> from pliant.spaces.dna import Slot
        >>> space = Space([Slot('k', 'choice', 2, literals=(3, 5))])
        >>> table = LatencyTable(space, (Term('k', ('k',), np.array([1.0, 2.0, 0.0])),), 0.5)
        >>> LatencyTable.from_json(table.to_json()).bias
        0.5
    """

    space: Space
    terms: tuple[Term, ...]
    bias: float = 0.0
    unit: str = "s"

    def to_json(self) -> str:
        """The table as JSON text (unknown entries as ``null``); the space is included."""
        return json.dumps(
            {
                "format": _FORMAT,
                "version": 1,
                "space": json.loads(self.space.to_json()),
                "bias": float(self.bias),
                "unit": self.unit,
                "terms": [
                    {
                        "name": t.name,
                        "slots": list(t.slots),
                        "shape": list(np.shape(t.costs)),
                        "costs": [
                            None if math.isnan(c) else float(c)
                            for c in np.asarray(t.costs, np.float64).ravel()
                        ],
                    }
                    for t in self.terms
                ],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> LatencyTable:
        """Inverse of `to_json`; the terms are checked against the space.

        Raises:
            ValueError: for text that is not a latency table or does not fit its space.
        """
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"latency table: not JSON ({e}).") from None
        if not isinstance(obj, dict) or obj.get("format") != _FORMAT:
            raise ValueError(
                f"not a latency table: expected a JSON object with format {_FORMAT!r}, got "
                f"{str(text)[:80]!r}."
            )
        if obj.get("version") != 1:
            raise ValueError(f"latency table version {obj.get('version')!r} is not supported (1).")
        space = Space.from_json(json.dumps(obj["space"]))
        terms = []
        for t in obj["terms"]:
            flat = np.array([np.nan if c is None else c for c in t["costs"]], np.float64)
            terms.append(Term(t["name"], tuple(t["slots"]), flat.reshape(t["shape"])))
        return make_table(space, terms, bias=obj["bias"], unit=obj["unit"])

    def save(self, path: str) -> None:
        """Writes `to_json` to ``path``."""
        with open(path, "w") as f:
            f.write(self.to_json())

    @classmethod
    def load(cls, path: str) -> LatencyTable:
        """Reads a table written by `save`."""
        with open(path) as f:
            return cls.from_json(f.read())


def _slot_indices(space: Space, slots: Sequence[str], where: str) -> list[int]:
    ids = {s.id: i for i, s in enumerate(space.slots)}
    out = []
    for sid in slots:
        if sid not in ids:
            raise ValueError(
                f"{where}: slot {sid!r} is not in the space; its slots are "
                f"{sorted(ids)[:12]!r}{' ...' if len(ids) > 12 else ''}."
            )
        slot = space.slots[ids[sid]]
        if slot.kind == "float":
            raise ValueError(
                f"{where}: slot {sid!r} is a float slot; a lookup table needs choice or int "
                "slots. Fit a model of the float instead, or discretize it with pl.oneof."
            )
        out.append(ids[sid])
    if len(set(out)) != len(out):
        raise ValueError(f"{where}: repeated slots {list(slots)!r}.")
    return out


def make_table(
    space: Space, terms: Sequence[Term], bias: float = 0.0, unit: str = "s"
) -> LatencyTable:
    """A checked `LatencyTable` (shapes must be ``num_choices + 1`` per slot)."""
    if not isinstance(space, Space):
        raise TypeError(f"expected a pliant Space, got {space!r}.")
    checked = []
    names = set()
    for t in terms:
        where = f"term {t.name!r}"
        if t.name in names:
            raise ValueError(f"{where}: term names must be distinct.")
        names.add(t.name)
        idx = _slot_indices(space, t.slots, where)
        shape = tuple(int(space.slots[i].num_choices) + 1 for i in idx)
        costs = np.asarray(t.costs, np.float64)
        if costs.shape != shape:
            raise ValueError(
                f"{where}: costs have shape {costs.shape}, expected {shape} (num_choices + 1 "
                f"per slot of {list(t.slots)!r}; the last index means inactive)."
            )
        checked.append(Term(str(t.name), tuple(t.slots), costs))
    if not math.isfinite(float(bias)):
        raise ValueError(f"bias must be finite, got {bias!r}.")
    return LatencyTable(space, tuple(checked), float(bias), str(unit))


def terms_by_prefix(space: Space, prefixes: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Groups slots into terms by key-path prefix: one term per layer position.

    A slot belongs to the first prefix its id starts with (followed by ``.``, ``[`` or the
    end). Prefixes that own no slot are left out.

    Example:
        >>> from pliant.spaces.dna import Slot
        >>> space = Space([Slot('blocks[0].k', 'choice', 2), Slot('blocks[1].k', 'choice', 2)])
        >>> terms_by_prefix(space, ['blocks[0]', 'blocks[1]'])
        {'blocks[0]': ('blocks[0].k',), 'blocks[1]': ('blocks[1].k',)}
    """
    out: dict[str, list[str]] = {p: [] for p in prefixes}
    for s in space.slots:
        for p in prefixes:
            if s.id == p or s.id.startswith(p + ".") or s.id.startswith(p + "["):
                out[p].append(s.id)
                break
    return {p: tuple(v) for p, v in out.items() if v}


def _term_states(space: Space, idx: list[int]) -> list[tuple[int, ...]]:
    """Joint states of a term's slots consistent with the conditions among them."""
    pos = {i: k for k, i in enumerate(idx)}
    ranges = [range(int(space.slots[i].num_choices) + 1) for i in idx]
    states = []
    for state in itertools.product(*ranges):
        ok = True
        for k, i in enumerate(idx):
            slot = space.slots[i]
            active = state[k] < slot.num_choices
            if not slot.conditions:
                ok = active
            elif all(p in pos for p, _ in slot.conditions):
                holds = any(
                    state[pos[p]] == c and state[pos[p]] < space.slots[p].num_choices
                    for p, c in slot.conditions
                )
                ok = active == holds
            if not ok:
                break
        if ok:
            states.append(state)
    return states


def measure_table(
    space: Space,
    terms: Mapping[str, Sequence[str]],
    cost_fn: Callable[[str, dict[str, int | None]], float | None],
    *,
    bias: float = 0.0,
    unit: str = "s",
) -> LatencyTable:
    """Builds a table by costing each entry once: ``cost_fn(term, {slot_id: index or None})``.

    Every joint state of a term's slots that the conditions among those slots allow is
    costed (``None`` for an inactive slot). ``cost_fn`` returns the entry's cost, or None when
    the state cannot occur; memoize inside it to measure identical layers (same signature:
    widths, op, stride, input size) once.

    Args:
        space: The space the table prices.
        terms: ``{term name: slot ids}``, e.g. from `terms_by_prefix`.
        cost_fn: Measures one entry.
        bias: The constant part (e.g. the measured stem and head).
        unit: Unit of the costs.

    Raises:
        ValueError: for unknown or float slots, or a cost that is not a finite number.

    Example:
        >>> from pliant.spaces.dna import Slot
        >>> space = Space([Slot('k', 'choice', 3, literals=(3, 5, 7))])
        >>> table = measure_table(space, {'k': ['k']}, lambda t, s: s['k'] + 1.0)
        >>> float(predict(table, space.from_dict({'k': 7})))
        3.0
    """
    built = []
    for name, slots in terms.items():
        idx = _slot_indices(space, slots, f"term {name!r}")
        shape = tuple(int(space.slots[i].num_choices) + 1 for i in idx)
        costs = np.full(shape, np.nan)
        for state in _term_states(space, idx):
            choice = {
                space.slots[i].id: (st if st < space.slots[i].num_choices else None)
                for i, st in zip(idx, state)
            }
            c = cost_fn(name, choice)
            if c is None:
                continue
            if isinstance(c, bool) or not isinstance(c, int | float | np.number):
                raise ValueError(f"term {name!r}, {choice!r}: cost must be a number, got {c!r}.")
            if not math.isfinite(float(c)):
                raise ValueError(f"term {name!r}, {choice!r}: cost must be finite, got {c!r}.")
            costs[state] = float(c)
        built.append(Term(name, tuple(slots), costs))
    return make_table(space, built, bias=bias, unit=unit)


class _Dense(NamedTuple):
    flat: np.ndarray  # all terms' costs, raveled and concatenated
    slots: np.ndarray  # [T, K] slot index per term axis; S (a zero column) pads short terms
    strides: np.ndarray  # [T, K]
    offsets: np.ndarray  # [T]
    absent: np.ndarray  # [S + 1] the "inactive" state of each slot (num_choices)


def _dense(table: LatencyTable) -> _Dense:
    space = table.space
    num = space.num_slots
    width = max([len(t.slots) for t in table.terms] + [1])
    slots = np.full((len(table.terms), width), num, np.int32)
    strides = np.zeros((len(table.terms), width), np.int32)
    offsets = np.zeros(len(table.terms), np.int32)
    ids = {s.id: i for i, s in enumerate(space.slots)}
    pieces, offset = [], 0
    for t, term in enumerate(table.terms):
        costs = np.asarray(term.costs, np.float64)
        for k, sid in enumerate(term.slots):
            slots[t, k] = ids[sid]
            strides[t, k] = math.prod(costs.shape[k + 1 :])
        offsets[t] = offset
        offset += costs.size
        pieces.append(costs.ravel())
    absent = np.append(np.asarray([s.num_choices for s in space.slots], np.int32), 0)
    flat = np.concatenate(pieces) if pieces else np.zeros(0)
    return _Dense(flat, slots, strides, offsets, absent)


def _flat_index(dense: _Dense, index: Any, active: Any, xp: Any) -> Any:
    batch = index.shape[:-1]
    pad = xp.zeros((*batch, 1), dtype=index.dtype)
    state = xp.where(active, index, xp.asarray(dense.absent[:-1]))
    state = xp.concatenate([state, pad], axis=-1)  # column S: padding, state 0, stride 0
    gathered = xp.take(state, xp.asarray(dense.slots), axis=-1)  # [..., T, K]
    return xp.asarray(dense.offsets) + xp.sum(gathered * xp.asarray(dense.strides), axis=-1)


def predict(table: LatencyTable, dna: DNA) -> Any:
    """Predicted latency of a DNA (or a batch ``[..., S]``): bias plus one lookup per term.

    On host DNAs (numpy arrays) it returns a numpy float (array for a batch) and raises if a
    DNA meets an entry that was never measured or fitted. On jax arrays, including tracers
    inside ``jax.jit``, it is a gather and a sum over a dense constant array, and an unknown
    entry gives NaN.

    Raises:
        ValueError: if the DNA belongs to another space, or (host) meets an unknown entry.

    Example:
        >>> import jax
        >>> from pliant.spaces.dna import Slot, register_pytree
        >>> register_pytree()  # DNAs from jax-aware code (algorithms) are pytrees already
        >>> space = Space([Slot('k', 'choice', 2, literals=(3, 5))])
        >>> table = LatencyTable(space, (Term('k', ('k',), np.array([1.0, 2.0, 0.0])),), 0.5)
        >>> dna = space.from_dict({'k': 5})
        >>> float(predict(table, dna)), float(jax.jit(lambda d: predict(table, d))(dna))
        (2.5, 2.5)
    """
    if not isinstance(dna, DNA):
        raise TypeError(f"predict expects a DNA of the table's space, got {dna!r}.")
    if dna.space != table.space:
        raise ValueError(
            f"the DNA's space (fingerprint {dna.space.fingerprint!r}) is not the table's "
            f"({table.space.fingerprint!r}); build the table for this space."
        )
    dense = _dense(table)
    if isinstance(dna.index, np.ndarray):
        flat_index = _flat_index(dense, dna.index, dna.active, np)
        values = dense.flat[flat_index]
        if np.isnan(values).any():
            _raise_unknown(table, dna, values)
        return np.sum(values, axis=-1) + table.bias
    import jax.numpy as jnp

    flat_index = _flat_index(dense, jnp.asarray(dna.index), jnp.asarray(dna.active), jnp)
    values = jnp.take(jnp.asarray(dense.flat, dtype=jnp.result_type(float)), flat_index)
    return jnp.sum(values, axis=-1) + table.bias


def _raise_unknown(table: LatencyTable, dna: DNA, values: np.ndarray) -> None:
    where = np.argwhere(np.isnan(values))[0]
    row, t = tuple(where[:-1]), int(where[-1])
    term = table.terms[t]
    single = dna if not row else DNA(dna.space, dna.index[row], dna.value[row], dna.active[row])
    state: dict[str, Any] = {}
    for i, slot in enumerate(table.space.slots):
        if slot.id in term.slots:
            k = int(single.index[i])
            literal = slot.literals[k] if slot.kind == "choice" else int(slot.lo) + k
            state[slot.id] = literal if single.active[i] else None
    raise ValueError(
        f"term {term.name!r} has no cost for {state!r}"
        f"{f' (DNA {[int(r) for r in row]})' if row else ''}; measure that entry or fit the "
        "table on architectures that use it."
    )


def fit_table(
    space: Space,
    terms: Mapping[str, Sequence[str]],
    dnas: DNA,
    latencies: Sequence[float],
    *,
    method: str = "nnls",
    unit: str = "s",
) -> LatencyTable:
    """Fits a table to measured whole-model latencies by least squares (as MobileDets does).

    The model is ``latency = bias + sum_t cost_t[state of term t]``: one indicator column per
    table entry plus a constant. Entries that no architecture used stay NaN (unknown).

    The sums only determine each term's costs up to a constant (shifting one term up and
    another down, or a term and the bias, changes no prediction); the differences between
    entries of a term and all predictions are what the data fix. ``'lstsq'`` returns the
    minimum-norm solution; ``'nnls'`` (default) asks every cost and the bias to be
    non-negative, which a layer's latency is, and which keeps a table fitted on few or noisy
    samples from trading large positive and negative entries that extrapolate badly.

    Args:
        space: The space of ``dnas``.
        terms: ``{term name: slot ids}``.
        dnas: A batch DNA ``[n, S]`` of measured architectures.
        latencies: ``n`` measured latencies.
        method: ``'nnls'`` or ``'lstsq'``.
        unit: Unit of the latencies.

    Raises:
        ValueError: for mismatched lengths, an unknown method, or unknown slots.

    Example:
        >>> from pliant.spaces.dna import Slot
        >>> space = Space([Slot('k', 'choice', 2, literals=(3, 5))])
        >>> dnas = space.stack([space.from_dict({'k': k}) for k in (3, 5, 5)])
        >>> table = fit_table(space, {'k': ['k']}, dnas, [1.0, 3.0, 3.0], method='lstsq')
        >>> [round(float(x), 6) for x in predict(table, dnas)]
        [1.0, 3.0, 3.0]
    """
    if method not in ("nnls", "lstsq"):
        raise ValueError(f"method must be 'nnls' or 'lstsq', got {method!r}.")
    if not isinstance(dnas, DNA) or dnas.space != space or len(dnas.batch_shape) != 1:
        raise ValueError("dnas must be a batch DNA [n, S] of the given space (space.stack(...)).")
    y = np.asarray(latencies, np.float64)
    if y.shape != dnas.batch_shape:
        raise ValueError(f"got {y.size} latencies for {dnas.batch_shape[0]} architectures.")
    if not np.isfinite(y).all():
        raise ValueError(f"latencies must be finite; got {y[~np.isfinite(y)][:3].tolist()!r}.")
    zero = make_table(
        space,
        [
            Term(name, tuple(slots), np.zeros([space.slots[i].num_choices + 1 for i in idx]))
            for name, slots in terms.items()
            for idx in [_slot_indices(space, slots, f"term {name!r}")]
        ],
        unit=unit,
    )
    dense = _dense(zero)
    cols = _flat_index(dense, np.asarray(dnas.index), np.asarray(dnas.active), np)  # [n, T]
    n = y.size
    design = np.zeros((n, dense.flat.size + 1))
    np.add.at(design, (np.repeat(np.arange(n), cols.shape[1]), cols.ravel()), 1.0)
    design[:, -1] = 1.0
    used = design[:, :-1].any(axis=0)
    sub = np.concatenate([design[:, :-1][:, used], design[:, -1:]], axis=1)
    if method == "lstsq":
        coef = np.linalg.lstsq(sub, y, rcond=None)[0]
    else:
        from scipy.optimize import nnls

        coef = nnls(sub, y)[0]
    flat = np.full(dense.flat.size, np.nan)
    flat[used] = coef[:-1]
    out, start = [], 0
    for term in zero.terms:
        size = term.costs.size
        out.append(term._replace(costs=flat[start : start + size].reshape(term.costs.shape)))
        start += size
    return make_table(space, out, bias=float(coef[-1]), unit=unit)


class PredictionQuality(NamedTuple):
    """How well predicted latencies match measured ones.

    Attributes:
        spearman: Spearman rank correlation (ties get average ranks).
        mean_relative_error: Mean of ``|predicted - measured| / measured``.
        max_relative_error: Largest relative error.
        n: Number of architectures.
    """

    spearman: float
    mean_relative_error: float
    max_relative_error: float
    n: int


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x), dtype=np.float64)
    for v in np.unique(x):  # average ranks of ties
        tied = x == v
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    return ranks


def prediction_quality(predicted: Sequence[float], measured: Sequence[float]) -> PredictionQuality:
    """Spearman rho and relative errors of predicted against measured latencies.

    Raises:
        ValueError: for fewer than 2 pairs, mismatched lengths or non-positive measurements.

    Example:
        >>> q = prediction_quality([1.0, 2.2, 2.9], [1.0, 2.0, 3.0])
        >>> q.spearman, round(q.mean_relative_error, 3)
        (1.0, 0.044)
    """
    p = np.asarray(predicted, np.float64).ravel()
    m = np.asarray(measured, np.float64).ravel()
    if p.shape != m.shape or p.size < 2:
        raise ValueError(
            f"need two equally long sequences of at least 2 values; got {p.size} predicted "
            f"and {m.size} measured."
        )
    if not (m > 0).all():
        raise ValueError(f"measured latencies must be positive; got {m[~(m > 0)][:3].tolist()!r}.")
    rp, rm = _ranks(p), _ranks(m)
    denom = rp.std() * rm.std()
    rho = float(((rp - rp.mean()) * (rm - rm.mean())).mean() / denom) if denom > 0 else math.nan
    rel = np.abs(p - m) / m
    return PredictionQuality(rho, float(rel.mean()), float(rel.max()), int(p.size))
