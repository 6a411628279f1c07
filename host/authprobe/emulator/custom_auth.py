"""The custom authentication pipeline, in the order AWS documents it:

1. pick the authorizer: the one the device names, else the domain configuration's default, else the
   account's default (DG config-custom-auth.html; BOTO SetDefaultAuthorizer, AuthorizerConfig);
2. refuse an unknown or INACTIVE authorizer;
3. with signing enabled, verify the RSA-SHA256 (PKCS#1 v1.5) signature of the token against the
   authorizer's public keys BEFORE any invocation; on failure the function is not invoked
   (DG custom-authorizer.html);
4. the function must exist and its resource policy must let iot.amazonaws.com invoke it
   (DG custom-auth-troubleshooting.html);
5. invoke the function with the documented event (DG custom-auth-lambda.html), waiting at most 5 s
   whatever the function's own timeout (a longer one lets it run on after IoT gave up);
6. validate the response (authorizer_response.py) and honour isAuthenticated.

The outcome names a `cause` (the root-cause ids of host/authprobe/root_causes.py) and a `details`
string for the IoT log. AWS documents no custom-auth specific reason strings (reference §6); the
stand-in logs reason AUTHORIZATION_FAILURE (documented) with `details` strings of its own (ours)."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from authprobe.aws import signing
from authprobe.aws.authorizer_response import AuthorizerResponse, validate
from authprobe.aws.lambda_permission import may_invoke
from authprobe.emulator.config import IOT_AUTHORIZER_WAIT_S, AuthorizerConfig, DomainConfig, EmulatorConfig
from authprobe.emulator.lambda_runtime import Invocation, LambdaService

NAME_PARAM = "x-amz-customauthorizer-name"
SIGNATURE_PARAM = "x-amz-customauthorizer-signature"

# `details` strings written with reason AUTHORIZATION_FAILURE. All are ours (AWS documents only
# "Authorization Failure" for a denied connect, see the reference §6); keep them stable, the
# cloud-check engineer's local backend and the diagnosis match on their beginnings.
DETAILS_AUTHORIZER_NOT_FOUND = "Authorizer not found"
DETAILS_NO_AUTHORIZER = "No authorizer named and no default authorizer set"
DETAILS_INACTIVE = "Authorizer is INACTIVE"
DETAILS_SIGNATURE_MISSING = "Token signature missing"
DETAILS_TOKEN_MISSING = "Token missing"
DETAILS_SIGNATURE_FAILED = "Signature verification failed"
DETAILS_FUNCTION_MISSING = "Authorizer function not found"
DETAILS_PERMISSION = "AWS IoT is not permitted to invoke the authorizer function"
DETAILS_TIMEOUT = "Authorizer function timed out"
DETAILS_FUNCTION_ERROR = "Authorizer function failed"
DETAILS_THROTTLED = "Authorizer function throttled"
DETAILS_INVALID_RESPONSE = "Invalid authorizer response"
DETAILS_DENIED = "Authorizer returned isAuthenticated false"
DETAILS_POLICY_DENIES_CONNECT = "Authorization Failure"  # documented (cwl-format sample)


@dataclass
class Credentials:
    """What a connection carried for custom auth, gathered from the MQTT username query string,
    the WebSocket upgrade's headers and query string."""

    authorizer_name: str | None = None
    signature: str | None = None
    params: dict[str, str] = field(default_factory=dict)  # query parameters, exact names
    headers: dict[str, str] = field(default_factory=dict)  # HTTP headers, names lower-cased
    server_name: str | None = None
    username: str | None = None
    password: bytes | None = None
    client_id: str | None = None
    http_headers: dict[str, str] | None = None  # as received, for protocolData.http
    http_query: str | None = None
    protocols: list[str] = field(default_factory=lambda: ["tls", "mqtt"])
    explicit_token: str | None = None  # TestInvokeAuthorizer passes the token itself

    def token(self, key: str | None) -> str | None:
        if self.explicit_token is not None:
            return self.explicit_token
        if key is None:
            return None
        if key.lower() in self.headers:
            return self.headers[key.lower()]
        return self.params.get(key)


