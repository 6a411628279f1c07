"""The run store (docs/contracts.md section 6). The SQLite backend lives in store/sqlite.py; the names
callers import from `authprobe.store` stay here."""

from __future__ import annotations

from authprobe.store.sqlite import DEFAULT_PATH, ENV, SCHEMA_VERSION, RunStore, default_path

__all__ = ["DEFAULT_PATH", "ENV", "SCHEMA_VERSION", "RunStore", "default_path"]
