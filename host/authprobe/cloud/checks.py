"""The cloud checks behind `authprobe cloud-check`: every item of the seed checklist that can be read
from the account, and more. Each check gives pass/warn/fail/skip, the evidence it saw, the fix and
the root-cause id a failure means, so the diagnosis engine can use it as separating evidence.

The order follows AWS's own troubleshooting order (authorizer -> function -> permission -> metrics
-> returned policy), then the device-side items the cloud can confirm (endpoint, names, signature)."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from authprobe import root_causes
from authprobe.aws import iot_logging, iot_policy, signing
from authprobe.aws.authorizer_response import validate
from authprobe.aws.lambda_permission import may_invoke
from authprobe.cloud.base import AUTHORIZER_TIMEOUT_MS, CallRejected, Cloud, NotFound, arn_account, arn_region
from authprobe.cloud.device_settings import DeviceSettings
from authprobe.cloud.replays import Replay
from authprobe.errors import CloudError
from authprobe.redaction import scrub
from authprobe.report.diagnosis import cause_from_text

STATUSES = ("pass", "warn", "fail", "skip")
# Duration this close to the limit means the function was cut off (Duration is reported capped).
TIMEOUT_SLACK_MS = 100
SLOW_MS = 3000


@dataclass
class CheckResult:
    id: str
    title: str
    status: str
    evidence: list[str] = field(default_factory=list)
    remediation: str = ""
    root_cause: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def seed(self) -> str:
        return root_causes.get(self.root_cause).seed if self.root_cause else ""

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "status": self.status, "evidence": self.evidence,
                "remediation": self.remediation, "root_cause": self.root_cause, "seed": self.seed,
                "data": self.data}


@dataclass
class CheckContext:
    cloud: Cloud
    device: DeviceSettings
    authorizer_name: str | None = None  # --authorizer overrides the device's
    window_end: datetime = field(default_factory=lambda: datetime.now(UTC))
    window: timedelta = timedelta(hours=1)
    replay: bool = True
    # Told of every TestInvokeAuthorizer replay as it is made (the commands record it in the run
    # store), so correlation never takes the replay's function log lines for the device's.
    on_replay: Callable[[Replay], None] | None = None
    # filled in as the checks run
    authorizer: dict[str, Any] | None = None
    function: dict[str, Any] | None = None
    domain: dict[str, Any] | None = None
    returned_policies: list[str] | None = None
    results: list[CheckResult] = field(default_factory=list)
    replays: list[Replay] = field(default_factory=list)

    @property
    def account(self) -> str | None:
        return self.cloud.account or arn_account((self.authorizer or {}).get("authorizerArn"))

    @property
    def region(self) -> str | None:
        return self.cloud.region or arn_region((self.authorizer or {}).get("authorizerArn"))

    def add(self, check_id: str, title: str, status: str, evidence: list[str] | str, *,
            root_cause: str | None = None, remediation: str | None = None, **data: Any) -> CheckResult:
        if isinstance(evidence, str):
            evidence = [evidence]
        if remediation is None:
            remediation = root_causes.get(root_cause).remediation if root_cause and status != "pass" else ""
            remediation = root_causes.fill(remediation, function=_fn_name(self), region=self.region,
                                           account=self.account,
                                           authorizer=(self.authorizer or {}).get("authorizerName"))
        result = CheckResult(check_id, title, status, evidence, remediation, root_cause, data)
        self.results.append(result)
        return result


def _fn_name(ctx: CheckContext) -> str | None:
    if ctx.function:
        return ctx.function.get("FunctionName")
    arn = (ctx.authorizer or {}).get("authorizerFunctionArn")
    return arn.split(":")[6] if arn and arn.count(":") >= 6 else None


# --- authorizer ---------------------------------------------------------------------------------

def check_authorizer(ctx: CheckContext) -> None:
    """Which authorizer the device's connection uses: the one it names, else the domain
    configuration's default, else the account's default (seed: authorizer name valid or default set)."""
    name = ctx.authorizer_name or ctx.device.authorizer
    title = "authorizer exists"
    config = (ctx.domain or {}).get("authorizerConfig") or {}
    if name and config.get("defaultAuthorizerName") and not config.get("allowAuthorizerOverride") \
            and config["defaultAuthorizerName"] != name and not ctx.authorizer_name:
        # The domain configuration decides; the name the device sends is not used.
        ctx.add("authorizer.override", "the device's authorizer name is used", "warn",
                f"domain configuration {ctx.domain.get('domainConfigurationName')} uses its default "
                f"{config['defaultAuthorizerName']!r} and does not allow an override; the device names {name!r}",
                remediation="Allow the override (`aws iot update-domain-configuration --authorizer-config "
                "allowAuthorizerOverride=true,...`) or drop auth.authorizer from the device config.")
        name = None
    if name:
        try:
            ctx.authorizer = ctx.cloud.describe_authorizer(name)
        except NotFound as exc:
            ctx.add("authorizer.exists", title, "fail", [f"DescribeAuthorizer {name!r}: not found", str(exc)],
                    root_cause="authorizer-unknown",
                    remediation=f"Check the name against `aws iot list-authorizers --region {ctx.region or 'REGION'}` "
                    f"(names are case-sensitive; authorizers live in one region, so pass --region if yours is "
                    f"elsewhere), or create it; the device sends {name!r}.")
            return
        ctx.add("authorizer.exists", title, "pass", f"DescribeAuthorizer {name!r}: {ctx.authorizer.get('authorizerArn')}",
                root_cause="authorizer-unknown", name=name)
        return
    domain_default = ((ctx.domain or {}).get("authorizerConfig") or {}).get("defaultAuthorizerName")
    if domain_default:
        try:
            ctx.authorizer = ctx.cloud.describe_authorizer(domain_default)
        except NotFound:
            ctx.add("authorizer.exists", title, "fail",
                    f"the device names no authorizer; domain configuration {ctx.domain.get('domainConfigurationName')!r} "
                    f"defaults to {domain_default!r}, which does not exist", root_cause="authorizer-unknown")
            return
        ctx.add("authorizer.exists", title, "pass",
                f"the device names no authorizer; the domain configuration's default {domain_default!r} is used",
                root_cause="authorizer-unknown", name=domain_default)
        return
    default = ctx.cloud.describe_default_authorizer()
    if not default:
        ctx.add("authorizer.exists", title, "fail",
                "the device names no authorizer (auth.authorizer) and DescribeDefaultAuthorizer finds no default",
                root_cause="authorizer-unknown",
                remediation="Set auth.authorizer in device.toml, or `aws iot set-default-authorizer --authorizer-name NAME`.")
        return
    try:
        ctx.authorizer = ctx.cloud.describe_authorizer(default["authorizerName"]) if "authorizerArn" not in default \
            else default
    except NotFound:
        ctx.add("authorizer.exists", title, "fail",
                f"the default authorizer {default['authorizerName']!r} no longer exists", root_cause="authorizer-unknown")
        return
    ctx.add("authorizer.exists", title, "pass",
            f"the device names no authorizer; the account default {ctx.authorizer['authorizerName']!r} is used",
            root_cause="authorizer-unknown", name=ctx.authorizer["authorizerName"])


def check_authorizer_status(ctx: CheckContext) -> None:
    a = ctx.authorizer
    assert a is not None
    status = a.get("status", "ACTIVE")
    if status != "ACTIVE":
        ctx.add("authorizer.status", "authorizer is ACTIVE", "fail", f"{a['authorizerName']}: status {status}",
                root_cause="authorizer-inactive",
                remediation=f"`aws iot update-authorizer --authorizer-name {a['authorizerName']} --status ACTIVE`")
    else:
        ctx.add("authorizer.status", "authorizer is ACTIVE", "pass", f"{a['authorizerName']}: status ACTIVE",
                root_cause="authorizer-inactive")


def check_function(ctx: CheckContext) -> None:
    """Seed step 1: which Lambda the authorizer uses, and that it exists."""
    a = ctx.authorizer
    assert a is not None
    arn = a.get("authorizerFunctionArn", "")
    title = "authorizer's Lambda function exists"
    try:
        ctx.function = ctx.cloud.get_function(arn)
    except NotFound:
        evidence = [f"authorizerFunctionArn {arn} does not resolve to a function"]
        fn_region = arn_region(arn)
        if fn_region and ctx.region and fn_region != ctx.region:
            evidence.append(f"the ARN names region {fn_region}, the authorizer is in {ctx.region}")
        ctx.add("function.exists", title, "fail", evidence, root_cause="authorizer-function-missing",
                remediation=f"Create the function, or `aws iot update-authorizer --authorizer-name {a['authorizerName']} "
                "--authorizer-function-arn ARN` to point it at the right one.")
        return
    fn = ctx.function
    evidence = [f"{fn.get('FunctionName')} ({fn.get('Runtime', 'runtime ?')}, timeout {fn.get('Timeout', '?')} s)"]
    timeout = fn.get("Timeout")
    if isinstance(timeout, int | float) and timeout > AUTHORIZER_TIMEOUT_MS / 1000:
        evidence.append(f"its own timeout is {timeout} s but AWS IoT stops waiting after "
                        f"{AUTHORIZER_TIMEOUT_MS // 1000} s")
    ctx.add("function.exists", title, "pass", evidence, root_cause="authorizer-function-missing")


def check_token_key_name(ctx: CheckContext) -> None:
    a = ctx.authorizer
    assert a is not None
    want = a.get("tokenKeyName")
    have = ctx.device.token_key_name
    title = "token key name matches the authorizer"
    if ctx.device.token is None:
        ctx.add("authorizer.token_key_name", title, "skip", "the device sends no token (auth.token)")
        return
    if want is None:
        ctx.add("authorizer.token_key_name", title, "warn",
                "the authorizer has no tokenKeyName: a token sent under a key name is not passed to the function "
                "as `token`", root_cause="token-key-name-mismatch", remediation="Send the credentials in the "
                "MQTT username/password instead, or update the authorizer with --token-key-name.")
        return
    if have != want:
        ctx.add("authorizer.token_key_name", title, "fail",
                f"device sends the token under {have!r}; authorizer tokenKeyName is {want!r}",
                root_cause="token-key-name-mismatch",
                remediation=f"Set [auth] token_key_name = \"{want}\" in {ctx.device.source or 'device.toml'}.")
    else:
        ctx.add("authorizer.token_key_name", title, "pass", f"both {want!r}", root_cause="token-key-name-mismatch")


def check_signing(ctx: CheckContext) -> None:
    """Seed (device application layer): signature sent when signing is on; verifies over the token."""
    a = ctx.authorizer
    assert a is not None
    signing_on = not a.get("signingDisabled", False)
    sig = ctx.device.signature
    if not signing_on:
        evidence = "authorizer has signing disabled"
        if sig:
            ctx.add("signature.present", "signature sent when signing is enabled", "warn",
                    [evidence, "the device sends a signature anyway; AWS ignores it"])
        else:
            ctx.add("signature.present", "signature sent when signing is enabled", "pass", evidence,
                    root_cause="signature-missing")
        return
    if not sig:
        ctx.add("signature.present", "signature sent when signing is enabled", "fail",
                "authorizer has signing enabled; the device sends no x-amz-customauthorizer-signature "
                "(auth.signature is empty)", root_cause="signature-missing")
        return
    fp = signing.decode_base64(signing.normalise_signature(sig).base64)
    ctx.add("signature.present", "signature sent when signing is enabled", "pass",
            f"signature of {len(fp) * 8 if fp else '?'} bits sent", root_cause="signature-missing")
    keys = a.get("tokenSigningPublicKeys") or {}
    if not keys:
        ctx.add("signature.verifies", "signature verifies with the authorizer's public keys", "fail",
                "the authorizer has signing enabled but no tokenSigningPublicKeys", root_cause="signature-invalid")
        return
    if ctx.device.token is None:
        ctx.add("signature.verifies", "signature verifies with the authorizer's public keys", "fail",
                "a signature is sent but no token it could sign", root_cause="signature-invalid")
        return
    result = signing.verify_signature(ctx.device.token, sig, keys)
    if result.valid:
        ctx.add("signature.verifies", "signature verifies with the authorizer's public keys", "pass",
                [f"verifies over the token with key {result.key_name!r}"] + result.notes,
                root_cause="signature-invalid", key=result.key_name)
    else:
        ctx.add("signature.verifies", "signature verifies with the authorizer's public keys", "fail",
                [f"tried {result.keys_tried} key(s): {', '.join(keys)}"] + result.notes,
                root_cause="signature-invalid")


def check_signature_encoding(ctx: CheckContext) -> None:
    raw = ctx.device.raw_signature_in_username()
    title = "signature percent-encoded in the MQTT username"
    if raw is None:
        ctx.add("signature.urlencoded", title, "pass" if ctx.device.signature else "skip",
                "the probe builds the username and percent-encodes the signature itself"
                if ctx.device.signature else "no signature in the username", root_cause="signature-not-urlencoded")
        return
    if signing.needs_percent_encoding(raw):
        ctx.add("signature.urlencoded", title, "fail",
                "auth.username carries the signature with a raw '+', '/' or '=': AWS IoT URL-decodes it into "
                "another value", root_cause="signature-not-urlencoded")
    else:
        ctx.add("signature.urlencoded", title, "pass", "the signature in auth.username is percent-encoded",
                root_cause="signature-not-urlencoded")


# --- endpoint -----------------------------------------------------------------------------------

def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def check_endpoint(ctx: CheckContext) -> None:
    """Seed (TLS layer): SNI must be one of the account's data endpoints or domain names."""
    sni = ctx.device.server_name
    title = "SNI is one of the account's data endpoints"
    if not sni:
        ctx.add("endpoint.sni", title, "fail", "the device config names no endpoint.host", root_cause="sni-missing")
        return
    if _is_ip_literal(sni):
        # RFC 6066 forbids an IP address as a server name, so standard TLS clients send no SNI for it
        # and AWS IoT cannot tell which endpoint (or account) the connection is for.
        ctx.add("endpoint.sni", title, "fail",
                [f"device host {sni!r} is an IP address: TLS clients send no SNI for it (RFC 6066)"],
                root_cause="sni-missing",
                remediation="Use the endpoint name as [endpoint] host (it becomes the SNI) and put the address "
                "to dial in [endpoint] connect_address.")
        return
    ats = ctx.cloud.describe_endpoint("iot:Data-ATS")
    names = {ats.lower(): "iot:Data-ATS"} if ats else {}
    domains: dict[str, dict[str, Any]] = {}
    try:
        for name in ctx.cloud.list_domain_configurations():
            desc = ctx.cloud.describe_domain_configuration(name)
            domain_name = (desc.get("domainName") or "").lower()
            if domain_name:
                domains[domain_name] = desc
                names.setdefault(domain_name, f"domain configuration {name}")
    except CloudError as exc:
        _unread(ctx, "endpoint.domains", "domain configurations readable", exc)
    kind = names.get(sni.lower())
    ctx.domain = domains.get(sni.lower())
    if kind is None:
        evidence = [f"device SNI {sni!r}", f"iot:Data-ATS is {ats!r}"]
        parts = sni.lower().split(".")
        if len(parts) > 3 and parts[1] == "iot" and ctx.region and parts[2] != ctx.region:
            evidence.append(f"the device's endpoint is in region {parts[2]}, these checks read {ctx.region}: "
                            f"pass --region {parts[2]} if that is where your authorizer lives")
        if domains:
            evidence.append("domain configurations: " + ", ".join(sorted(domains)))
        legacy = None
        try:
            legacy = ctx.cloud.describe_endpoint("iot:Data")
        except CloudError:
            pass
        if legacy and legacy.lower() == sni.lower():
            evidence.append("the SNI is the legacy iot:Data (VeriSign) endpoint")
        ctx.add("endpoint.sni", title, "fail", evidence, root_cause="sni-mismatch",
                remediation=f"Set [endpoint] host = \"{ats}\" (the address from `aws iot describe-endpoint "
                "--endpoint-type iot:Data-ATS`) or a domain configuration's name.")
        return
    ctx.add("endpoint.sni", title, "pass", f"device SNI {sni!r} is the {kind}", root_cause="sni-mismatch")
    check_domain(ctx)


