"""AWS IoT's `Connection.AuthNError` log entry: a connection refused at authentication
(docs/aws-iot-now.md §1). The stand-in writes it, the join matches it to runs, the diagnosis reads it;
all three take its names and codes from here.

What is certain [C]: the entry exists (DG cwl-format.html lists a "Connection.AuthNError log entry"
section), as does the AWS/IoT metric of the same name, which counts only connections whose SNI names
one of the account's endpoints. Everything else here is inferred [I] from the announcement's
summaries (the section body was not readable): ERROR/Failure always, off until the event type is
enabled, the authentication type, SNI, source and destination address and port, a `reason` code
and `details`. The JSON names of the SNI and destination fields are not documented anywhere we could
read [?]: readers accept every plausible spelling (SNI_FIELDS ...); the stand-in writes the first."""

from __future__ import annotations

from typing import Any

EVENT_TYPE = "Connection.AuthNError"

# Reason codes [I] (NEWS summary; "13" announced, 14 listed).
LAMBDA_EXECUTION_ERROR = "CUSTOM_AUTHORIZER_LAMBDA_EXECUTION_ERROR"
AUTHORIZER_NOT_FOUND = "CUSTOM_AUTHORIZER_NOT_FOUND"
PARAMETER_INVALID = "CUSTOM_AUTHORIZER_PARAMETER_INVALID"
NOT_AUTHENTICATED = "NOT_AUTHENTICATED"
SNI_MISUSED = "SNI_MISUSED"
DOMAIN_DISABLED = "DOMAIN_CONFIGURATION_DISABLED"
DOMAIN_INVALID = "DOMAIN_CONFIGURATION_INVALID"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
CERTIFICATE_REASONS = ("DEVICE_CERTIFICATE_INACTIVE", "DEVICE_CERTIFICATE_NOT_REGISTERED",
                       "DEVICE_CERTIFICATE_REVOKED")
SIGV4_REASONS = ("SECURITY_TOKEN_EXPIRED", "SECURITY_TOKEN_INVALID", "SECURITY_TOKEN_SIGNATURE_MISMATCH")
REASONS = (LAMBDA_EXECUTION_ERROR, AUTHORIZER_NOT_FOUND, PARAMETER_INVALID, NOT_AUTHENTICATED, SNI_MISUSED,
           DOMAIN_DISABLED, DOMAIN_INVALID, INTERNAL_SERVER_ERROR, *CERTIFICATE_REASONS, *SIGV4_REASONS)

# authenticationType values: the botocore enum AuthenticationType [C] (DEFAULT is a domain setting,
# not a way a connection authenticates).
CUSTOM_AUTH_TYPES = ("CUSTOM_AUTH", "CUSTOM_AUTH_X509")
OTHER_AUTH_TYPES = ("AWS_X509", "AWS_SIGV4")

# Field names. sourceIp/sourcePort are the names every other IoT entry uses [C] and the summary's
# queries use [I]; the SNI and destination names are guesses [?], first one written by the stand-in.
SNI_FIELDS = ("serverNameIndication", "sni", "serverName", "tlsSni", "SNI", "sniHost")
DESTINATION_IP_FIELDS = ("destinationIp", "destinationIpAddress", "destIp")
DESTINATION_PORT_FIELDS = ("destinationPort", "destPort")
SOURCE_PORT_FIELDS = ("sourcePort", "sourcePortNumber")

# The reason the stand-in writes for each cause it refuses a connection for. AWS documents which
# code goes with which cause for none of these [?]; each is our reading of the code's one-line
# meaning (examples/README.md lists them).
REASON_FOR_CAUSE = {
    "authorizer-unknown": AUTHORIZER_NOT_FOUND,
    "authorizer-inactive": AUTHORIZER_NOT_FOUND,          # [?] an INACTIVE authorizer: no code of its own
    "token-key-name-mismatch": PARAMETER_INVALID,
    "signature-missing": PARAMETER_INVALID,
    "signature-invalid": PARAMETER_INVALID,               # [?] or NOT_AUTHENTICATED
    "signature-not-urlencoded": PARAMETER_INVALID,
    "authorizer-function-missing": LAMBDA_EXECUTION_ERROR,
    "lambda-permission-missing": LAMBDA_EXECUTION_ERROR,
    "lambda-timeout": LAMBDA_EXECUTION_ERROR,
    "lambda-error": LAMBDA_EXECUTION_ERROR,
    "lambda-response-invalid": LAMBDA_EXECUTION_ERROR,    # [?] a response that breaks the schema
    "authorizer-denied": NOT_AUTHENTICATED,
}



