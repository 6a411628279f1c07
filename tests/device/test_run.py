"""Collection from virtual boards: pass, fail, hang (timeout), reset loop, garbage, a board that
vanishes mid-run; the run store filled as lines arrive; the `run`/`runs` CLI with its exit codes,
--json and --junit."""

from __future__ import annotations

import json
import threading
import time
from xml.etree import ElementTree as ET

import pytest

from authprobe import cli
from authprobe.board.collect import collect, combined_exit_code, run
from authprobe.store import RunStore
from tests.fixtures import board_programs as programs
from tests.fixtures.processes import popen_as_from_a_terminal


def board_with(make, program, **kw):
    board = make(**kw)
    programs.install(board.flash_dir, program)
    return board


def test_passing_run_is_stored_with_identity(authprobe_virtual_boards, authprobe_store):
    board = board_with(authprobe_virtual_boards, programs.PASSING)
    result = collect(board.port, timeout=10, store=authprobe_store, board="virtual", identity={"note": "bench 1"})
    assert (result.status, result.verdict, result.exit_code) == ("complete", "pass", 0)
    report = authprobe_store.get_report(result.run_id)
    assert report == result.report
    assert report["run_id"] == result.run_id and report["device"]["run"] == "dev-run"
    assert report["device"]["reset"] == 5          # machine.reset() from the REPL: SOFT_RESET on ESP32
    assert report["noise"]["lines"] >= 3 and report["noise"]["restarts"] == 1
    assert report["collection"]["reset"] == "repl"
    t = report["collection"]["timings"]
    assert 0 <= t["first_byte_ms"] <= t["reset_seen_ms"] <= t["begin_ms"] <= t["end_ms"] <= report["collection"]["duration_ms"]
    row = authprobe_store.get_run(result.run_id)
    assert row["uid"] == board.uid and row["identity"]["note"] == "bench 1" and row["board"] == "virtual"
    kinds = [ln["kind"] for ln in authprobe_store.get_lines(result.run_id)]
    assert "boot" in kinds and kinds.count("record") == 3


def test_failing_run(authprobe_virtual_boards):
    board = board_with(authprobe_virtual_boards, programs.FAILING)
    result = collect(board.port, timeout=10)
    assert (result.verdict, result.exit_code) == ("fail", 1)
    assert result.report["diagnosis"][0]["root_cause"] == "wifi-failure"


def test_hanging_board_times_out_incomplete_with_its_steps(authprobe_virtual_boards, authprobe_store):
    board = board_with(authprobe_virtual_boards, programs.HANGING)
    t0 = time.monotonic()
    result = collect(board.port, timeout=1.0, store=authprobe_store)
    assert time.monotonic() - t0 < 3
    assert (result.status, result.reason, result.exit_code) == ("incomplete", "timeout", 3)
    assert [s["name"] for s in result.report["steps"]] == ["config_ok"]
    assert authprobe_store.get_run(result.run_id)["status"] == "incomplete"


def test_reset_loop_is_detected_early(authprobe_virtual_boards):
    board = board_with(authprobe_virtual_boards, programs.RESET_LOOP)
    t0 = time.monotonic()
    result = collect(board.port, timeout=20)
    assert time.monotonic() - t0 < 10
    assert (result.status, result.reason, result.exit_code) == ("incomplete", "reset-loop", 3)
    assert result.report["noise"]["attempts"] >= 3
    assert "restarting" in result.report["collection"]["hint"]


def test_garbage_and_damaged_records_are_counted(authprobe_virtual_boards):
    board = board_with(authprobe_virtual_boards, programs.GARBAGE)
    result = collect(board.port, timeout=10)
    assert result.verdict == "pass"
    assert result.report["noise"]["damaged"] == {"truncated": 2, "crc-mismatch": 1}


def test_board_vanishing_mid_run_keeps_every_record(authprobe_virtual_boards, authprobe_store):
    board = board_with(authprobe_virtual_boards, programs.HANGING)

    def unplug_after_first_step(port, line):
        if line.kind == "record" and line.record.get("k") == "step":
            threading.Thread(target=board.stop).start()

    result = collect(board.port, timeout=10, store=authprobe_store, reopen_s=0.3, on_line=unplug_after_first_step)
    assert (result.status, result.reason, result.exit_code) == ("incomplete", "vanished", 3)
    assert [s["name"] for s in result.report["steps"]] == ["config_ok"]
    assert result.report["device"]["uid"] == board.uid
    stored = authprobe_store.get_lines(result.run_id)
    assert stored[-1]["kind"] == "vanished"
    assert [r["k"] for r in authprobe_store.get_records(result.run_id)] == ["begin", "step"]


