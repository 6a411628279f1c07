"""pytest plugin (entry point `authprobe`): fixtures for teams writing their own device tests.

Hardware tests carry the `hil` marker and run only when AUTHPROBE_HIL_PORTS names real serial
ports (comma-separated); otherwise they are skipped with that reason."""

from __future__ import annotations

import os

import pytest

HIL_ENV = "AUTHPROBE_HIL_PORTS"


def hil_ports() -> list[str]:
    return [p.strip() for p in os.environ.get(HIL_ENV, "").split(",") if p.strip()]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hil: real boards named in AUTHPROBE_HIL_PORTS")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hil_ports():
        return
    skip = pytest.mark.skip(reason=f"no board named: set {HIL_ENV}=/dev/ttyUSB0[,...] to run hardware tests")
    for item in items:
        if "hil" in item.keywords:
            item.add_marker(skip)