# What the self-test does with transport = "auto" (selftest/steps_transport.py): MQTT only where the
# runtime sends ALPN "mqtt", else MQTT over WebSockets, which needs none. It never sends MQTT without.
AUTO_NEEDS_NO_ALPN = ("transport 'auto' sends MQTT only with ALPN 'mqtt' (CPython), else MQTT over WebSockets "
                      "(MicroPython, CircuitPython), which needs no ALPN")


def check_domain(ctx: CheckContext) -> None:
    d = ctx.domain
    transport = ctx.device.transport
    title = "endpoint accepts custom authentication for this transport"
    if d is None:
        # The default ATS endpoint decides by port + ALPN: MQTT custom auth needs ALPN "mqtt".
        if transport == "mqtt":
            ctx.add("endpoint.alpn", title, "warn",
                    ["the default iot:Data-ATS configuration picks custom auth for MQTT only with ALPN 'mqtt'",
                     f"device transport is {transport!r}; MicroPython and CircuitPython send no ALPN"],
                    root_cause="alpn-missing")
        elif transport == "auto":
            ctx.add("endpoint.alpn", title, "pass", AUTO_NEEDS_NO_ALPN, root_cause="alpn-missing")
        else:
            ctx.add("endpoint.alpn", title, "pass", f"transport {transport!r} needs no ALPN on 443",
                    root_cause="alpn-missing")
        return
    name = d.get("domainConfigurationName")
    status = d.get("domainConfigurationStatus", "ENABLED")
    auth = d.get("authenticationType", "DEFAULT")
    proto = d.get("applicationProtocol", "DEFAULT")
    evidence = [f"domain configuration {name}: status {status}, authenticationType {auth}, "
                f"applicationProtocol {proto}"]
    if status != "ENABLED":
        ctx.add("endpoint.domain", title, "fail", evidence + ["a disabled domain refuses connections"],
                root_cause="sni-mismatch",
                remediation=f"`aws iot update-domain-configuration --domain-configuration-name {name} "
                "--domain-configuration-status ENABLED`")
        return
    if auth in ("AWS_X509", "AWS_SIGV4"):
        ctx.add("endpoint.domain", title, "fail", evidence + [f"{auth} does not run custom authorizers"],
                root_cause="sni-mismatch",
                remediation="Use a domain configuration with authenticationType CUSTOM_AUTH (or DEFAULT), "
                "or point the device at the iot:Data-ATS endpoint.")
        return
    wanted = {"mqtt": "SECURE_MQTT", "wss": "MQTT_WSS"}.get(transport)
    if proto not in ("DEFAULT",) and wanted and proto != wanted:
        ctx.add("endpoint.domain", title, "fail", evidence + [f"the device uses {transport!r}, which needs {wanted}"],
                root_cause="sni-mismatch")
        return
    if proto == "DEFAULT" and auth == "DEFAULT" and transport == "mqtt":
        ctx.add("endpoint.domain", title, "warn", evidence + [
            "with DEFAULT settings MQTT custom auth needs ALPN 'mqtt', which MicroPython/CircuitPython cannot send"],
            root_cause="alpn-missing")
        return
    default_name = (d.get("authorizerConfig") or {}).get("defaultAuthorizerName")
    if default_name:
        evidence.append(f"default authorizer {default_name}, override "
                        f"{'allowed' if (d.get('authorizerConfig') or {}).get('allowAuthorizerOverride') else 'not allowed'}")
    ctx.add("endpoint.domain", title, "pass", evidence, root_cause="alpn-missing")


