"""TuNAS controller (reward, schedule, final choice) and the supernet sampling rules."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pliant.algorithms.base import state_from_json, state_to_json
from pliant.algorithms.reinforce import probabilities
from pliant.algorithms.sharing import (
    MAX_FAIR,
    extreme_dna,
    fair_paths,
    sandwich_paths,
    slot_roles,
    uniform_path,
    warmup_path,
)
from pliant.algorithms.tunas import (
    controller_schedule,
    cost_of,
    cost_table,
    final_architecture,
    shaped_reward,
    tunas,
    tunas_preset,
    warmup_probability,
)
from pliant.spaces.dna import DNA, Group, Slot, Space
from pliant.spaces.sampling import iterate_dna

# A known-answer problem: three width slots (16..64 units, cost = units) and one op slot whose
# second candidate is best. Quality rises with every width, so without a cost the optimum is
# the widest child; under TuNAS's reward the cost of the best child is the one nearest the
# target (the quality gained per 16 units is far below the cost penalty of 16 units).
UNITS = (16, 32, 48, 64)
SPACE = Space(
    [Slot(f"w{i}", "choice", 4, literals=UNITS) for i in range(3)]
    + [Slot("op", "choice", 3, literals=("a", "b", "c"))]
)
COST = cost_table([UNITS, UNITS, UNITS, [0.0, 0.0, 0.0]])


def quality(d: DNA):
    xp = jnp if isinstance(d.index, jax.Array) else np
    units = xp.asarray(UNITS, xp.float32)[d.index[..., :3]]
    return 0.1 * xp.sum(xp.sqrt(units / 64.0), -1) + 0.4 * (d.index[..., 3] == 1)


def linear_quality(d: DNA):
    xp = jnp if isinstance(d.index, jax.Array) else np
    units = xp.asarray(UNITS, xp.float32)[d.index[..., :3]]
    return 0.1 * xp.sum(units / 64.0, -1) + 0.4 * (d.index[..., 3] == 1)


def _runner(algo, steps: int, quality=quality):
    """Seed -> final state: propose + feedback(quality) in one jitted lax.scan, JAX keys."""

    @jax.jit
    def run(state, keys):
        def step(state, key):
            dna, state = algo.propose(state, key)
            return algo.feedback(state, dna, quality(dna)), None

        return jax.lax.scan(step, state, keys)[0]

    def go(seed: int):
        state = algo.init(SPACE, jax.random.key(seed))
        return run(state, jax.random.split(jax.random.key(seed + 100), steps))

    return go


def test_without_cost_the_controller_finds_the_best_child() -> None:
    algo = tunas()
    state = _runner(algo, 1000)(0)
    assert final_architecture(algo, state).to_list() == [3, 3, 3, 1]


@pytest.mark.parametrize("target", [100.0, 150.0])
def test_abs_reward_lands_on_the_target(target: float) -> None:
    # Children cost 48..192 in steps of 16; the largest costs 192, above both targets.
    algo = tunas(COST, target, beta=-0.5, steps=600)
    run = _runner(algo, 600)
    for seed in range(3):
        best = final_architecture(algo, run(seed))
        assert abs(float(COST(best)) / target - 1.0) <= 0.10, (seed, best.to_list())
        assert best.to_list()[3] == 1  # the best op is found whatever the cost
        assert float(cost_of(algo, best)) == float(COST(best))


def test_rejection_finds_the_best_feasible_child() -> None:
    budget = 150.0
    feasible = [d for d in iterate_dna(SPACE) if COST(d) <= budget]
    best = max(float(linear_quality(d)) for d in feasible)  # several children tie at cost 144
    algo = tunas(COST, budget, reward="rejection", steps=600, num_mc=256)
    run = _runner(algo, 600, linear_quality)
    for seed in range(2):
        found = final_architecture(algo, run(seed))
        assert float(COST(found)) <= budget
        assert float(linear_quality(found)) == pytest.approx(best)


def test_shaped_reward_matches_the_formulas() -> None:
    q, c, t = 0.8, 120.0, 100.0
    assert float(shaped_reward(q, c, t)) == pytest.approx(0.8 - 0.1 * 0.2)
    assert float(shaped_reward(q, 80.0, t)) == pytest.approx(0.8 - 0.1 * 0.2)  # two-sided
    assert float(shaped_reward(q, c, t, reward="mnas", beta=-0.07)) == pytest.approx(
        0.8 * 1.2**-0.07
    )
    assert float(shaped_reward(q, 80.0, t, reward="mnas_hard", beta=-0.07)) == pytest.approx(0.8)
    assert shaped_reward(q, c, t, reward="rejection") == q
    with pytest.raises(ValueError, match="reward must be one of"):
        shaped_reward(q, c, t, reward="linear")


def test_feedback_uses_the_shaped_reward() -> None:
    # With one DNA fed back twice, the debiased baseline equals the reward exactly, so the
    # baseline shows the reward the update saw.
    algo = tunas(COST, 100.0)
    state = algo.init(SPACE, 0)
    dna = SPACE.make_dna(np.array([3, 3, 0, 0]))  # cost 64 + 64 + 16 = 144
    state = algo.feedback(state, dna, 0.5)
    assert float(state.baseline) == pytest.approx(0.5 - 0.1 * 0.44, abs=1e-6)


def test_warmup_and_schedule_values() -> None:
    assert [float(warmup_probability(t, 200)) for t in (0, 25, 50, 100)] == [1.0, 0.5, 0.0, 0.0]
    assert float(warmup_probability(jnp.int32(10), 100, 0.2)) == pytest.approx(0.5)
    assert float(warmup_probability(3, 100, 0.0)) == 0.0
    f = controller_schedule(0.02, 1000, delay=0.25, ramp=10.0)
    assert float(f(0)) == 0.0 and float(f(249)) == 0.0
    assert float(f(250)) == pytest.approx(0.02)
    assert float(f(625)) == pytest.approx(0.02 * 10**0.5, rel=1e-5)
    assert float(f(1000)) == pytest.approx(0.2) and float(f(5000)) == pytest.approx(0.2)


def test_the_delay_keeps_the_policy_still() -> None:
    algo = tunas(COST, 100.0, steps=40, delay=0.25, warmup=0.25)
    state = algo.init(SPACE, 0)
    for t in range(10):  # delay = 10 updates: the learning rate is 0
        dna, state = algo.propose(state, t)
        state = algo.feedback(state, dna, float(quality(dna)))
    assert np.all(np.asarray(state.params.logits) == 0.0)
    dna, state = algo.propose(state, 10)
    state = algo.feedback(state, dna, float(quality(dna)) + 1.0)
    assert np.any(np.asarray(state.params.logits) != 0.0)


def test_presets() -> None:
    faithful = tunas_preset("faithful", steps=27000)
    assert faithful.batch_size == 4096 and faithful.controller_lr == pytest.approx(0.0048)
    assert faithful.weight_lr == pytest.approx(2.64) and faithful.warmup == faithful.delay == 0.25
    cpu = tunas_preset("cpu", steps=3000)
    assert cpu.controller_lr == pytest.approx(100 / 2250) and cpu.batch_size == 64
    assert tunas_preset("cpu", steps=10).controller_lr == 0.1  # capped
    assert tunas_preset("faithful", steps=10, batch_size=256).controller_lr == pytest.approx(3e-4)
    with pytest.raises(ValueError, match="expected 'faithful' or 'cpu', got 'gpu'"):
        tunas_preset("gpu", steps=10)
    with pytest.raises(ValueError, match="steps must be an int >= 1, got 0"):
        tunas_preset("cpu", steps=0)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
        tunas_preset("cpu", steps=5, batch_size=0)


def test_state_round_trips_through_json() -> None:
    algo = tunas(COST, 100.0, steps=50)
    state = algo.init(SPACE, 0)
    for t in range(20):
        dna, state = algo.propose(state, t)
        state = algo.feedback(state, dna, float(quality(dna)))
    back = state_from_json(state_to_json(state), algo.init(SPACE, 0))
    assert probabilities(back) == probabilities(state)
    a, _ = algo.propose(state, 99)
    b, _ = algo.propose(back, 99)
    assert a == b


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"reward": "linear"}, ValueError, "reward must be one of"),
        ({"beta": 0.1}, ValueError, "beta must be a negative number"),
        ({"cost_fn": COST}, ValueError, "needs a positive finite target"),
        ({"cost_fn": COST, "target": -1.0}, ValueError, "target=-1.0"),
        ({"target": 5.0}, ValueError, "need a cost_fn"),
        ({"reward": "rejection"}, ValueError, "need a cost_fn"),
        ({"cost_fn": 3, "target": 1.0}, TypeError, "cost_fn must be a function"),
        ({"warmup": 0.3, "delay": 0.25}, ValueError, r"delay \(0.25 of the steps\) must be"),
        ({"delay": 1.0}, ValueError, "delay must be a fraction"),
        ({"steps": 0}, ValueError, "steps must be None or an int >= 1, got 0"),
        ({"ramp": 0.0}, ValueError, "ramp must be a positive number"),
        ({"learning_rate": -1.0}, ValueError, "learning_rate must be a positive float"),
    ],
)
def test_argument_errors(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        tunas(**kwargs)


def test_cost_errors() -> None:
    with pytest.raises(ValueError, match="one non-empty row of finite costs per slot"):
        cost_table([[1.0], []])
    with pytest.raises(ValueError, match="the table has 2 rows but the DNA has 4 slots"):
        cost_table([[1.0], [2.0]])(SPACE.make_dna(np.zeros(4, np.int32)))
    algo = tunas(lambda d: jnp.zeros(2), 1.0)
    with pytest.raises(ValueError, match="must return a scalar for one DNA, got shape"):
        algo.feedback(algo.init(SPACE, 0), SPACE.make_dna(np.zeros(4, np.int32)), 0.5)
    with pytest.raises(TypeError, match="expected an algorithm from tunas"):
        from pliant.algorithms.reinforce import reinforce

        final_architecture(reinforce(), algo.init(SPACE, 0))


# ------------------------------------------------------------------------------------------
# Sampling rules


UNEVEN = Space(
    [
        Slot("units", "choice", 4, literals=(64, 16, 128, 32)),
        Slot("op", "choice", 3, literals=("conv", "pool", "skip")),
        Slot("conv.kernel", "choice", 2, literals=(3, 5), conditions=((1, 0),)),
        Slot("depth", "int", 3, lo=1, hi=3),
    ]
)


def test_slot_roles() -> None:
    assert slot_roles(UNEVEN) == ("width", "op", "op", "width")
    assert slot_roles(UNEVEN, widths=["units"]) == ("width", "op", "op", "op")
    with pytest.raises(ValueError, match=r"widths names \['nope'\], which are not slots"):
        slot_roles(UNEVEN, widths=["nope"])


def test_extreme_dna_by_value_order_and_cost() -> None:
    assert extreme_dna(UNEVEN, "largest").to_list() == [2, 2, None, 2]
    assert extreme_dna(UNEVEN, "smallest").to_list() == [1, 0, 0, 0]
    # A cost model that makes "conv" with kernel 5 the most expensive op.
    op_cost = cost_table([[0, 0, 0, 0], [3.0, 1.0, 0.0], [0.0, 5.0], [0, 0, 0]])
    assert extreme_dna(UNEVEN, "largest", cost_fn=op_cost).to_list() == [2, 0, 1, 2]
    assert extreme_dna(UNEVEN, "smallest", cost_fn=op_cost).to_list() == [1, 2, None, 0]
    with pytest.raises(ValueError, match="which must be 'largest' or 'smallest'"):
        extreme_dna(UNEVEN, "middle")
    with pytest.raises(ValueError, match="got 1 roles for a space of 4 slots"):
        extreme_dna(UNEVEN, "largest", roles=("op",))


def test_fair_paths_cover_each_candidate_once_per_step() -> None:
    space = Space([Slot(f"s{i}", "choice", 5) for i in range(6)])
    fair = jax.jit(lambda k: fair_paths(space, k))
    for seed in range(5):
        batch = fair(jax.random.key(seed))
        assert batch.batch_shape == (5,)
        for s in range(6):
            assert sorted(np.asarray(batch.index[:, s]).tolist()) == [0, 1, 2, 3, 4]
    # The rows differ between steps (fresh permutations).
    a, b = (np.asarray(fair(jax.random.key(k)).index) for k in (0, 1))
    assert not np.array_equal(a, b)


def test_fair_paths_with_uneven_slots_and_groups() -> None:
    space = Space(
        [Slot("a", "choice", 4), Slot("b", "choice", 3), Slot("c", "choice", 2)]
        + [Slot(f"g[{j}]", "choice", 4, group=0) for j in range(2)]
        + [Slot(f"h[{j}]", "choice", 4, group=1) for j in range(2)],
        [Group((3, 4), True, False), Group((5, 6), True, True)],
    )
    batch = fair_paths(space, jax.random.key(3))
    host = space.make_dna(np.asarray(batch.index))
    space.validate(host)  # distinct and sorted groups hold in every row
    idx = np.asarray(batch.index)
    assert sorted(idx[:, 0].tolist()) == [0, 1, 2, 3]
    counts_b = np.bincount(idx[:, 1], minlength=3)
    assert counts_b.min() >= 1 and counts_b.max() <= 2  # floor or ceil of 4 / 3
    assert np.bincount(idx[:, 2], minlength=2).tolist() == [2, 2]
    for pos in (3, 4):  # each position of a distinct unsorted group covers each candidate once
        assert sorted(idx[:, pos].tolist()) == [0, 1, 2, 3]
    # A sorted distinct group of 2 of 4: each candidate is in exactly 2 of the 4 rows.
    assert np.bincount(idx[:, 5:].ravel(), minlength=4).tolist() == [2, 2, 2, 2]
    with pytest.raises(ValueError, match=f"supports at most {MAX_FAIR}"):
        fair_paths(Space([Slot("u", "int", 1000, lo=1, hi=1000)]), jax.random.key(0))


def test_fair_paths_trace_under_jit() -> None:
    batch = jax.jit(lambda k: fair_paths(UNEVEN, k))(jax.random.key(0))
    UNEVEN.validate(UNEVEN.make_dna(np.asarray(batch.index)))
    assert sorted(np.asarray(batch.index[:, 0]).tolist()) == [0, 1, 2, 3]


def test_sandwich_includes_largest_and_smallest() -> None:
    big, small = extreme_dna(UNEVEN, "largest"), extreme_dna(UNEVEN, "smallest")
    batch = jax.jit(lambda k: sandwich_paths(UNEVEN, k, 3))(jax.random.key(1))
    assert batch.batch_shape == (5,)
    assert batch[0].to_list() == big.to_list()
    assert batch[1].to_list() == small.to_list()
    UNEVEN.validate(UNEVEN.make_dna(np.asarray(batch.index)))
    assert sandwich_paths(UNEVEN, jax.random.key(0), 0).batch_shape == (2,)
    with pytest.raises(ValueError, match="num_random must be an int >= 0"):
        sandwich_paths(UNEVEN, jax.random.key(0), -1)


def test_uniform_path_is_uniform() -> None:
    keys = jax.random.split(jax.random.key(0), 2000)
    idx = np.asarray(jax.vmap(lambda k: uniform_path(UNEVEN, k).index)(keys))
    assert np.allclose(np.bincount(idx[:, 0], minlength=4) / 2000, 0.25, atol=0.04)


def test_warmup_path() -> None:
    dna = UNEVEN.make_dna(jnp.array([1, 2, 0, 0]))  # narrowest units, "skip", depth 1
    same, mixed = warmup_path(dna, jax.random.key(0), 0.0, 0.0)
    assert same.to_list() == dna.to_list() and not np.asarray(mixed).any()
    full, mixed = warmup_path(dna, jax.random.key(0), 0.0, 1.0)
    assert full.to_list() == [2, 2, None, 2]  # every width at its largest, ops untouched
    # Op warm-up: the op is uniform over its candidates; children that switch on are valid.
    run = jax.jit(jax.vmap(lambda k: warmup_path(dna, k, 1.0, 0.0)))
    out, mixed = run(jax.random.split(jax.random.key(1), 3000))
    ops = np.asarray(out.index[:, 1])
    assert np.allclose(np.bincount(ops, minlength=3) / 3000, 1 / 3, atol=0.04)
    assert np.asarray(mixed[:, 1]).all() and not np.asarray(mixed[:, 0]).any()
    UNEVEN.validate(UNEVEN.make_dna(np.asarray(out.index)))
    kernels = np.asarray(out.index[ops == 0, 2])
    assert set(kernels.tolist()) == {0, 1}  # a switched-on child is sampled, not stuck at 0


def test_extremes_have_the_extreme_costs() -> None:
    # The largest child by candidate values has the highest table cost of all children.
    costs = {tuple(d.to_list()): float(COST(d)) for d in iterate_dna(SPACE)}
    big = extreme_dna(SPACE, "largest", cost_fn=COST)
    small = extreme_dna(SPACE, "smallest", cost_fn=COST)
    assert float(COST(big)) == max(costs.values())
    assert float(COST(small)) == min(costs.values())
