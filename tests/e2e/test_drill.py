"""The fault drill through the whole chain: every locally producible root cause, injected through
the stand-in, the device config, the authorizer handler or the virtual board's radio, must come out
of the run (virtual board) or the probe (CPython) + cloud-check + correlate as exactly that cause;
the healthy configuration must pass on both runtimes."""

from __future__ import annotations

import json

import pytest

from authprobe import cli
from authprobe.drill import cases as drill_cases
from authprobe.root_causes import ROOT_CAUSES
from tests.fixtures.processes import popen_as_from_a_terminal

CASES = drill_cases.cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_fault_is_diagnosed_as_injected(session_drill, case):
    result = session_drill.result(case)
    assert result.error is None, result.error
    if case.fault.expected is None:
        assert (result.verdict, result.diagnosed) == ("pass", None), result
    else:
        assert result.verdict == "fail", result
        assert result.diagnosed == case.fault.expected, (
            f"{case.name}: injected {case.fault.injected!r}; diagnosis leads with {result.diagnosed}, "
            f"candidates {result.candidates}, failing step {result.failing_step} {result.code}")
    if not case.runtime.startswith("cpython"):
        assert result.run_id and result.stored, "a virtual-board run is kept in the run store"


def test_every_root_cause_is_drilled_or_said_to_be_not_local():
    drilled = {f.expected for f in drill_cases.FAULTS if f.expected}
    nowhere = {n.expected for n in drill_cases.NOT_LOCAL if n.runtime is None}
    assert not drilled & nowhere
    assert drilled | nowhere == set(ROOT_CAUSES)
    assert all(n.why for n in drill_cases.NOT_LOCAL)
    # a cause left out on one runtime is drilled on the others, and really left out on that one
    for n in drill_cases.NOT_LOCAL:
        if n.runtime is not None:
            fault = next(f for f in drill_cases.FAULTS if f.expected == n.expected)
            assert n.runtime not in fault.runtimes and fault.runtimes
    # the healthy configuration runs on every runtime (and in MQTT 5), alpn-missing on the runtimes without ALPN
    healthy = next(f for f in drill_cases.FAULTS if f.expected is None)
    assert set(healthy.runtimes) == {drill_cases.MP_WSS, drill_cases.CP_WSS, drill_cases.CPY_MQTT,
                                     drill_cases.CPY_MQTT5}
    alpn = next(f for f in drill_cases.FAULTS if f.expected == "alpn-missing")
    assert set(alpn.runtimes) == {drill_cases.MP_MQTT, drill_cases.CP_MQTT}


def test_drill_cli_json_and_exit_code(capsys):
    from authprobe.drill.standin import EXAMPLE_TOKEN, example_signature

    code = cli.main(["drill", "--only", "healthy", "--only", "dns-failure@cpython", "--json"])
    text = capsys.readouterr().out
    assert EXAMPLE_TOKEN not in text and example_signature()[:24] not in text   # secrets stay fingerprints
    out = json.loads(text)
    assert code == 0
    assert out["schema"] == "authprobe.drill/1"
    names = {c["name"]: c for c in out["cases"]}
    assert set(names) == {"healthy@micropython/wss", "healthy@circuitpython/wss", "healthy@cpython/mqtt",
                          "healthy@cpython/mqtt5", "dns-failure@cpython/mqtt"}
    assert names["dns-failure@cpython/mqtt"]["diagnosed"] == "dns-failure"
    assert names["dns-failure@cpython/mqtt"]["code"] == 501
    assert out["summary"]["cases"] == 5 and out["summary"]["passed"] == 5
    assert names["healthy@circuitpython/wss"]["run_id"]
    assert {n["expected"] for n in out["not_local"]} == {n.expected for n in drill_cases.NOT_LOCAL}


def test_drill_cli_table(capsys):
    assert cli.main(["drill", "--only", "tcp-unreachable@cpython"]) == 0
    out = capsys.readouterr().out
    assert "tcp-unreachable" in out and "1 of 1 cases passed" in out
    assert "not producible locally" in out and "not drilled on circuitpython/wss" in out


def test_drill_cli_rejects_a_pattern_that_matches_nothing(capsys):
    assert cli.main(["drill", "--only", "no-such-fault"]) == 2
    err = capsys.readouterr().err
    assert "no case matches" in err and "lambda-error" in err


