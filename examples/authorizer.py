"""Example AWS IoT Core custom authorizer (Python Lambda handler), for `authprobe emulate` and for
a real account alike.

It accepts a device whose token is in ALLOWED_TOKENS and returns a policy that lets the device
connect with its own client id and publish, subscribe and receive on `selftest/<clientId>` (and
below it) -- what the authprobe self-test needs. The event and response follow
https://docs.aws.amazon.com/iot/latest/developerguide/custom-auth-lambda.html

Never log the token or the password: log their lengths if you must."""

import base64
import re

# EXAMPLE ONLY: a real authorizer looks tokens up (or verifies a JWT); never ship a constant.
ALLOWED_TOKENS = {"selftest-EXAMPLE-token"}


def _policy(region, account):
    arn = f"arn:aws:iot:{region}:{account}"
    # ${iot:ClientId} is resolved by IoT at evaluation time (policy version 2012-10-17).
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn}:client/${{iot:ClientId}}"},
            {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
             "Resource": [f"{arn}:topic/selftest/${{iot:ClientId}}", f"{arn}:topic/selftest/${{iot:ClientId}}/*"]},
            {"Effect": "Allow", "Action": "iot:Subscribe",
             "Resource": [f"{arn}:topicfilter/selftest/${{iot:ClientId}}",
                          f"{arn}:topicfilter/selftest/${{iot:ClientId}}/*"]},
        ],
    }


def lambda_handler(event, context):
    token = event.get("token")
    mqtt = event.get("protocolData", {}).get("mqtt", {})
    client_id = mqtt.get("clientId", "")
    # The password arrives base64-encoded; decode it if your scheme uses it.
    password = base64.b64decode(mqtt["password"]) if "password" in mqtt else b""
    print(f"authorizing clientId={client_id!r} signatureVerified={event.get('signatureVerified')} "
          f"token_len={len(token or '')} password_len={len(password)}")
    # principalId: 1-128 letters and digits only.
    principal = re.sub(r"[^A-Za-z0-9]", "", client_id)[:128] or "unknown"
    _, _, _, region, account, _ = context.invoked_function_arn.split(":", 5)
    if token not in ALLOWED_TOKENS:
        return {"isAuthenticated": False, "principalId": principal, "policyDocuments": [],
                "disconnectAfterInSeconds": 3600, "refreshAfterInSeconds": 300}
    return {
        "isAuthenticated": True,
        "principalId": principal,
        "disconnectAfterInSeconds": 86400,
        "refreshAfterInSeconds": 3600,
        "policyDocuments": [_policy(region, account)],
    }
