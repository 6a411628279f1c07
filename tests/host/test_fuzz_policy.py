"""Property-based tests of the policy evaluator and the authorizer-response validation (issue 12):
the linear wildcard matcher agrees with a plain memoized recursive glob, the evaluator agrees with
it through whole policies, and no JSON a Lambda can return makes validation, evaluation, the
Lambda permission check or cloud-check's response check raise."""

from __future__ import annotations

import json
from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authprobe.aws import wildcard
from authprobe.aws.authorizer_response import AuthorizerResponse, validate
from authprobe.aws.iot_policy import (
    ACTIONS,
    Context,
    Decision,
    document_problems,
    evaluate,
    is_allowed,
    parse_document,
)
from authprobe.aws.lambda_permission import PermissionDecision, may_invoke
from authprobe.cloud import checks

# `make fuzz` runs 20,000 examples per test: minutes, past the suite-wide 120 s timeout.
pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(900)]

ARN = "arn:aws:iot:us-east-1:111111111111"
# Few distinct characters, so patterns and values collide often; newline and U+0000/U+0001 are
# the characters the old regex translation mishandled.
ALPHABET = "ab/\n\x00\x01*?"
patterns = st.text(alphabet=ALPHABET, max_size=14)
values = st.text(alphabet="ab/\n\x00\x01*?A", max_size=24)


def reference_match(pattern: tuple, value: str) -> bool:
    """The obvious glob: memoized recursion over (pattern position, value position)."""

    @cache
    def at(i: int, j: int) -> bool:
        if i == len(pattern):
            return j == len(value)
        token = pattern[i]
        if token == wildcard.ANY_RUN:
            return at(i + 1, j) or (j < len(value) and at(i, j + 1))
        if j == len(value):
            return False
        return (token == wildcard.ANY_ONE or token == value[j]) and at(i + 1, j + 1)

    return at(0, 0)


@given(patterns, values)
def test_match_agrees_with_the_reference_glob(pattern, value):
    assert wildcard.match(pattern, value) == reference_match(wildcard.tokens(pattern), value)


@given(patterns, st.text(alphabet="aAbB/*?", max_size=20))
def test_case_insensitive_match_agrees_with_the_reference_on_lowered_text(pattern, value):
    expected = reference_match(wildcard.tokens(pattern.lower()), value.lower())
    assert wildcard.match(pattern, value, case_sensitive=False) == expected


pieces = st.lists(st.one_of(st.sampled_from([wildcard.ANY_RUN, wildcard.ANY_ONE]),
                            st.text(alphabet=ALPHABET, min_size=1, max_size=4).map(lambda s: ("lit", s))),
                  max_size=8)


def _splice(parts: list) -> tuple:
    out: list = []
    for part in parts:
        out += wildcard.literal(part[1]) if isinstance(part, tuple) else [part]
    return tuple(out)


@given(pieces, values)
def test_spliced_literals_never_act_as_wildcards(parts, value):
    pattern = _splice(parts)
    assert wildcard.match_tokens(pattern, value) == reference_match(pattern, value)


@given(st.text(alphabet="ab/", max_size=10), st.text(alphabet="ab/*?", max_size=10), values)
def test_policy_with_one_resource_decides_as_the_reference(prefix, tail, topic):
    """A whole evaluation (document parsing, ARN, variables) against the reference glob."""
    client_id = prefix or "c"
    resource = f"{ARN}:topic/${{iot:ClientId}}{tail}"
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Publish", "Resource": resource}]}
    expected = reference_match(wildcard.literal(f"{ARN}:topic/{client_id}") + wildcard.tokens(tail), f"{ARN}:topic/{topic}")
    decision = is_allowed([policy], "iot:Publish", topic, Context(client_id=client_id))
    assert decision.allowed == expected


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


def _plausible(*choices):
    """One of a few plausible values, most of them valid: hypothesis favours structure over plain
    choices, so arbitrary JSON goes in separate strategies and these stay readable often enough
    to reach the evaluator's depths."""
    return st.sampled_from(choices)


condition_ops = ["StringEquals", "StringNotLike", "StringLikeIfExists", "Null", "Bool", "ArnLike", "NumericLessThan"]
condition_keys = ["iot:ClientId", "IOT:clientid", "aws:SourceIp", "iot:Connection.Thing.ThingName",
                  "iot:Connection.Thing.Attributes[a]", "aws:CurrentTime"]
condition_scalars = st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12)


def _conditions(values):
    return st.dictionaries(st.sampled_from(condition_ops),
                           st.dictionaries(st.sampled_from(condition_keys), values, max_size=2), max_size=2)


plausible_values = _plausible("dev*", "${iot:ClientId}", "true", "a?", 5, True, ["dev01", 1])
valid_conditions = _conditions(st.one_of(plausible_values, condition_scalars, st.lists(condition_scalars, max_size=3)))
conditions = _conditions(st.one_of(plausible_values, json_scalars, st.lists(json_scalars, max_size=3)))
VALID_EFFECTS = ("Allow", "Deny")
VALID_ACTIONS = ("iot:*", "iot:Publish", ["iot:Connect", "iot:P*"], "*", "iot:Subscribe")
VALID_RESOURCES = ("*", f"{ARN}:topic/${{iot:ClientId}}/*", [f"{ARN}:client/*", f"{ARN}:topic/a*"],
                   f"{ARN}:topic/a*", f"{ARN}:topic/${{iot:Connection.Thing.ThingName}}")


