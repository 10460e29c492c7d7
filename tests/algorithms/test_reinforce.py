"""REINFORCE: valid proposals, exact hierarchical log-probs, learning, jit/scan, state JSON."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import HealthCheck, given, settings

from pliant.algorithms.base import state_from_json, state_to_json
from pliant.algorithms.random_search import random
from pliant.algorithms.reinforce import (
    ReinforceParams,
    log_prob,
    most_likely,
    probabilities,
    reinforce,
    sample,
)
from pliant.spaces.dna import Group, Slot, Space
from pliant.spaces.sampling import iterate_dna
from pliant.testing.strategies import spaces

SETTINGS = settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
ALGO = reinforce()  # one instance: its jitted update compiles once per space for the module


def flat_space() -> Space:
    return Space([Slot("a", "choice", 3), Slot("b", "choice", 5), Slot("n", "int", 4, lo=1, hi=4)])


def conditional_space() -> Space:
    return Space(
        [
            Slot("op", "choice", 3, literals=("conv", "pool", "skip")),
            Slot("k", "choice", 3, conditions=((0, 0),)),
            Slot("e", "int", 3, lo=1, hi=3, conditions=((0, 0),)),
            Slot("se", "choice", 2, conditions=((2, 2), (0, 1))),  # two parents
            Slot("p", "choice", 2, conditions=((0, 1),)),
        ]
    )


def manyof_space() -> Space:
    slots = [Slot("pre", "choice", 2)]
    slots += [Slot(f"d[{j}]", "choice", 4, group=0) for j in range(2)]  # distinct
    slots += [Slot(f"s[{j}]", "choice", 5, group=1) for j in range(3)]  # distinct sorted
    slots += [Slot(f"m[{j}]", "choice", 3, group=2, conditions=((0, 1),)) for j in range(2)]
    slots += [Slot("child", "choice", 2, conditions=((3, 4),))]  # under a manyof candidate
    groups = [Group((1, 2), True, False), Group((3, 4, 5), True, True), Group((6, 7), False, True)]
    return Space(slots, groups)


def float_space() -> Space:
    return Space(
        [
            Slot("lr", "float", 0, lo=1e-4, hi=1.0, scale="log"),
            Slot("drop", "float", 0, lo=0.0, hi=0.5),
            Slot("fixed", "float", 0, lo=2.0, hi=2.0),
            Slot("wd", "float", 0, lo=-1.0, hi=1.0),
        ]
    )


def mixed_space() -> Space:
    slots = [
        Slot("op", "choice", 3),
        Slot("width", "int", 8, lo=1, hi=8, conditions=((0, 0), (0, 2))),
        Slot("lr", "float", 0, lo=1e-4, hi=0.1, scale="log"),
        Slot("units", "int", 64, lo=1, hi=64, scale="log"),
        Slot("drop", "float", 0, lo=0.0, hi=0.1, conditions=((1, 3),)),
    ]
    slots += [Slot(f"m[{j}]", "choice", 5, group=0) for j in range(3)]
    slots += [Slot(f"p[{j}]", "choice", 4, group=1) for j in range(3)]
    slots += [Slot(f"q[{j}]", "choice", 4, group=2) for j in range(2)]
    groups = [
        Group((5, 6, 7), True, True),
        Group((8, 9, 10), False, True),
        Group((11, 12), True, False),
    ]
    return Space(slots, groups)


SPACES = {
    "flat": flat_space(),
    "conditional": conditional_space(),
    "manyof": manyof_space(),
    "float": float_space(),
    "mixed": mixed_space(),
}


def random_policy(state, seed=0, scale=1.5):
    """The state with random logits and float parameters (a policy far from uniform)."""
    rng = np.random.default_rng(seed)
    p = state.params
    params = ReinforceParams(
        *(jnp.asarray(rng.normal(size=a.shape) * scale, jnp.float32) for a in p)
    )
    return state._replace(params=params)


def tree_equal(a, b) -> bool:
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b) and all(
        np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True) for x, y in zip(la, lb)
    )


# ------------------------------------------------------------------------------ proposals


@pytest.mark.parametrize("name", list(SPACES))
def test_every_proposal_validates_and_seeds_reproduce(name):
    space = SPACES[name]
    state = random_policy(ALGO.init(space, 0), seed=1)
    # NumPy and JAX share the sampling code; JAX keys compile per space, so only on two spaces.
    for key in (3, jax.random.key(3)) if name in ("manyof", "mixed") else (3,):
        dna, same = ALGO.propose(state, key)
        assert same is state
        space.validate(dna)
        assert dna == ALGO.propose(state, key)[0]
    assert ALGO.propose(state, 4)[0] != ALGO.propose(state, 3)[0]
    space.validate(sample(state, 3, 1000))
    space.validate(most_likely(state))


@SETTINGS
@given(spaces(multi_parent=True))
def test_proposals_validate_and_log_probs_normalize_on_random_spaces(space):
    state = random_policy(ALGO.init(space, 0))
    batch = sample(state, 0, 64)
    space.validate(batch)
    space.validate(most_likely(state))
    finite = not space.is_float.any() and space.size <= 500
    if finite:  # one log_prob call (one compile): the batch, then every DNA of the space
        batch = space.stack([*batch, *iterate_dna(space)])
    lp = np.asarray(log_prob(state, batch), np.float64)
    assert np.isfinite(lp).all()
    if finite:
        assert abs(np.exp(lp[64:]).sum() - 1) < 1e-4


def test_log_prob_is_exact_and_normalized_on_a_manyof_space():
    # Sampling frequencies (NumPy and JAX paths) match exp(log_prob), and the probabilities of
    # all valid DNAs sum to 1: the hierarchical, manyof-aware log-prob is a distribution.
    space = manyof_space()
    state = random_policy(ALGO.init(space, 0), seed=2)
    everything = space.stack(list(iterate_dna(space)))
    p = np.exp(np.asarray(log_prob(state, everything), np.float64))
    assert abs(p.sum() - 1) < 1e-4
    row = {tuple(d.index.tolist()): i for i, d in enumerate(everything)}
    small = [sample(state, i, 32).index for i in range(625)]  # NumPy's Gumbel-argmax path
    for drawn in (
        np.concatenate(small),
        np.asarray(sample(state, 5, 20_000).index),  # NumPy's inverse-CDF path
        np.asarray(sample(state, jax.random.key(5), 20_000).index),
    ):
        freq = np.bincount([row[tuple(r)] for r in drawn.tolist()], minlength=len(p)) / 20_000
        assert np.abs(freq - p).max() < 0.015


def test_inactive_slots_do_not_contribute_to_log_prob():
    space = conditional_space()
    state = random_policy(ALGO.init(space, 0))
    logits = np.asarray(state.params.logits, np.float64)

    def lsm(i, c):
        row = logits[i, : space.slots[i].num_choices]
        return row[c] - np.logaddexp.reduce(row)

    dna = space.from_list([2, None, None, None, None])  # "skip": no sub-decisions
    np.testing.assert_allclose(float(log_prob(state, dna)), lsm(0, 2), rtol=1e-5)
    dna = space.from_list([0, 1, 2, 1, None])
    expected = lsm(0, 0) + lsm(1, 1) + lsm(2, 2) + lsm(3, 1)
    np.testing.assert_allclose(float(log_prob(state, dna)), expected, rtol=1e-5)


def test_manyof_samples_and_mode():
    space = manyof_space()
    state = random_policy(ALGO.init(space, 0), seed=4)
    idx = np.asarray(sample(state, 0, 2000).index)
    assert (idx[:, 1] != idx[:, 2]).all() and (idx[:, 1] > idx[:, 2]).any()
    assert (np.diff(idx[:, 3:6], axis=1) > 0).all()
    mode = np.asarray(most_likely(state).index)
    w = np.asarray(state.params.logits)[3, :5]
    assert mode[3:6].tolist() == sorted(np.argsort(-w)[:3].tolist())  # top-3 weights
    probs = probabilities(state)
    assert all(abs(sum(p) - 1) < 1e-9 for p in probs.values())
    freq = np.bincount(idx[:, 3:6].ravel(), minlength=5) / idx[:, 3:6].size
    np.testing.assert_allclose(probs["s[0]"], freq, atol=0.03)  # inclusion / k


# ------------------------------------------------------------------------------ learning


def toy():
    space = Space([Slot(f"s{i}", "choice", 4) for i in range(10)])
    return space, np.arange(10) % 4


def test_learns_the_toy_problem_and_beats_random_search():
    space, target = toy()
    state, reached = ALGO.init(space, 0), None
    for t in range(300):
        dna, state = ALGO.propose(state, t)
        state = ALGO.feedback(state, dna, float((dna.index == target).sum()))
        if reached is None and (most_likely(state).index == target).all():
            reached = t
    assert reached is not None and reached < 300
    assert (most_likely(state).index == target).all()
    rs = random().init(space, 0)
    best_random = max(float((random().propose(rs, t)[0].index == target).sum()) for t in range(300))
    assert best_random < 10


def test_float_policy_learns_a_value():
    space = Space(
        [Slot("x", "float", 0, lo=0.0, hi=1.0), Slot("y", "float", 0, lo=1e-4, hi=1.0, scale="log")]
    )
    state = ALGO.init(space, 0)
    for t in range(400):
        dna, state = ALGO.propose(state, t)
        x, y = dna.value
        state = ALGO.feedback(state, dna, -abs(x - 0.8) - abs(math.log10(y) + 3))
    x, y = most_likely(state).value
    assert abs(x - 0.8) < 0.1 and abs(math.log10(y) + 3) < 0.5


def test_inactive_sub_decisions_get_no_gradient():
    space = conditional_space()
    state = ALGO.init(space, 0)
    for r in [0.0, 1.0, 0.3, 2.0, -1.0]:
        state = ALGO.feedback(state, space.from_list([2, None, None, None, None]), r)
    logits = np.asarray(state.params.logits)
    assert np.abs(logits[0]).max() > 0.05  # the root decision learned
    assert (logits[1:] == 0).all()  # the skipped layer's decisions did not move


def test_baseline_is_zero_debiased_and_updated_before_the_advantage():
    space = flat_space()
    algo = reinforce(optimizer=optax.sgd(1.0))
    state = algo.init(space, 0)
    dna = space.from_list([0, 1, 2])
    state = algo.feedback(state, dna, 5.0)
    assert float(state.baseline) == pytest.approx(5.0)
    assert (np.asarray(state.params.logits) == 0).all()  # advantage 0: b already includes R
    state = algo.feedback(state, dna, 1.0)
    b = (0.95 * 0.05 * 5 + 0.05 * 1) / (0.95 * 0.05 + 0.05)
    assert float(state.baseline) == pytest.approx(b, rel=1e-6)
    # SGD(1): the logits moved by (R - b) * grad log pi = (1 - b) * (onehot - 1/n).
    np.testing.assert_allclose(
        np.asarray(state.params.logits)[0, :3], (1 - b) * (np.eye(3)[0] - 1 / 3), rtol=1e-5
    )


def test_batch_feedback_is_the_mean_loss_with_the_batch_mean_baseline():
    space = conditional_space()
    algo = reinforce(optimizer=optax.sgd(1.0))
    state = random_policy(algo.init(space, 0))
    state = state._replace(baseline=jnp.float32(1.0), baseline_den=jnp.float32(0.5))
    batch = sample(state, 7, 8)
    rewards = np.linspace(-1.0, 2.0, 8)
    new = algo.feedback(state, batch, rewards)
    b = (0.95 * 0.5 * 1.0 + 0.05 * rewards.mean()) / (0.95 * 0.5 + 0.05)
    grad = jax.jit(
        jax.grad(lambda p: jnp.mean((rewards - b) * log_prob(state._replace(params=p), batch)))
    )(state.params)
    np.testing.assert_allclose(new.params.logits, state.params.logits + grad.logits, atol=1e-5)


def test_entropy_bonus_keeps_the_policy_spread():
    space, _ = toy()
    peaks = []
    for algo in (ALGO, reinforce(entropy_weight=2.0)):
        state = algo.init(space, 0)
        for t in range(200):
            dna, state = algo.propose(state, t)
            state = algo.feedback(state, dna, float(dna.index[0] == 0))
        peaks.append(probabilities(state)["s0"][0])
    assert peaks[0] > 0.95 and peaks[1] < peaks[0] - 0.2


# ------------------------------------------------------------------------------ jit and scan


def test_jitted_scan_learns_and_equals_step_by_step():
    space, target = toy()
    tj = jnp.asarray(target)

    def step(state, key):
        dna, state = ALGO.propose(state, key)
        reward = jnp.sum(dna.index == tj).astype(jnp.float32)
        return ALGO.feedback(state, dna, reward), dna.index

    keys = jax.random.split(jax.random.key(0), 300)
    final, proposed = jax.jit(lambda s, k: jax.lax.scan(step, s, k))(ALGO.init(space, 0), keys)
    assert (np.asarray(most_likely(final).index) == target).all()
    state, host = ALGO.init(space, 0), []
    for key in keys:
        dna, state = ALGO.propose(state, key)
        host.append(np.asarray(dna.index))
        state = ALGO.feedback(state, dna, float((host[-1] == target).sum()))
    np.testing.assert_array_equal(np.stack(host), proposed)
    np.testing.assert_allclose(state.params.logits, final.params.logits, rtol=1e-5, atol=1e-6)
    assert int(state.step) == int(final.step) == 300


def test_nan_reward_under_jit_skips_the_update():
    space = flat_space()
    state = ALGO.init(space, 0)
    dna = space.from_list([0, 1, 2])
    update = jax.jit(ALGO.feedback)
    state = update(state, dna, jnp.float32(1.0))
    skipped = update(state, dna, jnp.float32(jnp.nan))
    assert tree_equal(skipped, state)
    assert int(update(state, dna, jnp.float32(2.0)).step) == 2
    with pytest.raises(ValueError, match=r"rewards have shape \(3,\); expected \(2,\)"):
        update(state, space.stack([dna, dna]), jnp.zeros(3))  # raised while tracing


def test_int_key_under_jit_raises():
    state = ALGO.init(flat_space(), 0)
    with pytest.raises(TypeError, match=r"int key while the state is traced"):
        jax.jit(lambda s: ALGO.propose(s, 0)[0].index)(state)


# ------------------------------------------------------------------------------ state JSON


def test_state_json_round_trip_resumes_identically():
    space, _ = toy()  # reuses the functions compiled for the toy
    state = ALGO.init(space, 0)
    for t in range(5):
        dna, state = ALGO.propose(state, t)
        state = ALGO.feedback(state, dna, float(t))
    restored = state_from_json(state_to_json(state), ALGO.init(space, 1))
    assert tree_equal(restored, state)
    for key in (11, jax.random.key(11)):
        assert ALGO.propose(restored, key)[0] == ALGO.propose(state, key)[0]
    dna = ALGO.propose(state, 12)[0]
    assert tree_equal(ALGO.feedback(restored, dna, 3.0), ALGO.feedback(state, dna, 3.0))


# ------------------------------------------------------------------------------ errors


def test_feedback_errors():
    space = flat_space()
    state = ALGO.init(space, 0)
    dna = space.from_list([0, 1, 2])
    with pytest.raises(ValueError, match=r"reward must be finite"):
        ALGO.feedback(state, dna, float("nan"))
    with pytest.raises(TypeError, match=r"vector reward"):
        ALGO.feedback(state, dna, (1.0, 2.0))
    batch = space.stack([dna, dna])
    with pytest.raises(ValueError, match=r"needs rewards of shape \(2,\)"):
        ALGO.feedback(state, batch, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"rewards must be finite"):
        ALGO.feedback(state, batch, [1.0, float("inf")])
    with pytest.raises(TypeError, match=r"rewards must be numbers"):
        ALGO.feedback(state, batch, ["a", object()])
    with pytest.raises(ValueError, match=r"one DNA \[S\] or a batch \[n, S\]"):
        ALGO.feedback(state, space.stack([batch, batch]), np.zeros((2, 2)))
    with pytest.raises(TypeError, match=r"expected a DNA"):
        ALGO.feedback(state, [0, 1, 2], 1.0)
    other = Space([Slot("z", "choice", 2)])
    with pytest.raises(ValueError, match=r"belongs to space"):
        ALGO.feedback(state, other.from_list([1]), 1.0)
    with pytest.raises(ValueError, match=r"expected a DNA of the state's space"):
        log_prob(state, other.from_list([1]))
    with pytest.raises(TypeError, match=r"expected a ReinforceState"):
        most_likely(42)
    with pytest.raises(TypeError, match=r"init expects a Space"):
        ALGO.init([Slot("a", "choice", 2)], 0)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"learning_rate": 0.0}, ValueError, r"learning_rate must be a positive"),
        ({"learning_rate": 0.1, "optimizer": optax.sgd(0.1)}, ValueError, r"either learning_rate"),
        ({"entropy_weight": -1.0}, ValueError, r"entropy_weight must be >= 0"),
        ({"baseline_momentum": 1.0}, ValueError, r"baseline_momentum must be in \[0, 1\)"),
        ({"optimizer": "adam"}, TypeError, r"optax.GradientTransformation"),
    ],
)
def test_factory_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        reinforce(**kwargs)


def test_huge_int_slot_raises_with_a_fix():
    space = Space([Slot("units", "int", 100_000, lo=1, hi=100_000)])
    with pytest.raises(ValueError, match=r"at most 4096.*pl.floatv\(1, 100000\)"):
        ALGO.init(space, 0)
