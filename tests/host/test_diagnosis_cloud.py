"""Every root cause whose separating evidence is cloud-side is diagnosed from that evidence: the
evidence comes from running the real checks against a fixture account (or from log records in the
documented AWSIotLogsV2 / function-log shapes), the device report from build_report."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from authprobe.cloud import checks
from authprobe.cloud.device_settings import settings_from_config
from authprobe.cloud.local import LocalCloud
from authprobe.report.diagnosis import BEFORE_INVOKE, CloudEvidence, diagnose
from tests.fixtures import cloud_state as cs

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
ARN = f"arn:aws:iot:{cs.REGION}:{cs.ACCOUNT}"


def policy(*actions: str) -> str:
    st = []
    for a in actions:
        kind = {"iot:Connect": f"client/{cs.CLIENT_ID}", "iot:Subscribe": f"topicfilter/{cs.TOPIC}"}.get(
            a, f"topic/{cs.TOPIC}")
        st.append({"Effect": "Allow", "Action": a, "Resource": f"{ARN}:{kind}"})
    return json.dumps({"Version": "2012-10-17", "Statement": st})


ALL = ("iot:Connect", "iot:Publish", "iot:Subscribe", "iot:Receive")


def answering(response=None, error=None):
    def invoke(state_dir, name, **request):
        if error:
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": error[0], "Message": error[1]}}, "TestInvokeAuthorizer")
        return response
    return invoke


def allowed(*actions):
    return answering({"isAuthenticated": True, "principalId": "dev01", "policyDocuments": [policy(*actions)],
                      "refreshAfterInSeconds": 300, "disconnectAfterInSeconds": 3600})


def evidence_from_checks(tmp_path, cloud=None, device=None, invoke=None, metrics=()):
    state = cs.write_state(tmp_path, cloud, metrics=list(metrics))
    ctx = checks.CheckContext(LocalCloud(state, test_invoke=invoke or allowed(*ALL)),
                              settings_from_config(device or cs.device_config()), window_end=NOW)
    return CloudEvidence([r.as_dict() for r in checks.run_checks(ctx)])


def _cloud(**edits):
    c = cs.healthy_cloud()
    for path, value in edits.items():
        keys = path.split("__")
        target = c
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value
    return c


INVOKED = [cs.metric("Invocations", 5, NOW_MS - 60_000), cs.metric("Duration", 80, NOW_MS - 60_000)]

CASES = {
    "authorizer-function-missing": dict(cloud=_cloud(functions={})),
    "lambda-permission-missing": dict(cloud=_cloud(function_policies={})),
    "lambda-error": dict(metrics=INVOKED + [cs.metric("Errors", 5, NOW_MS - 60_000)],
                         invoke=answering(error=("InvalidResponseException",
                                                 "The response is invalid: Authorizer function failed: KeyError"))),
    "lambda-response-invalid": dict(metrics=INVOKED, invoke=answering(
        {"isAuthenticated": True, "principalId": "not valid!", "policyDocuments": [policy(*ALL)]})),
    "authorizer-denied": dict(metrics=INVOKED, invoke=answering(
        {"isAuthenticated": False, "principalId": "dev01", "policyDocuments": []})),
    "policy-denies-connect": dict(metrics=INVOKED, invoke=allowed("iot:Publish", "iot:Subscribe", "iot:Receive")),
    "lambda-timeout": dict(metrics=[cs.metric("Invocations", 2, NOW_MS - 60_000),
                                    cs.metric("Duration", 5000, NOW_MS - 60_000)], code=907,
                           invoke=answering(error=("InvalidResponseException", "The response is invalid: "
                                                   "Authorizer function timed out after 5.00 seconds"))),
    "authorizer-inactive": dict(cloud=_cloud(authorizers__DeviceAuth__status="INACTIVE")),
    "signature-missing": dict(device=cs.device_config(**{"auth.signature": None})),
    "signature-invalid": dict(device=cs.device_config(**{"auth.signature": cs.signature(key=cs.rsa_key(2048, 1))})),
    "token-key-name-mismatch": dict(device=cs.device_config(**{"auth.token_key_name": "tok"})),
    "authorizer-unknown": dict(device=cs.device_config(**{"auth.authorizer": "Typo"})),
    "sni-mismatch": dict(device=cs.device_config(**{"endpoint.host": "other-ats.iot.eu-west-1.amazonaws.com"}),
                         code=705),
    "policy-denies-publish": dict(metrics=INVOKED, invoke=allowed("iot:Connect", "iot:Subscribe", "iot:Receive"),
                                  code=1002),
    "policy-denies-subscribe": dict(metrics=INVOKED, invoke=allowed("iot:Connect", "iot:Publish", "iot:Receive"),
                                    code=1001),
    "policy-denies-receive": dict(metrics=INVOKED, invoke=allowed("iot:Connect", "iot:Publish", "iot:Subscribe"),
                                  code=1003),
}


@pytest.mark.parametrize("cause", sorted(CASES))
def test_cloud_check_evidence_decides(tmp_path, cause):
    case = dict(CASES[cause])
    code = case.pop("code", 906)
    report = cs.report(failing_code=code)
    before = diagnose(report)
    evidence = evidence_from_checks(tmp_path, **case)
    after = diagnose(report, evidence)
    assert after[0]["root_cause"] == cause, [(d["root_cause"], d["confidence"]) for d in after]
    assert after[0]["decided"] and after[0]["confidence"] >= 0.9
    assert after[0]["decided_by"].startswith("cloud-check ")
    # The cloud evidence narrowed a device-side guess (several candidates, or one undecided).
    assert len(after) <= len(before) and not any(d["decided"] for d in before)


def test_signature_not_urlencoded_from_the_config_and_the_iot_log(tmp_path):
    sig = cs.signature()
    raw = sig if any(c in sig for c in "+/=") else sig + "="
    user = f"p?x-amz-customauthorizer-name={cs.AUTHORIZER}&x-amz-customauthorizer-signature={raw}&token={cs.TOKEN}"
    evidence = evidence_from_checks(tmp_path, device=cs.device_config(**{"auth.username": user}))
    out = diagnose(cs.report(failing_code=906), evidence)
    assert out[0]["root_cause"] == "signature-not-urlencoded" and out[0]["decided"]


def iot(event_type, status, **fields):
    return {"source": "iot", "ts_ms": NOW_MS, "timestamp": "2026-11-26 10:00:00.000", "clientId": cs.CLIENT_ID,
            "eventType": event_type, "status": status, **fields}


def fn(message, attributed="client_id"):
    return {"source": "lambda", "ts_ms": NOW_MS, "message": message, "requestId": "r1", "attributed": attributed}


LOG_CASES = {
    "client-id-conflict": (1005, [iot("Disconnect", "Success", reason="DUPLICATE_CLIENT_ID",
                                      details="A new connection was established with the same client ID",
                                      disconnectReason="DUPLICATE_CLIENTID")]),
    "policy-denies-publish": (1002, [iot("Publish-In", "Failure", reason="AUTHORIZATION_FAILURE",
                                         topicName=cs.TOPIC)]),
    "policy-denies-subscribe": (1001, [iot("Subscribe", "Failure", reason="AUTHORIZATION_FAILURE",
                                           topicName=cs.TOPIC)]),
    "lambda-timeout": (906, [fn("2026-11-26T10:00:05Z r1 Task timed out after 5.00 seconds")]),
    "lambda-error": (906, [fn("[ERROR] KeyError: 'token'\nTraceback (most recent call last):")]),
    "signature-invalid": (906, [iot("Connect", "Failure", reason="AUTHORIZATION_FAILURE",
                                    details="Signature verification failed")]),
    "authorizer-inactive": (906, [iot("Connect", "Failure", reason="AUTHORIZATION_FAILURE",
                                      details="Authorizer is INACTIVE: DeviceAuth")]),
    "lambda-permission-missing": (906, [iot("Connect", "Failure", reason="AUTHORIZATION_FAILURE",
                                            details="AWS IoT is not permitted to invoke the authorizer function")]),
    "authorizer-denied": (906, [fn('{"isAuthenticated": false, "principalId": "x"} for clientId=probe-dev01')]),
}


@pytest.mark.parametrize("cause", sorted(LOG_CASES))
def test_log_events_decide(cause):
    code, events = LOG_CASES[cause]
    out = diagnose(cs.report(failing_code=code), CloudEvidence(events=events))
    assert out[0]["root_cause"] == cause and out[0]["decided"], out


def test_function_ran_for_the_device_rules_out_pre_invocation_causes():
    events = [fn("event clientId=probe-dev01 received"), fn("[ERROR] boom")]
    out = diagnose(cs.report(failing_code=906), CloudEvidence(events=events))
    causes = [d["root_cause"] for d in out]
    assert causes[0] == "lambda-error"
    assert not set(causes) & BEFORE_INVOKE
    assert any("ruled out" in e for e in out[0]["evidence"])


def test_time_only_function_failures_only_support():
    out = diagnose(cs.report(failing_code=906), CloudEvidence(events=[fn("Task timed out after 5.00 seconds", "time")]))
    timeout = next(d for d in out if d["root_cause"] == "lambda-timeout")
    assert not timeout["decided"] and "by time only" in timeout["evidence"][0]
    assert not any(d["decided"] for d in out)
    slow = diagnose(cs.report(failing_code=907), CloudEvidence(events=[fn("Task timed out after 5.00 seconds", "time")]))
    assert slow[0]["root_cause"] == "lambda-timeout" and slow[0]["confidence"] >= 0.9 and not slow[0]["decided"]


def test_zero_invocations_narrow_to_causes_before_the_function(tmp_path):
    evidence = CloudEvidence(checks=[{"id": "metrics.invocations", "title": "the function is invoked",
                                      "status": "warn", "evidence": ["no Invocations"], "root_cause": None,
                                      "data": {"invocations": 0}}])
    out = diagnose(cs.report(failing_code=906), evidence)
    assert {d["root_cause"] for d in out} <= BEFORE_INVOKE
    assert out and not any(d["decided"] for d in out)


def test_without_cloud_evidence_candidates_say_what_would_decide():
    out = diagnose(cs.report(failing_code=906))
    assert len(out) > 5 and not any(d["decided"] for d in out)
    perm = next(d for d in out if d["root_cause"] == "lambda-permission-missing")
    assert "Invocations" in perm["decided_by"]
    assert abs(sum(d["confidence"] for d in out) - 1.0) < 0.05


def test_passing_run_has_no_diagnosis_even_with_cloud_failures():
    evidence = CloudEvidence(checks=[{"id": "authorizer.status", "title": "t", "status": "fail", "evidence": [],
                                      "root_cause": "authorizer-inactive"}])
    assert diagnose(cs.report(failing_code=None), evidence) == []


def test_a_working_replay_outweighs_account_wide_error_metrics(tmp_path):
    """Errors in the window may be other devices'; the function answering this device's credentials
    with a valid response rules lambda-error out for it, and the policy finding leads."""
    evidence = evidence_from_checks(tmp_path, metrics=INVOKED + [cs.metric("Errors", 3, NOW_MS - 60_000)],
                                    invoke=allowed("iot:Publish", "iot:Subscribe", "iot:Receive"))
    out = diagnose(cs.report(failing_code=906), evidence)
    assert out[0]["root_cause"] == "policy-denies-connect" and out[0]["decided"]
    error = next(d for d in out if d["root_cause"] == "lambda-error")
    assert error["confidence"] < out[0]["confidence"] and any(e.startswith("but:") for e in error["evidence"])


def test_dict_evidence_is_accepted():
    out = diagnose(cs.report(failing_code=1005), {"events": LOG_CASES["client-id-conflict"][1]})
    assert out[0]["root_cause"] == "client-id-conflict"


@pytest.mark.parametrize("record", [
    iot("Publish-In", "Failure", reason="CLIENT_ERROR", details="QoS 2 is not supported", topicName=cs.TOPIC),
    iot("Connect", "Failure", reason="AUTHORIZATION_FAILURE", details="Authorizer function throttled"),
    iot("Connect", "Failure", reason="SERVER_ERROR", details="Message broker unavailable"),
])
def test_failures_that_are_not_a_policy_or_authorizer_decision_decide_nothing(record):
    out = diagnose(cs.report(failing_code=1002 if record["eventType"] == "Publish-In" else 906),
                   CloudEvidence(events=[record]))
    assert not any(d["decided"] for d in out)
    # Neutral evidence leaves the device-side candidates exactly as they were.
    assert diagnose(cs.report(failing_code=906), CloudEvidence(events=[record])) == diagnose(cs.report(failing_code=906))


def test_function_log_evidence_gives_utc_text_not_epoch_ms():
    from authprobe.report.diagnosis import findings_from_events, utc_text

    ms = 1764667064123  # 2025-12-02T09:17:44.123Z
    found = findings_from_events([{"source": "lambda", "timestamp": ms, "message": "Task timed out after 5.00 seconds"}])
    assert found and "2025-12-02T09:17:44.123Z" in found[0].text and str(ms) not in found[0].text
    assert utc_text("2025-12-02 09:17:44.123") == "2025-12-02 09:17:44.123"  # IoT's own text stays
