"""device.toml on the host: load it, lint it with the very code the board runs (selftest.config),
and turn it into the files each runtime reads from flash.

    cfg = load("device.toml")                    # ConfigError names every problem
    files = device_files(cfg, "micropython")     # {"authprobe.json": ..., "authprobe_ca.der": ...}
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

from authprobe import bundled
from authprobe.config_text import parse_toml, read_bytes
from authprobe.errors import ConfigError
from selftest import config as lint_rules

# The board runtimes a device config is written for (board definitions, the virtual board and the
# drill take this list too).
RUNTIMES = ("micropython", "circuitpython")

FIRMWARE = bundled.FIRMWARE             # main.py, code.py
CONFIG_FILE = "authprobe.json"          # MicroPython reads this (firmware/main.py)
SETTINGS_FILE = "settings.toml"         # CircuitPython reads this through os.getenv (firmware/code.py)
CA_DER = "authprobe_ca.der"
CA_PEM = "authprobe_ca.pem"


def problems(cfg: Any, base: Path | None = None) -> list[tuple[int, str, str, str]]:
    """Lint problems (code, status, field, message): the device's rules plus the host's CA check."""
    found = lint_rules.lint(cfg)
    ca = lint_rules.get(cfg, "endpoint", "ca") if isinstance(cfg, dict) else None
    if isinstance(ca, str) and ca and "\x00" not in ca:   # a NUL is the lint's own problem
        why = _ca_problem(ca, base)
        if why:
            found.append((114, lint_rules.FAIL, "endpoint.ca", why))
    return found


def _resolve(path: str, base: Path | None) -> Path:
    """The path as written, ~ expanded and relative to `base`; RuntimeError for ~user with no home."""
    p = Path(path).expanduser()
    return p if p.is_absolute() or base is None else base / p


def _ca_problem(ca: str, base: Path | None) -> str | None:
    try:
        path = _resolve(ca, base)
    except RuntimeError:
        return f"endpoint.ca {ca!r}: there is no home directory for {ca.split('/')[0]!r}; give the full path"
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"endpoint.ca {str(path)!r} cannot be read ({exc.strerror or exc}); name the PEM file of the CA " \
               "that signs your endpoint (or leave ca out for AWS)"
    try:
        certs = _certificates(data)
    except ValueError:
        return f"endpoint.ca {str(path)!r} holds no PEM or DER certificate"
    if not certs:
        return f"endpoint.ca {str(path)!r} holds no certificate"
    return None


# Certificates are only framed here, not parsed: the board's TLS stack does the parsing, and `flash`
# should not spend the 60 ms importing a full X.509 parser costs on every deploy.
_PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.DOTALL)


def _der_element(data: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start, end) of the content of the DER element at `at`; ValueError if it is cut short."""
    if at + 2 > len(data):
        raise ValueError("DER element cut short")
    tag, first, at = data[at], data[at + 1], at + 2
    if first & 0x80:
        size = first & 0x7F
        if not 0 < size <= 4 or at + size > len(data):
            raise ValueError("bad DER length")
        length, at = int.from_bytes(data[at:at + size], "big"), at + size
    else:
        length = first
    if at + length > len(data):
        raise ValueError("DER element runs past the data")
    return tag, at, at + length


def _is_certificate(der: bytes) -> bool:
    """An X.509 certificate's shape: SEQUENCE { tbsCertificate SEQUENCE, signatureAlgorithm
    SEQUENCE, signatureValue BIT STRING } and nothing after it."""
    try:
        tag, at, end = _der_element(der, 0)
        if tag != 0x30 or end != len(der):
            return False
        tags = []
        while at < end:
            child, _, at = _der_element(der, at)
            tags.append(child)
        return tags == [0x30, 0x30, 0x03]
    except ValueError:
        return False


def _certificates(data: bytes) -> list[bytes]:
    """The DER certificates of a PEM bundle or of one DER certificate; ValueError when it is neither."""
    blocks = _PEM_CERTIFICATE.findall(data)
    ders = [base64.b64decode(b"".join(block.split()), validate=True) for block in blocks] if blocks else [data]
    if not all(_is_certificate(der) for der in ders):
        raise ValueError("not a certificate")
    return ders


def _pem(der: bytes) -> bytes:
    """One certificate as PEM, in the layout openssl and cryptography write (64 columns)."""
    text = base64.b64encode(der)
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    return b"-----BEGIN CERTIFICATE-----\n" + b"\n".join(lines) + b"\n-----END CERTIFICATE-----\n"


def ca_certificates(cfg: dict[str, Any]) -> list[bytes]:
    """The DER certificates of the config's endpoint.ca (none without one)."""
    ca = lint_rules.get(cfg, "endpoint", "ca")
    if not ca:
        return []
    return _certificates(Path(ca).read_bytes())


