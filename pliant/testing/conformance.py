"""A conformance suite for search algorithms, reusable by any algorithm built on pliant.

Every check takes an algorithm *factory* (a zero-argument callable returning an
:class:`~pliant.algorithms.base.Algorithm`, such as ``pl.algorithms.random`` or ``lambda:
my_algorithm(size=4)``; an Algorithm itself is accepted too), a DNA-layer
:class:`~pliant.spaces.dna.Space` and options, and raises ``AssertionError`` naming the
algorithm, the space, the step and what went wrong. Algorithms are pure (all state is explicit),
so a factory may return the same object every time; doing so lets ``jax.jit`` reuse its compiled
functions across checks.

Required of every algorithm (each a function here):

- :func:`check_proposals_valid`: every proposal validates against the space, with feedback
  interleaved (and, jitted, inside ``lax.scan``).
- :func:`check_deterministic`: the same keys give the same proposals; other seeds give others.
- :func:`check_resume`: ``state_to_json`` / ``state_from_json`` mid-run resumes the identical
  proposal sequence.
- :func:`check_async_feedback`: several proposals in flight, rewards fed back shuffled and late.
- :func:`check_rejects_bad_rewards`: NaN/inf rewards raise ValueError; a vector reward raises
  TypeError unless ``multi_objective``; a non-number raises TypeError. Rejecting a DNA of another
  space (ValueError) is optional unless ``require_space_check=True``; an algorithm that does not
  check may accept it, but it may not fail with another exception type.
- :func:`check_batch`: a batch of proposals (``jax.vmap`` over keys when jitted, several
  proposals in a row otherwise) validates, matches the one-at-a-time proposals (jitted) and is not
  degenerate.
- :func:`check_beats_random`: on :func:`toy_space` with :func:`toy_reward` (a known optimum), the
  best reward found is, on average over seeds, above random search's.

:func:`check_algorithm` runs them all over :func:`standard_spaces`. ``jit=True`` (traceable
algorithms only) runs ``propose`` and ``feedback`` under ``jax.jit`` with JAX keys; the reward
checks then stay on the host, because a traced reward has no value to check. Multi-objective
algorithms get two-objective tuple rewards (``toy_reward(dna, objectives=2)``) throughout.

Example:
    >>> import pliant as pl
    >>> from pliant.testing import conformance
    >>> ran = conformance.check_algorithm(
    ...     pl.algorithms.random, spaces=["flat"], steps=6, expect_improvement=False,
    ...     evaluations=20)
    >>> ran[:2]
    ['proposals_valid[flat]', 'deterministic[flat]']
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np

from pliant.algorithms.base import (
    Algorithm,
    register_space_pytree,
    state_from_json,
    state_to_json,
    step_key,
)
from pliant.spaces.dna import DNA, Group, Slot, Space

__all__ = [
    "AlgorithmFactory",
    "BeatsRandom",
    "check_algorithm",
    "check_async_feedback",
    "check_batch",
    "check_beats_random",
    "check_deterministic",
    "check_proposals_valid",
    "check_rejects_bad_rewards",
    "check_resume",
    "standard_spaces",
    "toy_reward",
    "toy_space",
]

AlgorithmFactory = Callable[[], Algorithm]
"""A zero-argument callable returning an Algorithm, e.g. ``pl.algorithms.random``."""

# ----------------------------------------------------------------------------------------------
# Spaces


def _flat() -> list[Slot]:
    return [Slot(f"c{i}", "choice", 5) for i in range(12)]


def _conditional() -> list[Slot]:
    return [
        Slot("op", "choice", 3, literals=("conv", "pool", "mlp")),
        Slot("conv.kernel", "choice", 3, conditions=((0, 0),)),
        Slot("conv.kernel1.dilation", "choice", 2, conditions=((1, 1),)),  # 2 levels deep
        Slot("conv.kernel2.groups", "int", 4, lo=1, hi=4, conditions=((1, 2),)),
        Slot("pool.size", "int", 3, lo=2, hi=4, conditions=((0, 1),)),
        Slot("mlp.dropout", "float", 0, lo=0.0, hi=0.5, conditions=((0, 2),)),
        Slot("conv_or_mlp.act", "choice", 2, conditions=((0, 0), (0, 2))),  # two candidates
        Slot("lr", "float", 0, lo=1e-4, hi=1e-1, scale="log"),
    ]


def _manyof() -> tuple[list[Slot], list[Group]]:
    slots: list[Slot] = []
    groups: list[Group] = []

    def group(name: str, k: int, n: int, distinct: bool, sorted_: bool, child: int = -1) -> None:
        g, positions = len(groups), []
        for j in range(k):
            positions.append(len(slots))
            slots.append(Slot(f"{name}[{j}]", "choice", n, group=g))
            if child >= 0:  # a sub-decision under one candidate of this position
                slots.append(
                    Slot(f"{name}[{j}].k", "int", 3, 1, 3, conditions=((positions[-1], child),))
                )
        groups.append(Group(tuple(positions), distinct, sorted_))

    group("distinct", 3, 5, distinct=True, sorted_=False)
    group("subset", 2, 4, distinct=True, sorted_=True)
    group("repeat", 3, 3, distinct=False, sorted_=False)
    group("multiset", 3, 3, distinct=False, sorted_=True)
    group("children", 2, 3, distinct=True, sorted_=False, child=1)
    return slots, groups


def _float() -> list[Slot]:
    return [
        Slot("x", "float", 0, lo=-1.0, hi=1.0),
        Slot("lr", "float", 0, lo=1e-4, hi=1e-1, scale="log"),
        Slot("wd", "float", 0, lo=1e-6, hi=1e-2, scale="log"),
        Slot("fixed", "float", 0, lo=0.5, hi=0.5),  # a constant: lo == hi is a valid slot
    ]


def _int() -> list[Slot]:
    return [
        Slot("depth", "int", 7, lo=-3, hi=3),
        Slot("units", "int", 64, lo=1, hi=64, scale="log"),
        Slot("heads", "int", 8, lo=1, hi=8),
        Slot("one", "int", 1, lo=2, hi=2),  # a single value
    ]


def _concat(parts: Mapping[str, tuple[list[Slot], list[Group]]]) -> Space:
    """One Space from several: ids prefixed, conditions and groups shifted."""
    slots: list[Slot] = []
    groups: list[Group] = []
    for prefix, (part_slots, part_groups) in parts.items():
        s0, g0 = len(slots), len(groups)
        for s in part_slots:
            slots.append(
                s._replace(
                    id=f"{prefix}.{s.id}",
                    conditions=tuple((p + s0, c) for p, c in s.conditions),
                    group=s.group + g0 if s.group >= 0 else -1,
                )
            )
        groups.extend(g._replace(slots=tuple(p + s0 for p in g.slots)) for g in part_groups)
    return Space(slots, groups)


@functools.cache
def _standard_spaces() -> tuple[tuple[str, Space], ...]:
    parts = {
        "flat": (_flat(), []),
        "conditional": (_conditional(), []),
        "manyof": _manyof(),
        "float": (_float(), []),
        "int": (_int(), []),
    }
    out = [(name, Space(slots, groups)) for name, (slots, groups) in parts.items()]
    out.append(("mixed", _concat(parts)))
    return tuple(out)


def standard_spaces() -> dict[str, Space]:
    """Named Spaces of every kind the DNA layer has, for running an algorithm over all of them.

    - ``flat``: 12 choice slots of 5 candidates.
    - ``conditional``: a choice whose candidates enable sub-decisions (two levels deep, one
      slot enabled by two candidates), and an unconditional log-scale float.
    - ``manyof``: groups that are distinct, distinct and sorted, repeated, repeated and
      sorted, and distinct with a conditional child under one candidate of each position.
    - ``float``: linear and log floats, and a constant (``lo == hi``).
    - ``int``: linear and log ints, and a single-value int.
    - ``mixed``: all of the above in one space.

    Returns:
        A new dict ``{name: Space}`` (the Spaces are immutable and shared).

    Example:
        >>> spaces = standard_spaces()
        >>> list(spaces)
        ['flat', 'conditional', 'manyof', 'float', 'int', 'mixed']
        >>> spaces["flat"].size
        244140625
    """
    return dict(_standard_spaces())


def toy_space() -> Space:
    """The space of :func:`check_beats_random`: 10 choice slots of 4 candidates.

    Example:
        >>> toy_space().size
        1048576
    """
    return Space([Slot(f"s{i}", "choice", 4) for i in range(10)])


class _Toy(NamedTuple):
    target: np.ndarray  # hidden target index per slot
    is_float: np.ndarray
    log: np.ndarray
    lo: np.ndarray  # bounds on the slot's scale (log for log floats)
    width: np.ndarray


@functools.lru_cache(maxsize=64)
def _toy(space: Space) -> _Toy:
    is_float = space.is_float
    log = space.log_scale & is_float
    lo = np.where(log, np.log(np.where(log, space.lo, 1.0)), space.lo)
    hi = np.where(log, np.log(np.where(log, space.hi, 1.0)), space.hi)
    target = (7 * np.arange(space.num_slots) + 3) % np.maximum(space.num_choices, 1)
    return _Toy(target, is_float, log, lo, np.where(hi > lo, hi - lo, 1.0))


def toy_reward(dna: DNA, objectives: int = 1) -> Any:
    """A deterministic reward with a known optimum, for any space; traceable under ``jax.jit``.

    Each active choice or int slot ``i`` scores 1 when its index is the hidden target
    ``(7 * i + 3) % num_choices``; each active float slot scores ``1 - |u - 0.25|`` where ``u``
    in ``[0, 1]`` is its position in its range (on its scale). The reward is the sum, so on
    :func:`toy_space` the optimum is 10. With ``objectives=2`` the slots are split by parity
    into two non-conflicting objectives (their sum is the single-objective reward).

    Args:
        dna: A single DNA (NumPy arrays give Python floats, JAX arrays give JAX scalars).
        objectives: 1 for a float, 2 for a tuple of two floats.

    Raises:
        ValueError: for ``objectives`` other than 1 or 2.

    Example:
        >>> space = toy_space()
        >>> toy_reward(space.make_dna(np.array([3, 2, 1, 0, 3, 2, 1, 0, 3, 2])))
        10.0
        >>> toy_reward(space.make_dna(np.zeros(10, np.int32)), objectives=2)
        (0.0, 2.0)
    """
    if objectives not in (1, 2):
        raise ValueError(f"toy_reward: objectives must be 1 or 2, got {objectives!r}")
    t = _toy(dna.space)
    host = isinstance(dna.index, np.ndarray)
    if host:
        xp: Any = np
    else:
        import jax.numpy as xp
    score = xp.asarray(dna.index) == t.target
    if t.is_float.any():
        value = xp.asarray(dna.value)
        x = xp.where(t.log, xp.log(xp.where(t.log & (value > 0), value, 1.0)), value)
        u = xp.clip((x - t.lo) / t.width, 0.0, 1.0)
        score = xp.where(t.is_float, 1.0 - xp.abs(u - 0.25), score)
    score = xp.where(xp.asarray(dna.active), score, 0.0)
    if objectives == 1:
        total = xp.sum(score)
        return float(total) if host else total
    even = xp.sum(score[..., 0::2])
    odd = xp.sum(score[..., 1::2])
    return (float(even), float(odd)) if host else (even, odd)


# ----------------------------------------------------------------------------------------------
# Running an algorithm on the host or under jax.jit


def _make(make: AlgorithmFactory | Algorithm) -> Algorithm:
    algo = make if isinstance(make, Algorithm) else make()
    if not isinstance(algo, Algorithm):
        raise TypeError(
            f"conformance: expected a factory returning an Algorithm (e.g. pl.algorithms.random),"
            f" got {make!r:.80} returning {algo!r:.80}"
        )
    return algo


def _label(space: Space) -> str:
    for name, s in _standard_spaces():
        if s == space:
            return f"space {name!r}"
    return f"space {space.fingerprint} ({space.num_slots} slots)"


class _Runner:
    """Proposes and feeds back on the host (int keys) or under jax.jit (JAX keys)."""

    def __init__(self, algo: Algorithm, space: Space, jit: bool, seed: int) -> None:
        if jit and not algo.traceable:
            raise ValueError(
                f"conformance: {algo.name} is not traceable (traceable=False); run its checks "
                "with jit=False"
            )
        self.algo, self.space, self.jit, self.seed = algo, space, jit, seed
        self.objectives = 2 if algo.multi_objective else 1
        self.where = f"{algo.name} on {_label(space)}" + (" (jitted)" if jit else "")
        if jit:
            import jax

            register_space_pytree()
            self._propose, self._feedback = _jitted(algo)
            self._base = jax.random.key(seed)
            self._fold_in = jax.random.fold_in
        else:
            self._propose, self._feedback = algo.propose, algo.feedback

    def init_key(self) -> Any:
        return self._base if self.jit else self.seed

    def key(self, step: int) -> Any:
        return self._fold_in(self._base, step) if self.jit else step_key(self.seed, step)

    def init(self) -> Any:
        return self.algo.init(self.space, self.init_key())

    def propose(self, state: Any, step: int) -> tuple[DNA, Any]:
        dna, state = self._propose(state, self.key(step))
        self.validate(dna, f"step {step}")
        return dna, state

    def reward(self, dna: DNA) -> Any:
        if not isinstance(dna.index, np.ndarray):  # JAX arrays: the reward is computed on the host
            dna = DNA(dna.space, *(np.asarray(a) for a in (dna.index, dna.value, dna.active)))
        return toy_reward(dna, self.objectives)

    def feedback(self, state: Any, dna: DNA, reward: Any = None) -> Any:
        return self._feedback(state, dna, self.reward(dna) if reward is None else reward)

    def run(self, state: Any, start: int, stop: int) -> tuple[list[DNA], Any]:
        dnas = []
        for step in range(start, stop):
            dna, state = self.propose(state, step)
            state = self.feedback(state, dna)
            dnas.append(dna)
        return dnas, state

    def validate(self, dna: Any, where: str) -> None:
        if not isinstance(dna, DNA):
            raise AssertionError(f"{self.where}: {where}: propose returned {dna!r:.80}, not a DNA")
        if dna.batch_shape:
            raise AssertionError(
                f"{self.where}: {where}: propose returned a batch {dna.batch_shape}; expected "
                "one DNA"
            )
        try:
            self.space.validate(dna)
        except ValueError as e:
            raise AssertionError(
                f"{self.where}: {where}: the proposal does not validate: {e}"
            ) from e


@functools.lru_cache(maxsize=256)
def _jitted(algo: Algorithm) -> tuple[Any, Any]:
    import jax

    return jax.jit(algo.propose), jax.jit(algo.feedback)


@functools.lru_cache(maxsize=256)
def _jitted_scan(algo: Algorithm, objectives: int) -> Any:
    """``(state, keys) -> (state, dnas, best)``: propose + feedback in one ``lax.scan``."""
    import jax
    import jax.numpy as jnp

    def body(carry: Any, key: Any) -> Any:
        state, best = carry
        dna, state = algo.propose(state, key)
        reward = toy_reward(dna, objectives)
        state = algo.feedback(state, dna, reward)
        total = reward if objectives == 1 else reward[0] + reward[1]
        return (state, jnp.maximum(best, total)), dna

    def run(state: Any, keys: Any) -> Any:
        (state, best), dnas = jax.lax.scan(body, (state, jnp.float32(-jnp.inf)), keys)
        return state, dnas, best

    return jax.jit(run)


def _differ(a: list[DNA], b: list[DNA]) -> int:
    """Index of the first differing DNA, -1 when the lists are equal."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return -1 if len(a) == len(b) else min(len(a), len(b))


