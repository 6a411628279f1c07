"""The stand-in's listeners against the hostile clients of issue 12, one defect at a time: pipelined
packets answered at once, malformed MQTT closed as a client error (never relayed), oversized WebSocket
messages closed with 1009 and logged, bad HTTP heads answered 400, slow heads dropped at a total
deadline, and connections capped per source address. No connection thread may die with an exception."""

from __future__ import annotations

import threading
import time

import pytest

from authprobe.emulator import mqtt_packets as mp
from tests.fixtures.emulator import ENDPOINT, iot_logs, make_ca, standard_config, start_emulator, wait_for_log
from tests.fixtures.hostile_clients import (
    DISCONNECT,
    SlowHead,
    close_code,
    connect_packet,
    endless_continuation,
    oversized_frame,
    publish_packet,
    read_until_closed,
    subscribe_packet,
    tls_connect,
)


@pytest.fixture(scope="module")
def emulator_ca(tmp_path_factory):
    return make_ca(tmp_path_factory.mktemp("hostile-ca"), [ENDPOINT])


@pytest.fixture(scope="module")
def emu(tmp_path_factory, emulator_ca):
    emulator = start_emulator(standard_config(tmp_path_factory.mktemp("hostile")), emulator_ca)
    yield emulator
    emulator.close()


@pytest.fixture(autouse=True)
def thread_deaths(monkeypatch):
    """Exceptions that ended a thread of this process during the test: there must be none."""
    died: list[str] = []
    previous = threading.excepthook

    def spy(args):
        died.append(f"{args.thread.name if args.thread else '?'}: {args.exc_type.__name__}: {args.exc_value}")
        previous(args)

    monkeypatch.setattr(threading, "excepthook", spy)
    yield died
    assert not died, died


def _packets(data: bytes) -> list[mp.Packet]:
    reader, out = mp.PacketReader(), []
    reader.feed(data)
    while (p := reader.next_packet()) is not None:
        out.append(p)
    return out


def _read_packets(tls, want: int, limit_s: float) -> list[mp.Packet]:
    reader, out = mp.PacketReader(), []
    deadline = time.monotonic() + limit_s
    while len(out) < want and time.monotonic() < deadline:
        tls.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = tls.recv(4096)
        except TimeoutError:
            break
        if not chunk:
            break
        reader.feed(chunk)
        while (p := reader.next_packet()) is not None:
            out.append(p)
    return out


# -- item 8: packets pipelined behind CONNECT --------------------------------------------------
def test_subscribe_and_publish_sent_with_connect_are_answered_at_once(emu):
    topic = "selftest/pipelined"
    with tls_connect(emu, ["mqtt"]) as tls:
        t0 = time.monotonic()
        tls.sendall(connect_packet("pipelined") + subscribe_packet(topic, 1) + publish_packet(topic, b"hi", 1, 2))
        got = _read_packets(tls, 4, 3.0)
        elapsed = time.monotonic() - t0
        tls.sendall(DISCONNECT)
    assert [p.type for p in got] == [mp.CONNACK, mp.SUBACK, mp.PUBACK, mp.PUBLISH], got
    assert mp.parse_publish(got[3]).payload == b"hi"
    assert elapsed < 1.0, f"answers took {elapsed:.2f} s"


# -- item 10: malformed packets are refused, never relayed -------------------------------------
@pytest.mark.parametrize("name, packet, words", [
    ("qos3", publish_packet("selftest/bad-qos3", b"x", flags=0b0110), "QoS 3"),
    ("type0", bytes([0x00, 0x00]), "reserved packet type 0"),
    ("type15", bytes([0xF0, 0x00]), "reserved packet type 15"),
    ("connack", bytes([0x20, 0x02, 0x00, 0x00]), "only a server sends"),
    ("subflags", bytes([0x80]) + subscribe_packet("selftest/bad-subflags")[1:], "flags 0000"),
], ids=["qos3", "type0", "type15", "connack", "subflags"])
def test_malformed_packet_after_connect_closes_with_a_client_error(emu, name, packet, words):
    client_id = f"bad-{name}"
    with tls_connect(emu, ["mqtt"]) as tls:
        tls.sendall(connect_packet(client_id))
        assert [p.type for p in _read_packets(tls, 1, 3.0)] == [mp.CONNACK]
        t0 = time.monotonic()
        tls.sendall(packet)
        answer, closed = read_until_closed(tls, 3.0)
    assert closed and time.monotonic() - t0 < 1.0, "the stand-in must close the connection (as AWS does)"
    assert answer == b""
    record = wait_for_log(emu, eventType="Disconnect", clientId=client_id)
    assert (record["status"], record["disconnectReason"], record["reason"]) == ("Failure", "CLIENT_ERROR",
                                                                                "CLIENT_ERROR")
    assert words in record["details"]
    assert not any(r.get("reason") == "SERVER_ERROR" and r.get("clientId") == client_id for r in iot_logs(emu))


