"""Tests for random_dna (numpy and JAX paths), iterate_dna and the exact count behind Space.size."""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pliant.spaces.dna import Group, Slot, Space
from pliant.spaces.sampling import iterate_dna, random_dna
from pliant.testing.strategies import finite_spaces, spaces

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
# Each example compiles a sampler: keep the JAX properties small.
JAX_SETTINGS = settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
N = 20000  # one batch size for the fixed-space JAX tests, so they share compiled samplers


def mixed_space() -> Space:
    slots = [
        Slot("op", "choice", 3),
        Slot("width", "int", 8, lo=1, hi=8, conditions=((0, 0), (0, 2))),
        Slot("lr", "float", 0, lo=1e-4, hi=0.1, scale="log"),
        Slot("units", "int", 1024, lo=1, hi=1024, scale="log"),
        Slot("drop", "float", 0, lo=0.0, hi=0.1, conditions=((1, 3),)),
    ]
    slots += [Slot(f"m[{j}]", "choice", 5, group=0) for j in range(3)]
    slots += [Slot(f"p[{j}]", "choice", 4, group=1) for j in range(3)]
    slots += [Slot(f"q[{j}]", "choice", 4, group=2) for j in range(2)]
    groups = [
        Group((5, 6, 7), distinct=True, sorted=True),
        Group((8, 9, 10), distinct=False, sorted=True),
        Group((11, 12), distinct=True, sorted=False),
    ]
    return Space(slots, groups)


def brute_force_count(space: Space) -> int:
    """Counts canonical index vectors that meet the manyof constraints, by brute force."""
    nc = space.num_choices
    grids = np.meshgrid(*[np.arange(n) for n in nc], indexing="ij")
    rows = np.stack(grids, -1).reshape(-1, len(nc)).astype(np.int32)
    dna = space.make_dna(rows)
    ok = (dna.index == rows).all(axis=1)
    for g in space.groups:
        pos = list(g.slots)
        gi, on = rows[:, pos], dna.active[:, pos[0]]
        if g.distinct:
            for a in range(len(pos)):
                for b in range(a):
                    ok &= ~(on & (gi[:, a] == gi[:, b]))
        if g.sorted:
            ok &= ~(on & (np.diff(gi, axis=1) < 0).any(axis=1))
    return int(ok.sum())


# ----------------------------------------------------------------------------- random_dna


@SETTINGS
@given(spaces(multi_parent=True), st.integers(0, 2**32 - 1), st.sampled_from([None, 1, 7]))
def test_numpy_random_dna_validates_and_reproduces(space, seed, n):
    dna = random_dna(space, seed, n)
    assert space.validate(dna) is dna
    assert dna.batch_shape == (() if n is None else (n,))
    assert dna.index.dtype == np.int32 and dna.value.dtype == np.float64
    assert dna == random_dna(space, seed, n)
    assert dna == random_dna(space, np.random.default_rng(seed), n)


@JAX_SETTINGS
@given(spaces(multi_parent=True), st.integers(0, 2**31 - 1))
def test_jax_random_dna_validates_and_reproduces(space, seed):
    dna = random_dna(space, jax.random.key(seed), 16)
    assert isinstance(dna.index, jax.Array) and dna.index.dtype == jnp.int32
    space.validate(dna)
    assert dna == random_dna(space, jax.random.key(seed), 16)
    for row in dna:  # float32 values survive the host round trips
        assert space.from_dict(row.to_dict()) == row
        assert space.from_json_dna(row.to_json()) == row


def test_random_dna_manyof_constraints_and_conditions():
    space = mixed_space()
    for key in (0, jax.random.key(0), jax.random.PRNGKey(0)):
        dna = random_dna(space, key, N)
        space.validate(dna)
        index = np.asarray(dna.index)
        assert (np.diff(index[:, 5:8], axis=1) > 0).all()
        assert (np.diff(index[:, 8:11], axis=1) >= 0).all()
        assert (np.diff(index[:, 8:11], axis=1) == 0).any()
        assert (index[:, 11] != index[:, 12]).all() and (index[:, 11] > index[:, 12]).any()
        active = np.asarray(dna.active)
        np.testing.assert_array_equal(active[:, 1], index[:, 0] != 1)
        np.testing.assert_array_equal(active[:, 4], active[:, 1] & (index[:, 1] == 3))


def test_random_dna_distributions():
    space = mixed_space()
    for key in (1, jax.random.key(1)):
        dna = random_dna(space, key, N)
        index, value = np.asarray(dna.index), np.asarray(dna.value, np.float64)
        counts = np.bincount(index[:, 0], minlength=3) / len(index)
        np.testing.assert_allclose(counts, 1 / 3, atol=0.02)
        width = index[np.asarray(dna.active)[:, 1], 1]
        np.testing.assert_allclose(np.bincount(width, minlength=8) / len(width), 1 / 8, atol=0.02)
        # Log-uniform float: the median is the geometric mean of the bounds.
        assert abs(np.log10(np.median(value[:, 2])) - np.log10(math.sqrt(1e-5))) < 0.05
        # Log-uniform int on 1..1024: about half the mass below sqrt(1024) = 32.
        units = index[:, 3] + 1
        assert 0.45 < np.mean(units <= 32) < 0.55 and units.min() == 1 and units.max() <= 1024
        # Distinct manyof: every 3-subset of 5 candidates about equally often.
        sets = index[:, 5] * 25 + index[:, 6] * 5 + index[:, 7]
        assert len(np.unique(sets)) == math.comb(5, 3)


