"""The PostgreSQL run store: one database every station of a line writes into
(`--store postgresql://user@host:port/db`), the same interface as the SQLite store.

Each line is written when it arrives, in one statement (so one round trip, and atomic), as SQLite
does: a station that loses power mid-run leaves an incomplete run holding everything it received.
Every write can be repeated without harm (primary keys and ON CONFLICT), so a write cut off by a
dropped connection is simply sent again on a new one. When the server cannot be reached at all
(down, refused, wrong password, the network gone mid-run), a store opened with a spool keeps the
run's records in the local SQLite store instead, says so once, and `authprobe runs sync` pushes them
when the server is back: the run's lines so far are held in memory until it ends, so the spool gets
the whole run, not just its tail. Noise past a run's sample is only counted, as in SQLite
(`authprobe.board.line_sample`), so neither the database nor that memory grows with a board's garbage."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from authprobe.board import line_sample
from authprobe.board.run_log import new_run_id, report_from_lines
from authprobe.errors import AuthprobeError
from authprobe.report import record_schema
from authprobe.store.base import (
    SCHEMA_VERSION,
    StoreError,
    StoreUnavailable,
    default_station,
    fleet_columns,
    newer_schema,
    redact_url,
    run_dict,
    step_rows,
)
from authprobe.store.sqlite import RunStore

CONNECT_TIMEOUT_S = 5
RETRY_OFFLINE_S = 30.0       # while the server is away, new runs try it again at most this often
_MIGRATION_LOCK = 0x61757468  # pg_advisory_xact_lock key: one station migrates, the others wait

# Schema version -> the statements that bring the previous version to it (the same versions as SQLite).
_MIGRATIONS: dict[int, list[str]] = {
    1: ["CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)",
        "CREATE TABLE runs (n BIGINT GENERATED ALWAYS AS IDENTITY, run_id TEXT PRIMARY KEY, "
        "started DOUBLE PRECISION NOT NULL, ended DOUBLE PRECISION, port TEXT, board TEXT, identity TEXT, "
        "device_run TEXT, uid TEXT, client_id TEXT, status TEXT NOT NULL, reason TEXT, verdict TEXT, report TEXT)",
        "CREATE TABLE lines (run_id TEXT NOT NULL, seq INTEGER NOT NULL, t DOUBLE PRECISION NOT NULL, "
        "kind TEXT NOT NULL, reason TEXT, raw BYTEA NOT NULL, PRIMARY KEY (run_id, seq))",
        "CREATE TABLE records (run_id TEXT NOT NULL, seq INTEGER NOT NULL, t DOUBLE PRECISION NOT NULL, "
        "line_seq INTEGER, kind TEXT, record TEXT NOT NULL, PRIMARY KEY (run_id, seq))",
        "CREATE INDEX runs_started ON runs (started)"],
    2: ["ALTER TABLE runs ADD COLUMN station TEXT, ADD COLUMN root_cause TEXT, ADD COLUMN firmware TEXT",
        "CREATE TABLE steps (run_id TEXT NOT NULL, seq INTEGER NOT NULL, step TEXT, name TEXT, status TEXT, "
        "ms INTEGER, PRIMARY KEY (run_id, seq))",
        "CREATE INDEX runs_station_started ON runs (station, started)"],
    3: ["CREATE TABLE replays (at DOUBLE PRECISION NOT NULL, until DOUBLE PRECISION NOT NULL, authorizer TEXT, "
        "client_id TEXT, invoked BOOLEAN)",
        "CREATE INDEX replays_at ON replays (at)"],
}

_INSERT_LINE = ("INSERT INTO lines (run_id, seq, t, kind, reason, raw) VALUES (%s, %s, %s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING")
# The run's one `omitted` line: written when noise is first left out, its counts replaced after.
_UPSERT_OMITTED = ("INSERT INTO lines (run_id, seq, t, kind, reason, raw) VALUES (%s, %s, %s, %s, %s, %s) "
                   "ON CONFLICT (run_id, seq) DO UPDATE SET reason = EXCLUDED.reason")
_INSERT_LINE_AND_RECORD = (
    "WITH line AS (" + _INSERT_LINE + ") "
    "INSERT INTO records (run_id, seq, t, line_seq, kind, record) VALUES (%s, %s, %s, %s, %s, %s) "
    "ON CONFLICT DO NOTHING")
_INSERT_BEGIN_RECORD = (
    "WITH line AS (" + _INSERT_LINE + "), "
    "rec AS (INSERT INTO records (run_id, seq, t, line_seq, kind, record) VALUES (%s, %s, %s, %s, %s, %s) "
    "ON CONFLICT DO NOTHING) "
    "UPDATE runs SET device_run = %s, uid = %s, client_id = %s WHERE run_id = %s")
_RUN_COLUMNS = ("run_id", "station", "started", "ended", "port", "board", "identity", "device_run", "uid",
                "client_id", "status", "reason", "verdict", "report", "root_cause", "firmware")


def _reason(exc: BaseException) -> str:
    """libpq's words for why it failed, without the address it already names: `Connection refused`,
    `password authentication failed for user "x"`, `server closed the connection unexpectedly`."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    m = re.match(r'.*failed: (?:FATAL:\s+)?(.+)$', first)
    return (m.group(1) if m else first).strip()