def query_params(query: str) -> dict[str, str]:
    """A query string decoded as a server does: percent-escapes resolved and '+' read as a space,
    so a base64 signature sent without percent-encoding arrives damaged (signature-not-urlencoded)."""
    out: dict[str, str] = {}
    for k, v in parse_qsl(query.lstrip("?"), keep_blank_values=True):
        out.setdefault(k, v)
    return out


def credentials_from_mqtt(username: str | None, password: bytes | None, client_id: str | None,
                          server_name: str | None, base: Credentials | None = None) -> Credentials:
    creds = base or Credentials()
    creds.username, creds.password, creds.client_id, creds.server_name = username, password, client_id, server_name
    if username and "?" in username:
        for k, v in query_params(username.split("?", 1)[1]).items():
            creds.params.setdefault(k, v)
    lowered = {k.lower(): v for k, v in creds.params.items()}
    creds.authorizer_name = creds.headers.get(NAME_PARAM) or lowered.get(NAME_PARAM)
    creds.signature = creds.headers.get(SIGNATURE_PARAM) or lowered.get(SIGNATURE_PARAM)
    return creds


@dataclass
class AuthOutcome:
    ok: bool
    cause: str | None  # root-cause id when refused
    details: str
    authorizer: str | None = None
    principal_id: str | None = None
    response: AuthorizerResponse | None = None
    invocation: Invocation | None = None
    connection_id: str = ""

    @property
    def invoked(self) -> bool:
        return self.invocation is not None


def choose_authorizer(config: EmulatorConfig, named: str | None,
                      domain: DomainConfig | None) -> tuple[AuthorizerConfig | None, str | None, str]:
    """(authorizer, cause, details); a domain's default wins unless it allows an override."""
    if domain is not None and domain.default_authorizer and (named is None or not domain.allow_authorizer_override):
        name: str | None = domain.default_authorizer
    else:
        name = named or config.default_authorizer
    if name is None:
        return None, "authorizer-unknown", DETAILS_NO_AUTHORIZER
    auth = config.authorizers.get(name)
    if auth is None:
        return None, "authorizer-unknown", f"{DETAILS_AUTHORIZER_NOT_FOUND}: {name}"
    return auth, None, ""


def verify_signature(auth: AuthorizerConfig, token: str, signature: str) -> bool:
    """True when `signature` (base64) is a valid RSA-SHA256 signature of exactly `token`."""
    raw = signing.decode_base64(signature)
    return raw is not None and any(signing.verifies(key, raw, token) for key in auth.public_keys.values())


def build_event(creds: Credentials, token: str | None, signature_verified: bool, connection_id: str) -> dict:
    """The request event (DG custom-auth-lambda.html): fields not relevant to the request are left out."""
    event: dict = {}
    if token is not None:
        event["token"] = token
    event["signatureVerified"] = signature_verified
    event["protocols"] = list(creds.protocols)
    data: dict = {}
    if creds.server_name is not None:
        data["tls"] = {"serverName": creds.server_name}
    if creds.http_headers is not None or creds.http_query is not None:
        data["http"] = {"headers": dict(creds.http_headers or {}), "queryString": creds.http_query or ""}
    mqtt: dict = {}
    if creds.username is not None:
        mqtt["username"] = creds.username
    if creds.password is not None:
        mqtt["password"] = base64.b64encode(creds.password).decode()
    if creds.client_id:
        mqtt["clientId"] = creds.client_id
    if mqtt:
        data["mqtt"] = mqtt
    event["protocolData"] = data
    event["connectionMetadata"] = {"id": connection_id}
    return event


MAX_PROBLEMS_LOGGED = 5


def _first_problems(problems: list[str]) -> str:
    """The first few problems for the log line; a response can break hundreds of rules at once."""
    shown = "; ".join(problems[:MAX_PROBLEMS_LOGGED])
    more = len(problems) - MAX_PROBLEMS_LOGGED
    return f"{shown}; and {more} more" if more > 0 else shown


