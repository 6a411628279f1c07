"""What `runs`, `boards --defs`, `run`, `cloud-check`, `correlate` and `drill` print, against goldens
at 80 and 200 columns, piped and on a terminal (tests/fixtures/cli_render_inputs.py). Widths are
set explicitly, so the terminal running the tests does not matter. Identifiers (run ids, ports,
board names, client ids, root-cause ids, codes) must come out whole; narrow tables leave out
columns instead, and say which."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time

import pytest

from tests.fixtures import cli_render_golden, cli_render_inputs
from tests.fixtures.cli_render_inputs import (
    ANSI,
    BY_ID_PORT,
    CHECKS,
    CORRELATED,
    DRILL,
    RECORDS,
    RUNS,
    WIDTHS,
)

CASES = [(name, width) for name in cli_render_inputs.RENDERERS for width in WIDTHS]


@pytest.mark.parametrize("terminal", [False, True], ids=["piped", "terminal"])
@pytest.mark.parametrize(("name", "width"), CASES, ids=[f"{n}-{w}" for n, w in CASES])
def test_output_matches_golden(name, width, terminal):
    assert cli_render_inputs.render(name, width, terminal) == cli_render_golden.GOLDEN[(name, width)]


def _identifiers() -> set[str]:
    from authprobe.board import definitions

    ids = {r["run_id"] for r in RUNS} | {r["port"] for r in RUNS} | {r["board"] for r in RUNS if r["board"]}
    ids |= set(definitions.load_boards())
    ids |= {c.root_cause for c in CHECKS if c.root_cause}
    ids |= {i["run_id"] for i in CORRELATED} | {i["client_id"] for i in CORRELATED}
    ids |= {d["root_cause"] for i in CORRELATED for d in i["diagnosis"]}
    ids |= {c.name for c in DRILL.cases} | {c.diagnosed for c in DRILL.cases if c.diagnosed}
    ids |= {r["name"] for r in RECORDS if r.get("name")} | {"wifi_wrong_password", "20261126T090000Z-abcdef"}
    return ids | {BY_ID_PORT}


# Where a cut identifier stops: an ellipsis, a line end (folded), padding or a column border.
BOUNDARIES = {"…", "\n", " ", "│", "┃", ""}


def cut_identifiers(text: str, identifiers: set[str], width: int) -> list[str]:
    """Identifiers that start somewhere in `text` but stop short (at a line end, an ellipsis, a
    column border), unless what is there is another identifier whole; one entry per cut."""
    cut = []
    for ident in identifiers:
        if len(ident) > width - 4:
            continue  # wider than the screen: it must wrap somewhere
        head = ident[:6]
        for m in re.finditer(re.escape(head), text):
            got = head
            while len(got) < len(ident) and text.startswith(ident[: len(got) + 1], m.start()):
                got = ident[: len(got) + 1]
            stop = text[m.start() + len(got): m.start() + len(got) + 1]
            # (a start of letters only that stops is a word of prose: "policy", "authorizer")
            if got != ident and not got.isalpha() and got not in identifiers and stop in BOUNDARIES:
                cut.append(ident)
    return cut


@pytest.mark.parametrize(("name", "width"), CASES, ids=[f"{n}-{w}" for n, w in CASES])
def test_identifiers_are_never_cut_or_split(name, width):
    text = cli_render_golden.GOLDEN[(name, width)]
    assert cut_identifiers(text, _identifiers(), width) == []


def test_a_cut_identifier_would_be_found():
    ids = {"20261202T011744Z-678741", "policy-denies-subscribe"}
    text = " 2026120… │ policy-denies-subscrib\n e │ the policy allows"
    assert sorted(cut_identifiers(text, ids, 80)) == sorted(ids)
    assert cut_identifiers(" 20261202T011744Z-678741 │ policy-denies-subscribe │ the policy allows", ids, 80) == []


def test_narrow_tables_say_what_they_left_out():
    assert "left out at 80 columns: port, board, uid" in cli_render_golden.GOLDEN[("runs", 80)]
    assert "left out" not in cli_render_golden.GOLDEN[("drill", 200)]


def test_the_device_run_id_is_not_shown_beside_the_stores():
    # One id per run: the begin record's own run id stays in the JSON, never on screen.
    assert "8339efab1d8d" not in cli_render_golden.GOLDEN[("run", 200)]


def test_failing_config_step_shows_the_problem_first():
    for width in WIDTHS:
        text = cli_render_golden.GOLDEN[("run", width)]
        live = text[text.index("config_port_not_443"):text.index("end fail")]
        assert live.index("fail 103 endpoint.port") < live.index("warn 118") < live.index("ca=[")
        table = text[text.index("config_signature_not_urlencoded"):]
        assert table.index("fail 113") < table.index("warn 118") < table.index("ca=[configured CA")


# -- the real command, piped and on a pty ------------------------------------------------------------


def _run_cli(args: list[str], width: int, terminal: bool) -> str:
    env = {"PATH": os.environ.get("PATH", ""), "COLUMNS": str(width), "LINES": "50", "LANG": "C.UTF-8",
           "PYTHONIOENCODING": "utf-8", "TERM": "xterm-256color" if terminal else "dumb"}
    cmd = [sys.executable, "-m", "authprobe.cli", *args]
    if not terminal:
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=True).stdout
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, width, 0, 0))
    proc = subprocess.Popen(cmd, env=env, stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(timeout=30) == 0, proc.stderr.read()
    proc.stderr.close()
    return ANSI.sub("", out.decode("utf-8")).replace("\r\n", "\n")


@pytest.mark.parametrize("terminal", [False, True], ids=["piped", "pty"])
@pytest.mark.parametrize("width", WIDTHS)
def test_the_commands_print_the_goldens(tmp_path, width, terminal):
    store = tmp_path / "runs.sqlite"
    cli_render_inputs.store_with_runs(store)
    assert _run_cli(["runs", "--store", str(store)], width, terminal) == cli_render_golden.GOLDEN[("runs", width)]
    assert _run_cli(["boards", "--defs"], width, terminal) == cli_render_golden.GOLDEN[("boards --defs", width)]
