# MQTT over WebSockets for runtimes without ALPN: the HTTP Upgrade (`GET /mqtt`, Host = endpoint,
# Sec-WebSocket-Protocol: mqtt, custom-auth headers or query string) and RFC 6455 framing, masked
# binary frames from the client. WsStream offers the same read(n)/write(data) as net.Stream.
import binascii
import os

from selftest import mqtt

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_HEAD = 4096


def new_key():
    return binascii.b2a_base64(os.urandom(16)).strip()


def upgrade_request(host, key, authorizer, signature, token_key, token, query=False):
    """The Upgrade request bytes; credentials as headers or (query=True) in the query string."""
    path = "/mqtt"
    lines = []
    if query:
        q = mqtt.auth_params(authorizer, signature, token_key, token)
        if q:
            path += "?" + q
    else:
        if authorizer:
            lines.append("x-amz-customauthorizer-name: " + authorizer)
        if signature:
            lines.append("x-amz-customauthorizer-signature: " + signature)
        if token_key and token is not None:
            lines.append(token_key + ": " + token)
    head = ("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: " + key.decode() + "\r\n"
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n")
    return (head + "".join(x + "\r\n" for x in lines) + "\r\n").encode()


def read_head(stream):
    """(status, reason, headers dict with lower-case names) of an HTTP response; raises ValueError
    for an answer that is not HTTP."""
    while True:
        end = stream.buf.find(b"\r\n\r\n")
        if end >= 0:
            break
        if len(stream.buf) > MAX_HEAD:
            raise ValueError("HTTP head too long")
        stream._more(256)
    head = stream.read(end + 4)
    return parse_head(head)


def parse_head(head):
    try:
        text = bytes(head).decode()
    except UnicodeError:
        text = "".join(chr(b) for b in head)
    lines = text.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError("not an HTTP answer: %r" % lines[0][:40])
    headers = {}
    for line in lines[1:]:
        i = line.find(":")
        if i > 0:
            headers[line[:i].strip().lower()] = line[i + 1:].strip()
    return int(parts[1]), parts[2] if len(parts) > 2 else "", headers


def accept_for(key):
    """The Sec-WebSocket-Accept a server must answer for key, or None when sha1 is missing."""
    try:
        import hashlib

        h = hashlib.sha1(key + _GUID)
    except (ImportError, AttributeError):
        return None
    return binascii.b2a_base64(h.digest()).strip().decode()


def frame(payload, opcode=0x2):
    """One masked client frame (FIN set)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126, n >> 8, n & 0xFF))
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    mask = os.urandom(4)
    body = bytearray(payload)
    for i in range(n):
        body[i] ^= mask[i & 3]
    return head + mask + bytes(body)


class WsStream:
    """MQTT bytes inside WebSocket frames: read(n) collects binary frame payloads, answers pings,
    turns a close frame into net.Closed."""

    def __init__(self, stream):
        self.s = stream
        self.buf = b""

    def write(self, data):
        self.s.write(frame(data))

    def _frame(self):
        from selftest import net

        b0, b1 = self.s.read(2)
        n = b1 & 0x7F
        if n == 126:
            x = self.s.read(2)
            n = (x[0] << 8) | x[1]
        elif n == 127:
            n = int.from_bytes(self.s.read(8), "big")
        mask = self.s.read(4) if b1 & 0x80 else None
        data = self.s.read(n) if n else b""
        if mask:
            data = bytes(data[i] ^ mask[i & 3] for i in range(n))
        op = b0 & 0x0F
        if op == 0x8:
            code = (data[0] << 8 | data[1]) if len(data) >= 2 else None
            raise net.Closed("websocket close %s" % code)
        if op == 0x9:
            self.s.write(frame(data, 0xA))
            return
        if op in (0x0, 0x1, 0x2):
            self.buf += data

    def read(self, n):
        while len(self.buf) < n:
            self._frame()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def peek_some(self):
        while not self.buf:
            self._frame()
        return self.buf

    def close(self):
        try:
            self.s.write(frame(b"\x03\xe8", 0x8))
        except Exception:  # noqa: BLE001
            pass
        self.s.close()
