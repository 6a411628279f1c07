"""The stand-in's TOML configuration (keys are a contract, see issue 3 and examples/emulator.toml).

Every problem in a file is collected and reported in one ConfigError, one line per problem; paths
are relative to the config file."""

from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from authprobe.aws import iot_logging
from authprobe.config_text import parse_toml, read_bytes
from authprobe.errors import ConfigError

# AWS IoT waits at most 5 s for an authorizer function (DG config-custom-auth.html), whatever the
# function's own timeout; Lambda allows that up to 1,800 s (BOTO lambda 1.44.8; older pages say 900).
# A function with a longer timeout runs on after IoT gave up, writes no timeout line and counts no
# error (docs/aws-iot-now.md §6). Smaller values keep tests of the timeout path fast.
IOT_AUTHORIZER_WAIT_S = 5.0
LAMBDA_TIMEOUT_LIMIT_S = 5.0   # the stand-in's default function timeout (Lambda's own default is 3 s)
LAMBDA_MAX_TIMEOUT_S = 1800.0
# BOTO service-2.json patterns for the names IoT accepts.
_AUTHORIZER_NAME = re.compile(r"[\w=,@-]{1,128}")
_TOKEN_KEY_NAME = re.compile(r"[a-zA-Z0-9_-]{1,128}")
_KEY_NAME = re.compile(r"[a-zA-Z0-9:_-]+")
_FUNCTION_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_HANDLER = re.compile(r"(?P<file>.+\.py):(?P<func>[A-Za-z_][A-Za-z0-9_]*)")
# Endpoint and domain names go into the server certificate and are matched against SNI: DNS names
# in ASCII (an internationalised name is given in its xn-- form, as AWS and X.509 want it).
_DNS_NAME = re.compile(r"(?=.{1,253}\.?$)(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?",
                       re.ASCII)
AUTH_TYPES = ("CUSTOM_AUTH_X509", "CUSTOM_AUTH", "AWS_X509", "AWS_SIGV4", "DEFAULT")
APP_PROTOCOLS = ("SECURE_MQTT", "MQTT_WSS", "HTTPS", "DEFAULT")
LOG_LEVELS = ("DEBUG", "INFO", "WARN", "ERROR", "DISABLED")
LOG_FORMATS = ("Text", "JSON")  # BOTO lambda LogFormat


@dataclass
class FunctionConfig:
    name: str
    handler_file: Path
    handler_function: str
    handler: str  # as written, "file.py:function"
    resource_policy: dict | None  # the policy document; None: IoT may not invoke it
    timeout_s: float = LAMBDA_TIMEOUT_LIMIT_S
    memory_mb: int = 128
    reserved_concurrency: int | None = None  # Lambda throttles beyond it; 0 throttles every call
    log_format: str = "Text"  # LoggingConfig.LogFormat: "Text" or "JSON" (system lines as JSON events)


@dataclass
class AuthorizerConfig:
    name: str
    function: str
    token_key_name: str | None
    signing_disabled: bool
    public_keys: dict[str, rsa.RSAPublicKey]
    public_keys_pem: dict[str, str]
    status: str = "ACTIVE"
    enable_caching_for_http: bool = False


@dataclass
class DomainConfig:
    key: str
    name: str
    authentication_type: str = "DEFAULT"
    application_protocol: str = "DEFAULT"
    default_authorizer: str | None = None
    allow_authorizer_override: bool = False
    status: str = "ENABLED"


@dataclass
class EmulatorConfig:
    path: Path | None
    account: str
    region: str
    endpoint: str
    listen: tuple[str, int]
    listen_8883: tuple[str, int] | None
    state_dir: Path
    default_authorizer: str | None
    broker: str
    log_level: str = "DEBUG"  # the default level ([logging] default_level, or the older log_level)
    # [logging] delivery_delay_s: records become visible this long after their event, as CloudWatch
    # delivers AWS IoT's and Lambda's logs late (the host's `local:` backend honours it).
    delivery_delay_s: float = 0.0
    functions: dict[str, FunctionConfig] = field(default_factory=dict)
    authorizers: dict[str, AuthorizerConfig] = field(default_factory=dict)
    domains: dict[str, DomainConfig] = field(default_factory=dict)
    # Settings the stand-in does not know and ignores (a typo such as `stauts`): said, not fatal.
    warnings: list[str] = field(default_factory=list)
    # GetV2LoggingOptions as the stand-in's account answers it (without roleArn): what it logs where.
    logging: dict[str, Any] = field(default_factory=lambda: {"defaultLogLevel": "DEBUG", "disableAllLogs": False})

    def function_arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{name}"

    def authorizer_arn(self, name: str) -> str:
        return f"arn:aws:iot:{self.region}:{self.account}:authorizer/{name}"

    def server_names(self) -> list[str]:
        return [self.endpoint] + [d.name for d in self.domains.values()]

    def domain_for(self, server_name: str | None) -> DomainConfig | None:
        if server_name is None:
            return None
        for d in self.domains.values():
            if d.name.lower() == server_name.lower():
                return d
        return None


