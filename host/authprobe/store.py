"""The run store: every run's raw lines, decoded records, board identity and timings in SQLite,
written as they arrive so a run cut short (board unplugged, host killed) keeps all it received.

Contract (docs/contracts.md section 6): `RunStore(path)` with `list_runs()`, `get_report(run_id)`,
`get_lines(run_id)`, `get_records(run_id)`, `get_run(run_id)` (board identity and timings). The
default path is `.authprobe/runs.sqlite`, overridden by `--store` or AUTHPROBE_STORE.

A store says which schema it holds (`meta.schema`); one this authprobe does not know (written by a
newer one) is refused before anything is read or written. A damaged file is an error naming what to
do (exit 2), never a traceback: values of the wrong type or out of range read as missing, and a
stored report that cannot be read is rebuilt from the run's stored lines. Noise lines are kept up
to a bounded sample per run and otherwise only counted (`authprobe.line_sample`)."""

from __future__ import annotations

import json
import math
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from authprobe import line_sample, record_schema
from authprobe.errors import AuthprobeError

ENV = "AUTHPROBE_STORE"
DEFAULT_PATH = Path(".authprobe") / "runs.sqlite"
SCHEMA_VERSION = 1

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
"""


def default_path() -> Path:
    return Path(os.environ.get(ENV) or DEFAULT_PATH)


def new_run_id(now: float | None = None) -> str:
    """Sortable by time, unique across hosts: 20261126T091502Z-3f9a1c."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    return f"{stamp}-{secrets.token_hex(3)}"


