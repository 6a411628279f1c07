"""Correlation on a busy line, from recorded event sets: windows from the host's receive times
(whatever the device's clock says), stage-aware matching, one run per event between runs of one
client id, prefix-sharing client ids, authprobe's own replays, and runs whose logs are not
delivered yet."""

from __future__ import annotations

import json
import re

import pytest

from authprobe.cloud.correlate import (
    HOST_MARGIN_S,
    Joiner,
    correlate,
    lambda_event,
    read_log_file,
    run_window,
)
from authprobe.cloud.logs_insights import function_query
from authprobe.cloud.pipeline import diagnose_runs
from authprobe.cloud.replays import Replay
from authprobe.cloud.stages import FULL, OFFLINE, SESSION, SUBSCRIBED, TLS, reached_level
from tests.fixtures import busy_line as bl


def joined_keys(c):
    return sorted(bl.key(e) for e in c.events)


# -- windows -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("device_utc", ["same", None, "2026-11-26T06:00:00Z", "2026-11-28T09:00:00Z",
                                        "2000-01-01T00:00:00Z"],
                         ids=["clock-right", "clock-unset", "clock-hours-behind", "clock-days-ahead", "clock-2000"])
def test_the_window_is_what_the_host_saw_whatever_the_device_clock_says(device_utc):
    r = bl.run("r1", "dev-1", bl.T0, device_utc=device_utc)
    w = run_window(r.report)
    total = sum(ms for _, ms in bl.HEALTHY)
    margin = int(HOST_MARGIN_S * 1000)
    assert (w.clock, w.start_ms, w.end_ms) == ("host", bl.T0 - margin, bl.T0 + total + margin)
    assert (w.span_start_ms, w.span_end_ms) == (bl.T0, bl.T0 + total)
    assert w.session_ms == bl.T0 + bl.SESSION_AT
    # and its own events are its evidence
    (c,) = correlate([r.report], r.events)
    assert joined_keys(c) == bl.own_events(r) and c.nearby == []


def test_skew_overrides_the_host_margin_and_an_unfinished_run_ends_at_its_last_record():
    r = bl.run("r1", "dev-1", bl.T0)
    assert run_window(r.report, skew_s=0).start_ms == bl.T0
    r.report["collection"]["timings"] = {"begin_ms": bl.BOOT_MS, "last_record_ms": bl.BOOT_MS + 700}
    r.report["collection"]["ended"] = bl.iso(bl.T0 + 60_000)   # the collection timed out a minute later
    assert run_window(r.report, skew_s=0).end_ms == bl.T0 + 700


def test_without_host_times_the_device_clock_is_the_fallback():
    r = bl.run("r1", "dev-1", bl.T0, host_times=False)
    w = run_window(r.report)
    assert w.clock == "device" and w.start_ms == bl.T0 - 120_000
    unset = bl.run("r2", "dev-1", bl.T0, host_times=False, device_utc=None)
    assert run_window(unset.report).clock == "none"
    (c,) = correlate([unset.report], r.events)
    assert c.events == []   # no time at all: nothing can be matched


@pytest.mark.parametrize("outcome,level", [("tcp", OFFLINE), ("tls-sni", TLS), ("signature", SESSION),
                                           ("subscribe", SUBSCRIBED), ("publish", FULL), ("pass", FULL)])
def test_the_reached_stage_follows_the_failing_step(outcome, level):
    assert reached_level(bl.run("r", "d", bl.T0, outcome).report) == level


def test_an_unfinished_run_is_in_the_step_after_its_last_report():
    r = bl.run("r", "d", bl.T0)
    r.report["steps"] = r.report["steps"][:5]   # up to tcp, then the board went silent
    r.report["verdict"], r.report["end"] = "incomplete", None
    assert reached_level(r.report) == TLS
    r.report["steps"] = []
    assert reached_level(r.report) == OFFLINE


# -- stage-aware matching ------------------------------------------------------------------------------

def test_the_new_users_case_a_tcp_failure_30_s_after_a_pass_gets_none_of_its_events():
    """The issue's report: run 2 of one board fails at TCP; run 1's Connect, Subscribe, Publish-In
    and Disconnect must not become run 2's evidence, correlated alone or with run 1 beside it."""
    first = bl.run("pass", "dev-1", bl.T0)
    second = bl.run("tcp", "dev-1", bl.T0 + 30_000, "tcp")
    for skew in (None, 120):
        (alone,) = correlate([second.report], first.events, skew_s=skew)
        assert alone.events == []
        if skew == 120:   # a wide window reaches run 1's records: seen, and said why they are not its own
            assert {e.fields["nearby"] for e in alone.nearby} == {"not this run: it stopped before TLS: the cloud "
                                                                  "never saw it"}
    (two,) = correlate([second.report], first.events, skew_s=120, neighbours=[first.report])
    assert two.events == []


