"""The root-cause vocabulary (shared/reference/root-causes.md): ids are a contract with scripts and
factory tooling, so they are never renamed. The host adds the words a person needs: what it means,
which item of the seed checklist it is, and what to do."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RootCause:
    id: str
    layer: str  # "lambda", "tls", "application", "environment"
    title: str
    seed: str  # the checklist item (troubleshooting-your-authorizers) or "beyond seed"
    remediation: str


_ROWS = (
    ("authorizer-function-missing", "lambda", "The authorizer points at a Lambda function that does not exist",
     "Check your authorizer's Lambda: verify which Lambda function is associated with your authorizer",
     "Run `aws iot describe-authorizer --authorizer-name NAME`, then create the function it names or "
     "`aws iot update-authorizer --authorizer-name NAME --authorizer-function-arn ARN` to point it at the right one."),
    ("lambda-permission-missing", "lambda", "AWS IoT may not invoke the authorizer's Lambda function",
     "Check your authorizer's Lambda: no invocations -> verify AWS IoT Core has permission to invoke it",
     "`aws lambda add-permission --function-name FN --principal iot.amazonaws.com --action lambda:InvokeFunction "
     "--statement-id iot-authorizer --source-arn arn:aws:iot:REGION:ACCOUNT:authorizer/NAME`; if a statement exists, "
     "make its AWS:SourceArn / AWS:SourceAccount conditions name this authorizer and account."),
    ("lambda-error", "lambda", "The authorizer's Lambda function fails (exception or runtime error)",
     "Check your authorizer's Lambda: invocations with errors",
     "Read the function's log group /aws/lambda/FN for the traceback; use the Lambda console's test feature with "
     "the event the probe printed to reproduce it."),
    ("lambda-response-invalid", "lambda", "The Lambda returned a response AWS IoT rejects",
     "Check your authorizer's Lambda: the function is not handling the event correctly",
     "Return isAuthenticated (bool), principalId (1-128 alphanumeric characters), policyDocuments (at most 10, "
     "each at most 2,048 characters), disconnectAfterInSeconds and refreshAfterInSeconds in 300-86,400; a deny "
     "({\"isAuthenticated\": false}) needs nothing else."),
    ("authorizer-denied", "lambda", "The authorizer's Lambda returned isAuthenticated: false",
     "Check your authorizer's Lambda: invocations without errors but devices cannot connect",
     "Log the event and the response in the function; check the token the device sends is the one the function "
     "expects (the probe prints its length and SHA-256 fingerprint)."),
    ("policy-denies-connect", "lambda", "The returned policy does not allow iot:Connect for this client id",
     "Check the policy your Lambda returns: it lacks permissions for the actions the device takes",
     "Return an Allow for iot:Connect on arn:aws:iot:REGION:ACCOUNT:client/CLIENT_ID (or ${iot:ClientId}) and no Deny "
     "that matches it."),
    ("policy-denies-publish", "lambda", "The returned policy does not allow iot:Publish on the topic",
     "Check the policy your Lambda returns: it lacks permissions for the actions the device takes",
     "Allow iot:Publish on arn:aws:iot:REGION:ACCOUNT:topic/TOPIC in the returned policy."),
    ("policy-denies-subscribe", "lambda", "The returned policy does not allow iot:Subscribe on the topic filter",
     "Check the policy your Lambda returns: it lacks permissions for the actions the device takes",
     "Allow iot:Subscribe on arn:aws:iot:REGION:ACCOUNT:topicfilter/FILTER (topicfilter, not topic)."),
    ("policy-denies-receive", "lambda", "The returned policy does not allow iot:Receive on the topic",
     "Check the policy your Lambda returns: it lacks permissions for the actions the device takes",
     "Allow iot:Receive on arn:aws:iot:REGION:ACCOUNT:topic/TOPIC; without it AWS silently drops deliveries."),
    ("lambda-timeout", "lambda", "The authorizer's Lambda runs into the 5-second limit",
     "Check your authorizer's Lambda: the function exceeds the 5 second timeout limit for custom authorizers",
     "Make the function answer well under 5 s: move network calls out of the hot path, cache keys, raise memory "
     "(more CPU); check Duration in CloudWatch metrics."),
    ("authorizer-inactive", "lambda", "The authorizer exists but its status is INACTIVE",
     "beyond seed",
     "`aws iot update-authorizer --authorizer-name NAME --status ACTIVE`."),
    ("sni-missing", "tls", "The device sends no SNI (server name) in the TLS handshake",
     "Device TLS layer: pass the Server Name Indication TLS extension (or Host header)",
     "Pass server_hostname=ENDPOINT to wrap_socket (MicroPython/CircuitPython) so SNI is sent."),
    ("sni-mismatch", "tls", "The SNI / Host the device sends is not one of the account's data endpoints",
     "Device TLS layer: the value must match one of your account's AWS IoT Core data endpoints",
     "Use the address from `aws iot describe-endpoint --endpoint-type iot:Data-ATS` (or a domain configuration's "
     "name) as both the host and the SNI; dial another address only with connect_address."),
    ("alpn-missing", "tls", "MQTT custom auth on 443 needs ALPN 'mqtt', which this runtime does not send",
     "Device TLS layer: devices using custom authentication for MQTT must pass ALPN 'mqtt'",
     "On MicroPython/CircuitPython use transport = \"wss\" (MQTT over WebSockets with the authorizer headers), or "
     "create a domain configuration with authenticationType CUSTOM_AUTH and applicationProtocol SECURE_MQTT."),
    ("port-not-443", "tls", "Custom authentication only works on port 443",
     "Device TLS layer: custom authentication is currently available only on port 443",
     "Set [endpoint] port = 443 (8883 demands an X.509 client certificate)."),
    ("signature-missing", "application", "Signing is enabled on the authorizer but the device sends no signature",
     "Device application layer: pass the token signature in x-amz-customauthorizer-signature",
     "Sign the token (`authprobe sign`) and send it in x-amz-customauthorizer-signature, or use an authorizer "
     "created with signing disabled."),
    ("signature-invalid", "application", "The token signature does not verify with the authorizer's public keys",
     "Device application layer: make sure the service is not signing a value other than the token",
     "Sign exactly the token bytes with RSA-SHA256 (PKCS#1 v1.5) using the private key matching one of "
     "tokenSigningPublicKeys; base64 without line breaks. Check with `authprobe verify`."),
    ("signature-not-urlencoded", "application", "The signature in the MQTT username / query string is not "
     "percent-encoded", "beyond seed",
     "Percent-encode the base64 signature in usernames and query strings ('+' -> %2B, '=' -> %3D, '/' -> %2F)."),
    ("token-key-name-mismatch", "application", "The token is sent under a name other than the authorizer's "
     "tokenKeyName", "Device application layer: pass the token in the header or parameter named by token-key-name",
     "Use the authorizer's tokenKeyName (describe-authorizer) as [auth] token_key_name."),
    ("authorizer-unknown", "application", "The named authorizer does not exist, or none is named and no default is set",
     "Device application layer: the authorizer name is valid or a default authorizer is defined",
     "Check the spelling against `aws iot list-authorizers`, or `aws iot set-default-authorizer --authorizer-name NAME`."),
    ("config-invalid", "environment", "The probe's own configuration is malformed",
     "beyond seed", "Fix the fields the config lint names, then run again."),
    ("wifi-failure", "environment", "The board does not join the Wi-Fi network",
     "beyond seed", "Check SSID and password, 2.4 GHz availability and signal strength (RSSI in the report)."),
    ("clock-invalid", "environment", "The device clock is unset or far off",
     "beyond seed", "Let the board reach an NTP server (UDP 123) before TLS; certificates cannot be judged without time."),
    ("dns-failure", "environment", "The endpoint name does not resolve",
     "beyond seed", "Check the endpoint spelling and the network's DNS server."),
    ("tcp-unreachable", "environment", "TCP to the endpoint is refused or times out",
     "beyond seed", "Check that the network allows outbound TCP 443 to AWS IoT (firewall, captive portal, proxy)."),
    ("ca-untrusted", "environment", "The server certificate chain is not trusted by the device's CA bundle",
     "beyond seed", "Bundle Amazon Root CA 1 and Amazon Root CA 3 (and the Starfield cross-sign) on the device."),
    ("client-id-conflict", "environment", "Another connection took over the same client id",
     "beyond seed", "Give every device (and every probe run) a unique client id."),
)

ROOT_CAUSES: dict[str, RootCause] = {row[0]: RootCause(*row) for row in _ROWS}


# Placeholders the remediations use for what only the account knows; filled in where it is known.
_PLACEHOLDER = re.compile(r"\b(FN|NAME|REGION|ACCOUNT)\b")


def fill(text: str, *, function: str | None = None, authorizer: str | None = None, region: str | None = None,
         account: str | None = None) -> str:
    """A remediation with the real names put in: FN (so `/aws/lambda/FN` names the real log group),
    NAME (the authorizer), REGION, ACCOUNT. Unknown ones stay as placeholders."""
    known = {"FN": function, "NAME": authorizer, "REGION": region, "ACCOUNT": account}
    return _PLACEHOLDER.sub(lambda m: known[m.group()] or m.group(), text)


def fill_diagnosis(diagnosis: list[dict[str, Any]], **known: str | None) -> list[dict[str, Any]]:
    """A report's diagnosis with the real names put into every fix (see fill)."""
    return [dict(d, remediation=fill(str(d.get("remediation") or ""), **known)) for d in diagnosis]


