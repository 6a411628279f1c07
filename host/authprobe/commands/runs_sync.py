"""`authprobe runs sync --store postgresql://...`: push the runs this station kept in its SQLite store
(.authprobe/runs.sqlite, or $AUTHPROBE_STORE when that names a file) while the PostgreSQL store
was out of reach."""

from __future__ import annotations

import argparse
import sys

from authprobe.errors import EXIT_USAGE, ConfigError
from authprobe.store import (
    PostgresRunStore,
    RunStore,
    StoreError,
    StoreUnavailable,
    default_path,
    open_store,
    store_spec,
)
from authprobe.store.base import is_url
from authprobe.store.sync import sync_spool


def run(args: argparse.Namespace) -> int:
    target = store_spec(args.store)
    if not is_url(target):
        raise ConfigError("runs sync pushes runs kept while a PostgreSQL store was out of reach: pass "
                          "--store postgresql://user@host:port/db (or set AUTHPROBE_STORE to it)")
    spool_path = default_path()
    if not spool_path.exists():
        print(f"nothing to push: no local store at {spool_path}", file=sys.stderr)
        return 0
    with RunStore(spool_path) as spool:
        if not spool.spool_pending():
            print(f"nothing to push: {spool_path} keeps no runs for a PostgreSQL store", file=sys.stderr)
            return 0
        try:
            store = open_store(target)
        except StoreUnavailable as exc:
            raise StoreUnavailable(f"{exc}; the runs stay in {spool_path}: sync again when it is back") from None
        assert isinstance(store, PostgresRunStore)
        with store:
            result = sync_spool(spool, store)
    for run_id in result.pushed:
        print(f"pushed {run_id}")
    for run_id in result.open:
        print(f"pushed {run_id} so far (still being collected: kept in {spool_path}, pushed again next sync)")
    print(f"{len(result.pushed) + len(result.open)} run(s) pushed to {store.where}", file=sys.stderr)
    if result.conflicts:
        raise StoreError(f"{len(result.conflicts)} run(s) not pushed, their ids belong to another station's runs "
                         f"in {store.where}: {', '.join(result.conflicts)} (kept in {spool_path})", EXIT_USAGE)
    return 0
