# RFC 6455 framing for MQTT over WebSockets: masked binary frames from the client, and WsStream,
# which offers the same read(n)/write(data) as net.Stream. The HTTP Upgrade is in wss_upgrade.py,
# loaded for the transport step only.
import os


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
