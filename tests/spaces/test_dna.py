"""Tests for the DNA layer: Space construction, DNA validation, conversions and JAX interop."""

from __future__ import annotations

import ast
import json
import math
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pliant.spaces import sampling
from pliant.spaces.dna import DNA, Group, Slot, Space, register_pytree
from pliant.spaces.sampling import iterate_dna, random_dna
from pliant.testing.strategies import dnas, finite_spaces, spaces

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


def make_space() -> Space:
    return Space(
        [
            Slot("op", "choice", 3, literals=("conv", "pool", None)),
            Slot("width", "int", 4, lo=1, hi=4, conditions=((0, 0),)),
            Slot("lr", "float", 0, lo=1e-4, hi=1e-1, scale="log", name="learning_rate"),
            Slot("layers[0]", "choice", 3, literals=("a", "b", "c"), group=0),
            Slot("layers[1]", "choice", 3, literals=("a", "b", "c"), group=0),
        ],
        groups=[Group((3, 4), distinct=True, sorted=True)],
    )


def cond_space() -> Space:
    return Space([Slot("a", "choice", 2), Slot("b", "choice", 2, conditions=((0, 1),))])


# ----------------------------------------------------------------------------- Space


def test_space_attributes_and_arrays():
    space = make_space()
    assert len(space) == space.num_slots == 5
    assert space.num_choices.tolist() == [3, 4, 0, 3, 3]
    assert space.is_float.tolist() == [False, False, True, False, False]
    assert space.is_int.tolist() == [False, True, False, False, False]
    assert space.lo.tolist() == [0, 1, 1e-4, 0, 0] and space.hi[1] == 4
    assert space.log_scale.tolist() == [False, False, True, False, False]
    assert space.parent.tolist() == [-1, 0, -1, -1, -1]
    assert space.parent_choice.tolist() == [-1, 0, -1, -1, -1]
    assert space.choice_mask.shape == (5, 4)
    assert space.choice_mask[1].all() and not space.choice_mask[2].any()
    assert space.choice_mask[0].tolist() == [True, True, True, False]
    assert space.num_choices.dtype == np.int32 and space.lo.dtype == np.float64
    for arr in (space.num_choices, space.is_float, space.choice_mask, space.parent):
        assert not arr.flags.writeable
    assert Space([Slot("x", "float", 0, hi=1.0)]).choice_mask.shape == (1, 1)
    assert space.slots[0].literals == ("conv", "pool", None)
    assert Space([Slot("a", "choice", 3)]).slots[0].literals == (0, 1, 2)


def test_space_is_immutable_hashable_and_structural():
    a, b = make_space(), make_space()
    assert a == b and hash(a) == hash(b) and a.fingerprint == b.fingerprint
    assert a != cond_space() and a != "space"
    assert {a: 1}[b] == 1
    with pytest.raises(AttributeError, match="Space is immutable"):
        a.foo = 1  # type: ignore[attr-defined]
    # Literals keep their type: 1, 1.0 and True are different candidates.
    ints = Space([Slot("a", "choice", 1, literals=(1,))])
    floats = Space([Slot("a", "choice", 1, literals=(1.0,))])
    assert ints != floats and ints.fingerprint != floats.fingerprint
    # Numbers are normalized, so hand-built and JSON-loaded spaces agree.
    assert Space([Slot("a", "int", 2, 0, 1)]) == Space([Slot("a", "int", 2, 0.0, 1.0)])


