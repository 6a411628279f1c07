"""`monitor --raw` shows noise as it came, but with control bytes escaped: a boot log's colour codes,
cursor moves or a stray clear-screen are shown (`\\e[0;32m`), never obeyed by the terminal."""

from __future__ import annotations

from authprobe import cli
from authprobe.output import printable
from tests.fixtures.chattering_port import ChatteringPort


def test_raw_noise_is_shown_with_control_bytes_escaped(capsys):
    with ChatteringPort() as chatter:
        assert cli.main(["monitor", "--port", chatter.port, "--raw", "--timeout", "1"]) == 0
    out = capsys.readouterr().out
    assert "app: sensor reading" in out and "\\e[0;32mok\\e[0m" in out
    assert "\x1b" not in out


def test_printable_escapes_controls_and_keeps_text():
    assert printable(b"ok \x1b[2J\x07\xff\xc3\xa9\ttab\r") == "ok \\e[2J\\x07\\xffé\\ttab\\r"
    assert printable("plain – text") == "plain – text"
