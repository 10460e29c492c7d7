"""The trial store: every proposal, trial, metric and algorithm state, in SQLite, as it happens.

One file holds any number of *studies* (a name such as ``"default"`` or ``"outer/17"``). Each
study records its space (JSON and fingerprint) and its trials; every change of a trial is one
short transaction that also writes the algorithm's state, so the store always holds a state
that matches its trials. The database runs in WAL mode: one process writes, any number read a
consistent snapshot. Nothing is pickled: DNA, metrics and states are JSON.

Trial statuses: ``running`` (proposed and being evaluated), ``complete`` (a reward was fed
back), ``failed`` (the evaluation raised, timed out or returned NaN/inf; not fed back),
``infeasible`` (skipped or violating a constraint; not fed back), ``interrupted`` (was running
when a process died; re-run or abandoned on resume), ``stopped`` (ended early by a stopping
policy; its reports are in ``metrics['reports']``). A trial's ``link`` names the inner study it
ran (nested searches): ``"outer/17"``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from pliant.spaces.dna import DNA, Space

SCHEMA_VERSION = 1
_APPLICATION_ID = 0x706C6E74  # 'plnt' in the SQLite header: tells our files from others

STATUSES = ("running", "complete", "failed", "infeasible", "interrupted", "stopped")
FINISHED = ("complete", "failed", "infeasible", "stopped")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS studies (
    name TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    space TEXT NOT NULL,
    config TEXT NOT NULL,
    state TEXT,
    num_proposed INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    study TEXT NOT NULL REFERENCES studies(name),
    id INTEGER NOT NULL,
    dna TEXT NOT NULL,
    decisions TEXT NOT NULL,
    status TEXT NOT NULL,
    reward TEXT,
    metrics TEXT,
    error TEXT,
    key TEXT NOT NULL,
    proposed_at REAL NOT NULL,
    finished_at REAL,
    attempts INTEGER NOT NULL DEFAULT 1,
    link TEXT,
    PRIMARY KEY (study, id)
);
"""


class StoreError(RuntimeError):
    """A store that cannot be used: foreign or corrupt file, other space, schema mismatch."""


class TrialRecord(NamedTuple):
    """One row of the trials table, decoded."""

    study: str
    id: int
    dna: list
    decisions: dict
    status: str
    reward: Any
    metrics: dict
    error: str | None
    key: int
    proposed_at: float
    finished_at: float | None
    attempts: int
    link: str | None


_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"))  # one, not one per call


def _dumps(value: Any) -> str:
    return _ENCODER.encode(value)


def _finite(metrics: Mapping[str, Any]) -> dict:
    return {str(k): _jsonable(v) for k, v in metrics.items()}


def _jsonable(v: Any) -> Any:
    """A metric as JSON: NumPy/JAX scalars as numbers, NaN/inf and other objects as text."""
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else repr(v)  # text keeps the JSON valid, loses nothing
    if hasattr(v, "shape") and hasattr(v, "tolist"):  # NumPy / JAX scalars and arrays
        return _jsonable(v.tolist())
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, Mapping):
        return _finite(v)
    return repr(v)