@dataclass
class _OpenRun:
    """A run this store is writing: what began it and every line so far, for the spool."""

    begin: dict[str, Any]
    lines: list[dict[str, Any]] = field(default_factory=list)   # the kept ones (line_sample)
    spooled: bool = False
    sample: line_sample.NoiseSample = field(default_factory=line_sample.NoiseSample)


class PostgresRunStore:
    """The run store in a PostgreSQL database, shared by every station of a line. Safe to share between
    the threads collecting several boards (one connection per thread).

    Args:
        url: postgresql://user[:password]@host[:port]/db (libpq's other ways to give a password, such as
            PGPASSWORD or ~/.pgpass, work too).
        station: what runs begun here record as their station (default: this host's name).
        spool: the SQLite store that keeps runs when the server cannot be reached (None: fail instead).
        on_warning: told, once per outage, that runs are being spooled (and once when the server is back).
    """

    def __init__(self, url: str, *, station: str | None = None, spool: str | os.PathLike[str] | None = None,
                 on_warning: Callable[[str], None] | None = None, connect_timeout: float = CONNECT_TIMEOUT_S):
        self.url = url
        self.where = redact_url(url)
        self.station = station or default_station()
        self.spool_path = Path(spool).absolute() if spool is not None else None
        self._warn = on_warning or (lambda message: None)
        self._connect_timeout = connect_timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all_conns: list[Any] = []
        self._line_seq: dict[str, int] = {}
        self._record_seq: dict[str, int] = {}
        self._open: dict[str, _OpenRun] = {}
        self._spool: RunStore | None = None
        self._offline_until: float | None = None   # monotonic time of the next try while the server is away
        self._migrated = False
        try:
            self._migrate()
        except StoreUnavailable as exc:
            if self.spool_path is None:
                raise
            self._went_offline(exc)

    # -- connections ----------------------------------------------------------------------------------

    def _connect(self) -> Any:
        import psycopg
        from psycopg.rows import dict_row

        params: dict[str, Any] = {"autocommit": True, "row_factory": dict_row, "application_name": "authprobe"}
        if "connect_timeout" not in self.url:
            params["connect_timeout"] = max(1, int(self._connect_timeout))
        try:
            return psycopg.connect(self.url, **params)
        except psycopg.OperationalError as exc:
            raise self._unavailable(exc) from None
        except psycopg.ProgrammingError as exc:   # a URL libpq cannot parse
            raise StoreError(f"run store {self.where}: not a usable PostgreSQL URL ({_reason(exc)}); "
                             f"write it as postgresql://user@host:port/db") from None

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        return StoreUnavailable(f"run store {self.where}: cannot reach it ({_reason(exc)})")

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._all_conns.append(conn)
        return conn

    def _forget_conn(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - a connection already broken may fail to close; it is gone either way
                pass

    def _call(self, work: Callable[[Any], Any]) -> Any:
        """work(connection), once more on a fresh connection if the first one broke: every write here
        can be repeated. A server that cannot be reached is StoreUnavailable."""
        import psycopg

        for attempt in (1, 2):
            conn = self._conn()
            try:
                return work(conn)
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                self._forget_conn()
                if attempt == 2 or not (conn.closed or conn.broken):
                    raise self._unavailable(exc) from None
        raise AssertionError("unreachable")

    def _rows(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> list[dict[str, Any]]:
        return self._call(lambda conn: conn.execute(sql, args).fetchall())

    def close(self) -> None:
        # Counts of noise left out since they were last written (a run closed without finish_run).
        for run_id, run in list(self._open.items()):
            if not run.spooled and run.sample.unflushed:
                try:
                    self._write_omitted(run_id, run, time.time())
                except AuthprobeError:
                    pass  # the store is failing: closing must still close
        with self._lock:
            conns, self._all_conns = self._all_conns, []
        for conn in conns:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing what is already broken
                pass
        self._local = threading.local()
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    def __enter__(self) -> PostgresRunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema -----------------------------------------------------------------------------------------

    @staticmethod
    def _stored_version(conn: Any) -> int | None:
        if conn.execute("SELECT to_regclass('meta') AS t").fetchone()["t"] is None:
            return None
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        return int(row["value"]) if row else None

    def _migrate(self) -> None:
        if self._migrated:
            return

        def work(conn: Any) -> None:
            found = self._stored_version(conn)
            if found == SCHEMA_VERSION:
                return
            if found is not None and found > SCHEMA_VERSION:
                raise newer_schema(self.where, found)
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                found = self._stored_version(conn)   # another station may have done it meanwhile
                if found is not None and found > SCHEMA_VERSION:
                    raise newer_schema(self.where, found)
                for version in range((found or 0) + 1, SCHEMA_VERSION + 1):
                    for statement in _MIGRATIONS[version]:
                        conn.execute(statement)
                    if version == 2:   # runs stored before: their fleet columns from their reports
                        for row in conn.execute("SELECT run_id, report FROM runs WHERE report IS NOT NULL").fetchall():
                            self._write_fleet_columns(conn, row["run_id"], json.loads(row["report"]))
                conn.execute("INSERT INTO meta VALUES ('schema', %s) ON CONFLICT (key) DO UPDATE "
                             "SET value = EXCLUDED.value", (str(SCHEMA_VERSION),))

        import psycopg

        try:
            self._call(work)
            self._migrated = True
        except psycopg.errors.InsufficientPrivilege as exc:
            raise StoreError(f"run store {self.where}: this user may not create authprobe's tables "
                             f"({_reason(exc)}); let it own the database, or create them once as its owner") from None

    # -- the spool ---------------------------------------------------------------------------------------

    def _spool_store(self) -> RunStore:
        with self._lock:
            if self._spool is None:
                assert self.spool_path is not None
                self._spool = RunStore(self.spool_path, station=self.station)
            return self._spool

    def _went_offline(self, exc: StoreUnavailable) -> None:
        with self._lock:
            first = self._offline_until is None
            self._offline_until = time.monotonic() + RETRY_OFFLINE_S
        if first:
            self._warn(f"{exc}; keeping runs in {self.spool_path} until it is back, then "
                       f"`authprobe runs sync --store {self.where}` pushes them")

    def _offline(self) -> bool:
        return self._offline_until is not None and time.monotonic() < self._offline_until

    def _back_online(self) -> None:
        with self._lock:
            was_offline, self._offline_until = self._offline_until is not None, None
        if was_offline:
            self._warn(f"run store {self.where} is reachable again: new runs go there; "
                       f"`authprobe runs sync --store {self.where}` pushes the ones kept in {self.spool_path}")

    def _to_spool(self, run_id: str, run: _OpenRun, exc: StoreUnavailable) -> None:
        """Move a run being written to the spool: its beginning and every line so far."""
        if self.spool_path is None:
            raise exc
        self._went_offline(exc)
        spool = self._spool_store()
        spool.begin_run(**run.begin)
        for line in run.lines:
            spool.add_line(run_id, **line)
        if run.sample.omitted_lines:
            # The noise counted here so far: one `omitted` line (the spool counts what comes after).
            spool.add_line(run_id, b"", t=time.time(), kind=line_sample.OMITTED, reason=run.sample.summary())
        spool.spool_add(run_id, self.where)
        run.spooled = True

    # -- writing (the collector) -------------------------------------------------------------------------

    def begin_run(self, *, port: str | None, board: str | None = None, identity: dict[str, Any] | None = None,
                  run_id: str | None = None, started: float | None = None, station: str | None = None) -> str:
        started = time.time() if started is None else started
        chosen = run_id or new_run_id(started)
        begin = {"port": port, "board": board, "identity": identity or {}, "run_id": chosen, "started": started,
                 "station": station or self.station}
        run = _OpenRun(begin)
        if self._offline() and self.spool_path is not None:
            self._to_spool(chosen, run, StoreUnavailable(f"run store {self.where}: unreachable"))
        else:
            try:
                self._migrate()   # a store opened while the server was away has not seen its schema yet
                chosen = self._insert_run(begin, fixed=run_id is not None)
                begin["run_id"] = chosen
                self._back_online()
            except StoreUnavailable as exc:
                self._to_spool(chosen, run, exc)
        self._open[chosen] = run
        self._line_seq[chosen] = 0
        self._record_seq[chosen] = 0
        return chosen

    def _insert_run(self, begin: dict[str, Any], *, fixed: bool) -> str:
        # A repeated insert of our own run (the first one's answer was lost) matches station and start;
        # anything else under that id is another station's run: a fresh id, or an error if it was given.
        sql = ("INSERT INTO runs (run_id, started, port, board, identity, status, station) "
               "VALUES (%s, %s, %s, %s, %s, 'collecting', %s) ON CONFLICT (run_id) DO UPDATE SET run_id = "
               "EXCLUDED.run_id WHERE runs.station = EXCLUDED.station AND runs.started = EXCLUDED.started "
               "RETURNING run_id")
        for _ in range(5):
            args = (begin["run_id"], begin["started"], begin["port"], begin["board"], json.dumps(begin["identity"]),
                    begin["station"])
            if self._call(lambda conn, args=args: conn.execute(sql, args).fetchone()) is not None:
                return begin["run_id"]
            if fixed:
                raise StoreError(f"run {begin['run_id']} already exists in {self.where} (another station's); "
                                 f"run ids must be unique")
            begin["run_id"] = new_run_id(begin["started"])
        raise StoreError(f"run store {self.where}: no free run id after 5 tries")

    def add_line(self, run_id: str, raw: bytes, *, t: float, kind: str, reason: str | None = None,
                 record: dict[str, Any] | None = None) -> int:
        """Store one line (and its record, when it held a good one) at once: nothing is lost if the
        run stops right after. Noise past the run's sample budget is only counted (line_sample); then
        the seq of the run's `omitted` line is returned."""
        run = self._open.get(run_id)
        if run is not None:
            if run.spooled:
                return self._spool_store().add_line(run_id, raw, t=t, kind=kind, reason=reason, record=record)
            if not run.sample.keep(kind, reason, len(raw)):
                if run.sample.row_seq is None or run.sample.flush_due():
                    self._write_omitted(run_id, run, t)
                return run.sample.row_seq or 0
            run.lines.append({"raw": raw, "t": t, "kind": kind, "reason": reason, "record": record})
        seq = self._line_seq.get(run_id, 0) + 1
        self._line_seq[run_id] = seq
        line = (run_id, seq, t, kind, reason, raw)
        if record is None:
            sql, args = _INSERT_LINE, line
        else:
            rseq = self._record_seq.get(run_id, 0) + 1
            self._record_seq[run_id] = rseq
            rec = (run_id, rseq, t, seq, record.get("k"), json.dumps(record))
            if record.get("k") == "begin":
                sql = _INSERT_BEGIN_RECORD
                args = (*line, *rec, record.get("run"), record.get("uid"), record.get("client_id"), run_id)
            else:
                sql, args = _INSERT_LINE_AND_RECORD, (*line, *rec)
        try:
            self._call(lambda conn: conn.execute(sql, args))
        except StoreUnavailable as exc:
            if run is None:
                raise
            self._to_spool(run_id, run, exc)
        return seq

    def _write_omitted(self, run_id: str, run: _OpenRun, t: float) -> None:
        if run.sample.row_seq is None:
            run.sample.row_seq = self._line_seq.get(run_id, 0) + 1
            self._line_seq[run_id] = run.sample.row_seq
        args = (run_id, run.sample.row_seq, t, line_sample.OMITTED, run.sample.summary(), b"")
        try:
            self._call(lambda conn: conn.execute(_UPSERT_OMITTED, args))
        except StoreUnavailable as exc:
            run.sample.unflushed = 1   # not written: the spool gets the counts
            self._to_spool(run_id, run, exc)

    def finish_run(self, run_id: str, report: dict[str, Any], *, status: str, reason: str | None = None,
                   ended: float | None = None) -> None:
        ended = time.time() if ended is None else ended
        run = self._open.get(run_id)
        try:
            if run is not None and not run.spooled and run.sample.unflushed:
                self._write_omitted(run_id, run, ended)
            if run is not None and run.spooled:
                self._spool_store().finish_run(run_id, report, status=status, reason=reason, ended=ended)
                return
            try:
                self._call(lambda conn: self._write_finish(conn, run_id, report, status, reason, ended))
            except StoreUnavailable as exc:
                if run is None:
                    raise
                self._to_spool(run_id, run, exc)
                self._spool_store().finish_run(run_id, report, status=status, reason=reason, ended=ended)
        finally:
            self._open.pop(run_id, None)
            self._line_seq.pop(run_id, None)
            self._record_seq.pop(run_id, None)

    @staticmethod
    def _write_fleet_columns(conn: Any, run_id: str, report: dict[str, Any]) -> None:
        cols = fleet_columns(report)
        conn.execute("UPDATE runs SET root_cause = %s, firmware = %s WHERE run_id = %s",
                     (cols["root_cause"], cols["firmware"], run_id))
        conn.execute("DELETE FROM steps WHERE run_id = %s", (run_id,))
        rows = [(run_id, *row) for row in step_rows(report)]
        if rows:
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO steps VALUES (%s, %s, %s, %s, %s, %s)", rows)

    def _write_finish(self, conn: Any, run_id: str, report: dict[str, Any], status: str, reason: str | None,
                      ended: float) -> None:
        with conn.transaction():
            conn.execute("UPDATE runs SET ended = %s, status = %s, reason = %s, verdict = %s, report = %s "
                         "WHERE run_id = %s", (ended, status, reason, report.get("verdict"), json.dumps(report), run_id))
            self._write_fleet_columns(conn, run_id, report)

    def save_report(self, run_id: str, report: dict[str, Any]) -> None:
        """Replace a run's report (e.g. after correlation added cloud evidence to its diagnosis)."""
        def work(conn: Any) -> None:
            with conn.transaction():
                conn.execute("UPDATE runs SET report = %s, verdict = %s WHERE run_id = %s",
                             (json.dumps(report), report.get("verdict"), run_id))
                self._write_fleet_columns(conn, run_id, report)

        self._call(work)

    def add_replay(self, *, at: float, until: float, authorizer: str | None = None, client_id: str | None = None,
                   invoked: bool | None = None) -> None:
        """Record one TestInvokeAuthorizer call authprobe made (epoch seconds), so every station's
        correlation labels its function log lines `replay` instead of taking them for a device's."""
        self._call(lambda conn: conn.execute("INSERT INTO replays VALUES (%s, %s, %s, %s, %s)",
                                             (at, until, authorizer, client_id, invoked)))

    def list_replays(self, *, since: float | None = None, until: float | None = None,
                     client_ids: set[str] | None = None) -> list[dict[str, Any]]:
        """Recorded replays, oldest first, as {at, until (epoch seconds), authorizer, client_id,
        invoked}; `since`/`until` bound `at`."""
        sql = "SELECT at, until, authorizer, client_id, invoked FROM replays WHERE TRUE"
        args: list[Any] = []
        if since is not None:
            sql += " AND at >= %s"
            args.append(since)
        if until is not None:
            sql += " AND at <= %s"
            args.append(until)
        rows = [dict(r) for r in self._rows(sql + " ORDER BY at", args)]
        return rows if client_ids is None else [r for r in rows if r["client_id"] in client_ids]

    def import_run(self, exported: dict[str, Any]) -> bool:
        """Push one run exported from another store (RunStore.export_run): its row, lines and records,
        adding what is missing. False when another station's run already holds its id."""
        run = exported["run"]
        values = tuple(run.get(c) for c in _RUN_COLUMNS)
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in _RUN_COLUMNS[3:])

        def work(conn: Any) -> bool:
            with conn.transaction():
                row = conn.execute(
                    f"INSERT INTO runs ({', '.join(_RUN_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_RUN_COLUMNS))}) "
                    f"ON CONFLICT (run_id) DO UPDATE SET {updates} WHERE runs.station IS NOT DISTINCT FROM "
                    f"EXCLUDED.station AND runs.started = EXCLUDED.started RETURNING run_id", values).fetchone()
                if row is None:
                    return False
                with conn.cursor() as cur:
                    if exported["lines"]:
                        cur.executemany(_INSERT_LINE, [(run["run_id"], *ln) for ln in exported["lines"]])
                    if exported["records"]:
                        cur.executemany("INSERT INTO records (run_id, seq, t, line_seq, kind, record) VALUES "
                                        "(%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                                        [(run["run_id"], *r) for r in exported["records"]])
                if run.get("report"):
                    self._write_fleet_columns(conn, run["run_id"], json.loads(run["report"]))
                return True

        return self._call(work)

    # -- reading -----------------------------------------------------------------------------------------

    def _row(self, row: dict[str, Any]) -> dict[str, Any]:
        return run_dict(row, json.loads(row["identity"] or "{}"))

    def list_runs(self, *, limit: int | None = None, since: float | None = None, port: str | None = None,
                  uid: str | None = None, station: str | None = None) -> list[dict[str, Any]]:
        """Runs, newest first, as dicts (the same fields as the SQLite store's)."""
        sql = "SELECT * FROM runs WHERE true"
        args: list[Any] = []
        for column, value in (("port", port), ("uid", uid), ("station", station)):
            if value is not None:
                sql += f" AND {column} = %s"
                args.append(value)
        if since is not None:
            sql += " AND started >= %s"
            args.append(since)
        sql += " ORDER BY started DESC, n DESC"
        if limit is not None:
            sql += " LIMIT %s"
            args.append(limit)
        return [self._row(r) for r in self._rows(sql, args)]

    def resolve(self, ref: str) -> str:
        """A run id from a full id, a unique prefix, or `latest`."""
        if ref in ("latest", "last"):
            rows = self._rows("SELECT run_id FROM runs ORDER BY started DESC, n DESC LIMIT 1")
            if not rows:
                raise AuthprobeError(f"run store {self.where} holds no runs yet; `authprobe run` adds them")
            return rows[0]["run_id"]
        prefix = ref.replace("\\", "").replace("%", "").replace("_", "")
        rows = self._rows("SELECT run_id FROM runs WHERE run_id LIKE %s ORDER BY started DESC LIMIT 6",
                          (prefix + "%",))
        if not rows:
            raise AuthprobeError(f"no run {ref!r} in {self.where}; `authprobe runs` lists them")
        if len(rows) > 1 and rows[0]["run_id"] != ref:
            raise AuthprobeError(f"run {ref!r} is ambiguous in {self.where}: "
                                 f"{', '.join(r['run_id'] for r in rows[:5])}")
        return rows[0]["run_id"]

    def _run_row(self, run_id: str) -> dict[str, Any]:
        rows = self._rows("SELECT * FROM runs WHERE run_id = %s", (run_id,))
        if not rows:
            raise AuthprobeError(f"no run {run_id!r} in {self.where}; `authprobe runs` lists them")
        return rows[0]

    def get_run(self, run_id: str) -> dict[str, Any]:
        return self._row(self._run_row(run_id))

    def get_lines(self, run_id: str) -> list[dict[str, Any]]:
        """Every line received, in order: {seq, t, kind, reason, raw (bytes)}."""
        rows = self._rows("SELECT seq, t, kind, reason, raw FROM lines WHERE run_id = %s ORDER BY seq", (run_id,))
        return [dict(r, raw=bytes(r["raw"])) for r in rows]

    def get_records(self, run_id: str) -> list[dict[str, Any]]:
        """The decoded records, in order of arrival (with the host's receive time as `_rx`)."""
        rows = self._rows("SELECT t, record FROM records WHERE run_id = %s ORDER BY seq", (run_id,))
        out = []
        for r in rows:
            rec = json.loads(r["record"])
            # A record stored before records were checked against their schema is left out, as in SQLite.
            if record_schema.record_problem(rec) is None:
                out.append(dict(rec, _rx=r["t"]))
        return out

    def get_report(self, run_id: str) -> dict[str, Any]:
        """The run's JSON report; a run whose collection never finished is rebuilt from its stored
        lines and comes out 'incomplete'."""
        row = self._run_row(run_id)
        if row["report"]:
            return json.loads(row["report"])
        return report_from_lines(run_id, self.get_lines(run_id), run=self._row(row))

    # -- the fleet view ----------------------------------------------------------------------------------

    def fleet_runs(self, since: float | None = None) -> list[dict[str, Any]]:
        return self._rows("SELECT run_id, station, started, ended, board, uid, status, verdict, root_cause, firmware "
                          "FROM runs WHERE started >= %s ORDER BY started",
                          (since if since is not None else float("-inf"),))

    def fleet_steps(self, since: float | None = None) -> list[tuple[str, str | None, str | None, int | None]]:
        rows = self._rows("SELECT s.run_id, s.step, s.status, s.ms FROM steps s JOIN runs r ON r.run_id = s.run_id "
                          "WHERE r.started >= %s", (since if since is not None else float("-inf"),))
        return [(r["run_id"], r["step"], r["status"], r["ms"]) for r in rows]