def _large(space: Space, n: int) -> bool:
    try:
        return space.size > n
    except ValueError:  # too many to count by enumeration
        return True


# ----------------------------------------------------------------------------------------------
# Checks


def check_proposals_valid(
    make: AlgorithmFactory | Algorithm,
    space: Space,
    *,
    jit: bool = False,
    steps: int = 60,
    seed: int = 0,
    scan_steps: int = 8,
) -> list[DNA]:
    """Every proposal validates, for ``steps`` steps with :func:`toy_reward` fed back.

    Jitted, the steps run through ``jax.jit``-compiled ``propose`` and ``feedback``, then
    ``scan_steps`` more inside one ``lax.scan`` (run twice: it must be deterministic too).

    Returns:
        The proposals of the (non-scan) run.

    Raises:
        AssertionError: naming the step and the invalid slot.
        ValueError: for ``jit=True`` on an algorithm that is not traceable.

    Example:
        >>> import pliant as pl
        >>> space = standard_spaces()["conditional"]
        >>> len(check_proposals_valid(pl.algorithms.random, space, steps=5))
        5
    """
    r = _Runner(_make(make), space, jit, seed)
    dnas, state = r.run(r.init(), 0, steps)
    if jit and scan_steps:
        import jax

        scan = _jitted_scan(r.algo, r.objectives)
        keys = jax.random.split(r.key(steps), scan_steps)
        _, batch, _ = scan(state, keys)
        _, again, _ = scan(state, keys)
        try:
            space.validate(batch)
        except ValueError as e:
            raise AssertionError(
                f"{r.where}: inside lax.scan: a proposal does not validate: {e}"
            ) from e
        if batch != again:
            raise AssertionError(f"{r.where}: lax.scan with the same keys proposed other DNAs")
    return dnas