def iso_utc(t: float) -> str:
    """Epoch seconds as ISO-8601 UTC with milliseconds: 2026-11-26T09:15:02.417Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


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


def _decode_text(raw: bytes) -> str:
    # Undecodable text in a damaged file reads with replacement characters instead of failing the query.
    return raw.decode("utf-8", errors="replace")


class RunStore:
    """One SQLite file; safe to share between the threads collecting several boards at once (one
    connection per thread, WAL so readers never block the writers)."""

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = Path(path) if path is not None else default_path()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._line_seq: dict[str, int] = {}
        self._record_seq: dict[str, int] = {}
        self._all_dbs: list[sqlite3.Connection] = []   # every thread's connection, for close()
        self._samples: dict[str, line_sample.NoiseSample] = {}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AuthprobeError(f"run store {self.path}: cannot open it ({exc}); pass --store PATH "
                                 f"or set {ENV} to a writable file") from None
        try:
            with self._guard():
                db = self._db()
                self._check_schema(db)
                db.executescript(_SCHEMA)
                db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        except AuthprobeError:
            self.close()
            raise

    def _check_schema(self, db: sqlite3.Connection) -> None:
        """Refuse a store this authprobe cannot read or write safely, before touching it."""
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            return  # a new store
        if "meta" not in tables:
            raise AuthprobeError(f"{self.path} is an SQLite file but not an authprobe run store; pass --store "
                                 f"PATH (or set {ENV}) to name another file")
        row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None:
            return  # created, then stopped before its schema row was written: ours
        text = _text(row[0]) or ""
        try:
            version = int(text)
        except ValueError:
            raise self._damaged(f"its schema version reads {text[:40]!r}") from None
        if version > SCHEMA_VERSION:
            raise AuthprobeError(f"run store {self.path} was written by a newer authprobe (store schema {version}; "
                                 f"this one reads schema {SCHEMA_VERSION}): upgrade authprobe, or pass --store PATH "
                                 f"for a store of its own")
        if version != SCHEMA_VERSION:
            raise AuthprobeError(f"run store {self.path} has store schema {version}, which this authprobe does not "
                                 f"know (it reads schema {SCHEMA_VERSION}); pass --store PATH for a store of its own")

    def _damaged(self, why: object) -> AuthprobeError:
        return AuthprobeError(f"run store {self.path} is damaged ({why}): move it aside (mv {self.path} "
                              f"{self.path}.damaged) and authprobe starts a new one, or pass --store PATH; "
                              f"`sqlite3 {self.path} .recover` may save its runs")

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """SQLite errors on this file as what they mean to the user (exit 2), not tracebacks."""
        try:
            yield
        except (sqlite3.ProgrammingError, sqlite3.InterfaceError):
            raise  # how we call SQLite, not the file: a bug of ours
        except sqlite3.DatabaseError as exc:
            name = getattr(exc, "sqlite_errorname", "")
            if name in ("SQLITE_BUSY", "SQLITE_LOCKED"):
                raise AuthprobeError(f"run store {self.path} is busy ({exc}): another authprobe holds it; "
                                     f"try again, or pass --store PATH") from None
            if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_FULL", "SQLITE_IOERR", "SQLITE_PERM")):
                raise AuthprobeError(f"run store {self.path}: cannot use it ({exc}); check its permissions and "
                                     f"free space, or pass --store PATH") from None
            raise self._damaged(exc) from None
        except IndexError as exc:  # a row without a column this schema has
            raise self._damaged(exc) from None
        except UnicodeDecodeError:  # SQLite's message quotes a damaged schema that is no UTF-8
            raise self._damaged("its schema holds bytes that are no text") from None

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
                  run_id: str | None = None, started: float | None = None) -> str:
        run_id = run_id or new_run_id(started)
        with self._guard(), self._tx() as db:
            db.execute("INSERT INTO runs (run_id, started, port, board, identity, status) "
                       "VALUES (?, ?, ?, ?, ?, 'collecting')",
                       (run_id, time.time() if started is None else started, port, board,
                        json.dumps(identity or {})))
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

    def save_report(self, run_id: str, report: dict[str, Any]) -> None:
        """Replace a run's report (e.g. after correlation added cloud evidence to its diagnosis)."""
        with self._guard(), self._tx() as db:
            db.execute("UPDATE runs SET report = ?, verdict = ? WHERE run_id = ?",
                       (json.dumps(report), report.get("verdict"), run_id))

    # -- reading -----------------------------------------------------------------------------------------

    def _row(self, row: sqlite3.Row) -> dict[str, Any]:
        started, ended = _epoch(row["started"]), _epoch(row["ended"])
        status = _text(row["status"])
        return {
            "run_id": _text(row["run_id"]) or "",
            "started": iso_utc(started) if started is not None else None,
            "ended": iso_utc(ended) if ended is not None else None,
            "started_epoch": started,
            "ended_epoch": ended,
            "duration_s": round(ended - started, 3) if ended and started is not None else None,
            "port": _text(row["port"]),
            "board": _text(row["board"]),
            "identity": _json(row["identity"], {}),
            "device_run": _text(row["device_run"]),
            "uid": _text(row["uid"]),
            "client_id": _text(row["client_id"]),
            "status": status,
            "reason": _text(row["reason"]),
            "verdict": _text(row["verdict"]) or ("incomplete" if status != "complete" else None),
        }

    def list_runs(self, *, limit: int | None = None, since: float | None = None,
                  port: str | None = None, uid: str | None = None) -> list[dict[str, Any]]:
        """Runs, newest first, as dicts (run_id, started/ended ISO-8601 UTC, port, board, identity,
        device_run, uid, client_id, status, reason, verdict)."""
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
        sample is one line of kind `omitted` with its counts (authprobe.line_sample)."""
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
        (the host died) is rebuilt from its stored records and comes out 'incomplete'."""
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
        from authprobe.collect import report_from_lines

        report = report_from_lines(run_id, self.get_lines(run_id), run=run)
        if why:
            # A store written before records were checked, or a damaged one: say where this came from.
            report["collection"]["rebuilt"] = f"the stored report {why}; rebuilt from the stored lines"
        return report


def _raw(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", errors="replace")
    return b"" if value is None else str(value).encode()