def get(cause_id: str) -> RootCause:
    try:
        return ROOT_CAUSES[cause_id]
    except KeyError:
        raise KeyError(f"unknown root-cause id {cause_id!r}") from None


# The evidence that tells a cause apart from its look-alikes (root-causes.md "Separated by"); a
# diagnosis that cannot decide between candidates names these so the user knows what to fetch.
DECIDED_BY: dict[str, str] = {
    "authorizer-function-missing": "DescribeAuthorizer: the function ARN does not resolve to a function",
    "lambda-permission-missing": "zero Lambda Invocations and a resource policy without iot.amazonaws.com "
    "(or with a SourceArn/SourceAccount naming another authorizer/account)",
    "lambda-error": "Lambda Errors metric or an exception in the function's log",
    "lambda-response-invalid": "the function returned a response that breaks the schema",
    "authorizer-denied": "the function returned isAuthenticated: false",
    "policy-denies-connect": "the returned policy has no Allow (or a Deny) for iot:Connect on client/<clientId>",
    "policy-denies-publish": "iot:Publish on topic/<topic> in the returned policy; IoT log Publish-In Failure",
    "policy-denies-subscribe": "iot:Subscribe on topicfilter/<filter>; IoT log Subscribe Failure",
    "policy-denies-receive": "iot:Receive on topic/<topic> in the returned policy",
    "lambda-timeout": "Lambda Duration at or past 5,000 ms (a longer function timeout logs no timeout); 'Task timed "
                      "out' or a JSON report with status timeout in the function log",
    "authorizer-inactive": "DescribeAuthorizer status INACTIVE",
    "sni-missing": "the probe config / TLS record: no server_hostname sent",
    "sni-mismatch": "SNI differs from DescribeEndpoint(iot:Data-ATS) and the domain configuration names",
    "alpn-missing": "the runtime sends no ALPN and the endpoint is a default configuration",
    "port-not-443": "the configured port is not 443",
    "signature-missing": "authorizer signing enabled and no x-amz-customauthorizer-signature sent; zero Invocations",
    "signature-invalid": "the signature does not verify over the token with the authorizer's public keys",
    "signature-not-urlencoded": "a raw '+', '/' or '=' in the signature inside a username or query string",
    "token-key-name-mismatch": "the device's token key name differs from the authorizer's tokenKeyName",
    "authorizer-unknown": "the named authorizer does not exist, or no name and no default authorizer",
    "config-invalid": "the probe's config lint",
    "wifi-failure": "the Wi-Fi step's status",
    "clock-invalid": "the clock step / certificate validity errors",
    "dns-failure": "the DNS step",
    "tcp-unreachable": "the TCP step (refused vs timeout)",
    "ca-untrusted": "the TLS step: chain not signed by a trusted CA",
    "client-id-conflict": "an IoT log Disconnect with DUPLICATE_CLIENT_ID for this client id",
}