# --- Lambda permission and metrics --------------------------------------------------------------

def check_permission(ctx: CheckContext) -> None:
    """Seed step 3: may AWS IoT invoke the function?"""
    a, fn = ctx.authorizer, ctx.function
    assert a is not None and fn is not None
    fn_arn = fn.get("FunctionArn") or a.get("authorizerFunctionArn", "")
    auth_arn = a.get("authorizerArn") or f"arn:aws:iot:{ctx.region}:{ctx.account}:authorizer/{a['authorizerName']}"
    title = "AWS IoT may invoke the function (resource policy)"
    command = (f"`aws lambda add-permission --function-name {fn.get('FunctionName')} --principal iot.amazonaws.com "
               f"--action lambda:InvokeFunction --statement-id iot-authorizer-{a['authorizerName']} "
               f"--source-arn {auth_arn}" + (f" --source-account {ctx.account}`" if ctx.account else "`"))
    policy = ctx.cloud.get_policy(fn_arn)
    if not policy:
        ctx.add("function.permission", title, "fail", f"{fn.get('FunctionName')} has no resource-based policy",
                root_cause="lambda-permission-missing", remediation=command)
        return
    # The stand-in's own evaluator, so cloud-check and the stand-in never disagree on a policy.

    decision = may_invoke(policy, fn_arn, auth_arn, ctx.account or arn_account(fn_arn) or "")
    ctx.add("function.permission", title, "pass" if decision.allowed else "fail", f"resource policy: {decision.reason}",
            root_cause="lambda-permission-missing", remediation=None if decision.allowed else command)


