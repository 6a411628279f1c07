"""Correlation: runs joined with AWSIotLogsV2 records and function log lines by client id and the
run's UTC window (with skew margin), from exported files, the stand-in's state dir, and the CLI."""

from __future__ import annotations

import json

import pytest

from authprobe import cli
from authprobe.cloud.correlate import (
    Joiner,
    correlate,
    lambda_event,
    parse_timestamp,
    read_log_file,
    read_reports,
    run_window,
)
from tests.fixtures import cloud_state as cs

START = parse_timestamp("2026-11-26T09:10:00Z")


def iot_rec(client_id, at, event_type="Connect", status="Failure", **fields):
    from datetime import UTC, datetime

    ts = datetime.fromtimestamp(at / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return {"timestamp": ts, "logLevel": "ERROR", "traceId": "t", "accountId": cs.ACCOUNT, "status": status,
            "eventType": event_type, "protocol": "MQTT", "clientId": client_id, **fields}


def fn_rec(at, message):
    return {"timestamp": at, "message": message}


@pytest.mark.parametrize("text,expected", [
    ("2026-11-26 09:10:00.000", START),
    ("2026-11-26 09:10:00.5", START + 500),
    ("2026-11-26T09:10:00Z", START),
    ("2026-11-26T10:10:00+01:00", START),
    (START, START),
    (START / 1000, START),
    ("garbage", None),
    (None, None),
])
def test_timestamps(text, expected):
    assert parse_timestamp(text) == expected


def test_window_uses_device_clock_then_host_clock():
    r = cs.report(ms=4000)
    w = run_window(r, skew_s=10)
    assert (w.start_ms, w.end_ms, w.clock) == (START - 10_000, START + 4000 + 10_000, "device")
    r = cs.report(utc=None)
    assert run_window(r).clock == "none" and run_window(r).start_ms is None
    r["host"] = {"started_utc": "2026-11-26T09:10:00Z"}
    assert run_window(r).clock == "host"


def test_log_file_filters_other_clients_and_survives_torn_lines(tmp_path):
    path = tmp_path / "iot.jsonl"
    lines = [json.dumps(iot_rec(cs.CLIENT_ID, START)), json.dumps(iot_rec("someone-else", START)),
             json.dumps({"timestamp": START, "message": json.dumps(iot_rec(cs.CLIENT_ID, START + 1))}),
             '{"timestamp": "2026-11-26 09:10']
    path.write_text("\n".join(lines))
    events = list(read_log_file(path, client_ids={cs.CLIENT_ID}))
    assert [e.ts_ms for e in events] == [START, START + 1]
    assert all(e.source == "iot" and e.client_id == cs.CLIENT_ID for e in events)


def test_missing_log_file_is_a_usage_error(tmp_path):
    from authprobe.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot read log file"):
        list(read_log_file(tmp_path / "none.jsonl"))


def test_join_by_client_and_window_with_skew():
    reports = [cs.report("r1", client_id="a"), cs.report("r2", client_id="b")]
    events = [lambda_event(0, "x")]  # no client, no failure: ignored
    from authprobe.cloud.correlate import iot_event

    events += [iot_event(iot_rec("a", START + 1000)), iot_event(iot_rec("a", START + 3600_000)),
               iot_event(iot_rec("b", START - 60_000)), iot_event(iot_rec("b", START - 600_000))]
    out = correlate(reports, events, skew_s=120)
    assert [len(c.events) for c in out] == [1, 1]
    out = correlate(reports, events, skew_s=10)
    assert [len(c.events) for c in out] == [1, 0]


def test_function_lines_follow_their_request_to_the_client():
    reports = [cs.report("r1", client_id="a", failing_code=907)]
    rid = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
    lines = [f"START RequestId: {rid} Version: $LATEST", 'event {"clientId": "a", "token": "..."}',
             f"2026-11-26T09:10:05Z {rid} Task timed out after 5.00 seconds", f"END RequestId: {rid}",
             f"REPORT RequestId: {rid}\tDuration: 5000.00 ms\tBilled Duration: 5000 ms"]
    joiner = Joiner(reports)
    for i, line in enumerate(lines):
        joiner.add(lambda_event(START + 1000 + i, line))
    (c,) = joiner.finish()
    messages = [e.fields["message"] for e in c.events]
    assert any("Task timed out" in m for m in messages)
    assert any(m.startswith("REPORT") for m in messages)  # cut off at the limit: kept
    assert all(e.fields["attributed"] in ("client_id", "request_id") for e in c.events)


def test_failures_without_a_client_are_attributed_by_time_only_to_runs_failing_at_auth():
    reports = [cs.report("r1", client_id="a", failing_code=906), cs.report("r2", client_id="b", failing_code=501),
               cs.report("r3", client_id="c", failing_code=705)]
    joiner = Joiner(reports)
    joiner.add(lambda_event(START + 500, "[ERROR] Runtime.ExitError"))
    from authprobe.cloud.correlate import iot_event

    rec = iot_rec(None, START + 600, reason="AUTHORIZATION_FAILURE", details="TLS SNI missing")
    rec.pop("clientId")
    joiner.add(iot_event(rec))
    a, b, c = joiner.finish()
    # Each event to one run: the function's failure to the run failing at CONNECT, the refusal before
    # MQTT (no client id) to the run failing in TLS, which it explains best.
    assert [(e.source, e.fields["attributed"]) for e in a.events] == [("lambda", "time")]
    assert b.events == []  # failed at DNS: the cloud never saw it
    assert [e.source for e in c.events] == ["iot"]  # failed in TLS: only a refusal before MQTT explains it


def test_unreadable_reports_are_listed_and_readable_ones_kept(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps([cs.report("r1"), cs.report("r2")]))
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    reports, problems = read_reports([good, bad, other, tmp_path / "missing.json"])
    assert [r["run_id"] for r in reports] == ["r1", "r2"]
    assert len(problems) == 3


def test_reports_with_malformed_steps_are_problems_not_tracebacks(tmp_path, capsys):
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps([{"steps": 5}, {"steps": [{"step": "tls"}], "verdict": "fail"}, cs.report("r1")]))
    reports, problems = read_reports([odd])
    assert [r["run_id"] for r in reports] == ["r1"]
    assert len(problems) == 2 and all("not an authprobe report" in p for p in problems)
    odd.write_text(json.dumps({"steps": [{"step": "tls"}], "verdict": "fail"}))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert cli.main(["correlate", "--report", str(odd), "--iot-log", str(empty)]) == 2
    assert "each step needs" in capsys.readouterr().err