def test_fingerprint_is_stable_across_processes():
    code = (
        "from pliant.spaces.dna import Slot, Space;"
        "print(Space([Slot('a', 'choice', 2, literals=('x', None))]).fingerprint)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    space = Space([Slot("a", "choice", 2, literals=("x", None))])
    assert out.stdout.strip() == space.fingerprint
    assert len(space.fingerprint) == 16 and int(space.fingerprint, 16) >= 0


def _pliant_imports(module: str) -> set[str]:
    tree = ast.parse(pathlib.Path(sys.modules[module].__file__).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return {n for n in names if n.split(".")[0] == "pliant"}


def test_dna_layer_knows_nothing_of_the_rest_of_pliant():
    # The DNA layer is the contract algorithms see: it imports only numpy and its own helpers.
    dna_layer = {"pliant.spaces._slots", "pliant.spaces.sampling"}
    assert _pliant_imports("pliant.spaces.dna") <= dna_layer
    assert _pliant_imports("pliant.spaces._slots") == {"pliant.spaces.dna"}  # for type hints only
    assert _pliant_imports("pliant.spaces.sampling") <= dna_layer | {"pliant.spaces.dna"}
    code = (
        "import sys\n"
        "from pliant.spaces.dna import Slot, Space\n"
        'Space([Slot("a", "choice", 2)]).make_dna([1]).to_dict()\n'
        'print(sorted(m for m in sys.modules if m.split(".")[0] == "jax"))'
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_repr_lists_slots():
    text = repr(make_space())
    assert text.startswith("Space(fingerprint=")
    assert "[1] 'width' int[1, 4] if op == 'conv'" in text
    assert "[2] 'lr' float[0.0001, 0.1] log name='learning_rate'" in text
    assert "manyof#0(distinct=True, sorted=True)" in text
    assert ", ..." in repr(Space([Slot("a", "choice", 9)]))


@pytest.mark.parametrize(
    ("slots", "groups", "error", "match"),
    [
        (["x"], (), TypeError, r"slots\[0\]: expected a Slot"),
        ([Slot("", "choice", 2)], (), ValueError, "non-empty str"),
        ([Slot("a", "cat", 2)], (), ValueError, "slot 'a': unknown kind 'cat'"),
        ([Slot("a", "float", 0, 1, 2, scale="ln")], (), ValueError, "unknown scale 'ln'"),
        ([Slot("a", "choice", 2, name="")], (), ValueError, "name must be None or a non-empty"),
        ([Slot("a", "choice", 2.0)], (), ValueError, r"slot 'a'.num_choices: expected an int"),
        ([Slot("a", "int", 2, "x", 1)], (), ValueError, r"slot 'a'.lo: expected a real number"),
        ([Slot("a", "choice", 0)], (), ValueError, "slot 'a': a choice slot needs num_choices"),
        ([Slot("a", "choice", 2, lo=1)], (), ValueError, "takes no bounds or scale"),
        ([Slot("a", "choice", 2, literals=("x",))], (), ValueError, "expected 2 literals"),
        ([Slot("a", "choice", 1, literals=([1],))], (), ValueError, r"literals\[0\]: literal"),
        ([Slot("a", "choice", 1, literals=(math.nan,))], (), ValueError, "literal nan"),
        ([Slot("a", "float", 0, 0, math.inf)], (), ValueError, "bounds must be finite"),
        ([Slot("a", "float", 0, 2, 1)], (), ValueError, "slot 'a': lo > hi"),
        ([Slot("a", "float", 0, 0, 1, "log")], (), ValueError, "slot 'a': log scale needs lo > 0"),
        ([Slot("a", "int", 2, 0, 1, literals=(1, 2))], (), ValueError, "only choice slots take"),
        ([Slot("a", "int", 2, 0.5, 1.5)], (), ValueError, "int bounds must be integers"),
        ([Slot("a", "int", 3, 0, 1)], (), ValueError, r"num_choices == hi - lo \+ 1 == 2, got 3"),
        ([Slot("a", "int", 2**32, 0, 2**32 - 1)], (), ValueError, "does not fit int32"),
        ([Slot("a", "float", 1, 0, 1)], (), ValueError, "a float slot needs num_choices == 0"),
        ([Slot("a", "choice", 2, conditions=(1,))], (), ValueError, "conditions must be"),
        ([Slot("a", "choice", 2, group=True)], (), ValueError, r"slot 'a'.group: expected an"),
        (
            [Slot("a", "choice", 2), Slot("a", "choice", 2)],
            (),
            ValueError,
            "duplicate slot id 'a'",
        ),
        (
            [Slot("a", "choice", 2, conditions=((0, 0),))],
            (),
            ValueError,
            "slot 'a' .slot 0.: condition parent 0 must be an earlier slot",
        ),
        (
            [Slot("f", "float", 0, 0, 1), Slot("a", "choice", 2, conditions=((0, 0),))],
            (),
            ValueError,
            "parent 'f' is a float slot",
        ),
        (
            [Slot("p", "choice", 2), Slot("a", "choice", 2, conditions=((0, 2),))],
            (),
            ValueError,
            "condition index 2 is out of range for parent 'p'",
        ),
        ([Slot("a", "choice", 2, group=0)], (), ValueError, "slot 'a': group 0 does not exist"),
        (
            [Slot("a", "choice", 2, name="b"), Slot("b", "choice", 2)],
            (),
            ValueError,
            "decision key 'b' is used by slots 'b' and 'a'|decision key 'b'",
        ),
        (
            [Slot("a", "choice", 2, name="k"), Slot("b", "choice", 2, name="k")],
            (),
            ValueError,
            "decision key 'k' is used by slots 'a' and 'b'",
        ),
        ([Slot("a", "choice", 2)], ["g"], TypeError, r"groups\[0\]: expected a Group"),
        (
            [Slot("a", "choice", 2, group=0)],
            [Group((0,), 1, False)],
            ValueError,
            r"groups\[0\]: expected Group",
        ),
        ([Slot("a", "choice", 2, group=0)], [Group((), True, False)], ValueError, "non-empty"),
        (
            [Slot("a", "choice", 2, group=0), Slot("b", "choice", 2, group=0)],
            [Group((1, 0), True, False)],
            ValueError,
            "strictly increasing",
        ),
        (
            [Slot("a", "choice", 2), Slot("b", "choice", 2, group=0)],
            [Group((0, 1), True, False)],
            ValueError,
            r"slot 'a' is listed in groups\[0\] but has group=-1",
        ),
        (
            [Slot("a", "int", 2, 0, 1, group=0)],
            [Group((0,), True, False)],
            ValueError,
            "is a int slot; expected choice",
        ),
        (
            [Slot("a", "choice", 2, group=0), Slot("b", "choice", 3, group=0)],
            [Group((0, 1), False, False)],
            ValueError,
            "slot 'b' in groups.0. differs from 'a'",
        ),
        (
            [Slot("a", "choice", 1, group=0), Slot("b", "choice", 1, group=0)],
            [Group((0, 1), True, False)],
            ValueError,
            "2 distinct positions but only 1 candidates",
        ),
        (
            [Slot("a", "choice", 2, group=0), Slot("b", "choice", 2, group=0)],
            [Group((0,), True, False)],
            ValueError,
            "slot 'b' has group=0 but that group does not list it",
        ),
    ],
)
def test_space_construction_errors(slots, groups, error, match):
    with pytest.raises(error, match=match):
        Space(slots, groups)


# ----------------------------------------------------------------------------- size


def manyof(n: int, k: int, distinct: bool, sorted_: bool) -> Space:
    slots = [Slot(f"m[{j}]", "choice", n, group=0) for j in range(k)]
    return Space(slots, [Group(tuple(range(k)), distinct, sorted_)])


@pytest.mark.parametrize(
    ("distinct", "sorted_", "expected"),
    [
        (True, True, math.comb(5, 3)),
        (True, False, math.perm(5, 3)),
        (False, True, math.comb(5 + 3 - 1, 3)),
        (False, False, 5**3),
    ],
)
def test_size_of_manyof(distinct, sorted_, expected):
    space = manyof(5, 3, distinct, sorted_)
    assert space.size == expected == len(list(iterate_dna(space)))


def test_size_with_conditions_and_floats():
    assert cond_space().size == 3
    assert make_space().size == math.inf
    # A conditioned int slot is counted by its values: 'conv' opens 4 widths.
    no_float = Space([s for s in make_space().slots if s.kind != "float"][:2])
    assert no_float.size == 4 + 2
    assert Space([]).size == 1
    # A huge int range is counted without iterating over it.
    assert Space([Slot("a", "int", 2**31 - 1, 0, 2**31 - 2)]).size == 2**31 - 1


def test_size_of_manyof_with_conditional_children():
    # Candidate 0 of each position opens a child with 2 values: weights (2, 1, 1).
    slots = []
    for j in range(2):
        slots.append(Slot(f"m[{j}]", "choice", 3, group=0))
        slots.append(Slot(f"m[{j}].x", "choice", 2, conditions=((len(slots) - 1, 0),)))
    space = Space(slots, [Group((0, 2), True, True)])
    assert space.size == 2 * 1 + 2 * 1 + 1 * 1 == len(list(iterate_dna(space)))
    unsorted = Space(slots, [Group((0, 2), True, False)])
    assert unsorted.size == 2 * 5 == len(list(iterate_dna(unsorted)))
    # Different children per position go through the subset DP.
    slots[3] = slots[3]._replace(num_choices=3, literals=())
    different = Space(slots, [Group((0, 2), True, False)])
    assert different.size == 2 * 1 * 2 + 2 * 1 + 3 * 1 * 2 == len(list(iterate_dna(different)))


def test_size_with_several_parents_enumerates(monkeypatch):
    slots = [
        Slot("a", "choice", 2),
        Slot("b", "choice", 2),
        Slot("c", "choice", 3, conditions=((0, 1), (1, 1))),
    ]
    space = Space(slots)
    assert space.size == 1 + 3 * 3 == len(list(iterate_dna(space)))
    monkeypatch.setattr(sampling, "_ENUMERATION_LIMIT", 5)
    with pytest.raises(ValueError, match="slot 'c' is conditioned on several parent slots"):
        _ = Space(slots).size


def test_size_of_large_distinct_unsorted_group_with_different_children_raises():
    slots = [Slot(f"m[{j}]", "choice", 17, group=0) for j in range(17)]
    slots.append(Slot("child", "choice", 2, conditions=((0, 0),)))
    space = Space(slots, [Group(tuple(range(17)), True, False)])
    with pytest.raises(ValueError, match="17 distinct unsorted positions"):
        _ = space.size


# ----------------------------------------------------------------------------- make_dna / active


def test_make_dna_canonicalizes():
    space = make_space()
    dna = space.make_dna([1, 3, 2, 0, 2], [9.0] * 5)
    assert dna.active.tolist() == [True, False, True, True, True]
    assert dna.index.tolist() == [1, 0, 0, 0, 2]
    assert dna.value.tolist() == [0, 0, 9.0, 0, 0]  # ranges are not checked here
    assert dna.index.dtype == np.int32 and dna.value.dtype == np.float64
    assert not dna.index.flags.writeable
    batch = space.make_dna(np.zeros((2, 3, 5), np.int64))
    assert batch.batch_shape == (2, 3) and batch.active.shape == (2, 3, 5)


def test_active_mask_nested():
    space = Space(
        [
            Slot("a", "choice", 2),
            Slot("b", "choice", 2, conditions=((0, 1),)),
            Slot("c", "choice", 2, conditions=((1, 0), (0, 0))),
        ]
    )
    got = space.active_mask(np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0]]))
    assert got.tolist() == [[True, False, True], [True, True, True], [True, True, False]]
    assert Space([Slot("a", "choice", 2)]).active_mask([[0], [1]]).all()


