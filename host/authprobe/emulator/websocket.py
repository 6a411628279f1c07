"""Server side of RFC 6455 over an already-TLS-wrapped blocking socket: the HTTP request line and
headers, the 101 answer, and binary frames carrying MQTT (subprotocol "mqtt", DG protocols.html)."""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass
from urllib.parse import urlsplit

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_HEADER_BYTES = 16 * 1024
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


class WebSocketError(Exception):
    pass


@dataclass
class HttpRequest:
    method: str
    target: str
    version: str
    headers: dict[str, str]  # as received (first occurrence), original names
    rest: bytes  # bytes after the header block

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> str:
        return urlsplit(self.target).query

    def header(self, name: str) -> str | None:
        for k, v in self.headers.items():
            if k.lower() == name.lower():
                return v
        return None

    @property
    def lowered_headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items()}


def read_http_request(recv, first: bytes) -> HttpRequest:
    """Read the request head; `recv(n)` is the socket's recv, `first` what was already read."""
    data = bytearray(first)
    while b"\r\n\r\n" not in data:
        if len(data) > MAX_HEADER_BYTES:
            raise WebSocketError("HTTP request head too large")
        chunk = recv(4096)
        if not chunk:
            raise WebSocketError("connection closed in the HTTP request head")
        data += chunk
    head, _, rest = bytes(data).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise WebSocketError(f"malformed request line {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.setdefault(name.strip(), value.strip())
    return HttpRequest(parts[0], parts[1], parts[2], headers, rest)


def http_response(status: int, reason: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}", f"content-length: {len(body)}", "connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()


def upgrade_response(request: HttpRequest) -> bytes:
    key = request.header("sec-websocket-key")
    if not key:
        raise WebSocketError("no Sec-WebSocket-Key")
    lines = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Accept: {accept_key(key)}"]
    offered = [p.strip() for p in (request.header("sec-websocket-protocol") or "").split(",") if p.strip()]
    if "mqtt" in offered:
        lines.append("Sec-WebSocket-Protocol: mqtt")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def is_upgrade(request: HttpRequest) -> bool:
    return (request.method == "GET" and (request.header("upgrade") or "").lower() == "websocket"
            and "upgrade" in (request.header("connection") or "").lower())


def frame(payload: bytes, opcode: int = OP_BINARY) -> bytes:
    """A server frame (servers never mask, RFC 6455 §5.1)."""
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


class FrameReader:
    """Client frames -> (opcode, payload) of complete messages; control frames come through as is."""

    def __init__(self, initial: bytes = b"") -> None:
        self._buf = bytearray(initial)
        self._fragments = bytearray()
        self._fragment_op: int | None = None

    def feed(self, data: bytes) -> None:
        self._buf += data

    def next_message(self) -> tuple[int, bytes] | None:
        while True:
            if len(self._buf) < 2:
                return None
            b0, b1 = self._buf[0], self._buf[1]
            fin, opcode, masked, n = b0 & 0x80, b0 & 0x0F, b1 & 0x80, b1 & 0x7F
            at = 2
            if n == 126:
                if len(self._buf) < 4:
                    return None
                (n,) = struct.unpack_from("!H", self._buf, 2)
                at = 4
            elif n == 127:
                if len(self._buf) < 10:
                    return None
                (n,) = struct.unpack_from("!Q", self._buf, 2)
                at = 10
            if not masked:
                raise WebSocketError("client frame not masked")
            if len(self._buf) < at + 4 + n:
                return None
            mask = self._buf[at:at + 4]
            raw = bytes(self._buf[at + 4:at + 4 + n])
            key = (bytes(mask) * (n // 4 + 1))[:n]
            data = (int.from_bytes(raw, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big") if n else b""
            del self._buf[:at + 4 + n]
            if opcode >= 8:
                return opcode, data
            if opcode != OP_CONT:
                self._fragment_op = opcode
                self._fragments = bytearray()
            self._fragments += data
            if fin:
                op = self._fragment_op if self._fragment_op is not None else OP_BINARY
                self._fragment_op = None
                return op, bytes(self._fragments)