def format_problems(path: str, found: list[tuple[int, str, str, str]]) -> str:
    """The problems as the board lists them, failing ones first; the count says how many of each."""
    failing = sum(1 for p in found if p[1] == lint_rules.FAIL)
    warning = len(found) - failing
    counts = [f"{n} {word}{'' if n == 1 else 's'}" for n, word in ((failing, "failing"), (warning, "warning"))
              if n]
    lines = [f"{path}: {len(found)} problem{'' if len(found) == 1 else 's'} ({', '.join(counts)})"]
    found = sorted(found, key=lambda p: p[1] != lint_rules.FAIL)
    for code, status, field, msg in found:
        lines.append(f"  - [{status} {code}] {field or '(file)'}: {msg}")
    return "\n".join(lines)


def parse(text: str | bytes, path: str = "device.toml", base: Path | None = None) -> dict[str, Any]:
    """A config from TOML text (or the file's bytes); raises ConfigError naming every failing problem."""
    cfg = parse_toml(text, path)
    found = problems(cfg, base)
    if any(p[1] == lint_rules.FAIL for p in found):
        raise ConfigError(format_problems(path, found))
    ca = lint_rules.get(cfg, "endpoint", "ca")
    if ca:
        cfg["endpoint"]["ca"] = str(_resolve(ca, base))
    return cfg


def load(path: str | Path) -> dict[str, Any]:
    """The nested config dict of a device.toml; raises ConfigError naming every problem."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file {str(p)!r} not found; `authprobe init` writes one to fill in")
    return parse(read_bytes(p, "config file"), str(p), p.parent)


def warnings(cfg: dict[str, Any]) -> list[tuple[int, str, str, str]]:
    return [p for p in problems(cfg) if p[1] == lint_rules.WARN]


def device_files(cfg: dict[str, Any], runtime: str = "micropython") -> dict[str, bytes]:
    """The files the board reads, next to the selftest package: config + CA for that runtime."""
    if runtime not in RUNTIMES:
        raise ConfigError(f"runtime {runtime!r} has no device files; use one of {', '.join(RUNTIMES)}")
    certs = ca_certificates(cfg)
    files: dict[str, bytes] = {}
    board_cfg = json.loads(json.dumps(cfg))
    if runtime == "micropython":
        if certs:
            # One DER certificate is what MicroPython's cadata takes; several travel as PEM and are
            # split on the board.
            if len(certs) == 1:
                files[CA_DER] = certs[0]
                board_cfg["endpoint"]["ca"] = CA_DER
            else:
                files[CA_PEM] = b"".join(_pem(c) for c in certs)
                board_cfg["endpoint"]["ca"] = CA_PEM
        files[CONFIG_FILE] = json.dumps(board_cfg, separators=(",", ":"), sort_keys=True).encode()
        return files
    if certs:
        # CircuitPython's load_verify_locations(cadata=) takes one PEM certificate.
        files[CA_PEM] = _pem(certs[0])
        board_cfg["endpoint"]["ca"] = CA_PEM
    files[SETTINGS_FILE] = settings_toml(board_cfg).encode()
    return files


def settings_key(section: str, key: str) -> str:
    return f"AUTHPROBE_{section}_{key}".upper()


def settings_toml(cfg: dict[str, Any]) -> str:
    """CircuitPython's settings.toml: flat keys, strings and integers only (booleans as 0/1), plus
    the standard CIRCUITPY_WIFI_* keys so the board joins the network at boot."""
    lines = ["# written by authprobe from device.toml; read by code.py through os.getenv"]
    for section, key, _ in lint_rules.FIELDS:
        sec = cfg.get(section)
        value = sec.get(key) if isinstance(sec, dict) else None
        if value is None:
            continue
        if isinstance(value, bool):
            value = int(value)
        lines.append(f"{settings_key(section, key)} = {json.dumps(value)}")
    wifi = cfg.get("wifi") or {}
    if wifi.get("ssid"):
        lines.append(f"CIRCUITPY_WIFI_SSID = {json.dumps(wifi['ssid'])}")
        lines.append(f"CIRCUITPY_WIFI_PASSWORD = {json.dumps(wifi.get('password') or '')}")
    return "\n".join(lines) + "\n"


# Modules one runtime never imports (the other runtime's adapter and client-library check; MQTT 5,
# which runs under CPython only).
NOT_ON = {
    "micropython": ("selftest/world_circuitpython.py", "selftest/library_minimqtt.py", "selftest/mqtt5.py"),
    "circuitpython": ("selftest/world.py", "selftest/vendor/umqtt_simple.py", "selftest/mqtt5.py"),
}


def firmware_files(runtime: str = "micropython") -> dict[str, bytes]:
    """The self-test itself for one runtime: the selftest package (with the vendored umqtt.simple on
    MicroPython) and the entry file."""
    files: dict[str, bytes] = {}
    skip = NOT_ON.get(runtime, ())
    for rel, path in bundled.selftest_files().items():
        if rel not in skip:
            files[rel] = path.read_bytes()
    entry = "main.py" if runtime == "micropython" else "code.py"
    files[entry] = (FIRMWARE / entry).read_bytes()
    return files
