"""Test tiers follow the folder: tests/host (pure logic), tests/device (real MicroPython, virtual
board, local stand-in), tests/e2e (the whole chain), tests/hil (real boards, opt-in)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Shared fixtures that live beside their helpers (e.g. `devices`, the paho devices a test made).
pytest_plugins = ["tests.fixtures.emulator"]
TIERS = ("host", "device", "e2e", "hil")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        rel = Path(str(item.fspath)).resolve().relative_to(ROOT / "tests")
        tier = rel.parts[0]
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))
