# The WebSocket opening handshake for MQTT over WebSockets on runtimes without ALPN: `GET /mqtt`,
# Host = endpoint, Sec-WebSocket-Protocol: mqtt, custom-auth credentials as headers or in the
# query string, and reading the server's answer.
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
    """The Sec-WebSocket-Accept a server must answer for key, or None where there is no SHA-1."""
    from selftest import net

    try:
        d = net.digest("sha1", key + _GUID)
    except (ImportError, AttributeError, ValueError):
        return None
    return binascii.b2a_base64(d).strip().decode()