def check_deterministic(
    make: AlgorithmFactory | Algorithm,
    space: Space,
    *,
    jit: bool = False,
    steps: int = 20,
    seed: int = 0,
    randomized: bool = True,
) -> None:
    """The same keys give the same proposals; with ``randomized``, another seed gives others.

    Two runs with fresh algorithms from ``make`` and the same keys (feedback included) must
    propose identical DNA sequences. With ``randomized=True`` (set False for deterministic
    algorithms such as grid search) a run with ``seed + 1`` must differ somewhere, when the
    space has more than ``steps`` points.

    Raises:
        AssertionError: naming the first step where the runs differ.

    Example:
        >>> import pliant as pl
        >>> check_deterministic(pl.algorithms.random, standard_spaces()["flat"], steps=5)
    """
    r = _Runner(_make(make), space, jit, seed)
    first, _ = r.run(r.init(), 0, steps)
    again = _Runner(_make(make), space, jit, seed)
    second, _ = again.run(again.init(), 0, steps)
    i = _differ(first, second)
    if i >= 0:
        raise AssertionError(
            f"{r.where}: two runs with the same keys differ at step {i}: {first[i]!r} vs "
            f"{second[i]!r}; all randomness must come from the keys passed to init and propose"
        )
    if randomized and _large(space, steps):
        other = _Runner(_make(make), space, jit, seed + 1)
        third, _ = other.run(other.init(), 0, steps)
        if _differ(first, third) < 0:
            raise AssertionError(
                f"{r.where}: seeds {seed} and {seed + 1} gave the same {steps} proposals; does "
                "propose use its key? (pass randomized=False for a deterministic algorithm)"
            )