def check_metrics(ctx: CheckContext) -> None:
    """Seed steps 2, 4 and 6: invocations, errors, throttles and duration over the window."""
    name = _fn_name(ctx)
    if not name:
        return
    start, end = ctx.window_end - ctx.window, ctx.window_end
    span = f"{start:%Y-%m-%d %H:%M}-{end:%H:%M} UTC"
    try:
        inv = ctx.cloud.lambda_metric(name, "Invocations", start, end, "Sum")
        err = ctx.cloud.lambda_metric(name, "Errors", start, end, "Sum")
        thr = ctx.cloud.lambda_metric(name, "Throttles", start, end, "Sum")
        dur = ctx.cloud.lambda_metric(name, "Duration", start, end, "Maximum")
    except CloudError as exc:
        _unread(ctx, "metrics.invocations", "Lambda metrics readable", exc)
        return
    invocations = int(inv or 0)
    if invocations == 0:
        ctx.add("metrics.invocations", "the function is invoked", "warn",
                [f"{name}: no Invocations {span}",
                 "if devices tried to connect then, AWS IoT stopped before the function: check the permission, "
                 "signature, token key name and authorizer name"], invocations=0)
    else:
        ctx.add("metrics.invocations", "the function is invoked", "pass", f"{name}: {invocations} Invocations {span}",
                invocations=invocations)
    errors = int(err or 0)
    if errors:
        ctx.add("metrics.errors", "no function errors", "fail", f"{name}: {errors} Errors of {invocations} "
                f"Invocations {span}", root_cause="lambda-error", errors=errors)
    else:
        ctx.add("metrics.errors", "no function errors", "pass" if invocations else "skip",
                f"{name}: no Errors {span}", root_cause="lambda-error" if invocations else None, errors=0)
    throttles = int(thr or 0)
    if throttles:
        ctx.add("metrics.throttles", "no throttled invocations", "warn",
                f"{name}: {throttles} Throttles {span}; throttled connects fail like errors", throttles=throttles,
                remediation="Raise the function's reserved concurrency or the account's Lambda concurrency quota.")
    limit_ms = effective_timeout_ms(ctx.function)
    title = f"duration under the {limit_ms / 1000:g} s limit"
    if dur is None:
        ctx.add("metrics.duration", title, "skip", f"{name}: no Duration data {span}")
    elif dur > limit_ms + TIMEOUT_SLACK_MS:
        # Only a function whose own timeout is longer than IoT's wait runs this long: it times out
        # nowhere (no timeout line, Errors stays 0), but AWS IoT refused the device at 5 s.
        ctx.add("metrics.duration", title, "fail",
                f"{name}: Duration max {dur:.0f} ms {span}: past the {limit_ms / 1000:g} s AWS IoT waits for an "
                "authorizer (the function runs on; it logs no timeout and counts no error)",
                root_cause="lambda-timeout", duration_max_ms=dur, limit_ms=limit_ms)
    elif dur >= limit_ms - TIMEOUT_SLACK_MS:
        ctx.add("metrics.duration", title, "fail",
                f"{name}: Duration max {dur:.0f} ms {span}: at the {limit_ms / 1000:g} s limit",
                root_cause="lambda-timeout", duration_max_ms=dur, limit_ms=limit_ms)
    elif dur >= min(SLOW_MS, limit_ms * 0.6):
        ctx.add("metrics.duration", title, "warn",
                f"{name}: Duration max {dur:.0f} ms {span}: close to the limit", root_cause="lambda-timeout",
                duration_max_ms=dur, limit_ms=limit_ms)
    else:
        ctx.add("metrics.duration", title, "pass", f"{name}: Duration max {dur:.0f} ms {span}",
                root_cause="lambda-timeout", duration_max_ms=dur, limit_ms=limit_ms)


