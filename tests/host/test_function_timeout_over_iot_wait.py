"""A function whose own timeout is longer than AWS IoT's 5 s wait: it runs on after the device was
refused, writes no timeout line and counts no error; its duration is the evidence."""

from __future__ import annotations

from authprobe.cloud.correlate import correlate, lambda_event, parse_timestamp
from authprobe.report.diagnosis import diagnose
from tests.fixtures import cloud_state as cs
from tests.host.test_checks import NOW_MS, run

RID = "8f5a3c2e-1b7d-4e9a-a6c3-2d8b9e0f1a47"
START = parse_timestamp("2026-11-26T09:10:00Z")


def test_cloud_check_duration_past_iot_s_wait_is_a_timeout_with_no_error(tmp_path):
    cloud = cs.healthy_cloud()
    next(iter(cloud["functions"].values()))["Timeout"] = 10
    results, _ = run(tmp_path, cloud, metrics=[cs.metric("Invocations", 1, NOW_MS - 60_000),
                                               cs.metric("Errors", 0, NOW_MS - 60_000),
                                               cs.metric("Duration", 8000.0, NOW_MS - 30_000, "Milliseconds")])
    r = results["metrics.duration"]
    assert (r.status, r.root_cause, r.data["limit_ms"]) == ("fail", "lambda-timeout", 5000)
    assert "past the 5 s AWS IoT waits" in r.evidence[0]
    assert results["metrics.errors"].status == "pass"
    assert any("its own timeout is 10 s" in e for e in results["function.exists"].evidence)


def test_a_report_written_after_the_run_joins_through_its_start():
    report = cs.report(failing_code=907, ms=5200)
    # The run's window ends 5.2 s + 1 s after its start; the function runs 8 s, printing at the end.
    events = [lambda_event(START + 100, f"START RequestId: {RID} Version: $LATEST"),
              lambda_event(START + 8100, f"authorizing clientId='{cs.CLIENT_ID}'"),
              lambda_event(START + 8101, f"END RequestId: {RID}"),
              lambda_event(START + 8102, f"REPORT RequestId: {RID}\tDuration: 8000.41 ms\tBilled Duration: 8001 ms")]
    (run_,) = correlate([report], events, skew_s=1)
    assert [e.fields["attributed"] for e in run_.events] == ["client_id", "request_id"]
    diagnosis = diagnose(report, {"events": [e.as_dict() for e in run_.events]})
    assert diagnosis[0]["root_cause"] == "lambda-timeout" and diagnosis[0]["decided"]
    assert "REPORT RequestId" in " ".join(diagnosis[0]["evidence"])


def test_lines_of_concurrent_environments_stay_in_their_own_streams():
    other = "0b7d9f3a-2c4e-4a1b-9d8e-7f6a5b4c3d2e"
    report = cs.report(failing_code=907, ms=5200)
    events = [lambda_event(START + 100, f"START RequestId: {RID} Version: $LATEST", stream="a"),
              lambda_event(START + 150, f"START RequestId: {other} Version: $LATEST", stream="b"),
              lambda_event(START + 8100, f"authorizing clientId='{cs.CLIENT_ID}'", stream="a"),
              lambda_event(START + 8101, "authorizing clientId='someone-else'", stream="b"),
              lambda_event(START + 8102, f"REPORT RequestId: {other}\tDuration: 8000.00 ms", stream="b"),
              lambda_event(START + 8103, f"REPORT RequestId: {RID}\tDuration: 8000.41 ms", stream="a")]
    (run_,) = correlate([report], events, skew_s=1)
    assert [e.fields.get("requestId") for e in run_.events] == [RID, RID]


def test_a_replay_made_as_the_long_invocation_ends_does_not_take_its_lines():
    from authprobe.cloud.replays import Replay

    report = cs.report(failing_code=907, ms=5200)
    replay_rid = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
    # cloud-check replays the device's credentials right after the device's 8 s invocation reported.
    events = [lambda_event(START + 100, f"START RequestId: {RID} Version: $LATEST", stream="a"),
              lambda_event(START + 8100, f"authorizing clientId='{cs.CLIENT_ID}'", stream="a"),
              lambda_event(START + 8102, f"REPORT RequestId: {RID}\tDuration: 8000.41 ms", stream="a"),
              lambda_event(START + 8150, f"START RequestId: {replay_rid} Version: $LATEST", stream="b"),
              lambda_event(START + 8160, f"authorizing clientId='{cs.CLIENT_ID}'", stream="b"),
              lambda_event(START + 8170, f"REPORT RequestId: {replay_rid}\tDuration: 8000.00 ms", stream="b")]
    replay = Replay(START + 8104, START + 8200, client_id=cs.CLIENT_ID, invoked=True)
    (run_,) = correlate([report], events, skew_s=1, replays=[replay])
    assert {e.fields.get("requestId") for e in run_.events} == {RID}
    assert {e.fields.get("requestId") for e in run_.nearby} == {replay_rid}
