"""The run store (docs/contracts.md section 6): SQLite on one station (store/sqlite.py), PostgreSQL
for a line of stations (store/postgres.py), one interface (store/base.RunStoreBackend) and
`open_store(spec)` to pick one. The names callers import from `authprobe.store` stay here."""

from __future__ import annotations

from authprobe.store.base import (
           SCHEMA_VERSION,
           RunStoreBackend,
           StoreError,
           StoreUnavailable,
           is_url,
           redact_url,
)
from authprobe.store.open import missing_local_store, open_store, store_spec
from authprobe.store.postgres import PostgresRunStore
from authprobe.store.sqlite import DEFAULT_PATH, ENV, RunStore, default_path

__all__ = ["DEFAULT_PATH", "ENV", "SCHEMA_VERSION", "PostgresRunStore", "RunStore", "RunStoreBackend", "StoreError",
           "StoreUnavailable", "default_path", "is_url", "missing_local_store", "open_store", "redact_url",
           "store_spec"]
