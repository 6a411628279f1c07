"""Authorizer handlers for `authprobe drill`: each one is the example authorizer (../authorizer.py)
with exactly one realistic mistake, so the drill can check that the mistake is diagnosed as its
root cause. They accept the same token and return the same policy shape as the example; only the
named fault differs. Never log the token or the password."""

import logging
import time

ALLOWED_TOKENS = {"selftest-EXAMPLE-token"}


def _arn(context):
    _, _, _, region, account, _ = context.invoked_function_arn.split(":", 5)
    return f"arn:aws:iot:{region}:{account}"


def _policy(context, without=()):
    arn = _arn(context)
    topics = [f"{arn}:topic/selftest/${{iot:ClientId}}", f"{arn}:topic/selftest/${{iot:ClientId}}/*"]
    filters = [f"{arn}:topicfilter/selftest/${{iot:ClientId}}", f"{arn}:topicfilter/selftest/${{iot:ClientId}}/*"]
    statements = []
    if "iot:Connect" not in without:
        statements.append({"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn}:client/${{iot:ClientId}}"})
    actions = [a for a in ("iot:Publish", "iot:Receive") if a not in without]
    if actions:
        statements.append({"Effect": "Allow", "Action": actions, "Resource": topics})
    if "iot:Subscribe" not in without:
        statements.append({"Effect": "Allow", "Action": "iot:Subscribe", "Resource": filters})
    return {"Version": "2012-10-17", "Statement": statements}


def _answer(event, context, without=()):
    client_id = event.get("protocolData", {}).get("mqtt", {}).get("clientId", "")
    principal = "".join(ch for ch in client_id if ch.isalnum())[:128] or "unknown"
    print(f"authorizing clientId={client_id!r} token_len={len(event.get('token') or '')}")
    if event.get("token") not in ALLOWED_TOKENS:
        return {"isAuthenticated": False, "principalId": principal, "policyDocuments": [],
                "disconnectAfterInSeconds": 3600, "refreshAfterInSeconds": 300}
    return {"isAuthenticated": True, "principalId": principal, "disconnectAfterInSeconds": 86400,
            "refreshAfterInSeconds": 3600, "policyDocuments": [_policy(context, without)]}


def healthy(event, context):
    return _answer(event, context)


# Devices provisioned so far; the drill's client ids are not in it.
DEVICE_GROUPS = {"sensor-0042": "factory"}


def raises(event, context):
    """lambda-error: looks the client id up without a default (KeyError for any new device)."""
    client_id = event.get("protocolData", {}).get("mqtt", {}).get("clientId", "")
    print(f"device group {DEVICE_GROUPS[client_id]}")
    return _answer(event, context)


def slow(event, context):
    """lambda-timeout: a lookup that takes longer than the function's timeout."""
    time.sleep(30)
    return _answer(event, context)


def bad_principal(event, context):
    """lambda-response-invalid: principalId with characters AWS IoT refuses (only letters and digits)."""
    answer = _answer(event, context)
    answer["principalId"] = "device:" + answer["principalId"]
    return answer


def no_connect(event, context):
    """policy-denies-connect: the returned policy forgets iot:Connect."""
    return _answer(event, context, without=("iot:Connect",))


def no_publish(event, context):
    """policy-denies-publish: the returned policy forgets iot:Publish."""
    return _answer(event, context, without=("iot:Publish",))


def no_subscribe(event, context):
    """policy-denies-subscribe: the returned policy forgets iot:Subscribe."""
    return _answer(event, context, without=("iot:Subscribe",))


def no_receive(event, context):
    """policy-denies-receive: the returned policy forgets iot:Receive."""
    return _answer(event, context, without=("iot:Receive",))


def too_many_policies(event, context):
    """lambda-response-invalid: one policy document per topic, 11 of them (AWS allows at most 10)."""
    answer = _answer(event, context)
    answer["policyDocuments"] = answer["policyDocuments"] * 11
    return answer


def short_refresh(event, context):
    """lambda-response-invalid: refreshAfterInSeconds = 60 (AWS accepts 300-86,400)."""
    answer = _answer(event, context)
    answer["refreshAfterInSeconds"] = 60
    return answer


def deny_publish(event, context):
    """policy-denies-publish: an explicit Deny on publishing next to the usual Allow (Deny wins)."""
    answer = _answer(event, context)
    if answer["isAuthenticated"]:
        answer["policyDocuments"][0]["Statement"].append(
            {"Effect": "Deny", "Action": "iot:Publish", "Resource": f"{_arn(context)}:topic/selftest/*"})
    return answer


def returns_nothing(event, context):
    """lambda-response-invalid: a code path that forgets to return the answer (the response is null)."""
    _answer(event, context)


def bare_deny(event, context):
    """authorizer-denied, said the short way: {"isAuthenticated": false} alone, without principalId or
    policyDocuments, for a token it does not accept."""
    if event.get("token") not in ALLOWED_TOKENS:
        return {"isAuthenticated": False}
    return _answer(event, context)


def slow_logged(event, context):
    """lambda-timeout, logged through the logging module (JSON lines when the function's log format is
    JSON): notes the client id, then a lookup that takes longer than the function's timeout."""
    client_id = event.get("protocolData", {}).get("mqtt", {}).get("clientId", "")
    logging.getLogger().info("authorizing clientId=%s", client_id)
    time.sleep(30)
    return _answer(event, context)


def slower_than_iot(event, context):
    """lambda-timeout without a timeout: the function's own timeout is 10 s, so an 8 s lookup finishes
    and answers, but AWS IoT stopped waiting at 5 s. No "Task timed out" line, no Lambda error: only
    the duration tells."""
    client_id = event.get("protocolData", {}).get("mqtt", {}).get("clientId", "")
    print(f"authorizing clientId={client_id!r}")
    time.sleep(8)
    return _answer(event, context)
