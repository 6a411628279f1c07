"""Regressions from the fuzzing pass of issue 12 (items 2, 5 and 9), with the exact inputs found:
policy wildcards that backtracked for seconds, policy documents validate() accepted but the
evaluator could not read, and matching that differed from IAM's rules."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from authprobe.aws import topic_limits, wildcard
from authprobe.aws.authorizer_response import validate
from authprobe.aws.iot_policy import (
    Context,
    PolicyError,
    document_problems,
    evaluate,
    is_allowed,
    parse_document,
)
from authprobe.aws.lambda_permission import may_invoke
from authprobe.cloud import checks
from authprobe.cloud.device_settings import settings_from_config
from authprobe.cloud.local import LocalCloud
from tests.fixtures import cloud_state as cs

ARN = "arn:aws:iot:us-east-1:111111111111"
CTX = Context(client_id="dev01", account="111111111111", region="us-east-1")
TIME_LIMIT_S = 0.5  # generous: the matcher takes milliseconds; an exponential one takes minutes
KB64 = 64 * 1024


def doc(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action, resource, **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action, resource, **extra):
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def timed(fn, *args):
    started = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - started


# -- item 2: wildcards in linear time ----------------------------------------------------------

@pytest.mark.parametrize("pattern, value", [
    ("topic/a*a*a*a*a*a*a*a*a*a*b", "topic/" + "a" * 48),  # 18 s with the regex
    ("*/*/*/*/*/*/*/*/end", "/" * 64),  # 32 s
    ("topic/*/*/*/*/x", "topic/" + "/" * 506),  # 15 s at 512 characters
])
def test_issue_inputs_are_answered_at_once(pattern, value):
    result, took = timed(wildcard.match, pattern, value)
    assert result is False and took < TIME_LIMIT_S


@pytest.mark.parametrize("pattern, value, expected", [
    ("topic/a*a*a*a*a*a*a*a*a*a*b", "topic/" + "a" * KB64, False),
    ("topic/a*a*a*a*a*a*a*a*a*a*b", "topic/" + "a" * KB64 + "b", True),
    ("*/*/*/*/*/*/*/*/end", "/" * KB64, False),
    ("topic/*/*/*/*/x", "topic/" + "/" * KB64, False),
    ("*" + "a?" * 1000 + "b", "a" * KB64, False),  # a pattern as long as a policy document allows
    ("*?*?*?*?*?*?*?*?*?*?z", "y" * KB64, False),
    # A trailing `*` makes the matcher scan the whole topic instead of failing at its end.
    ("topic/a*a*a*a*a*a*a*a*a*a*b*", "topic/" + "a" * KB64, False),
    ("*/*/*/*/*/*/*/*/end*", "/" * KB64, False),
    ("*" + "a?" * 1000 + "b*", "a" * KB64, False),
    ("*?*?*?*?*?*?*?*?*?*?z*", "y" * KB64, False),
    ("*" + "a?" * 1000 + "b*", "a" * KB64 + "b", True),
])
def test_adversarial_patterns_on_64_kb_topics_stay_fast(pattern, value, expected):
    result, took = timed(wildcard.match, pattern, value)
    assert result is expected and took < TIME_LIMIT_S


def test_a_long_client_id_spliced_into_a_resource_stays_fast():
    policies = [doc(allow("iot:Publish", f"{ARN}:topic/${{iot:ClientId}}/*"))]
    cid = "a" * KB64
    decision, took = timed(is_allowed, policies, "iot:Publish", f"{cid}/x", Context(client_id=cid))
    assert decision.allowed and took < TIME_LIMIT_S


def test_a_whole_policy_on_a_64_kb_topic_stays_fast():
    """Every statement is read for a Deny, so adversarial Denies are evaluated on each PUBLISH."""
    policies = [doc(allow("iot:Publish", f"{ARN}:topic/*"),
                    deny("iot:Publish", [f"{ARN}:topic/a*a*a*a*a*a*a*a*a*a*b", f"{ARN}:topic/*/*/*/*/*/*/*/*/end"]))]
    decision, took = timed(is_allowed, policies, "iot:Publish", "a" * KB64, CTX)
    assert decision.allowed and took < TIME_LIMIT_S


@pytest.mark.parametrize("topic, problem", [
    ("a" * 256, None),
    ("a" * 257, "257 bytes"),
    ("é" * 128, None),  # 256 bytes of UTF-8
    ("é" * 129, "258 bytes"),
    ("a/b/c/d/e/f/g/h", None),  # 7 slashes
    ("a/b/c/d/e/f/g/h/i", "8 forward slashes"),
    ("$aws/rules/myRule/a/b/c/d/e/f/g/h", None),  # Basic Ingest's prefix does not count
    ("$aws/rules/myRule/" + "a" * 256, None),
    ("$aws/rules/myRule/a/b/c/d/e/f/g/h/i", "8 forward slashes"),
])
def test_topic_limits_as_aws_documents_them(topic, problem):
    found = topic_limits.topic_problem(topic)
    assert found is None if problem is None else problem in found


def test_topic_filter_is_held_to_the_slash_limit_only():
    assert topic_limits.topic_problem("a" * 300, is_filter=True) is None
    assert "topic filter has 8" in topic_limits.topic_problem("a/+/c/d/e/f/g/h/#", is_filter=True)


# -- item 5: documents validate() accepted but the evaluator could not read ------------------------

BAD_STATEMENTS = [
    ({"Effect": "Allow", "Action": "iot:Connect", "Resource": 5}, "Resource must be a string"),
    ({"Effect": "Allow", "Action": "iot:Connect", "Resource": "*", "Condition": ["x"]}, "Condition must be an object"),
    ({"Effect": "Allow", "Action": "iot:Connect", "Resource": "*", "Condition": {"StringEquals": "x"}},
     "must be an object of keys and values"),
    ({"Effect": "Allow", "Action": "iot:Connect", "Resource": "*",
      "Condition": {"StringEquals": {"iot:ClientId": {"a": 1}}}}, "must be a string, number or boolean"),
    ({"Effect": "Allow", "Action": [], "Resource": "*"}, "Action must be a string or a non-empty list"),
    ({"Effect": "Allow", "Action": ["iot:Connect", 7], "Resource": "*"}, "Action must be"),
    ({"Effect": "Allow", "Action": "iot:Connect", "NotAction": "iot:Publish", "Resource": "*"},
     "Action and NotAction together"),
    ({"Effect": "Allow", "Action": "iot:Connect", "NotResource": None}, "NotResource must be"),
]


@pytest.mark.parametrize("statement, problem", BAD_STATEMENTS)
def test_documents_the_evaluator_cannot_read_are_named_problems(statement, problem):
    assert any(problem in p for p in document_problems(doc(statement)))
    with pytest.raises(PolicyError, match=problem):
        parse_document(json.dumps(doc(statement)))
    decision = evaluate([doc(statement)], "iot:Connect", f"{ARN}:client/dev01", CTX)
    assert not decision.allowed and "ignored" in decision.notes[0]
    response = validate({"isAuthenticated": True, "principalId": "p1", "policyDocuments": [doc(statement)]})
    assert not response.valid and any(problem in p for p in response.problems)
    assert any(problem in p for p in checks.response_problems({"policyDocuments": [json.dumps(doc(statement))]}))


def test_numeric_and_boolean_condition_values_are_valid_and_evaluated():
    """IAM takes numbers and booleans as condition values; the evaluator used to crash on them."""
    numeric = allow("iot:Connect", "*", Condition={"StringEquals": {"iot:ClientId": 12345}})
    assert document_problems(doc(numeric)) == []
    assert is_allowed([doc(numeric)], "iot:Connect", "12345", Context(client_id="12345")).allowed
    assert not is_allowed([doc(numeric)], "iot:Connect", "dev01", CTX).allowed
    attached = allow("iot:Connect", "*", Condition={"Bool": {"iot:Connection.Thing.IsAttached": [True]}})
    assert is_allowed([doc(attached)], "iot:Connect", "dev01", Context(client_id="dev01", is_attached=True)).allowed


def test_deeply_nested_policy_text_is_a_problem_not_a_crash():
    nested = "[" * 100_000 + "]" * 100_000
    assert document_problems(nested) == ["policy document is not JSON: nested too deeply"]
    response = validate({"isAuthenticated": True, "principalId": "p1", "policyDocuments": [nested]})
    assert not response.valid


def run(tmp_path, test_invoke):
    """cloud-check with --replay against a fixture state directory (as tests/host/test_checks.py)."""
    ctx = checks.CheckContext(LocalCloud(cs.write_state(tmp_path, None), test_invoke=test_invoke),
                              settings_from_config(cs.device_config()),
                              window_end=datetime(2026, 11, 26, 10, 0, tzinfo=UTC), replay=True)
    return {r.id: r for r in checks.run_checks(ctx)}


def test_cloud_check_reports_an_unreadable_returned_policy(tmp_path):
    """cloud-check exited 4 on the very authorizer it is meant to diagnose."""
    def unreadable(state_dir, name, **request):
        return {"isAuthenticated": True, "principalId": "dev01", "policyDocuments": [
            json.dumps(doc({"Effect": "Allow", "Action": "iot:Connect", "Resource": 5}))]}

    results = run(tmp_path, unreadable)
    r = results["replay.response"]
    assert r.status == "fail" and r.root_cause == "lambda-response-invalid"
    assert any("Resource must be a string" in e for e in r.evidence)

    def not_a_list(state_dir, name, **request):
        return {"isAuthenticated": True, "principalId": "dev01", "policyDocuments": {"Statement": []}}

    results = run(tmp_path / "dict", not_a_list)
    assert results["replay.response"].root_cause == "lambda-response-invalid"


@pytest.mark.parametrize("policy", [
    [1, 2],
    {"Statement": 5},
    {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": 5, "Resource": cs.FUNCTION}]},
    {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "lambda:*", "Condition": ["x"]}]},
    {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "lambda:*", "Condition": {"ArnLike": 3}}]},
])
def test_malformed_lambda_resource_policy_is_refused_with_a_reason(policy):
    decision = may_invoke(policy, "arn:aws:lambda:us-east-1:111111111111:function:auth",
                          "arn:aws:iot:us-east-1:111111111111:authorizer/A", "111111111111")
    assert not decision.allowed and "malformed" in decision.reason


# -- item 9: matching as IAM matches -------------------------------------------------------------

def test_star_matches_newlines_when_the_client_id_holds_a_wildcard_character():
    policies = [doc(allow("iot:Publish", f"{ARN}:topic/${{iot:ClientId}}/*"))]
    for cid in ("dev01", "a*b", "a?b"):
        context = Context(client_id=cid)
        assert is_allowed(policies, "iot:Publish", f"{cid}/x\ny", context).allowed, cid
        assert not is_allowed(policies, "iot:Publish", "other/x\ny", context).allowed, cid


@pytest.mark.parametrize("char", ["\x00", "\x01"])
def test_control_characters_in_a_resource_are_literal(char):
    policies = [doc(allow("iot:Publish", f"{ARN}:topic/a{char}b"))]
    assert is_allowed(policies, "iot:Publish", f"a{char}b", CTX).allowed
    for other in ("a*b", "a?b", "axb", "ab"):
        assert not is_allowed(policies, "iot:Publish", other, CTX).allowed


def test_client_id_with_control_characters_is_literal_in_a_variable():
    policies = [doc(allow("iot:Connect", f"{ARN}:client/${{iot:ClientId}}"))]
    context = Context(client_id="a\x00\x01*?")
    assert is_allowed(policies, "iot:Connect", "a\x00\x01*?", context).allowed
    assert not is_allowed(policies, "iot:Connect", "a\x00\x01xy", context).allowed


@pytest.mark.parametrize("key", ["iot:ClientId", "IOT:CLIENTID", "iot:clientid"])
def test_condition_keys_are_case_insensitive(key):
    policies = [doc(allow("iot:Connect", "*", Condition={"StringEquals": {key: "dev01"}}))]
    assert is_allowed(policies, "iot:Connect", "dev01", CTX).allowed
    assert not is_allowed(policies, "iot:Connect", "dev02", Context(client_id="dev02")).allowed


def test_thing_attribute_key_is_case_insensitive_but_not_its_name():
    context = Context(client_id="d", thing_attributes={"Floor": "2"})
    ok = doc(allow("iot:Connect", "*", Condition={"StringEquals": {"IOT:connection.thing.attributes[Floor]": "2"}}))
    assert is_allowed([ok], "iot:Connect", "d", context).allowed


def test_deny_whose_condition_cannot_be_evaluated_fails_closed():
    unknown = {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}
    policies = [doc(allow("iot:*", "*"), deny("iot:Publish", f"{ARN}:topic/secret/*", Condition=unknown))]
    d = is_allowed(policies, "iot:Publish", "secret/x", CTX)
    assert not d.allowed and d.explicit_deny and d.assumed_deny
    assert "fail closed" in d.explain() and any("fail closed" in n for n in d.notes)
    assert is_allowed(policies, "iot:Publish", "public/x", CTX).allowed  # the Deny's resource does not match


def test_condition_on_a_key_the_stand_in_does_not_know_fails_closed():
    unknown_key = {"StringEquals": {"aws:SourceVpc": "vpc-1"}}
    d = is_allowed([doc(allow("iot:*", "*"), deny("iot:Connect", "*", Condition=unknown_key))],
                   "iot:Connect", "dev01", CTX)
    assert not d.allowed and d.assumed_deny
    d = is_allowed([doc(allow("iot:Connect", "*", Condition=unknown_key))], "iot:Connect", "dev01", CTX)
    assert not d.allowed and d.effect == "ImplicitDeny" and any("fail closed" in n for n in d.notes)


def test_an_evaluable_false_condition_beside_an_unknown_one_does_not_deny():
    cond = {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"},
            "StringEquals": {"iot:ClientId": "someone-else"}}
    policies = [doc(allow("iot:*", "*"), deny("iot:Connect", "*", Condition=cond))]
    assert is_allowed(policies, "iot:Connect", "dev01", CTX).allowed


def test_negated_operator_on_an_absent_key_holds():
    """IAM: a key absent from the request makes StringNotEquals/...NotLike true."""
    cond = {"StringNotEquals": {"iot:Connection.Thing.ThingName": "blocked"}}
    assert is_allowed([doc(allow("iot:Connect", "*", Condition=cond))], "iot:Connect", "dev01", CTX).allowed
    positive = {"StringEquals": {"iot:Connection.Thing.ThingName": "blocked"}}
    assert not is_allowed([doc(allow("iot:Connect", "*", Condition=positive))], "iot:Connect", "dev01", CTX).allowed


def test_lambda_permission_deny_with_unknown_operator_fails_closed():
    fn = "arn:aws:lambda:us-east-1:111111111111:function:auth"
    auth = "arn:aws:iot:us-east-1:111111111111:authorizer/A"
    allow_st = {"Effect": "Allow", "Principal": {"Service": "iot.amazonaws.com"}, "Action": "lambda:InvokeFunction",
                "Resource": fn}
    deny_st = {**allow_st, "Sid": "odd", "Effect": "Deny",
               "Condition": {"DateLessThan": {"aws:CurrentTime": "2099-01-01T00:00:00Z"}}}
    d = may_invoke({"Statement": [allow_st, deny_st]}, fn, auth, "111111111111")
    assert not d.allowed and "fail closed" in d.reason
    numeric = {**allow_st, "Condition": {"StringEquals": {"aws:sourceaccount": 111111111111}}}
    assert may_invoke({"Statement": [numeric]}, fn, auth, "111111111111").allowed
