"""`authprobe runs sync`: push the runs a station kept in its SQLite store while the PostgreSQL store
was out of reach. Every push adds only what is missing, so pushing twice is harmless; a run still
being collected is pushed as far as it goes and stays in the spool until it ends."""

from __future__ import annotations

from dataclasses import dataclass, field

from authprobe.store.postgres import PostgresRunStore
from authprobe.store.sqlite import RunStore


@dataclass
class SyncResult:
    pushed: list[str] = field(default_factory=list)        # whole runs, now gone from the spool
    open: list[str] = field(default_factory=list)          # still being collected: pushed so far, kept
    conflicts: list[str] = field(default_factory=list)     # another station's run has the id: kept


def sync_spool(spool: RunStore, target: PostgresRunStore) -> SyncResult:
    """Push every spooled run of `spool` into `target` (StoreUnavailable when it cannot be reached)."""
    result = SyncResult()
    for run_id, _bound_for in spool.spool_pending():
        exported = spool.export_run(run_id)
        if not target.import_run(exported):
            result.conflicts.append(run_id)
        elif exported["run"]["status"] == "collecting":
            result.open.append(run_id)
        else:
            spool.spool_done(run_id)
            result.pushed.append(run_id)
    return result
