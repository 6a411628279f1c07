"""Stand-ins for the demo and the drill: a stand-in config file started on ephemeral ports with a
temporary state directory, so nothing collides with a stand-in the user already runs, and a device
config (nested dict, as device.toml parses) that reaches it.

    with StandIn.start(EXAMPLES / "emulator.toml", tmp / "state") as s:
        cfg = s.device_config("demo-1")

A stand-in may also serve a server certificate whose validity starts in the future: what a board
whose clock is behind sees (the certificate is "not yet valid" for it), without touching the
board's clock."""

from __future__ import annotations

import datetime as dt
import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from authprobe import bundled
from authprobe.aws import signing
from authprobe.emulator import Emulator, config_from_dict
from authprobe.emulator.local_ca import ensure_local_ca
from authprobe.errors import ConfigError

EXAMPLES = bundled.EXAMPLES
DRILL_EXAMPLES = EXAMPLES / "drill"
EXAMPLE_PRIVATE_KEY = EXAMPLES / "token-signing-EXAMPLE-private.pem"
EXAMPLE_TOKEN = "selftest-EXAMPLE-token"
# How far the certificate's validity starts after now in the clock fault: a board clock that many
# days behind (a realistic stale RTC after a battery swap) rejects it.
CLOCK_BEHIND_DAYS = 30

@functools.cache
def _example_key() -> Any:
    return signing.load_private_key(EXAMPLE_PRIVATE_KEY.read_bytes(), source=str(EXAMPLE_PRIVATE_KEY))


def example_signature(token: str = EXAMPLE_TOKEN) -> str:
    """The token signed with the example private key (what `authprobe sign` prints)."""

    return signing.sign_token(_example_key(), token)


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read stand-in config {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def _future_server_certificate(state_dir: Path, names: list[str], days: int) -> None:
    """Replace the stand-in's server certificate with one valid from `days` from now (same CA, same
    names); the stand-in keeps a certificate that is not expired, so it serves this one."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


    ca = ensure_local_ca(state_dir, names)
    ca_cert = x509.load_pem_x509_certificate(ca.ca_pem.read_bytes())
    ca_key = serialization.load_pem_private_key((state_dir / "private" / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    key = serialization.load_pem_private_key(ca.server_key.read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    now = dt.datetime.now(dt.UTC)
    wanted = sorted(set(names))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, wanted[0][:64])]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + dt.timedelta(days=days)).not_valid_after(now + dt.timedelta(days=days + 397))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in wanted]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM)
                               + ca_cert.public_bytes(serialization.Encoding.PEM))


@dataclass
class StandIn:
    """A running stand-in and what a device needs to reach it."""

    emulator: Emulator
    config_path: Path

    @classmethod
    def start(cls, config_path: str | Path, state_dir: str | Path, *, clock_behind_days: int = 0,
              without_default_authorizer: bool = False, logging: dict[str, Any] | None = None,
              delivery_delay_s: float = 0.0) -> StandIn:
        """Start the stand-in described by `config_path` on 127.0.0.1 ephemeral ports with its
        records in `state_dir`; `clock_behind_days` > 0 serves a not-yet-valid server certificate;
        `without_default_authorizer` leaves the account without a default authorizer; `logging`
        replaces the config's [logging] table (V2 logging with per-event levels and log groups);
        `delivery_delay_s` delivers its log records that late, as CloudWatch does."""
        config_path = Path(config_path).resolve()
        data = _load_toml(config_path)
        if without_default_authorizer:
            data.pop("default_authorizer", None)
        if logging is not None:
            data.pop("log_level", None)
            data["logging"] = logging
        if delivery_delay_s:
            data["logging"] = {**data.get("logging", {}), "delivery_delay_s": delivery_delay_s}
        data["listen"] = "127.0.0.1:0"
        if "listen_8883" in data:
            data["listen_8883"] = "127.0.0.1:0"
        data["state_dir"] = str(Path(state_dir).resolve())
        cfg = config_from_dict(data, config_path.parent, config_path)
        if clock_behind_days:
            _future_server_certificate(cfg.state_dir, cfg.server_names(), clock_behind_days)
        return cls(Emulator(cfg).start(), config_path)

    def close(self) -> None:
        self.emulator.close()

    def __enter__(self) -> StandIn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def state_dir(self) -> Path:
        return self.emulator.state_dir

    @property
    def cloud_spec(self) -> str:
        """The --cloud value that reads this stand-in."""
        return f"local:{self.state_dir}"

    def device_config(self, client_id: str, *, authorizer: str = "DeviceAuth", transport: str = "auto",
                      token: str = EXAMPLE_TOKEN, timeout_ms: int = 3000) -> dict[str, Any]:
        """A healthy device config for this stand-in (as device_config.load returns it): SNI is the
        endpoint, TCP dials the stand-in, the stand-in's CA is trusted, the token is signed with the
        example key, the topic is the one the example authorizer allows."""
        emu = self.emulator
        return {
            "device": {"client_id": client_id, "transport": transport},
            "endpoint": {"host": emu.endpoint, "port": 443, "connect_address": f"{emu.host}:{emu.port}",
                         "ca": str(emu.ca_pem)},
            "auth": {"authorizer": authorizer, "token_key_name": "token", "token": token,
                     "signature": example_signature(token)},
            "wifi": {"ssid": "factory-floor", "password": "correct horse battery"},
            "test": {"topic": f"selftest/{client_id}", "timeout_ms": timeout_ms},
        }