def check_iot_metrics(ctx: CheckContext) -> None:
    """AWS/IoT Connection.AuthNError (connections refused at authentication: the authorizer's
    stage) and Connect.AuthError (authenticated, then CONNECT not authorized: the returned policy).
    Both are account-wide and the first also counts scanners that name the endpoint, so a count is
    a lead to follow, never proof about one device; zero rules nothing out (metrics may lag)."""
    start, end = ctx.window_end - ctx.window, ctx.window_end
    span = f"{start:%Y-%m-%d %H:%M}-{end:%H:%M} UTC"
    try:
        authn = int(ctx.cloud.iot_metric("Connection.AuthNError", start, end) or 0)
        denied = int(ctx.cloud.iot_metric("Connect.AuthError", start, end) or 0)
    except CloudError as exc:
        _unread(ctx, "metrics.iot_authn", "AWS/IoT authentication metrics readable", exc)
        return
    title = "no connections refused at authentication"
    if authn:
        ctx.add("metrics.iot_authn", title, "warn",
                [f"AWS/IoT Connection.AuthNError: {authn} {span} (every Protocol; account-wide, scanners included)",
                 "each refusal's reason is in the Connection.AuthNError log entries (see logging.events)"],
                authn_errors=authn,
                remediation="Turn on the Connection.AuthNError log entries (logging.events gives the command) and "
                "run `authprobe correlate` to see which reason refused this device.")
    else:
        ctx.add("metrics.iot_authn", title, "pass", f"AWS/IoT Connection.AuthNError: none {span}", authn_errors=0)
    title = "no CONNECT refused by the returned policy"
    if denied:
        # No root cause of its own: an account-wide count must not lean every run's diagnosis.
        ctx.add("metrics.iot_connect_auth", title, "warn",
                f"AWS/IoT Connect.AuthError: {denied} {span} (account-wide): a policy without iot:Connect for "
                "the client id refuses an authenticated connection",
                remediation=root_causes.get("policy-denies-connect").remediation, connect_auth_errors=denied)
    else:
        ctx.add("metrics.iot_connect_auth", title, "pass", f"AWS/IoT Connect.AuthError: none {span}",
                connect_auth_errors=0)