def parse_address(value: Any, key: str, problems: list[str]) -> tuple[str, int] | None:
    if not isinstance(value, str) or ":" not in value:
        problems.append(f"{key} must be \"HOST:PORT\" (got {value!r})")
        return None
    host, _, port = value.rpartition(":")
    try:
        number = int(port)
        if not 0 <= number <= 65535:
            raise ValueError
    except ValueError:
        problems.append(f"{key}: port {port!r} is not a number 0-65535")
        return None
    return host.strip("[]") or "127.0.0.1", number


def _load_policy(path: Path, where: str, problems: list[str]) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        problems.append(f"{where}: cannot read {path}: {exc.strerror or exc}")
        return None
    except (ValueError, RecursionError) as exc:  # ValueError: also text that is not UTF-8
        problems.append(f"{where}: {path} is not JSON: {exc}")
        return None
    # Accept the GetPolicy response shape too: {"Policy": "<json string>", ...}.
    if isinstance(data, dict) and isinstance(data.get("Policy"), str):
        try:
            data = json.loads(data["Policy"])
        except (ValueError, RecursionError) as exc:
            problems.append(f"{where}: the Policy string in {path} is not JSON: {exc}")
            return None
    if not isinstance(data, dict) or "Statement" not in data:
        problems.append(f"{where}: {path} is not a resource policy (no Statement)")
        return None
    return data


def _load_public_key(path: Path, where: str, problems: list[str]) -> tuple[rsa.RSAPublicKey, str] | None:
    try:
        pem = path.read_bytes()
    except OSError as exc:
        problems.append(f"{where}: cannot read public key {path}: {exc.strerror or exc}")
        return None
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        problems.append(f"{where}: {path} is not a PEM public key (expected -----BEGIN PUBLIC KEY-----)")
        return None
    if not isinstance(key, rsa.RSAPublicKey):
        problems.append(f"{where}: {path} is not an RSA key; AWS IoT token signing uses RSA")
        return None
    if key.key_size < 2048:
        problems.append(f"{where}: {path} is a {key.key_size}-bit key; AWS IoT requires at least 2048 bits")
        return None
    return key, pem.decode("utf-8", errors="replace")


def _table(data: dict, key: str, problems: list[str]) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        problems.append(f"[{key}] must be a table of tables")
        return {}
    return value


def _bool(section: dict, key: str, default: bool, where: str, problems: list[str]) -> bool:
    value = section.get(key, default)
    if not isinstance(value, bool):
        problems.append(f"{where}.{key} must be true or false (got {value!r})")
        return default
    return value


# The settings each kind of section takes; anything else in one is ignored, with a warning.
SECTION_KEYS = {
    "functions": ("handler", "resource_policy", "timeout_s", "reserved_concurrency", "memory_mb", "log_format"),
    "authorizers": ("function", "function_missing_ok", "signing_disabled", "token_key_name", "public_keys", "status",
                    "enable_caching_for_http"),
    "domains": ("name", "authentication_type", "application_protocol", "default_authorizer",
                "allow_authorizer_override", "status"),
}


def _unknown_settings(kind: str, name: str, section: dict, warnings: list[str]) -> None:
    known = SECTION_KEYS[kind]
    for key in section:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(known)}"
            warnings.append(f"[{kind}.{name}].{key}: unknown setting, ignored ({hint})")


def _delivery_delay(section: dict, problems: list[str]) -> float:
    delay = section.get("delivery_delay_s", 0)
    if not isinstance(delay, int | float) or isinstance(delay, bool) or not 0 <= delay <= 3600:
        problems.append(f"[logging].delivery_delay_s must be a number of seconds from 0 to 3600 (got {delay!r})")
        return 0.0
    return float(delay)


