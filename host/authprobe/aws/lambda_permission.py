"""May AWS IoT invoke this function for this authorizer? The function's resource policy decides.

DG custom-auth-troubleshooting.html: the policy must allow principal `iot.amazonaws.com` the action
`lambda:InvokeFunction`; `AWS:SourceArn` (the authorizer ARN) and `AWS:SourceAccount` conditions
restrict which authorizer and account may. IAM evaluation: explicit Deny wins, else an Allow is
needed. Condition keys are case-insensitive, values case-sensitive (IAM reference)."""

from __future__ import annotations

from dataclasses import dataclass

from authprobe.aws.iot_policy import CONDITION_OPERATORS
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
    return [v] if isinstance(v, str) else [str(x) for x in v]


def _principal_matches(principal) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        if IOT_PRINCIPAL in _as_list(principal.get("Service")):
            return True
        return "*" in _as_list(principal.get("AWS"))
    return False


_OPS = {name.lower(): fn for name, fn in CONDITION_OPERATORS.items()}


def _conditions_hold(conditions: dict, request: dict[str, str]) -> tuple[bool, str]:
    for op, pairs in conditions.items():
        fn = _OPS.get(op.lower())
        if fn is None or not isinstance(pairs, dict):
            return False, f"condition operator {op} not understood"
        for key, expected in pairs.items():
            actual = request.get(key.lower())
            if actual is None:
                return False, f"condition key {key} has no value for IoT's call"
            values = _as_list(expected)
            hits = [fn(v, actual) for v in values]
            negated = "not" in op.lower()
            if not (all(hits) if negated else any(hits)):
                return False, f"{op} {key} = {', '.join(values)} does not match {actual}"
    return True, ""


def may_invoke(policy: dict | None, function_arn: str, authorizer_arn: str, account: str) -> PermissionDecision:
    """Decide IoT's lambda:InvokeFunction on `function_arn` on behalf of `authorizer_arn`."""
    if policy is None:
        return PermissionDecision(False, "the function has no resource policy")
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    request = {"aws:sourcearn": authorizer_arn, "aws:sourceaccount": account}
    allow: PermissionDecision | None = None
    misses: list[str] = []
    for st in statements:
        if not isinstance(st, dict):
            continue
        sid = st.get("Sid")
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
        if not ok:
            misses.append(f"{sid or 'statement'}: {why}")
            continue
        if st.get("Effect") == "Deny":
            return PermissionDecision(False, f"explicitly denied by {sid or 'a statement'}", sid)
        if st.get("Effect") == "Allow" and allow is None:
            scoped = any(k.lower() == "aws:sourcearn" for pairs in (st.get("Condition") or {}).values()
                         for k in pairs)
            allow = PermissionDecision(True, f"allowed by {sid or 'a statement'}" + (
                "" if scoped else " (no SourceArn condition: any authorizer may)"), sid)
    if allow is not None:
        return allow
    return PermissionDecision(False, "no statement allows iot.amazonaws.com to invoke it"
                              + (f" ({'; '.join(misses)})" if misses else ""))