class Store:
    """A SQLite trial store (see the module docstring). Use :func:`open_store`.

    Example:
        >>> import os, tempfile, pliant as pl
        >>> from pliant.flows.store import open_store
        >>> space = pl.space({"w": pl.oneof([1, 2])})
        >>> store = open_store(os.path.join(tempfile.mkdtemp(), "s.db"))
        >>> store.create_study("default", space, {"algorithm": "random"})
        >>> store.add_trial("default", 0, pl.random_dna(space, 0), key=7, state="{}")
        >>> store.finish_trial("default", 0, "complete", reward=1.0, metrics={"reward": 1.0})
        >>> [t.status for t in store.trials("default")]
        ['complete']
    """

    def __init__(self, path: str, *, readonly: bool = False):
        self.path = path
        self.readonly = readonly
        self._lock = threading.RLock()
        self._file_id: tuple[int, int] | None = None
        self._conn = self._connect()
        st = os.stat(self.path)
        self._file_id = (st.st_dev, st.st_ino)

    # -- opening ---------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        exists = os.path.exists(self.path)
        if self.readonly and not exists:
            raise FileNotFoundError(f"store {self.path!r} does not exist")
        if exists:
            _check_header(self.path)
        uri = f"file:{os.path.abspath(self.path)}{'?mode=ro' if self.readonly else ''}"
        conn = None
        try:
            conn = sqlite3.connect(
                uri, uri=True, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA busy_timeout=30000")
            # Only reads until the file is known to be ours: switching a foreign database to WAL
            # (or setting our application id) would already modify it.
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        except sqlite3.DatabaseError as e:
            if conn is not None:
                conn.close()
            raise StoreError(
                f"{self.path!r} is not a usable pliant store ({e}); it may be corrupt or another "
                f"kind of file. It was left untouched; pass another path"
            ) from None
        if tables and app_id != _APPLICATION_ID:
            conn.close()
            raise StoreError(
                f"{self.path!r} is an SQLite database of another program (tables "
                f"{sorted(tables)[:5]}); pliant will not write into it. Pass another path"
            )
        if not tables:
            if self.readonly:
                conn.close()
                raise StoreError(f"{self.path!r} is an empty database, not a pliant store")
            conn.execute(f"PRAGMA application_id={_APPLICATION_ID}")
            conn.execute("PRAGMA journal_mode=WAL")
            with self._tx(conn, write="create_schema"):
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
        version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if version is None or version[0] != str(SCHEMA_VERSION):
            conn.close()
            raise StoreError(
                f"{self.path!r} has store schema version {version and version[0]!r}; this pliant "
                f"reads version {SCHEMA_VERSION}. Open it with a matching pliant version, or "
                f"export it to JSON there"
            )
        if not self.readonly:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    class _Tx:
        """One short write transaction. A failed write (disk full, read-only file, I/O error,
        the file removed) rolls back and raises :class:`StoreError`; a committed one passes the
        crash point named ``write`` (see :func:`_crash_point`)."""

        def __init__(self, store: Store, conn: sqlite3.Connection, write: str):
            self.store, self.conn, self.write = store, conn, write

        def __enter__(self) -> sqlite3.Connection:
            self.store._check_file(self.write)
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except (sqlite3.OperationalError, OSError) as e:
                raise self.store._write_error(self.write, e) from e
            return self.conn

        def __exit__(self, kind: Any, value: Any, tb: Any) -> None:
            if kind is None:
                try:
                    self.conn.execute("COMMIT")
                except (sqlite3.DatabaseError, OSError) as e:
                    self._rollback()
                    raise self.store._write_error(self.write, e) from e
                self.store._check_file(self.write)
                _crash_point(self.write)
                return
            self._rollback()
            if isinstance(value, sqlite3.DatabaseError | OSError) and not isinstance(
                value, sqlite3.IntegrityError
            ):
                raise self.store._write_error(self.write, value) from value

        def _rollback(self) -> None:
            if self.conn.in_transaction:
                # SQLite may have rolled back already (e.g. after SQLITE_FULL).
                with contextlib.suppress(sqlite3.Error):
                    self.conn.execute("ROLLBACK")

    def _tx(self, conn: sqlite3.Connection | None = None, *, write: str = "write") -> Store._Tx:
        return Store._Tx(self, conn or self._conn, write)

    def _check_file(self, write: str) -> None:
        """Raises StoreError when the store file was removed or replaced since it was opened:
        SQLite would go on writing into the deleted file and lose every later trial."""
        if self._file_id is None:
            return
        try:
            st = os.stat(self.path)
            same = (st.st_dev, st.st_ino) == self._file_id
        except OSError:
            same = False
        if not same:
            raise StoreError(
                f"store {self.path!r} was removed or replaced while in use ({write} not "
                f"recorded); the search stops. Trials recorded before are in the old file only "
                f"if it still exists elsewhere; pass a path on a stable disk"
            )

    def _write_error(self, write: str, error: BaseException) -> StoreError:
        reason = getattr(error, "sqlite_errorname", None) or type(error).__name__
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            reason = "ENOSPC, disk full"
        return StoreError(
            f"cannot write to store {self.path!r} ({write}: {reason}: {error}); the search "
            f"stops. The store keeps every trial recorded before and stays valid: free disk "
            f"space or make the file writable, then run the same call again to resume"
        )

    def close(self) -> None:
        """Closes the connection (the file stays valid at every moment anyway)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- studies ---------------------------------------------------------------------------
    def studies(self) -> list[str]:
        """Names of the studies in this store, oldest first."""
        with self._lock:
            rows = self._conn.execute("SELECT name FROM studies ORDER BY created, name")
            return [r[0] for r in rows]

    def study_info(self, study: str) -> dict[str, Any] | None:
        """The study's fingerprint, space JSON, config, saved state and proposal count."""
        with self._lock:
            row = self._conn.execute(
                "SELECT fingerprint, space, config, state, num_proposed FROM studies WHERE name=?",
                (study,),
            ).fetchone()
        if row is None:
            return None
        return {
            "fingerprint": row[0],
            "space": row[1],
            "config": json.loads(row[2]),
            "state": row[3],
            "num_proposed": row[4],
        }

    def create_study(self, study: str, space: Space, config: Mapping[str, Any]) -> None:
        """Creates a study, or checks that an existing one has the same space.

        Raises:
            StoreError: if the study exists with another space.
        """
        self._writable()
        with self._lock:
            info = self.study_info(study)
            if info is not None:
                if info["fingerprint"] != space.fingerprint:
                    raise StoreError(
                        f"study {study!r} in {self.path!r} was created with another search space "
                        f"(fingerprint {info['fingerprint']} vs {space.fingerprint}); nothing was "
                        f"changed. Use another study name or store path"
                    )
                return
            with self._tx(write="create_study"):
                self._conn.execute(
                    "INSERT INTO studies (name, fingerprint, space, config, created) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (study, space.fingerprint, space.to_json(), _dumps(dict(config)), time.time()),
                )

    def _writable(self) -> None:
        if self.readonly:
            raise StoreError(f"store {self.path!r} was opened read-only")

    # -- trials ----------------------------------------------------------------------------
    def add_trial(
        self,
        study: str,
        trial_id: int,
        dna: DNA,
        *,
        key: int,
        state: str | None,
        link: str | None = None,
        decoded: tuple[list, dict] | None = None,
    ) -> None:
        """Records a new running trial and, in the same transaction, the algorithm state.

        ``decoded`` is ``(dna.to_list(), dna.to_dict())`` when the caller has them already.
        """
        self._writable()
        now = time.time()
        dna_list, decisions = decoded if decoded is not None else (dna.to_list(), dna.to_dict())
        with self._lock, self._tx(write="add_trial") as c:
            try:
                c.execute(
                    "INSERT INTO trials (study, id, dna, decisions, status, key, proposed_at, "
                    "link) VALUES (?, ?, ?, ?, 'running', ?, ?, ?)",
                    (
                        study,
                        trial_id,
                        _dumps(dna_list),
                        _dumps(_json_decisions(decisions)),
                        str(key),
                        now,
                        link,
                    ),
                )
            except sqlite3.IntegrityError:
                raise StoreError(
                    f"trial {trial_id} of study {study!r} already exists in {self.path!r}: "
                    f"another process is searching the same study. One process writes a study "
                    f"at a time; give each process its own study name"
                ) from None
            c.execute(
                "UPDATE studies SET state=?, num_proposed=num_proposed+1 WHERE name=?",
                (state, study),
            )

    def finish_trial(
        self,
        study: str,
        trial_id: int,
        status: str,
        *,
        reward: Any = None,
        metrics: Mapping[str, Any] | None = None,
        error: str | None = None,
        state: str | None = None,
    ) -> None:
        """Records a trial's outcome and (if given) the algorithm state after its feedback."""
        self._writable()
        if status not in STATUSES:
            raise ValueError(f"unknown trial status {status!r}; expected one of {STATUSES}")
        with self._lock, self._tx(write="finish_trial") as c:
            cur = c.execute(
                "UPDATE trials SET status=?, reward=?, metrics=?, error=?, finished_at=? "
                "WHERE study=? AND id=?",
                (
                    status,
                    None if reward is None else _dumps(reward),
                    _dumps(_finite(metrics or {})),
                    error,
                    time.time(),
                    study,
                    trial_id,
                ),
            )
            if cur.rowcount != 1:
                raise KeyError(f"no trial {trial_id} in study {study!r}")
            if state is not None:
                c.execute("UPDATE studies SET state=? WHERE name=?", (state, study))

    def set_link(self, study: str, trial_id: int, link: str | None) -> None:
        """Links a trial to another study (the inner study of a nested search)."""
        self._writable()
        with self._lock, self._tx(write="set_link") as c:
            cur = c.execute(
                "UPDATE trials SET link=? WHERE study=? AND id=?", (link, study, trial_id)
            )
            if cur.rowcount != 1:
                raise KeyError(f"no trial {trial_id} in study {study!r}")

    def restart_trial(self, study: str, trial_id: int) -> None:
        """Marks an interrupted trial as running again (one more attempt)."""
        self._writable()
        with self._lock, self._tx(write="restart_trial") as c:
            c.execute(
                "UPDATE trials SET status='running', attempts=attempts+1 WHERE study=? AND id=?",
                (study, trial_id),
            )

    def mark_interrupted(self, study: str) -> list[int]:
        """Marks the study's running trials as interrupted (their process died).

        Returns the ids of every interrupted trial, also those marked by an earlier resume that
        stopped before re-running them.
        """
        self._writable()
        with self._lock, self._tx(write="mark_interrupted") as c:
            ids = [
                r[0]
                for r in c.execute(
                    "SELECT id FROM trials WHERE study=? AND status IN ('running', 'interrupted') "
                    "ORDER BY id",
                    (study,),
                )
            ]
            c.execute(
                "UPDATE trials SET status='interrupted' WHERE study=? AND status='running'",
                (study,),
            )
        return ids

    def trials(self, study: str | None = None) -> list[TrialRecord]:
        """All trials of a study (or of every study), by id, as one consistent snapshot."""
        sql = (
            "SELECT study, id, dna, decisions, status, reward, metrics, error, key, "
            "proposed_at, finished_at, attempts, link FROM trials"
        )
        args: tuple = ()
        if study is not None:
            sql += " WHERE study=?"
            args = (study,)
        sql += " ORDER BY study, id"
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [_record(r) for r in rows]

    def iter_trials(self, study: str) -> Iterator[TrialRecord]:
        """Like :meth:`trials`, lazily."""
        yield from self.trials(study)

    # -- export / import -------------------------------------------------------------------
    def export_json(self) -> str:
        """The whole store (studies and trials) as one JSON document."""
        studies: list[dict[str, Any]] = []
        doc = {"pliant_store": SCHEMA_VERSION, "studies": studies}
        for name in self.studies():
            info = self.study_info(name)
            assert info is not None
            studies.append(
                {
                    "name": name,
                    "fingerprint": info["fingerprint"],
                    "space": info["space"],
                    "config": info["config"],
                    "state": info["state"],
                    "num_proposed": info["num_proposed"],
                    "trials": [t._asdict() for t in self.trials(name)],
                }
            )
        return json.dumps(doc, allow_nan=False)

    def import_json(self, text: str) -> None:
        """Adds the studies of an exported document (a study that exists already is an error).

        Raises:
            ValueError: for a malformed document (nothing is written then).
            StoreError: if a study of that name exists.
        """
        self._writable()
        try:
            doc = json.loads(text)
            if not isinstance(doc, dict) or doc.get("pliant_store") != SCHEMA_VERSION:
                found = doc.get("pliant_store") if isinstance(doc, dict) else type(doc).__name__
                raise ValueError(f"unsupported export version {found!r}")
            studies, rows = [], []
            for s in doc["studies"]:
                name = _typed(s["name"], str, "study name")
                space = Space.from_json(_typed(s["space"], str, f"study {name!r}: space"))
                if space.fingerprint != s["fingerprint"]:
                    raise ValueError(f"study {name!r}: fingerprint does not match its space")
                studies.append(
                    (
                        name,
                        space.fingerprint,
                        s["space"],
                        _dumps(_typed(s["config"], dict, f"study {name!r}: config")),
                        _typed(s["state"], str | None, f"study {name!r}: state"),
                        int(_typed(s["num_proposed"], int, f"study {name!r}: num_proposed")),
                        time.time(),
                    )
                )
                for t in s["trials"]:
                    dna = space.from_list(t["dna"])
                    space.validate(dna)
                    where = f"study {name!r}, trial {t['id']!r}"
                    if t["status"] not in STATUSES:
                        raise ValueError(f"{where}: unknown status {t['status']!r}")
                    finished_at = _typed(t["finished_at"], int | float | None, f"{where}: time")
                    rows.append(
                        (
                            name,
                            int(_typed(t["id"], int, f"{where}: id")),
                            _dumps(t["dna"]),
                            _dumps(_typed(t["decisions"], dict, f"{where}: decisions")),
                            t["status"],
                            None if t["reward"] is None else _dumps(t["reward"]),
                            _dumps(_typed(t["metrics"], dict, f"{where}: metrics")),
                            _typed(t["error"], str | None, f"{where}: error"),
                            str(int(_typed(t["key"], int, f"{where}: key"))),
                            float(_typed(t["proposed_at"], int | float, f"{where}: time")),
                            finished_at,
                            int(_typed(t["attempts"], int, f"{where}: attempts")),
                            _typed(t["link"], str | None, f"{where}: link"),
                        )
                    )
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as e:
            raise ValueError(f"import_json(): malformed store export: {e!r}") from None
        except RecursionError:
            raise ValueError("import_json(): malformed store export: nested too deeply") from None
        names = [row[0] for row in studies]
        if len(set(names)) != len(names):
            raise ValueError(f"import_json(): malformed store export: repeated studies {names}")
        with self._lock:
            existing = set(self.studies())
            clash = [name for name in names if name in existing]
            if clash:
                raise StoreError(f"import_json(): studies {clash} already exist in {self.path!r}")
            try:
                with self._tx(write="import_json") as c:
                    c.executemany(
                        "INSERT INTO studies (name, fingerprint, space, config, state, "
                        "num_proposed, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        studies,
                    )
                    c.executemany("INSERT INTO trials VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
            except (sqlite3.IntegrityError, OverflowError) as e:  # nothing was written
                raise ValueError(f"import_json(): malformed store export: {e}") from None


def _typed(value: Any, kind: Any, what: str) -> Any:
    """``value`` when it is a ``kind`` (never a bool), else TypeError naming ``what``."""
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"{what} must be {getattr(kind, '__name__', kind)}, got {value!r:.80}")
    return value


def _json_decisions(decisions: Mapping[str, Any]) -> dict:
    out = {}
    for k, v in decisions.items():
        out[k] = v if isinstance(v, str | int | float | bool | type(None)) else repr(v)
    return out


def _record(r: tuple) -> TrialRecord:
    return TrialRecord(
        r[0],
        r[1],
        json.loads(r[2]),
        json.loads(r[3]),
        r[4],
        None if r[5] is None else _tuple_reward(json.loads(r[5])),
        json.loads(r[6]) if r[6] else {},
        r[7],
        int(r[8]),
        r[9],
        r[10],
        r[11],
        r[12],
    )


def _tuple_reward(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def _check_header(path: str) -> None:
    try:
        with open(path, "rb") as f:
            head = f.read(100)
    except OSError as e:
        raise StoreError(f"cannot read store {path!r}: {e}") from None
    if len(head) == 0:
        return  # an empty file: SQLite initializes it
    if not head.startswith(b"SQLite format 3\x00"):
        raise StoreError(
            f"{path!r} is not an SQLite database (it starts with {head[:16]!r}); pliant will "
            f"not overwrite it. Pass another path"
        )


CRASH_EXIT_CODE = 86
_WRITES: dict[str, int] = {}


def _crash_point(write: str) -> None:
    """Testing hook: dies (``os._exit(CRASH_EXIT_CODE)``) right after a committed write when the
    environment variable ``PLIANT_CRASH_AFTER`` asks for it, like a power loss between two
    writes. ``PLIANT_CRASH_AFTER=add_trial:3`` dies after this process's third ``add_trial``;
    ``PLIANT_CRASH_AFTER=7`` after its seventh write of any kind; ``add_trial`` after the
    first. Write names: ``create_schema``, ``create_study``, ``add_trial``, ``finish_trial``,
    ``set_link``, ``restart_trial``, ``mark_interrupted``, ``import_json``."""
    spec = os.environ.get("PLIANT_CRASH_AFTER")
    if not spec:
        return
    _WRITES[write] = _WRITES.get(write, 0) + 1
    _WRITES["*"] = _WRITES.get("*", 0) + 1
    name, _, count = spec.rpartition(":") if ":" in spec else ("", "", spec)
    if not count.isdigit():
        name, count = spec, "1"
    if _WRITES.get(name or "*", 0) == int(count):
        os._exit(CRASH_EXIT_CODE)


def open_store(path: str | os.PathLike[str], *, readonly: bool = False) -> Store:
    """Opens (creating if needed) a trial store file.

    Raises:
        StoreError: for a foreign or corrupt file, or a schema version this pliant cannot read;
            the file is never modified then.
        FileNotFoundError: for a read-only open of a missing file.

    Example:
        >>> import os, tempfile
        >>> store = open_store(os.path.join(tempfile.mkdtemp(), "trials.db"))
        >>> store.studies()
        []
    """
    return Store(os.fspath(path), readonly=readonly)
