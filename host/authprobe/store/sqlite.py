"""The run store: every run's raw lines, decoded records, board identity and timings in SQLite,
written as they arrive so a run cut short (board unplugged, host killed) keeps all it received.

Contract (docs/contracts.md section 6): `RunStore(path)` with `list_runs()`, `get_report(run_id)`,
`get_lines(run_id)`, `get_records(run_id)`, `get_run(run_id)` (board identity and timings), and
authprobe's own TestInvokeAuthorizer replays: `add_replay(...)`, `list_replays(...)`. The default path is `.authprobe/runs.sqlite`, overridden by `--store` or AUTHPROBE_STORE.

A store says which schema it holds (`meta.schema`): an older one is migrated, one written by a newer
authprobe is refused before anything is read or written. A damaged file is an error naming what to
do (exit 2), never a traceback: values of the wrong type or out of range read as missing, and a
stored report that cannot be read is rebuilt from the run's stored lines. Noise lines are kept up
to a bounded sample per run and otherwise only counted (`authprobe.board.line_sample`)."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from authprobe.board import line_sample
from authprobe.board.run_log import iso_utc, new_run_id, report_from_lines
from authprobe.errors import AuthprobeError
from authprobe.report import record_schema
from authprobe.store.base import (
    SCHEMA_VERSION,
    StoreError,
    default_station,
    fleet_columns,
    is_url,
    newer_schema,
    run_dict,
    step_rows,
)

ENV = "AUTHPROBE_STORE"
DEFAULT_PATH = Path(".authprobe") / "runs.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    started REAL NOT NULL,          -- epoch seconds
    ended REAL,                     -- null while the run is being collected
    port TEXT,
    board TEXT,                     -- board definition name
    identity TEXT,                  -- JSON: USB serial/location/VID:PID, uid, runtime, firmware...
    device_run TEXT,                -- the run id the device put in its begin record
    uid TEXT,
    client_id TEXT,
    status TEXT NOT NULL,           -- collecting | complete | incomplete
    reason TEXT,                    -- why incomplete: timeout | vanished | reset-loop | interrupted
    verdict TEXT,                   -- pass | fail | incomplete (from the report)
    report TEXT                     -- the final JSON report
);
CREATE TABLE IF NOT EXISTS lines (
    run_id TEXT NOT NULL, seq INTEGER NOT NULL, t REAL NOT NULL, kind TEXT NOT NULL, reason TEXT,
    raw BLOB NOT NULL, PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS records (
    run_id TEXT NOT NULL, seq INTEGER NOT NULL, t REAL NOT NULL, line_seq INTEGER, kind TEXT,
    record TEXT NOT NULL, PRIMARY KEY (run_id, seq)
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started);
CREATE TABLE IF NOT EXISTS replays (  -- authprobe's own TestInvokeAuthorizer calls (never a device's)
    at REAL NOT NULL,               -- epoch seconds, sent
    until REAL NOT NULL,            -- epoch seconds, answered
    authorizer TEXT,
    client_id TEXT,
    invoked INTEGER                 -- 1 the function ran, 0 refused before it, null unknown
);
CREATE INDEX IF NOT EXISTS replays_at ON replays (at);
"""

# Schema version -> the statements that bring the previous version to it (_SCHEMA is version 1).
_MIGRATIONS: dict[int, list[str]] = {
    2: ["ALTER TABLE runs ADD COLUMN station TEXT",
        "ALTER TABLE runs ADD COLUMN root_cause TEXT",      # the leading root cause of a run that did not pass
        "ALTER TABLE runs ADD COLUMN firmware TEXT",
        "CREATE TABLE IF NOT EXISTS steps (run_id TEXT NOT NULL, seq INTEGER NOT NULL, step TEXT, name TEXT, "
        "status TEXT, ms INTEGER, PRIMARY KEY (run_id, seq))",
        # Runs written here because their PostgreSQL store could not be reached; `runs sync` pushes them.
        "CREATE TABLE IF NOT EXISTS spool (run_id TEXT PRIMARY KEY, target TEXT NOT NULL, since REAL NOT NULL)",
        "CREATE INDEX IF NOT EXISTS runs_station_started ON runs (station, started)"],
    # authprobe's own TestInvokeAuthorizer replays (the table is in _SCHEMA too, for new files).
    3: ["CREATE TABLE IF NOT EXISTS replays (at REAL NOT NULL, until REAL NOT NULL, authorizer TEXT, "
        "client_id TEXT, invoked INTEGER)",
        "CREATE INDEX IF NOT EXISTS replays_at ON replays (at)"],
}