def test_malformed_connect_is_a_connect_failure_without_connack(emu):
    with tls_connect(emu, ["mqtt"]) as tls:
        raw = bytearray(connect_packet("bad-connect-flags"))
        raw[raw.index(b"MQTT") + 5] |= 0x01  # the reserved CONNECT flag
        tls.sendall(bytes(raw))
        answer, closed = read_until_closed(tls, 3.0)
    assert closed and answer == b""
    wait_for_log(emu, eventType="Connect", status="Failure", reason="CLIENT_ERROR",
                 details="MQTT protocol error: CONNECT flags: the reserved bit is set (MQTT 3.1.1 §3.1.2.3)")


# -- item 3: WebSocket messages over the limit ---------------------------------------------------
@pytest.mark.parametrize("client", [oversized_frame, endless_continuation])
def test_oversized_websocket_message_closes_with_1009_and_is_logged(emu, client):
    before = len(iot_logs(emu))
    after_upgrade, closed, sent = client(emu)
    assert closed
    assert close_code(after_upgrade) == 1009
    assert sent <= 256 * 1024, f"the stand-in read {sent} bytes before refusing"
    deadline = time.monotonic() + 3
    while not [r for r in iot_logs(emu)[before:] if r.get("reason") == "PAYLOAD_LIMIT_EXCEEDED"]:
        assert time.monotonic() < deadline, iot_logs(emu)[before:]
        time.sleep(0.02)
    record = next(r for r in iot_logs(emu)[before:] if r.get("reason") == "PAYLOAD_LIMIT_EXCEEDED")
    assert (record["eventType"], record["status"]) == ("Connect", "Failure")
    assert record["details"].startswith("Message payload exceeds size limit for message type.")


# -- item 4: HTTP heads ----------------------------------------------------------------------------
@pytest.mark.parametrize("head, status", [
    (b"GET //[ HTTP/1.1\r\nHost: x\r\n\r\n", b"400 Bad Request"),
    (b"POST /topics/a HTTP/1.1\r\nHost: x\r\nContent-Length: \xb2\r\n\r\n", b"400 Bad Request"),
    (b"POST /topics/a HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n",
     b"413 Payload Too Large"),
], ids=["unclosed-ipv6-target", "superscript-two-length", "5000-digit-length"])
def test_bad_http_heads_are_answered_not_crashed_on(emu, head, status):
    with tls_connect(emu, None) as tls:
        tls.sendall(head)
        answer, closed = read_until_closed(tls, 3.0)
    assert answer.startswith(b"HTTP/1.1 " + status) and closed


def test_slow_http_head_is_dropped_at_its_total_deadline(emu, monkeypatch):
    import authprobe.emulator.server as server

    monkeypatch.setattr(server, "FIRST_BYTES_S", 2.0)
    slow = SlowHead(emu, interval=0.2)  # each byte well inside any per-recv timeout
    slow.start()
    slow.join(8)
    assert slow.error is None and slow.held_s is not None
    assert slow.answer.startswith(b"HTTP/1.1 408 Request Timeout")
    assert 1.5 < slow.held_s < 3.5, f"held {slow.held_s:.1f} s"


# -- item 4: connections per source ----------------------------------------------------------------
def test_connections_are_capped_per_source_address(tmp_path, emulator_ca, monkeypatch):
    import authprobe.emulator.server as server

    monkeypatch.setattr(server, "FIRST_BYTES_S", 30.0)
    emulator = start_emulator(standard_config(tmp_path), emulator_ca, max_connections_per_source=3)
    holders = [SlowHead(emulator, interval=0.5) for _ in range(3)]
    try:
        for h in holders:
            h.start()
            assert h.connected.wait(5) and h.error is None
        with pytest.raises(OSError):  # closed before TLS: the handshake cannot complete
            tls_connect(emulator, None, timeout=3).close()
        assert emulator.refused_busy_sources == 1
        assert [r["cause"] for r in emulator.refusals] == ["too-many-connections"]
        for h in holders:
            h.stop.set()
            h.join(5)
        deadline = time.monotonic() + 5
        while True:  # the slots free as the stand-in notices the holders went
            try:
                with tls_connect(emulator, None) as tls:
                    tls.sendall(b"GET /nothing HTTP/1.1\r\n\r\n")
                    assert read_until_closed(tls, 3.0)[0].startswith(b"HTTP/1.1 404")
                break
            except OSError:
                assert time.monotonic() < deadline, "a freed slot was not given back"
                time.sleep(0.1)
    finally:
        for h in holders:
            h.stop.set()
        emulator.close()


@pytest.mark.parametrize("topic", ["selftest%2Fa%23", "selftest/%2B/x", "a%00b"])
def test_https_publish_to_a_topic_mqtt_forbids_is_a_bad_request(emu, topic):
    with tls_connect(emu, None) as tls:
        tls.sendall(f"POST /topics/{topic}?qos=0 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx".encode())
        answer, closed = read_until_closed(tls, 3.0)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request") and b"topic name" in answer and closed
