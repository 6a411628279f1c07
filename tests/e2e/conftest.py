"""Fixtures shared by the end-to-end tests (the drill's stand-ins and virtual board)."""

from __future__ import annotations

import pytest

from tests.fixtures.e2e_drill import SessionDrill


@pytest.fixture(scope="session")
def session_drill(request, tmp_path_factory):
    try:
        from authprobe.board.virtual import micropython_path

        micropython_path()
    except Exception as exc:  # the unix port has wheels for Linux x86_64 only
        pytest.skip(f"the drill needs the MicroPython unix port: {exc}")
    selected = [item.callspec.params["case"] for item in request.session.items
                if getattr(item, "originalname", None) == "test_fault_is_diagnosed_as_injected"]
    drill = SessionDrill(tmp_path_factory.mktemp("drill"), selected)
    yield drill
    drill.close()