def check_resume(
    make: AlgorithmFactory | Algorithm,
    space: Space,
    *,
    jit: bool = False,
    steps: int = 20,
    split: int | None = None,
    seed: int = 0,
) -> None:
    """A state saved with ``state_to_json`` mid-run resumes the identical proposal sequence.

    Runs ``steps`` steps uninterrupted; then runs ``split`` steps (default ``steps // 2``),
    writes the state to JSON, restores it with ``state_from_json(text, algo.init(space, key))``
    on a fresh algorithm, and continues with the same keys. The continuation must equal the
    uninterrupted run, and writing the restored state must give the same JSON.

    Raises:
        AssertionError: naming the step where the resumed run diverges.

    Example:
        >>> import pliant as pl
        >>> algo = lambda: pl.algorithms.regularized_evolution(population_size=4, tournament_size=2)
        >>> check_resume(algo, standard_spaces()["manyof"], steps=12)
    """
    split = steps // 2 if split is None else split
    if not 0 <= split <= steps:
        raise ValueError(f"check_resume: split must be in [0, steps={steps}], got {split!r}")
    r = _Runner(_make(make), space, jit, seed)
    full, _ = r.run(r.init(), 0, steps)
    head, state = r.run(r.init(), 0, split)
    try:
        text = state_to_json(state)
        json.loads(text)
    except (TypeError, ValueError) as e:
        raise AssertionError(f"{r.where}: state_to_json failed after {split} steps: {e}") from e
    fresh = _Runner(_make(make), space, jit, seed)
    try:
        restored = state_from_json(text, fresh.init())
    except ValueError as e:
        raise AssertionError(f"{r.where}: state_from_json failed after {split} steps: {e}") from e
    again = state_to_json(restored)
    if again != text:
        raise AssertionError(
            f"{r.where}: the restored state writes different JSON than the saved one "
            f"(first difference at character {_first_diff(text, again)})"
        )
    tail, _ = fresh.run(restored, split, steps)
    i = _differ(full, head + tail)
    if i >= 0:
        raise AssertionError(
            f"{r.where}: resumed after {split} steps, the run diverges at step {i}: "
            f"{(head + tail)[i]!r} vs {full[i]!r} uninterrupted"
        )


