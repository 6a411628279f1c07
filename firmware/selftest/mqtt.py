# The few MQTT 3.1.1 packets the probe sends and reads (CONNECT, SUBSCRIBE, PUBLISH QoS 1,
# DISCONNECT), over any stream with read(n)/write(data), plus the custom-auth username.

CONNECT = 0x10
CONNACK = 0x20
PUBLISH = 0x30
PUBACK = 0x40
SUBSCRIBE = 0x82
SUBACK = 0x90
DISCONNECT = b"\xe0\x00"
PINGREQ = b"\xc0\x00"

_UNRESERVED = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"


def version(p):
    """device.mqtt of the probe's config: 5 for MQTT 5 (CPython only, mqtt5.py), else 4 (3.1.1). Read
    from the config, not kept on the probe: one more attribute grows every board's heap peak."""
    dev = p.cfg.get("device") if isinstance(p.cfg, dict) else None
    return 5 if isinstance(dev, dict) and dev.get("mqtt") == 5 else 4


def pct(text):
    """Percent-encode everything but RFC 3986 unreserved characters ('+' -> %2B, '=' -> %3D)."""
    out = []
    for b in text.encode():
        if b in _UNRESERVED:
            out.append(chr(b))
        else:
            out.append("%%%02X" % b)
    return "".join(out)


def auth_params(authorizer, signature, key, token):
    """The custom-auth query parameters (without the leading '?'): authorizer name, signature,
    tokenKeyName=token; absent items are left out (default authorizer, signing disabled)."""
    parts = []
    if authorizer:
        parts.append("x-amz-customauthorizer-name=" + pct(authorizer))
    if signature:
        parts.append("x-amz-customauthorizer-signature=" + pct(signature))
    if key and token is not None:
        parts.append(pct(key) + "=" + pct(token))
    return "&".join(parts)


def auth_username(user, authorizer, signature, key, token):
    """The CONNECT username for direct MQTT custom auth: `user?name=..&signature=..&key=token`.
    A username that already carries a query string is used as given."""
    user = user or ""
    if "?" in user:
        return user
    q = auth_params(authorizer, signature, key, token)
    return user + "?" + q if q else user


def _varlen(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _str(s):
    if isinstance(s, str):
        s = s.encode()
    return bytes((len(s) >> 8, len(s) & 0xFF)) + s


def _packet(first, body):
    return bytes((first,)) + _varlen(len(body)) + body


def connect(client_id, username=None, password=None, keepalive=60):
    flags = 0x02  # clean session
    payload = _str(client_id)
    if username is not None:
        flags |= 0x80
        payload += _str(username)
        if password is not None:
            flags |= 0x40
            payload += _str(password)
    body = _str("MQTT") + bytes((4, flags, keepalive >> 8, keepalive & 0xFF)) + payload
    return _packet(CONNECT, body)


def subscribe(pid, topic, qos=0):
    return _packet(SUBSCRIBE, bytes((pid >> 8, pid & 0xFF)) + _str(topic) + bytes((qos,)))


def publish(topic, payload, pid=0, qos=0):
    body = _str(topic)
    if qos:
        body += bytes((pid >> 8, pid & 0xFF))
    return _packet(PUBLISH | (qos << 1), body + payload)


def read_packet(stream):
    """(first byte, body) of the next packet."""
    first = stream.read(1)[0]
    n = 0
    shift = 0
    while True:
        b = stream.read(1)[0]
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
        if shift > 21:
            raise ValueError("bad remaining length")
    return first, stream.read(n) if n else b""


def parse_publish(first, body):
    """(topic, payload) of a PUBLISH packet."""
    tlen = (body[0] << 8) | body[1]
    topic = body[2:2 + tlen]
    at = 2 + tlen + (2 if first & 0x06 else 0)
    return bytes(topic).decode(), bytes(body[at:])


def puback(first, body):
    """The PUBACK owed for a QoS 1 PUBLISH, or None."""
    if first & 0x06 != 0x02:
        return None
    tlen = (body[0] << 8) | body[1]
    return bytes((PUBACK, 2)) + bytes(body[2 + tlen:4 + tlen])
