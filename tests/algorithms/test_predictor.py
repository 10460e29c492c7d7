"""The neural predictor: encoding, batch mutation, the algorithm, fit_predict and Kendall tau.

Every test uses one small model (``SMALL``) so that the jitted training program compiles once
per input width, not once per test.
"""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pliant as pl
from pliant.algorithms import predictor as P
from pliant.algorithms.base import keys, state_from_json, state_to_json
from pliant.spaces.dna import Group, Slot, Space
from pliant.spaces.sampling import iterate_dna, random_dna
from pliant.testing import conformance as C
from pliant.testing.strategies import spaces

A = pl.algorithms
SMALL = {"ensemble": 3, "hidden": (32,), "epochs": 150}
SPACES = C.standard_spaces()


def small(**kw: object) -> pl.algorithms.Algorithm:
    options = {"num_initial": 6, "refit_every": 4, "pool_size": 64, **SMALL, **kw}
    return P.neural_predictor(**options)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------
# Encoding


def test_encode_one_hot_ordered_scaled_and_inactive() -> None:
    space = Space(
        [
            Slot("op", "choice", 3, literals=("a", "b", "c")),
            Slot("k", "int", 3, lo=3, hi=5, conditions=((0, 0),)),
            Slot("lr", "float", 0, lo=1e-4, hi=1e-2, scale="log", conditions=((0, 2),)),
            Slot("x", "float", 0, lo=-1.0, hi=1.0),
            Slot("c", "float", 0, lo=0.5, hi=0.5),
            Slot("wide", "int", 101, lo=0, hi=100),
        ]
    )
    dnas = space.stack(
        [
            space.from_list([0, 2, None, 0.5, 0.5, 25]),
            space.from_list([2, None, 1e-3, -1.0, 0.5, 0]),
        ]
    )
    x = P.encode(space, dnas)
    assert x.dtype == np.float32 and x.shape == (2, 3 + 4 + 2 + 2 + 2 + 2)
    # op one-hot | k one-hot + position | lr | x | c (lo == hi) | wide int: position, active
    want = [
        [1, 0, 0, 0, 0, 1, 1.0, 0, 0, 0.75, 1, 0, 1, 0.25, 1],
        [0, 0, 1, 0, 0, 0, 0.0, 0.5, 1, 0, 1, 0, 1, 0, 1],
    ]
    np.testing.assert_allclose(x, want, rtol=1e-6, atol=1e-7)
    assert P.encode(space, dnas[1]).shape == (15,)  # a single DNA keeps its (empty) batch shape


@pytest.mark.parametrize(
    ("literals", "ordered"),
    [((16, 32, 64), True), ((0.1, 0.5, 0.3), False), (("a", "b", "c"), False), ((1, 2), False)],
)
def test_encode_adds_a_position_to_grids_of_increasing_numbers(
    literals: tuple, ordered: bool
) -> None:
    space = Space([Slot("a", "choice", len(literals), literals=literals)])
    assert P._layout(space).width == len(literals) + ordered


@settings(max_examples=40, deadline=None)
@given(spaces(multi_parent=True), st.integers(0, 2**32 - 1))
def test_encode_has_one_hot_per_active_choice(space: Space, seed: int) -> None:
    dnas = random_dna(space, seed, n=5)
    x = P.encode(space, dnas)
    lay = P._layout(space)
    assert x.shape == (5, lay.width) and np.all((x >= 0) & (x <= 1))
    for slot, start, size in zip(lay.hot, lay.hot_offset, lay.hot_size):
        block = x[:, start : start + size]
        np.testing.assert_array_equal(block.sum(axis=1), dnas.active[:, slot])
        on = dnas.active[:, slot]
        np.testing.assert_array_equal(block[on].argmax(axis=1), dnas.index[on, slot])
    np.testing.assert_array_equal(x[:, lay.num_col + 1], dnas.active[:, lay.num])
    for r, col in zip(lay.rank, lay.rank_col):
        slot, size = lay.hot[r], lay.hot_size[r]
        want = np.where(dnas.active[:, slot], dnas.index[:, slot] / (size - 1), 0.0)
        np.testing.assert_allclose(x[:, col], want, rtol=1e-6)