def effective_timeout_ms(function: dict[str, Any] | None) -> float:
    """Where an authorizer invocation is cut off: AWS IoT waits at most 5 s, and the function's own
    timeout (Lambda's default is 3 s) may stop it sooner; a timeout there is still a timeout, not an
    error to chase in the code."""
    own = (function or {}).get("Timeout")
    if isinstance(own, int | float) and own > 0:
        return min(AUTHORIZER_TIMEOUT_MS, own * 1000)
    return AUTHORIZER_TIMEOUT_MS


# --- logging ------------------------------------------------------------------------------------

def debug_command(client_id: str | None) -> str:
    return ("aws iot set-v2-logging-level --log-target targetType=CLIENT_ID,targetName="
            f"{client_id or 'CLIENT_ID'} --log-level DEBUG")


def check_logging(ctx: CheckContext) -> None:
    title = "AWS IoT V2 logging on (DEBUG for this client id)"
    cid = ctx.device.client_id
    try:
        options = ctx.cloud.get_v2_logging_options(verbose=True)
        levels = ctx.cloud.list_v2_logging_levels() if options else []
    except CloudError as exc:
        _unread(ctx, "logging.v2", title, exc)
        return
    check_logged_events(ctx, options)
    cmd = debug_command(cid)
    if not options or options.get("disableAllLogs"):
        ctx.add("logging.v2", title, "warn", "V2 logging is " + ("not configured" if not options else "disabled"),
                remediation="`aws iot set-v2-logging-options --role-arn ROLE_ARN --default-log-level ERROR`, "
                f"then `{cmd}` (turn it back down afterwards).", command=cmd)
        return
    default = options.get("defaultLogLevel", "ERROR")
    mine = next((t.get("logLevel") for t in levels
                 if (t.get("logTarget") or {}).get("targetType") == "CLIENT_ID"
                 and (t.get("logTarget") or {}).get("targetName") == cid), None)
    level = mine or default
    evidence = [f"default level {default}" + (f", client id {cid!r} at {mine}" if mine else "")]
    if level in ("DEBUG", "INFO"):
        ctx.add("logging.v2", title, "pass", evidence, level=level, command=cmd)
    else:
        ctx.add("logging.v2", title, "warn", evidence + [
            f"at {level} the authorizer's Connect failures for this device may not be logged"],
                remediation=f"`{cmd}` (and lower it again when done: DEBUG logs cost money).", level=level,
                command=cmd)


def check_logged_events(ctx: CheckContext, options: dict[str, Any] | None) -> None:
    """Event-level logging: whether each event type the diagnosis reads (Connect, Connection.AuthNError,
    Subscribe, Publish-In) is logged, at which level and to which log group (GetV2LoggingOptions
    eventConfigurations), with the command that turns the missing ones on."""
    title = "the event types the diagnosis reads are logged"
    evidence: list[str] = []
    missing: dict[str, str] = {}
    events: dict[str, dict[str, Any]] = {}
    for event_type in iot_logging.NEEDED:
        logging = iot_logging.effective(options, event_type)
        logged = logging.logs(iot_logging.NEEDED_LEVEL)
        events[event_type] = {"level": logging.level, "log_group": logging.log_group, "logged": logged}
        if logged:
            evidence.append(f"{event_type}: {logging.level} to {logging.log_group}")
        else:
            missing[event_type] = iot_logging.NEEDED_LEVEL
            why = " (off unless enabled per event type)" if event_type in iot_logging.OFF_UNLESS_ENABLED \
                and not logging.configured else ""
            evidence.append(f"{event_type}: not logged, level {logging.level}{why}")
    custom = sorted({e["log_group"] for e in events.values() if e["logged"]} - {iot_logging.DEFAULT_LOG_GROUP})
    if custom:
        # [I] The logging role AWS documents may write AWSIotLogsV2* only; another group needs more.
        evidence.append(f"the logging role must be allowed to write to {', '.join(custom)} (AWS's documented role "
                        f"policy covers {iot_logging.DEFAULT_LOG_GROUP}* only)")
    if not missing:
        ctx.add("logging.events", title, "pass", evidence, events=events)
        return
    command = iot_logging.set_command(options, missing)
    ctx.add("logging.events", title, "warn", evidence, events=events, command=command,
            remediation=f"`{command}` (this keeps the role, the default level and the other event types as "
            "they are; AuthNError entries name the reason a connection was refused at authentication)")


