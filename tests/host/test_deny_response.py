"""A deny is `{"isAuthenticated": false}`, whatever else it lacks: the schema checks are for allows."""

from __future__ import annotations

import pytest

from authprobe.aws.authorizer_response import validate
from authprobe.report.diagnosis import diagnose


@pytest.mark.parametrize("payload", [
    {"isAuthenticated": False},
    {"isAuthenticated": False, "principalId": "dev01", "policyDocuments": []},
    {"isAuthenticated": False, "principalId": "device:01", "refreshAfterInSeconds": 5},  # [?] AWS: undocumented
])
def test_an_explicit_false_is_a_valid_deny(payload):
    response = validate(payload)
    assert response.valid and not response.is_authenticated and response.policy_documents == []


@pytest.mark.parametrize("payload, words", [
    ({"isAuthenticated": True}, "principalId"),
    ({"isAuthenticated": True, "principalId": "dev01"}, "policyDocuments is missing"),
    ({"isAuthenticated": "false"}, "must be a boolean"),     # a string is no deny
    ({"isAuthenticated": 0}, "must be a boolean"),
    ({}, "isAuthenticated is missing"),
])
def test_allows_and_non_booleans_keep_the_schema_checks(payload, words):
    response = validate(payload)
    assert not response.valid and any(words in p for p in response.problems)


def test_the_stand_in_s_deny_record_diagnoses_authorizer_denied():
    from tests.fixtures import cloud_state as cs

    report = cs.report()
    record = {"source": "iot", "ts_ms": 0, "client_id": cs.CLIENT_ID, "eventType": "Connect", "status": "Failure",
              "reason": "AUTHORIZATION_FAILURE", "details": "Authorizer returned isAuthenticated false"}
    diagnosis = diagnose(report, {"events": [record]})
    assert diagnosis[0]["root_cause"] == "authorizer-denied" and diagnosis[0]["decided"]
