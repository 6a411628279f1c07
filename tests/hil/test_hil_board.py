"""Hardware tests: real boards named in AUTHPROBE_HIL_PORTS (comma-separated). Skipped with that
reason otherwise. AUTHPROBE_HIL_CONFIG names the device.toml to deploy (default examples/device.toml:
it reaches no real endpoint, so only the steps before DNS can pass), AUTHPROBE_HIL_BOARD the board
definition when the USB id is ambiguous."""

from __future__ import annotations

import os

from authprobe.board import definitions as boards
from authprobe.board import flash
from authprobe.pytest_plugin import hil_ports

CONFIG = os.environ.get("AUTHPROBE_HIL_CONFIG", "examples/device.toml")


def test_banner_names_the_runtime():
    for port in hil_ports():
        found = boards.probe_banner(port, timeout=5)
        assert found is not None, f"{port}: no REPL banner"
        assert found["runtime"] in ("micropython", "circuitpython")


def test_flash_twice_second_is_one_round_trip(authprobe_board):
    first = authprobe_board.flash(CONFIG)
    assert first.ok, first.error
    again = authprobe_board.flash(CONFIG)
    assert again.status == "unchanged"
    if again.method != "circuitpy-drive":
        assert again.round_trips == 1


def test_run_completes_with_a_record_per_step(authprobe_board):
    authprobe_board.flash(CONFIG)
    result = authprobe_board.run(timeout=90)
    assert result.status == "complete", result.report.get("collection")
    assert result.report["device"].get("uid")
    assert [s["seq"] for s in result.report["steps"]] == list(range(1, len(result.report["steps"]) + 1))


def test_every_named_port_flashes_in_parallel():
    results = flash.flash(hil_ports(), CONFIG, board=os.environ.get("AUTHPROBE_HIL_BOARD"))
    assert all(r.ok for r in results), [(r.port, r.error) for r in results]
