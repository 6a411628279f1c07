"""Server side of RFC 6455 over an already-TLS-wrapped blocking socket: the HTTP request line and
headers, the 101 answer, and binary frames carrying MQTT (subprotocol "mqtt", DG protocols.html).

Both readers take untrusted bytes before any authentication, so each is bounded: the request head by
MAX_HEADER_BYTES, a frame and a reassembled message by MAX_MESSAGE_BYTES (checked from the frame
header, before the payload is buffered). Anything else raises WebSocketError, never another error."""

from __future__ import annotations

import base64
import hashlib
import re
import struct
from dataclasses import dataclass
from urllib.parse import urlsplit

from authprobe.emulator.mqtt_packets import MAX_PACKET

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_HEADER_BYTES = 16 * 1024
# AWS IoT Core's message size limit is 128 KB ("AWS IoT Core endpoints and quotas", message broker
# limits: https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits); larger
# messages are refused as CLIENT_ERROR / PAYLOAD_LIMIT_EXCEEDED (DG topicdata.html). A WebSocket
# message carries MQTT bytes, so it may hold that payload plus the MQTT framing around it (fixed
# header, topic name, packet id: the MQTT reader allows 1 KB of it) and a few small packets batched
# with it. A client announcing more is refused from the frame header, before its payload is read.
MAX_MESSAGE_BYTES = MAX_PACKET + 4 * 1024
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
_DATA_OPS, _CONTROL_OPS = (OP_CONT, OP_TEXT, OP_BINARY), (OP_CLOSE, OP_PING, OP_PONG)
CLOSE_PROTOCOL_ERROR, CLOSE_TOO_BIG = 1002, 1009  # RFC 6455 §7.4.1
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 §5.6.2, an HTTP method


class WebSocketError(Exception):
    """The client broke HTTP/1.1 or RFC 6455; `close_code` is what a WebSocket close frame says."""

    close_code = CLOSE_PROTOCOL_ERROR


class MessageTooBig(WebSocketError):
    close_code = CLOSE_TOO_BIG


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

    @property
    def content_length(self) -> int | None:
        """Content-Length as a number (None when absent); read_http_request has already refused a
        malformed one, so this raises only for a request built by hand."""
        return parse_content_length(self.header("content-length"))


def parse_content_length(value: str | None) -> int | None:
    """ASCII digits only (RFC 9110 §8.6): str.isdigit() also takes '²' and other digits int() refuses.
    A length of more than 18 digits is kept absurd rather than converted."""
    if value is None:
        return None
    if not value or not value.isascii() or not value.isdigit():
        raise WebSocketError(f"Content-Length {value[:40]!r} is not a number")
    digits = value.lstrip("0")
    return int(digits or "0") if len(digits) <= 18 else 10**18


def read_http_request(recv, first: bytes) -> HttpRequest:
    """Read the request head; `recv(n)` is the socket's recv, `first` what was already read."""
    data = bytearray(first)
    end = data.find(b"\r\n\r\n")
    while end < 0:
        if len(data) > MAX_HEADER_BYTES:
            raise WebSocketError("HTTP request head too large")
        chunk = recv(4096)
        if not chunk:
            raise WebSocketError("connection closed in the HTTP request head")
        searched = max(0, len(data) - 3)  # only the new bytes: a head sent a byte at a time stays linear
        data += chunk
        end = data.find(b"\r\n\r\n", searched)
    head, rest = bytes(data[:end]), bytes(data[end + 4:])
    if len(head) > MAX_HEADER_BYTES:
        raise WebSocketError("HTTP request head too large")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not parts[1] or not parts[2].startswith("HTTP/"):
        raise WebSocketError(f"malformed request line {lines[0][:80]!r}")
    try:
        urlsplit(parts[1])  # e.g. "//[" (an unclosed IPv6 host) raises ValueError
    except ValueError as exc:
        raise WebSocketError(f"malformed request target {parts[1][:80]!r}: {exc}") from None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.setdefault(name.strip(), value.strip())
    request = HttpRequest(parts[0], parts[1], parts[2], headers, rest)
    parse_content_length(request.header("content-length"))  # a malformed one makes a bad request
    return request


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
    """Client frames -> (opcode, payload) of complete messages; control frames come through as is.
    Raises MessageTooBig for a frame or message over `max_message` bytes, WebSocketError for
    anything else RFC 6455 §5 says a server must fail the connection for."""

    def __init__(self, initial: bytes = b"", max_message: int = MAX_MESSAGE_BYTES) -> None:
        self._buf = bytearray(initial)
        self._fragments = bytearray()
        self._fragment_op: int | None = None
        self.max_message = max_message

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
            self._check_header(b0, opcode, fin, n)
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
                message, self._fragment_op, self._fragments = bytes(self._fragments), None, bytearray()
                return op, message

    def _check_header(self, b0: int, opcode: int, fin: int, n: int) -> None:
        """Everything that can be refused before the payload arrives (RFC 6455 §5.2, §5.4, §5.5)."""
        if b0 & 0x70:
            raise WebSocketError("reserved bits set in a frame (no extension was negotiated)")
        if opcode not in _DATA_OPS and opcode not in _CONTROL_OPS:
            raise WebSocketError(f"reserved opcode {opcode:#x}")
        if opcode in _CONTROL_OPS:
            if not fin or n > 125:
                raise WebSocketError("control frame fragmented or over 125 bytes")
            return
        if opcode == OP_CONT and self._fragment_op is None:
            raise WebSocketError("continuation frame without a message to continue")
        if opcode != OP_CONT and self._fragment_op is not None:
            raise WebSocketError("new message before the fragmented one ended")
        held = len(self._fragments) if opcode == OP_CONT else 0
        if n > self.max_message or held + n > self.max_message:
            raise MessageTooBig(f"message of at least {held + n} bytes, over the {self.max_message}-byte limit")