@pytest.mark.parametrize(
    ("index", "value", "error", "match"),
    [
        ([0.0, 1.0], None, TypeError, "must be an integer array, got dtype float64"),
        ([0, 1, 0], None, ValueError, r"index has shape \(3,\); expected \[..., 2\]"),
        (0, None, ValueError, r"index has shape \(\); expected"),
        ([0, 1], [0.0], ValueError, r"value has shape \(1,\); expected the index shape \(2,\)"),
    ],
)
def test_make_dna_errors(index, value, error, match):
    with pytest.raises(error, match=match):
        cond_space().make_dna(index, value)


# ----------------------------------------------------------------------------- validate


def valid() -> DNA:
    return make_space().from_dict(
        {"op": "conv", "width": 2, "learning_rate": 0.01, "layers[0]": "a", "layers[1]": "c"}
    )


def replace(dna: DNA, **arrays) -> DNA:
    parts = {k: np.array(getattr(dna, k)) for k in ("index", "value", "active")}
    for name, (i, x) in arrays.items():
        parts[name][..., i] = x
    return DNA(dna.space, parts["index"], parts["value"], parts["active"])


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        ({"index": (0, 3)}, r"slot 'op': index 3 is out of range; expected 0 <= index < 3"),
        ({"index": (0, -1)}, r"slot 'op': index -1 is out of range"),
        ({"index": (1, 4)}, r"slot 'width': int 5 \(index 4\) is out of range; expected 1 <="),
        ({"value": (2, 1.0)}, r"slot 'lr': float 1.0 is out of bounds or NaN; expected 0.0001"),
        ({"value": (2, math.nan)}, r"slot 'lr': float nan is out of bounds"),
        ({"value": (0, 0.5)}, r"slot 'op' is not canonical .index 0, value 0.5."),
        ({"index": (2, 1)}, r"slot 'lr' is not canonical .index 1"),
        ({"active": (1, False)}, r"slot 'width' is inactive but set \(index 1, value 0.0\)"),
        (
            {"active": (4, False), "index": (4, 0)},
            r"slot 'layers\[1\]': active=False is inconsistent",
        ),
        ({"index": (4, 0)}, r"slot 'layers\[1\]': manyof indices \[0, 0\] .* repeat a candidate"),
        ({"index": (3, 2)}, r"slot 'layers\[1\]': manyof indices \[2, 2\]"),
    ],
)
def test_validate_errors(edit, match):
    dna = valid()
    with pytest.raises(ValueError, match="invalid DNA: " + match):
        make_space().validate(replace(dna, **edit))


