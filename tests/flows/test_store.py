"""The SQLite trial store: what it records, files it refuses, export and import."""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3

import numpy as np
import pytest

import pliant as pl
from pliant.flows.store import SCHEMA_VERSION, Store, StoreError, open_store

SPACE_VALUE = {"w": pl.oneof([16, 32, 64]), "lr": pl.floatv(0.001, 0.1, scale="log")}
SPACE = pl.space(SPACE_VALUE)


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def fresh(tmp_path, name="s.db"):
    store = open_store(str(tmp_path / name))
    store.create_study("default", SPACE, {"algorithm": "random"})
    return store


def test_records_a_trial_through_its_life(tmp_path):
    store = fresh(tmp_path)
    dna = pl.random_dna(SPACE, 0)
    store.add_trial("default", 0, dna, key=123, state='{"s": 1}', link="outer/0")
    (running,) = store.trials("default")
    assert running.status == "running" and running.attempts == 1 and running.key == 123
    assert running.dna == dna.to_list() and running.decisions == dna.to_dict()
    assert running.link == "outer/0" and running.finished_at is None
    assert store.study_info("default")["num_proposed"] == 1
    assert store.study_info("default")["state"] == '{"s": 1}'
    store.finish_trial("default", 0, "complete", reward=0.5, metrics={"acc": 0.5}, state="{}")
    (done,) = store.trials()
    assert (done.status, done.reward, done.metrics) == ("complete", 0.5, {"acc": 0.5})
    assert done.finished_at >= done.proposed_at
    assert store.study_info("default")["state"] == "{}"
    assert list(store.iter_trials("default")) == [done]
    assert store.studies() == ["default"]
    assert store.study_info("other") is None


def test_interrupted_trials_are_marked_and_restarted(tmp_path):
    store = fresh(tmp_path)
    for i in range(3):
        store.add_trial("default", i, pl.random_dna(SPACE, i), key=i, state=None)
    store.finish_trial("default", 1, "failed", error="boom")
    assert store.mark_interrupted("default") == [0, 2]
    assert [t.status for t in store.trials("default")] == ["interrupted", "failed", "interrupted"]
    store.restart_trial("default", 2)
    assert store.trials("default")[2].status == "running"
    assert store.trials("default")[2].attempts == 2
    # Trials marked by an earlier resume, and never re-run, are still reported.
    assert store.mark_interrupted("default") == [0, 2]


def test_metrics_are_json_whatever_evaluate_returns(tmp_path):
    """NumPy scalars and arrays, NaN/inf and odd objects are stored; nothing is pickled."""
    store = fresh(tmp_path)
    store.add_trial("default", 0, pl.random_dna(SPACE, 0), key=0, state=None)
    metrics = {
        "f32": np.float32(0.5),
        "i64": np.int64(3),
        "arr": np.arange(3),
        "nan": math.nan,
        "inf": -math.inf,
        "nested": {"x": [np.float64(1.5), math.inf]},
        "obj": object,
    }
    store.finish_trial("default", 0, "failed", metrics=metrics, error="NaN")
    got = store.trials("default")[0].metrics
    assert got["f32"] == 0.5 and got["i64"] == 3 and got["arr"] == [0, 1, 2]
    assert (got["nan"], got["inf"]) == ("nan", "-inf")
    assert got["nested"] == {"x": [1.5, "inf"]} and got["obj"] == repr(object)
    raw = sqlite3.connect(store.path).execute("SELECT metrics FROM trials").fetchone()[0]
    json.loads(raw)  # valid JSON, no NaN tokens


def test_search_stores_numpy_metrics(tmp_path):
    path = str(tmp_path / "s.db")
    evaluate = lambda v: {"reward": np.float32(v["w"]), "params": np.int64(7)}
    pl.search(SPACE_VALUE, evaluate, pl.algorithms.random(), budget=3, store=path)
    records = pl.load_result(path).records
    assert [r.status for r in records] == ["complete"] * 3
    assert all(r.metrics["params"] == 7 and r.reward == r.metrics["reward"] for r in records)


def test_finish_trial_errors(tmp_path):
    store = fresh(tmp_path)
    with pytest.raises(ValueError, match="unknown trial status 'done'"):
        store.finish_trial("default", 0, "done")
    with pytest.raises(KeyError, match="no trial 5 in study 'default'"):
        store.finish_trial("default", 5, "complete", reward=1.0)


def test_create_study_with_another_space_is_refused(tmp_path):
    store = fresh(tmp_path)
    store.create_study("default", SPACE, {})  # the same space: fine, nothing changes
    other = pl.space({"w": pl.oneof([16, 32])})
    before = store.export_json()
    with pytest.raises(StoreError, match="was created with another search space"):
        store.create_study("default", other, {})
    assert store.export_json() == before
    store.create_study("second", other, {})  # another study name is fine
    assert store.studies() == ["default", "second"]


