"""The algorithm interface: three pure functions over an explicit state.

An :class:`Algorithm` is a NamedTuple of functions, as an optax optimizer is::

    state = algo.init(space, key)             # the state holds the Space and everything else
    dna, state = algo.propose(state, key)     # a DNA of the space
    state = algo.feedback(state, dna, reward)  # any DNA proposed earlier, in any order

Algorithms see only the DNA layer (:class:`~pliant.spaces.dna.Space` and
:class:`~pliant.spaces.dna.DNA`), never symbolic values. Randomness comes only from the ``key``
passed to ``init`` and ``propose``: a ``jax.random`` key, or an ``int`` on the host (host
algorithms turn it into a NumPy Philox generator, which costs microseconds, not a JAX dispatch).
So a run is reproduced by replaying the same keys, and a state saved with :func:`state_to_json`
resumes to the identical proposal sequence.

Traceable algorithms (``traceable=True``) are written with ``jax.numpy`` and work inside
``jax.jit`` and ``lax.scan`` with a JAX key; host algorithms (``traceable=False``) use NumPy or
call other libraries and must run in a Python loop.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np

from pliant.spaces.dna import DNA, Space, register_pytree

Reward = float | tuple[float, ...]
Key = Any  # an int (host) or a jax.random key


class InitFn(Protocol):
    def __call__(self, space: Space, key: Key) -> Any: ...


class ProposeFn(Protocol):
    def __call__(self, state: Any, key: Key) -> tuple[DNA, Any]: ...


class FeedbackFn(Protocol):
    def __call__(self, state: Any, dna: DNA, reward: Reward) -> Any: ...


class Algorithm(NamedTuple):
    """A search algorithm: ``init``, ``propose`` and ``feedback``, plus what it supports.

    Attributes:
        init: ``(space, key) -> state``.
        propose: ``(state, key) -> (dna, state)``.
        feedback: ``(state, dna, reward) -> state``; rewards are maximized.
        name: a short name for tables and logs.
        traceable: True when the three functions trace under ``jax.jit`` with a JAX key.
        multi_objective: True when ``reward`` may be a tuple of floats.

    Example:
        >>> import pliant as pl
        >>> from pliant.spaces.dna import Slot, Space
        >>> space = Space([Slot("op", "choice", 4)])
        >>> algo = pl.algorithms.random()
        >>> state = algo.init(space, 0)
        >>> dna, state = algo.propose(state, 1)
        >>> state = algo.feedback(state, dna, 0.5)
        >>> space.validate(dna) is dna
        True
    """

    init: InitFn
    propose: ProposeFn
    feedback: FeedbackFn
    name: str = "algorithm"
    traceable: bool = False
    multi_objective: bool = False


def host_rng(key: Key) -> np.random.Generator:
    """Returns a NumPy generator determined by ``key`` (an int, a JAX key, or a Generator).

    Example:
        >>> int(host_rng(3).integers(100)) == int(host_rng(3).integers(100))
        True
    """
    if isinstance(key, np.random.Generator):
        return key
    if isinstance(key, int | np.integer) and not isinstance(key, bool):
        k = int(key) & ((1 << 128) - 1)
    else:
        k = key_to_int(key)
    return _generator(k)


# Creating a Philox generator costs ~14 µs, more than a whole evolution step should. Each thread
# keeps a ring of generators and re-keys the next one (~3 µs). A generator stays valid until
# _RING more host_rng calls in the same thread; callers use it within one propose and never
# store it, so the ring is far larger than any nesting of algorithms.
_RING = 16
_LOCAL = threading.local()


def _generator(k: int) -> np.random.Generator:
    ring = getattr(_LOCAL, "ring", None)
    if ring is None:
        ring = _LOCAL.ring = [np.random.Generator(np.random.Philox(key=0)) for _ in range(_RING)]
        _LOCAL.pos = 0
        _LOCAL.template = ring[0].bit_generator.state
    pos = _LOCAL.pos = (_LOCAL.pos + 1) % _RING
    gen = ring[pos]
    state = _LOCAL.template
    state["state"]["key"] = np.array([k & 0xFFFFFFFFFFFFFFFF, k >> 64], dtype=np.uint64)
    state["state"]["counter"] = np.zeros(4, dtype=np.uint64)
    state["buffer_pos"] = 4
    state["has_uint32"] = 0
    gen.bit_generator.state = state
    return gen


def key_to_int(key: Key) -> int:
    """Turns a JAX PRNG key (typed or ``uint32[2]``) into a non-negative int.

    Raises:
        TypeError: for anything else.

    Example:
        >>> import jax
        >>> key_to_int(jax.random.key(0)) == key_to_int(jax.random.PRNGKey(0))
        True
    """
    if isinstance(key, int | np.integer) and not isinstance(key, bool):
        return int(key) & ((1 << 128) - 1)
    try:
        import jax

        data = key
        if hasattr(key, "dtype") and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
            data = jax.random.key_data(key)
        words = np.asarray(data, dtype=np.uint64).ravel()
    except (ImportError, TypeError, ValueError):
        words = None
    if words is None or words.size == 0:
        raise TypeError(f"expected an int or a jax.random key, got {key!r}")
    out = 0
    for w in words.tolist():
        out = (out << 32) | (int(w) & 0xFFFFFFFF)
    return out


def step_key(seed: int, step: int) -> int:
    """A host key for step ``step`` of a run seeded with ``seed`` (distinct per pair).

    ``seed`` may itself be a key (e.g. from :func:`keys`, 128 bits): keys derived from it stay
    distinct per seed.

    Example:
        >>> step_key(0, 1) != step_key(1, 0)
        True
        >>> step_key(step_key(0, 5), 1) != step_key(step_key(1, 5), 1)
        True
    """
    seed = int(seed)
    if seed >> 64 > 0:
        # A key derived from another key: its high bits hold the run's seed, so hash all of
        # it into 64 bits rather than dropping them (which made every seed's sub-keys equal).
        data = seed.to_bytes((seed.bit_length() + 7) // 8, "little")
        seed = int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")
    return ((seed & ((1 << 64) - 1)) << 64) | (int(step) & ((1 << 64) - 1))


def keys(seed: int) -> Iterator[int]:
    """An endless stream of host keys for a run: ``step_key(seed, 0), step_key(seed, 1), ...``.

    Example:
        >>> k = keys(7)
        >>> next(k) == step_key(7, 0), next(k) == step_key(7, 1)
        (True, True)
    """
    step = 0
    while True:
        yield step_key(seed, step)
        step += 1


def check_reward(reward: Any, *, multi_objective: bool, algorithm: str) -> Reward:
    """Returns the reward as a float (or tuple of floats) after checking it.

    Raises:
        ValueError: for NaN or infinite values (flows record such trials as failed instead).
        TypeError: for a vector reward to a single-objective algorithm, or a non-number.

    Example:
        >>> check_reward(1, multi_objective=False, algorithm="random")
        1.0
        >>> check_reward(float("nan"), multi_objective=False, algorithm="random")
        Traceback (most recent call last):
        ...
        ValueError: random: reward must be finite, got nan; ...
    """
    if isinstance(reward, Sequence | np.ndarray) and not isinstance(reward, str):
        values = np.asarray(reward, dtype=np.float64).ravel()
        if not multi_objective:
            if values.size == 1:
                return check_reward(float(values[0]), multi_objective=False, algorithm=algorithm)
            raise TypeError(
                f"{algorithm}: got a vector reward {tuple(values.tolist())!r} but this algorithm "
                f"optimizes one objective; pass a float, or use a multi-objective algorithm "
                f"such as pl.algorithms.nsga2()"
            )
        if not np.all(np.isfinite(values)):
            raise ValueError(
                f"{algorithm}: reward must be finite, got {tuple(values.tolist())!r}; record "
                f"failed trials in the flow instead of feeding them back"
            )
        return tuple(values.tolist())
    if isinstance(reward, str | bytes | bool):
        # float("1.5") and float(True) work, but such a reward is almost always a bug upstream.
        raise TypeError(f"{algorithm}: reward must be a number, got {reward!r}")
    try:
        value = float(reward)
    except (TypeError, ValueError):
        raise TypeError(f"{algorithm}: reward must be a number, got {reward!r}") from None
    if not math.isfinite(value):
        raise ValueError(
            f"{algorithm}: reward must be finite, got {value!r}; record failed trials in the "
            f"flow instead of feeding them back"
        )
    return (value,) if multi_objective else value


def propose_many(algo: Algorithm, state: Any, key: Key, n: int) -> tuple[list[DNA], Any]:
    """Proposes ``n`` DNAs in a row (keys derived from ``key``); returns them and the state.

    Example:
        >>> import pliant as pl
        >>> from pliant.spaces.dna import Slot, Space
        >>> algo = pl.algorithms.random()
        >>> dnas, _ = propose_many(algo, algo.init(Space([Slot("a", "choice", 3)]), 0), 5, 4)
        >>> len(dnas)
        4
    """
    base = key_to_int(key)
    out = []
    for i in range(n):
        dna, state = algo.propose(state, step_key(base, i))
        out.append(dna)
    return out, state


# ----------------------------------------------------------------------------------------------
# State serialization: JSON, restored against a template state of the same algorithm.


def state_to_json(state: Any) -> str:
    """Writes an algorithm state (NamedTuples, tuples, dicts, arrays, numbers) as JSON.

    Spaces are written by fingerprint and checked on restore; arrays by dtype, shape and their
    raw bytes in base64 (exact); scalar floats via ``float.hex``. No pickle.

    Example:
        >>> import pliant as pl
        >>> from pliant.spaces.dna import Slot, Space
        >>> algo = pl.algorithms.regularized_evolution(population_size=4, tournament_size=2)
        >>> space = Space([Slot("a", "choice", 3)])
        >>> dna, state = algo.propose(algo.init(space, 0), 1)
        >>> state = algo.feedback(state, dna, 0.5)
        >>> again = state_from_json(state_to_json(state), algo.init(space, 0))
        >>> bool((again.indices == state.indices).all()), again.size, float(again.rewards[0])
        (True, 1, 0.5)
    """
    return json.dumps(_encode(state))


def _encode(x: Any) -> Any:
    if isinstance(x, Space):
        return {"__space__": x.fingerprint}
    if isinstance(x, DNA):
        return {
            "__dna__": x.space.fingerprint,
            "arrays": [_encode(a) for a in (x.index, x.value, x.active)],
        }
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return {"__tuple__": [_encode(v) for v in x], "fields": list(x._fields)}
    if isinstance(x, tuple | list):
        return {"__tuple__": [_encode(v) for v in x]}
    if isinstance(x, dict):
        return {"__dict__": [[_encode(k), _encode(v)] for k, v in x.items()]}
    if isinstance(x, frozenset | set):
        return {"__set__": sorted((_encode(v) for v in x), key=repr)}
    if x is None or isinstance(x, bool | str):
        return x
    if isinstance(x, int | np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        return {"__float__": float(x).hex()}
    if isinstance(x, np.ndarray) or hasattr(x, "__array__"):
        a = np.asarray(x)
        if a.dtype.kind not in "biuf":
            raise TypeError(f"state_to_json(): cannot write an array of dtype {a.dtype}")
        # Raw little-endian bytes in base64: exact for floats, and fast for large populations.
        le = a.astype(a.dtype.newbyteorder("<"), copy=False)
        raw = base64.b64encode(np.ascontiguousarray(le).tobytes()).decode("ascii")
        return {"__array__": le.dtype.str, "shape": list(a.shape), "b64": raw}
    raise TypeError(f"state_to_json(): cannot write {type(x).__name__} value {x!r}")


def state_from_json(text: str, like: Any) -> Any:
    """Restores a state written by :func:`state_to_json`, shaped like ``like``.

    ``like`` is a fresh state of the same algorithm on the same space (e.g. ``algo.init(space,
    0)``); it supplies the Space and the NamedTuple types, and the JSON must match its structure.

    Raises:
        ValueError: for malformed JSON, a different space, or a structure that does not match.

    Example:
        >>> from pliant.spaces.dna import Slot, Space
        >>> state_from_json('{"__float__": "0x1.8p+1"}', 0.0)
        3.0
    """
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"state_from_json(): malformed JSON: {e}") from None
    return _decode(doc, like, "state")


def _decode(doc: Any, like: Any, where: str) -> Any:
    def fail(msg: str) -> ValueError:
        return ValueError(f"state_from_json(): at {where}: {msg}")

    if isinstance(like, Space):
        if not isinstance(doc, dict) or doc.get("__space__") != like.fingerprint:
            raise fail(f"the state belongs to another space ({doc!r} vs {like.fingerprint!r})")
        return like
    if isinstance(like, DNA):
        if not isinstance(doc, dict) or doc.get("__dna__") != like.space.fingerprint:
            raise fail("the DNA belongs to another space")
        arrays = doc.get("arrays")
        if not isinstance(arrays, list) or len(arrays) != 3:
            raise fail("malformed DNA")
        parts = [
            _decode(a, b, where) for a, b in zip(arrays, (like.index, like.value, like.active))
        ]
        return DNA(like.space, *parts)
    if isinstance(like, frozenset | set):
        if not isinstance(doc, dict) or not isinstance(doc.get("__set__"), list):
            raise fail(f"expected a set, got {str(doc)[:60]}")
        return type(like)(_plain(v) for v in doc["__set__"])
    if isinstance(like, tuple | list):
        if not isinstance(doc, dict) or not isinstance(doc.get("__tuple__"), list):
            raise fail(f"expected a tuple, got {str(doc)[:60]}")
        items = doc["__tuple__"]
        if hasattr(like, "_fields"):
            if doc.get("fields") != list(like._fields) or len(items) != len(like):
                raise fail(f"fields {doc.get('fields')} do not match {list(like._fields)}")
            return type(like)(
                *(_decode(v, t, f"{where}.{f}") for v, t, f in zip(items, like, like._fields))
            )
        if len(items) != len(like):
            # Variable-length containers (histories) restore against their first element.
            if not like:  # an empty template (a history): plain values, no arrays inside
                return type(like)(_plain(v) for v in items)
            out = [_decode(v, like[0], f"{where}[{i}]") for i, v in enumerate(items)]
        else:
            out = [_decode(v, t, f"{where}[{i}]") for i, (v, t) in enumerate(zip(items, like))]
        return type(like)(out) if isinstance(like, list) else tuple(out)
    if isinstance(like, dict):
        if not isinstance(doc, dict) or not isinstance(doc.get("__dict__"), list):
            raise fail("expected a dict")
        template = next(iter(like.values()), None)
        return {
            _plain(k): _decode(v, like.get(_plain(k), template), f"{where}[{k!r}]")
            for k, v in doc["__dict__"]
        }
    if isinstance(like, np.ndarray) or (
        hasattr(like, "__array__") and not isinstance(like, int | float | bool)
    ):
        if not isinstance(doc, dict) or "__array__" not in doc:
            raise fail(f"expected an array, got {str(doc)[:60]}")
        try:
            dtype = np.dtype(doc["__array__"])
            if dtype.kind not in "biuf":
                raise TypeError(dtype)
            shape = [int(n) for n in doc["shape"]]
            raw = base64.b64decode(doc["b64"], validate=True)
            a = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
        except (KeyError, TypeError, ValueError) as e:
            raise fail(f"malformed array ({e})") from None
        t = tuple(np.shape(like))
        # An empty template is a buffer that grows (a history): any shape of that rank restores.
        growing = len(t) == a.ndim and 0 in t
        if a.shape != t and not growing:
            raise fail(
                f"an array of shape {a.shape} where this algorithm keeps {t}: the "
                f"state was saved with other settings (e.g. another population size)"
            )
        if not isinstance(like, np.ndarray):
            import jax.numpy as jnp

            return jnp.asarray(a)
        return a
    return _plain(doc)


def _plain(doc: Any) -> Any:
    if isinstance(doc, dict) and "__float__" in doc:
        return float.fromhex(doc["__float__"])
    if isinstance(doc, dict) and "__tuple__" in doc:
        return tuple(_plain(v) for v in doc["__tuple__"])
    return doc


def register_space_pytree() -> None:
    """Registers Space as a leafless JAX pytree, so states holding it pass through ``jax.jit``.

    Example:
        >>> register_space_pytree()
    """
    register_pytree()
    if _SPACE_REGISTERED[0]:
        return
    import jax

    with contextlib.suppress(ValueError):  # already registered by another path
        jax.tree_util.register_pytree_node(Space, lambda s: ((), s), lambda s, _: s)
    _SPACE_REGISTERED[0] = True


_SPACE_REGISTERED = [False]


def uniform_proposal(space: Space, key: Key) -> DNA:
    """A uniformly random DNA: NumPy for host keys, JAX (traceable) for JAX keys."""
    from pliant.spaces.sampling import random_dna

    if isinstance(key, int | np.integer | np.random.Generator):
        return random_dna(space, host_rng(key))
    return random_dna(space, key)


def best_of(rewards: Sequence[float]) -> int:
    """Index of the largest reward (first on ties)."""
    return int(np.argmax(np.asarray(rewards)))


Callback = Callable[..., Any]
