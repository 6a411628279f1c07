"""What a connection's session needs from the stand-in that accepted it: the records, custom auth,
the broker and the refusal log. The server provides it; sessions (MQTT, HTTPS publish) are written
against this Protocol, so they never import the server that imports them."""

from __future__ import annotations

from typing import Any, Protocol

from authprobe.emulator.cloud_records import CloudRecords
from authprobe.emulator.config import EmulatorConfig
from authprobe.emulator.custom_auth import CustomAuth


class SessionHost(Protocol):
    config: EmulatorConfig
    records: CloudRecords
    auth: CustomAuth
    time_scale: float
    broker_address: tuple[str, int]
    broker_speaks_mqtt5: bool

    def effective_keepalive(self, requested: int) -> float: ...

    def register_session(self, session: Any) -> None: ...

    def session_ended(self, session: Any) -> None: ...

    def note_refusal(self, session: Any, cause: str, details: str) -> None: ...
