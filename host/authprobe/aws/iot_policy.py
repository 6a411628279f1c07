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
- Condition key names are case-insensitive; a key absent from the request makes a condition false,
  except for negated operators (StringNotLike...), where it is true, and ...IfExists / Null, which
  test presence (IAM reference_policies_elements_condition.html, ..._condition_operators.html).

Only the conditions IoT documents for these checks are understood (String*, Bool, Null, ArnLike,
ArnEquals against `iot:ClientId`, `iot:Connection.Thing.*` and `aws:SourceIp`). A condition this
module cannot evaluate fails closed, and the Decision says so: an Allow carrying it does not apply,
a Deny carrying it does.

Wildcards are matched by authprobe.aws.wildcard in time linear in the topic (never a backtracking regex),
and every document is type-checked first (document_problems), so no policy a Lambda returns can make
evaluation raise or stall.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from authprobe.aws import wildcard

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
_ATTRIBUTE = re.compile(r"iot:Connection\.Thing\.Attributes\[([^\]]+)\]", re.IGNORECASE)
# Condition keys this module knows, by their lower-cased name (IAM: key names are case-insensitive).
_CONDITION_KEYS = {name.lower(): name for name in (
    "iot:ClientId", "iot:Connection.Thing.ThingName", "iot:Connection.Thing.ThingTypeName",
    "iot:Connection.Thing.IsAttached", "aws:SourceIp")}


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

    def knows_condition_key(self, key: str) -> bool:
        """Whether this module can tell the key's value (or that it is absent) for a connection."""
        return key.lower() in _CONDITION_KEYS or _ATTRIBUTE.fullmatch(key) is not None

    def condition_value(self, key: str) -> str | None:
        """A condition key's value, the key named in any letter case; None when absent."""
        canonical = _CONDITION_KEYS.get(key.lower())
        if canonical is not None:
            return self.variable(canonical)
        m = _ATTRIBUTE.fullmatch(key)
        return self.thing_attributes.get(m.group(1)) if m else None


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
    # A Deny applied although its condition could not be evaluated here (fail closed).
    assumed_deny: bool = False

    @property
    def explicit_deny(self) -> bool:
        return self.effect == "Deny"

    def explain(self) -> str:
        where = ""
        if self.document_index is not None:
            where = f" (policy document {self.document_index + 1}, statement {self.statement_index + 1})"
        if self.effect == "Allow":
            return f"{self.action} on {self.resource} allowed{where}"
        if self.effect == "Deny" and self.assumed_deny:
            return (f"{self.action} on {self.resource} denied{where}: a Deny whose condition authprobe "
                    "cannot evaluate is treated as applying (fail closed)")
        if self.effect == "Deny":
            return f"{self.action} on {self.resource} explicitly denied{where}"
        return f"{self.action} on {self.resource} not allowed by any statement (implicit deny)"


def resource_arn(action: str, name: str, context: Context) -> str:
    """The ARN IoT checks for an action: client/<id>, topic/<topic> or topicfilter/<filter>."""
    kind = _RESOURCE_KIND.get(action.lower())
    if kind is None:
        raise ValueError(f"unknown IoT action {action!r}; expected one of {', '.join(ACTIONS)}")
    return f"arn:aws:iot:{context.region}:{context.account}:{kind}/{name}"


_VERSIONS = ("2012-10-17", "2008-10-17")  # the IAM policy language versions
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
               float: "a number", type(None): "null"}
# Negated operators: a value list is a NOR, and a key absent from the request makes them true (IAM).
_NEGATED = {"StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike", "ArnNotEquals", "ArnNotLike"}
_LIKE = {"StringLike", "StringNotLike", "ArnLike", "ArnNotLike"}


