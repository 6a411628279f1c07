"""Connection.AuthNError entries: the reason table, matching records without a client id to runs
(source port, SNI, time), reading them from files and Logs Insights rows, and what the diagnosis
makes of each reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from authprobe import root_causes
from authprobe.aws import authn_error
from authprobe.cloud.connection_match import (
    BY_PORT,
    BY_SNI,
    BY_TIME,
    RunConnection,
    assign,
    match,
    run_connection,
)
from authprobe.cloud.correlate import correlate, event_from_insights_row, parse_timestamp, read_log_file
from authprobe.cloud.logs_insights import iot_query
from authprobe.report.diagnosis import diagnose
from authprobe.report.json_report import build_report

START = parse_timestamp("2026-11-26T09:10:00Z")
SNI = "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com"


def stamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def authn(at: int, reason: str, *, port: int | None = 50412, sni: str | None = SNI, details: str = "x",
          auth_type: str = "CUSTOM_AUTH", destination_port: int = 443) -> dict:
    record = {"timestamp": stamp(at), "logLevel": "ERROR", "traceId": "t", "accountId": "111111111111",
              "status": "Failure", "eventType": "Connection.AuthNError", "authenticationType": auth_type,
              "sourceIp": "198.51.100.23", "reason": reason, "details": details,
              "destinationPort": destination_port}
    if port is not None:
        record["sourcePort"] = port
    if sni is not None:
        record["serverNameIndication"] = sni
    return record


def report(run_id: str, client_id: str, *, local_port: int | None = None, sni: str = SNI, failing: int = 906,
           utc: str = "2026-11-26T09:10:00Z") -> dict:
    tcp = {"addr": "203.0.113.80:443"}
    if local_port is not None:
        tcp["local_port"] = local_port
    records = [{"k": "begin", "run": run_id, "client_id": client_id, "utc": utc, "transport": "mqtt"},
               {"k": "step", "run": run_id, "seq": 1, "code": 600, "status": "pass", "ms": 5, "d": tcp},
               {"k": "step", "run": run_id, "seq": 2, "code": 700, "status": "pass", "ms": 50, "d": {"sni": sni}},
               {"k": "step", "run": run_id, "seq": 3, "code": 800, "status": "pass", "ms": 1},
               {"k": "step", "run": run_id, "seq": 4, "code": failing, "status": "fail", "ms": 300}]
    records.append({"k": "end", "run": run_id, "verdict": "fail", "ms": 1000})
    return build_report(records)


# -- the tables ---------------------------------------------------------------------------------

def test_every_cause_the_stand_in_refuses_for_is_in_its_reasons_family():
    for cause, reason in authn_error.REASON_FOR_CAUSE.items():
        confirmed, supported = authn_error.CAUSES_FOR_REASON[reason]
        assert cause in confirmed + supported, (cause, reason)


def test_every_reason_names_real_root_causes_and_every_listed_reason_is_read():
    assert set(authn_error.CAUSES_FOR_REASON) == set(authn_error.REASONS)
    for confirmed, supported in authn_error.CAUSES_FOR_REASON.values():
        for cause in confirmed + supported:
            assert cause in root_causes.ROOT_CAUSES


@pytest.mark.parametrize("record, confirmed, supported", [
    ({"reason": "SNI_MISUSED", "authenticationType": "CUSTOM_AUTH"}, ("sni-mismatch",), ()),
    ({"reason": "NOT_AUTHENTICATED", "authenticationType": "AWS_X509", "destinationPort": 8883}, (),
     ("port-not-443",)),
    ({"reason": "DEVICE_CERTIFICATE_NOT_REGISTERED", "authenticationType": "AWS_X509"}, (),
     ("sni-mismatch", "port-not-443", "alpn-missing")),
    ({"reason": "SECURITY_TOKEN_INVALID", "authenticationType": "AWS_SIGV4"}, (), ("authorizer-unknown",)),
    ({"reason": "SOMETHING_NEW", "authenticationType": "CUSTOM_AUTH"}, (), ()),
])
def test_authentication_type_decides_before_the_reason(record, confirmed, supported):
    assert authn_error.causes_for(record) == (confirmed, supported)


def test_field_spellings_are_all_accepted():
    assert authn_error.sni_of({"sni": "A.Example"}) == "a.example"
    assert authn_error.sni_of({"serverName": ""}) is None
    assert authn_error.source_port_of({"sourcePort": "50412"}) == 50412  # Logs Insights rows are text
    assert authn_error.source_port_of({"sourcePort": True}) is None


# -- matching -----------------------------------------------------------------------------------

def test_match_by_port_then_sni_then_time():
    run = RunConnection(START, START + 5000, source_port=50412, sni=SNI)
    assert match(authn(START + 1, "X"), START + 1, run) == BY_PORT
    assert match(authn(START + 1, "X", port=40000), START + 1, run) == BY_SNI  # behind NAT: not excluded
    assert match(authn(START + 1, "X", port=None, sni=None), START + 1, run) == BY_TIME
    assert match(authn(START + 1, "X", sni="other.example"), START + 1, run) is None
    assert match(authn(START + 9000, "X"), START + 9000, run) is None
    https = {"eventType": "Publish-In", "protocol": "HTTP", "topicName": "selftest/a"}
    assert match(https, START, RunConnection(START, START + 1, topic="selftest/a")) == BY_SNI
    assert match(https, START, RunConnection(START, START + 1, topic="selftest/b")) is None


def test_a_port_match_keeps_the_record_from_other_runs_and_loose_matches_need_eligibility():
    runs = [RunConnection(START, START + 5000, 50412, SNI), RunConnection(START, START + 5000, 50413, SNI),
            RunConnection(START, START + 5000, None, SNI)]
    records = [(START + 10, authn(START + 10, "X", port=50413)), (START + 20, authn(START + 20, "X", port=1))]
    out = assign(records, runs, eligible=[True, True, False])
    assert out[1] == [(0, BY_PORT)]  # its own record by port: no neighbour's by SNI
    assert out[0] == [(1, BY_SNI)]  # record 0 is run 1's by its port
    assert out[2] == []  # not eligible for loose matches


def test_loose_matches_per_run_are_capped():
    runs = [RunConnection(START, START + 60_000, None, None)]
    records = [(START + i, authn(START + i, "X", port=None, sni=None)) for i in range(100)]
    assert len(assign(records, runs, [True])[0]) == 20


def test_run_connection_reads_port_sni_and_topic_from_the_report():
    conn = run_connection(report("r", "c", local_port=50412), 1, 2)
    assert (conn.start_ms, conn.end_ms, conn.source_port, conn.sni, conn.topic) == (1, 2, 50412, SNI, None)
    assert "authorizer-unknown" in conn.causes and "lambda-timeout" not in conn.causes  # step 906's candidates
    assert run_connection(report("r", "c"), None, 2) is None


# -- the join -----------------------------------------------------------------------------------

def test_join_attributes_authn_errors_without_client_id_by_port_and_by_sni():
    runs = [report("run-a", "dev-a", local_port=50412), report("run-b", "dev-b")]
    events = [event_from_insights_row({"@timestamp": stamp(START + 800), "@message": json.dumps(
        authn(START + 800, "CUSTOM_AUTHORIZER_NOT_FOUND"))}, "iot")]
    joined = correlate(runs, events, skew_s=5)
    (a,) = joined[0].events
    assert a.fields["attributed"] == BY_PORT and a.client_id is None
    assert joined[1].events == []  # the record is run-a's by its source port
    events = [event_from_insights_row({"@timestamp": stamp(START + 800), "@message": json.dumps(
        authn(START + 800, "CUSTOM_AUTHORIZER_NOT_FOUND", port=1))}, "iot")]
    joined = correlate(runs, events, skew_s=5)
    # Both runs match it by SNI; an event goes to one run only (issue 11, which issue 13 defers to),
    # and the other lists it as nearby, naming the run it went to.
    holders = [j for j in joined if j.events]
    (holder,) = holders
    assert [e.fields["attributed"] for e in holder.events] == [BY_SNI]
    (other,) = [j for j in joined if j is not holder]
    (near,) = other.nearby
    assert near.fields["eventType"] == "Connection.AuthNError"
    assert near.fields["nearby"] == f"not this run: it follows the connection of run {holder.window.run_id}"


def test_a_run_that_failed_after_connecting_takes_no_loose_authn_error():
    passing_connect = report("run-c", "dev-c", failing=1001)  # dropped after SUBSCRIBE
    joined = correlate([passing_connect], [event_from_insights_row(
        {"@timestamp": stamp(START + 800), "@message": json.dumps(authn(START + 800, "NOT_AUTHENTICATED", port=1))},
        "iot")], skew_s=5)
    assert joined[0].events == []


def test_log_files_keep_authn_errors_that_name_no_client(tmp_path):
    path = tmp_path / "iot.jsonl"
    other = {"timestamp": stamp(START), "eventType": "Connect", "status": "Success", "clientId": "someone-else"}
    path.write_text("\n".join(json.dumps(r) for r in (authn(START, "NOT_AUTHENTICATED"), other)) + "\n")
    events = list(read_log_file(path, client_ids={"dev-a"}, source="iot"))
    assert [e.fields["eventType"] for e in events] == ["Connection.AuthNError"]


def test_insights_query_asks_for_records_without_client_id():
    query = iot_query(["dev-a"], 100)
    assert 'eventType = "Connection.AuthNError"' in query
    assert '(eventType = "Publish-In" and protocol = "HTTP")' in query


# -- the diagnosis ------------------------------------------------------------------------------

def _diagnose(rep: dict, record: dict, attributed: str) -> list[dict]:
    event = {"source": "iot", "ts_ms": START, "client_id": None, **record, "attributed": attributed}
    return diagnose(rep, {"checks": [], "events": [event]})


def test_authorizer_not_found_by_port_decides_authorizer_unknown():
    diagnosis = _diagnose(report("r", "c", local_port=50412), authn(START, "CUSTOM_AUTHORIZER_NOT_FOUND"),
                          BY_PORT)
    assert diagnosis[0]["root_cause"] == "authorizer-unknown" and diagnosis[0]["decided"]
    assert "Connection.AuthNError CUSTOM_AUTHORIZER_NOT_FOUND" in diagnosis[0]["decided_by"]
    assert "policy-denies-connect" not in [d["root_cause"] for d in diagnosis]  # authentication came first


def test_the_same_record_matched_by_sni_decides_but_rules_nothing_out():
    diagnosis = _diagnose(report("r", "c"), authn(START, "CUSTOM_AUTHORIZER_NOT_FOUND"), BY_SNI)
    assert diagnosis[0]["root_cause"] == "authorizer-unknown" and diagnosis[0]["decided"]
    assert "matched by SNI and time" in diagnosis[0]["decided_by"]
    assert "policy-denies-connect" in [d["root_cause"] for d in diagnosis]  # may be another connection's


def test_the_same_record_matched_by_time_only_supports():
    device_only = {d["root_cause"]: d["confidence"] for d in diagnose(report("r", "c"))}
    diagnosis = _diagnose(report("r", "c"), authn(START, "CUSTOM_AUTHORIZER_NOT_FOUND"), BY_TIME)
    weights = {d["root_cause"]: d["confidence"] for d in diagnosis}
    assert not any(d["decided"] for d in diagnosis)
    assert weights["authorizer-unknown"] > device_only["authorizer-unknown"]
    unknown = next(d for d in diagnosis if d["root_cause"] == "authorizer-unknown")
    assert "matched by time only" in " ".join(unknown["evidence"])


def test_details_that_name_a_cause_of_the_reasons_family_decide_it():
    record = authn(START, "CUSTOM_AUTHORIZER_NOT_FOUND", details="Authorizer is INACTIVE: InactiveAuth")
    assert _diagnose(report("r", "c"), record, BY_PORT)[0]["root_cause"] == "authorizer-inactive"
    record = authn(START, "CUSTOM_AUTHORIZER_LAMBDA_EXECUTION_ERROR", details="Authorizer function timed out")
    assert _diagnose(report("r", "c"), record, BY_PORT)[0]["root_cause"] == "lambda-timeout"


def test_lambda_execution_error_without_words_narrows_to_the_function_causes():
    diagnosis = _diagnose(report("r", "c"), authn(START, "CUSTOM_AUTHORIZER_LAMBDA_EXECUTION_ERROR",
                                                  details="opaque"), BY_PORT)
    causes = [d["root_cause"] for d in diagnosis]
    assert not diagnosis[0]["decided"]
    assert set(causes[:2]) <= {"lambda-error", "lambda-permission-missing", "authorizer-function-missing",
                               "lambda-response-invalid"}
    assert "signature-invalid" not in causes  # the function ran: nothing before it failed ... or was ruled out


def test_a_run_whose_connect_is_logged_by_client_id_takes_no_loose_authn_error():
    from tests.host.test_correlate import iot_rec

    rep = report("run-d", "dev-d")
    own = event_from_insights_row({"@timestamp": stamp(START + 700), "@message": json.dumps(
        iot_rec("dev-d", START + 700, reason="AUTHORIZATION_FAILURE", details="Authorizer not found: X"))}, "iot")
    neighbour = event_from_insights_row({"@timestamp": stamp(START + 800), "@message": json.dumps(
        authn(START + 800, "NOT_AUTHENTICATED", port=1))}, "iot")
    (joined,) = correlate([rep], [own, neighbour], skew_s=5)
    assert [e.fields["eventType"] for e in joined.events] == ["Connect"]


def test_a_loose_record_must_name_a_cause_the_run_s_failing_step_leaves_open():
    alpn = report("run-e", "dev-e", failing=802)  # an HTTP answer to MQTT: alpn-missing, never custom auth
    neighbour = authn(START + 800, "CUSTOM_AUTHORIZER_PARAMETER_INVALID", port=1, details="Token signature missing")
    (joined,) = correlate([alpn], [event_from_insights_row(
        {"@timestamp": stamp(START + 800), "@message": json.dumps(neighbour)}, "iot")], skew_s=5)
    assert joined.events == []
    own = report("run-f", "dev-f", failing=802, local_port=50412)  # by its port it is its own, whatever the step
    (joined,) = correlate([own], [event_from_insights_row(
        {"@timestamp": stamp(START + 800), "@message": json.dumps(dict(neighbour, sourcePort=50412))}, "iot")],
        skew_s=5)
    assert [e.fields["attributed"] for e in joined.events] == [BY_PORT]


# -- within the correlation's rules (stages, partition, late logs) -----------------------------------

def test_a_run_that_stopped_before_tls_takes_no_authn_error_even_by_its_port():
    rid = "run-g"
    records = [{"k": "begin", "run": rid, "client_id": "dev-g", "utc": "2026-11-26T09:10:00Z", "transport": "mqtt"},
               {"k": "step", "run": rid, "seq": 1, "code": 600, "status": "pass", "ms": 5,
                "d": {"addr": "203.0.113.80:443", "local_port": 50412}},
               {"k": "step", "run": rid, "seq": 2, "code": 701, "status": "fail", "ms": 50},
               {"k": "end", "run": rid, "verdict": "fail", "ms": 1000}]
    rep = build_report(records)
    assert rep["steps"][-1]["step"] == "tls"
    offline = dict(rep, steps=[dict(s, step="clock") if s["step"] == "tls" else s for s in rep["steps"]])
    event = event_from_insights_row({"@timestamp": stamp(START + 800), "@message": json.dumps(
        authn(START + 800, "NOT_AUTHENTICATED"))}, "iot")
    (joined,) = correlate([offline], [event], skew_s=5)
    assert joined.events == []
    assert [e.fields["nearby"] for e in joined.nearby] == ["not this run: it stopped before TLS: the cloud never saw it"]
    (joined,) = correlate([rep], [event], skew_s=5)  # the same run stopped in TLS: its port says it is its own
    assert [e.fields["attributed"] for e in joined.events] == [BY_PORT]


def test_an_authn_error_is_due_for_a_run_refused_at_authentication_only_when_it_is_logged():
    from authprobe.cloud.log_delivery import DEFAULT_LOGGED, awaiting, logged_event_types
    from authprobe.cloud.stages import reached_level

    rep = report("r", "c")
    level = reached_level(rep)
    assert awaiting(rep, level, [], function_read=False) == ["the Connect record"]  # AuthNError: off by default
    assert "Connection.AuthNError" not in DEFAULT_LOGGED
    every = logged_event_types({"defaultLogLevel": "ERROR", "disableAllLogs": False,
                                "eventConfigurations": [{"eventType": "Connection.AuthNError", "logLevel": "ERROR"}]})
    assert awaiting(rep, level, [], function_read=False, logged=every) == [
        "the Connect record", "the Connection.AuthNError entry"]
    only_authn = {"Connection.AuthNError"}
    assert awaiting(rep, level, [], function_read=True, logged=only_authn) == ["the Connection.AuthNError entry"]
    (entry,) = correlate([report("r", "c", local_port=50412)], [event_from_insights_row(
        {"@timestamp": stamp(START + 800), "@message": json.dumps(authn(START + 800, "NOT_AUTHENTICATED"))}, "iot")],
        skew_s=5)[0].events
    assert awaiting(rep, level, [entry], function_read=True, logged=only_authn) == []
    assert awaiting(rep, level, [], function_read=True, logged=set()) == []  # nothing logged: nothing due
