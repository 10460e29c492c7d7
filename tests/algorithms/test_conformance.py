"""Every algorithm through the shared conformance suite, over every standard space, jitted and not.

The suite itself is ``pliant.testing.conformance``; the second half of this file checks that it
catches broken algorithms and rejects bad arguments.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest

import pliant.algorithms as A
from pliant.algorithms.base import Algorithm, check_reward, uniform_proposal
from pliant.spaces.dna import DNA, Slot, Space
from pliant.testing import conformance as C


class Spec(NamedTuple):
    make: Callable[[], Algorithm]
    randomized: bool = True  # proposals depend on the key (False: grid)
    learns: bool = True  # must beat random search on the toy problem
    checks_space: bool = False  # feedback rejects a DNA of another space with ValueError
    finite_only: bool = False  # needs a space without float slots (grid)
    slow: bool = False  # too slow for the default run (pytest -m slow runs it)
    slow_learning: bool = False  # only the 300-evaluation learning check is too slow
    spaces: tuple[str, ...] | None = None  # restrict to these standard spaces


def _evolution() -> Algorithm:
    return A.regularized_evolution(population_size=8, tournament_size=3)


def _pyglove_evolution() -> Algorithm:
    import pyglove as pg

    return A.from_pyglove(
        lambda: pg.evolution.regularized_evolution(population_size=8, tournament_size=3)
    )


def _index_cost(dna: DNA) -> Any:
    return 1.0 + dna.index.sum()


def _specs() -> dict[str, Spec]:
    # Other algorithms join the list as they land in pliant.algorithms.
    specs = {
        "random": Spec(A.random, learns=False),
        "regularized_evolution": Spec(_evolution, checks_space=True),
    }
    if hasattr(A, "reinforce"):
        specs["reinforce"] = Spec(A.reinforce, checks_space=True)
    if hasattr(A, "nsga2"):
        specs["nsga2"] = Spec(lambda: A.nsga2(population_size=8))
    if hasattr(A, "grid"):
        specs["grid"] = Spec(A.grid, randomized=False, learns=False, finite_only=True)
    if hasattr(A, "sequence"):
        specs["sequence"] = Spec(
            lambda: A.sequence((A.random(), 4), (_evolution(), None)), checks_space=True
        )
    if hasattr(A, "dedup"):
        specs["dedup"] = Spec(lambda: A.dedup(_evolution()), checks_space=True)
    if hasattr(A, "partition"):
        specs["partition"] = Spec(
            lambda: A.partition([(lambda s: s.kind == "float", A.random()), ("", _evolution())]),
            checks_space=True,
        )
    if hasattr(A, "rejection_sampling"):
        # Every DNA is feasible here, so the checks exercise the machinery around the rejection;
        # tests/algorithms/test_rejection.py checks the rejection and its gradient.
        specs["rejection_sampling"] = Spec(
            lambda: A.rejection_sampling(A.reinforce(), lambda d: d.index[..., 0] >= 0, num_mc=256),
            checks_space=True,
            spaces=("flat", "conditional"),
        )
    if hasattr(A, "tunas"):
        # A cost that grows with the indices and a target in the middle: the reward is shaped,
        # and the toy's optimum is still worth far more than the cost penalty.
        specs["tunas"] = Spec(
            lambda: A.tunas(_index_cost, target=8.0),
            checks_space=True,
            spaces=("flat", "conditional", "mixed"),
        )
    if hasattr(A, "neural_predictor"):
        specs["neural_predictor"] = Spec(
            lambda: A.neural_predictor(
                num_initial=6, refit_every=4, pool_size=64, ensemble=3, hidden=(32,)
            ),
            checks_space=True,
        )
    if hasattr(A, "from_optuna"):
        specs["from_optuna"] = Spec(
            A.from_optuna,
            checks_space=True,
            spaces=("flat", "conditional", "int"),
            slow_learning=True,
        )
    if hasattr(A, "from_pyglove"):
        specs["from_pyglove"] = Spec(_pyglove_evolution, checks_space=True, slow=True)
    # One Algorithm object per name, so jax.jit reuses its compiled functions across tests.
    return {name: spec._replace(make=functools.cache(spec.make)) for name, spec in specs.items()}


FACTORIES = _specs()
SPACES = C.standard_spaces()
CHECKS = (
    "proposals_valid",
    "deterministic",
    "resume",
    "async_feedback",
    "batch",
    "rejects_bad_rewards",  # host only: a traced reward has no value to check
    "scan",  # jitted only: propose + feedback inside one lax.scan
)
# Jitted runs compile propose and feedback once per (algorithm, space), then run few steps.
HOST = {"steps": 30, "rounds": 6, "batch": 4, "n": 8}
JIT = {"steps": 8, "rounds": 2, "batch": 3, "n": 4}
# `batch` (jax.vmap) and `scan` compile one more program each: by default they run jitted on the
# space that holds every kind of slot; `pytest -m slow` runs them on every space.
EVERY_KIND = "mixed"


def _cases() -> list:
    cases = []
    for name, spec in FACTORIES.items():
        modes = (False, True) if spec.make().traceable else (False,)
        for space_name, space in SPACES.items():
            if spec.spaces is not None and space_name not in spec.spaces:
                continue
            for jit in modes:
                for check in CHECKS:
                    if (check == "rejects_bad_rewards" and jit) or (check == "scan" and not jit):
                        continue
                    marks = [pytest.mark.slow] if spec.slow else []
                    if jit and check in ("batch", "scan") and space_name != EVERY_KIND:
                        marks.append(pytest.mark.slow)
                    if spec.finite_only and space.is_float.any():
                        reason = f"{name} needs a finite space; {space_name!r} has float slots"
                        marks.append(pytest.mark.skip(reason=reason))
                    mode = "jit" if jit else "host"
                    cases.append(
                        pytest.param(
                            check,
                            name,
                            space_name,
                            jit,
                            marks=marks,
                            id=f"{check}-{name}-{space_name}-{mode}",
                        )
                    )
    return cases


@pytest.mark.parametrize(("check", "name", "space_name", "jit"), _cases())
def test_conformance(check: str, name: str, space_name: str, jit: bool) -> None:
    spec, space = FACTORIES[name], SPACES[space_name]
    o = JIT if jit else HOST
    make = spec.make
    if check == "proposals_valid":
        dnas = C.check_proposals_valid(make, space, jit=jit, steps=o["steps"], scan_steps=0)
        assert len(dnas) == o["steps"]
    elif check == "scan":
        assert C.check_proposals_valid(make, space, jit=True, steps=0, scan_steps=8) == []
    elif check == "deterministic":
        C.check_deterministic(make, space, jit=jit, steps=o["steps"], randomized=spec.randomized)
    elif check == "resume":
        C.check_resume(make, space, jit=jit, steps=o["steps"])
    elif check == "async_feedback":
        C.check_async_feedback(make, space, jit=jit, rounds=o["rounds"], batch=o["batch"])
    elif check == "batch":
        batch = C.check_batch(make, space, jit=jit, n=o["n"], randomized=spec.randomized)
        assert batch.batch_shape == (o["n"],)
    else:
        C.check_rejects_bad_rewards(make, space, require_space_check=spec.checks_space)


def _beats_random_cases() -> list:
    return [
        pytest.param(
            name,
            jit,
            id=f"{name}-{'jit' if jit else 'host'}",
            marks=[pytest.mark.slow] if spec.slow or spec.slow_learning else [],
        )
        for name, spec in FACTORIES.items()
        for jit in ((False, True) if spec.make().traceable else (False,))
    ]


@pytest.mark.parametrize(("name", "jit"), _beats_random_cases())
def test_beats_random(name: str, jit: bool) -> None:
    spec = FACTORIES[name]
    result = C.check_beats_random(spec.make, jit=jit, expect_improvement=spec.learns)
    assert result.optimum == 10.0
    if spec.learns:
        assert result.algorithm > result.random


# ----------------------------------------------------------------------------------------------
# The suite itself: standard spaces, the toy reward, and that it catches broken algorithms.


def test_standard_spaces_cover_every_kind() -> None:
    spaces = C.standard_spaces()
    assert set(spaces) == {"flat", "conditional", "manyof", "float", "int", "mixed"}
    flat, cond, many = spaces["flat"], spaces["conditional"], spaces["manyof"]
    assert flat.num_slots == 12 and set(flat.num_choices.tolist()) == {5}
    assert any(cond.slots[p].conditions for s in cond.slots for p, _ in s.conditions)  # depth 2
    assert any(s.kind == "float" and not s.conditions for s in cond.slots)
    assert {(g.distinct, g.sorted) for g in many.groups} == {
        (True, False),
        (True, True),
        (False, False),
        (False, True),
    }
    assert any(s.conditions and s.group < 0 for s in many.slots)  # children under candidates
    assert spaces["float"].is_float.all() and spaces["float"].log_scale.any()
    assert spaces["int"].is_int.all() and spaces["int"].log_scale.any()
    parts = sum(s.num_slots for n, s in spaces.items() if n != "mixed")
    assert spaces["mixed"].num_slots == parts
    assert len(spaces["mixed"].groups) == len(many.groups)


def test_toy_reward_agrees_on_numpy_and_jax() -> None:
    import jax
    import jax.numpy as jnp

    from pliant.spaces.sampling import random_dna

    space = C.standard_spaces()["mixed"]
    host = random_dna(space, 3)
    dna = DNA(space, jnp.asarray(host.index), jnp.asarray(host.value), jnp.asarray(host.active))
    traced = jax.jit(C.toy_reward)(dna)
    assert isinstance(traced, jax.Array)
    assert np.isclose(float(traced), C.toy_reward(host), rtol=1e-5)
    assert np.isclose(sum(C.toy_reward(host, objectives=2)), C.toy_reward(host))


def test_toy_reward_rejects_objectives() -> None:
    dna = C.toy_space().make_dna(np.zeros(10, np.int32))
    with pytest.raises(ValueError, match="objectives must be 1 or 2, got 3"):
        C.toy_reward(dna, objectives=3)


def _algorithm(propose: Any = None, feedback: Any = None) -> Algorithm:
    """Random search with one function swapped for a broken one."""

    def good_feedback(state: Space, dna: DNA, reward: object) -> Space:
        check_reward(reward, multi_objective=False, algorithm="broken")
        return state

    return Algorithm(
        lambda space, key: space,
        propose or (lambda space, key: (uniform_proposal(space, key), space)),
        feedback or good_feedback,
        name="broken",
    )


FLAT = C.standard_spaces()["flat"]


def test_catches_invalid_proposal() -> None:
    algo = _algorithm(propose=lambda space, key: (space.make_dna(np.full(12, 7)), space))
    with pytest.raises(AssertionError, match=r"step 0: the proposal does not validate.*index 7"):
        C.check_proposals_valid(algo, FLAT, steps=3)


def test_catches_a_batch_from_propose() -> None:
    algo = _algorithm(propose=lambda space, key: (space.make_dna(np.zeros((2, 12), int)), space))
    with pytest.raises(AssertionError, match="returned a batch"):
        C.check_proposals_valid(algo, FLAT, steps=1)


def test_catches_ignored_key() -> None:
    algo = _algorithm(propose=lambda space, key: (uniform_proposal(space, 0), space))
    with pytest.raises(AssertionError, match="seeds 0 and 1 gave the same 5 proposals"):
        C.check_deterministic(algo, FLAT, steps=5)
    C.check_deterministic(algo, FLAT, steps=5, randomized=False)
    with pytest.raises(AssertionError, match="all 4 proposals of the batch are equal"):
        C.check_batch(algo, FLAT, n=4)


def test_catches_hidden_randomness() -> None:
    rng = np.random.default_rng(0)  # randomness outside the keys
    algo = _algorithm(propose=lambda space, key: (uniform_proposal(space, rng), space))
    with pytest.raises(AssertionError, match="same keys differ at step 0"):
        C.check_deterministic(algo, FLAT, steps=3)


def test_catches_state_kept_outside_the_state() -> None:
    def make() -> Algorithm:
        count = [0]  # progress the saved state does not hold

        def propose(space: Space, key: int) -> tuple[DNA, Space]:
            count[0] += 1
            return space.make_dna(np.full(12, count[0] % 5)), space

        return _algorithm(propose=propose)

    with pytest.raises(AssertionError, match="resumed after 3 steps, the run diverges at step"):
        C.check_resume(make, FLAT, steps=6)


def test_catches_unchecked_rewards() -> None:
    algo = _algorithm(feedback=lambda state, dna, reward: state)
    with pytest.raises(AssertionError, match="feedback accepted the reward nan; expected Value"):
        C.check_rejects_bad_rewards(algo, FLAT)


def test_catches_wrong_exception_for_another_space() -> None:
    def feedback(state: Space, dna: DNA, reward: object) -> Space:
        check_reward(reward, multi_objective=False, algorithm="broken")
        if dna.space != state:
            raise IndexError("boom")
        return state

    algo = _algorithm(feedback=feedback)
    with pytest.raises(AssertionError, match="another space raised IndexError: boom"):
        C.check_rejects_bad_rewards(algo, FLAT)
    with pytest.raises(AssertionError, match="another space raised IndexError"):
        C.check_rejects_bad_rewards(algo, FLAT, require_space_check=True)
    with pytest.raises(AssertionError, match="accepted a DNA of another space"):
        C.check_rejects_bad_rewards(A.random, FLAT, require_space_check=True)


def test_catches_no_improvement() -> None:
    with pytest.raises(AssertionError, match="not above random search's"):
        C.check_beats_random(A.random, evaluations=30)
    result = C.check_beats_random(A.random, evaluations=30, expect_improvement=False)
    assert result.algorithm == result.random  # same seeds, same keys


def test_argument_errors() -> None:
    with pytest.raises(ValueError, match="is not traceable"):
        C.check_proposals_valid(_evolution, FLAT, jit=True)
    with pytest.raises(ValueError, match=r"split must be in \[0, steps=4\], got 5"):
        C.check_resume(A.random, FLAT, steps=4, split=5)
    with pytest.raises(ValueError, match="needs seeds and evaluations >= 1"):
        C.check_beats_random(A.random, seeds=())
    with pytest.raises(KeyError, match="unknown standard spaces"):
        C.check_algorithm(A.random, spaces=["nope"])
    with pytest.raises(TypeError, match="expected a factory returning an Algorithm"):
        C.check_proposals_valid(lambda: "random", FLAT)  # type: ignore[arg-type, return-value]


def test_check_algorithm_accepts_an_algorithm_and_a_mapping() -> None:
    spaces = {"tiny": Space([Slot("a", "choice", 3), Slot("b", "float", 0, lo=0.0, hi=1.0)])}
    ran = C.check_algorithm(
        A.random(), spaces=spaces, steps=4, expect_improvement=False, evaluations=5
    )
    assert ran == [
        "proposals_valid[tiny]",
        "deterministic[tiny]",
        "resume[tiny]",
        "async_feedback[tiny]",
        "batch[tiny]",
        "rejects_bad_rewards[tiny]",
        "beats_random[toy]",
    ]