def test_validate_unsorted_group_and_nondistinct():
    space = manyof(3, 2, distinct=False, sorted_=True)
    space.validate(space.make_dna([1, 1]))
    with pytest.raises(ValueError, match=r"slot 'm\[1\]': manyof indices \[2, 0\] .* not sorted"):
        space.validate(space.make_dna([2, 0]))


def test_validate_reports_first_bad_row_of_batch():
    space = cond_space()
    batch = space.make_dna(np.array([[0, 0], [1, 1], [1, 5], [7, 0]]))
    with pytest.raises(ValueError, match=r"invalid DNA: row \(2,\): slot 'b': index 5"):
        space.validate(batch)
    good = space.make_dna(np.array([[[0, 0], [1, 1]]]))
    assert space.validate(good) is good


def test_validate_structural_errors():
    space = cond_space()
    dna = space.make_dna([1, 1])
    with pytest.raises(TypeError, match="validate: expected a DNA"):
        space.validate([1, 1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"DNA belongs to a different space \(fingerprint \w+ vs"):
        make_space().validate(dna)
    with pytest.raises(ValueError, match=r"DNA.value has shape \(3,\); expected \[..., 2\]"):
        space.validate(DNA(space, dna.index, np.zeros(3), dna.active))
    with pytest.raises(ValueError, match=r"DNA.index has shape \(\)"):
        space.validate(DNA(space, np.int32(0), dna.value, dna.active))
    with pytest.raises(ValueError, match=r"DNA.index has dtype float64; expected integer"):
        space.validate(DNA(space, dna.index.astype(float), dna.value, dna.active))
    with pytest.raises(ValueError, match=r"DNA.active has dtype int64; expected bool"):
        space.validate(DNA(space, dna.index, dna.value, dna.active.astype(np.int64)))


# ----------------------------------------------------------------------------- DNA protocol


def test_dna_batch_protocol():
    space = cond_space()
    rows = [space.make_dna([0, 0]), space.make_dna([1, 0]), space.make_dna([1, 1])]
    batch = space.stack(rows)
    assert batch.batch_shape == (3,) and len(batch) == 3
    assert list(batch) == rows and batch[1] == rows[1]
    assert batch[1:].batch_shape == (2,)
    assert repr(batch).startswith("DNA(batch_shape=(3,), space=")
    with pytest.raises(TypeError, match="len\\(\\) of a single DNA"):
        len(rows[0])
    with pytest.raises(TypeError, match="a single DNA is not indexable"):
        rows[0][0]
    with pytest.raises(TypeError, match="a single DNA is not iterable"):
        iter(rows[0])
    with pytest.raises(
        TypeError, match=r"__hash__ needs a single DNA, got a batch of shape \(3,\)"
    ):
        hash(batch)
    with pytest.raises(ValueError, match="stack: expected at least one DNA"):
        space.stack([])
    with pytest.raises(ValueError, match="stack: item 1 is not a DNA of this space"):
        space.stack([rows[0], valid()])
    with pytest.raises(AttributeError, match="DNA is immutable"):
        rows[0].index = None


def test_dna_equality_and_hash():
    space = cond_space()
    a, b = space.make_dna([1, 1]), space.from_list([1, 1])
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != space.make_dna([1, 0]) and a != "dna"
    other = Space([Slot("a", "choice", 2), Slot("b", "choice", 2)])
    assert a != other.make_dna([1, 1])
    f = Space([Slot("x", "float", 0, -1, 1)])
    assert hash(f.make_dna([0], [0.0])) == hash(f.make_dna([0], [-0.0]))


@SETTINGS
@given(spaces(multi_parent=True), st.integers(0, 99))
def test_equality_and_hash_laws(space, seed):
    a, b = random_dna(space, seed), random_dna(space, seed)
    assert a == b and hash(a) == hash(b)
    c = random_dna(space, seed + 1)
    assert (a == c) == (a.to_list() == c.to_list())
    assert (a == c) <= (hash(a) == hash(c))


# ----------------------------------------------------------------------------- conversions


def test_to_dict_from_dict_by_name_and_id():
    dna = valid()
    expected = {
        "op": "conv",
        "width": 2,
        "learning_rate": 0.01,
        "layers[0]": "a",
        "layers[1]": "c",
    }
    assert dna.to_dict() == expected
    assert list(dna.to_dict()) == list(expected)  # slot order
    by_id = {**expected, "lr": 0.01}
    del by_id["learning_rate"]
    assert make_space().from_dict(by_id) == dna
    assert repr(dna) == f"DNA({expected!r})"
    assert dna.to_list() == [0, 1, 0.01, 0, 2]
    pool = make_space().from_dict({**expected, "op": None, "width": None})
    assert pool.to_dict()["op"] is None and "width" not in pool.to_dict()
    # An int given as an integral float, a numpy scalar literal.
    assert make_space().from_dict({**expected, "width": 2.0, "op": np.str_("conv")}) == dna


@pytest.mark.parametrize(
    ("edit", "error", "match"),
    [
        ({"bogus": 1}, ValueError, r"from_dict: unknown decision key 'bogus'; expected one of"),
        ({"lr": 0.01}, ValueError, r"slot 'lr' is given twice, as 'learning_rate' and 'lr'"),
        ({"op": "pool"}, ValueError, r"slot 'width' is inactive .* but has value 2"),
        ({"width": None}, ValueError, r"from_dict: slot 'width' expects an int, got None"),
        (
            {"op": "conv3"},
            ValueError,
            r"value 'conv3' is not a candidate; expected one of \['conv'",
        ),
        ({"op": 0}, ValueError, "value 0 is not a candidate"),
        ({"width": 2.5}, ValueError, "slot 'width' expects an int, got 2.5"),
        ({"width": True}, ValueError, "slot 'width' expects an int, got True"),
        (
            {"width": 9},
            ValueError,
            r"slot 'width': int 9 is out of range; expected 1 <= value <= 4",
        ),
        ({"learning_rate": "x"}, ValueError, r"slot 'learning_rate': expected a real number"),
        ({"learning_rate": 2.0}, ValueError, r"float 2.0 is out of bounds; expected 0.0001 <="),
        ({"layers[1]": "a"}, ValueError, r"invalid DNA: slot 'layers\[1\]': manyof indices"),
    ],
)
def test_from_dict_errors(edit, error, match):
    d = {**valid().to_dict(), **edit}
    with pytest.raises(error, match=match):
        make_space().from_dict(d)


def test_from_dict_missing_ambiguous_and_type():
    space = make_space()
    d = valid().to_dict()
    del d["learning_rate"]
    with pytest.raises(ValueError, match="missing value for active slot 'learning_rate'"):
        space.from_dict(d)
    with pytest.raises(TypeError, match="from_dict: expected a mapping"):
        space.from_dict([("op", "conv")])  # type: ignore[arg-type]
    twins = Space([Slot("a", "choice", 2, literals=("Conv(...)", "Conv(...)"))])
    with pytest.raises(ValueError, match=r"value 'Conv\(...\)' matches candidates \[0, 1\]"):
        twins.from_dict({"a": "Conv(...)"})
    # Numeric literals match across int and float, never bool.
    nums = Space([Slot("a", "choice", 3, literals=(1.0, 2, True))])
    assert nums.from_dict({"a": 1}).to_list() == [0]
    assert nums.from_dict({"a": 2.0}).to_list() == [1]
    assert nums.from_dict({"a": True}).to_list() == [2]


@pytest.mark.parametrize(
    ("lst", "error", "match"),
    [
        ("ab", TypeError, "from_list: expected a list"),
        ([0], ValueError, r"from_list: expected 2 entries \(one per slot\), got 1"),
        ([1, None], ValueError, r"slot 'b' \(entry 1\) is active .*; expected a number, got None"),
        ([0, 1], ValueError, r"slot 'b' \(entry 1\) is inactive .*; expected None, got 1"),
        ([None, None], ValueError, r"slot 'a' \(entry 0\) is active"),
        ([1.0, None], ValueError, r"slot 'a' \(entry 0\) expects an int index, got 1.0"),
        ([True, None], ValueError, r"expects an int index, got True"),
        ([2, None], ValueError, r"slot 'a' \(entry 0\): index 2 is out of range; expected 0 <="),
        ([1, 2**40], ValueError, r"index 1099511627776 is out of range"),
    ],
)
def test_from_list_errors(lst, error, match):
    with pytest.raises(error, match=match):
        cond_space().from_list(lst)


def test_from_list_float_and_group_errors():
    assert cond_space().from_list((1, 1)).to_list() == [1, 1]
    space = make_space()
    with pytest.raises(ValueError, match=r"slot 'lr' \(entry 2\): expected a real number"):
        space.from_list([1, None, "x", 0, 1])
    with pytest.raises(ValueError, match=r"invalid DNA: slot 'lr': float 5.0 is out of bounds"):
        space.from_list([1, None, 5.0, 0, 1])
    with pytest.raises(ValueError, match=r"manyof indices \[1, 0\] .* are not sorted"):
        space.from_list([1, None, 0.01, 1, 0])


def test_conversions_of_batches_raise():
    batch = random_dna(make_space(), 0, n=2)
    for method in ("to_dict", "to_list", "to_json"):
        with pytest.raises(TypeError, match=rf"{method} needs a single DNA.*\[d.{method}\(\)"):
            getattr(batch, method)()


def test_dna_json_round_trip_and_errors():
    space = make_space()
    dna = valid()
    text = dna.to_json()
    assert json.loads(text) == {"space": space.fingerprint, "dna": [0, 1, 0.01, 0, 2]}
    assert space.from_json_dna(text) == dna
    with pytest.raises(ValueError, match="from_json_dna: expected JSON text"):
        space.from_json_dna("{oops")
    with pytest.raises(ValueError, match="from_json_dna: expected JSON text"):
        space.from_json_dna(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r'expected \{"space": "<fingerprint>", "dna": \[...\]\}'):
        space.from_json_dna("[1, 2]")
    with pytest.raises(ValueError, match=r"saved for space fingerprint 'abc' but this space has"):
        space.from_json_dna('{"space": "abc", "dna": []}')


def test_space_json_round_trip_and_errors():
    space = make_space()
    back = Space.from_json(space.to_json())
    assert back == space and back.fingerprint == space.fingerprint and back.slots == space.slots
    good = json.loads(space.to_json())
    bad_slot = {**good, "slots": [{"id": "a"}]}
    bad_conditions = {**good, "slots": [{**good["slots"][0], "conditions": "x"}]}
    bad_group = {**good, "groups": [{"slots": 1, "distinct": True, "sorted": True}]}
    cases = [
        ("not json", "Space.from_json: expected JSON text"),
        ("[]", "expected an object with format 'pliant.Space' and version 1"),
        (json.dumps({**good, "version": 2}), "version 1"),
        (json.dumps({**good, "slots": {}}), '"slots" and "groups" must be lists'),
        (json.dumps(bad_slot), r"slots\[0\] must be an object with keys"),
        (json.dumps(bad_conditions), r"slots\[0\] conditions/literals must be lists"),
        (json.dumps(bad_group), r"groups\[0\] must be \{'slots': \[...\]"),
    ]
    for text, match in cases:
        with pytest.raises(ValueError, match=match):
            Space.from_json(text)
    bad_kind = {**good, "slots": [{**good["slots"][0], "kind": "bogus"}]}
    with pytest.raises(ValueError, match="slot 'op': unknown kind 'bogus'"):
        Space.from_json(json.dumps(bad_kind))


@SETTINGS
@given(spaces(multi_parent=True))
def test_space_json_round_trip_property(space):
    back = Space.from_json(space.to_json())
    assert back == space and hash(back) == hash(space) and back.fingerprint == space.fingerprint


@SETTINGS
@given(spaces(multi_parent=True), st.integers(0, 2**32 - 1))
def test_dna_round_trips_property(space, seed):
    dna = random_dna(space, seed)
    assert space.from_dict(dna.to_dict()) == dna
    assert space.from_list(dna.to_list()) == dna
    assert space.from_json_dna(dna.to_json()) == dna
    by_id = {
        space.slots[i].id: v for i, v in zip(np.flatnonzero(dna.active), dna.to_dict().values())
    }
    assert space.from_dict(by_id) == dna


# ----------------------------------------------------------------------------- JAX interop


def test_make_dna_under_jit_matches_numpy():
    import jax
    import jax.numpy as jnp

    register_pytree()
    space = make_space()
    index = np.array([[0, 3, 0, 0, 1], [1, 2, 0, 2, 1], [0, 0, 0, 1, 2]], np.int32)
    value = np.full(index.shape, 0.0625)  # exact in float32 too
    host = space.make_dna(index, value)
    dev = jax.jit(lambda i, v: space.make_dna(i, v))(jnp.asarray(index), jnp.asarray(value))
    assert isinstance(dev.index, jax.Array) and dev.value.dtype == jnp.float32
    assert host == dev
    np.testing.assert_array_equal(space.active_mask(jnp.asarray(index)), host.active)

    def step(dna, _):
        return space.make_dna((dna.index + 1) % 3, dna.value), dna.index[0]

    final, firsts = jax.lax.scan(step, dev, None, length=3)
    assert final.batch_shape == (3,) and firsts.shape == (3, 5)
    leaves, treedef = jax.tree_util.tree_flatten(dev)
    assert len(leaves) == 3 and jax.tree_util.tree_unflatten(treedef, leaves) == dev
    stacked = space.stack([dev[0], dev[1]])
    assert isinstance(stacked.index, jax.Array) and stacked == host[:2]
    seen = []
    jax.jit(lambda d: seen.append(repr(d)) or d)(dev[0])
    assert seen[0].startswith("DNA(index=")  # tracers cannot be shown as a dict


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(finite_spaces(multi_parent=True).flatmap(lambda s: dnas(s, n=4)))
def test_make_dna_jit_property(batch):
    import jax

    space = batch.space
    noisy = np.asarray(batch.index) + np.asarray(~batch.active, np.int32)  # dirty inactive slots
    dev = jax.jit(space.make_dna)(jax.numpy.asarray(noisy))
    assert dev == space.make_dna(noisy) == batch