# --- replay and returned policy -----------------------------------------------------------------

def replay_request(device: DeviceSettings) -> dict[str, Any]:
    """The TestInvokeAuthorizer request for exactly what the probe sends (its own code builds the
    username / query string): WSS carries the credentials in the Upgrade, MQTT in the username."""
    req: dict[str, Any] = {}
    if device.token is not None:
        req["token"] = device.token
    if device.signature:
        req["tokenSignature"] = signing.normalise_signature(device.signature).base64
    mqtt: dict[str, Any] = {}
    if device.transport == "wss":
        if device.wss_auth == "query":
            req["httpContext"] = {"headers": {}, "queryString": "?" + device.wss_query()}
        else:
            headers = {}
            if device.authorizer:
                headers["x-amz-customauthorizer-name"] = device.authorizer
            if device.signature:
                headers["x-amz-customauthorizer-signature"] = req["tokenSignature"]
            if device.token is not None and device.token_key_name:
                headers[device.token_key_name] = device.token
            req["httpContext"] = {"headers": headers}  # queryString has a minimum length of 1
        if device.username:
            mqtt["username"] = device.username
    else:
        username = device.mqtt_username()
        if username:
            mqtt["username"] = username
    if device.password is not None:
        mqtt["password"] = device.password.encode()
    if device.client_id:
        mqtt["clientId"] = device.client_id
    if mqtt:
        req["mqttContext"] = mqtt
    if device.server_name:
        req["tlsContext"] = {"serverName": device.server_name}
    return req


def response_problems(resp: dict[str, Any]) -> list[str]:
    """Where a function's answer breaks the custom-auth response schema (DG custom-auth-lambda): the
    very rules the stand-in refuses such an answer by (authprobe.aws.authorizer_response)."""
    return validate(resp).problems


def _rejection_cause(exc: CallRejected) -> str | None:
    """The cause a TestInvokeAuthorizer error names. InvalidResponseException is AWS's documented
    answer to a function response it cannot use; its message may say why (timeout, error)."""

    named = cause_from_text(str(exc))
    if exc.code == "InvalidResponseException":
        return named if named in ("lambda-timeout", "lambda-error") else "lambda-response-invalid"
    if exc.code == "UnauthorizedException":
        return named or "lambda-permission-missing"
    return named


def check_replay(ctx: CheckContext) -> None:
    """TestInvokeAuthorizer with the device's exact credentials, then the returned policy."""
    a = ctx.authorizer
    assert a is not None
    title = "TestInvokeAuthorizer with the device's credentials"
    request = replay_request(ctx.device)
    at = time.time()
    try:
        resp = ctx.cloud.test_invoke_authorizer(a["authorizerName"], request)
    except CloudError as exc:
        replay = _record_replay(ctx, a["authorizerName"], at, _invoked_despite(exc))
        _replay_refused(ctx, title, exc)
        if ctx.results and ctx.results[-1].id == "replay.invoke":
            ctx.results[-1].data["replay"] = replay.as_dict()
        return
    replay = _record_replay(ctx, a["authorizerName"], at, True)
    _judge_replay(ctx, title, resp)
    for r in ctx.results:
        if r.id in ("replay.invoke", "replay.response"):
            r.data["replay"] = replay.as_dict()  # cloud-check --json carries it to `correlate --checks`


def _invoked_despite(exc: CloudError) -> bool | None:
    """Whether the function ran although the replay was refused: AWS answers InvalidResponse only
    after the function answered (badly or not in time); the other refusals come before it."""
    if isinstance(exc, NotFound):
        return False
    if isinstance(exc, CallRejected):
        if exc.code == "InvalidResponseException":
            return True
        if exc.code in ("InvalidRequestException", "UnauthorizedException", "ResourceNotFoundException"):
            return False
    return None


def _record_replay(ctx: CheckContext, authorizer: str, at: float, invoked: bool | None) -> Replay:
    replay = Replay(int(at * 1000), int(time.time() * 1000), authorizer, ctx.device.client_id, invoked)
    ctx.replays.append(replay)
    if ctx.on_replay is not None:
        ctx.on_replay(replay)
    return replay


def _judge_replay(ctx: CheckContext, title: str, resp: dict[str, Any]) -> None:
    if not resp.get("isAuthenticated"):
        ctx.add("replay.invoke", title, "fail", f"the function answered isAuthenticated: false (principalId "
                f"{resp.get('principalId')!r})", root_cause="authorizer-denied")
        return
    problems = response_problems(resp)
    if problems:
        ctx.add("replay.response", "the function's response follows the schema", "fail", problems,
                root_cause="lambda-response-invalid")
        return
    docs = resp.get("policyDocuments") or []
    ctx.returned_policies = docs
    ctx.add("replay.invoke", title, "pass", [f"isAuthenticated: true, principalId {resp.get('principalId')!r}, "
            f"{len(docs)} policy document(s)"], root_cause="authorizer-denied")
    check_returned_policy(ctx)