def test_encode_errors() -> None:
    space = Space([Slot("a", "choice", 3)])
    other = Space([Slot("b", "choice", 3)])
    with pytest.raises(ValueError, match="encode: expected a DNA of space"):
        P.encode(space, other.make_dna([1]))
    with pytest.raises(ValueError, match=r"encode: expected a DNA of space .*got 'not a dna'"):
        P.encode(space, "not a dna")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"slot 'a': index 3 is out of range; expected 0 <= "):
        P.encode(space, space.make_dna([3]))


# ----------------------------------------------------------------------------------------------
# Batch mutation (the pool of spaces too large to enumerate)


@settings(max_examples=60, deadline=None)
@given(spaces(multi_parent=True), st.integers(0, 2**32 - 1))
def test_mutate_batch_is_valid_and_changes_a_mutable_parent(space: Space, seed: int) -> None:
    parents = random_dna(space, seed, n=8)
    children = P.mutate_batch(space, parents, np.random.default_rng([seed, 1]))
    space.validate(children)
    assert children.batch_shape == (8,)
    mutable = parents.active & P._units(space).mutable
    same = np.all((children.index == parents.index) & (children.value == parents.value), axis=1)
    assert np.all(same[~mutable.any(axis=1)])  # nothing to mutate: unchanged
    # A plain choice/int slot always moves; a re-drawn manyof or float may land where it was.
    simple = ~space.is_float & np.array([s.group < 0 for s in space.slots])
    if space.num_slots and simple.all():
        assert not same[mutable.any(axis=1)].any()


def test_mutate_batch_changes_one_decision_of_a_flat_space() -> None:
    space = SPACES["flat"]
    parents = random_dna(space, 0, n=200)
    children = P.mutate_batch(space, parents, np.random.default_rng(1))
    assert ((children.index != parents.index).sum(axis=1) == 1).all()
    assert P.mutate_batch(space, parents[:0], np.random.default_rng(1)).batch_shape == (0,)


# ----------------------------------------------------------------------------------------------
# The algorithm, through the shared conformance checks


@pytest.mark.parametrize("name", ["flat", "conditional", "manyof", "float"])
def test_proposals_valid(name: str) -> None:
    dnas = C.check_proposals_valid(small, SPACES[name], steps=16, scan_steps=0)
    assert len(dnas) == 16


@pytest.mark.parametrize("name", ["flat", "manyof"])
def test_deterministic_and_resume(name: str) -> None:
    C.check_deterministic(small, SPACES[name], steps=12)
    C.check_resume(small, SPACES[name], steps=14, split=9)  # after a fit and before the next


def test_async_feedback_and_bad_rewards() -> None:
    C.check_async_feedback(small, SPACES["conditional"], rounds=4, batch=4)
    C.check_rejects_bad_rewards(small, SPACES["flat"], require_space_check=True)
    algo = small()
    space = SPACES["flat"]
    with pytest.raises(ValueError, match="feedback takes one DNA, got a batch of shape"):
        algo.feedback(algo.init(space, 0), random_dna(space, 0, n=2), 1.0)


def test_resumed_state_holds_the_fit_and_proposes_the_same() -> None:
    space = SPACES["flat"]
    algo = small(classifier=True)
    state = algo.init(space, 0)
    for _, key in zip(range(10), keys(3)):
        dna, state = algo.propose(state, key)
        state = algo.feedback(state, dna, C.toy_reward(dna))
    dna, state = algo.propose(state, 11)  # fits now
    assert state.num_fitted == 10 and np.abs(state.params[0]).sum() > 0
    assert len(state.classifier_params) == len(state.params)
    text = state_to_json(state)
    json.loads(text)
    again = state_from_json(text, algo.init(space, 0))
    assert all(np.array_equal(a, b) for a, b in zip(again.params, state.params))
    assert again.seen == state.seen
    for key in (12, 13, 14):
        a, state = algo.propose(state, key)
        b, again = algo.propose(again, key)
        assert a == b


def test_no_dna_twice_on_a_finite_space_then_repeats() -> None:
    space = Space([Slot("a", "choice", 6), Slot("b", "choice", 3), Slot("c", "choice", 2)])
    algo = small(refit_every=3)
    state = algo.init(space, 0)
    seen = set()
    for _, key in zip(range(space.size), keys(0)):
        dna, state = algo.propose(state, key)
        assert tuple(dna.to_list()) not in seen
        seen.add(tuple(dna.to_list()))
        state = algo.feedback(state, dna, float(dna.index @ [1, 2, 3]))
    dna, state = algo.propose(state, 99)  # exhausted: a repeat rather than an error
    assert tuple(dna.to_list()) in seen