def config_from_dict(data: dict, base_dir: Path, path: Path | None = None) -> EmulatorConfig:
    """Build and check a config from parsed TOML; ConfigError lists every problem found, and the
    config's `warnings` every unknown setting inside a section (ignored, as AWS would never see it)."""
    problems: list[str] = []
    warnings: list[str] = []
    base_dir = Path(base_dir)

    def rel(p: str, where: str) -> Path | None:
        """A path from the file, relative to it; None (and a problem) when it cannot be a path."""
        if "\x00" in p:
            problems.append(f"{where}: the path {p!r} contains a NUL character")
            return None
        try:
            q = Path(p).expanduser()
        except RuntimeError:
            problems.append(f"{where}: there is no home directory for {p.split('/')[0]!r}; give the full path")
            return None
        return (q if q.is_absolute() else (base_dir / q)).resolve()

    known = {"account", "region", "endpoint", "listen", "listen_8883", "state_dir", "default_authorizer",
             "broker", "log_level", "logging", "functions", "authorizers", "domains"}
    for key in data:
        if key not in known:
            problems.append(f"unknown key {key!r} (known: {', '.join(sorted(known))})")

    account = str(data.get("account", "111111111111"))
    if not re.fullmatch(r"\d{12}", account):
        problems.append(f"account must be 12 digits (got {account!r})")
    region = str(data.get("region", "us-east-1"))
    endpoint = data.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        problems.append("endpoint is missing (e.g. \"a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com\")")
        endpoint = ""
    elif not _DNS_NAME.fullmatch(endpoint):
        problems.append(f"endpoint {endpoint!r} is not a DNS name (ASCII letters, digits, '-' and '.'; "
                        f"an internationalised name in its xn-- form)")
    listen = parse_address(data.get("listen", "127.0.0.1:8443"), "listen", problems)
    listen_8883 = parse_address(data["listen_8883"], "listen_8883", problems) if "listen_8883" in data else None
    state_dir = rel(str(data.get("state_dir", ".authprobe/emulator")), "state_dir") or base_dir
    broker = str(data.get("broker", "embedded"))
    if broker != "embedded" and not re.fullmatch(r"mqtt://[^:/]+:\d+/?", broker):
        problems.append(f"broker must be \"embedded\" or \"mqtt://HOST:PORT\" (got {broker!r})")
    log_level = str(data.get("log_level", "DEBUG")).upper()
    if log_level not in LOG_LEVELS:
        problems.append(f"log_level must be one of {', '.join(LOG_LEVELS)} (got {log_level!r})")
    logging: dict[str, Any] = {"defaultLogLevel": log_level, "disableAllLogs": log_level == "DISABLED"}
    section = data.get("logging", {})
    if not isinstance(section, dict):
        problems.append("[logging] must be a table (default_level, disable_all, events, delivery_delay_s)")
        section = {}
    if section:
        if "log_level" in data and "default_level" in section:
            problems.append("log_level and [logging] both set the default level: keep [logging] default_level")
        logging = _logging(section, log_level, problems, warnings)
        log_level = logging["defaultLogLevel"]

    delivery_delay_s = _delivery_delay(section, problems)

    functions: dict[str, FunctionConfig] = {}
    for name, section in _table(data, "functions", problems).items():
        where = f"[functions.{name}]"
        if not isinstance(section, dict):
            problems.append(f"{where} must be a table")
            continue
        _unknown_settings("functions", name, section, warnings)
        if not _FUNCTION_NAME.fullmatch(name):
            problems.append(f"{where}: a Lambda function name is 1-64 letters, digits, '-' or '_'")
        handler = section.get("handler")
        m = _HANDLER.fullmatch(handler) if isinstance(handler, str) else None
        if m is None:
            problems.append(f"{where}.handler must be \"path/to/file.py:function\" (got {handler!r})")
            continue
        handler_file = rel(m.group("file"), f"{where}.handler")
        if handler_file is None:
            continue
        if not handler_file.is_file():
            problems.append(f"{where}.handler: {handler_file} does not exist")
        policy = None
        if "resource_policy" in section:
            policy_path = rel(str(section["resource_policy"]), f"{where}.resource_policy")
            if policy_path is not None:
                policy = _load_policy(policy_path, f"{where}.resource_policy", problems)
        timeout = section.get("timeout_s", LAMBDA_TIMEOUT_LIMIT_S)
        if (not isinstance(timeout, int | float) or isinstance(timeout, bool) or not math.isfinite(timeout)
                or timeout <= 0):
            problems.append(f"{where}.timeout_s must be a positive number of seconds")
            timeout = LAMBDA_TIMEOUT_LIMIT_S
        elif timeout > LAMBDA_MAX_TIMEOUT_S:
            problems.append(f"{where}.timeout_s = {timeout}: Lambda allows at most {LAMBDA_MAX_TIMEOUT_S:g} s")
            timeout = LAMBDA_TIMEOUT_LIMIT_S
        elif timeout > IOT_AUTHORIZER_WAIT_S:
            warnings.append(f"{where}.timeout_s = {timeout:g}: AWS IoT stops waiting for an authorizer after "
                            f"{IOT_AUTHORIZER_WAIT_S:g} s; a slower run is refused while the function runs on")
        reserved = section.get("reserved_concurrency")
        if reserved is not None and (not isinstance(reserved, int) or isinstance(reserved, bool) or reserved < 0):
            problems.append(f"{where}.reserved_concurrency must be a whole number >= 0")
            reserved = None
        memory = section.get("memory_mb", 128)
        if not isinstance(memory, int) or isinstance(memory, bool) or memory <= 0:
            problems.append(f"{where}.memory_mb must be a whole number of MB (got {memory!r})")
            memory = 128
        log_format = section.get("log_format", "Text")
        if log_format not in LOG_FORMATS:
            problems.append(f"{where}.log_format must be \"Text\" or \"JSON\" (got {log_format!r})")
            log_format = "Text"
        functions[name] = FunctionConfig(name, handler_file, m.group("func"), handler, policy, float(timeout),
                                         memory, reserved, log_format)

    authorizers: dict[str, AuthorizerConfig] = {}
    for name, section in _table(data, "authorizers", problems).items():
        where = f"[authorizers.{name}]"
        if not isinstance(section, dict):
            problems.append(f"{where} must be a table")
            continue
        _unknown_settings("authorizers", name, section, warnings)
        if not _AUTHORIZER_NAME.fullmatch(name):
            problems.append(f"{where}: an authorizer name is 1-128 of letters, digits, _ = , @ -")
        function = section.get("function")
        if not isinstance(function, str):
            problems.append(f"{where}.function is missing")
            function = ""
        elif function not in _table(data, "functions", []):
            # A missing function is a state AWS allows (the ARN may point nowhere); the stand-in
            # reproduces it only when asked explicitly, so a typo is not silently a broken setup.
            if not section.get("function_missing_ok", False):
                problems.append(f"{where}.function = {function!r}: no [functions.{function}] "
                                f"(set function_missing_ok = true to emulate a deleted function)")
        signing_disabled = _bool(section, "signing_disabled", False, where, problems)
        token_key_name = section.get("token_key_name")
        if token_key_name is not None and not (isinstance(token_key_name, str)
                                               and _TOKEN_KEY_NAME.fullmatch(token_key_name)):
            problems.append(f"{where}.token_key_name must be 1-128 of letters, digits, _ or -")
            token_key_name = None
        if not signing_disabled and token_key_name is None:
            problems.append(f"{where}: token_key_name is required when signing is enabled")
        keys: dict[str, rsa.RSAPublicKey] = {}
        pems: dict[str, str] = {}
        raw_keys = section.get("public_keys", {})
        if not isinstance(raw_keys, dict):
            problems.append(f"{where}.public_keys must be a table of name = \"file.pem\"")
            raw_keys = {}
        for key_name, key_path in raw_keys.items():
            if not _KEY_NAME.fullmatch(key_name):
                problems.append(f"{where}.public_keys: key name {key_name!r} has characters IoT refuses")
            key_file = rel(str(key_path), f"{where}.public_keys.{key_name}")
            loaded = _load_public_key(key_file, f"{where}.public_keys.{key_name}", problems) if key_file else None
            if loaded:
                keys[key_name], pems[key_name] = loaded
        if not signing_disabled and not raw_keys:
            problems.append(f"{where}: signing is enabled but public_keys is empty")
        status = str(section.get("status", "ACTIVE")).upper()
        if status not in ("ACTIVE", "INACTIVE"):
            problems.append(f"{where}.status must be ACTIVE or INACTIVE (got {status!r})")
        authorizers[name] = AuthorizerConfig(
            name, function, token_key_name, signing_disabled, keys, pems, status,
            _bool(section, "enable_caching_for_http", False, where, problems))

    default_authorizer = data.get("default_authorizer")
    if default_authorizer is not None and (not isinstance(default_authorizer, str)
                                           or default_authorizer not in authorizers):
        problems.append(f"default_authorizer = {default_authorizer!r}: no [authorizers.{default_authorizer}]")

    domains: dict[str, DomainConfig] = {}
    for key, section in _table(data, "domains", problems).items():
        where = f"[domains.{key}]"
        if not isinstance(section, dict):
            problems.append(f"{where} must be a table")
            continue
        _unknown_settings("domains", key, section, warnings)
        name = section.get("name")
        if not isinstance(name, str) or not name:
            problems.append(f"{where}.name (the domain name devices send as SNI) is missing")
            continue
        if not _DNS_NAME.fullmatch(name):
            problems.append(f"{where}.name {name!r} is not a DNS name (ASCII letters, digits, '-' and '.'; "
                            f"an internationalised name in its xn-- form)")
        auth_type = str(section.get("authentication_type", "DEFAULT")).upper()
        if auth_type not in AUTH_TYPES:
            problems.append(f"{where}.authentication_type must be one of {', '.join(AUTH_TYPES)}")
        protocol = str(section.get("application_protocol", "DEFAULT")).upper()
        if protocol not in APP_PROTOCOLS:
            problems.append(f"{where}.application_protocol must be one of {', '.join(APP_PROTOCOLS)}")
        domain_default = section.get("default_authorizer")
        if domain_default is not None and (not isinstance(domain_default, str) or domain_default not in authorizers):
            problems.append(f"{where}.default_authorizer = {domain_default!r}: no [authorizers.{domain_default}]")
        domains[key] = DomainConfig(key, name, auth_type, protocol, domain_default,
                                    _bool(section, "allow_authorizer_override", False, where, problems),
                                    str(section.get("status", "ENABLED")).upper())

    if problems:
        origin = str(path) if path else "emulator config"
        raise ConfigError(f"{origin}: {len(problems)} problem(s):\n  - " + "\n  - ".join(problems))
    assert listen is not None
    return EmulatorConfig(path, account, region, endpoint, listen, listen_8883, state_dir,
                          default_authorizer, broker, log_level, delivery_delay_s, functions, authorizers, domains,
                          warnings, logging)


