"""device.toml on the host: load it, lint it with the very code the board runs (selftest.config),
and turn it into the files each runtime reads from flash.

    cfg = load("device.toml")                    # ConfigError names every problem
    files = device_files(cfg, "micropython")     # {"authprobe.json": ..., "authprobe_ca.der": ...}
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from authprobe.errors import ConfigError
from selftest import config as lint_rules

# The board runtimes a device config is written for (board definitions, the virtual board and the
# drill take this list too).
RUNTIMES = ("micropython", "circuitpython")

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
CONFIG_FILE = "authprobe.json"          # MicroPython reads this (firmware/main.py)
SETTINGS_FILE = "settings.toml"         # CircuitPython reads this through os.getenv (firmware/code.py)
CA_DER = "authprobe_ca.der"
CA_PEM = "authprobe_ca.pem"


def problems(cfg: Any, base: Path | None = None) -> list[tuple[int, str, str, str]]:
    """Lint problems (code, status, field, message): the device's rules plus the host's CA check."""
    found = lint_rules.lint(cfg)
    ca = lint_rules.get(cfg, "endpoint", "ca") if isinstance(cfg, dict) else None
    if isinstance(ca, str) and ca:
        why = _ca_problem(_resolve(ca, base))
        if why:
            found.append((114, lint_rules.FAIL, "endpoint.ca", why))
    return found


def _resolve(path: str, base: Path | None) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() or base is None else base / p


def _ca_problem(path: Path) -> str | None:
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


def _certificates(data: bytes) -> list[x509.Certificate]:
    """The certificates of a PEM bundle or one DER certificate; ValueError when it is neither."""
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        return [x509.load_der_x509_certificate(data)]


def ca_certificates(cfg: dict[str, Any]) -> list[x509.Certificate]:
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


def parse(text: str, path: str = "device.toml", base: Path | None = None) -> dict[str, Any]:
    """A config from TOML text; raises ConfigError naming every failing problem."""
    try:
        cfg = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
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
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {str(p)!r} not found; copy examples/device.toml and fill it in") from None
    except (OSError, UnicodeError) as exc:
        raise ConfigError(f"config file {str(p)!r} cannot be read: {exc}") from None
    return parse(text, str(p), p.parent)


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
                files[CA_DER] = certs[0].public_bytes(serialization.Encoding.DER)
                board_cfg["endpoint"]["ca"] = CA_DER
            else:
                files[CA_PEM] = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
                board_cfg["endpoint"]["ca"] = CA_PEM
        files[CONFIG_FILE] = json.dumps(board_cfg, separators=(",", ":"), sort_keys=True).encode()
        return files
    if certs:
        # CircuitPython's load_verify_locations(cadata=) takes one PEM certificate.
        files[CA_PEM] = certs[0].public_bytes(serialization.Encoding.PEM)
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
    for path in sorted((FIRMWARE / "selftest").rglob("*.py")):
        rel = path.relative_to(FIRMWARE).as_posix()
        if rel not in skip:
            files[rel] = path.read_bytes()
    entry = "main.py" if runtime == "micropython" else "code.py"
    files[entry] = (FIRMWARE / entry).read_bytes()
    return files