def test_first_proposals_are_random_then_the_model_refits_every_k() -> None:
    space = Space([Slot(f"s{i}", "choice", 4) for i in range(5)])
    algo = small(num_initial=5, refit_every=3)
    state = algo.init(space, 0)
    fitted = []
    for _, key in zip(range(14), keys(1)):
        dna, state = algo.propose(state, key)
        state = algo.feedback(state, dna, float(dna.index.sum()))
        fitted.append(state.num_fitted)
    # Random until 5 DNAs are known; the fit happens lazily in the proposal after that.
    assert fitted == [0, 0, 0, 0, 0, 5, 5, 5, 8, 8, 8, 11, 11, 11]


def test_pool_of_a_large_space_mixes_random_and_mutated_candidates() -> None:
    space = SPACES["flat"]  # 5**12 DNAs: too many to enumerate
    state = small().init(space, 0)
    best = space.make_dna(np.full(12, 4))
    state = small().feedback(state, best, 100.0)
    pool = P._pool(space, state, np.random.default_rng(0), 64, 16)
    space.validate(pool)
    near = (pool.index != best.index).sum(axis=1) == 1
    assert near[48:].all() and near[:48].sum() < 3


def test_local_turns_are_spread_evenly() -> None:
    turns = lambda f: [P._local_turn(m, f) for m in range(-2, 8)]
    assert turns(0.5) == [False, False, False, True, False, True, False, True, False, True]
    assert sum(turns(1 / 3)) == 2 and not any(turns(0.0)) and all(turns(1.0)[2:])


@pytest.mark.parametrize("enumerated", [True, False])
def test_local_proposals_are_one_decision_from_the_best_observed(enumerated: bool) -> None:
    # On local turns the model only ranks the neighbours of the best observed DNAs, whether it
    # scores the whole (enumerated) table or a pool of random and mutated candidates.
    space = Space([Slot(f"s{i}", "choice", 4) for i in range(5)])
    algo = small(
        num_initial=8, refit_every=4, local_fraction=0.5, enumerate_limit=10**4 * enumerated
    )
    state = algo.init(space, 0)
    local = 0
    for m, key in zip(range(-8, 24), keys(3)):
        best = state.indices[np.argsort(-state.rewards, kind="stable")[: P._NUM_PARENTS]]
        dna, state = algo.propose(state, key)
        if m >= 0 and P._local_turn(m, 0.5):
            distance = (best != np.asarray(dna.index)).sum(axis=1)
            assert distance.min() == 1, (m, dna.to_list())
            local += 1
        state = algo.feedback(state, dna, float(-((dna.index - 2) ** 2).sum()))
    assert local == 12


def test_local_order_falls_back_to_the_whole_table_when_the_neighbours_are_seen() -> None:
    space = Space([Slot("a", "choice", 2), Slot("b", "choice", 2), Slot("c", "choice", 3)])
    algo = small(num_initial=4, refit_every=2, local_fraction=1.0)
    state = algo.init(space, 0)
    proposed = set()
    for _, key in zip(range(space.size), keys(5)):
        dna, state = algo.propose(state, key)
        proposed.add(tuple(dna.to_list()))
        state = algo.feedback(state, dna, float(dna.index.sum()))
    assert len(proposed) == space.size  # every DNA once, local turns or not


@pytest.mark.parametrize("name", ["small_conditional", "manyof_children"])
def test_table_outputs_equal_the_dense_model(name: str) -> None:
    if name == "small_conditional":
        space = Space(
            [
                Slot("op", "choice", 3, literals=(1, 2, 4)),
                Slot("k", "int", 70, lo=1, hi=70, conditions=((0, 0),)),
                Slot("act", "choice", 2, conditions=((0, 1), (0, 2))),
            ]
        )
    else:
        space = Space(
            [
                Slot("m[0]", "choice", 4, group=0),
                Slot("m[0].k", "int", 3, lo=1, hi=3, conditions=((0, 1),)),
                Slot("m[1]", "choice", 4, group=0),
            ],
            [Group((0, 2), distinct=True, sorted=False)],
        )
    table = P._table(space)
    assert table.indices.shape[0] == space.size
    every = space.make_dna(table.indices)
    model = P._model_config(**SMALL, learning_rate=1e-2, weight_decay=1e-3)
    params = P._init_params(P._width(space), model, np.random.default_rng(0))
    dense = P._predict(params, P.encode(space, every), space.size)
    np.testing.assert_allclose(P._table_outputs(table)(params), dense, rtol=1e-4, atol=1e-5)