def reason_for(cause: str | None) -> str:
    """The reason the stand-in writes for a refusal of `cause` (NOT_AUTHENTICATED when unmapped)."""
    return REASON_FOR_CAUSE.get(cause or "", NOT_AUTHENTICATED)


# How the diagnosis reads a reason: (causes it confirms, causes it supports) for a custom-auth
# connection. Only SNI_MISUSED and CUSTOM_AUTHORIZER_NOT_FOUND name one cause clearly enough to
# confirm it; the rest narrow the field (docs/aws-iot-now.md §10).
_ENDPOINT_CHOSE_OTHER = ("sni-mismatch", "port-not-443", "alpn-missing")
CAUSES_FOR_REASON: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    AUTHORIZER_NOT_FOUND: (("authorizer-unknown",), ("authorizer-inactive",)),
    LAMBDA_EXECUTION_ERROR: ((), ("lambda-error", "lambda-timeout", "lambda-permission-missing",
                                  "authorizer-function-missing", "lambda-response-invalid")),
    PARAMETER_INVALID: ((), ("token-key-name-mismatch", "signature-missing", "signature-invalid",
                             "signature-not-urlencoded")),
    NOT_AUTHENTICATED: ((), ("authorizer-denied",)),
    SNI_MISUSED: (("sni-mismatch",), ()),
    DOMAIN_DISABLED: ((), ("sni-mismatch",)),
    DOMAIN_INVALID: ((), ("sni-mismatch", "alpn-missing")),
    INTERNAL_SERVER_ERROR: ((), ()),
    # [I] an X.509 reason for a custom-auth device: the endpoint picked certificate authentication
    # (port 8883, ALPN x-amzn-mqtt-ca, or a domain configuration of type AWS_X509).
    **{r: ((), _ENDPOINT_CHOSE_OTHER) for r in CERTIFICATE_REASONS},
    # [I] SigV4 reasons: no custom authorizer was chosen (a WebSocket connection without an
    # authorizer name falls back to SigV4 when the account has no default authorizer).
    **{r: ((), ("authorizer-unknown",)) for r in SIGV4_REASONS},
}

# The causes the four custom-auth reasons share out between them: one entry matched for certain to a
# connection rules out the others [I] (each reason stands for one stage: authorizer lookup,
# parameters and signature, the function's run, its answer).
CUSTOM_AUTH_STAGE = frozenset(c for r in (AUTHORIZER_NOT_FOUND, PARAMETER_INVALID, LAMBDA_EXECUTION_ERROR,
                                          NOT_AUTHENTICATED) for c in sum(CAUSES_FOR_REASON[r], ()))


def first_field(record: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = record.get(name)
        if value not in (None, ""):
            return value
    return None


def sni_of(record: dict[str, Any]) -> str | None:
    value = first_field(record, SNI_FIELDS)
    return str(value).lower() if value is not None else None


def port_of(value: Any) -> int | None:
    """A port number from an int or a digit string (Logs Insights rows are text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def source_port_of(record: dict[str, Any]) -> int | None:
    return port_of(first_field(record, SOURCE_PORT_FIELDS))


def destination_port_of(record: dict[str, Any]) -> int | None:
    return port_of(first_field(record, DESTINATION_PORT_FIELDS))


def is_authn_error(record: dict[str, Any]) -> bool:
    return record.get("eventType") == EVENT_TYPE


def causes_for(record: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(confirmed, supported) root causes an AuthNError entry names for a custom-auth device. A
    connection AWS authenticated another way (X.509, SigV4) never reached the authorizer: the
    endpoint, port or ALPN chose that method, whatever the reason says."""
    auth_type = str(record.get("authenticationType") or "")
    reason = str(record.get("reason") or "")
    if auth_type in OTHER_AUTH_TYPES and reason not in (SNI_MISUSED, DOMAIN_DISABLED, DOMAIN_INVALID):
        if auth_type == "AWS_X509" and destination_port_of(record) == 8883:
            return (), ("port-not-443",)
        return (), (("authorizer-unknown",) if auth_type == "AWS_SIGV4" else _ENDPOINT_CHOSE_OTHER)
    return CAUSES_FOR_REASON.get(reason, ((), ()))
