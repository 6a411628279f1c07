"""IoT policy evaluation as the broker applies authorizer policies (authprobe.aws.iot_policy)."""

from __future__ import annotations

import json

import pytest

from authprobe.aws.iot_policy import Context, PolicyError, evaluate, is_allowed, parse_document, resource_arn

ARN = "arn:aws:iot:us-east-1:111111111111"
CTX = Context(client_id="dev01", account="111111111111", region="us-east-1")


def doc(*statements, version="2012-10-17"):
    return {"Version": version, "Statement": list(statements)}


def allow(action, resource):
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def deny(action, resource):
    return {"Effect": "Deny", "Action": action, "Resource": resource}


def test_resource_kinds_per_action():
    assert resource_arn("iot:Connect", "dev01", CTX) == f"{ARN}:client/dev01"
    assert resource_arn("iot:Publish", "a/b", CTX) == f"{ARN}:topic/a/b"
    assert resource_arn("iot:Receive", "a/b", CTX) == f"{ARN}:topic/a/b"
    assert resource_arn("iot:Subscribe", "a/+", CTX) == f"{ARN}:topicfilter/a/+"
    with pytest.raises(ValueError):
        resource_arn("iot:Fly", "x", CTX)


def test_allow_and_implicit_deny():
    policies = [doc(allow("iot:Connect", f"{ARN}:client/dev01"))]
    assert is_allowed(policies, "iot:Connect", "dev01", CTX).allowed
    other = is_allowed(policies, "iot:Connect", "dev02", CTX)
    assert not other.allowed and other.effect == "ImplicitDeny"
    assert not is_allowed(policies, "iot:Publish", "dev01", CTX).allowed


def test_explicit_deny_wins_across_documents():
    policies = [doc(allow("iot:*", "*")), json.dumps(doc(deny("iot:Publish", f"{ARN}:topic/secret/*")))]
    d = is_allowed(policies, "iot:Publish", "secret/x", CTX)
    assert not d.allowed and d.explicit_deny and d.document_index == 1
    assert is_allowed(policies, "iot:Publish", "public/x", CTX).allowed
    assert "explicitly denied" in d.explain()


def test_wildcards_star_and_question_mark():
    policies = [doc(allow("iot:Pub*", f"{ARN}:topic/room?/temp"))]
    assert is_allowed(policies, "iot:Publish", "room1/temp", CTX).allowed
    assert not is_allowed(policies, "iot:Publish", "room12/temp", CTX).allowed
    assert not is_allowed(policies, "iot:Subscribe", "room1/temp", CTX).allowed


def test_action_names_are_case_insensitive_resources_are_not():
    policies = [doc(allow("IOT:publish", f"{ARN}:topic/Room"))]
    assert is_allowed(policies, "iot:Publish", "Room", CTX).allowed
    assert not is_allowed(policies, "iot:Publish", "room", CTX).allowed


def test_mqtt_wildcards_are_literal_in_policies():
    policies = [doc(allow("iot:Subscribe", f"{ARN}:topicfilter/sensors/#"))]
    assert is_allowed(policies, "iot:Subscribe", "sensors/#", CTX).allowed
    assert not is_allowed(policies, "iot:Subscribe", "sensors/a", CTX).allowed
    plus = [doc(allow("iot:Subscribe", f"{ARN}:topicfilter/a/+/c"))]
    assert not is_allowed(plus, "iot:Subscribe", "a/b/c", CTX).allowed


def test_client_id_variable():
    policies = [doc(allow("iot:Connect", f"{ARN}:client/${{iot:ClientId}}"),
                    allow("iot:Publish", f"{ARN}:topic/selftest/${{iot:ClientId}}/*"))]
    assert is_allowed(policies, "iot:Connect", "dev01", CTX).allowed
    assert is_allowed(policies, "iot:Publish", "selftest/dev01/x", CTX).allowed
    assert not is_allowed(policies, "iot:Publish", "selftest/dev02/x", CTX).allowed