def test_enumerate_limit_zero_scores_a_pool_instead() -> None:
    space = Space([Slot(f"s{i}", "choice", 3) for i in range(4)])
    for limit in (0, 100):
        algo = small(enumerate_limit=limit)
        dnas, _ = C._Runner(algo, space, False, 0).run(algo.init(space, 0), 0, 12)
        assert len({tuple(d.to_list()) for d in dnas}) == 12


def test_beats_random_and_evolution_on_a_structured_problem() -> None:
    # 6 categorical decisions of 5 choices: per-slot effects plus one pairwise interaction.
    rng = np.random.default_rng(123)
    space = Space([Slot(f"s{i}", "choice", 5, literals=tuple("abcde")) for i in range(6)])
    main, pair = rng.normal(size=(6, 5)), 0.5 * rng.normal(size=(5, 5))

    def reward(dna: pl.DNA) -> float:
        i = dna.index
        return float(main[np.arange(6), i].sum() + pair[i[0], i[1]])

    optimum = max(reward(d) for d in iterate_dna(space))

    def regret(algo: pl.algorithms.Algorithm, seed: int, budget: int = 40) -> float:
        state, best = algo.init(space, seed), -math.inf
        for _, key in zip(range(budget), keys(seed)):
            dna, state = algo.propose(state, key)
            r = reward(dna)
            state, best = algo.feedback(state, dna, r), max(best, r)
        return optimum - best

    seeds = range(3)
    predictor = np.mean([regret(small(num_initial=10, refit_every=5), s) for s in seeds])
    random_search = np.mean([regret(A.random(), s) for s in seeds])
    evolution = np.mean(
        [regret(A.regularized_evolution(population_size=10, tournament_size=3), s) for s in seeds]
    )
    assert min(random_search, evolution) > 0.5  # 40 of 15625 DNAs: they stay far from it
    assert predictor < 0.25 * min(random_search, evolution)


def test_classifier_stage_filters_the_bad_ones() -> None:
    space = Space([Slot(f"s{i}", "choice", 4) for i in range(4)])
    rng = np.random.default_rng(0)
    table = {tuple(d.to_list()): d for d in iterate_dna(space)}
    dnas = [table[k] for k in list(table)[::7]]
    x = P.encode(space, space.stack(dnas))
    # A failed-run outlier region (s0 == 0) far below the rest, which is sum-of-indices.
    rewards = np.array([-100.0 if d.index[0] == 0 else float(d.index.sum()) for d in dnas])
    rewards += rng.normal(scale=1e-3, size=rewards.size)
    model = P._model_config(**SMALL, learning_rate=1e-2, weight_decay=1e-3)
    fit = P._fit(model, x, rewards, P._width(space), 0, 0.3)
    table = P._table(space)
    scores = P._scores(fit, P._table_outputs(table), 0.0)
    index = table.indices
    assert (scores[index[:, 0] == 0] < 1e5).mean() > 0.9  # classified bad
    top = np.argsort(-scores)[:5]
    assert (index[top, 0] != 0).all()


# ----------------------------------------------------------------------------------------------
# fit_predict and Kendall tau


def _brute_tau(x: np.ndarray, y: np.ndarray) -> float:
    concordant = discordant = tie_x = tie_y = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        if dx == 0 and dy == 0:
            continue
        if dx == 0:
            tie_x += 1
        elif dy == 0:
            tie_y += 1
        elif dx == dy:
            concordant += 1
        else:
            discordant += 1
    n_x, n_y = concordant + discordant + tie_y, concordant + discordant + tie_x
    return (concordant - discordant) / math.sqrt(n_x * n_y) if n_x and n_y else math.nan


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=2, max_size=20))
def test_kendall_tau_matches_brute_force(pairs: list[tuple[int, int]]) -> None:
    x, y = (np.array(v, float) for v in zip(*pairs))
    want = _brute_tau(x, y)
    for got in (P.kendall_tau(x, y), P._kendall_tau_b(x, y)):
        assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, abs=1e-12)