def _statements(effects, actions, resource_keys, resources, condition):
    return st.builds(lambda effect, action, resource_key, resource, condition: {
        "Effect": effect, "Action": action, resource_key: resource,
        **({} if condition is None else {"Condition": condition})},
        _plausible(*effects), _plausible(*actions), _plausible(*resource_keys), _plausible(*resources), condition)


valid_statements = _statements(VALID_EFFECTS, VALID_ACTIONS, ("Resource", "NotResource"), VALID_RESOURCES,
                               st.none() | valid_conditions)
# One wrong value per field among mostly right ones, and sometimes arbitrary JSON for the condition.
statements = _statements((*VALID_EFFECTS, *VALID_EFFECTS, "allow"), (*VALID_ACTIONS, [], 5),
                         ("Resource", "Resource", "NotResource"), (*VALID_RESOURCES, 5, None),
                         st.one_of(st.none(), conditions, json_values))
valid_documents = st.fixed_dictionaries({"Version": _plausible("2012-10-17", "2008-10-17"),
                                         "Statement": st.lists(valid_statements, min_size=1, max_size=3)})
documents = st.fixed_dictionaries(
    {"Statement": st.one_of(st.lists(statements, min_size=1, max_size=3), statements, json_values)},
    optional={"Version": _plausible("2012-10-17", "2012-10-17", "2008-10-17", 1)})
any_document = st.one_of(valid_documents, documents, documents.map(json.dumps), json_values, st.text(max_size=30))


@given(st.lists(any_document, max_size=3), st.sampled_from(ACTIONS), values,
       st.sampled_from([None, "dev01", "a*", "x\x00"]))
def test_evaluation_never_raises(docs, action, name, client_id):
    decision = is_allowed(docs, action, name, Context(client_id=client_id, thing_attributes={"a": "1"}))
    assert isinstance(decision, Decision)
    if decision.allowed:  # only a document without problems can allow anything
        assert any(not document_problems(d) for d in docs)
    decision.explain()


@given(st.lists(valid_documents, min_size=1, max_size=3), st.sampled_from(ACTIONS), values,
       st.sampled_from([None, "dev01", "a*", "x\x00"]), st.sampled_from([None, "dev01"]))
def test_valid_documents_are_read_completely(docs, action, name, client_id, thing_name):
    """No valid document is skipped; a condition the stand-in cannot evaluate shows in the notes."""
    assert all(document_problems(d) == [] for d in docs)
    decision = is_allowed(docs, action, name, Context(client_id=client_id, thing_name=thing_name))
    assert not any("ignored" in n for n in decision.notes)
    if decision.assumed_deny or any("cannot be evaluated" in n for n in decision.notes):
        assert any("not evaluated here" in n for n in decision.notes)


@given(any_document)
def test_document_problems_and_parse_agree(doc):
    problems = document_problems(doc)
    if problems:
        assert all(isinstance(p, str) and p for p in problems)
    else:
        assert isinstance(parse_document(doc)["Statement"], list)


responses = st.fixed_dictionaries(
    {"isAuthenticated": _plausible(True, True, False, "true", None), "principalId": _plausible("p1", "", "a-b", "x" * 129),
     "policyDocuments": st.one_of(st.lists(any_document, max_size=3), json_values)},
    optional={"refreshAfterInSeconds": _plausible(300, 299, 86401, 300.0, True, "300"),
              "disconnectAfterInSeconds": _plausible(86400, 0, 3600)})


@given(st.one_of(responses, json_values))
def test_response_validation_returns_problems_or_a_response_never_raises(payload):
    response = validate(payload)
    assert isinstance(response, AuthorizerResponse)
    if response.valid:
        assert all(document_problems(d) == [] for d in response.policy_documents)
        evaluate(response.policy_documents, "iot:Publish", f"{ARN}:topic/x", Context(client_id="dev01"))
    if isinstance(payload, dict):
        assert all(isinstance(p, str) for p in checks.response_problems(payload))


lambda_statements = st.fixed_dictionaries(
    {"Effect": _plausible("Allow", "Deny", "Allow", 5),
     "Principal": _plausible({"Service": "iot.amazonaws.com"}, "*", {"AWS": 5}, {"Service": ["iot.amazonaws.com", 1]}),
     "Action": _plausible("lambda:InvokeFunction", "lambda:*", [5], "lambda:InvokeFunction"),
     "Resource": _plausible("arn:aws:lambda:us-east-1:111111111111:function:auth", "*", {"x": 1})},
    optional={"Condition": st.one_of(conditions, json_values), "Sid": st.one_of(st.just("s1"), json_values)})


@given(st.one_of(st.fixed_dictionaries({"Statement": st.one_of(st.lists(lambda_statements, max_size=3),
                                                                json_values)}), json_values))
def test_lambda_permission_never_raises(policy):
    decision = may_invoke(policy, "arn:aws:lambda:us-east-1:111111111111:function:auth",
                          "arn:aws:iot:us-east-1:111111111111:authorizer/A", "111111111111")
    assert isinstance(decision, PermissionDecision) and decision.reason


@given(st.lists(st.sampled_from(["a", "/", "*", "?"]), min_size=1, max_size=12), st.integers(50, 400))
def test_adversarial_shapes_agree_with_the_reference_on_long_values(shape, length):
    """Star-heavy patterns on long runs of one character, the shapes that made the regex backtrack."""
    pattern = "".join(shape)
    for value in ("a" * length, "/" * length, "a/" * (length // 2)):
        assert wildcard.match(pattern, value) == reference_match(wildcard.tokens(pattern), value)
