"""HTTPS publish with custom auth: `POST /topics/<topic>?qos=<0|1>` on 443 without ALPN, credentials
in headers or the query string (DG custom-auth.html, http.html). HTTP custom auth allows publish
only; the message goes to the broker like any other. A refusal is HTTP 403 `{"message":"Forbidden"}`
(as seen in the field, reference §1.4)."""

from __future__ import annotations

import json
import socket
import ssl
import time
import uuid
from typing import TYPE_CHECKING
from urllib.parse import unquote

from authprobe.aws import authn_error, iot_policy
from authprobe.aws.topic_limits import topic_problem
from authprobe.emulator import mqtt_packets as mp
from authprobe.emulator import websocket as ws
from authprobe.emulator.custom_auth import Credentials, credentials_from_mqtt, query_params
from authprobe.emulator.mqtt_session import REASON_AUTH

if TYPE_CHECKING:
    from authprobe.emulator.config import DomainConfig
    from authprobe.emulator.session_host import SessionHost

MAX_BODY = 128 * 1024  # the message size limit (DG limits-iot.html)
BODY_WAIT_S = 10.0  # the whole body, however it trickles in (a per-recv timeout would not bound it)
ANSWER_S = 2.0  # how long an answer may take to leave before the connection is dropped


class _BadBody(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


def _answer(tls: ssl.SSLSocket, status: int, reason: str, message: str, trace_id: str) -> None:
    body = json.dumps({"message": message, "traceId": trace_id}).encode()
    try:
        tls.settimeout(ANSWER_S)
        tls.sendall(ws.http_response(status, reason, body, {"content-type": "application/json"}))
    except (OSError, ValueError):
        pass


def _read_body(tls: ssl.SSLSocket, request: ws.HttpRequest) -> bytes:
    """The body, or _BadBody with the answer to give (the head reader has refused a malformed
    Content-Length already)."""
    try:
        length = request.content_length or 0
    except ws.WebSocketError:
        raise _BadBody(400, "Bad Request", "Content-Length is not a number") from None
    if length > MAX_BODY:
        raise _BadBody(413, "Payload Too Large", "message over 128 KB")
    body = bytearray(request.rest)
    deadline = time.monotonic() + BODY_WAIT_S
    while len(body) < length:
        left = deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            tls.settimeout(left)
            chunk = tls.recv(65536)
        except (OSError, ValueError):  # a client that stalls (timeout) or resets mid-body
            chunk = b""
        if not chunk:
            raise _BadBody(400, "Bad Request", "message body missing or truncated")
        body += chunk
    return bytes(body[:length])


def _publish(emu: SessionHost, topic: str, qos: int, payload: bytes) -> bool:
    """One message into the broker through a short-lived MQTT connection of the stand-in."""
    c = mp.Connect("MQTT", 4, 0x02, 30, f"authprobe-https-{uuid.uuid4().hex[:12]}", None, None, None, None)
    topic_b = topic.encode()
    body = len(topic_b).to_bytes(2, "big") + topic_b + (b"\x00\x01" if qos else b"") + payload
    try:
        with socket.create_connection(emu.broker_address, timeout=5) as s:
            s.sendall(mp.build_connect(c).encode())
            reader = mp.PacketReader()
            want = [mp.CONNACK] + ([mp.PUBACK] if qos else [])
            sent = False
            while want:
                packet = reader.next_packet()
                if packet is None:
                    data = s.recv(4096)
                    if not data:
                        return False
                    reader.feed(data)
                    continue
                if packet.type != want[0]:
                    continue
                want.pop(0)
                if packet.type == mp.CONNACK:
                    if packet.body[1:2] != b"\x00":
                        return False
                    s.sendall(mp.Packet(mp.PUBLISH, qos << 1, body).encode())
                    sent = True
            s.sendall(mp.Packet(mp.DISCONNECT, 0, b"").encode())
            return sent
    except OSError:
        return False


def serve_publish(emu: SessionHost, tls: ssl.SSLSocket, request: ws.HttpRequest, peer: tuple[str, int],
                  server_name: str | None, domain: DomainConfig | None) -> None:
    trace_id = str(uuid.uuid4())
    topic = unquote(request.path[len("/topics/"):])
    params = query_params(request.query)

    def log(status: str, **fields) -> None:
        emu.records.iot_log("Publish-In", status, trace_id=trace_id, protocol="HTTP", sourceIp=peer[0],
                            sourcePort=peer[1], topicName=topic or None, **fields)

    if request.method != "POST" or not topic:
        _answer(tls, 400, "Bad Request", "Publish with POST /topics/<topic>?qos=0|1", trace_id)
        return
    try:  # the broker must never be handed a topic MQTT forbids (a '#' or NUL from %23 or %00)
        mp.check_topic_name(topic)
    except mp.ProtocolError as exc:
        _answer(tls, 400, "Bad Request", f"topic name is not valid: {exc}", trace_id)
        return
    qos = params.get("qos", "0")
    if qos not in ("0", "1"):
        _answer(tls, 400, "Bad Request", "qos must be 0 or 1", trace_id)
        return
    try:
        payload = _read_body(tls, request)
    except _BadBody as bad:
        _answer(tls, bad.status, bad.reason, bad.message, trace_id)
        return
    # After the body is read: answering with the body unread makes the close reset the connection.
    problem = topic_problem(topic)
    if problem is not None:  # AWS's topic limits (topic_limits.py); the 400 answer is ours [I]
        log("Failure", reason="CLIENT_ERROR", details=f"Topic rejected: {problem}")
        _answer(tls, 400, "Bad Request", problem, trace_id)
        return
    base = Credentials(params=params, headers=request.lowered_headers, http_headers=dict(request.headers),
                       http_query=f"?{request.query}" if request.query else "", protocols=["tls", "http"])
    creds = credentials_from_mqtt(None, None, None, server_name, base)
    outcome = emu.auth.authenticate(creds, domain)
    if not outcome.ok or outcome.response is None:
        log("Failure", principalId=outcome.principal_id, reason=REASON_AUTH, details=outcome.details)
        emu.records.authn_error(reason=authn_error.reason_for(outcome.cause), details=outcome.details, peer=peer,
                                server_name=server_name, protocol="HTTP", trace_id=trace_id,
                                destination=(emu.config.listen[0], 443))
        emu.note_refusal(None, outcome.cause or "", outcome.details)
        _answer(tls, 403, "Forbidden", "Forbidden", trace_id)
        return
    context = iot_policy.Context(client_id=None, account=emu.config.account, region=emu.config.region,
                                 source_ip=peer[0])
    decision = iot_policy.is_allowed(outcome.response.policy_documents, "iot:Publish", topic, context)
    if not decision.allowed:
        log("Failure", principalId=outcome.principal_id, reason=REASON_AUTH, details="Authorization Failure")
        emu.note_refusal(None, "policy-denies-publish", decision.explain())
        _answer(tls, 403, "Forbidden", "Forbidden", trace_id)
        return
    if not _publish(emu, topic, int(qos), payload):
        log("Failure", principalId=outcome.principal_id, reason="SERVER_ERROR", details="Message broker unavailable")
        _answer(tls, 503, "Service Unavailable", "Service Unavailable", trace_id)
        return
    log("Success", principalId=outcome.principal_id)
    _answer(tls, 200, "OK", "OK", trace_id)