def test_kendall_tau_errors() -> None:
    with pytest.raises(ValueError, match="equal length >= 2, got lengths 3 and 2"):
        P.kendall_tau([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="got lengths 1 and 1"):
        P.kendall_tau([1], [1])


def test_fit_predict_ranks_held_out_dnas() -> None:
    space = Space([Slot(f"s{i}", "choice", 5) for i in range(6)])
    weights = np.arange(6) + 1.0
    train, test = random_dna(space, 0, n=60), random_dna(space, 1, n=200)
    truth = test.index @ weights
    pred = P.fit_predict(space, train, train.index @ weights, test, key=0, **SMALL)
    assert pred.shape == (200,) and P.kendall_tau(pred, truth) > 0.7
    again = P.fit_predict(space, list(train), list(train.index @ weights), test, key=0, **SMALL)
    np.testing.assert_array_equal(pred, again)  # same key: same predictions
    one = P.fit_predict(space, train, train.index @ weights, test[0], key=0, **SMALL)
    assert one.shape == (1,) and one[0] == pytest.approx(pred[0], rel=1e-5, abs=1e-6)


def test_fit_predict_errors() -> None:
    space = Space([Slot("a", "choice", 3)])
    dnas = random_dna(space, 0, n=4)
    with pytest.raises(ValueError, match="got 4 training DNAs but 3 rewards"):
        P.fit_predict(space, dnas, [1.0, 2.0, 3.0], dnas)
    with pytest.raises(ValueError, match="need at least 2 finite training rewards"):
        P.fit_predict(space, dnas[:1], [1.0], dnas)
    with pytest.raises(ValueError, match="need at least 2 finite training rewards"):
        P.fit_predict(space, dnas, [1.0, math.nan, 0.0, 1.0], dnas)
    other = Space([Slot("b", "choice", 3)])
    with pytest.raises(ValueError, match="fit_predict: test_dnas: stack: item 0 is not a DNA"):
        P.fit_predict(space, dnas, [1.0, 2.0, 3.0, 4.0], [other.make_dna([0])])
    with pytest.raises(ValueError, match="ensemble must be a positive int, got 0"):
        P.fit_predict(space, dnas, [1.0, 2.0, 3.0, 4.0], dnas, ensemble=0)


def test_normal_scores_share_ties_and_are_centred() -> None:
    y = P._normal_scores(np.array([3.0, 1.0, 3.0, 2.0, -50.0]))
    assert y[0] == y[2] and y[4] < y[1] < y[3] < y[0]
    assert np.all(np.abs(y) < 2)  # an outlier stays bounded
    z = P._normal_scores(np.array([0.1, -1e9, 5.0, 2.0]))
    assert abs(float(z.sum())) < 1e-6 and z[1] == -z[2]


# ----------------------------------------------------------------------------------------------
# Arguments and layering


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_initial": 0}, "num_initial must be a positive int, got 0"),
        ({"pool_size": 1.5}, "pool_size must be a positive int, got 1.5"),
        ({"refit_every": -1}, "refit_every must be a positive int, got -1"),
        ({"ensemble": True}, "ensemble must be a positive int, got True"),
        ({"hidden": "64"}, "hidden must be a sequence of positive ints"),
        ({"hidden": (64, 0)}, r"hidden must be a sequence of positive ints .* got \(64, 0\)"),
        ({"epochs": 0}, "epochs must be a positive int, got 0"),
        ({"learning_rate": 0.0}, "learning_rate must be a finite number > 0, got 0.0"),
        ({"weight_decay": -1e-3}, "weight_decay must be a finite number >= 0, got -0.001"),
        ({"weight_decay": math.inf}, "weight_decay must be a finite number >= 0, got inf"),
        ({"mutation_fraction": 1.5}, r"mutation_fraction must be a number in \[0.0, 1.0\]"),
        ({"exploration": -1}, r"exploration must be a number in \[0.0, inf\], got -1"),
        ({"classifier_quantile": 1.0}, r"classifier_quantile must be a number in \(0, 1\)"),
        ({"classifier": 1}, "classifier must be True or False, got 1"),
        ({"enumerate_limit": -1}, "enumerate_limit must be an int >= 0, got -1"),
        ({"local_fraction": 2}, r"local_fraction must be a number in \[0.0, 1.0\], got 2"),
    ],
)
def test_argument_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        P.neural_predictor(**kwargs)


def test_importing_the_module_does_not_import_jax() -> None:
    code = "import sys, pliant.algorithms.predictor; print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