def default_path() -> Path:
    """The SQLite store: $AUTHPROBE_STORE when it names a file, else .authprobe/runs.sqlite (also
    where runs bound for an unreachable PostgreSQL store are spooled)."""
    env = os.environ.get(ENV)
    return Path(env) if env and not is_url(env) else DEFAULT_PATH


class _NotAStore(Exception):
    """An SQLite file that holds tables, but no authprobe run store."""


class _BadVersion(Exception):
    """The schema version row holds no version this authprobe can read."""


def _stored_version(db: sqlite3.Connection) -> int | None:
    """The file's schema version; None for a new file (or one stopped before its version was written)."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "meta" not in tables:
        if tables:
            raise _NotAStore()
        return None
    row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    if row is None:
        return None
    text = _text(row[0]) or ""
    try:
        version = int(text)
    except ValueError:   # also '²': isdigit, but no int
        raise _BadVersion(text[:40]) from None
    if version < 1:
        raise _BadVersion(text[:40])
    return version


# -- values read back from a file that may be damaged: the wrong type or out of range reads as missing --

def _epoch(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        try:
            iso_utc(value)
        except (OverflowError, ValueError, OSError):
            return None
        return float(value)
    return None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _json(value: Any, default: Any) -> Any:
    try:
        data = json.loads(value)
    except (TypeError, ValueError, RecursionError):
        return default
    return data if isinstance(data, type(default)) else default


def _raw(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", errors="replace")
    return b"" if value is None else str(value).encode()


def _decode_text(raw: bytes) -> str:
    # Undecodable text in a damaged file reads with replacement characters instead of failing the query.
    return raw.decode("utf-8", errors="replace")


_RUN_TEXT_COLUMNS = ("run_id", "station", "port", "board", "device_run", "uid", "client_id", "status", "reason",
                     "verdict", "root_cause", "firmware")


class RunStore:
    """The run store: one SQLite file (default .authprobe/runs.sqlite or $AUTHPROBE_STORE) holding
    every run's raw lines, records and report. Safe to share between the threads collecting several
    boards at once (one connection per thread, WAL so readers never block the writers).

    Args:
        path: the SQLite file (made, with its folder, when missing).
        station: what runs begun here record as their station (default: this host's name).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, station: str | None = None):
        self.path = Path(path) if path is not None else default_path()
        self.where = str(self.path)
        self.station = station or default_station()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._line_seq: dict[str, int] = {}
        self._record_seq: dict[str, int] = {}
        self._all_dbs: list[sqlite3.Connection] = []   # every thread's connection, for close()
        self._samples: dict[str, line_sample.NoiseSample] = {}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"run store {self.path}: cannot open it ({exc}); pass --store PATH "
                             f"or set {ENV} to a writable file") from None
        try:
            with self._guard():
                db = self._db()
                found = self._check_schema(db)
                db.executescript(_SCHEMA)
                db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', '1')")
                if found != SCHEMA_VERSION:
                    self._migrate()
        except AuthprobeError:
            self.close()
            raise

    def _check_schema(self, db: sqlite3.Connection) -> int | None:
        """The stored schema version; refuse a store this authprobe cannot read or write safely
        before touching it (a newer schema, another program's file, a damaged version row)."""
        try:
            found = _stored_version(db)
        except _NotAStore:
            raise StoreError(f"{self.path} is an SQLite file but not an authprobe run store; pass --store "
                             f"PATH (or set {ENV}) to name another file") from None
        except _BadVersion as exc:
            raise self._damaged(f"its schema version reads {str(exc)!r}") from None
        if found is not None and found > SCHEMA_VERSION:
            raise newer_schema(self.where, found)   # before any write: a newer schema is never touched
        return found

    def _damaged(self, why: object) -> StoreError:
        return StoreError(f"run store {self.path} is damaged ({why}): move it aside (mv {self.path} "
                          f"{self.path}.damaged) and authprobe starts a new one, or pass --store PATH; "
                          f"`sqlite3 {self.path} .recover` may save its runs")

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """SQLite errors on this file as what they mean to the user (exit 2), not tracebacks."""
        try:
            yield
        except (sqlite3.ProgrammingError, sqlite3.InterfaceError, sqlite3.IntegrityError):
            raise  # how we call SQLite (or a run id given twice), not the file: a bug of ours
        except sqlite3.DatabaseError as exc:
            name = getattr(exc, "sqlite_errorname", "")
            if name in ("SQLITE_BUSY", "SQLITE_LOCKED"):
                raise StoreError(f"run store {self.path} is busy ({exc}): another authprobe holds it; "
                                 f"try again, or pass --store PATH") from None
            if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_FULL", "SQLITE_IOERR", "SQLITE_PERM")):
                raise StoreError(f"run store {self.path}: cannot use it ({exc}); check its permissions and "
                                 f"free space, or pass --store PATH or set {ENV} to a writable file") from None
            raise self._damaged(exc) from None
        except IndexError as exc:  # a row without a column this schema has
            raise self._damaged(exc) from None
        except UnicodeDecodeError:  # SQLite's message quotes a damaged schema that is no UTF-8
            raise self._damaged("its schema holds bytes that are no text") from None

    def _migrate(self) -> None:
        with self._tx() as db:   # BEGIN IMMEDIATE: one process migrates, the others find it done
            found = self._check_schema(db) or 1
            for version in range(found + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[version]:
                    db.execute(statement)
                if version == 2:
                    self._fill_fleet_columns(db)
            db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION),))

    def _fill_fleet_columns(self, db: sqlite3.Connection) -> None:
        for row in db.execute("SELECT run_id, report FROM runs WHERE report IS NOT NULL").fetchall():
            # A damaged stored report fills no fleet columns (get_report rebuilds it from the lines).
            report = _json(row["report"], {})
            self._write_fleet_columns(db, row["run_id"], report if record_schema.report_problem(report) is None else {})

    def _write_fleet_columns(self, db: sqlite3.Connection, run_id: str, report: dict[str, Any]) -> None:
        cols = fleet_columns(report)
        db.execute("UPDATE runs SET root_cause = ?, firmware = ? WHERE run_id = ?",
                   (cols["root_cause"], cols["firmware"], run_id))
        db.execute("DELETE FROM steps WHERE run_id = ?", (run_id,))
        db.executemany("INSERT INTO steps VALUES (?, ?, ?, ?, ?, ?)",
                       [(run_id, *row) for row in step_rows(report)])

    # -- connections -------------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error:
                db.close()  # not a database at all: fail without leaving the handle open
                raise
            db.row_factory = sqlite3.Row
            db.text_factory = _decode_text
            self._local.db = db
            with self._lock:
                self._all_dbs.append(db)
        return db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        # Counts of noise left out since they were last written (a run closed without finish_run).
        for run_id, sample in list(self._samples.items()):
            if sample.unflushed:
                try:
                    self._write_omitted(run_id, sample, time.time())
                except AuthprobeError:
                    pass  # the store is failing: closing must still close
        self._samples.clear()
        with self._lock:
            dbs, self._all_dbs = self._all_dbs, []
        for db in dbs:
            try:
                db.close()
            except sqlite3.Error:
                pass
        self._local = threading.local()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing (the collector) -----------------------------------------------------------------------

    def begin_run(self, *, port: str | None, board: str | None = None, identity: dict[str, Any] | None = None,
                  run_id: str | None = None, started: float | None = None, station: str | None = None) -> str:
        run_id = run_id or new_run_id(started)
        with self._guard(), self._tx() as db:
            db.execute("INSERT INTO runs (run_id, started, port, board, identity, status, station) "
                       "VALUES (?, ?, ?, ?, ?, 'collecting', ?)",
                       (run_id, time.time() if started is None else started, port, board,
                        json.dumps(identity or {}), station or self.station))
        self._line_seq[run_id] = 0
        self._record_seq[run_id] = 0
        self._samples[run_id] = line_sample.NoiseSample()
        return run_id

    def add_line(self, run_id: str, raw: bytes, *, t: float, kind: str, reason: str | None = None,
                 record: dict[str, Any] | None = None) -> int:
        """Store one line (and its record, when it held a good one) at once: nothing is lost if the
        run stops right after. Noise past the run's sample budget is only counted (line_sample);
        then the seq of the run's `omitted` line is returned."""
        sample = self._samples.setdefault(run_id, line_sample.NoiseSample())
        if not sample.keep(kind, reason, len(raw)):
            if sample.row_seq is None or sample.flush_due():
                self._write_omitted(run_id, sample, t)
            return sample.row_seq or 0
        seq = self._line_seq.get(run_id, 0) + 1
        self._line_seq[run_id] = seq
        with self._guard(), self._tx() as db:
            db.execute("INSERT INTO lines VALUES (?, ?, ?, ?, ?, ?)", (run_id, seq, t, kind, reason, raw))
            if record is not None:
                rseq = self._record_seq.get(run_id, 0) + 1
                self._record_seq[run_id] = rseq
                db.execute("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)",
                           (run_id, rseq, t, seq, record.get("k"), json.dumps(record)))
                if record.get("k") == "begin":
                    db.execute("UPDATE runs SET device_run = ?, uid = ?, client_id = ? WHERE run_id = ?",
                               (record.get("run"), record.get("uid"), record.get("client_id"), run_id))
        return seq

    def _write_omitted(self, run_id: str, sample: line_sample.NoiseSample, t: float) -> None:
        with self._guard(), self._tx() as db:
            if sample.row_seq is None:
                seq = self._line_seq.get(run_id, 0) + 1
                self._line_seq[run_id] = seq
                db.execute("INSERT INTO lines VALUES (?, ?, ?, ?, NULL, ?)",
                           (run_id, seq, t, line_sample.OMITTED, b""))
                sample.row_seq = seq
            db.execute("UPDATE lines SET reason = ? WHERE run_id = ? AND seq = ?",
                       (sample.summary(), run_id, sample.row_seq))

    def finish_run(self, run_id: str, report: dict[str, Any], *, status: str, reason: str | None = None,
                   ended: float | None = None) -> None:
        sample = self._samples.pop(run_id, None)
        if sample is not None and sample.unflushed:
            self._write_omitted(run_id, sample, time.time() if ended is None else ended)
        with self._guard(), self._tx() as db:
            db.execute("UPDATE runs SET ended = ?, status = ?, reason = ?, verdict = ?, report = ? "
                       "WHERE run_id = ?",
                       (time.time() if ended is None else ended, status, reason, report.get("verdict"),
                        json.dumps(report), run_id))
            self._write_fleet_columns(db, run_id, report)

    def save_report(self, run_id: str, report: dict[str, Any]) -> None:
        """Replace a run's report (e.g. after correlation added cloud evidence to its diagnosis)."""
        with self._guard(), self._tx() as db:
            db.execute("UPDATE runs SET report = ?, verdict = ? WHERE run_id = ?",
                       (json.dumps(report), report.get("verdict"), run_id))
            self._write_fleet_columns(db, run_id, report)

    def add_replay(self, *, at: float, until: float, authorizer: str | None = None, client_id: str | None = None,
                   invoked: bool | None = None) -> None:
        """Record one TestInvokeAuthorizer call authprobe made (epoch seconds), so correlation
        labels its function log lines `replay` instead of taking them for the device's."""
        with self._guard(), self._tx() as db:
            db.execute("INSERT INTO replays VALUES (?, ?, ?, ?, ?)",
                       (at, until, authorizer, client_id, None if invoked is None else int(invoked)))

    # -- reading -----------------------------------------------------------------------------------------

    def list_replays(self, *, since: float | None = None, until: float | None = None,
                     client_ids: set[str] | None = None) -> list[dict[str, Any]]:
        """Recorded replays, oldest first, as {at, until (epoch seconds), authorizer, client_id,
        invoked}; `since`/`until` bound `at`."""
        sql = "SELECT * FROM replays WHERE 1=1"
        args: list[Any] = []
        if since is not None:
            sql += " AND at >= ?"
            args.append(since)
        if until is not None:
            sql += " AND at <= ?"
            args.append(until)
        with self._guard():
            rows = [{"at": _epoch(r["at"]), "until": _epoch(r["until"]), "authorizer": _text(r["authorizer"]),
                     "client_id": _text(r["client_id"]), "invoked": None if r["invoked"] is None else bool(r["invoked"])}
                    for r in self._db().execute(sql + " ORDER BY at", args)]
        rows = [r for r in rows if r["at"] is not None and r["until"] is not None]   # damaged rows are left out
        return rows if client_ids is None else [r for r in rows if r["client_id"] in client_ids]

    def _row(self, row: sqlite3.Row) -> dict[str, Any]:
        clean = {name: _text(row[name]) for name in _RUN_TEXT_COLUMNS}
        clean["run_id"] = clean["run_id"] or ""
        clean["started"], clean["ended"] = _epoch(row["started"]), _epoch(row["ended"])
        return run_dict(clean, _json(row["identity"], {}))

    def list_runs(self, *, limit: int | None = None, since: float | None = None,
                  port: str | None = None, uid: str | None = None, station: str | None = None) -> list[dict[str, Any]]:
        """Runs, newest first, as dicts (run_id, station, started/ended ISO-8601 UTC, port, board,
        identity, device_run, uid, client_id, status, reason, verdict, root_cause, firmware)."""
        sql = "SELECT * FROM runs WHERE 1=1"
        args: list[Any] = []
        if since is not None:
            sql += " AND started >= ?"
            args.append(since)
        if port is not None:
            sql += " AND port = ?"
            args.append(port)
        if uid is not None:
            sql += " AND uid = ?"
            args.append(uid)
        if station is not None:
            sql += " AND station = ?"
            args.append(station)
        sql += " ORDER BY started DESC, rowid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._guard():
            return [self._row(r) for r in self._db().execute(sql, args)]

    def resolve(self, ref: str) -> str:
        """A run id from a full id, a unique prefix, or `latest`."""
        with self._guard():
            return self._resolve(ref)

    def _resolve(self, ref: str) -> str:
        db = self._db()
        if ref in ("latest", "last"):
            row = db.execute("SELECT run_id FROM runs ORDER BY started DESC, rowid DESC LIMIT 1").fetchone()
            if row is None:
                raise AuthprobeError(f"run store {self.path} holds no runs yet; `authprobe run` adds them")
            return _text(row["run_id"]) or ""
        rows = db.execute("SELECT run_id FROM runs WHERE run_id LIKE ? ORDER BY started DESC",
                          (ref.replace("%", "") + "%",)).fetchall()
        if not rows:
            raise AuthprobeError(f"no run {ref!r} in {self.path}; `authprobe runs` lists them")
        if len(rows) > 1 and rows[0]["run_id"] != ref:
            raise AuthprobeError(f"run {ref!r} is ambiguous in {self.path}: "
                                 f"{', '.join(_text(r['run_id']) or '' for r in rows[:5])}")
        return _text(rows[0]["run_id"]) or ""

    def get_run(self, run_id: str) -> dict[str, Any]:
        with self._guard():
            row = self._db().execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                raise AuthprobeError(f"no run {run_id!r} in {self.path}; `authprobe runs` lists them")
            return self._row(row)

    def get_lines(self, run_id: str) -> list[dict[str, Any]]:
        """Every line stored, in order: {seq, t, kind, reason, raw (bytes)}; noise past the run's
        sample is one line of kind `omitted` with its counts (authprobe.board.line_sample)."""
        with self._guard():
            rows = self._db().execute("SELECT seq, t, kind, reason, raw FROM lines WHERE run_id = ? ORDER BY seq",
                                      (run_id,))
            return [{"seq": r["seq"] if isinstance(r["seq"], int) else 0, "t": _epoch(r["t"]) or 0.0,
                     "kind": _text(r["kind"]) or "noise", "reason": _text(r["reason"]), "raw": _raw(r["raw"])}
                    for r in rows]

    def get_records(self, run_id: str) -> list[dict[str, Any]]:
        """The decoded records, in order of arrival (with the host's receive time as `_rx`)."""
        out = []
        with self._guard():
            for r in self._db().execute("SELECT t, record FROM records WHERE run_id = ? ORDER BY seq", (run_id,)):
                rec = _json(r["record"], {})
                if record_schema.record_problem(rec) is None:   # a damaged row is left out
                    rec["_rx"] = _epoch(r["t"])
                    out.append(rec)
        return out

    def get_report(self, run_id: str) -> dict[str, Any]:
        """The run's JSON report (docs/contracts.md section 3). A run whose collection never finished
        (the host died) is rebuilt from its stored records and comes out 'incomplete'; so is one
        whose stored report cannot be read (a damaged file), saying so in `collection.rebuilt`."""
        with self._guard():
            row = self._db().execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                raise AuthprobeError(f"no run {run_id!r} in {self.path}; `authprobe runs` lists them")
            stored, run = row["report"], self._row(row)
        why = None
        if stored:
            report = _json(stored, {})
            why = record_schema.report_problem(report) if report else "is empty or not a JSON object"
            if why is None:
                return report
        report = report_from_lines(run_id, self.get_lines(run_id), run=run)
        if why:
            # A store written before records were checked, or a damaged one: say where this came from.
            report["collection"]["rebuilt"] = f"the stored report {why}; rebuilt from the stored lines"
        return report

    # -- the fleet view ----------------------------------------------------------------------------------

    def fleet_runs(self, since: float | None = None) -> list[dict[str, Any]]:
        """run_id, station, started, ended, board, uid, status, verdict, root_cause, firmware of every
        run started since then (epoch seconds)."""
        with self._guard():
            rows = self._db().execute("SELECT run_id, station, started, ended, board, uid, status, verdict, root_cause, "
                                      "firmware FROM runs WHERE started >= ? ORDER BY started",
                                      (since if since is not None else float("-inf"),))
            return [dict(r) for r in rows]

    def fleet_steps(self, since: float | None = None) -> list[tuple[str, str | None, str | None, int | None]]:
        """(run_id, step, status, elapsed ms) of every step of the runs started since then."""
        with self._guard():
            rows = self._db().execute("SELECT s.run_id, s.step, s.status, s.ms FROM steps s JOIN runs r "
                                      "ON r.run_id = s.run_id WHERE r.started >= ?",
                                      (since if since is not None else float("-inf"),))
            return [tuple(r) for r in rows]

    # -- the spool: runs kept here for a PostgreSQL store that could not be reached --------------------

    def spool_add(self, run_id: str, target: str) -> None:
        with self._guard(), self._tx() as db:
            db.execute("INSERT OR IGNORE INTO spool VALUES (?, ?, ?)", (run_id, target, time.time()))

    def spool_pending(self) -> list[tuple[str, str]]:
        """(run id, the store it was bound for) of every spooled run not yet pushed, oldest first."""
        with self._guard():
            return [(r["run_id"], r["target"]) for r in
                    self._db().execute("SELECT run_id, target FROM spool ORDER BY since, run_id")]

    def spool_done(self, run_id: str) -> None:
        with self._guard(), self._tx() as db:
            db.execute("DELETE FROM spool WHERE run_id = ?", (run_id,))

    def export_run(self, run_id: str) -> dict[str, Any]:
        """Everything stored of one run, as rows, for pushing it to another store."""
        with self._guard():
            db = self._db()
            row = db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                raise AuthprobeError(f"no run {run_id!r} in {self.path}; `authprobe runs` lists them")
            return {
                "run": {k: row[k] for k in row.keys()},
                "lines": [tuple(r) for r in db.execute("SELECT seq, t, kind, reason, raw FROM lines "
                                                       "WHERE run_id = ? ORDER BY seq", (run_id,))],
                "records": [tuple(r) for r in db.execute("SELECT seq, t, line_seq, kind, record FROM records "
                                                         "WHERE run_id = ? ORDER BY seq", (run_id,))],
            }
