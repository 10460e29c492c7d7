"""Disk full, a store that turns read-only, and a store whose directory vanishes mid-search:
a clear StoreError, the search stops, and the store stays valid and resumes to the same result
as an uninterrupted run."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3

import pytest

import pliant as pl
from pliant.flows.store import StoreError, open_store

pytestmark = pytest.mark.reliability

SPACE = {"a": pl.oneof(range(6)), "c": pl.intv(0, 9), "d": pl.floatv(0.0, 1.0)}
BUDGET = 12


def _score(v):
    return v["a"] * 10 + v["c"] - v["d"]


def _search(store, evaluate=None):
    algorithm = pl.algorithms.regularized_evolution(population_size=4, tournament_size=2)
    evaluate = evaluate or (lambda v: {"reward": _score(v), "blob": "x" * 3000})
    return pl.search(SPACE, evaluate, algorithm, BUDGET, store=store, seed=5)


def _summary(path):
    store = open_store(path, readonly=True)
    try:
        records = store.trials("default")
        return [(r.id, r.dna, r.status, r.reward) for r in records], store.study_info("default")[
            "state"
        ]
    finally:
        store.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("reference") / "reference.db")
    _search(path)
    return _summary(path)


def _valid_and_resumes(path, reference):
    """The interrupted store passes SQLite's integrity check, holds whole trials only, and the
    same call resumes it to the uninterrupted result."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    trials, _ = _summary(path)
    assert [t[0] for t in trials] == list(range(len(trials)))
    assert 0 < len(trials) < BUDGET  # it stopped mid-search
    assert all(t[2] == "complete" for t in trials[:-1]) and trials[-1][2] in ("complete", "running")
    _search(path)
    assert _summary(path) == reference


def test_disk_full(tmp_path, reference):
    path = str(tmp_path / "full.db")
    store = open_store(path)
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    # SQLite's own disk-full path (SQLITE_FULL): the file may not grow past a few pages.
    store._conn.execute(f"PRAGMA max_page_count={pages + 6}")
    with pytest.raises(StoreError, match=r"SQLITE_FULL.*free disk space"):
        _search(store)
    store.close()
    _valid_and_resumes(path, reference)


class _NoSpaceOnCommit:
    """A connection whose writes fail with OSError(ENOSPC) after ``allowed`` commits."""

    def __init__(self, conn, allowed):
        self.conn, self.allowed = conn, allowed

    def execute(self, sql, *args):
        if sql == "COMMIT":
            if self.allowed == 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.allowed -= 1
        return self.conn.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self.conn, name)


def test_write_raising_enospc(tmp_path, reference):
    path = str(tmp_path / "enospc.db")
    store = open_store(path)
    store._conn = _NoSpaceOnCommit(store._conn, allowed=9)
    with pytest.raises(StoreError, match="ENOSPC, disk full"):
        _search(store)
    store._conn.conn.close()
    _valid_and_resumes(path, reference)


def test_store_turning_read_only_mid_search(tmp_path, reference):
    path = str(tmp_path / "readonly.db")
    store = open_store(path)
    calls = []

    def evaluate(v):
        calls.append(v)
        if len(calls) == 5:  # the file becomes read-only while trial 4 runs
            store._conn.execute("PRAGMA query_only=ON")
        return {"reward": _score(v)}

    with pytest.raises(StoreError, match="SQLITE_READONLY"):
        _search(store, evaluate)
    assert len(calls) == 5  # stopped at the first failed write
    store.close()
    _valid_and_resumes(path, reference)


def test_read_only_store_is_refused_before_anything_runs(tmp_path, reference):
    path = str(tmp_path / "ro.db")
    _search(path)
    before = _summary(path)
    calls = []
    with pytest.raises(StoreError, match="read-only"):
        _search(open_store(path, readonly=True), lambda v: calls.append(v) or 1.0)
    assert calls == [] and _summary(path) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through file modes")
def test_read_only_file(tmp_path, reference):
    path = str(tmp_path / "mode.db")
    store = open_store(path)
    store.close()
    os.chmod(path, 0o444)
    with pytest.raises(StoreError):
        _search(path)


def test_store_directory_removed_mid_search(tmp_path, reference):
    directory = tmp_path / "vanishing"
    directory.mkdir()
    path = str(directory / "trials.db")
    calls = []

    def evaluate(v):
        calls.append(v)
        if len(calls) == 5:
            shutil.rmtree(directory)  # SQLite would go on writing into the deleted file
        return {"reward": _score(v)}

    with pytest.raises(StoreError, match="removed or replaced"):
        _search(path, evaluate)
    assert len(calls) == 5
    # The same call on a fresh directory starts over and ends like the reference.
    directory.mkdir()
    _search(path)
    assert _summary(path) == reference