def test_random_dna_float_bounds_hold_in_float32():
    space = Space(
        [
            Slot("a", "float", 0, lo=0.1, hi=0.3),
            Slot("b", "float", 0, lo=1e-3, hi=0.1, scale="log"),
            Slot("c", "float", 0, lo=0.5, hi=0.5),
        ]
    )
    dna = random_dna(space, jax.random.key(3), 50000)
    value = np.asarray(dna.value, np.float64)
    assert (value >= space.lo).all() and (value <= space.hi).all()
    assert (value[:, 2] == 0.5).all()
    space.validate(dna)


def test_random_dna_under_jit_and_vmap():
    space = Space([Slot("a", "choice", 3), Slot("x", "float", 0, lo=1.0, hi=2.0)])
    typed = random_dna(space, jax.random.key(5), 4)
    jitted = jax.jit(random_dna, static_argnums=(0, 2))(space, jax.random.key(5), 4)
    assert jitted == typed
    keys = jax.random.split(jax.random.key(5), 3)
    batched = jax.vmap(lambda k: random_dna(space, k))(keys)
    assert batched.batch_shape == (3,)
    assert batched[1] == random_dna(space, keys[1])
    single = random_dna(space, jax.random.key(5))
    assert single.batch_shape == () and single.value.dtype == jnp.float32
    assert random_dna(space, 0, 0).batch_shape == (0,)
    space.validate(batched)


@pytest.mark.parametrize(
    ("key", "n", "error", "match"),
    [
        ("seed", None, TypeError, "random_dna: expected an int seed, .* got 'seed'"),
        (1.5, None, TypeError, "expected an int seed"),
        (True, None, TypeError, "expected an int seed"),
        (0, -1, ValueError, "random_dna: n must be None or >= 0, got -1"),
        (0, 2.0, TypeError, "integer"),
    ],
)
def test_random_dna_errors(key, n, error, match):
    with pytest.raises(error, match=match):
        random_dna(mixed_space(), key, n)


@pytest.mark.parametrize(
    ("key", "match"),
    [
        (jax.random.split(jax.random.PRNGKey(0), 3), r"got uint32\[3, 2\]"),
        (jax.random.split(jax.random.key(0), 3), r"got key<fry>\[3\]"),
        (jnp.zeros(2, jnp.int32), r"got int32\[2\]"),
    ],
)
def test_random_dna_rejects_anything_but_one_jax_key(key, match):
    with pytest.raises(ValueError, match="random_dna: expected one JAX key .*" + match):
        random_dna(mixed_space(), key)


@pytest.mark.slow
def test_random_dna_jax_throughput_smoke():
    # The benchmark (>= 1M DNA/s) lives in the report; here only guard against a 10x regression.
    space = Space([Slot(f"s{i}", "choice", 8) for i in range(50)])
    jax.block_until_ready(random_dna(space, jax.random.key(0), 100_000).index)
    start = time.perf_counter()
    jax.block_until_ready(random_dna(space, jax.random.key(1), 100_000).index)
    assert time.perf_counter() - start < 1.0


# ----------------------------------------------------------------------------- iterate_dna / size


@SETTINGS
@given(finite_spaces(multi_parent=True))
def test_iterate_yields_size_distinct_valid_dnas(space):
    assume(math.prod(int(n) for n in space.num_choices) <= 20000)
    dnas = list(iterate_dna(space))
    assert len(dnas) == space.size == brute_force_count(space)
    assert len(set(dnas)) == len(dnas)
    batch = space.stack(dnas)
    assert space.validate(batch) is batch
    keys = [tuple(d.index.tolist()) for d in dnas]
    assert keys == sorted(keys)  # lexicographic order


def test_iterate_order_and_laziness():
    space = Space([Slot("a", "choice", 2), Slot("b", "int", 2, lo=5, hi=6, conditions=((0, 1),))])
    assert [d.to_dict() for d in iterate_dna(space)] == [
        {"a": 0},
        {"a": 1, "b": 5},
        {"a": 1, "b": 6},
    ]
    huge = Space([Slot(f"s{i}", "choice", 10) for i in range(40)])
    first = next(iterate_dna(huge))
    assert first.to_list() == [0] * 40 and huge.size == 10**40


def test_iterate_rejects_float_slots():
    with pytest.raises(ValueError, match="iterate_dna: slot 'lr' is a float slot"):
        iterate_dna(mixed_space())


def test_size_matches_iteration_for_mixed_finite_space():
    space = Space([s for s in mixed_space().slots if s.kind != "float"][:3])
    assert space.size == len(list(iterate_dna(space))) == brute_force_count(space)