def _first_diff(a: str, b: str) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def check_async_feedback(
    make: AlgorithmFactory | Algorithm,
    space: Space,
    *,
    jit: bool = False,
    rounds: int = 6,
    batch: int = 4,
    seed: int = 0,
) -> None:
    """Proposals stay valid when several are in flight and rewards come back shuffled and late.

    Each round proposes ``batch`` DNAs without feedback in between, then feeds back a random
    half of all pending DNAs in random order (the rest arrive in later rounds); finally all
    remaining rewards arrive and a few more proposals must validate.

    Raises:
        AssertionError: naming the step of an invalid proposal.

    Example:
        >>> import pliant as pl
        >>> check_async_feedback(pl.algorithms.random, standard_spaces()["int"], rounds=2)
    """
    r = _Runner(_make(make), space, jit, seed)
    rng = np.random.default_rng(seed)
    state, step, pending = r.init(), 0, []
    for _ in range(rounds):
        for _ in range(batch):
            dna, state = r.propose(state, step)
            pending.append(dna)
            step += 1
        order = rng.permutation(len(pending))
        now, later = order[: (len(order) + 1) // 2], order[(len(order) + 1) // 2 :]
        for j in now:
            state = r.feedback(state, pending[j])
        pending = [pending[j] for j in later]
    for j in rng.permutation(len(pending)):
        state = r.feedback(state, pending[j])
    for _ in range(batch):
        _, state = r.propose(state, step)
        step += 1


def check_rejects_bad_rewards(
    make: AlgorithmFactory | Algorithm,
    space: Space,
    *,
    require_space_check: bool = False,
    seed: int = 0,
) -> None:
    """``feedback`` rejects rewards it cannot learn from, with built-in exception types.

    Required: NaN, inf and -inf raise ValueError (in any objective); a non-number raises
    TypeError; a vector reward raises TypeError for a single-objective algorithm and is
    accepted by a multi-objective one. Optional (required with ``require_space_check=True``):
    a DNA of another space raises ValueError; an algorithm that does not check may accept it,
    but must not fail with any other exception. Runs on the host only: under ``jax.jit`` a
    traced reward has no value to check.

    Raises:
        AssertionError: naming the reward that was accepted or the wrong exception.

    Example:
        >>> import pliant as pl
        >>> check_rejects_bad_rewards(pl.algorithms.random, standard_spaces()["flat"])
    """
    r = _Runner(_make(make), space, False, seed)
    state = r.init()
    dna, state = r.propose(state, 0)
    mo = r.algo.multi_objective

    def expect(error: type[Exception], reward: Any, what: str, dna: DNA = dna) -> None:
        try:
            r.feedback(state, dna, reward)
        except error:
            return
        except Exception as e:
            raise AssertionError(
                f"{r.where}: feedback with {what} raised {type(e).__name__}: {e}; expected "
                f"{error.__name__}"
            ) from e
        raise AssertionError(f"{r.where}: feedback accepted {what}; expected {error.__name__}")

    for bad in (math.nan, math.inf, -math.inf):
        expect(ValueError, (bad, 0.0) if mo else bad, f"the reward {bad!r}")
    expect(TypeError, "high", "the reward 'high'")
    if mo:
        r.feedback(state, dna, (1.0, 2.0))
    else:
        expect(TypeError, (1.0, 2.0), "a vector reward (1.0, 2.0) (single objective)")
    other = Space([Slot("conformance.other", "choice", 2)])
    foreign = other.make_dna(np.array([1], np.int32))
    good = (1.0, 1.0) if mo else 1.0
    if require_space_check:
        expect(ValueError, good, "a DNA of another space", dna=foreign)
    else:
        try:
            r.feedback(state, foreign, good)
        except ValueError:
            pass
        except Exception as e:
            raise AssertionError(
                f"{r.where}: feedback with a DNA of another space raised {type(e).__name__}: "
                f"{e}; expected ValueError (or acceptance)"
            ) from e
    state = r.feedback(state, dna, good)  # the state still works after the rejections
    r.propose(state, 1)


def check_batch(
    make: AlgorithmFactory | Algorithm,
    space: Space,
    *,
    jit: bool = False,
    n: int = 8,
    seed: int = 0,
    randomized: bool = True,
) -> DNA:
    """A batch of ``n`` proposals validates and is not degenerate.

    Jitted, ``propose`` runs under ``jax.vmap`` over ``n`` keys (the state shared); each row
    must equal the unbatched proposal for its key (floats to float32 precision). On the host,
    ``n`` proposals in a row without feedback must validate as a stacked batch and then all be
    fed back. With ``randomized`` (and more than ``n`` points in the space), the rows must not
    all be equal.

    Returns:
        The batch, a DNA of batch shape ``(n,)``.

    Raises:
        AssertionError: naming the row that is invalid or differs.

    Example:
        >>> import pliant as pl
        >>> check_batch(pl.algorithms.random, standard_spaces()["float"], n=4).batch_shape
        (4,)
    """
    r = _Runner(_make(make), space, jit, seed)
    state = r.init()
    if jit:
        import jax

        keys = jax.random.split(r.key(0), n)
        propose = _jitted_vmap(r.algo)
        out = propose(state, keys)
        rows = [r._propose(state, keys[i])[0] for i in range(n)]
        for i, row in enumerate(rows):
            same = (
                np.array_equal(np.asarray(out.index[i]), np.asarray(row.index))
                and np.array_equal(np.asarray(out.active[i]), np.asarray(row.active))
                and np.allclose(np.asarray(out.value[i]), np.asarray(row.value), rtol=1e-6)
            )
            if not same:
                raise AssertionError(
                    f"{r.where}: row {i} of the vmapped proposals differs from propose with the "
                    f"same key: {out[i]!r} vs {row!r}"
                )
    else:
        rows = []
        for step in range(n):
            dna, state = r.propose(state, step)
            rows.append(dna)
        out = space.stack(rows)
    if not isinstance(out, DNA) or out.batch_shape != (n,):
        raise AssertionError(f"{r.where}: expected a batch of {n} DNAs, got {out!r:.80}")
    try:
        space.validate(out)
    except ValueError as e:
        raise AssertionError(f"{r.where}: a batched proposal does not validate: {e}") from e
    if randomized and _large(space, n) and all(row == rows[0] for row in rows[1:]):
        raise AssertionError(f"{r.where}: all {n} proposals of the batch are equal: {rows[0]!r}")
    if not jit:
        for dna in rows:
            state = r.feedback(state, dna)
        r.propose(state, n)
    return out


@functools.lru_cache(maxsize=256)
def _jitted_vmap(algo: Algorithm) -> Any:
    import jax

    return jax.jit(jax.vmap(lambda state, key: algo.propose(state, key)[0], in_axes=(None, 0)))


class BeatsRandom(NamedTuple):
    """What :func:`check_beats_random` measured: mean best rewards over the seeds.

    Attributes:
        algorithm: The algorithm's mean best reward.
        random: Random search's mean best reward on the same seeds.
        optimum: The number of slots: the optimum of :func:`toy_space`, a bound elsewhere.

    Example:
        >>> BeatsRandom(9.0, 6.5, 10.0).algorithm > BeatsRandom(9.0, 6.5, 10.0).random
        True
    """

    algorithm: float
    random: float
    optimum: float


def check_beats_random(
    make: AlgorithmFactory | Algorithm,
    *,
    space: Space | None = None,
    evaluations: int = 300,
    seeds: Iterable[int] = (0, 1, 2),
    expect_improvement: bool = True,
    jit: bool = False,
) -> BeatsRandom:
    """On a toy problem with a known optimum, the algorithm finds more than random search.

    Runs ``evaluations`` propose/feedback steps with :func:`toy_reward` (two objectives for a
    multi-objective algorithm; "best" is their sum) per seed, on :func:`toy_space` unless
    ``space`` is given, and compares the mean best reward with random search's on the same
    seeds. Jitted, each run is one ``lax.scan``.

    Args:
        make: The algorithm factory.
        space: The space; by default 10 choice slots of 4 (optimum 10; random search's best
            after 300 evaluations is about 7).
        evaluations: Proposals (and rewards) per seed.
        seeds: Seeds to average over.
        expect_improvement: True to require a strictly higher mean than random search (a
            learning algorithm); False only reports the numbers (random search, grid search).
        jit: Run under ``jax.jit`` (traceable algorithms).

    Returns:
        A :class:`BeatsRandom` with both means and the optimum of :func:`toy_reward`.

    Raises:
        AssertionError: when ``expect_improvement`` and the mean is not above random's.

    Example:
        >>> import pliant as pl
        >>> evolution = lambda: pl.algorithms.regularized_evolution(10, 3)
        >>> result = check_beats_random(evolution, evaluations=100)
        >>> result.algorithm > result.random
        True
    """
    space = toy_space() if space is None else space
    seeds = tuple(seeds)
    if not seeds or evaluations < 1:
        raise ValueError(
            f"check_beats_random: needs seeds and evaluations >= 1, got seeds={seeds!r}, "
            f"evaluations={evaluations!r}"
        )
    algo = _make(make)
    ours = float(np.mean([_best_of(algo, space, s, evaluations, jit) for s in seeds]))
    theirs = _random_best(space, seeds, evaluations)
    optimum = float(space.num_slots)  # every slot at its target
    result = BeatsRandom(ours, theirs, optimum)
    if expect_improvement and not ours > theirs:
        raise AssertionError(
            f"{algo.name} on {_label(space)}: mean best reward {ours:.3f} over seeds {seeds} "
            f"after {evaluations} evaluations is not above random search's {theirs:.3f} "
            f"(optimum {optimum:g}); pass expect_improvement=False for non-learning algorithms"
        )
    return result


def _best_of(algo: Algorithm, space: Space, seed: int, evaluations: int, jit: bool) -> float:
    r = _Runner(algo, space, jit, seed)
    if jit:
        import jax

        scan = _jitted_scan(algo, r.objectives)
        _, dnas, best = scan(r.init(), jax.random.split(r.key(0), evaluations))
        try:
            space.validate(dnas)
        except ValueError as e:
            raise AssertionError(
                f"{r.where}: inside lax.scan: a proposal does not validate: {e}"
            ) from e
        return float(best)
    state, best = r.init(), -math.inf
    for step in range(evaluations):
        dna, state = algo.propose(state, r.key(step))  # validity is another check's job
        reward = r.reward(dna)
        state = algo.feedback(state, dna, reward)
        best = max(best, reward if r.objectives == 1 else sum(reward))
    return best


@functools.lru_cache(maxsize=16)
def _random_best(space: Space, seeds: tuple[int, ...], evaluations: int) -> float:
    from pliant.algorithms.random_search import random

    algo = random()
    return float(np.mean([_best_of(algo, space, s, evaluations, False) for s in seeds]))


def check_algorithm(
    make: AlgorithmFactory | Algorithm,
    *,
    spaces: Mapping[str, Space] | Iterable[str] | None = None,
    jit: bool = False,
    steps: int = 30,
    seed: int = 0,
    randomized: bool = True,
    expect_improvement: bool = True,
    require_space_check: bool = False,
    evaluations: int = 300,
) -> list[str]:
    """Runs every check over the given spaces (all of :func:`standard_spaces` by default).

    Args:
        make: The algorithm factory.
        spaces: ``{name: Space}``, names of standard spaces, or None for all standard spaces.
        jit: Run under ``jax.jit`` (traceable algorithms); the reward checks are skipped then.
        steps: Steps per run of the validity, determinism and resume checks.
        seed: The base seed.
        randomized: False for deterministic algorithms (see :func:`check_deterministic`).
        expect_improvement: See :func:`check_beats_random`.
        require_space_check: See :func:`check_rejects_bad_rewards`.
        evaluations: Evaluations per seed in :func:`check_beats_random`.

    Returns:
        The names of the checks that ran, as ``'check[space]'``.

    Raises:
        AssertionError: from the first failing check.
        KeyError: for an unknown standard space name.

    Example:
        >>> import pliant as pl
        >>> ran = check_algorithm(pl.algorithms.random, spaces=["int"], steps=4,
        ...                       expect_improvement=False, evaluations=10)
        >>> ran[-1]
        'beats_random[toy]'
    """
    if spaces is None:
        named = standard_spaces()
    elif isinstance(spaces, Mapping):
        named = dict(spaces)
    else:
        known = standard_spaces()
        names = list(spaces)
        unknown = [n for n in names if n not in known]
        if unknown:
            raise KeyError(
                f"unknown standard spaces {unknown!r}; expected names from {list(known)}"
            )
        named = {n: known[n] for n in names}
    ran = []
    for name, space in named.items():
        check_proposals_valid(make, space, jit=jit, steps=steps, seed=seed)
        ran.append(f"proposals_valid[{name}]")
        check_deterministic(make, space, jit=jit, steps=steps, seed=seed, randomized=randomized)
        ran.append(f"deterministic[{name}]")
        check_resume(make, space, jit=jit, steps=steps, seed=seed)
        ran.append(f"resume[{name}]")
        check_async_feedback(make, space, jit=jit, seed=seed)
        ran.append(f"async_feedback[{name}]")
        check_batch(make, space, jit=jit, seed=seed, randomized=randomized)
        ran.append(f"batch[{name}]")
        if not jit:
            check_rejects_bad_rewards(
                make, space, seed=seed, require_space_check=require_space_check
            )
            ran.append(f"rejects_bad_rewards[{name}]")
    check_beats_random(
        make, evaluations=evaluations, expect_improvement=expect_improvement, jit=jit
    )
    ran.append("beats_random[toy]")
    return ran