def test_search_with_another_space_or_settings_is_refused(tmp_path):
    path = str(tmp_path / "s.db")
    pl.search(SPACE_VALUE, lambda v: v["w"], pl.algorithms.random(), budget=2, store=path)
    before = digest(path)
    other = {"w": pl.oneof([16, 32, 64, 128])}
    with pytest.raises(StoreError, match="created with another search space"):
        pl.search(other, lambda v: v["w"], pl.algorithms.random(), budget=4, store=path)
    with pytest.raises(StoreError, match=r"was run with seed=0, now 1"):
        pl.search(SPACE_VALUE, lambda v: 1.0, pl.algorithms.random(), 4, store=path, seed=1)
    with pytest.raises(StoreError, match="was run with algorithm='random'"):
        pl.search(SPACE_VALUE, lambda v: 1.0, pl.algorithms.regularized_evolution(), 4, store=path)
    with pytest.raises(StoreError, match="was run with objectives="):
        pl.search(
            SPACE_VALUE, lambda v: 1.0, pl.algorithms.random(), 4, store=path, objectives="acc"
        )
    assert len(pl.load_result(path).records) == 2
    assert digest(path) == before


def test_unreadable_algorithm_state_is_a_store_error(tmp_path):
    path = str(tmp_path / "s.db")
    pl.search(SPACE_VALUE, lambda v: v["w"], pl.algorithms.random(), budget=2, store=path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE studies SET state='{not json'")
    with pytest.raises(StoreError, match="cannot restore its algorithm state"):
        pl.search(SPACE_VALUE, lambda v: v["w"], pl.algorithms.random(), budget=4, store=path)


# -- files that are not ours ---------------------------------------------------------------


def test_text_file_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 20)
    before = digest(path)
    with pytest.raises(StoreError, match="is not an SQLite database"):
        open_store(str(path))
    with pytest.raises(StoreError, match="is not an SQLite database"):
        pl.search(SPACE_VALUE, lambda v: 1.0, pl.algorithms.random(), 2, store=str(path))
    with pytest.raises(StoreError, match="is not an SQLite database"):
        pl.load_result(str(path))
    assert digest(path) == before


def test_foreign_sqlite_database_is_refused_and_left_untouched(tmp_path):
    path = str(tmp_path / "app.db")
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
        conn.execute("INSERT INTO users VALUES ('ada')")
    conn.close()
    before = digest(path)
    for readonly in (False, True):
        with pytest.raises(StoreError, match="SQLite database of another program"):
            open_store(path, readonly=readonly)
    with pytest.raises(StoreError, match=r"another program \(tables \['users'\]\)"):
        pl.search(SPACE_VALUE, lambda v: 1.0, pl.algorithms.random(), 2, store=path)
    assert digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]  # no -wal, no -shm


def test_corrupt_sqlite_file_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "broken.db"
    path.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 40)
    before = digest(path)
    with pytest.raises(StoreError, match="is not a usable pliant store"):
        open_store(str(path))
    assert digest(path) == before


def test_truncated_store_is_refused(tmp_path):
    path = str(tmp_path / "s.db")
    pl.search(SPACE_VALUE, lambda v: v["w"], pl.algorithms.random(), budget=3, store=path)
    with open(path, "rb") as f:
        head = f.read(100)
    cut = tmp_path / "cut.db"
    cut.write_bytes(head + b"\xff" * 3000)
    with pytest.raises(StoreError, match="not a usable pliant store"):
        open_store(str(cut))


def test_directory_path_is_refused(tmp_path):
    with pytest.raises(StoreError, match="cannot read store"):
        open_store(str(tmp_path))


def test_missing_directory_is_a_store_error(tmp_path):
    with pytest.raises(StoreError, match="not a usable pliant store"):
        open_store(str(tmp_path / "no" / "such" / "dir.db"))


