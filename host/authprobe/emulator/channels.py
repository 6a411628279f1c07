"""Byte channels an MQTT session runs over: MQTT directly on TLS, or MQTT in WebSocket binary
messages on TLS.

One thread owns a channel and does all its reads and writes: an OpenSSL connection must not be
read and written from two threads at once. Other threads may only hard_close() it (a plain
shutdown(2) on the descriptor), which wakes the owner up."""

from __future__ import annotations

import socket
import ssl
import struct
import time

from authprobe.emulator import mqtt_packets as mp
from authprobe.emulator import websocket as ws

_CLOSED_ERRORS = (OSError, ValueError, ssl.SSLError, AttributeError)
IO_TIMEOUT_S = 5.0  # a TLS record or a send may take this long before the peer counts as gone


def hard_close(sock: socket.socket | None) -> None:
    """Shut the descriptor down so the owning thread's select()/recv() returns at once. The plain
    socket shutdown is used on purpose: SSLSocket.shutdown() also drops the SSL object under the
    owner's feet."""
    if sock is None:
        return
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except _CLOSED_ERRORS:
        pass


# How long a refused WebSocket client's bytes are read and dropped after the close frame.
CLOSE_LINGER_S = 0.5


class TlsChannel:
    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.sock = sock
        sock.settimeout(IO_TIMEOUT_S)

    def fileno(self) -> int:
        return self.sock.fileno()

    def buffered(self) -> bool:
        """Data already decrypted that select() cannot see."""
        try:
            return self.sock.pending() > 0
        except _CLOSED_ERRORS:
            return False

    def _recv_tls(self) -> bytes | None:
        """One read: bytes, b"" when nothing complete arrived in time, None at end of stream."""
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return b""
        except _CLOSED_ERRORS:
            return None
        return data or None

    def read(self) -> bytes | None:
        """MQTT bytes available now (b"" if none yet), or None when the client is gone."""
        return self._recv_tls()

    def send(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
            return True
        except _CLOSED_ERRORS:
            return False

    def close(self) -> None:
        hard_close(self.sock)


class WebSocketProtocolError(mp.ProtocolError):
    """The client broke RFC 6455; the session logs it as a client error."""

    @property
    def details(self) -> str:
        return f"WebSocket protocol error: {self}"


class WebSocketMessageTooBig(mp.PayloadTooLarge):
    pass


class WebSocketChannel(TlsChannel):
    """Unwraps client frames into MQTT bytes; answers pings; a close frame ends the stream. A client
    that breaks RFC 6455 or sends a message over the size limit gets a close frame (1002 or 1009) and
    read() raises a ProtocolError, so the session closes and logs it like any client error."""

    def __init__(self, sock: ssl.SSLSocket, initial: bytes = b"") -> None:
        super().__init__(sock)
        self._frames = ws.FrameReader(initial)
        self._fresh = bool(initial)

    def buffered(self) -> bool:
        return self._fresh or super().buffered()

    def read(self) -> bytes | None:
        if self._fresh:
            self._fresh = False
        else:
            chunk = self._recv_tls()
            if chunk is None:
                return None
            self._frames.feed(chunk)
        out = bytearray()
        while True:
            try:
                message = self._frames.next_message()
            except ws.WebSocketError as exc:
                super().send(ws.frame(struct.pack("!H", exc.close_code), ws.OP_CLOSE))
                self._drain(CLOSE_LINGER_S)
                if isinstance(exc, ws.MessageTooBig):
                    raise WebSocketMessageTooBig(f"WebSocket {exc}; closed with {exc.close_code}") from None
                raise WebSocketProtocolError(f"{exc}; closed with {exc.close_code}") from None
            if message is None:
                return bytes(out)
            opcode, payload = message
            if opcode in (ws.OP_BINARY, ws.OP_TEXT):
                out += payload
            elif opcode == ws.OP_PING:
                super().send(ws.frame(payload, ws.OP_PONG))
            elif opcode == ws.OP_CLOSE:
                super().send(ws.frame(payload[:2], ws.OP_CLOSE))
                return bytes(out) or None

    def send(self, data: bytes) -> bool:
        return super().send(ws.frame(data))

    def _drain(self, seconds: float) -> None:
        """Read and drop what the client still sends, for a moment, after our close frame: closing
        with unread bytes makes the kernel answer with a reset, which can destroy the close frame
        before the client has read it (RFC 6455 7.1.1 wants the client to see it)."""
        deadline = time.monotonic() + seconds
        try:
            self.sock.settimeout(0.05)
            while time.monotonic() < deadline:
                try:
                    if not self.sock.recv(65536):
                        return
                except (TimeoutError, ssl.SSLWantReadError):
                    continue
        except _CLOSED_ERRORS:
            return