_LOGGING_KEYS = ("default_level", "disable_all", "events", "delivery_delay_s")


def _logging(section: dict, default_level: str, problems: list[str], warnings: list[str]) -> dict[str, Any]:
    """[logging] as GetV2LoggingOptions would answer it: default_level (defaultLogLevel; without it,
    the top-level log_level), disable_all (disableAllLogs), and [logging.events."<eventType>"] with
    level (logLevel) and destination (logDestination, a log group name). delivery_delay_s is not
    AWS's (see _delivery_delay)."""
    for key in section:
        if key not in _LOGGING_KEYS:
            problems.append(f"[logging]: unknown key {key!r} (known: {', '.join(_LOGGING_KEYS)})")
    level = str(section.get("default_level", default_level)).upper()
    if level not in LOG_LEVELS:
        problems.append(f"[logging].default_level must be one of {', '.join(LOG_LEVELS)} (got {level!r})")
        level = "ERROR"
    options: dict[str, Any] = {"defaultLogLevel": level,
                               "disableAllLogs": _bool(section, "disable_all", level == "DISABLED" and
                                                       "default_level" not in section, "[logging]", problems)}
    events = section.get("events", {})
    if not isinstance(events, dict):
        problems.append('[logging.events] must be tables named by event type, e.g. [logging.events."Connect"]')
        events = {}
    configurations = []
    for event_type, conf in events.items():
        where = f'[logging.events."{event_type}"]'
        if not isinstance(conf, dict):
            problems.append(f"{where} must be a table with level and/or destination")
            continue
        if not 1 <= len(event_type) <= 512:
            problems.append(f"{where}: an event type is 1-512 characters")
        elif event_type not in iot_logging.EVENT_TYPES:
            close = difflib.get_close_matches(event_type, iot_logging.EVENT_TYPES, n=1)
            warnings.append(f"{where}: not an event type AWS IoT is known to log"
                            + (f" (did you mean {close[0]}?)" if close else ""))
        for key in conf:
            if key not in ("level", "destination"):
                warnings.append(f"{where}.{key}: unknown setting, ignored (known: level, destination)")
        entry: dict[str, Any] = {"eventType": event_type}
        if "level" in conf:
            event_level = str(conf["level"]).upper()
            if event_level not in LOG_LEVELS:
                problems.append(f"{where}.level must be one of {', '.join(LOG_LEVELS)} (got {conf['level']!r})")
            entry["logLevel"] = event_level
        if "destination" in conf:
            group = conf["destination"]
            if not isinstance(group, str) or not iot_logging.LOG_GROUP_NAME.fullmatch(group):
                problems.append(f"{where}.destination must be a log group name: 1-512 of letters, digits, "
                                f"'.', '-', '_', '/', '#' (got {group!r})")
            entry["logDestination"] = group
        configurations.append(entry)
    if configurations:
        options["eventConfigurations"] = configurations
    return options


def load_config(path: str | Path) -> EmulatorConfig:
    """Read and check an emulator TOML file (see examples/emulator.toml)."""
    path = Path(path)
    data = parse_toml(read_bytes(path, "emulator config"), str(path))
    return config_from_dict(data, path.resolve().parent, path.resolve())