def test_read_only_opens(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_store(str(tmp_path / "missing.db"), readonly=True)
    empty = tmp_path / "empty.db"
    with sqlite3.connect(str(empty)) as conn:
        conn.execute("PRAGMA user_version=0")
    conn.close()
    with pytest.raises(StoreError, match="is an empty database, not a pliant store"):
        open_store(str(empty), readonly=True)
    fresh(tmp_path, "ro.db").close()
    store = open_store(str(tmp_path / "ro.db"), readonly=True)
    with pytest.raises(StoreError, match="was opened read-only"):
        store.create_study("x", SPACE, {})
    with pytest.raises(StoreError, match="was opened read-only"):
        store.add_trial("default", 0, pl.random_dna(SPACE, 0), key=0, state=None)
    with pytest.raises(StoreError, match="was opened read-only"):
        store.import_json(store.export_json())


def test_empty_file_becomes_a_store(tmp_path):
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    with open_store(str(path)) as store:
        assert store.studies() == []


def test_schema_version_mismatch_is_refused_and_left_untouched(tmp_path):
    path = str(tmp_path / "old.db")
    fresh(tmp_path, "old.db").close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value='999' WHERE key='schema_version'")
    conn.close()
    before = digest(path)
    match = f"has store schema version '999'; this pliant reads version {SCHEMA_VERSION}"
    with pytest.raises(StoreError, match=match):
        open_store(path)
    with pytest.raises(StoreError, match="schema version"):
        pl.load_result(path)
    assert digest(path) == before


def test_store_object_can_be_passed_instead_of_a_path(tmp_path):
    with open_store(str(tmp_path / "s.db")) as store:
        result = pl.search(SPACE_VALUE, lambda v: v["w"], pl.algorithms.random(), 3, store=store)
        assert result.store_path == store.path
        assert len(pl.load_result(store).records) == 3
        assert isinstance(store, Store) and len(store.trials("default")) == 3


def test_store_path_may_be_a_pathlib_path(tmp_path):
    path = tmp_path / "s.db"  # a pathlib.Path, as pytest and most code hold paths
    result = pl.search(SPACE_VALUE, lambda v: v["w"], pl.algorithms.random(), 3, store=path)
    assert result.store_path == str(path)
    assert len(pl.load_result(path).records) == 3
    for example, feedback in pl.sample(SPACE_VALUE, pl.algorithms.random(), 4, store=path):
        feedback(example["lr"])
    assert len(open_store(path, readonly=True).trials("default")) == 4


def test_load_result_of_a_missing_study(tmp_path):
    path = str(tmp_path / "s.db")
    pl.search(SPACE_VALUE, lambda v: v["w"], pl.algorithms.random(), 1, store=path)
    with pytest.raises(KeyError, match=r"has no study 'other'; it has \['default'\]"):
        pl.load_result(path, "other")


# -- export / import -----------------------------------------------------------------------


def populated(tmp_path):
    path = str(tmp_path / "src.db")

    def evaluate(v):
        if v["w"] == 64:
            raise RuntimeError("too wide")
        return {"reward": v["lr"], "nan_metric": math.nan}

    algo = pl.algorithms.regularized_evolution(population_size=3, tournament_size=2)
    pl.search(SPACE_VALUE, evaluate, algo, budget=8, store=path, seed=4)
    pl.search(SPACE_VALUE, evaluate, pl.algorithms.random(), budget=3, store=path, study="b")
    return path


def test_export_import_round_trip(tmp_path):
    src = open_store(populated(tmp_path))
    text = src.export_json()
    doc = json.loads(text)
    assert doc["pliant_store"] == SCHEMA_VERSION
    assert [s["name"] for s in doc["studies"]] == ["default", "b"]
    dst = open_store(str(tmp_path / "dst.db"))
    dst.import_json(text)
    assert dst.export_json() == text
    assert dst.trials() == src.trials()
    assert {t.status for t in dst.trials("default")} >= {"complete", "failed"}
    # The imported study resumes like the original: more trials, same algorithm state.
    more = pl.search(
        SPACE_VALUE,
        lambda v: v["lr"],
        pl.algorithms.regularized_evolution(population_size=3, tournament_size=2),
        budget=10,
        store=dst,
        seed=4,
    )
    assert [r.id for r in more.records] == list(range(10))


def test_import_refuses_an_existing_study(tmp_path):
    src = open_store(populated(tmp_path))
    before = src.export_json()
    with pytest.raises(StoreError, match=r"studies \['default', 'b'\] already exist"):
        src.import_json(before)
    assert src.export_json() == before


def _edit(text, fn):
    doc = json.loads(text)
    fn(doc)
    return json.dumps(doc)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d.update(pliant_store=99), "unsupported export version 99"),
        (lambda d: d.pop("studies"), "malformed store export: KeyError"),
        (lambda d: d["studies"][0].update(fingerprint="abc"), "fingerprint does not match"),
        (lambda d: d["studies"][0]["trials"][0].update(status="weird"), "unknown status 'weird'"),
        (lambda d: d["studies"][0]["trials"][0].pop("dna"), "malformed store export"),
        (lambda d: d["studies"][0]["trials"][0].update(dna=[7, 0.5]), "index 7 is out of range"),
        (lambda d: d["studies"][0]["trials"][0].update(id="x"), "id must be int, got 'x'"),
    ],
)
def test_malformed_import_is_refused_and_writes_nothing(tmp_path, edit, match):
    text = open_store(populated(tmp_path)).export_json()
    dst = open_store(str(tmp_path / "dst.db"))
    with pytest.raises(ValueError, match=match):
        dst.import_json(_edit(text, edit))
    assert dst.studies() == [] and dst.trials() == []


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"pliant_store": 1}'])
def test_import_of_something_else_is_refused(tmp_path, text):
    dst = open_store(str(tmp_path / "dst.db"))
    with pytest.raises(ValueError, match=r"import_json\(\): malformed|unsupported export"):
        dst.import_json(text)
    assert dst.studies() == []


def test_two_writers_of_one_study_get_a_clear_error(tmp_path):
    import pliant as pl
    from pliant.flows.store import StoreError, open_store

    path = str(tmp_path / "two.db")
    space = pl.space({"w": pl.oneof([1, 2])})
    first, second = open_store(path), open_store(path)
    for store in (first, second):
        store.create_study("s", space, {"algorithm": "random"})
    first.add_trial("s", 0, pl.random_dna(space, 0), key=0, state=None)
    with pytest.raises(StoreError, match="another process is searching the same study"):
        second.add_trial("s", 0, pl.random_dna(space, 1), key=1, state=None)
    assert [t.dna for t in first.trials("s")] == [pl.random_dna(space, 0).to_list()]
