"""Tabular benchmarks: a search space whose every point is a row of precomputed results.

A :class:`TabularBenchmark` holds a search space written with placeholders (as a user would
write it), the table of results behind it as NumPy arrays indexed by a flat *point* id (the
mixed-radix number of the choice indices, in the order the data package uses), and the regret of
every point. The same point id is reached from a materialized config (``bench.point(config)``,
what an objective does) and from DNA index arrays (``bench.points(index)``, vectorized, what a
harness does), and the two always agree.

Nothing here imports jax; the loaders cache their tables per process.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["TabularBenchmark", "incumbent_regret"]


@dataclass(frozen=True, eq=False)
class TabularBenchmark:
    """A search space over a table of results, its objective and its regret.

    Attributes:
        name: e.g. ``'fcnet/naval_propulsion'`` or ``'nasbench_graph/cora'``.
        space_value: the search space, a dict with placeholders (``pl.oneof``).
        metric: the metric the objective returns and the search optimizes.
        direction: ``'min'`` or ``'max'``.
        values: ``[num_points, repeats]`` float64: what one evaluation of a point may return
            (one of the repeats, drawn at random, when there are several).
        regrets: per regret kind (the first is the measure of search, e.g. ``'val'``), a
            ``[num_points]`` float64 array, ``>= 0`` and 0 at the table's optimum.
        num_configs: distinct entries in the data file (several points may share one).
        note: how to read the regrets (shown with every table of results).
        point_of: ``config -> point id`` (a materialized config of ``space_value``).

    Example:
        >>> import numpy as np, pliant as pl
        >>> bench = TabularBenchmark.from_arrays(
        ...     "toy", {"a": pl.oneof([1, 2]), "b": pl.oneof(["x", "y", "z"])},
        ...     metric="loss", direction="min",
        ...     values=np.arange(6.0)[:, None], regrets={"val": np.arange(6.0)},
        ...     point_of=lambda c: (c["a"] - 1) * 3 + "xyz".index(c["b"]))
        >>> bench.objective({"a": 2, "b": "y"})
        {'loss': 4.0}
        >>> dna = bench.space.make_dna(np.array([1, 1]))
        >>> int(bench.points(dna.index)), bench.regret({"a": 1, "b": "x"})
        (4, 0.0)
    """

    name: str
    space_value: Any
    metric: str
    direction: str
    values: np.ndarray
    regrets: Mapping[str, np.ndarray]
    num_configs: int
    note: str
    point_of: Callable[[Any], int]
    _contributions: tuple[np.ndarray, ...] = field(repr=False)

    @classmethod
    def from_arrays(
        cls,
        name: str,
        space_value: Any,
        *,
        metric: str,
        direction: str,
        values: np.ndarray,
        regrets: Mapping[str, np.ndarray],
        point_of: Callable[[Any], int],
        num_configs: int | None = None,
        note: str = "",
    ) -> TabularBenchmark:
        """Builds a benchmark, deriving the DNA-to-point map from ``point_of``.

        Every point id is the sum of one term per slot (a mixed-radix number, whatever order
        the slots and candidates are written in); the term of each candidate is found by
        materializing DNAs that differ in that slot only, so ``points`` and ``point`` agree by
        construction (and the tests check it on random DNAs).

        Raises:
            ValueError: for a direction other than 'min'/'max', arrays of the wrong shape, or
                a space that is not a plain product of choices.
        """
        from pliant.spaces.compiler import compile_space, materialize

        if direction not in ("min", "max"):
            raise ValueError(f"{name}: direction must be 'min' or 'max', got {direction!r}")
        values = _readonly(np.asarray(values, dtype=np.float64))
        if values.ndim != 2 or values.shape[1] < 1:
            raise ValueError(f"{name}: values must be [num_points, repeats], got {values.shape}")
        regrets = {k: _readonly(np.asarray(v, dtype=np.float64)) for k, v in regrets.items()}
        for kind, r in regrets.items():
            if r.shape != values.shape[:1]:
                raise ValueError(
                    f"{name}: regrets[{kind!r}] has shape {r.shape}, not {values.shape[:1]}"
                )
        space = compile_space(space_value).space
        if space.groups or any(s.kind != "choice" or s.conditions for s in space.slots):
            raise ValueError(
                f"{name}: a tabular space must be a product of unconditional pl.oneof choices"
            )
        base = np.zeros(space.num_slots, np.int32)
        origin = int(point_of(materialize(space_value, space.make_dna(base))))
        contributions = []
        for s, slot in enumerate(space.slots):
            terms = np.zeros(slot.num_choices, np.int64)
            for c in range(1, slot.num_choices):
                index = base.copy()
                index[s] = c
                terms[c] = int(point_of(materialize(space_value, space.make_dna(index)))) - origin
            contributions.append(_readonly(terms))
        contributions[0] = _readonly(contributions[0] + origin)
        return cls(
            name,
            space_value,
            metric,
            direction,
            values,
            regrets,
            int(values.shape[0] if num_configs is None else num_configs),
            note,
            point_of,
            tuple(contributions),
        )

    @functools.cached_property
    def space(self) -> Any:
        """The compiled :class:`~pliant.spaces.dna.Space` of ``space_value``."""
        from pliant.spaces.compiler import compile_space

        return compile_space(self.space_value).space

    @property
    def num_points(self) -> int:
        """Points of the search space (rows of ``values``)."""
        return int(self.values.shape[0])

    @property
    def repeats(self) -> int:
        """Results per point; an evaluation returns one of them at random."""
        return int(self.values.shape[1])

    def point(self, config: Any) -> int:
        """The point id of a materialized config (a dict as ``pl.materialize`` returns it)."""
        return int(self.point_of(config))

    def points(self, index: Any) -> np.ndarray:
        """Point ids of DNA index arrays ``[..., S]`` (or of a DNA), vectorized.

        Raises:
            ValueError: if the last axis is not the space's number of slots.
        """
        index = np.asarray(getattr(index, "index", index))
        if index.shape[-1:] != (len(self._contributions),):
            raise ValueError(
                f"{self.name}: expected DNA indices [..., {len(self._contributions)}], got "
                f"shape {index.shape}"
            )
        out = np.zeros(index.shape[:-1], np.int64)
        for s, terms in enumerate(self._contributions):
            out = out + terms[index[..., s]]
        return out

    def objective(self, config: Any, rng: np.random.Generator | None = None) -> dict[str, float]:
        """Looks a config up: ``{metric: value}``, one repeat drawn with ``rng`` if several.

        Raises:
            TypeError: if the table has several repeats and ``rng`` is None.
        """
        p = self.point_of(config)
        row = self.values[p]
        if row.shape[0] == 1:
            return {self.metric: float(row[0])}
        if rng is None:
            raise TypeError(
                f"{self.name}: each evaluation draws one of {row.shape[0]} repeats; pass a "
                f"seeded rng, e.g. objective(config, np.random.default_rng(seed))"
            )
        return {self.metric: float(row[int(rng.integers(row.shape[0]))])}

    def regret(self, config: Any, kind: str | None = None) -> float:
        """The regret of a config (``kind`` defaults to the first, the measure of search).

        Raises:
            KeyError: for an unknown kind.
        """
        return float(self._regret_array(kind)[self.point_of(config)])

    def _regret_array(self, kind: str | None) -> np.ndarray:
        if kind is None:
            kind = next(iter(self.regrets))
        if kind not in self.regrets:
            raise KeyError(f"{self.name}: no regret {kind!r}; choose from {sorted(self.regrets)}")
        return self.regrets[kind]


def incumbent_regret(
    bench: TabularBenchmark, points: Any, observed: Any, kind: str | None = None
) -> np.ndarray:
    """The regret of the incumbent after each evaluation.

    The incumbent is the point with the best *observed* value so far (the first one on ties),
    as a user picks it; its regret is read from the table, so with noisy repeats a lucky
    observation can make a worse incumbent.

    Args:
        bench: the benchmark.
        points: point ids in evaluation order.
        observed: the values the objective returned, same length.
        kind: regret kind (default: the first).

    Returns:
        ``[len(points)]`` float64.

    Example:
        >>> import numpy as np, pliant as pl
        >>> bench = TabularBenchmark.from_arrays(
        ...     "toy", {"a": pl.oneof([0, 1, 2])}, metric="acc", direction="max",
        ...     values=np.array([[0.1], [0.5], [0.9]]), regrets={"val": np.array([0.8, 0.4, 0.0])},
        ...     point_of=lambda c: c["a"])
        >>> incumbent_regret(bench, [1, 0, 2], [0.5, 0.1, 0.9]).tolist()
        [0.4, 0.4, 0.0]
    """
    points = np.asarray(points, dtype=np.int64)
    observed = np.asarray(observed, dtype=np.float64)
    if points.shape != observed.shape or points.ndim != 1:
        raise ValueError(
            f"points and observed must be 1-D of the same length, got {points.shape} and "
            f"{observed.shape}"
        )
    signed = observed if bench.direction == "max" else -observed
    if signed.size == 0:
        return np.zeros(0)
    best = np.maximum.accumulate(signed)
    # the position of the first evaluation that reached each running best
    improved = np.concatenate([[True], signed[1:] > best[:-1]])
    where = np.maximum.accumulate(np.where(improved, np.arange(signed.size), 0))
    return bench._regret_array(kind)[points[where]]


def _readonly(a: np.ndarray) -> np.ndarray:
    out = np.array(a, copy=True)
    out.flags.writeable = False
    return out