def _replay_refused(ctx: CheckContext, title: str, exc: CloudError) -> None:
    """An error answer to the replay. Its message may quote what was sent (a validation error
    names the offending value), so the device's secrets are masked out of it."""

    d = ctx.device
    normalised = signing.normalise_signature(d.signature).base64 if d.signature else None
    message = scrub(str(exc), (d.token, d.password, d.signature, normalised,
                               signing.percent_encode(normalised) if normalised else None))
    if isinstance(exc, NotFound):
        ctx.add("replay.invoke", title, "fail", message, root_cause="authorizer-unknown")
        return
    if not isinstance(exc, CallRejected):
        _unread(ctx, "replay.invoke", title, message)
        return
    cause = _rejection_cause(exc)
    evidence = [message]
    status = "fail" if cause else "warn"
    if exc.code == "UnauthorizedException":
        # 401 is also what IAM answers when this identity may not call TestInvokeAuthorizer.
        status = "warn"
        evidence.append("UnauthorizedException: AWS IoT may not invoke the function, or this identity may "
                        "not call iot:TestInvokeAuthorizer; the permission check decides")
    ctx.add("replay.invoke", title, status, evidence, root_cause=cause, code=exc.code)


def check_returned_policy(ctx: CheckContext) -> None:
    """Seed step 5: does the returned policy allow what the device does? (the stand-in's evaluator)"""

    docs = ctx.returned_policies or []
    cid = ctx.device.client_id
    context = iot_policy.Context(client_id=cid, account=ctx.account or "111111111111",
                                 region=ctx.region or "us-east-1")
    wanted = [("iot:Connect", cid, "policy-denies-connect")]
    if ctx.device.topic:
        wanted += [("iot:Subscribe", ctx.device.topic, "policy-denies-subscribe"),
                   ("iot:Publish", ctx.device.topic, "policy-denies-publish"),
                   ("iot:Receive", ctx.device.topic, "policy-denies-receive")]
    for action, name, cause in wanted:
        check_id = "policy." + action.split(":")[1].lower()
        if not name:
            ctx.add(check_id, f"returned policy allows {action}", "skip", "the device config names no client id")
            continue
        decision = iot_policy.is_allowed(docs, action, name, context)
        status = "pass" if decision.allowed else "fail"
        ctx.add(check_id, f"returned policy allows {action}", status, [decision.explain()] + decision.notes,
                root_cause=cause, resource=decision.resource)


# --- driver -------------------------------------------------------------------------------------

def run_checks(ctx: CheckContext) -> list[CheckResult]:
    """Every cloud-check check for one device: authorizer, function, permission, metrics, logging,
    the TestInvokeAuthorizer replay and the returned policy. A check that cannot read its part of the
    cloud is a skip with the reason, and nothing already found is lost.

    Args:
        ctx: the cloud, the device's settings (DeviceSettings) and the options (replay, window).

    Raises CloudError when nothing at all can be read (no credentials)."""
    _guard(check_endpoint, "endpoint.sni", "SNI is one of the account's data endpoints")(ctx)
    try:
        check_authorizer(ctx)
    except CloudError as exc:
        if all(r.data.get("unread") for r in ctx.results):
            raise  # nothing could be read at all (no credentials, wrong region...): one clear message
        _unread(ctx, "authorizer.exists", "authorizer exists", exc)
    if ctx.authorizer is None:
        check_signature_encoding(ctx)
        _guard(check_iot_metrics, "metrics.iot_authn", "AWS/IoT authentication metrics")(ctx)
        _guard(check_logging, "logging.v2", "AWS IoT V2 logging")(ctx)
        return ctx.results
    for fn, cid, title in (
        (check_authorizer_status, "authorizer.status", "authorizer is ACTIVE"),
        (check_token_key_name, "authorizer.token_key_name", "token key name matches"),
        (check_signing, "signature.verifies", "signature"),
        (check_signature_encoding, "signature.urlencoded", "signature percent-encoded"),
        (check_function, "function.exists", "authorizer's Lambda function exists"),
    ):
        _guard(fn, cid, title)(ctx)
    if ctx.function is not None:
        _guard(check_permission, "function.permission", "AWS IoT may invoke the function")(ctx)
    _guard(check_metrics, "metrics.invocations", "Lambda metrics")(ctx)
    _guard(check_iot_metrics, "metrics.iot_authn", "AWS/IoT authentication metrics")(ctx)
    _guard(check_logging, "logging.v2", "AWS IoT V2 logging")(ctx)
    if ctx.replay:
        _guard(check_replay, "replay.invoke", "TestInvokeAuthorizer")(ctx)
    return ctx.results


def _unread(ctx: CheckContext, check_id: str, title: str, exc: Exception | str) -> None:
    # A warning, not a skip: a check that could not look must not let the verdict read "pass".
    ctx.add(check_id, title, "warn", f"could not read: {exc}", unread=True)


def _guard(fn, check_id: str, title: str):
    def run(ctx: CheckContext) -> None:
        try:
            fn(ctx)
        except CloudError as exc:
            _unread(ctx, check_id, title, exc)
    return run


def overall(results: list[CheckResult]) -> str:
    statuses = {r.status for r in results}
    return "fail" if "fail" in statuses else "warn" if "warn" in statuses else "pass"
