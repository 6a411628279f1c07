"""Which store a spec names: a `postgresql://` URL is the PostgreSQL store a line of stations shares;
anything else is a path to a SQLite store; nothing means $AUTHPROBE_STORE, else .authprobe/runs.sqlite."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from authprobe.store.base import RunStoreBackend, is_url
from authprobe.store.postgres import PostgresRunStore
from authprobe.store.sqlite import ENV, RunStore, default_path


def store_spec(spec: str | os.PathLike[str] | None = None) -> str:
    """The store a command means: its --store, else $AUTHPROBE_STORE, else the SQLite default."""
    if spec is not None and str(spec) != "":
        return str(spec)
    return os.environ.get(ENV) or str(default_path())


def missing_local_store(spec: str | os.PathLike[str] | None = None) -> Path | None:
    """The SQLite file a spec names when it does not exist yet (a reader has nothing to read);
    None for a file that exists or a server (which answers for itself)."""
    resolved = store_spec(spec)
    if is_url(resolved):
        return None
    path = Path(resolved)
    return None if path.exists() else path


def open_store(spec: str | os.PathLike[str] | None = None, *, station: str | None = None,
               spool: bool | str | os.PathLike[str] = False,
               on_warning: Callable[[str], None] | None = None) -> RunStoreBackend:
    """The run store a spec names (see store_spec).

    Args:
        spec: a path (SQLite) or postgresql://user@host:port/db; None for the default.
        station: what runs begun through this store record as their station (default: the host name).
        spool: for a PostgreSQL store that writes runs: True (the SQLite default) or a path where runs are
            kept while the server cannot be reached; False to fail instead (readers).
        on_warning: told when runs start going to the spool, and when the server is back.
    """
    resolved = store_spec(spec)
    if is_url(resolved):
        spool_path = default_path() if spool is True else (spool or None)
        return PostgresRunStore(resolved, station=station, spool=spool_path, on_warning=on_warning)
    return RunStore(resolved, station=station)
