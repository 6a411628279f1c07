"""What every run store backend offers (`RunStoreBackend`: SQLite on one station, PostgreSQL for a
line of them) and the parts they share: the schema version, store specs (a path or a
`postgresql://` URL, its password never shown), the station a run records, and the fleet columns a
finished run's report fills in (leading root cause, firmware, step timings)."""

from __future__ import annotations

import socket
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from authprobe.board.run_log import iso_utc
from authprobe.errors import EXIT_USAGE, AuthprobeError

# Version 1: runs, lines, records. Version 2: every run's station, its leading root cause and
# firmware, a steps table (the fleet view reads these), and the spool (runs kept for a server).
SCHEMA_VERSION = 3
URL_SCHEMES = ("postgresql://", "postgres://")


class StoreError(AuthprobeError):
    """The run store cannot be opened, read or written; the message names the store and the way out."""

    exit_code = EXIT_USAGE


class StoreUnavailable(StoreError):
    """A store server that cannot be reached (down, refused, wrong password, connection dropped)."""


def is_url(spec: object) -> bool:
    return isinstance(spec, str) and spec.startswith(URL_SCHEMES)


def redact_url(url: str) -> str:
    """The URL without its password (user@host:port/db), fit for messages, logs and the spool."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def default_station() -> str:
    """The station a run records when none is named: this host's name."""
    return socket.gethostname() or "station"


def newer_schema(where: str, found: int) -> StoreError:
    return StoreError(f"run store {where} has schema version {found}, written by a newer authprobe "
                      f"(this one knows up to {SCHEMA_VERSION}); it is left untouched: upgrade authprobe "
                      f"on this station, or pass --store for another store")


def fleet_columns(report: dict[str, Any]) -> dict[str, Any]:
    """What the fleet view groups a run by, from its report: the leading root cause of a run that did
    not pass, and the firmware its board reported."""
    diagnosis = report.get("diagnosis") or []
    lead = diagnosis[0].get("root_cause") if diagnosis and isinstance(diagnosis[0], dict) else None
    device = report.get("device") or {}
    firmware = device.get("firmware") or device.get("runtime_version")
    return {"root_cause": lead if report.get("verdict") != "pass" else None,
            "firmware": str(firmware) if firmware else None}


def step_rows(report: dict[str, Any]) -> list[tuple[int, str | None, str | None, str | None, int | None]]:
    """(seq, step, name, status, elapsed ms) for each step the report holds, numbered in order."""
    rows = []
    for i, st in enumerate(report.get("steps") or [], 1):
        ms = st.get("elapsed_ms")
        rows.append((i, st.get("step"), st.get("name"), st.get("status"),
                     int(ms) if isinstance(ms, int | float) else None))
    return rows


def run_dict(row: Any, identity: dict[str, Any]) -> dict[str, Any]:
    """A runs-table row as list_runs() and get_run() return it, the same for every backend (a
    damaged SQLite file may leave `started` missing)."""
    started, ended = row["started"], row["ended"]
    return {
        "run_id": row["run_id"],
        "station": row["station"],
        "started": iso_utc(started) if started is not None else None,
        "ended": iso_utc(ended) if ended is not None else None,
        "started_epoch": started,
        "ended_epoch": ended,
        "duration_s": round(ended - started, 3) if ended and started is not None else None,
        "port": row["port"],
        "board": row["board"],
        "identity": identity,
        "device_run": row["device_run"],
        "uid": row["uid"],
        "client_id": row["client_id"],
        "status": row["status"],
        "reason": row["reason"],
        "verdict": row["verdict"] or ("incomplete" if row["status"] != "complete" else None),
        "root_cause": row["root_cause"],
        "firmware": row["firmware"],
    }


FLEET_RUN_COLUMNS = ("run_id", "station", "started", "ended", "board", "uid", "status", "verdict",
                     "root_cause", "firmware")


class RunStoreBackend(Protocol):
    """One run store, whichever backend holds it. `where` names it in messages (no password);
    `station` is what runs begun here record."""

    where: str
    station: str

    def begin_run(self, *, port: str | None, board: str | None = None, identity: dict[str, Any] | None = None,
                  run_id: str | None = None, started: float | None = None, station: str | None = None) -> str: ...

    def add_line(self, run_id: str, raw: bytes, *, t: float, kind: str, reason: str | None = None,
                 record: dict[str, Any] | None = None) -> int: ...

    def finish_run(self, run_id: str, report: dict[str, Any], *, status: str, reason: str | None = None,
                   ended: float | None = None) -> None: ...

    def save_report(self, run_id: str, report: dict[str, Any]) -> None: ...

    def add_replay(self, *, at: float, until: float, authorizer: str | None = None, client_id: str | None = None,
                   invoked: bool | None = None) -> None: ...

    def list_replays(self, *, since: float | None = None, until: float | None = None,
                     client_ids: set[str] | None = None) -> list[dict[str, Any]]: ...

    def list_runs(self, *, limit: int | None = None, since: float | None = None, port: str | None = None,
                  uid: str | None = None, station: str | None = None) -> list[dict[str, Any]]: ...

    def resolve(self, ref: str) -> str: ...

    def get_run(self, run_id: str) -> dict[str, Any]: ...

    def get_lines(self, run_id: str) -> list[dict[str, Any]]: ...

    def get_records(self, run_id: str) -> list[dict[str, Any]]: ...

    def get_report(self, run_id: str) -> dict[str, Any]: ...

    def fleet_runs(self, since: float | None = None) -> list[dict[str, Any]]:
        """FLEET_RUN_COLUMNS of every run started since then (epoch seconds)."""
        ...

    def fleet_steps(self, since: float | None = None) -> list[tuple[str, str | None, str | None, int | None]]:
        """(run_id, step, status, elapsed ms) of every step of those runs."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> RunStoreBackend: ...

    def __exit__(self, *exc: object) -> None: ...