def _json_type(value: object) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _short(text: object, limit: int = 60) -> str:
    """A name quoted from a document, cut so a hostile document cannot flood a log line."""
    text = str(text)
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _strings_problem(value: object, where: str) -> str | None:
    if isinstance(value, str) or (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
        return None
    return f"{where} must be a string or a non-empty list of strings (got {_json_type(value)})"


def condition_problems(condition: object, where: str) -> list[str]:
    """IAM: Condition is {operator: {key: value or [values]}}; values are strings, numbers or booleans."""
    if not isinstance(condition, dict):
        return [f"{where}: Condition must be an object of operators (got {_json_type(condition)})"]
    problems = []
    for op, pairs in condition.items():
        if not isinstance(pairs, dict):
            problems.append(f"{where}: condition {_short(op)} must be an object of keys and values "
                            f"(got {_json_type(pairs)})")
            continue
        for key, value in pairs.items():
            values = value if isinstance(value, list) else [value]
            bad = [v for v in values if not isinstance(v, (str, int, float))]  # bool is an int
            if bad:
                problems.append(f"{where}: condition {_short(op)} {_short(key)} must be a string, number or "
                                f"boolean, or a list of them (got {_json_type(bad[0])})")
    return problems


def _read(doc: object) -> tuple[dict | None, list[str]]:
    """(the document with Statement as a list, []) or (None, every reason IoT would refuse it)."""
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except RecursionError:
            return None, ["policy document is not JSON: nested too deeply"]
        except ValueError as exc:
            return None, [f"policy document is not JSON: {exc}"]
    if not isinstance(doc, dict):
        return None, ["policy document must be a JSON object"]
    problems: list[str] = []
    if "Version" in doc and doc["Version"] not in _VERSIONS:
        problems.append(f"Version must be {' or '.join(_VERSIONS)} (got {_short(doc['Version'])})")
    statements = doc.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        return None, [*problems, "policy document has no Statement"]
    for i, st in enumerate(statements):
        where = f"statement {i + 1}"
        if not isinstance(st, dict):
            problems.append(f"{where} is not an object")
            continue
        if st.get("Effect") not in ("Allow", "Deny"):
            problems.append(f"{where}: Effect must be Allow or Deny")
        for name, negated in (("Action", "NotAction"), ("Resource", "NotResource")):
            present = [k for k in (name, negated) if k in st]
            if not present:
                problems.append(f"{where}: no {name}")
            elif len(present) == 2:
                problems.append(f"{where}: {name} and {negated} together; a statement has one of them")
            elif (problem := _strings_problem(st[present[0]], f"{where}: {present[0]}")) is not None:
                problems.append(problem)
        if "Condition" in st:
            problems += condition_problems(st["Condition"], where)
    if problems:
        return None, problems
    return {**doc, "Statement": statements}, []


def document_problems(doc: object) -> list[str]:
    """Every reason IoT would refuse this policy document (JSON text or an object); [] when none.
    A document without problems is one evaluate() reads completely."""
    return _read(doc)[1]


def parse_document(doc: str | dict) -> dict:
    """One policy document as a dict; raises PolicyError when IoT would reject it."""
    parsed, problems = _read(doc)
    if parsed is None:
        raise PolicyError("; ".join(problems))
    return parsed


def _strings(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def condition_texts(value: object) -> list[str]:
    """A condition's value(s) as IAM compares them: numbers and booleans by their JSON text."""
    values = value if isinstance(value, list) else [value]
    return [v if isinstance(v, str) else json.dumps(v) for v in values]


def wildcard_match(pattern: str, value: str, case_sensitive: bool = True) -> bool:
    """IAM-style match: `*` any run of characters, `?` exactly one, everything else literal."""
    return wildcard.match(pattern, value, case_sensitive)


def _resolve(pattern: str, context: Context, versioned: bool) -> tuple[wildcard.Token, ...] | None:
    """Pattern tokens with policy variables spliced in as literal text; None when a variable has no
    value (no match). A value's own `*` and `?` (or any other character) never act as wildcards."""
    if not versioned or "${" not in pattern:
        return wildcard.tokens(pattern)
    out: list[wildcard.Token] = []
    pos = 0
    for m in _VARIABLE.finditer(pattern):
        value = context.variable(m.group(1))
        if value is None:
            return None
        out += wildcard.tokens(pattern[pos:m.start()])
        out += wildcard.literal(value)
        pos = m.end()
    out += wildcard.tokens(pattern[pos:])
    return tuple(out)


def _substitute(text: str, context: Context, versioned: bool) -> str | None:
    """Text with policy variables replaced (for the operators without wildcards); None when one has
    no value."""
    if not versioned or "${" not in text:
        return text
    parts: list[str] = []
    pos = 0
    for m in _VARIABLE.finditer(text):
        value = context.variable(m.group(1))
        if value is None:
            return None
        parts += [text[pos:m.start()], value]
        pos = m.end()
    parts.append(text[pos:])
    return "".join(parts)


def _matches(pattern: str, value: str, context: Context, versioned: bool, case_sensitive: bool) -> bool:
    if not versioned or "${" not in pattern:
        return wildcard.match(pattern, value, case_sensitive)
    resolved = _resolve(pattern, context, versioned)
    return resolved is not None and wildcard.match_tokens(resolved, value, case_sensitive)


CONDITION_OPERATORS = {  # IAM condition operators (also the stand-in's Lambda permission check)
    "StringEquals": lambda p, v: p == v,
    "StringNotEquals": lambda p, v: p != v,
    "StringEqualsIgnoreCase": lambda p, v: p.lower() == v.lower(),
    "StringNotEqualsIgnoreCase": lambda p, v: p.lower() != v.lower(),
    "StringLike": lambda p, v: wildcard.match(p, v),
    "StringNotLike": lambda p, v: not wildcard.match(p, v),
    "ArnEquals": lambda p, v: p == v,
    "ArnLike": lambda p, v: wildcard.match(p, v),
    "ArnNotEquals": lambda p, v: p != v,
    "ArnNotLike": lambda p, v: not wildcard.match(p, v),
    "Bool": lambda p, v: p.lower() == v.lower(),
}


def _condition_value_holds(op: str, texts: list[str], actual: str, context: Context, versioned: bool) -> bool:
    """One key's test: any value matches (all, for a negated operator: IAM's NOR)."""
    hits = []
    for text in texts:
        if op in _LIKE:
            tokens = _resolve(text, context, versioned)
            if tokens is None:
                continue
            hit = wildcard.match_tokens(tokens, actual)
            hits.append(not hit if op in _NEGATED else hit)
        else:
            expected = _substitute(text, context, versioned)
            if expected is not None:
                hits.append(CONDITION_OPERATORS[op](expected, actual))
    return all(hits) if op in _NEGATED else any(hits)


def _conditions_hold(conditions: dict, context: Context, versioned: bool, notes: list[str]) -> bool | None:
    """True or False; None when some part cannot be evaluated here and nothing evaluated is false."""
    unknown = False
    for op, pairs in conditions.items():
        if_exists = op.endswith("IfExists")
        base_op = op[: -len("IfExists")] if if_exists else op
        if base_op != "Null" and base_op not in CONDITION_OPERATORS:
            notes.append(f"condition operator {_short(op)} is not evaluated here")
            unknown = True
            continue
        for key, expected in pairs.items():
            if not context.knows_condition_key(key):
                notes.append(f"condition key {_short(key)} is not evaluated here")
                unknown = True
                continue
            actual = context.condition_value(key)
            texts = condition_texts(expected)
            if base_op == "Null":  # "true": the key must be absent; "false": present
                if not any((actual is None) == (t.lower() == "true") for t in texts):
                    return False
                continue
            if actual is None:
                if if_exists or base_op in _NEGATED:
                    continue
                return False
            if not _condition_value_holds(base_op, texts, actual, context, versioned):
                return False
    return None if unknown else True


def _statement_applies(st: dict, action: str, resource: str, context: Context, versioned: bool,
                       notes: list[str]) -> bool | None:
    """Whether a (valid) statement applies; None when its condition cannot be evaluated here."""
    if "Action" in st:
        if not any(wildcard.match(a, action, case_sensitive=False) for a in _strings(st["Action"])):
            return False
    elif any(wildcard.match(a, action, case_sensitive=False) for a in _strings(st["NotAction"])):
        return False
    if "Resource" in st:
        if not any(_matches(r, resource, context, versioned, True) for r in _strings(st["Resource"])):
            return False
    elif any(_matches(r, resource, context, versioned, True) for r in _strings(st["NotResource"])):
        return False
    if "Condition" in st:
        return _conditions_hold(st["Condition"], context, versioned, notes)
    return True


def evaluate(policy_documents: list[str | dict], action: str, resource: str,
             context: Context | None = None) -> Decision:
    """Decide `action` on `resource` (a full ARN, see resource_arn) under the given documents.

    Documents IoT would reject are skipped and noted (IoT refuses such an authorizer response
    earlier, at validation). Explicit Deny wins over any Allow. A condition this module cannot
    evaluate fails closed: its Deny applies, its Allow does not."""
    context = context or Context()
    notes: list[str] = []
    allow: Decision | None = None
    for di, raw in enumerate(policy_documents):
        doc, problems = _read(raw)
        if doc is None:
            notes.append(f"policy document {di + 1} ignored: {'; '.join(problems)}")
            continue
        versioned = doc.get("Version") == "2012-10-17"
        for si, st in enumerate(doc["Statement"]):
            applies = _statement_applies(st, action, resource, context, versioned, notes)
            if applies is False:
                continue
            where = f"policy document {di + 1}, statement {si + 1}"
            if st["Effect"] == "Deny":
                if applies is None:
                    notes.append(f"{where}: a Deny whose condition cannot be evaluated here is treated as "
                                 "applying (fail closed)")
                return Decision(False, "Deny", action, resource, di, si, st, notes, assumed_deny=applies is None)
            if applies is None:
                notes.append(f"{where}: an Allow whose condition cannot be evaluated here does not apply "
                             "(fail closed)")
                continue
            if allow is None:
                allow = Decision(True, "Allow", action, resource, di, si, st, notes)
    if allow is not None:
        return allow
    return Decision(False, "ImplicitDeny", action, resource, notes=notes)


def is_allowed(policy_documents: list[str | dict], action: str, name: str, context: Context) -> Decision:
    """evaluate() for an action on a client id, topic or topic filter named plainly."""
    return evaluate(policy_documents, action, resource_arn(action, name, context), context)


__all__ = ["ACTIONS", "Context", "Decision", "PolicyError", "document_problems", "evaluate", "is_allowed",
           "parse_document", "resource_arn", "wildcard_match"]