def test_a_run_that_never_subscribed_gets_no_subscribe():
    run = bl.run("r", "dev-1", bl.T0, "subscribe")
    stray = bl.iot("dev-1", bl.T0 + bl.CONNECT_AT + 400, "Publish-In", topicName="selftest/dev-1")
    (c,) = correlate([run.report], run.events + [stray])
    assert joined_keys(c) == bl.own_events(run)
    assert [e.fields["eventType"] for e in c.nearby] == ["Publish-In"]
    assert "stopped before publishing" in c.nearby[0].fields["nearby"]


def test_a_tls_failure_gets_only_a_refusal_before_mqtt_never_an_invocation():
    run = bl.run("r", "dev-1", bl.T0, "tls-sni")
    other = bl.run("o", "dev-2", bl.T0 + 100, "signature")
    fn = lambda_event(bl.T0 + bl.SESSION_AT + 40, "[ERROR] Runtime.ExitError")
    c, o = correlate([run.report, other.report], run.events + other.events + [fn])
    assert [(e.source, e.fields.get("attributed")) for e in c.events] == [("iot", "time")]
    assert [(e.source, e.fields.get("attributed")) for e in o.events if e.fields.get("attributed") == "time"] == \
        [("lambda", "time")]


# -- runs of one client id partition the timeline --------------------------------------------------

SEQUENCE = ("pass", "tcp", "signature", "pass")


@pytest.mark.parametrize("skew", [None, 30, 120])
def test_back_to_back_runs_of_one_board_each_get_exactly_their_own_events(skew):
    """pass -> tcp fail -> signature fail -> pass within 20 s, one client id: with windows wide
    enough to overlap, each event still goes to the run whose connection it follows."""
    runs = [bl.run(f"r{i}", "dev-1", bl.T0 + i * 5_000, outcome) for i, outcome in enumerate(SEQUENCE)]
    events = [e for r in runs for e in r.events]
    out = correlate([r.report for r in runs], events, skew_s=skew)
    assert [joined_keys(c) for c in out] == [bl.own_events(r) for r in runs]
    assert sum(len(c.events) for c in out) == len({id(e) for c in out for e in c.events})  # never two runs
    # each run correlated alone, the others stored beside it: the same answer
    for i, r in enumerate(runs):
        others = [o.report for j, o in enumerate(runs) if j != i]
        (alone,) = correlate([r.report], events, skew_s=skew, neighbours=others)
        assert joined_keys(alone) == bl.own_events(r)


def test_back_to_back_runs_on_the_device_clock_alone_still_partition():
    """Report files without host times: ±120 s windows around the device clock all overlap."""
    runs = [bl.run(f"r{i}", "dev-1", bl.T0 + i * 5_000, outcome, host_times=False)
            for i, outcome in enumerate(SEQUENCE)]
    out = correlate([r.report for r in runs], [e for r in runs for e in r.events])
    assert [joined_keys(c) for c in out] == [bl.own_events(r) for r in runs]


def test_a_takeover_disconnect_belongs_to_the_older_connection():
    old = bl.run("old", "dup", bl.T0)
    new = bl.run("new", "dup", bl.T0 + 1_000)
    takeover = bl.iot("dup", bl.T0 + 1_000 + bl.CONNECT_AT + 61, "Disconnect", "Failure",
                      reason="DUPLICATE_CLIENT_ID", disconnectReason="DUPLICATE_CLIENTID")
    o, n = correlate([old.report, new.report], [takeover])
    assert [e.fields["eventType"] for e in o.events] == ["Disconnect"] and n.events == []


# -- a tray whose client ids share prefixes --------------------------------------------------------

TRAY = ["tray-1", "tray-10", "tray-100", "tray-11", "tray-1-b", "tray-2", "tray-20", "factory:tray-1"]


