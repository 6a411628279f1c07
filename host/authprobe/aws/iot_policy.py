"""AWS IoT Core policy evaluation, as the message broker applies the policies a custom authorizer
returns (shared by the local stand-in and `cloud-check`).

What IoT documents and this module follows (DG = AWS IoT developer guide):
- Actions `iot:Connect` on `client/<clientId>`, `iot:Publish` and `iot:Receive` on `topic/<topic>`,
  `iot:Subscribe` on `topicfilter/<filter>` (DG iot-action-resources.html, sample policies).
- An explicit Deny in any statement of any document wins; otherwise an Allow is needed; nothing
  matching is an implicit deny (DG iot-policies.html, IAM evaluation logic).
- `*` and `?` are wildcards in Action and Resource; MQTT's `+` and `#` are plain characters in a
  policy (DG pub-sub-policy.html: "MQTT wildcard characters ... are treated as literal strings").
- Policy variables `${iot:ClientId}`, `${iot:Connection.Thing.ThingName}`, `${iot:Connection.Thing.
  ThingTypeName}`, `${iot:Connection.Thing.IsAttached}`, `${iot:Connection.Thing.Attributes[name]}`
  and the escapes `${*}`, `${?}`, `${$}` are substituted only in documents with Version
  "2012-10-17"; a statement naming a variable that has no value in this connection does not match
  (DG basic-policy-variables.html, thing-policy-variables.html).
- Action names are case-insensitive, resources case-sensitive (IAM reference).

Only the conditions IoT documents for these checks are understood (String*, Bool, Null, ArnLike,
ArnEquals against `iot:ClientId`, `iot:Connection.Thing.*` and `aws:SourceIp`); a condition this
module cannot evaluate makes its statement not match, and the Decision says so.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

ACTIONS = ("iot:Connect", "iot:Publish", "iot:Receive", "iot:Subscribe", "iot:RetainPublish")
_RESOURCE_KIND = {
    "iot:connect": "client",
    "iot:publish": "topic",
    "iot:retainpublish": "topic",
    "iot:receive": "topic",
    "iot:subscribe": "topicfilter",
}
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_ESCAPES = {"*": "*", "?": "?", "$": "$"}


class PolicyError(ValueError):
    """A policy document that IoT would not accept (not JSON, no Statement, bad Effect...)."""


@dataclass
class Context:
    """What the broker knows about the connection when it evaluates a policy."""

    client_id: str | None = None
    account: str = "111111111111"
    region: str = "us-east-1"
    thing_name: str | None = None
    thing_type_name: str | None = None
    thing_attributes: dict[str, str] = field(default_factory=dict)
    is_attached: bool | None = None
    source_ip: str | None = None

    def variable(self, name: str) -> str | None:
        if name in _ESCAPES:
            return _ESCAPES[name]
        if name == "iot:ClientId":
            return self.client_id
        if name == "iot:Connection.Thing.ThingName":
            return self.thing_name
        if name == "iot:Connection.Thing.ThingTypeName":
            return self.thing_type_name
        if name == "iot:Connection.Thing.IsAttached":
            return None if self.is_attached is None else ("true" if self.is_attached else "false")
        m = re.fullmatch(r"iot:Connection\.Thing\.Attributes\[([^\]]+)\]", name)
        if m:
            return self.thing_attributes.get(m.group(1))
        if name.lower() == "aws:sourceip":
            return self.source_ip
        return None


@dataclass
class Decision:
    allowed: bool
    effect: str  # "Allow", "Deny" (explicit) or "ImplicitDeny"
    action: str
    resource: str
    document_index: int | None = None
    statement_index: int | None = None
    statement: dict | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def explicit_deny(self) -> bool:
        return self.effect == "Deny"

    def explain(self) -> str:
        where = ""
        if self.document_index is not None:
            where = f" (policy document {self.document_index + 1}, statement {self.statement_index + 1})"
        if self.effect == "Allow":
            return f"{self.action} on {self.resource} allowed{where}"
        if self.effect == "Deny":
            return f"{self.action} on {self.resource} explicitly denied{where}"
        return f"{self.action} on {self.resource} not allowed by any statement (implicit deny)"


def resource_arn(action: str, name: str, context: Context) -> str:
    """The ARN IoT checks for an action: client/<id>, topic/<topic> or topicfilter/<filter>."""
    kind = _RESOURCE_KIND.get(action.lower())
    if kind is None:
        raise ValueError(f"unknown IoT action {action!r}; expected one of {', '.join(ACTIONS)}")
    return f"arn:aws:iot:{context.region}:{context.account}:{kind}/{name}"


def parse_document(doc: str | dict) -> dict:
    """One policy document as a dict; raises PolicyError when IoT would reject it."""
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except ValueError as exc:
            raise PolicyError(f"policy document is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise PolicyError("policy document must be a JSON object")
    statements = doc.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        raise PolicyError("policy document has no Statement")
    for i, st in enumerate(statements):
        if not isinstance(st, dict):
            raise PolicyError(f"statement {i + 1} is not an object")
        if st.get("Effect") not in ("Allow", "Deny"):
            raise PolicyError(f"statement {i + 1}: Effect must be Allow or Deny")
        if "Action" not in st and "NotAction" not in st:
            raise PolicyError(f"statement {i + 1}: no Action")
        if "Resource" not in st and "NotResource" not in st:
            raise PolicyError(f"statement {i + 1}: no Resource")
    return {**doc, "Statement": statements}


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _wildcard(pattern: str, value: str, case_sensitive: bool = True) -> bool:
    # fnmatch would also treat [...] as a class; IAM only knows * and ?.
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = 0 if case_sensitive else re.IGNORECASE
    return re.fullmatch(regex, value, flags | re.DOTALL) is not None


def wildcard_match(pattern: str, value: str, case_sensitive: bool = True) -> bool:
    """IAM-style match: `*` any run of characters, `?` exactly one, everything else literal."""
    return _wildcard(pattern, value, case_sensitive)


def _substitute(pattern: str, context: Context, versioned: bool) -> str | None:
    """Pattern with policy variables resolved; None when a variable has no value (no match)."""
    if not versioned or "${" not in pattern:
        return pattern
    missing = False

    def repl(m: re.Match) -> str:
        nonlocal missing
        value = context.variable(m.group(1))
        if value is None:
            missing = True
            return ""
        # A substituted value is literal: its own * and ? must not act as wildcards.
        return value.replace("*", "\x00").replace("?", "\x01")

    out = _VARIABLE.sub(repl, pattern)
    return None if missing else out


def _matches(pattern: str, value: str, context: Context, versioned: bool, case_sensitive: bool) -> bool:
    resolved = _substitute(pattern, context, versioned)
    if resolved is None:
        return False
    if "\x00" in resolved or "\x01" in resolved:
        parts = re.split("([\x00\x01*?])", resolved)
        regex = "".join(
            r"\*" if p == "\x00" else r"\?" if p == "\x01" else ".*" if p == "*" else "." if p == "?"
            else re.escape(p) for p in parts)
        return re.fullmatch(regex, value, 0 if case_sensitive else re.IGNORECASE) is not None
    return _wildcard(resolved, value, case_sensitive)


CONDITION_OPERATORS = {  # IAM condition operators (also the stand-in's Lambda permission check)
    "StringEquals": lambda p, v: p == v,
    "StringNotEquals": lambda p, v: p != v,
    "StringEqualsIgnoreCase": lambda p, v: p.lower() == v.lower(),
    "StringNotEqualsIgnoreCase": lambda p, v: p.lower() != v.lower(),
    "StringLike": lambda p, v: _wildcard(p, v),
    "StringNotLike": lambda p, v: not _wildcard(p, v),
    "ArnEquals": lambda p, v: p == v,
    "ArnLike": lambda p, v: _wildcard(p, v),
    "ArnNotEquals": lambda p, v: p != v,
    "ArnNotLike": lambda p, v: not _wildcard(p, v),
    "Bool": lambda p, v: p.lower() == v.lower(),
}


def _conditions_hold(conditions: dict, context: Context, versioned: bool, notes: list[str]) -> bool:
    for op, pairs in conditions.items():
        if not isinstance(pairs, dict):
            notes.append(f"condition {op} is not an object")
            return False
        if_exists = op.endswith("IfExists")
        base_op = op[: -len("IfExists")] if if_exists else op
        for key, expected in pairs.items():
            actual = context.variable(key)
            if base_op == "Null":
                want_null = str(expected).lower() == "true"
                if (actual is None) != want_null:
                    return False
                continue
            fn = CONDITION_OPERATORS.get(base_op)
            if fn is None:
                notes.append(f"condition operator {op} is not evaluated here")
                return False
            if actual is None:
                if if_exists:
                    continue
                return False
            values = [_substitute(p, context, versioned) for p in _as_list(expected)]
            values = [v for v in values if v is not None]
            negated = base_op.startswith(("StringNot", "ArnNot"))
            hits = [fn(v, actual) for v in values]
            if not (all(hits) if negated else any(hits)):
                return False
    return True


def _statement_matches(st: dict, action: str, resource: str, context: Context, versioned: bool,
                       notes: list[str]) -> bool:
    if "Action" in st:
        if not any(_wildcard(a, action, case_sensitive=False) for a in _as_list(st["Action"])):
            return False
    elif any(_wildcard(a, action, case_sensitive=False) for a in _as_list(st["NotAction"])):
        return False
    if "Resource" in st:
        if not any(_matches(r, resource, context, versioned, True) for r in _as_list(st["Resource"])):
            return False
    elif any(_matches(r, resource, context, versioned, True) for r in _as_list(st["NotResource"])):
        return False
    condition = st.get("Condition")
    if condition:
        return _conditions_hold(condition, context, versioned, notes)
    return True


def evaluate(policy_documents: list[str | dict], action: str, resource: str,
             context: Context | None = None) -> Decision:
    """Decide `action` on `resource` (a full ARN, see resource_arn) under the given documents.

    Documents IoT would reject are skipped and noted (IoT refuses such an authorizer response
    earlier, at validation). Explicit Deny wins over any Allow."""
    context = context or Context()
    notes: list[str] = []
    allow: Decision | None = None
    for di, raw in enumerate(policy_documents):
        try:
            doc = parse_document(raw)
        except PolicyError as exc:
            notes.append(f"policy document {di + 1} ignored: {exc}")
            continue
        versioned = doc.get("Version") == "2012-10-17"
        for si, st in enumerate(doc["Statement"]):
            if not _statement_matches(st, action, resource, context, versioned, notes):
                continue
            if st["Effect"] == "Deny":
                return Decision(False, "Deny", action, resource, di, si, st, notes)
            if allow is None:
                allow = Decision(True, "Allow", action, resource, di, si, st, notes)
    if allow is not None:
        return allow
    return Decision(False, "ImplicitDeny", action, resource, notes=notes)


def is_allowed(policy_documents: list[str | dict], action: str, name: str, context: Context) -> Decision:
    """evaluate() for an action on a client id, topic or topic filter named plainly."""
    return evaluate(policy_documents, action, resource_arn(action, name, context), context)


__all__ = ["ACTIONS", "Context", "Decision", "PolicyError", "evaluate", "is_allowed", "parse_document",
           "resource_arn", "wildcard_match"]
