"""The fault drill's table: every root cause of the shared vocabulary, how the drill produces it
locally (through the stand-in's config, the device config, the authorizer handler or the virtual
board's shims), on which runtimes, or why it cannot be produced here.

Runtimes (runtime/transport): `micropython/wss` (the virtual board: the real MicroPython unix port,
no ALPN, so MQTT over WebSockets), `circuitpython/wss` (the virtual board's CircuitPython flavour:
code.py, settings.toml, wifi/socketpool/ssl), `micropython/mqtt` and `circuitpython/mqtt` (the same
boards forced to direct MQTT, which shows alpn-missing), `cpython/mqtt` (`authprobe probe` under
CPython, which sends ALPN "mqtt") and `cpython/mqtt5` (the same with device.mqtt = 5: the stand-in
answers with MQTT 5 reason codes, which the probe reports and the diagnosis reads)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from authprobe.drill.intruder import DuplicateClient
from authprobe.drill.standin import CLOCK_BEHIND_DAYS, StandIn, example_signature

MP_WSS = "micropython/wss"
MP_MQTT = "micropython/mqtt"
CP_WSS = "circuitpython/wss"
CP_MQTT = "circuitpython/mqtt"
CPY_MQTT = "cpython/mqtt"
CPY_MQTT5 = "cpython/mqtt5"
RUNTIMES = (MP_WSS, CP_WSS, MP_MQTT, CP_MQTT, CPY_MQTT, CPY_MQTT5)
ALL = (MP_WSS, CP_WSS, CPY_MQTT)          # every runtime, each with its usual transport
WITH_MQTT5 = (*ALL, CPY_MQTT5)            # faults whose MQTT 5 answer (a reason code) the drill checks too
BOARDS = (MP_WSS, CP_WSS)                 # the runtimes with a (virtual) radio

# Stand-ins the drill starts (one per distinct stand-in config): the drill's own config; the same
# config serving a certificate that is not valid yet for a board whose clock is behind; the same
# account without a default authorizer; the same delivering its logs late (the sequences' stand-in);
# the same logging only Connection.AuthNError entries. Values: StandIn.start keyword arguments.
MAIN = "main"
CLOCK_BEHIND = "clock-behind"
NO_DEFAULT = "no-default-authorizer"
LOGS_DELAYED = "logs-delayed"
LOG_DELAY_S = 2.5   # the logs-delayed stand-in's [logging] delivery_delay_s (CloudWatch's, shortened)
# An account that logs nothing but the Connection.AuthNError entries, to a log group of their own:
# the join must match them to runs without a client id (source port, SNI, time).
AUTHN_ONLY = "authn-error-only-logging"
STANDINS: dict[str, dict[str, Any]] = {
    MAIN: {}, CLOCK_BEHIND: {"clock_behind_days": CLOCK_BEHIND_DAYS}, NO_DEFAULT: {"without_default_authorizer": True},
    LOGS_DELAYED: {"delivery_delay_s": LOG_DELAY_S},
    AUTHN_ONLY: {"logging": {"default_level": "DISABLED", "events": {
        "Connection.AuthNError": {"level": "ERROR", "destination": "iot/authn-errors"}}}}}

Adjust = Callable[[dict[str, Any], StandIn], None]


@dataclass(frozen=True)
class Fault:
    name: str                  # case name (unique), also the --only target
    expected: str | None       # the root cause the diagnosis must lead with; None: a healthy run
    injected: str              # what was done, in words
    adjust: Adjust | None = None
    runtimes: tuple[str, ...] = ALL
    standin: str = MAIN
    wifi_fault: str | None = None
    alongside: Any = None      # context manager factory (standin, cfg) kept open during the run
    evidence: str | None = None  # words the leading diagnosis must cite: the evidence path the case is for


@dataclass(frozen=True)
class NotLocal:
    """A root cause the drill does not produce (on `runtime`, or anywhere when None), and why."""

    expected: str
    why: str
    runtime: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"expected": self.expected, "runtime": self.runtime, "why": self.why}


def _set(section: str, key: str, value: Any) -> Adjust:
    def adjust(cfg: dict[str, Any], standin: StandIn) -> None:
        if value is None:
            cfg[section].pop(key, None)
        else:
            cfg[section][key] = value
    return adjust


def _both(*steps: Adjust) -> Adjust:
    def adjust(cfg: dict[str, Any], standin: StandIn) -> None:
        for step in steps:
            step(cfg, standin)
    return adjust


def _authorizer(name: str | None) -> Adjust:
    return _set("auth", "authorizer", name)


def _closed_port(cfg: dict[str, Any], standin: StandIn) -> None:
    import socket

    # A port nothing listens on: bound and released here, so it is free but closed.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg["endpoint"]["connect_address"] = f"127.0.0.1:{port}"


def _port_8883(cfg: dict[str, Any], standin: StandIn) -> None:
    emu = standin.emulator
    cfg["endpoint"]["port"] = 8883
    cfg["endpoint"]["connect_address"] = f"{emu.host}:{emu.port_8883}"


@functools.cache
def _other_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _signed_with_another_key(cfg: dict[str, Any], standin: StandIn) -> None:
    """A signature made with a private key whose public half the authorizer does not hold (an old or
    a test key pair): the token is right, the key is not."""
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    raw = _other_key().sign(cfg["auth"]["token"].encode(), padding.PKCS1v15(), hashes.SHA256())
    cfg["auth"]["signature"] = base64.b64encode(raw).decode()


def raw_signature_in_username(cfg: dict[str, Any], standin: StandIn) -> None:
    """The credentials written into the MQTT username by hand, with the base64 signature pasted as
    is ('+', '/', '=' not percent-encoded), as many first attempts do."""
    auth = cfg["auth"]
    signature = example_signature(auth["token"])
    auth["username"] = (f"{cfg['device']['client_id']}?x-amz-customauthorizer-name={auth['authorizer']}"
                        f"&x-amz-customauthorizer-signature={signature}&token={auth['token']}")
    for key in ("authorizer", "token_key_name", "token", "signature"):
        auth.pop(key, None)


def _duplicate_client(standin: StandIn, cfg: dict[str, Any]) -> Any:
    return DuplicateClient(standin, cfg)


FAULTS: tuple[Fault, ...] = (
    Fault("healthy", None, "nothing: the example authorizer, a signed token, the stand-in's CA",
          runtimes=WITH_MQTT5),
    # device environment
    Fault("config-invalid", "config-invalid", "device.transport = \"mqtts\" (a typo)",
          _set("device", "transport", "mqtts")),
    Fault("wifi-failure", "wifi-failure", "the access point refuses the Wi-Fi password (virtual board radio shim)",
          runtimes=BOARDS, wifi_fault="wrong-password"),
    Fault("wifi-no-access-point", "wifi-failure", "no access point answers to the SSID (virtual board radio shim)",
          runtimes=BOARDS, wifi_fault="no-ap"),
    Fault("clock-invalid", "clock-invalid",
          "the server certificate starts 30 days from now: what a board whose clock is 30 days behind sees",
          standin=CLOCK_BEHIND, runtimes=(MP_WSS, CPY_MQTT)),
    Fault("dns-failure", "dns-failure", "endpoint.connect_address names a host that does not resolve",
          _set("endpoint", "connect_address", "iot-endpoint.drill.invalid:443")),
    Fault("tcp-unreachable", "tcp-unreachable", "endpoint.connect_address points at a closed port", _closed_port),
    Fault("ca-untrusted", "ca-untrusted", "endpoint.ca left out: the board trusts only Amazon's roots",
          _set("endpoint", "ca", None)),
    # TLS layer
    Fault("sni-mismatch", "sni-mismatch", "endpoint.host is another account's endpoint (sent as SNI)",
          _set("endpoint", "host", "a9z8y7x6w5v4u3-ats.iot.us-east-1.amazonaws.com")),
    Fault("alpn-missing", "alpn-missing", "direct MQTT from a runtime without ALPN to the default endpoint",
          _set("device", "transport", "mqtt"), runtimes=(MP_MQTT, CP_MQTT)),
    Fault("legacy-endpoint", "sni-mismatch",
          "endpoint.host is the legacy VeriSign endpoint (no -ats), which is not this account's data endpoint",
          _set("endpoint", "host", "a1b2c3d4e5f6g7.iot.us-east-1.amazonaws.com")),
    Fault("port-not-443", "port-not-443", "endpoint.port = 8883 (the X.509 port)", _port_8883),
    # application layer
    Fault("signature-missing", "signature-missing", "auth.signature left out; the authorizer has signing on",
          _set("auth", "signature", None)),
    Fault("signature-invalid", "signature-invalid", "auth.signature signs another value than the token",
          _set("auth", "signature", example_signature("selftest-EXAMPLE-token\n")), runtimes=WITH_MQTT5),
    Fault("signature-from-another-key", "signature-invalid",
          "auth.signature made with a private key the authorizer has no public key for", _signed_with_another_key),
    Fault("signature-not-urlencoded", "signature-not-urlencoded",
          "a hand-written MQTT username with the base64 signature not percent-encoded", raw_signature_in_username),
    Fault("token-key-name-mismatch", "token-key-name-mismatch",
          "auth.token_key_name = \"deviceToken\"; the authorizer's tokenKeyName is \"token\"",
          _set("auth", "token_key_name", "deviceToken")),
    Fault("token-key-name-mismatch-in-query", "token-key-name-mismatch",
          "MQTT over WebSockets with the credentials in the query string under the key \"deviceToken\"",
          _both(_set("auth", "wss_auth", "query"), _set("auth", "token_key_name", "deviceToken")), runtimes=BOARDS),
    Fault("authorizer-unknown", "authorizer-unknown", "auth.authorizer names an authorizer that does not exist",
          _authorizer("DeviceAuthV2")),
    Fault("authn-error-only-logging", "authorizer-unknown",
          "auth.authorizer names an authorizer that does not exist; the account logs only Connection.AuthNError "
          "entries (to log group iot/authn-errors), which carry no client id",
          _authorizer("DeviceAuthV2"), standin=AUTHN_ONLY, evidence="Connection.AuthNError"),
    # Lambda / authorizer side
    Fault("no-default-authorizer", "authorizer-unknown",
          "auth.authorizer left out, and the account has no default authorizer",
          _authorizer(None), standin=NO_DEFAULT),
    Fault("authorizer-inactive", "authorizer-inactive", "the authorizer's status is INACTIVE",
          _authorizer("InactiveAuth")),
    Fault("authorizer-function-missing", "authorizer-function-missing",
          "the authorizer names a Lambda function that was deleted", _authorizer("OrphanAuth")),
    Fault("lambda-permission-missing", "lambda-permission-missing",
          "the function has no resource policy for iot.amazonaws.com", _authorizer("UnpermittedAuth")),
    Fault("lambda-permission-wrong-source", "lambda-permission-missing",
          "the function's resource policy names another authorizer in AWS:SourceArn", _authorizer("WrongSourceAuth")),
    Fault("lambda-error", "lambda-error", "the handler raises KeyError for a client id it does not know",
          _authorizer("RaisesAuth")),
    Fault("lambda-handler-not-found", "lambda-error",
          "the function's handler setting names a function the code does not define", _authorizer("MisnamedHandlerAuth")),
    Fault("lambda-timeout", "lambda-timeout", "the handler sleeps past the 5 s authorizer limit",
          _both(_authorizer("SlowAuth"), _set("test", "timeout_ms", 8000)), runtimes=WITH_MQTT5),
    Fault("lambda-timeout-json-logs", "lambda-timeout",
          "the handler sleeps past the 5 s limit; its function logs in Lambda's JSON format (the timeout is a "
          "platform.report with status timeout, no \"Task timed out\" line)",
          _both(_authorizer("SlowJsonLogsAuth"), _set("test", "timeout_ms", 8000)), evidence="platform.report"),
    Fault("lambda-timeout-10s", "lambda-timeout",
          "the function's own timeout is 10 s and it answers after 8 s: AWS IoT stops waiting at 5 s; no timeout "
          "line, no Lambda error, only the duration in its REPORT",
          _both(_authorizer("SlowerThanIoTAuth"), _set("test", "timeout_ms", 8000)), evidence="REPORT RequestId"),
    Fault("lambda-response-invalid", "lambda-response-invalid", "the handler returns principalId \"device:...\"",
          _authorizer("BadResponseAuth")),
    Fault("lambda-response-too-many-policies", "lambda-response-invalid",
          "the handler returns 11 policy documents (at most 10)", _authorizer("TooManyPoliciesAuth")),
    Fault("lambda-response-short-refresh", "lambda-response-invalid",
          "the handler returns refreshAfterInSeconds = 60 (300-86,400)", _authorizer("ShortRefreshAuth")),
    Fault("lambda-response-null", "lambda-response-invalid", "the handler forgets to return its answer",
          _authorizer("ReturnsNothingAuth")),
    Fault("authorizer-denied", "authorizer-denied", "the device sends a token the authorizer does not accept",
          _both(_set("auth", "token", "selftest-REVOKED-token"),
                lambda cfg, s: cfg["auth"].update(signature=example_signature("selftest-REVOKED-token"))),
          runtimes=WITH_MQTT5),
    Fault("authorizer-denied-bare", "authorizer-denied",
          "the authorizer answers {\"isAuthenticated\": false} alone (no principalId, no policyDocuments) to a "
          "token it does not accept",
          _both(_authorizer("BareDenyAuth"), _set("auth", "token", "selftest-REVOKED-token"),
                lambda cfg, s: cfg["auth"].update(signature=example_signature("selftest-REVOKED-token")))),
    Fault("policy-denies-connect", "policy-denies-connect", "the returned policy has no iot:Connect",
          _authorizer("NoConnectAuth"), runtimes=WITH_MQTT5),
    Fault("policy-denies-publish", "policy-denies-publish", "the returned policy has no iot:Publish",
          _authorizer("NoPublishAuth"), runtimes=WITH_MQTT5),
    Fault("policy-deny-publish", "policy-denies-publish",
          "the returned policy allows publishing but an explicit Deny matches the topic", _authorizer("DenyPublishAuth")),
    Fault("policy-denies-subscribe", "policy-denies-subscribe", "the returned policy has no iot:Subscribe",
          _authorizer("NoSubscribeAuth"), runtimes=WITH_MQTT5),
    Fault("sni-missing", "sni-missing",
          "endpoint.host is the endpoint's IP address: TLS sends no SNI for an IP (RFC 6066)",
          _set("endpoint", "host", "127.0.0.1")),
    Fault("client-id-conflict", "client-id-conflict",
          "a second device with the same client id reconnects whenever it is dropped, taking the session",
          # The board holds its session 1.5 s (test.hold_ms) as a tray check would, so the takeover
          # lands inside the run however fast the round trip is.
          _set("test", "hold_ms", 1500), alongside=_duplicate_client, runtimes=WITH_MQTT5),
    Fault("topic-outside-policy", "policy-denies-subscribe",
          "test.topic lies outside the topics the returned policy covers (subscribing is the first thing refused)",
          _set("test", "topic", "telemetry/factory-7")),
    Fault("policy-denies-receive", "policy-denies-receive", "the returned policy has no iot:Receive",
          # The board waits test.timeout_ms for its own message; 1.5 s is plenty on one machine.
          _both(_authorizer("NoReceiveAuth"), _set("test", "timeout_ms", 1500))),
)

NOT_LOCAL: tuple[NotLocal, ...] = (
    NotLocal("clock-invalid", "CircuitPython reports every failed certificate verification with one mbedTLS "
             "error, so a certificate that is not valid yet reads like an untrusted CA (the board's clock step "
             "passes); the diagnosis lists ca-untrusted", runtime=CP_WSS),
)


@dataclass(frozen=True)
class Case:
    fault: Fault
    runtime: str

    @property
    def name(self) -> str:
        return f"{self.fault.name}@{self.runtime}"


def cases(only: list[str] | None = None) -> list[Case]:
    """Every (fault, runtime) pair, optionally only those whose name contains one of `only`
    (e.g. "lambda", "policy-denies-publish", "@cpython")."""
    out = [Case(f, r) for f in FAULTS for r in f.runtimes]
    if only:
        out = [c for c in out if any(p in c.name for p in only)]
    return out


def device_config(case: Case, standin: StandIn) -> dict[str, Any]:
    """The device config for a case: healthy, then the fault's one change; a unique client id per
    case so its cloud records are its own."""
    import secrets

    fault = case.fault
    runtime, transport = case.runtime.split("/")
    client_id = f"drill-{runtime[:2]}-{secrets.token_hex(3)}"
    mqtt5 = transport == "mqtt5"
    cfg = standin.device_config(client_id, transport="mqtt" if mqtt5 else transport)
    if mqtt5:
        cfg["device"]["mqtt"] = 5
    if fault.adjust is not None:
        fault.adjust(cfg, standin)
    return cfg