def test_cli_correlate_from_exported_files(tmp_path, capsys):
    reports = tmp_path / "runs.json"
    reports.write_text(json.dumps([cs.report("r1"), cs.report("r2", client_id="other", failing_code=None)]))
    iot = tmp_path / "iot.jsonl"
    iot.write_text("\n".join(json.dumps(r) for r in [
        iot_rec(cs.CLIENT_ID, START + 900, reason="AUTHORIZATION_FAILURE", details="Authorizer is INACTIVE: X"),
        iot_rec("other", START + 900, status="Success")]))
    fn = tmp_path / "fn.jsonl"
    fn.write_text(json.dumps(fn_rec(START + 800, "unrelated line")) + "\n")
    code = cli.main(["correlate", "--report", str(reports), "--iot-log", str(iot), "--function-log", str(fn),
                     "--json", "--events"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["source"] == "files"
    r1, r2 = out["runs"]
    assert r1["matched"]["iot"] == 1 and r1["diagnosis"][0]["root_cause"] == "authorizer-inactive"
    assert r1["diagnosis"][0]["decided"]
    assert r2["diagnosis"] == [] and r2["matched"]["iot"] == 1
    code = cli.main(["correlate", "--report", str(reports), "--iot-log", str(iot)])
    text = capsys.readouterr().out
    assert "authorizer-inactive" in text and "r1" in text


def test_cli_correlate_from_the_stand_in_state_dir(tmp_path, capsys):
    state = cs.write_state(tmp_path, iot_logs=[iot_rec(cs.CLIENT_ID, START + 100, "Disconnect", "Success",
                                                       reason="DUPLICATE_CLIENT_ID", disconnectReason="DUPLICATE_CLIENTID")],
                           lambda_logs=[fn_rec(START + 50, f'{{"clientId": "{cs.CLIENT_ID}"}}')])
    reports = tmp_path / "r.json"
    reports.write_text(json.dumps(cs.report("r1", failing_code=1005)))
    code = cli.main(["correlate", "--report", str(reports), "--cloud", f"local:{state}", "--function", cs.FUNCTION,
                     "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    run = out["runs"][0]
    assert run["matched"] == {"iot": 1, "lambda": 1, "lambda_time_only": 0}
    assert run["diagnosis"][0]["root_cause"] == "client-id-conflict"


def test_cli_correlate_without_runs_is_clear(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    assert cli.main(["correlate", "--report", str(bad), "--iot-log", str(bad)]) == 2
    assert "no runs" in capsys.readouterr().err


def test_cli_correlate_stored_runs_and_save_the_diagnosis(tmp_path, capsys):
    from authprobe.store import RunStore

    db = tmp_path / "runs.sqlite"
    store = RunStore(db)
    ids = []
    for name, code in (("r1", 906), ("r2", 501)):
        run_id = store.begin_run(port="loop://", started=START / 1000)
        store.finish_run(run_id, cs.report(name, failing_code=code), status="complete")
        ids.append(run_id)
    store.close()
    iot = tmp_path / "iot.jsonl"
    iot.write_text(json.dumps(iot_rec(cs.CLIENT_ID, START + 900, reason="AUTHORIZATION_FAILURE",
                                      details="Token signature missing")) + "\n")
    code = cli.main(["correlate", ids[0], "nonexistent", "--store", str(db), "--iot-log", str(iot),
                     "--save", "--json"])
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert code == 1 and "nonexistent" in captured.err  # the bad id is named, the good one correlated
    assert out["runs"][0]["diagnosis"][0]["root_cause"] == "signature-missing"
    saved = RunStore(db)
    try:
        report = saved.get_report(ids[0])
        assert report["diagnosis"][0]["root_cause"] == "signature-missing"
        assert report["correlation"]["matched"]["iot"] == 1
        assert saved.get_report(ids[1])["diagnosis"][0]["root_cause"] == "dns-failure"  # untouched
    finally:
        saved.close()
    # Every stored run when none is named.
    assert cli.main(["correlate", "--store", str(db), "--iot-log", str(iot), "--json"]) == 1
    assert len(json.loads(capsys.readouterr().out)["runs"]) == 2


def test_window_falls_back_to_the_host_clock_when_the_device_clock_is_off():
    r = cs.report(utc="2000-01-01T00:00:00Z")
    r["collection"] = {"started": "2026-11-26T09:10:00.000Z", "ended": "2026-11-26T09:10:09.000Z"}
    w = run_window(r, skew_s=0)
    assert (w.clock, w.start_ms, w.end_ms) == ("host", START, START + 9000)


def test_cli_correlate_with_cloud_check_results(tmp_path, capsys):
    checks = {"client_id": cs.CLIENT_ID, "checks": [
        {"id": "function.permission", "title": "AWS IoT may invoke the function", "status": "fail",
         "evidence": ["no resource-based policy"], "root_cause": "lambda-permission-missing"},
        {"id": "signature.verifies", "title": "signature verifies", "status": "pass", "evidence": ["ok"],
         "root_cause": "signature-invalid"}]}
    checks_file = tmp_path / "checks.json"
    checks_file.write_text(json.dumps(checks))
    reports = tmp_path / "r.json"
    reports.write_text(json.dumps([cs.report("mine"), cs.report("theirs", client_id="another")]))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert cli.main(["correlate", "--report", str(reports), "--iot-log", str(empty), "--checks", str(checks_file),
                     "--json"]) == 1
    mine, theirs = json.loads(capsys.readouterr().out)["runs"]
    assert mine["diagnosis"][0]["root_cause"] == "lambda-permission-missing"
    assert "signature-invalid" not in [d["root_cause"] for d in mine["diagnosis"]]  # ruled out for this device
    assert theirs["diagnosis"][0]["root_cause"] == "lambda-permission-missing"  # account-wide evidence
    assert "signature-invalid" in [d["root_cause"] for d in theirs["diagnosis"]]  # not checked for this one
    bad = tmp_path / "bad.json"
    bad.write_text("[1]")
    assert cli.main(["correlate", "--report", str(reports), "--iot-log", str(empty), "--checks", str(bad)]) == 2


def test_secrets_in_function_logs_never_reach_events_or_diagnosis(tmp_path, capsys):
    secret_token, secret_pw = "tok-SECRET-77", "hunter2-SECRET"
    event = {"token": secret_token, "protocolData": {"mqtt": {
        "username": f"u?x-amz-customauthorizer-signature=SIG%2BSECRET&mytoken={secret_token}",
        "password": secret_pw, "clientId": cs.CLIENT_ID}}}
    fn = tmp_path / "fn.jsonl"
    fn.write_text("\n".join(json.dumps(fn_rec(START + 100 + i, m)) for i, m in enumerate(
        ["EVENT " + json.dumps(event), f"[ERROR] KeyError: token={secret_token} clientId={cs.CLIENT_ID}"])))
    reports = tmp_path / "r.json"
    reports.write_text(json.dumps(cs.report("r1")))
    assert cli.main(["correlate", "--report", str(reports), "--function-log", str(fn), "--json", "--events"]) == 1
    out = capsys.readouterr().out
    run = json.loads(out)["runs"][0]
    assert run["matched"]["lambda"] == 2 and run["diagnosis"][0]["root_cause"] == "lambda-error"
    for secret in (secret_token, secret_pw, "SIG%2BSECRET"):
        assert secret not in out
    assert "<redacted len=13 sha256=" in out


def test_a_secret_quoted_in_free_text_is_found_by_its_fingerprint(tmp_path, capsys):
    """A function that prints the token in an exception message, with no 'token=' before it: the
    value is unknown to the host, but the device's report carries its fingerprint."""
    from selftest.record import fingerprint

    secret = "eyJhbGciOi.SECRET.payload-0042"
    rep = cs.report("r1")
    rep["steps"][-1]["details"] = {"token": fingerprint(secret), "password": fingerprint("pw-SECRET-1")}
    fn = tmp_path / "fn.jsonl"
    fn.write_text(json.dumps(fn_rec(START + 100, f"[ERROR] ValueError: bad {secret} for {cs.CLIENT_ID}")))
    reports = tmp_path / "r.json"
    reports.write_text(json.dumps(rep))
    cli.main(["correlate", "--report", str(reports), "--function-log", str(fn), "--json", "--events"])
    out = capsys.readouterr().out
    assert secret not in out
    assert f"<redacted len={len(secret)} sha256={fingerprint(secret)['sha256']}>" in out
    assert "ValueError: bad" in out  # the rest of the line is kept


def test_passing_runs_can_be_counted_without_keeping_their_events():
    from authprobe.cloud.correlate import iot_event

    reports = [cs.report("ok", client_id="a", failing_code=None), cs.report("bad", client_id="b")]
    events = [iot_event(iot_rec("a", START + 10, status="Success")), iot_event(iot_rec("b", START + 10))]
    ok, bad = correlate(reports, events)
    assert len(ok.events) == 1
    joiner = Joiner(reports, keep_passing=False)
    joiner.add_all([iot_event(iot_rec("a", START + 10, status="Success")), iot_event(iot_rec("b", START + 10))])
    ok, bad = joiner.finish()
    assert ok.events == [] and ok.counts()["iot"] == 1
    assert len(bad.events) == 1 and bad.counts()["iot"] == 1


def test_cli_correlate_save_with_report_files_is_refused_before_reading_logs(tmp_path, capsys):
    report = tmp_path / "r.json"
    report.write_text(json.dumps(cs.report("r1", failing_code=906)))
    # The stand-in directory does not exist: the --save conflict is said first, before any log source is opened.
    code = cli.main(["correlate", "--report", str(report), "--save", "--cloud", f"local:{tmp_path / 'none'}"])
    err = capsys.readouterr().err
    assert code == 2 and "--save" in err and "--report" in err and "state directory" not in err


def test_cli_correlate_checks_file_of_the_wrong_shape_is_a_usage_error(tmp_path, capsys):
    report = tmp_path / "r.json"
    report.write_text(json.dumps(cs.report("r1")))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    checks = tmp_path / "checks.json"
    for body in ({"checks": [1, 2]}, {"nope": []}, [1]):
        checks.write_text(json.dumps(body))
        assert cli.main(["correlate", "--report", str(report), "--iot-log", str(empty), "--checks", str(checks)]) == 2
        assert "not cloud-check --json output" in capsys.readouterr().err


def test_cli_correlate_fix_names_the_real_log_group(tmp_path, capsys):
    reports = tmp_path / "runs.json"
    reports.write_text(json.dumps([cs.report("r1")]))
    fn = tmp_path / "fn.jsonl"
    fn.write_text("\n".join(json.dumps(r) for r in [
        fn_rec(START + 800, f"authorizing clientId='{cs.CLIENT_ID}'"),
        fn_rec(START + 810, "[ERROR] KeyError: 'token'\nTraceback (most recent call last):")]) + "\n")
    code = cli.main(["correlate", "--report", str(reports), "--function-log", str(fn), "--function", "auth-prod",
                     "--json"])
    out = json.loads(capsys.readouterr().out)
    fixes = [d["remediation"] for d in out["runs"][0]["diagnosis"] if d["root_cause"] == "lambda-error"]
    assert code == 1 and fixes and "/aws/lambda/auth-prod" in fixes[0] and "/aws/lambda/FN" not in fixes[0]