def test_prefix_sharing_client_ids_never_take_each_others_records(tmp_path):
    runs = [bl.run(f"r-{cid}", cid, bl.T0 + i * 37, "signature" if cid == "tray-10" else "pass",
                   stream=f"env-{i}") for i, cid in enumerate(TRAY)]
    iot = tmp_path / "iot.jsonl"
    fn = tmp_path / "fn.jsonl"
    with open(iot, "w") as fi, open(fn, "w") as ff:
        for r in runs:
            for e in r.events:
                if e.source == "iot":
                    fi.write(json.dumps(e.fields) + "\n")
                else:
                    ff.write(json.dumps({"timestamp": e.ts_ms, "message": e.fields["message"],
                                         "logStream": e.fields["logStream"]}) + "\n")
    joiner = Joiner([r.report for r in runs])
    wanted = joiner.client_ids()
    joiner.add_all(read_log_file(iot, client_ids=wanted, source="iot"))
    joiner.add_all(read_log_file(fn, client_ids=wanted, source="lambda"))
    out = joiner.finish()
    for r, c in zip(runs, out, strict=True):
        assert joined_keys(c) == bl.own_events(r), r.run_id
        assert all(e.client_id in (None, r.report["device"]["client_id"]) for e in c.events)


def test_the_logs_insights_function_filter_matches_a_client_id_not_its_prefix():
    query = function_query(["tray-1"], 100)
    pattern = re.search(r"or @message like /(.*)/ \|", query).group(1).replace(r"\/", "/")
    mention = re.compile(pattern)
    for line in ("authorizing clientId='tray-1' token_len=3", '{"clientId": "tray-1"}', "tray-1",
                 "topic selftest/tray-1/ping"):
        assert mention.search(line), line
    for line in ("authorizing clientId='tray-10' token_len=3", '{"clientId": "tray-100"}', "tray-1-b",
                 "factory:tray-1", "xtray-1"):
        assert not mention.search(line), line


# -- authprobe's own replays -----------------------------------------------------------------------

def _invocation(client_id, at, rid, *, replay=False, stream="env-r", failing=False):
    lines = [f"START RequestId: {rid} Version: $LATEST", f"authorizing clientId='{client_id}' token_len=22"]
    if failing:
        lines.append("[ERROR] KeyError: 'device group'")
    lines += [f"END RequestId: {rid}", f"REPORT RequestId: {rid}\tDuration: 12.00 ms"]
    return [lambda_event(at + i, line, stream=stream, replay=replay) for i, line in enumerate(lines)]


RID_DEVICE = "11111111-2222-4333-8444-555555555555"
RID_REPLAY = "99999999-2222-4333-8444-555555555555"


def test_replays_marked_by_the_stand_in_are_labelled_never_evidence():
    run = bl.run("r", "dev-1", bl.T0, "pass", invoked=False)
    at = bl.T0 + 1_500
    events = run.events + _invocation("dev-1", at, RID_REPLAY, replay=True, failing=True)
    (c,) = correlate([run.report], events)
    assert joined_keys(c) == bl.own_events(run)
    assert {e.fields["attributed"] for e in c.nearby} == {"replay"}
    assert all("replay" in e.fields["nearby"] for e in c.nearby)


def test_recorded_replays_claim_their_invocation_on_aws_where_nothing_marks_them():
    """A correlation made while cloud-check replays run: the function logs the device's own
    invocation and the replay's, both for its client id; the recorded replay claims its one."""
    run = bl.run("r", "dev-1", bl.T0, "pass")  # its own invocation at connect + 20 ms
    at = bl.T0 + bl.CONNECT_AT + 500             # a replay half a second later, inside the run
    replay = Replay(at, at + 40, "DeviceAuth", "dev-1", True)
    events = run.events + _invocation("dev-1", at + 10, RID_REPLAY, failing=True)
    (c,) = correlate([run.report], events, replays=[replay])
    assert joined_keys(c) == bl.own_events(run)
    labelled = [e.fields["message"][:20] for e in c.nearby if e.fields.get("attributed") == "replay"]
    assert labelled == ["authorizing clientId", "[ERROR] KeyError: 'd"]
    # without the record the replay's lines would be taken for the device's
    (blind,) = correlate([run.report], events)
    assert len(blind.events) > len(c.events)


def test_a_replay_overlapping_the_devices_own_invocation_claims_its_own():
    """The device's invocation starts nearer the replay's call than the replay's does (a cold
    start); the device's is the one AWS IoT logged a Connect record right after."""
    run = bl.run("r", "dev-1", bl.T0, "pass")
    connect = bl.T0 + bl.CONNECT_AT
    replay = Replay(connect + 10, connect + 400, "DeviceAuth", "dev-1", True)
    events = run.events + _invocation("dev-1", connect + 250, RID_REPLAY, stream="env-9")
    (c,) = correlate([run.report], events, replays=[replay])
    assert joined_keys(c) == bl.own_events(run)
    assert [e.ts_ms for e in c.nearby] == [connect + 251]


