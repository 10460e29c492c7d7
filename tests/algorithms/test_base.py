"""The algorithm interface's helpers: keys, rewards, and state JSON."""

from __future__ import annotations

import numpy as np
import pytest

import pliant as pl
from pliant.algorithms import base

A = pl.algorithms


def test_host_rng_is_determined_by_the_key_and_independent_of_calls_between():
    first = base.host_rng(5).random(3)
    for k in range(40):  # more than the ring of generators
        base.host_rng(k).random()
    assert np.array_equal(base.host_rng(5).random(3), first)
    assert not np.array_equal(base.host_rng(6).random(3), first)
    assert np.array_equal(
        base.host_rng(5).random(3), np.random.Generator(np.random.Philox(key=5)).random(3)
    )


def test_jax_keys_and_ints_give_host_generators():
    jax = pytest.importorskip("jax")
    assert base.key_to_int(jax.random.key(3)) == base.key_to_int(jax.random.PRNGKey(3))
    assert base.host_rng(jax.random.key(3)).random() == base.host_rng(jax.random.key(3)).random()
    with pytest.raises(TypeError, match=r"expected an int or a jax\.random key"):
        base.key_to_int("seed")


def test_step_keys_are_distinct():
    keys = {base.step_key(s, n) for s in range(5) for n in range(50)}
    assert len(keys) == 250


@pytest.mark.parametrize(
    ("reward", "multi", "error", "match"),
    [
        (float("nan"), False, ValueError, "reward must be finite"),
        ((1.0, float("inf")), True, ValueError, "reward must be finite"),
        ((1.0, 2.0), False, TypeError, "optimizes one objective"),
        ("high", False, TypeError, "reward must be a number"),
        ("1.5", False, TypeError, "reward must be a number, got '1.5'"),
        (True, False, TypeError, "reward must be a number, got True"),
    ],
)
def test_check_reward_errors(reward, multi, error, match):
    with pytest.raises(error, match=match):
        base.check_reward(reward, multi_objective=multi, algorithm="x")


def test_check_reward_shapes():
    assert base.check_reward(np.float32(2), multi_objective=False, algorithm="x") == 2.0
    assert base.check_reward([3], multi_objective=False, algorithm="x") == 3.0
    assert base.check_reward(2, multi_objective=True, algorithm="x") == (2.0,)


def test_state_json_is_exact_and_checked():
    space = pl.space([pl.oneof(range(5)), pl.floatv(0.0, 1.0)])
    algo = A.regularized_evolution(population_size=3, tournament_size=2)
    state = algo.init(space, 0)
    for _, key in zip(range(5), A.keys(0)):
        dna, state = algo.propose(state, key)
        state = algo.feedback(state, dna, float(dna.value[1]) / 3)
    text = base.state_to_json(state)
    again = base.state_from_json(text, algo.init(space, 0))
    assert np.array_equal(again.values, state.values) and again.values.dtype == np.float64
    assert np.array_equal(again.rewards, state.rewards)

    with pytest.raises(ValueError, match="malformed JSON"):
        base.state_from_json("{", algo.init(space, 0))
    other = pl.space([pl.oneof(range(6)), pl.floatv(0.0, 1.0)])
    with pytest.raises(ValueError, match="belongs to another space"):
        base.state_from_json(text, algo.init(other, 0))
    bigger = A.regularized_evolution(population_size=4, tournament_size=2)
    with pytest.raises(ValueError, match="saved with other settings"):
        base.state_from_json(text, bigger.init(space, 0))
    with pytest.raises(ValueError, match="malformed array"):
        base.state_from_json(text.replace('"b64": "', '"b64": "!!'), algo.init(space, 0))
    with pytest.raises(ValueError, match=r"fields .* do not match"):
        base.state_from_json(text, A.random().init(space, 0))


def test_state_to_json_rejects_objects():
    with pytest.raises(TypeError, match="cannot write"):
        base.state_to_json((object(),))
    with pytest.raises(TypeError, match="cannot write an array of dtype"):
        base.state_to_json(np.array(["a"]))
