"""A second device with the same client id, for the client-id-conflict fault: a few connections that
reconnect the moment they are dropped (as two boards flashed with one config do), each taking the
session from whichever connection held it. The board under test is then dropped soon after its
CONNACK, and AWS IoT (the stand-in) logs DUPLICATE_CLIENT_ID.

The intruder speaks MQTT with the probe's own packet code (selftest.mqtt) over TLS with SNI = the
endpoint and ALPN "mqtt", with the very credentials the board uses."""

from __future__ import annotations

import socket
import ssl
import threading
from typing import Any

from authprobe.drill.standin import StandIn
from selftest import mqtt

CONNECT_TIMEOUT_S = 2.0


class DuplicateClient:
    """`with DuplicateClient(standin, cfg):` keeps taking cfg's client id until the block ends."""

    def __init__(self, standin: StandIn, cfg: dict[str, Any], connections: int = 3):
        self.standin = standin
        self.cfg = cfg
        self.connections = connections
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.sockets: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.sessions = 0

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.standin.emulator.ca_pem))
        ctx.set_alpn_protocols(["mqtt"])
        return ctx

    def _connect_packet(self) -> bytes:
        auth = self.cfg["auth"]
        username = mqtt.auth_username(auth.get("username"), auth.get("authorizer"), auth.get("signature"),
                                      auth.get("token_key_name"), auth.get("token"))
        return mqtt.connect(self.cfg["device"]["client_id"], username)

    def _loop(self) -> None:
        emu = self.standin.emulator
        ctx = self._context()
        packet = self._connect_packet()
        while not self.stop.is_set():
            try:
                raw = socket.create_connection((emu.host, emu.port), timeout=CONNECT_TIMEOUT_S)
            except OSError:
                self.stop.wait(0.05)
                continue
            try:
                tls = ctx.wrap_socket(raw, server_hostname=emu.endpoint)
            except (OSError, ValueError):
                raw.close()
                self.stop.wait(0.05)   # a handshake the stand-in refuses must not become a busy loop
                continue
            with self.lock:
                self.sockets.add(tls)
            try:
                tls.sendall(packet)
                if tls.recv(4)[:1] == b"\x20":
                    with self.lock:
                        self.sessions += 1
                tls.settimeout(None)
                while not self.stop.is_set() and tls.recv(1024):
                    pass  # hold the session until it is taken from us, then take it back
            except (OSError, ValueError):
                pass
            finally:
                with self.lock:
                    self.sockets.discard(tls)
                tls.close()

    def __enter__(self) -> DuplicateClient:
        for i in range(self.connections):
            t = threading.Thread(target=self._loop, name=f"duplicate-client-{i}", daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        with self.lock:
            for s in list(self.sockets):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for t in self.threads:
            t.join(5)
