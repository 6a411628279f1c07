"""The run store: every run's raw lines, decoded records, board identity and timings in SQLite,
written as they arrive so a run cut short (board unplugged, host killed) keeps all it received.

Contract (docs/contracts.md section 6): `RunStore(path)` with `list_runs()`, `get_report(run_id)`,
`get_lines(run_id)`, `get_records(run_id)`, `get_run(run_id)` (board identity and timings), and
authprobe's own TestInvokeAuthorizer replays: `add_replay(...)`, `list_replays(...)`. The default path is `.authprobe/runs.sqlite`, overridden by `--store` or AUTHPROBE_STORE."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from authprobe.board.run_log import new_run_id, report_from_lines
from authprobe.errors import AuthprobeError
from authprobe.store.base import (
    SCHEMA_VERSION,
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


def _stored_version(db: sqlite3.Connection) -> int | None:
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone() is None:
        return None
    row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    return int(row[0]) if row else None


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
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = self._db()
            found = _stored_version(db)
            if found is not None and found > SCHEMA_VERSION:
                raise newer_schema(self.where, found)   # before any write: a newer schema is never touched
            db.executescript(_SCHEMA)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', '1')")
            if found != SCHEMA_VERSION:
                self._migrate()
        except (OSError, sqlite3.DatabaseError) as exc:
            raise AuthprobeError(f"run store {self.path}: cannot open it ({exc}); pass --store PATH "
                                 f"or set {ENV} to a writable file") from None

    def _migrate(self) -> None:
        with self._tx() as db:   # BEGIN IMMEDIATE: one process migrates, the others find it done
            found = _stored_version(db) or 1
            for version in range(found + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[version]:
                    db.execute(statement)
                if version == 2:
                    self._fill_fleet_columns(db)
            db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION),))

    def _fill_fleet_columns(self, db: sqlite3.Connection) -> None:
        for row in db.execute("SELECT run_id, report FROM runs WHERE report IS NOT NULL").fetchall():
            self._write_fleet_columns(db, row["run_id"], json.loads(row["report"]))

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
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.row_factory = sqlite3.Row
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
        with self._tx() as db:
            db.execute("INSERT INTO runs (run_id, started, port, board, identity, status, station) "
                       "VALUES (?, ?, ?, ?, ?, 'collecting', ?)",
                       (run_id, time.time() if started is None else started, port, board,
                        json.dumps(identity or {}), station or self.station))
        self._line_seq[run_id] = 0
        self._record_seq[run_id] = 0
        return run_id

    def add_line(self, run_id: str, raw: bytes, *, t: float, kind: str, reason: str | None = None,
                 record: dict[str, Any] | None = None) -> int:
        """Store one line (and its record, when it held a good one) at once: nothing is lost if the
        run stops right after."""
        seq = self._line_seq.get(run_id, 0) + 1
        self._line_seq[run_id] = seq
        with self._tx() as db:
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

    def finish_run(self, run_id: str, report: dict[str, Any], *, status: str, reason: str | None = None,
                   ended: float | None = None) -> None:
        with self._tx() as db:
            db.execute("UPDATE runs SET ended = ?, status = ?, reason = ?, verdict = ?, report = ? "
                       "WHERE run_id = ?",
                       (time.time() if ended is None else ended, status, reason, report.get("verdict"),
                        json.dumps(report), run_id))
            self._write_fleet_columns(db, run_id, report)

    def save_report(self, run_id: str, report: dict[str, Any]) -> None:
        """Replace a run's report (e.g. after correlation added cloud evidence to its diagnosis)."""
        with self._tx() as db:
            db.execute("UPDATE runs SET report = ?, verdict = ? WHERE run_id = ?",
                       (json.dumps(report), report.get("verdict"), run_id))
            self._write_fleet_columns(db, run_id, report)

    def add_replay(self, *, at: float, until: float, authorizer: str | None = None, client_id: str | None = None,
                   invoked: bool | None = None) -> None:
        """Record one TestInvokeAuthorizer call authprobe made (epoch seconds), so correlation
        labels its function log lines `replay` instead of taking them for the device's."""
        with self._tx() as db:
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
        rows = [{"at": r["at"], "until": r["until"], "authorizer": r["authorizer"], "client_id": r["client_id"],
                 "invoked": None if r["invoked"] is None else bool(r["invoked"])}
                for r in self._db().execute(sql + " ORDER BY at", args)]
        return rows if client_ids is None else [r for r in rows if r["client_id"] in client_ids]

    def _row(self, row: sqlite3.Row) -> dict[str, Any]:
        return run_dict(row, json.loads(row["identity"] or "{}"))

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
        return [self._row(r) for r in self._db().execute(sql, args)]

    def resolve(self, ref: str) -> str:
        """A run id from a full id, a unique prefix, or `latest`."""
        db = self._db()
        if ref in ("latest", "last"):
            row = db.execute("SELECT run_id FROM runs ORDER BY started DESC, rowid DESC LIMIT 1").fetchone()
            if row is None:
                raise AuthprobeError(f"run store {self.path} holds no runs yet; `authprobe run` adds them")
            return row["run_id"]
        rows = db.execute("SELECT run_id FROM runs WHERE run_id LIKE ? ORDER BY started DESC",
                          (ref.replace("%", "") + "%",)).fetchall()
        if not rows:
            raise AuthprobeError(f"no run {ref!r} in {self.path}; `authprobe runs` lists them")
        if len(rows) > 1 and rows[0]["run_id"] != ref:
            raise AuthprobeError(f"run {ref!r} is ambiguous in {self.path}: "
                                 f"{', '.join(r['run_id'] for r in rows[:5])}")
        return rows[0]["run_id"]

    def get_run(self, run_id: str) -> dict[str, Any]:
        row = self._db().execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise AuthprobeError(f"no run {run_id!r} in {self.path}; `authprobe runs` lists them")
        return self._row(row)

    def get_lines(self, run_id: str) -> list[dict[str, Any]]:
        """Every line received, in order: {seq, t, kind, reason, raw (bytes)}."""
        rows = self._db().execute("SELECT seq, t, kind, reason, raw FROM lines WHERE run_id = ? ORDER BY seq",
                                  (run_id,))
        return [{"seq": r["seq"], "t": r["t"], "kind": r["kind"], "reason": r["reason"], "raw": bytes(r["raw"])}
                for r in rows]

    def get_records(self, run_id: str) -> list[dict[str, Any]]:
        """The decoded records, in order of arrival (with the host's receive time as `_rx`)."""
        rows = self._db().execute("SELECT t, record FROM records WHERE run_id = ? ORDER BY seq", (run_id,))
        out = []
        for r in rows:
            rec = json.loads(r["record"])
            rec["_rx"] = r["t"]
            out.append(rec)
        return out

    def get_report(self, run_id: str) -> dict[str, Any]:
        """The run's JSON report (docs/contracts.md section 3). A run whose collection never finished
        (the host died) is rebuilt from its stored records and comes out 'incomplete'."""
        row = self._db().execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise AuthprobeError(f"no run {run_id!r} in {self.path}; `authprobe runs` lists them")
        if row["report"]:
            return json.loads(row["report"])
        return report_from_lines(run_id, self.get_lines(run_id), run=self._row(row))

    # -- the fleet view ----------------------------------------------------------------------------------

    def fleet_runs(self, since: float | None = None) -> list[dict[str, Any]]:
        """run_id, station, started, ended, board, uid, status, verdict, root_cause, firmware of every
        run started since then (epoch seconds)."""
        rows = self._db().execute("SELECT run_id, station, started, ended, board, uid, status, verdict, root_cause, "
                                  "firmware FROM runs WHERE started >= ? ORDER BY started",
                                  (since if since is not None else float("-inf"),))
        return [dict(r) for r in rows]

    def fleet_steps(self, since: float | None = None) -> list[tuple[str, str | None, str | None, int | None]]:
        """(run_id, step, status, elapsed ms) of every step of the runs started since then."""
        rows = self._db().execute("SELECT s.run_id, s.step, s.status, s.ms FROM steps s JOIN runs r "
                                  "ON r.run_id = s.run_id WHERE r.started >= ?",
                                  (since if since is not None else float("-inf"),))
        return [tuple(r) for r in rows]

    # -- the spool: runs kept here for a PostgreSQL store that could not be reached --------------------

    def spool_add(self, run_id: str, target: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO spool VALUES (?, ?, ?)", (run_id, target, time.time()))

    def spool_pending(self) -> list[tuple[str, str]]:
        """(run id, the store it was bound for) of every spooled run not yet pushed, oldest first."""
        return [(r["run_id"], r["target"]) for r in
                self._db().execute("SELECT run_id, target FROM spool ORDER BY since, run_id")]

    def spool_done(self, run_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM spool WHERE run_id = ?", (run_id,))

    def export_run(self, run_id: str) -> dict[str, Any]:
        """Everything stored of one run, as rows, for pushing it to another store."""
        db = self._db()
        row = db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise AuthprobeError(f"no run {run_id!r} in {self.path}; `authprobe runs` lists them")
        return {
            "run": {k: row[k] for k in row.keys()},
            "lines": [tuple(r) for r in db.execute("SELECT seq, t, kind, reason, raw FROM lines WHERE run_id = ? "
                                                   "ORDER BY seq", (run_id,))],
            "records": [tuple(r) for r in db.execute("SELECT seq, t, line_seq, kind, record FROM records "
                                                     "WHERE run_id = ? ORDER BY seq", (run_id,))],
        }
