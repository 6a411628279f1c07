"""May AWS IoT invoke this function for this authorizer? The function's resource policy decides.

DG custom-auth-troubleshooting.html: the policy must allow principal `iot.amazonaws.com` the action
`lambda:InvokeFunction`; `AWS:SourceArn` (the authorizer ARN) and `AWS:SourceAccount` conditions
restrict which authorizer and account may. IAM evaluation: explicit Deny wins, else an Allow is
needed. Condition keys are case-insensitive, values case-sensitive; a negated operator on a key the
call does not carry holds (IAM reference).

Whatever JSON the policy holds, the answer is a decision, never an exception: a policy IAM would
not store is refused with the reason, and a Deny whose condition cannot be evaluated here counts
as denying (fail closed)."""

from __future__ import annotations

from dataclasses import dataclass

from authprobe.aws.iot_policy import CONDITION_OPERATORS, condition_problems, condition_texts
from authprobe.aws.iot_policy import wildcard_match as _wildcard

IOT_PRINCIPAL = "iot.amazonaws.com"


@dataclass
class PermissionDecision:
    allowed: bool
    reason: str
    statement_id: str | None = None


def _as_list(v) -> list[str]:
    if v is None:
        return []
    if isinstance(v, list):
        return [x for x in v if isinstance(x, str)]
    return [v] if isinstance(v, str) else []


def _principal_matches(principal) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        if IOT_PRINCIPAL in _as_list(principal.get("Service")):
            return True
        return "*" in _as_list(principal.get("AWS"))
    return False


_OPS = {name.lower(): fn for name, fn in CONDITION_OPERATORS.items()}


def _statement_problems(st: object, where: str) -> list[str]:
    if not isinstance(st, dict):
        return [f"{where} is not an object"]
    problems = []
    if st.get("Effect") not in ("Allow", "Deny"):
        problems.append(f"{where}: Effect must be Allow or Deny")
    for name in ("Action", "Resource"):
        value = st.get(name)
        if name in st and not (isinstance(value, str) or (
                isinstance(value, list) and value and all(isinstance(v, str) for v in value))):
            problems.append(f"{where}: {name} must be a string or a non-empty list of strings")
    if "Condition" in st:
        problems += condition_problems(st["Condition"], where)
    return problems


def policy_problems(policy: object) -> list[str]:
    """Why IAM would not store this resource policy; [] when it is readable."""
    if not isinstance(policy, dict):
        return ["the resource policy is not a JSON object"]
    statements = policy.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        return ["the resource policy has no Statement"]
    return [p for i, st in enumerate(statements) for p in _statement_problems(st, f"statement {i + 1}")]


def _conditions_hold(conditions: dict, request: dict[str, str]) -> tuple[bool | None, str]:
    """(True, "") / (False, why) / (None, why) when part of it cannot be evaluated here."""
    unknown = ""
    for op, pairs in conditions.items():
        fn = _OPS.get(op.lower())
        if fn is None:
            unknown = unknown or f"condition operator {op[:60]} not understood"
            continue
        negated = "not" in op.lower()
        for key, expected in pairs.items():
            actual = request.get(key.lower())
            if actual is None:
                if negated:  # IAM: a negated operator on an absent key holds
                    continue
                return False, f"condition key {key[:60]} has no value for IoT's call"
            values = condition_texts(expected)
            hits = [fn(v, actual) for v in values]
            if not (all(hits) if negated else any(hits)):
                return False, f"{op} {key} = {', '.join(values)[:200]} does not match {actual}"
    return (None, unknown) if unknown else (True, "")


def may_invoke(policy: dict | None, function_arn: str, authorizer_arn: str, account: str) -> PermissionDecision:
    """Decide IoT's lambda:InvokeFunction on `function_arn` on behalf of `authorizer_arn`."""
    if policy is None:
        return PermissionDecision(False, "the function has no resource policy")
    problems = policy_problems(policy)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return PermissionDecision(False, f"the resource policy is malformed: {problems[0]}{more}")
    statements = policy["Statement"]
    if isinstance(statements, dict):
        statements = [statements]
    request = {"aws:sourcearn": authorizer_arn, "aws:sourceaccount": account}
    allow: PermissionDecision | None = None
    misses: list[str] = []
    for st in statements:
        sid = st.get("Sid") if isinstance(st.get("Sid"), str) else None
        if not _principal_matches(st.get("Principal")):
            misses.append(f"{sid or 'statement'}: principal is not {IOT_PRINCIPAL}")
            continue
        actions = _as_list(st.get("Action"))
        if not any(_wildcard(a, "lambda:InvokeFunction", case_sensitive=False) for a in actions):
            misses.append(f"{sid or 'statement'}: action is not lambda:InvokeFunction")
            continue
        resources = _as_list(st.get("Resource", function_arn))
        if not any(_wildcard(r, function_arn) or _wildcard(r, function_arn + ":*") for r in resources):
            misses.append(f"{sid or 'statement'}: resource is not {function_arn}")
            continue
        ok, why = _conditions_hold(st.get("Condition") or {}, request)
        if st.get("Effect") == "Deny" and ok is not False:
            if ok is None:
                return PermissionDecision(False, f"denied by {sid or 'a statement'}: {why}, so the Deny is "
                                          "treated as applying (fail closed)", sid)
            return PermissionDecision(False, f"explicitly denied by {sid or 'a statement'}", sid)
        if not ok:
            misses.append(f"{sid or 'statement'}: {why}")
            continue
        if st.get("Effect") == "Allow" and allow is None:
            scoped = any(k.lower() == "aws:sourcearn" for pairs in (st.get("Condition") or {}).values()
                         for k in pairs)
            allow = PermissionDecision(True, f"allowed by {sid or 'a statement'}" + (
                "" if scoped else " (no SourceArn condition: any authorizer may)"), sid)
    if allow is not None:
        return allow
    return PermissionDecision(False, "no statement allows iot.amazonaws.com to invoke it"
                              + (f" ({'; '.join(misses)})" if misses else ""))