def test_variables_need_version_2012():
    policies = [doc(allow("iot:Connect", f"{ARN}:client/${{iot:ClientId}}"), version="2008-10-17")]
    assert not is_allowed(policies, "iot:Connect", "dev01", CTX).allowed
    assert is_allowed(policies, "iot:Connect", "${iot:ClientId}", CTX).allowed


def test_substituted_value_is_literal_and_unset_variable_does_not_match():
    policies = [doc(allow("iot:Connect", f"{ARN}:client/${{iot:ClientId}}"))]
    star = Context(client_id="a*", account="111111111111", region="us-east-1")
    assert is_allowed(policies, "iot:Connect", "a*", star).allowed
    assert not is_allowed(policies, "iot:Connect", "abc", star).allowed
    thing = [doc(allow("iot:Connect", f"{ARN}:client/${{iot:Connection.Thing.ThingName}}"))]
    assert not is_allowed(thing, "iot:Connect", "dev01", CTX).allowed
    attached = Context(client_id="dev01", thing_name="dev01", is_attached=True)
    assert is_allowed(thing, "iot:Connect", "dev01", attached).allowed


def test_escape_variables():
    policies = [doc(allow("iot:Publish", f"{ARN}:topic/literal${{*}}"))]
    assert is_allowed(policies, "iot:Publish", "literal*", CTX).allowed
    assert not is_allowed(policies, "iot:Publish", "literalX", CTX).allowed


def test_conditions():
    cond = {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*",
            "Condition": {"Bool": {"iot:Connection.Thing.IsAttached": "true"}}}
    assert not is_allowed([doc(cond)], "iot:Connect", "dev01", CTX).allowed
    assert is_allowed([doc(cond)], "iot:Connect", "dev01", Context(client_id="dev01", is_attached=True)).allowed
    like = {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*",
            "Condition": {"StringLike": {"iot:ClientId": "dev*"}}}
    assert is_allowed([doc(like)], "iot:Connect", "dev01", CTX).allowed
    unknown = {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*",
               "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}}
    d = is_allowed([doc(unknown)], "iot:Connect", "dev01", CTX)
    assert not d.allowed and any("not evaluated" in n for n in d.notes)


def test_not_action_and_not_resource():
    policies = [doc({"Effect": "Allow", "NotAction": "iot:Publish", "Resource": "*"})]
    assert is_allowed(policies, "iot:Subscribe", "x", CTX).allowed
    assert not is_allowed(policies, "iot:Publish", "x", CTX).allowed
    nr = [doc({"Effect": "Allow", "Action": "iot:Publish", "NotResource": f"{ARN}:topic/admin/*"})]
    assert is_allowed(nr, "iot:Publish", "user/x", CTX).allowed
    assert not is_allowed(nr, "iot:Publish", "admin/x", CTX).allowed


def test_malformed_documents_are_skipped_with_a_note():
    d = evaluate(["{not json", {"Statement": []}, doc(allow("iot:Connect", "*"))], "iot:Connect",
                 f"{ARN}:client/dev01", CTX)
    assert d.allowed and d.document_index == 2
    assert len(d.notes) == 2


@pytest.mark.parametrize("bad, message", [
    ("[]", "JSON object"),
    ("{}", "no Statement"),
    ('{"Statement": [{"Effect": "Maybe", "Action": "*", "Resource": "*"}]}', "Effect"),
    ('{"Statement": [{"Effect": "Allow", "Resource": "*"}]}', "no Action"),
    ('{"Statement": [{"Effect": "Allow", "Action": "*"}]}', "no Resource"),
    ("nope", "not JSON"),
])
def test_parse_document_errors(bad, message):
    with pytest.raises(PolicyError, match=message):
        parse_document(bad)


def test_single_statement_object_is_accepted():
    parsed = parse_document({"Version": "2012-10-17", "Statement": allow("iot:Connect", "*")})
    assert isinstance(parsed["Statement"], list)
