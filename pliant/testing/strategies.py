"""Hypothesis strategies for the DNA layer: random small `Space`s and DNAs of them.

Reuse them in any test that must hold for every kind of space (algorithms, stores, encoders):

Example:
    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5)
    ... @given(spaces(kinds=('choice', 'int')))
    ... def test_finite(space):
    ...     assert space.size >= 1
    >>> test_finite()
"""

from __future__ import annotations

from collections.abc import Sequence

import hypothesis.strategies as st

from pliant.spaces.dna import DNA, Group, Slot, Space
from pliant.spaces.sampling import random_dna

__all__ = ["ALL_KINDS", "LITERALS", "dnas", "finite_spaces", "spaces"]

ALL_KINDS = ("choice", "int", "float", "manyof")
# Display literals of every allowed type, distinct under from_dict's type-aware matching.
LITERALS = ("conv", "pool", None, True, False, 0, 7, -1, 2.5, "x", "", 1e-3)


@st.composite
def spaces(
    draw: st.DrawFn,
    max_slots: int = 6,
    kinds: Sequence[str] = ALL_KINDS,
    conditional: bool = True,
    max_depth: int = 2,
    max_choices: int = 4,
    multi_parent: bool = False,
) -> Space:
    """Random small spaces.

    Args:
        draw: Supplied by hypothesis.
        max_slots: Upper bound on the number of slots (a manyof may stop short of it).
        kinds: Which of 'choice', 'int', 'float', 'manyof' to draw.
        conditional: Condition some slots on a candidate of an earlier choice/int slot,
            nested up to ``max_depth`` levels, and give some manyof candidates children.
        max_depth: Deepest conditional nesting.
        max_choices: Most candidates (or int values) per slot.
        multi_parent: Also condition some slots on two different parents (Space.size then
            enumerates).

    Example:
        >>> from hypothesis import given, settings
        >>> @settings(max_examples=3)
        ... @given(spaces(kinds=('manyof',)))
        ... def test(space):
        ...     assert space.groups
        >>> test()
    """
    slots: list[Slot] = []
    groups: list[Group] = []
    depth: list[int] = []

    def condition() -> tuple[tuple[int, int], ...]:
        parents = [i for i, s in enumerate(slots) if s.kind != "float" and depth[i] < max_depth]
        if not conditional or not parents or not draw(st.booleans()):
            return ()
        chosen = [draw(st.sampled_from(parents))]
        if multi_parent and len(parents) > 1 and draw(st.booleans()):
            chosen.append(draw(st.sampled_from([p for p in parents if p != chosen[0]])))
        conds: list[tuple[int, int]] = []
        for p in chosen:
            values = draw(st.sets(st.integers(0, slots[p].num_choices - 1), min_size=1, max_size=2))
            conds.extend((p, v) for v in sorted(values))
        return tuple(conds)

    def add(slot: Slot) -> int:
        parents = {p for p, _ in slot.conditions}
        depth.append(1 + max((depth[p] for p in parents), default=-1))
        if draw(st.booleans()) and draw(st.booleans()):
            slot = slot._replace(name=f"n{len(slots)}")
        slots.append(slot)
        return len(slots) - 1

    def choice(ident: str, conds: tuple[tuple[int, int], ...], group: int = -1) -> Slot:
        n = draw(st.integers(1, max_choices))
        literals = tuple(draw(st.permutations(LITERALS))[:n])
        return Slot(ident, "choice", n, conditions=conds, literals=literals, group=group)

    def build(kind: str, ident: str, conds: tuple[tuple[int, int], ...]) -> None:
        if kind == "choice":
            add(choice(ident, conds))
        elif kind == "int":
            log = draw(st.booleans())
            lo = draw(st.integers(1, 5) if log else st.integers(-3, 3))
            hi = lo + draw(st.integers(0, max_choices - 1))
            add(Slot(ident, "int", hi - lo + 1, lo, hi, "log" if log else "linear", conds))
        elif kind == "float":
            log = draw(st.booleans())
            flo = draw(st.floats(1e-3, 10.0) if log else st.floats(-10.0, 10.0))
            fhi = flo * draw(st.floats(1.5, 1e3)) if log else flo + draw(st.floats(0.5, 10.0))
            add(Slot(ident, "float", 0, flo, fhi, "log" if log else "linear", conds))
        else:
            g = len(groups)
            n = draw(st.integers(1, max_choices))
            distinct, sorted_ = draw(st.booleans()), draw(st.booleans())
            k = draw(st.integers(1, min(3, n) if distinct else 3))
            with_children = conditional and draw(st.booleans())
            same_children = draw(st.booleans())
            child_values: list[int] = []
            positions = []
            for j in range(k):
                positions.append(add(Slot(f"{ident}[{j}]", "choice", n, conditions=conds, group=g)))
                if with_children and (same_children or draw(st.booleans())):
                    if not child_values or not same_children:
                        child_values = sorted(draw(st.sets(st.integers(0, n - 1), min_size=1)))
                    child_conds = tuple((positions[-1], c) for c in child_values)
                    add(Slot(f"{ident}[{j}].op", "int", 2, 0, 1, conditions=child_conds))
            groups.append(Group(tuple(positions), distinct, sorted_))

    n_items = draw(st.integers(1, max_slots))
    for item in range(n_items):
        if len(slots) >= max_slots:
            break
        build(draw(st.sampled_from(tuple(kinds))), f"s{item}", condition())
    return Space(slots, groups)


def finite_spaces(**kwargs: object) -> st.SearchStrategy[Space]:
    """Random small spaces without float slots (so `Space.size` and iteration are finite).

    Example:
        >>> from hypothesis import given, settings
        >>> @settings(max_examples=3)
        ... @given(finite_spaces())
        ... def test(space):
        ...     assert not space.is_float.any()
        >>> test()
    """
    return spaces(kinds=("choice", "int", "manyof"), **kwargs)  # type: ignore[arg-type]


def dnas(space: Space, n: int | None = None) -> st.SearchStrategy[DNA]:
    """Valid DNAs of ``space`` (a batch of ``n`` when given), drawn by seed with `random_dna`.

    Example:
        >>> from hypothesis import given, settings
        >>> space = Space([Slot('a', 'choice', 3)])
        >>> @settings(max_examples=3)
        ... @given(dnas(space))
        ... def test(dna):
        ...     space.validate(dna)
        >>> test()
    """
    return st.integers(0, 2**32 - 1).map(lambda seed: random_dna(space, seed, n))
