"""Fuzzing deserialization: symbolic ``from_json`` / ``load``, ``Space.from_json``, DNA JSON and
lists, and store JSON import. Malformed input raises only the documented exceptions, never runs
code (a sentinel file that a malicious payload would create stays absent), and deeply nested or
huge inputs end quickly, in bounded memory.

``PLIANT_FAULTS`` (the long form of this suite) runs ten times as many cases.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pliant as pl
from pliant.flows.store import StoreError, open_store
from pliant.spaces.dna import Space
from pliant.symbolic import from_json, load, to_json

pytestmark = pytest.mark.reliability

SCALE = 10 if os.environ.get("PLIANT_FAULTS") else 1
SENTINEL = os.path.join(tempfile.gettempdir(), f"pliant-fuzz-sentinel-{os.getpid()}")
CASES: dict[str, int] = {}

# Payloads that would create the sentinel if loading ever called what they name.
_TOUCH = f"open({SENTINEL!r}, 'w').close()"
PAYLOADS = [
    {"__call__": "os:system", "args": {"command": f"touch {SENTINEL}"}},
    {"__call__": "posix:system", "args": {"command": f"touch {SENTINEL}"}},
    {"__call__": "subprocess:run", "args": {"args": ["touch", SENTINEL]}},
    {"__call__": "builtins:exec", "args": {"source": _TOUCH}},
    {"__call__": "builtins:eval", "args": {"source": _TOUCH}},
    {"__call__": "pathlib:Path.touch", "args": {"self": SENTINEL}},
    {"__ref__": "os:system", "symbolic": True},
    {"__enum__": "os:system", "name": "x"},
]
KEYS = ["__call__", "args", "__tuple__", "__dict__", "__float__", "__ref__", "symbolic"]
KEYS += ["__enum__", "name", "__pliant__", "value", "space", "dna", "slots", "groups"]
STRINGS = ["os:system", "builtins:eval", "nan", "inf", "choice", "float", "int", "log", SENTINEL]

leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from(STRINGS)
    | st.sampled_from(PAYLOADS)
)
value = st.recursive(
    leaf,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=6) | st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=24,
)
FUZZ = settings(
    max_examples=200 * SCALE,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)

SPACE = pl.space(
    {
        "a": pl.oneof([1, {"x": pl.intv(0, 3)}]),
        "m": pl.manyof(2, ["p", "q", "r"]),
        "f": pl.floatv(0.1, 10.0, scale="log"),
    }
)


@pytest.fixture(autouse=True, scope="module")
def _no_sentinel():
    assert not os.path.exists(SENTINEL)
    yield
    assert not os.path.exists(SENTINEL), "a fuzzed payload executed code"
    print("\nfuzz cases run: " + ", ".join(f"{k} {v}" for k, v in CASES.items()))


def _count(name: str) -> None:
    CASES[name] = CASES.get(name, 0) + 1


def _draw(data):
    # A copy: the payload dicts are shared, and mutating them would change later examples.
    return json.loads(json.dumps(data.draw(value)))


def _mutate(data, doc):
    """Replaces a few values anywhere in a JSON document with fuzzed ones."""
    for _ in range(data.draw(st.integers(1, 3))):
        node, path = doc, []
        while isinstance(node, dict | list) and node and data.draw(st.booleans()):
            key = data.draw(
                st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node)))
            )
            path.append((node, key))
            node = node[key]
        if not path:
            return _draw(data)
        parent, key = path[-1]
        parent[key] = _draw(data)
    return doc


@FUZZ
@given(st.data())
def test_symbolic_from_json(data):
    valid = json.loads(to_json({"a": [1, (2.5, None)], "b": {"__x": float("nan")}}))
    kind = data.draw(st.sampled_from(["mutated", "wrapped", "text"]))
    if kind == "mutated":
        text = json.dumps(_mutate(data, valid))
    elif kind == "wrapped":
        text = json.dumps({"__pliant__": 1, "value": data.draw(value)})
    else:
        text = data.draw(st.text(max_size=40))
    _count("symbolic.from_json")
    with contextlib.suppress(ValueError):
        from_json(text)


@FUZZ
@given(
    st.binary(max_size=200)
    | value.map(lambda v: json.dumps({"__pliant__": 1, "value": v}).encode())
)
def test_symbolic_load(blob):
    _count("symbolic.load")
    with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as f:
        f.write(blob)
    try:
        load(f.name)
    except ValueError:  # UnicodeDecodeError is one
        pass
    finally:
        os.unlink(f.name)


@FUZZ
@given(st.data())
def test_space_from_json(data):
    doc = _mutate(data, json.loads(SPACE.to_json()))
    _count("Space.from_json")
    try:
        space = Space.from_json(json.dumps(doc))
    except ValueError:
        return
    space.to_json()  # what loads is a usable space


@settings(FUZZ, max_examples=100 * SCALE)
@given(st.lists(value, max_size=6), st.booleans())
def test_dna_from_json_and_list(entries, right_space):
    fingerprint = SPACE.fingerprint if right_space else "0" * 16
    _count("DNA JSON")
    try:
        dna = SPACE.from_json_dna(json.dumps({"space": fingerprint, "dna": entries}))
    except ValueError:
        pass
    else:
        SPACE.validate(dna)
    _count("DNA list")
    with contextlib.suppress(TypeError, ValueError):
        SPACE.from_list(entries)


def _export(tmp: str) -> str:
    path = os.path.join(tmp, "source.db")
    pl.search(
        {"a": pl.oneof([1, 2, 3]), "f": pl.floatv(0.0, 1.0)},
        lambda v: v["a"] + v["f"],
        pl.algorithms.random(),
        3,
        store=path,
    )
    return open_store(path, readonly=True).export_json()


EXPORT = None


@settings(FUZZ, max_examples=100 * SCALE)
@given(data=st.data())
def test_store_import_json(tmp_path_factory, data):
    global EXPORT
    if EXPORT is None:
        EXPORT = _export(str(tmp_path_factory.mktemp("imports")))
    doc = _mutate(data, json.loads(EXPORT))
    # One target store for all cases: once a study was imported, importing it again is the
    # documented StoreError (the checks of the document run before that one).
    store = open_store(str(tmp_path_factory.getbasetemp() / "import-target.db"))
    _count("store import_json")
    try:
        store.import_json(json.dumps(doc))
    except (ValueError, StoreError):
        return
    finally:
        store.close()


# -- deep and huge inputs ------------------------------------------------------------------
DEPTH = 100_000


def _bounded(call, *, seconds=5.0, megabytes=64):
    """Runs ``call`` twice (timed, then under tracemalloc, which slows it down); returns the
    exception it raised, after checking its time and peak memory."""
    start = time.perf_counter()
    try:
        call()
        error = None
    except Exception as e:
        error = e
    elapsed = time.perf_counter() - start
    tracemalloc.start()
    with contextlib.suppress(Exception):
        call()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.1f} s"
    assert peak < megabytes, f"peak memory {peak:.0f} MiB"
    return error


def _store_import(text):
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(os.path.join(tmp, "deep.db"))
        try:
            store.import_json(text)
        finally:
            store.close()


TARGETS = {
    "symbolic.from_json": from_json,
    "Space.from_json": Space.from_json,
    "from_json_dna": SPACE.from_json_dna,
    "store.import_json": _store_import,
}
NESTINGS = {
    "arrays": "[" * DEPTH + "]" * DEPTH,
    "objects": '{"a":' * DEPTH + "1" + "}" * DEPTH,
    "inside a valid document": '{"__pliant__": 1, "value": ' + "[" * DEPTH + "]" * DEPTH + "}",
    "within json's reach": '{"__pliant__": 1, "value": ' + "[" * 600 + "]" * 600 + "}",
    "unclosed": "[" * DEPTH,
}


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("nesting", sorted(NESTINGS))
def test_deep_nesting_is_a_clear_error(target, nesting):
    _count("deep nesting")
    error = _bounded(lambda: TARGETS[target](NESTINGS[nesting]))
    assert isinstance(error, ValueError), repr(error)
    assert str(error)  # a message, not a bare exception
    if nesting != "within json's reach":
        assert "nested too deeply" in str(error), str(error)


def test_huge_inputs_take_bounded_time_and_memory():
    _count("huge")
    big_list = '{"__pliant__": 1, "value": [' + ",".join(["1"] * 20_000) + "]}"
    assert _bounded(lambda: from_json(big_list), megabytes=200) is None
    long_string = json.dumps({"space": SPACE.fingerprint, "dna": ["x" * 1_000_000]})
    assert isinstance(_bounded(lambda: SPACE.from_json_dna(long_string), megabytes=100), ValueError)
    many_slots = json.dumps({"format": "x", "slots": [{}] * 200_000})
    assert isinstance(_bounded(lambda: Space.from_json(many_slots), megabytes=300), ValueError)
    assert sys.getrecursionlimit() >= 1000  # nothing above lowered it for us