def test_drill_keep_in_a_folder_it_cannot_make_is_a_clear_error(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert cli.main(["drill", "--keep", str(blocker / "runs"), "--only", "healthy@cpython"]) == 2
    err = capsys.readouterr().err
    assert "--keep" in err and "internal error" not in err


def test_drill_list_names_every_case():
    cases = drill_cases.cases()
    assert len({c.name for c in cases}) == len(cases)
    assert drill_cases.cases(["@cpython"]) and all(c.runtime.startswith("cpython/")
                                                   for c in drill_cases.cases(["@cpython"]))


def test_drill_keeps_its_runs_for_authprobe_report(tmp_path, capsys):
    keep = tmp_path / "kept"
    assert cli.main(["drill", "--only", "policy-denies-publish@micropython", "--keep", str(keep), "--json"]) == 0
    case = json.loads(capsys.readouterr().out)["cases"][0]
    assert case["diagnosed"] == "policy-denies-publish" and case["run_id"]
    page = tmp_path / "page.html"
    assert cli.main(["report", case["run_id"], "--store", str(keep / "runs.sqlite"), "--cloud",
                     f"local:{keep / 'standin-main'}", "--authorizer", "NoPublishAuth", "--skew", "3",
                     "--html", str(page)]) == 0
    text = page.read_text()
    assert "Publish-In Failure" in text and "policy-denies-publish" in text


def test_drill_stops_everything_on_ctrl_c(monkeypatch, tmp_path):
    from authprobe.drill import suite as drill
    from tests.fixtures.e2e_processes import micropython_children, wait_gone

    started = {}
    real = drill.Drill.run_one

    def interrupted(self, case):
        started["boards"] = dict(self.boards)
        started["standins"] = dict(self.standins)
        real(self, case)
        raise KeyboardInterrupt

    monkeypatch.setattr(drill.Drill, "run_one", interrupted)
    monkeypatch.setattr(drill.tempfile, "mkdtemp", lambda prefix: str(tmp_path / "work"))
    before = micropython_children()
    with pytest.raises(KeyboardInterrupt):
        drill.run_drill(["healthy@micropython", "healthy@circuitpython", "dns-failure@micropython"])
    assert set(started["boards"]) == {"micropython", "circuitpython"}
    assert not wait_gone(before)
    assert not (tmp_path / "work").exists()
    import socket

    for s in started["standins"].values():
        with pytest.raises(OSError):
            socket.create_connection((s.emulator.host, s.emulator.port), timeout=0.5).close()


def test_a_misdiagnosis_fails_the_drill(monkeypatch, capsys):
    # A case whose expectation is wrong on purpose: the drill must say so and exit 1.
    wrong = drill_cases.Fault("dns-failure-expected-as-lambda-error", "lambda-error",
                              "endpoint.connect_address names a host that does not resolve",
                              next(f for f in drill_cases.FAULTS if f.name == "dns-failure").adjust,
                              runtimes=(drill_cases.CPY_MQTT,))
    monkeypatch.setattr(drill_cases, "FAULTS", drill_cases.FAULTS + (wrong,))
    assert cli.main(["drill", "--only", "dns-failure-expected-as-lambda-error"]) == 1
    out = capsys.readouterr().out
    assert "0 of 1 cases passed" in out
    assert "expected lambda-error, got dns-failure" in out


def test_drill_process_ctrl_c_while_a_lambda_times_out(tmp_path):
    """`authprobe drill` as a process, SIGINT while boards and the probe wait on a 5 s authorizer: it
    exits 130 within seconds and no interpreter of its boards is left (they hold paths under --keep)."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    keep = tmp_path / "kept"
    exe = Path(sys.executable).with_name("authprobe")
    proc = popen_as_from_a_terminal([str(exe), "drill", "--only", "lambda-timeout", "--keep", str(keep)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(2.5)
        proc.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        out, _ = proc.communicate(timeout=30)
        stopped_after = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out
    assert "interrupted" in out
    assert stopped_after < 15, f"took {stopped_after:.1f} s to stop"
    holders = [p for p in Path("/proc").glob("[0-9]*/cmdline")
               if _reads(p) and str(keep).encode() in _reads(p)]
    assert not holders, [_reads(p) for p in holders]


def _reads(path):
    try:
        return path.read_bytes()
    except OSError:
        return b""
