"""What the cloud checks need from a device.toml: the credentials and names the board sends, read
through the same loader and lint as `authprobe run` (authprobe.device_config.load)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from authprobe import device_config
from selftest import config as lint
from selftest import mqtt

SIGNATURE_PARAM = "x-amz-customauthorizer-signature"


@dataclass
class DeviceSettings:
    client_id: str | None = None
    transport: str = "auto"
    host: str | None = None
    port: int = 443
    custom_domain: bool = False
    authorizer: str | None = None
    token_key_name: str | None = None
    token: str | None = None
    signature: str | None = None
    signing_disabled: bool = False
    username: str | None = None
    password: str | None = None
    wss_auth: str = "headers"
    topic: str | None = None
    source: str = ""

    @property
    def server_name(self) -> str | None:
        """The SNI the board sends: always the endpoint host (connect_address only changes where it dials)."""
        return self.host

    def raw_signature_in_username(self) -> str | None:
        """The signature exactly as it stands inside a hand-written username, if it holds one."""
        if self.username and SIGNATURE_PARAM + "=" in self.username:
            return self.username.split(SIGNATURE_PARAM + "=", 1)[1].split("&", 1)[0]
        return None

    def mqtt_username(self) -> str:
        """The CONNECT username the probe sends over direct MQTT, built by the probe's own code."""

        return mqtt.auth_username(self.username, self.authorizer, self.signature, self.token_key_name, self.token)

    def wss_query(self) -> str:
        return mqtt.auth_params(self.authorizer, self.signature, self.token_key_name, self.token)


def settings_from_config(cfg: dict[str, Any], source: str = "") -> DeviceSettings:
    def get(section: str, key: str) -> Any:
        return lint.get(cfg, section, key)

    signature = get("auth", "signature")
    if isinstance(signature, str) and lint.looks_percent_encoded(signature):
        signature = lint.percent_decode(signature)
    return DeviceSettings(
        client_id=get("device", "client_id"), transport=get("device", "transport") or "auto",
        host=get("endpoint", "host"), port=get("endpoint", "port") or 443,
        custom_domain=bool(get("endpoint", "custom_domain")), authorizer=get("auth", "authorizer"),
        token_key_name=get("auth", "token_key_name"), token=get("auth", "token"), signature=signature,
        signing_disabled=bool(get("auth", "signing_disabled")), username=get("auth", "username"),
        password=get("auth", "password"), wss_auth=get("auth", "wss_auth") or "headers",
        topic=get("test", "topic") or f"authprobe/{get('device', 'client_id')}", source=source)


def load_device_settings(path: str | Path) -> DeviceSettings:
    return settings_from_config(device_config.load(path), str(path))
