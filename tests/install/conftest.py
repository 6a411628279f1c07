"""The install tier: the wheel is built and installed once per session (tests/fixtures/installed.py);
each test gets an empty folder to run the installed tool in."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.installed import Installed, build_and_install


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Installed:
    return build_and_install(tmp_path_factory.mktemp("install"))


@pytest.fixture
def empty_folder(tmp_path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder
