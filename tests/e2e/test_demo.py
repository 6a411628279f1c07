"""`make demo`'s two scenarios through the whole chain (stand-in with the example authorizer, a
virtual board flashed over mpremote's raw REPL, the run store, cloud-check, correlation), and its
promise to stop every process it started."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from authprobe.drill import demo
from authprobe.store import RunStore
from tests.fixtures.e2e_processes import micropython_children, wait_gone
from tests.fixtures.processes import popen_as_from_a_terminal


@pytest.fixture(autouse=True)
def _needs_the_unix_port():
    try:
        from authprobe.board.virtual import micropython_path

        micropython_path()
    except Exception as exc:
        pytest.skip(f"the demo needs the MicroPython unix port: {exc}")


def test_demo_shows_a_pass_then_diagnoses_the_unencoded_signature(tmp_path, capsys):
    before = micropython_children()
    t0 = time.monotonic()
    page = tmp_path / "demo.html"
    assert demo.main(["--keep", str(tmp_path), "--html", str(page)]) == 0
    elapsed = time.monotonic() - t0
    out = capsys.readouterr().out
    assert elapsed < 60, f"the demo promises under a minute, took {elapsed:.1f} s"
    assert "PASS: the board reached AWS IoT Core" in out
    assert "Connect Success" in out and "Publish-Out Success" in out   # the stand-in's records, correlated
    assert "signature-not-urlencoded" in out and "Percent-encode" in out and "Evidence" in out
    # The runs are in the kept store with their correlated diagnosis.
    with RunStore(tmp_path / "runs.sqlite") as store:
        runs = store.list_runs()
        assert len(runs) == 2
        reports = sorted((store.get_report(r["run_id"]) for r in runs), key=lambda r: r["device"]["client_id"])
    healthy, broken = reports
    assert healthy["verdict"] == "pass" and healthy["diagnosis"] == []
    assert broken["verdict"] == "fail"
    assert broken["diagnosis"][0]["root_cause"] == "signature-not-urlencoded" and broken["diagnosis"][0]["decided"]
    # Secrets stay fingerprints: neither the token nor the signature is printed.
    from authprobe.drill.standin import EXAMPLE_TOKEN, example_signature

    assert EXAMPLE_TOKEN not in out and example_signature()[:40] not in out
    assert not wait_gone(before)
    # The page carries both runs, the healthy one with its cloud records.
    text = page.read_text()
    assert text.count("<section class='run'") == 2 and "Publish-Out Success" in text
    assert "signature-not-urlencoded" in text and EXAMPLE_TOKEN not in text


def test_demo_keep_in_a_folder_it_cannot_make_is_a_clear_error(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert demo.main(["--keep", str(blocker / "kept")]) == 2
    out = capsys.readouterr().out
    assert "--keep" in out and "cannot make that folder" in out


def test_demo_stops_the_board_and_the_stand_in_on_ctrl_c(tmp_path, monkeypatch, capsys):
    started = {}
    real_start = demo.Demo.start

    def start_then_interrupt(self):
        real_start(self)
        started["port"] = self.board.port
        started["emulator"] = self.standin.emulator
        raise KeyboardInterrupt

    monkeypatch.setattr(demo.Demo, "start", start_then_interrupt)
    before = micropython_children()
    assert demo.main(["--keep", str(tmp_path)]) == 130
    assert "interrupted" in capsys.readouterr().out
    assert not wait_gone(before)
    emu = started["emulator"]
    import socket

    with pytest.raises(OSError):
        socket.create_connection((emu.host, emu.port), timeout=0.5).close()


def test_demo_process_stops_its_board_on_sigint(tmp_path):
    """`make demo` as a user runs it, interrupted with Ctrl-C (SIGINT) while the board is running:
    it exits 130 and leaves no interpreter behind (none still holds the board's flash folder)."""
    import signal
    import subprocess
    import sys

    env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="100")
    proc = popen_as_from_a_terminal([sys.executable, "-m", "authprobe.drill.demo", "--keep", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("device.toml:"):  # the board is being flashed and run next
                proc.send_signal(signal.SIGINT)
                break
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = "".join(seen) + rest
    assert proc.returncode == 130, output
    assert "interrupted" in output
    flash_dir = str(tmp_path / "board")
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and _holding(flash_dir):
        time.sleep(0.05)
    assert not _holding(flash_dir), "a MicroPython interpreter of the demo's board is still running"


def _holding(path: str) -> list[int]:
    """PIDs whose command line names `path` (the board's interpreter is started with its flash folder)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if path.encode() in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
        except OSError:
            continue
    return pids
