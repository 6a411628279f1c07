"""Checks an authorizer function's response against the schema IoT documents
(DG custom-auth-lambda.html; BOTO TestInvokeAuthorizer response):

- isAuthenticated: boolean
- principalId: alphanumeric, 1-128 characters
- policyDocuments: list of at most 10 IoT policy documents, each at most 2,048 characters
  (JSON strings, or objects, which IoT serialises)
- disconnectAfterInSeconds, refreshAfterInSeconds: integers 300-86,400

A response that breaks any rule fails authentication (AWS then closes the connection) and
TestInvokeAuthorizer answers InvalidResponseException. Each policy document is type-checked in full
(iot_policy.document_problems): a document the evaluator could not read is a problem named here,
so the stand-in logs a Connect failure instead of failing later, mid-connection.

These rules are checked for an allow. An explicit `"isAuthenticated": false` is a deny whatever else
it lacks or carries: AWS marks no field required and says nothing of what a deny must hold, and many
authorizers answer `{"isAuthenticated": false}` alone [I] (docs/aws-iot-now.md §4). What AWS does
with a deny whose other fields break the rules is not documented [?]."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from authprobe.aws.iot_policy import document_problems

PRINCIPAL_ID = re.compile(r"[a-zA-Z0-9]{1,128}")
MAX_POLICY_DOCUMENTS = 10
MAX_POLICY_CHARS = 2048
SECONDS_RANGE = (300, 86400)


@dataclass
class AuthorizerResponse:
    is_authenticated: bool
    principal_id: str
    policy_documents: list[str]  # as IoT keeps them: JSON strings
    disconnect_after_s: int | None = None
    refresh_after_s: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems


def _seconds(payload: dict, key: str, problems: list[str]) -> int | None:
    if key not in payload:
        return None
    value = payload[key]
    if not isinstance(value, int) or isinstance(value, bool):
        problems.append(f"{key} must be an integer (got {type(value).__name__})")
        return None
    lo, hi = SECONDS_RANGE
    if not lo <= value <= hi:
        problems.append(f"{key} = {value} is outside {lo}-{hi}")
        return None
    return value


def policy_text(doc: object) -> str | None:
    """A policy document as IoT keeps it, JSON text (an object is serialised); None when it cannot be."""
    if isinstance(doc, str):
        return doc
    try:
        return json.dumps(doc)
    except (TypeError, ValueError, RecursionError):
        return None


def validate(payload: object) -> AuthorizerResponse:
    """Every rule the payload breaks, in `problems`; nothing is dropped silently."""
    problems: list[str] = []
    if not isinstance(payload, dict):
        return AuthorizerResponse(False, "", [], problems=[
            f"the response must be a JSON object (got {type(payload).__name__})"])
    auth = payload.get("isAuthenticated")
    if auth is False:
        principal = payload.get("principalId")
        return AuthorizerResponse(False, principal if isinstance(principal, str) else "", [])
    if not isinstance(auth, bool):
        problems.append("isAuthenticated is missing or not a boolean" if auth is None
                        else f"isAuthenticated must be a boolean (got {auth!r})")
    principal = payload.get("principalId")
    if not isinstance(principal, str) or not PRINCIPAL_ID.fullmatch(principal):
        problems.append(f"principalId must be 1-128 letters and digits (got {principal!r})")
    docs_in = payload.get("policyDocuments")
    docs: list[str] = []
    if not isinstance(docs_in, list):
        problems.append("policyDocuments is missing or not a list")
    else:
        if len(docs_in) > MAX_POLICY_DOCUMENTS:
            problems.append(f"policyDocuments has {len(docs_in)} documents; at most {MAX_POLICY_DOCUMENTS}")
        for i, doc in enumerate(docs_in):
            text = policy_text(doc)
            if text is None:
                problems.append(f"policy document {i + 1} cannot be written as JSON")
                continue
            if len(text) > MAX_POLICY_CHARS:
                problems.append(f"policy document {i + 1} has {len(text)} characters; at most {MAX_POLICY_CHARS}")
            problems += [f"policy document {i + 1}: {p}" for p in document_problems(doc)]
            docs.append(text)
    disconnect = _seconds(payload, "disconnectAfterInSeconds", problems)
    refresh = _seconds(payload, "refreshAfterInSeconds", problems)
    return AuthorizerResponse(auth is True, principal if isinstance(principal, str) else "", docs,
                              disconnect, refresh, problems)