class CustomAuth:
    """Runs the pipeline against one configuration and its Lambda service."""

    def __init__(self, config: EmulatorConfig, lambdas: LambdaService):
        self.config, self.lambdas = config, lambdas

    def authenticate(self, creds: Credentials, domain: DomainConfig | None = None,
                     authorizer: AuthorizerConfig | None = None) -> AuthOutcome:
        cid = str(uuid.uuid4())
        if authorizer is None:
            authorizer, cause, details = choose_authorizer(self.config, creds.authorizer_name, domain)
            if authorizer is None:
                return AuthOutcome(False, cause, details, connection_id=cid)
        name = authorizer.name
        if authorizer.status != "ACTIVE":
            return AuthOutcome(False, "authorizer-inactive", f"{DETAILS_INACTIVE}: {name}", name, connection_id=cid)
        token = creds.token(authorizer.token_key_name)
        verified = False
        if not authorizer.signing_disabled:
            if token is None:
                return AuthOutcome(False, "token-key-name-mismatch",
                                   f"{DETAILS_TOKEN_MISSING}: no '{authorizer.token_key_name}' parameter or header",
                                   name, connection_id=cid)
            if not creds.signature:
                return AuthOutcome(False, "signature-missing", DETAILS_SIGNATURE_MISSING, name, connection_id=cid)
            if not verify_signature(authorizer, token, creds.signature):
                cause = "signature-not-urlencoded" if " " in creds.signature else "signature-invalid"
                return AuthOutcome(False, cause, DETAILS_SIGNATURE_FAILED, name, connection_id=cid)
            verified = True
        fn_arn = self.config.function_arn(authorizer.function)
        runtime = self.lambdas.runtime(authorizer.function)
        if runtime is None:
            return AuthOutcome(False, "authorizer-function-missing", f"{DETAILS_FUNCTION_MISSING}: {fn_arn}",
                               name, connection_id=cid)
        permission = may_invoke(runtime.fn.resource_policy, fn_arn, self.config.authorizer_arn(name),
                                self.config.account)
        if not permission.allowed:
            return AuthOutcome(False, "lambda-permission-missing", f"{DETAILS_PERMISSION}: {permission.reason}",
                               name, connection_id=cid)
        invocation = runtime.invoke(build_event(creds, token, verified, cid), wait_s=IOT_AUTHORIZER_WAIT_S)
        if invocation.status == "timeout":
            return AuthOutcome(False, "lambda-timeout",
                               f"{DETAILS_TIMEOUT} after {runtime.fn.timeout_s:.2f} seconds", name,
                               invocation=invocation, connection_id=cid)
        if invocation.status == "abandoned":
            # The function's own timeout is longer than IoT's wait: it runs on, IoT refuses now.
            return AuthOutcome(False, "lambda-timeout",
                               f"{DETAILS_TIMEOUT}: AWS IoT stopped waiting after {IOT_AUTHORIZER_WAIT_S:.2f} "
                               f"seconds (the function's own timeout is {runtime.fn.timeout_s:g} s)", name,
                               invocation=invocation, connection_id=cid)
        if invocation.status == "throttled":
            return AuthOutcome(False, "lambda-error", DETAILS_THROTTLED, name, connection_id=cid)
        if invocation.status != "ok":
            kind = (invocation.error or {}).get("errorType", "Error")
            # The error message may quote the token; the function's log group keeps the full trace.
            return AuthOutcome(False, "lambda-error", f"{DETAILS_FUNCTION_ERROR}: {kind}", name,
                               invocation=invocation, connection_id=cid)
        response = validate(invocation.payload)
        if not response.valid:
            return AuthOutcome(False, "lambda-response-invalid",
                               f"{DETAILS_INVALID_RESPONSE}: {_first_problems(response.problems)}", name,
                               response.principal_id or None, response, invocation, cid)
        if not response.is_authenticated:
            return AuthOutcome(False, "authorizer-denied", DETAILS_DENIED, name, response.principal_id, response,
                               invocation, cid)
        return AuthOutcome(True, None, "", name, response.principal_id, response, invocation, cid)
