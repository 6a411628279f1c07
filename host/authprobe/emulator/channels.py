"""Byte channels an MQTT session runs over: MQTT directly on TLS, or MQTT in WebSocket binary
messages on TLS. Both are blocking, with a send lock (two relay threads write to the client)."""

from __future__ import annotations

import socket
import ssl
import threading

from authprobe.emulator import websocket as ws

_CLOSED_ERRORS = (OSError, ValueError, ssl.SSLError, AttributeError)


def hard_close(sock: socket.socket | None) -> None:
    """Shut the descriptor down so a recv() blocked in another thread returns at once. The plain
    socket shutdown is used on purpose: SSLSocket.shutdown() also drops the SSL object under the
    reader's feet."""
    if sock is None:
        return
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except _CLOSED_ERRORS:
        pass


class TlsChannel:
    def __init__(self, sock: ssl.SSLSocket, initial: bytes = b"") -> None:
        self.sock = sock
        self._initial = initial
        self._lock = threading.Lock()

    def recv(self) -> bytes:
        if self._initial:
            data, self._initial = self._initial, b""
            return data
        try:
            return self.sock.recv(65536)
        except _CLOSED_ERRORS:
            return b""

    def send(self, data: bytes) -> bool:
        with self._lock:
            try:
                self.sock.sendall(data)
                return True
            except _CLOSED_ERRORS:
                return False

    def close(self) -> None:
        hard_close(self.sock)


class WebSocketChannel(TlsChannel):
    """Unwraps client frames into MQTT bytes; answers pings; a close frame ends the stream."""

    def __init__(self, sock: ssl.SSLSocket, initial: bytes = b"") -> None:
        super().__init__(sock)
        self._frames = ws.FrameReader(initial)
        self._eof = False

    def recv(self) -> bytes:
        while not self._eof:
            try:
                message = self._frames.next_message()
            except ws.WebSocketError:
                return b""
            if message is not None:
                opcode, payload = message
                if opcode in (ws.OP_BINARY, ws.OP_TEXT):
                    if payload:
                        return payload
                    continue
                if opcode == ws.OP_PING:
                    self._send_raw(ws.frame(payload, ws.OP_PONG))
                    continue
                if opcode == ws.OP_CLOSE:
                    self._send_raw(ws.frame(payload[:2], ws.OP_CLOSE))
                    self._eof = True
                    return b""
                continue
            try:
                chunk = self.sock.recv(65536)
            except _CLOSED_ERRORS:
                chunk = b""
            if not chunk:
                self._eof = True
                return b""
            self._frames.feed(chunk)
        return b""

    def _send_raw(self, data: bytes) -> bool:
        return super().send(data)

    def send(self, data: bytes) -> bool:
        return self._send_raw(ws.frame(data))
