"""pytest plugin (entry point `authprobe`): fixtures for teams writing their own device tests.

Hardware tests carry the `hil` marker and run only when AUTHPROBE_HIL_PORTS names real serial
ports (comma-separated); otherwise they are skipped with that reason.

Fixtures:
- `authprobe_virtual_board`: a started virtual board (flash in tmp_path), stopped afterwards.
- `authprobe_virtual_boards`: a factory, `make(name=..., wifi_fault=...)`, for several at once.
- `authprobe_board`: a `BoardUnderTest` on the first port of AUTHPROBE_HIL_PORTS, or on a virtual
  board when none is named; `.flash(config)` then `.run()` gives a collect.RunResult.
- `authprobe_store`: a RunStore in tmp_path.
- `authprobe_endpoint`: the local AWS IoT stand-in, from the `authprobe_endpoint_factory` hook
  fixture; override that fixture in your conftest.py to point the tests at your own endpoint."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from authprobe.board import collect, flash
from authprobe.board.virtual import VirtualBoard, micropython_path
from authprobe.emulator import Emulator, load_config
from authprobe.store import open_store

HIL_ENV = "AUTHPROBE_HIL_PORTS"


def hil_ports() -> list[str]:
    return [p.strip() for p in os.environ.get(HIL_ENV, "").split(",") if p.strip()]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hil: real boards named in AUTHPROBE_HIL_PORTS")
    config.addinivalue_line("markers", "authprobe_endpoint(config): the stand-in config for authprobe_endpoint")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hil_ports():
        return
    skip = pytest.mark.skip(reason=f"no board named: set {HIL_ENV}=/dev/ttyUSB0[,...] to run hardware tests")
    for item in items:
        if "hil" in item.keywords:
            item.add_marker(skip)


@dataclass
class BoardUnderTest:
    """A port plus what it takes to put the self-test on it and read a run back."""

    port: str
    board: str | None = None
    virtual: Any = None                       # the VirtualBoard when there is no hardware
    store: Any = None
    results: list[Any] = field(default_factory=list)

    def flash(self, config: str | os.PathLike[str] | dict[str, Any], **kwargs: Any) -> Any:
        return flash.flash_port(self.port, config, board=self.board, **kwargs)

    def run(self, timeout: float = 60.0, **kwargs: Any) -> Any:
        if self.virtual is not None and "reset" not in kwargs:
            kwargs["reset"] = "repl"
        result = collect.collect(self.port, timeout=timeout, store=self.store, board=self.board, **kwargs)
        self.results.append(result)
        return result


@pytest.fixture
def authprobe_virtual_boards(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    try:
        micropython_path()
    except Exception as exc:  # the unix port has wheels for Linux x86_64 only
        pytest.skip(f"virtual board unavailable: {exc}")
    started: list[Any] = []

    def make(name: str | None = None, **kwargs: Any) -> Any:
        name = name or f"vb{len(started)}"
        board = VirtualBoard(kwargs.pop("flash_dir", tmp_path / f"flash-{name}"), name=name, **kwargs)
        board.start()
        started.append(board)
        # Power-on boot (boot.py, main.py) finishes first, so a test that puts files on the flash
        # next is not racing the board's own first run.
        board.wait_ready()
        return board

    yield make
    for board in started:
        board.stop()


@pytest.fixture
def authprobe_virtual_board(authprobe_virtual_boards: Callable[..., Any]) -> Any:
    return authprobe_virtual_boards()


@pytest.fixture
def authprobe_store(tmp_path: Path) -> Iterator[Any]:
    store = open_store(tmp_path / "runs.sqlite")
    yield store
    store.close()


@pytest.fixture
def authprobe_board(request: pytest.FixtureRequest, authprobe_store: Any) -> Any:
    ports = hil_ports()
    if ports:
        return BoardUnderTest(port=ports[0], board=os.environ.get("AUTHPROBE_HIL_BOARD"), store=authprobe_store)
    make = request.getfixturevalue("authprobe_virtual_boards")
    vb = make()
    return BoardUnderTest(port=vb.port, board="virtual", virtual=vb, store=authprobe_store)


@pytest.fixture
def authprobe_endpoint_factory() -> Callable[..., Any]:
    """Hook: returns a context manager factory for the endpoint under test. The default starts the
    local stand-in (authprobe.emulator) from a config file; override it to use your own."""
    def factory(config_path: str | os.PathLike[str]) -> Any:
        return Emulator(load_config(config_path))

    return factory


@pytest.fixture
def authprobe_endpoint(request: pytest.FixtureRequest, authprobe_endpoint_factory: Callable[..., Any]) -> Iterator[Any]:
    """The stand-in for a test marked `@pytest.mark.authprobe_endpoint("path/to/emulator.toml")`."""
    marker = request.node.get_closest_marker("authprobe_endpoint")
    if marker is None or not marker.args:
        pytest.skip("mark the test with @pytest.mark.authprobe_endpoint(CONFIG) to start an endpoint")
    with authprobe_endpoint_factory(marker.args[0]) as endpoint:
        yield endpoint
