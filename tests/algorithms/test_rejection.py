"""TabNAS rejection sampling: feasibility, the P(V) correction (exact and MC), the paper's toy."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pliant.algorithms.base import state_from_json, state_to_json
from pliant.algorithms.random_search import random
from pliant.algorithms.reinforce import (
    ReinforceParams,
    log_prob,
    most_likely,
    reinforce,
)
from pliant.algorithms.rejection import most_likely_feasible, rejection_sampling
from pliant.spaces.dna import Slot, Space
from pliant.spaces.sampling import iterate_dna

# The toy of the TabNAS paper's introduction: two hidden layers of width 2, 3 or 4 between an
# input of width 3 and an output of width 2; cost = weights = 3*n1 + n1*n2 + 2*n2 <= 25; the
# quality grows with both widths. Feasible: 2-2 2-3 2-4 3-2 3-3 4-2; the best of them is 4-2.
WIDTHS = np.array([2, 3, 4])
D_IN, D_OUT, BUDGET = 3, 2, 25
SPACE = Space([Slot(f"n{i}", "choice", 3, literals=(2, 3, 4)) for i in (1, 2)])
BEST = [2, 0]  # 4-2


def widths(d):
    xp = jnp if isinstance(d.index, jax.Array) else np
    w = xp.asarray(WIDTHS)[d.index]
    return w[..., 0], w[..., 1]


def cost(d):
    a, b = widths(d)
    return D_IN * a + a * b + b * D_OUT


def within_budget(d):
    return cost(d) <= BUDGET


def quality(d):
    a, b = widths(d)
    return (a + 0.5 * b) / 6


def scalar(f, dna):
    return float(np.asarray(f(SPACE.stack([dna])))[0])


def random_policy(state, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    rs = state.reinforce
    params = ReinforceParams(
        *(jnp.asarray(rng.normal(size=a.shape) * scale, jnp.float32) for a in rs.params)
    )
    return state._replace(reinforce=rs._replace(params=params))


def tree_equal(a, b) -> bool:
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b) and all(
        np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True) for x, y in zip(la, lb)
    )


EXACT = rejection_sampling(reinforce(), within_budget)


def test_the_toy_has_4_2_as_its_best_feasible_architecture():
    everything = SPACE.stack(list(iterate_dna(SPACE)))
    ok, q = np.asarray(within_budget(everything)), np.asarray(quality(everything))
    assert ok.sum() == 6 and not ok[[5, 7, 8]].any()  # 3-4, 4-3, 4-4
    assert everything[int(np.argmax(np.where(ok, q, -1)))].to_list() == BEST
    assert (np.diff(q.reshape(3, 3), axis=0) > 0).all() and (np.diff(q.reshape(3, 3)) > 0).all()


def test_rejection_lands_on_the_best_feasible_and_never_proposes_an_infeasible_one():
    state = EXACT.init(SPACE, 0)
    for t in range(300):
        dna, state = EXACT.propose(state, t)
        assert scalar(within_budget, dna) == 1.0
        state = EXACT.feedback(state, dna, scalar(quality, dna))
    assert most_likely_feasible(state, within_budget).to_list() == BEST
    assert most_likely(state).to_list() == BEST
    assert 0 < float(state.p_feasible) <= 1


def test_tunas_abs_reward_at_one_beta_ends_infeasible():
    # What TabNAS argues: REINFORCE with TuNAS's abs reward Q + beta * |cost / budget - 1| at the
    # default beta = -0.1 prefers the over-budget 4-4 here (quality 1.0, penalty 0.044) to 4-2.
    algo = reinforce()
    state = algo.init(SPACE, 0)
    for t in range(300):
        dna, state = algo.propose(state, t)
        reward = scalar(quality, dna) - 0.1 * abs(scalar(cost, dna) / BUDGET - 1)
        state = algo.feedback(state, dna, reward)
    assert most_likely(state).to_list() == [2, 2]
    assert scalar(cost, most_likely(state)) > BUDGET


def test_monte_carlo_correction_also_lands_on_the_best_feasible():
    algo = rejection_sampling(reinforce(), within_budget, exact_limit=0, num_mc=256)
    state = algo.init(SPACE, 0)
    for t in range(300):
        dna, state = algo.propose(state, t)
        state = algo.feedback(state, dna, scalar(quality, dna))
    assert most_likely_feasible(state, within_budget).to_list() == BEST


def test_exact_and_monte_carlo_p_feasible_agree_within_mc_error():
    space = Space([Slot(f"n{i}", "choice", 3) for i in range(3)])

    def light(d):
        return d.index.sum(-1) <= 3

    base = reinforce(optimizer=optax.sgd(1.0))
    exact = rejection_sampling(base, light)
    mc = rejection_sampling(base, light, exact_limit=0, num_mc=8192)
    state = random_policy(exact.init(space, 0), seed=3)
    state = state._replace(
        reinforce=state.reinforce._replace(baseline=jnp.float32(0.0), baseline_den=jnp.float32(0.5))
    )
    dna = space.from_list([1, 1, 0])
    before = np.asarray(state.reinforce.params.logits)
    steps = {}
    for name, algo in (("exact", exact), ("mc", mc)):
        new = algo.feedback(state, dna, 1.0)
        steps[name] = np.asarray(new.reinforce.params.logits) - before
        steps[name + "_p"] = float(new.p_feasible)
    # Plain REINFORCE with SGD(1) would step by adv * (onehot - softmax) per slot.
    advantage = 1.0 - 0.05 / (0.95 * 0.5 + 0.05)
    probs = np.exp(before) / np.exp(before).sum(-1, keepdims=True)
    plain = advantage * (np.eye(3)[dna.index] - probs)
    # The exact P(V) is the sum of the policy's probabilities over the feasible DNAs.
    everything = space.stack(list(iterate_dna(space)))
    p = np.exp(np.asarray(log_prob(state, everything), np.float64))
    p_v = p[np.asarray(light(everything))].sum()
    assert steps["exact_p"] == pytest.approx(p_v, rel=1e-5)
    assert abs(steps["mc_p"] - p_v) < 4 * np.sqrt(p_v * (1 - p_v) / 8192)
    # SGD(1) steps: the correction -adv * grad log P(V) is large, and MC estimates it well.
    assert np.abs(steps["exact"] - plain).max() > 0.08  # measured: 0.107
    np.testing.assert_allclose(steps["mc"], steps["exact"], atol=0.03)  # measured: 0.009


def test_jitted_scan_with_jax_keys_learns_and_stays_feasible():
    def step(state, key):
        dna, state = EXACT.propose(state, key)
        return EXACT.feedback(state, dna, quality(dna)), within_budget(dna)

    keys = jax.random.split(jax.random.key(1), 300)
    final, feasible = jax.jit(lambda s, k: jax.lax.scan(step, s, k))(EXACT.init(SPACE, 0), keys)
    assert bool(jnp.all(feasible)) and int(final.num_exhausted) == 0
    assert int(final.reinforce.step) == 300
    assert most_likely_feasible(final, within_budget).to_list() == BEST


def test_floats_conditions_and_the_zero_estimate_guard():
    # Monte-Carlo (the space has a float) with one sample per update, so that some updates see
    # no feasible sample (P_hat = 0: plain step, warning) and others a feasible one (P_hat = 1).
    space = Space(
        [
            Slot("op", "choice", 3),
            Slot("k", "choice", 3, conditions=((0, 0),)),
            Slot("lr", "float", 0, lo=1e-4, hi=1.0, scale="log"),
        ]
    )

    def cheap(d):
        return (d.value[..., 2] < 0.01) & (d.index[..., 1] < 2)

    algo = rejection_sampling(reinforce(), cheap, num_mc=1)
    state, estimates = algo.init(space, 0), []
    for key in range(6):  # (the traced proposal loop is tested on the toy)
        dna, state = algo.propose(state, key)
        space.validate(dna)
        assert bool(np.asarray(cheap(space.stack([dna])))[0])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            state = algo.feedback(state, dna, float(key))
        estimates.append(float(state.p_feasible))
        assert bool(caught) == (estimates[-1] == 0.0)
        if caught:
            assert "correction was skipped" in str(caught[0].message)
    assert sorted(set(estimates)) == [0.0, 1.0] and int(state.reinforce.step) == 6
    best = most_likely_feasible(state, cheap, num_samples=1000)  # by sampling: floats
    assert bool(np.asarray(cheap(space.stack([best])))[0])


def test_state_json_round_trip_resumes_identically():
    state = EXACT.init(SPACE, 0)
    for t in range(5):
        dna, state = EXACT.propose(state, t)
        state = EXACT.feedback(state, dna, scalar(quality, dna))
    restored = state_from_json(state_to_json(state), EXACT.init(SPACE, 1))
    assert tree_equal(restored, state)
    assert EXACT.propose(restored, 7)[0] == EXACT.propose(state, 7)[0]
    dna = EXACT.propose(state, 8)[0]
    assert tree_equal(EXACT.feedback(restored, dna, 0.5), EXACT.feedback(state, dna, 0.5))


# ------------------------------------------------------------------------------ errors

TEN = Space([Slot(f"s{i}", "choice", 4) for i in range(10)])


def rare(d):
    return (d.index == 3).all(-1)  # one DNA in 4**10, not the initial mode (all 0)


def test_factory_errors():
    with pytest.raises(TypeError, match=r"base must be pl.algorithms.reinforce"):
        rejection_sampling(random(), within_budget)
    with pytest.raises(TypeError, match=r"constraint must be a function"):
        rejection_sampling(reinforce(), 25)
    with pytest.raises(ValueError, match=r"num_mc must be an int >= 1"):
        rejection_sampling(reinforce(), within_budget, num_mc=0)
    with pytest.raises(ValueError, match=r"exact_limit must be an int >= 0"):
        rejection_sampling(reinforce(), within_budget, exact_limit=-1)


def test_constraint_output_is_checked():
    algo = rejection_sampling(reinforce(), lambda d: True)
    with pytest.raises(ValueError, match=r"must return a bool array of shape \(9,\)"):
        algo.propose(algo.init(SPACE, 0), 0)
    algo = rejection_sampling(reinforce(), cost)
    with pytest.raises(TypeError, match=r"must return booleans"):
        algo.propose(algo.init(SPACE, 0), 0)


def test_propose_errors():
    algo = rejection_sampling(reinforce(), lambda d: cost(d) < 0)
    with pytest.raises(ValueError, match=r"no DNA of the space satisfies the constraint"):
        algo.propose(algo.init(SPACE, 0), 0)
    algo = rejection_sampling(reinforce(), rare, max_tries=50)
    with pytest.raises(RuntimeError, match=r"none of 50 DNAs .* rare .* 0/50"):
        algo.propose(algo.init(TEN, 0), 0)


def test_feedback_for_an_infeasible_dna_raises():
    state = EXACT.init(SPACE, 0)
    with pytest.raises(ValueError, match=r"violates the constraint within_budget"):
        EXACT.feedback(state, SPACE.from_list([2, 2]), 1.0)
    with pytest.raises(ValueError, match=r"reward must be finite"):
        EXACT.feedback(state, SPACE.from_list([0, 0]), float("nan"))


def test_exhausted_proposal_under_jit_is_counted_and_its_feedback_skipped():
    space = Space([Slot(f"s{i}", "choice", 4) for i in range(6)])  # rare: 1 DNA in 4096
    algo = rejection_sampling(reinforce(), rare, max_tries=64)
    state = algo.init(space, 0)
    dna, new = jax.jit(algo.propose)(state, jax.random.key(0))
    assert int(new.num_exhausted) == 1 and not bool(rare(dna))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        skipped = jax.jit(algo.feedback)(new, dna, jnp.float32(1.0))
    assert tree_equal(skipped, new)


def test_most_likely_feasible_errors():
    state = EXACT.init(SPACE, 0)
    with pytest.raises(ValueError, match=r"no DNA of the space satisfies"):
        most_likely_feasible(state, lambda d: cost(d) < 0)
    with pytest.raises(RuntimeError, match=r"none of 100 samples"):
        most_likely_feasible(EXACT.init(TEN, 0), rare, exact_limit=0, num_samples=100)
