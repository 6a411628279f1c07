"""The MQTT broker the stand-in relays authorised traffic to: an embedded amqtt broker (pip-installable,
so `make demo` needs no root) or an external one such as Mosquitto at mqtt://HOST:PORT. The broker
only routes messages; every AWS rule is enforced in front of it."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import threading
import uuid
from urllib.parse import urlsplit

from authprobe.emulator import mqtt_packets as mp
from authprobe.errors import EXIT_TOOL, AuthprobeError, ConfigError

VERSION_CHECK_S = 3.0


class EmbeddedBroker:
    """amqtt on 127.0.0.1 (ephemeral port), in its own thread and event loop. amqtt speaks MQTT 3.1.1
    only, so MQTT 5 sessions reach it through mqtt5_to_311."""

    speaks_mqtt5 = False

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="authprobe-broker", daemon=True)

    def start(self) -> EmbeddedBroker:
        # amqtt logs every packet at INFO; the stand-in keeps its own records.
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._thread.start()
        advice = 'or use another broker: broker = "mqtt://127.0.0.1:1883" (e.g. Mosquitto)'
        if not self._ready.wait(15):
            raise AuthprobeError(f"the embedded MQTT broker (amqtt) did not start within 15 s; {advice}", EXIT_TOOL)
        if self._error is not None:
            raise AuthprobeError(f"the embedded MQTT broker (amqtt) failed to start: {self._error}; {advice}",
                                 EXIT_TOOL)
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        from amqtt.broker import Broker

        self._stop = asyncio.Event()
        broker = Broker({
            "listeners": {"default": {"type": "tcp", "bind": "127.0.0.1:0"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        })
        try:
            await broker.start()
            self.port = broker._servers["default"].instance.sockets[0].getsockname()[1]
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        try:
            await asyncio.wait_for(broker.shutdown(), 5)
        except (TimeoutError, Exception):
            pass

    def close(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


class ExternalBroker:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "mqtt" or not parts.hostname or not parts.port:
            raise ConfigError(f"broker must be \"embedded\" or \"mqtt://HOST:PORT\" (got {url!r})")
        self.host, self.port = parts.hostname, parts.port
        self.speaks_mqtt5 = False

    def start(self) -> ExternalBroker:
        try:
            self.speaks_mqtt5 = speaks_mqtt5(self.host, self.port)
        except OSError as exc:
            raise ConfigError(f"broker mqtt://{self.host}:{self.port} is not reachable ({exc}); start it "
                              "(e.g. `mosquitto -p PORT`) or use broker = \"embedded\"") from None
        return self

    def close(self) -> None:
        pass


def speaks_mqtt5(host: str, port: int) -> bool:
    """Whether the broker answers an MQTT 5 CONNECT in MQTT 5 (a 3.1.1 broker answers with its own
    CONNACK, "unacceptable protocol version", or closes). OSError when it cannot be reached."""
    client_id = f"authprobe-version-check-{uuid.uuid4().hex[:12]}".encode()
    body = struct.pack("!H", 4) + b"MQTT" + bytes([5, 0x02]) + struct.pack("!H", 10) + b"\x00" \
        + struct.pack("!H", len(client_id)) + client_id
    with socket.create_connection((host, port), timeout=VERSION_CHECK_S) as sock:
        sock.sendall(mp.Packet(mp.CONNECT, 0, body).encode())
        reader = mp.PacketReader()
        try:
            while (ack := reader.next_packet()) is None:
                data = sock.recv(256)
                if not data:
                    return False
                reader.feed(data)
        except (TimeoutError, mp.ProtocolError):
            return False
        v5 = ack.type == mp.CONNACK and len(ack.body) >= 3  # MQTT 5 CONNACKs carry a property length
        if v5 and ack.body[1] == 0:
            sock.sendall(mp.Packet(mp.DISCONNECT, 0, b"").encode())
        return v5


def start_broker(spec: str) -> EmbeddedBroker | ExternalBroker:
    return (EmbeddedBroker() if spec == "embedded" else ExternalBroker(spec)).start()
