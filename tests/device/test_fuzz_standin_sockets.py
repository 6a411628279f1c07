"""The running stand-in (`authprobe emulate`, its own process) driven by malformed, slow and oversized
clients and by random mutations of good conversations (MQTT, MQTT over WSS, HTTPS publish), while a
good paho device must still be served within 1 s; afterwards its threads, connections and memory are
back near where they started and its stderr holds no traceback (issue 12).

The number of mutated conversations follows the hypothesis profile: a few dozen in `make test`
(about 15 s, most of it waiting for the slow heads' deadline), thousands in `make fuzz`."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import settings

from authprobe.emulator.server import FIRST_BYTES_S
from tests.fixtures.emulator import PahoDevice, iot_logs, sign, standard_config, username
from tests.fixtures.hostile_clients import (
    SlowHead,
    StandInProcess,
    close_code,
    connect_packet,
    endless_continuation,
    good_conversations,
    mutated_conversation,
    oversized_frame,
    play,
    publish_packet,
)

pytestmark = pytest.mark.fuzz

SLOW_HEADS = 16
FIXED_INPUTS = [  # (ALPN, chunks, what the stand-in must answer before it closes)
    (None, [b"GET //[ HTTP/1.1\r\nHost: x\r\n\r\n"], b"HTTP/1.1 400"),
    (None, [b"POST /topics/a HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n"], b"HTTP/1.1 400"),
    (["mqtt"], [connect_packet("fixed-qos3"), publish_packet("selftest/fixed-qos3", b"x", flags=0b0110)],
     bytes([0x20, 2, 0, 0])),
    (["mqtt"], [connect_packet("fixed-type0"), bytes([0x00, 0x00])], bytes([0x20, 2, 0, 0])),
    (["mqtt"], [connect_packet("fixed-type15"), bytes([0xF0, 0x00])], bytes([0x20, 2, 0, 0])),
]


def _good_device_round_trip(standin, client_id: str) -> tuple[float, float]:
    """(connect latency, subscribe + publish + receive time) of a paho device, in seconds."""
    d = PahoDevice(standin, client_id, username(client_id, "allow", sign("allow"), "DeviceAuth"))
    try:
        t0 = time.monotonic()
        assert d.connect(timeout=5) == "connack", d.error
        connected = time.monotonic() - t0
        t1 = time.monotonic()
        d.client.subscribe(f"selftest/{client_id}", qos=1)
        assert d.subscribed.wait(5)
        d.client.publish(f"selftest/{client_id}", b"still here", qos=1)
        assert d.got_message.wait(5)
        return connected, time.monotonic() - t1
    finally:
        d.close()


def _quiet(standin, limit_s: float):
    """Stats once no client is connected and the thread count holds still (or at limit_s)."""
    deadline = time.monotonic() + limit_s
    last = standin.stats()
    while True:
        time.sleep(0.2)
        now = standin.stats()
        if (now.connections == 0 and now.threads == last.threads) or time.monotonic() > deadline:
            return now
        last = now


def _settle(standin, baseline, limit_s: float):
    """Stats once threads and connections are back at the baseline (or at limit_s)."""
    deadline = time.monotonic() + limit_s
    while True:
        now = standin.stats()
        back = now.threads <= baseline.threads + 2 and now.connections <= baseline.connections
        if back or time.monotonic() > deadline:
            return now
        time.sleep(0.1)


@pytest.mark.timeout(900)  # `make fuzz` plays thousands of conversations
def test_hostile_clients_leave_the_stand_in_serving(tmp_path):
    standin = StandInProcess(standard_config(tmp_path), tmp_path / "stderr.txt")
    try:
        # Warm up as the hostile part will run (8 at once): Lambda environments, TLS and broker paths,
        # the interpreter's memory pools.
        _good_device_round_trip(standin, "warm")
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda c: play(standin, c[0], c[1]),
                          [c for i in range(8) for c in good_conversations(f"warm{i}")]))
        baseline = _quiet(standin, 5)

        slow = [SlowHead(standin, interval=2.0) for _ in range(SLOW_HEADS)]
        for s in slow:
            s.start()
        for s in slow:
            assert s.connected.wait(5) and s.error is None, s.error

        for alpn, chunks, answer in FIXED_INPUTS:
            got, closed = play(standin, alpn, chunks, read_s=2.0)
            assert got.startswith(answer) and closed, (chunks, got[:80])
        for client in (oversized_frame, endless_continuation):
            after_upgrade, closed, sent = client(standin)
            assert closed and close_code(after_upgrade) == 1009 and sent <= 256 * 1024

        count = max(20, settings.default.max_examples // 5)
        seed = 12 if settings.default.derandomize else random.randrange(1 << 32)
        rng = random.Random(seed)
        conversations = [mutated_conversation(rng, f"mut{i}") for i in range(count)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda c: play(standin, c[0], c[1], read_s=0.2), conversations))

        # The slow heads still hold their threads: the good device must not notice.
        connected, round_trip = _good_device_round_trip(standin, "good")
        assert connected < 1.0 and round_trip < 1.0, (connected, round_trip, seed)

        for s in slow:
            s.join(FIRST_BYTES_S + 10)
            assert s.error is None and s.held_s is not None, s.error
            assert s.answer.startswith(b"HTTP/1.1 408") and s.held_s < FIRST_BYTES_S + 3, (s.held_s, s.answer[:40])

        after = _settle(standin, baseline, 10)
        print(f"seed {seed}, {count} mutated conversations; good device connect {connected * 1000:.0f} ms, "
              f"round trip {round_trip * 1000:.0f} ms; baseline {baseline}, after {after}")
        assert after.threads <= baseline.threads + 2, (baseline, after, seed)
        assert after.connections <= baseline.connections, (baseline, after, seed)
        assert after.rss_kb <= baseline.rss_kb + 40 * 1024, (baseline, after, seed)
        assert any(r.get("reason") == "PAYLOAD_LIMIT_EXCEEDED" for r in iot_logs(standin))
    finally:
        assert standin.stop() == 0
    stderr = standin.stderr_text()
    assert "Traceback" not in stderr, stderr[-4000:]
