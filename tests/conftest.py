"""Test tiers follow the folder: tests/host (pure logic), tests/device (real MicroPython, virtual
board, local stand-in), tests/e2e (the whole chain), tests/install (the built wheel in a fresh venv,
used from an empty folder), tests/hil (real boards, opt-in)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

ROOT = Path(__file__).resolve().parent.parent
# Shared fixtures that live beside their helpers (e.g. `devices`, the paho devices a test made;
# `postgres`, a PostgreSQL server started once per session).
pytest_plugins = ["tests.fixtures.emulator", "tests.fixtures.postgres"]
TIERS = ("host", "device", "e2e", "install", "hil")

# Property-based tests (marked `fuzz`) run in every `make test` with a bounded, repeatable example
# count, so CI is deterministic; `make fuzz` runs the same tests with the long profile for minutes.
settings.register_profile("ci", max_examples=150, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", max_examples=20_000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        rel = Path(str(item.fspath)).resolve().relative_to(ROOT / "tests")
        tier = rel.parts[0]
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))