def test_a_replay_refused_before_the_function_ran_claims_nothing():
    run = bl.run("r", "dev-1", bl.T0, "pass")
    connect = bl.T0 + bl.CONNECT_AT
    replay = Replay(connect, connect + 50, "DeviceAuth", "dev-1", False)
    (c,) = correlate([run.report], run.events, replays=[replay])
    assert joined_keys(c) == bl.own_events(run)


def test_replay_lines_without_a_request_id_are_claimed_by_time_and_client():
    """Logs Insights returns a function's printed lines without their request id."""
    run = bl.run("r", "dev-1", bl.T0, "signature")
    at = bl.T0 + 4_000
    line = lambda_event(at + 5, "authorizing clientId='dev-1' token_len=22")
    other = lambda_event(at + 6, "authorizing clientId='dev-2' token_len=22")
    (c,) = correlate([run.report], run.events + [line, other], replays=[Replay(at, at + 30, "A", "dev-1", True)])
    assert joined_keys(c) == bl.own_events(run)
    assert [e.fields["attributed"] for e in c.nearby] == ["replay"]


# -- logs not delivered yet ------------------------------------------------------------------------

def _diagnose(reports, events, now, delay=120.0, **kw):
    return diagnose_runs(reports, lambda windows: list(events), log_delay_s=delay, now_ms=lambda: now, **kw)


def test_a_run_whose_records_are_not_delivered_yet_is_provisional():
    run = bl.run("r", "dev-1", bl.T0, "signature")
    end = run_window(run.report).span_end_ms
    (early,) = _diagnose([run.report], [], end + 10_000)
    assert early.provisional and early.joined.awaiting == ["the Connect record"]
    assert "provisional" in early.diagnosis[0]["evidence"][-1] and not early.diagnosis[0]["decided"]
    (late,) = _diagnose([run.report], [], end + 121_000)
    assert not late.provisional   # the delay has passed: absence is evidence again
    (there,) = _diagnose([run.report], run.events, end + 10_000)
    assert not there.provisional and there.diagnosis[0]["root_cause"] == "signature-invalid"


def test_what_is_due_follows_the_stage():
    end = lambda r: run_window(r.report).span_end_ms  # noqa: E731
    dns = bl.run("dns", "d", bl.T0, "tcp")
    ok = bl.run("ok", "d", bl.T0)
    (r,) = _diagnose([dns.report], [], end(dns) + 1)
    assert not r.provisional   # it never reached the cloud: nothing to wait for
    (r,) = _diagnose([ok.report], [], end(ok) + 1)
    assert not r.provisional   # a pass is a pass whatever arrives
    sub = bl.run("sub", "d", bl.T0, "subscribe")
    connect_only = [e for e in sub.events if e.fields.get("eventType") == "Connect"]
    (r,) = _diagnose([sub.report], connect_only, end(sub) + 1)
    assert r.joined.awaiting == ["the Disconnect record"]
    (r,) = _diagnose([sub.report], sub.events, end(sub) + 1)
    assert not r.provisional


def test_wait_polls_until_the_records_arrive():
    run = bl.run("r", "dev-1", bl.T0, "signature")
    end = run_window(run.report).span_end_ms
    clock = [end + 1_000]
    delivered_at = end + 7_000
    told = []

    def events(windows):
        return run.events if clock[0] >= delivered_at else []

    def sleep(s):
        clock[0] += int(s * 1000)
    (r,) = diagnose_runs([run.report], events, log_delay_s=120, wait=True, poll_s=2, now_ms=lambda: clock[0],
                         sleep=sleep, on_wait=lambda runs, left: told.append((len(runs), round(left))))
    assert not r.provisional and r.diagnosis[0]["root_cause"] == "signature-invalid"
    assert told == [(1, 120), (1, 118), (1, 116)] and clock[0] >= delivered_at   # 120 s + 1 s, from 1 s after


def test_wait_gives_up_when_the_delay_has_passed():
    run = bl.run("r", "dev-1", bl.T0, "signature")
    end = run_window(run.report).span_end_ms
    clock = [end + 5_000]

    def sleep(s):
        clock[0] += int(s * 1000)
    (r,) = diagnose_runs([run.report], lambda w: [], log_delay_s=10, wait=True, poll_s=3, now_ms=lambda: clock[0],
                         sleep=sleep)
    assert not r.provisional and clock[0] >= end + 10_000
