"""The drill's busy-line sequences through the whole chain (virtual board or CPython probe, the
stand-in running real authorizer handlers, the run store, correlation): runs of one board back to
back, a tray with prefix-sharing client ids, a run correlated before its logs are delivered, a
correlation made while cloud-check replays run. Each run's diagnosis and evidence list must be
exact: what that run caused in the stand-in's records, nothing foreign, nothing of its own missing."""

from __future__ import annotations

import json

import pytest

from authprobe import cli
from authprobe.drill import cases as drill_cases
from authprobe.drill import sequences as drill_sequences
from authprobe.drill.runner import probe_cpython
from authprobe.drill.standin import example_signature

SEQUENCES = drill_sequences.sequences()


@pytest.mark.parametrize("sequence", SEQUENCES, ids=[s.full_name for s in SEQUENCES])
def test_every_runs_evidence_is_its_own(session_drill, sequence):
    result = session_drill.drill.run_sequence(sequence)
    assert result.error is None, result.error
    assert result.notes == [], result.notes
    assert result.passed and result.kind == "sequence"
    expected = [e or "pass" for e in sequence.expected]
    assert result.diagnosed.split(", ")[:len(expected)] == expected


def test_the_cli_says_provisional_then_waits_for_the_delayed_logs(session_drill, tmp_path, capsys):
    standin = session_drill.drill.standin(drill_cases.LOGS_DELAYED)
    cfg = standin.device_config("e2e-late-1", transport="mqtt")
    cfg["auth"]["signature"] = example_signature(cfg["auth"]["token"] + "-old")   # signs another value
    report = tmp_path / "report.json"
    report.write_text(json.dumps(probe_cpython(cfg)))
    argv = ["correlate", "--report", str(report), "--cloud", standin.cloud_spec, "--authorizer", "DeviceAuth",
            "--json"]
    assert cli.main(argv) == 3
    out = json.loads(capsys.readouterr().out)
    assert out["log_delay_s"] == drill_cases.LOG_DELAY_S
    (run,) = out["runs"]
    assert run["provisional"] is True and "the Connect record" in run["awaiting"]
    assert cli.main(argv + ["--wait"]) == 1
    captured = capsys.readouterr()
    (run,) = json.loads(captured.out)["runs"]
    assert run["provisional"] is False and run["diagnosis"][0]["root_cause"] == "signature-invalid"
    assert "waiting for logs" in captured.err


def test_the_drill_cli_runs_a_sequence(capsys):
    assert cli.main(["drill", "--only", "busy-tray", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (case,) = out["cases"]
    assert case["kind"] == "sequence" and case["passed"] and case["notes"] == []
    assert out["summary"]["root_causes_drilled"] == 0   # a sequence drills the join, not a new cause