def test_unopenable_port_is_a_usage_error():
    result = run(["/dev/does-not-exist-authprobe"], timeout=1)[0]
    assert result.status == "error" and result.exit_code == 2 and "no such port" in result.error


def test_parallel_boards_and_combined_exit_code(authprobe_virtual_boards):
    good = [board_with(authprobe_virtual_boards, programs.PASSING) for _ in range(3)]
    bad = board_with(authprobe_virtual_boards, programs.FAILING)
    results = run([b.port for b in good] + [bad.port], timeout=10)
    assert [r.verdict for r in results] == ["pass", "pass", "pass", "fail"]
    assert len({r.run_id for r in results}) == 4
    assert combined_exit_code(results) == 1
    assert combined_exit_code(results[:3]) == 0


@pytest.mark.parametrize(("program", "code", "timeout"), [(programs.PASSING, 0, "20"), (programs.FAILING, 1, "20"),
                                                       (programs.HANGING, 3, "3")])
def test_cli_run_exit_codes_json_junit_and_runs(authprobe_virtual_boards, tmp_path, capsys, program, code, timeout):
    board = board_with(authprobe_virtual_boards, program)
    store = tmp_path / "runs.sqlite"
    out_json, out_xml = tmp_path / "r.json", tmp_path / "j.xml"
    rc = cli.main(["run", "--port", board.port, "--store", str(store), "--timeout", timeout,
                   "--json", str(out_json), "--junit", str(out_xml)])
    with RunStore(store) as s:
        raw = [(ln["kind"], ln["raw"]) for ln in s.get_lines(s.resolve("latest"))]
    assert rc == code, (raw, board.repl.state, board.repl.mode, bytes(board.repl.pending_input))
    report = json.loads(out_json.read_text())
    assert report["schema"] == "authprobe.report/1"
    with RunStore(store) as s:
        assert report["run_id"] == s.resolve("latest")
        assert s.get_report(report["run_id"])["verdict"] == report["verdict"]
    suite = ET.parse(out_xml).getroot().find("testsuite")
    assert int(suite.get("failures")) == (1 if code == 1 else 0)
    assert int(suite.get("errors")) == (1 if code == 3 else 0)
    capsys.readouterr()
    assert cli.main(["runs", "--store", str(store), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["run_id"] == report["run_id"]
    assert cli.main(["runs", "--store", str(store), "--json", "--uid", board.uid]) == 0
    assert [r["run_id"] for r in json.loads(capsys.readouterr().out)] == [report["run_id"]]
    assert cli.main(["runs", "--store", str(store), "--json", "--port", "/dev/none"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert cli.main(["runs", "show", report["run_id"][:17], "--store", str(store), "--raw"]) == 0
    shown = capsys.readouterr().out
    assert "config_ok" in shown and "rst:0xc" in shown


def test_cli_run_without_port_is_usage_error(capsys):
    assert cli.main(["run"]) == 2
    assert "--port" in capsys.readouterr().err


def test_native_usb_board_reenumerates_and_collection_follows_it(authprobe_virtual_boards, tmp_path):
    # An ESP32-S3 on its USB-Serial-JTAG port: the reset makes the port vanish and come back; a
    # self-test there waits a moment for the host before reporting.
    board = authprobe_virtual_boards(native_usb=True, port_link=tmp_path / "usb-Espressif_ESP32-S3-if00")
    programs.install(board.flash_dir, "import time\ntime.sleep_ms(700)\n" + programs.PASSING)
    assert board.port == str(tmp_path / "usb-Espressif_ESP32-S3-if00")
    result = collect(board.port, timeout=15, reopen_s=3)
    assert (result.status, result.verdict) == ("complete", "pass"), result.report["collection"]
    assert any(k.startswith("reconnect") for k in result.report["noise"]["boots"])


REPEATING = """\
from selftest import record
import time
try:
    n = int(open('boots').read())
except OSError:
    n = 0
n += 1
open('boots', 'w').write(str(n))
while True:
    print(record.encode({"k": "begin", "run": "boot-%d" % n}))
    print(record.encode({"k": "end", "run": "boot-%d" % n, "verdict": "pass", "counts": {}, "ms": 1}))
    time.sleep_ms(30)
"""


def test_records_of_the_run_already_going_do_not_count(authprobe_virtual_boards):
    # The port opens while the board is mid-run; its end record arrives before our reset lands.
    board = board_with(authprobe_virtual_boards, REPEATING)
    board.hard_reset()   # the run already going: boot-1
    time.sleep(0.3)

    def slow_reset():
        time.sleep(0.3)
        board.hard_reset()

    result = collect(board.port, timeout=10, reset=slow_reset)
    assert result.status == "complete"
    assert result.report["device"]["run"] == "boot-2"
    assert result.report["noise"]["stale"] >= 2


@pytest.mark.parametrize(("method", "used", "cause"), [("soft", "soft", 1), ("rts", "repl", 5)])
def test_other_reset_methods(authprobe_virtual_boards, method, used, cause):
    # A pty has no modem lines, so `rts` falls back to the REPL; a soft reboot keeps the reset cause.
    board = board_with(authprobe_virtual_boards, programs.PASSING)
    result = collect(board.port, timeout=10, reset=method)
    assert (result.status, result.verdict) == ("complete", "pass")
    assert result.report["collection"]["reset"] == used
    assert result.report["device"]["reset"] == cause


def test_stopping_parallel_collection_keeps_every_run(authprobe_virtual_boards, authprobe_store):
    boards = [board_with(authprobe_virtual_boards, programs.HANGING) for _ in range(3)]
    flag = threading.Event()
    threading.Timer(1.0, flag.set).start()
    t0 = time.monotonic()
    results = run([b.port for b in boards], timeout=30, store=authprobe_store, stop=flag.is_set)
    assert time.monotonic() - t0 < 5
    assert [(r.status, r.reason) for r in results] == [("incomplete", "interrupted")] * 3
    for r in results:
        assert authprobe_store.get_run(r.run_id)["reason"] == "interrupted"


def test_ctrl_c_on_the_cli_stores_every_board_run(authprobe_virtual_boards, tmp_path):
    import signal
    import subprocess
    import sys

    boards = [board_with(authprobe_virtual_boards, programs.HANGING) for _ in range(2)]
    store = tmp_path / "runs.sqlite"
    cmd = [sys.executable, "-m", "authprobe.cli", "run", "--store", str(store), "--timeout", "60", "--board", "virtual"]
    for b in boards:
        cmd += ["--port", b.port]
    proc = popen_as_from_a_terminal(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:   # both boards have reported their first step
            with RunStore(store) as s:
                if sum(len(s.get_records(r["run_id"])) for r in s.list_runs()) >= 4:
                    break
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    with RunStore(store) as s:
        runs = s.list_runs()
        assert len(runs) == 2 and {r["reason"] for r in runs} == {"interrupted"}
        assert all(s.get_report(r["run_id"])["steps"][0]["name"] == "config_ok" for r in runs)


def test_cli_tray_summary(authprobe_virtual_boards, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "220")
    good = board_with(authprobe_virtual_boards, programs.PASSING)
    bad = board_with(authprobe_virtual_boards, programs.FAILING)
    rc = cli.main(["run", "--port", good.port, "--port", bad.port, "--store", str(tmp_path / "s.sqlite"),
                   "--timeout", "20", "--quiet"])
    assert rc == 1
    out = capsys.readouterr().out
    assert "2 boards" in out and "1 fail, 1 pass" in out
    assert "wifi: wifi_wrong_password (302)" in out and "wifi-failure" in out
    assert out.count("authprobe report") == 1          # only the failing board gets a full report


def test_collect_over_a_socket_url(authprobe_store):
    # A board behind a network serial server (socket://, as esp_rfc2217_server or ser2net offer).
    import socket

    from selftest import record

    lines = [b"rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)",
             record.encode({"k": "begin", "run": "net-1", "uid": "a4cf12000009"}).encode(),
             record.encode({"k": "step", "run": "net-1", "seq": 1, "step": "config", "code": 100,
                            "name": "config_ok", "status": "pass", "ms": 1, "d": {}}).encode(),
             record.encode({"k": "end", "run": "net-1", "verdict": "pass", "counts": {"pass": 1}, "ms": 2}).encode()]
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve():
        conn, _ = server.accept()
        with conn:
            for line in lines:
                conn.sendall(line[:10])
                time.sleep(0.01)
                conn.sendall(line[10:] + b"\r\n")
            time.sleep(0.5)

    t = threading.Thread(target=serve)
    t.start()
    try:
        result = collect(f"socket://127.0.0.1:{port}", timeout=10, reset="none", store=authprobe_store)
    finally:
        t.join(5)
        server.close()
    assert (result.status, result.verdict) == ("complete", "pass")
    assert authprobe_store.get_run(result.run_id)["uid"] == "a4cf12000009"


def test_reset_keystrokes_lost_in_silence_are_sent_again(authprobe_virtual_boards, monkeypatch):
    import authprobe.board.collect as collect_mod

    monkeypatch.setattr(collect_mod, "RESET_RETRY_S", 0.3)
    board = board_with(authprobe_virtual_boards, programs.PASSING)
    real = collect_mod.trigger_reset
    calls = []

    def first_one_lost(ser, method, runtime="micropython"):
        calls.append(method)
        if len(calls) == 1:
            return method            # as if the board never heard it
        return real(ser, method, runtime)

    monkeypatch.setattr(collect_mod, "trigger_reset", first_one_lost)
    result = collect(board.port, timeout=10)
    assert (result.status, result.verdict) == ("complete", "pass")
    assert len(calls) == 2 and result.report["collection"]["reset_retried"] is True


def test_a_port_locked_for_a_moment_is_waited_for(authprobe_virtual_boards):
    # Another holder (here: us) releases the lock shortly after; collection waits instead of failing.
    board = board_with(authprobe_virtual_boards, programs.PASSING)
    from authprobe.board.collect import open_port

    holder = open_port(board.port)
    threading.Timer(0.4, holder.close).start()
    result = collect(board.port, timeout=10)
    assert (result.status, result.verdict) == ("complete", "pass")


def test_a_port_held_by_another_tool_is_an_error(authprobe_virtual_boards):
    board = board_with(authprobe_virtual_boards, programs.PASSING)
    from authprobe.board.collect import open_port

    holder = open_port(board.port)
    try:
        result = collect(board.port, timeout=5)
    finally:
        holder.close()
    assert result.status == "error" and "exclusively lock" in result.error and "another program" in result.error
    assert result.exit_code == 2  # the user's to fix (close the other tool), never an authprobe bug


def test_hostile_records_are_damaged_noise_and_the_run_still_ends(authprobe_virtual_boards, tmp_path, capsys):
    """Issue 12: a CRC-valid record nested 1,000 deep made `run` exit 4 and left the run 'collecting';
    wrongly typed fields crashed the report, `runs show` and `monitor`."""
    board = board_with(authprobe_virtual_boards, programs.HOSTILE)
    store, out_json = tmp_path / "runs.sqlite", tmp_path / "r.json"
    assert cli.main(["run", "--port", board.port, "--store", str(store), "--timeout", "20",
                     "--json", str(out_json)]) == 0
    report = json.loads(out_json.read_text())
    assert report["noise"]["damaged"] == {"bad-json": 1, "bad-schema": len(programs.WRONG_TYPES)}
    assert [s["name"] for s in report["steps"]] == ["config_ok", "runtime_ok"]   # the one behind root@APnode too
    with RunStore(store) as s:
        assert s.get_run(report["run_id"])["status"] == "complete"
    capsys.readouterr()
    assert cli.main(["runs", "show", "latest", "--store", str(store), "--raw"]) == 0
    assert cli.main(["monitor", "--port", board.port, "--reset", "--until-end", "--timeout", "20"]) == 0
    out = capsys.readouterr().out
    assert "damaged record (bad-schema: step.code must be a whole number)" in out.replace("\n", " ")
    assert "4 records, 6 damaged" in out
