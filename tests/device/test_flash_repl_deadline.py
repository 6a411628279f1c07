"""Every exchange with a board's REPL has a hard deadline (`flash --timeout`): a port that keeps
sending bytes but never shows a REPL is "no MicroPython/CircuitPython REPL answered on P" and an
incomplete deploy (exit 3), within the timeout, never a hang. mpremote alone waits forever there,
since its read timeouts only count while no byte arrives."""

from __future__ import annotations

import time

import pytest

from authprobe import cli
from authprobe.board import flash
from authprobe.board.repl_deadline import DeadlineSerial, ReplDeadline
from authprobe.errors import EXIT_INCOMPLETE
from tests.fixtures.chattering_port import ChatteringPort

EXAMPLE = "examples/device.toml"


@pytest.fixture(scope="module")
def example_cfg():
    from authprobe import device_config

    return device_config.load(EXAMPLE)


@pytest.mark.parametrize("raw_repl_banner", [False, True], ids=["no-repl-at-all", "repl-then-only-noise"])
def test_a_port_that_chatters_without_a_repl_ends_at_the_deadline(example_cfg, raw_repl_banner):
    with ChatteringPort(raw_repl_banner=raw_repl_banner) as chatter:
        t0 = time.monotonic()
        result = flash.flash([chatter.port], example_cfg, board="virtual", timeout=1.0)[0]
        took = time.monotonic() - t0
        assert chatter.sent > 1000  # it really kept talking the whole time
    assert result.status == "error" and result.exit_code == EXIT_INCOMPLETE
    assert f"no MicroPython/CircuitPython REPL answered on {chatter.port} within 1 s" in result.error
    assert "bytes that were no REPL prompt" in result.error
    assert "\x1b" not in result.error  # the chatter's colour codes are shown escaped, not obeyed
    # The deadline is per exchange; a read or write blocks at most the port's 1 s read timeout more.
    assert took < 4.5, took


def test_cli_flash_on_a_chattering_port_exits_3_with_the_message(capsys):
    with ChatteringPort() as chatter:
        rc = cli.main(["flash", "--port", chatter.port, "--board", "virtual", "--timeout", "1"])
    out = capsys.readouterr()
    assert rc == EXIT_INCOMPLETE
    assert f"no MicroPython/CircuitPython REPL answered on {chatter.port}" in out.out
    assert "internal error" not in out.err


class _Endless:
    """A port with a byte always waiting."""

    def read(self, size: int = 1) -> bytes:
        return b"x" * size

    def inWaiting(self) -> int:  # noqa: N802
        return 1

    def write(self, data: bytes) -> int:
        return len(data)


def test_deadline_serial_raises_on_the_first_read_after_the_deadline():
    line = DeadlineSerial(_Endless())
    line.arm(0.05)
    t0 = time.monotonic()
    with pytest.raises(ReplDeadline) as caught:
        while True:
            line.read(line.inWaiting())
    assert 0.05 <= time.monotonic() - t0 < 1
    assert caught.value.received > 0 and caught.value.tail.endswith(b"x")
    line.disarm()
    assert line.read(2) == b"xx"  # disarmed: a plain port again (closing must still work)
