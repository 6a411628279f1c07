"""Benchmark of the stand-in's listeners under hostile load (issue 12): a good paho device's connect
latency while 200 hostile connections are open on the stand-in's 443 — slow HTTP heads (a byte every
2 s, reconnecting when the stand-in drops them at its deadline) and oversized WebSocket frames (a frame
announcing 2^40 bytes, reconnecting after each 1009 close).

The stand-in runs as `authprobe emulate` in its own process. The hostile clients connect from other
loopback addresses (127.0.0.2, ...) so the per-source connection cap does not simply refuse them;
the good device connects from 127.0.0.1.

Prints connect latency percentiles without and with the load, the good device's publish round trip,
and the stand-in's threads, memory and refusals. Usage:
    python bench/bench_listener_hostile.py [--hostile 200] [--connects 30] [--sources 4]"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from authprobe.emulator.server import FIRST_BYTES_S, MAX_CONNECTIONS_PER_SOURCE  # noqa: E402
from tests.fixtures.emulator import PahoDevice, sign, standard_config, username  # noqa: E402
from tests.fixtures.hostile_clients import SlowHead, StandInProcess, close_code, oversized_frame  # noqa: E402


class Hostile(threading.Thread):
    """One hostile connection kept open: when the stand-in drops it, it comes back."""

    def __init__(self, standin, kind: str, source: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.standin, self.kind, self.source, self.stop = standin, kind, source, stop
        self.rounds = self.dropped_408 = self.closed_1009 = self.refused = 0
        self.open = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.rounds += 1
            try:
                if self.kind == "slow-head":
                    slow = SlowHead(self.standin, interval=2.0, source=self.source)
                    slow.stop = self.stop
                    self.open.set()
                    slow.run()
                    if slow.error is not None:
                        raise slow.error
                    self.dropped_408 += slow.answer.startswith(b"HTTP/1.1 408")
                else:
                    self.open.set()
                    after_upgrade, _, _ = oversized_frame(self.standin, self.source)
                    self.closed_1009 += close_code(after_upgrade) == 1009
                    self.stop.wait(0.5)  # about 100 new TLS connections per second from 50 loops
            except OSError:
                self.refused += 1
                self.stop.wait(0.2)


def good_connects(standin, count: int, tag: str) -> tuple[list[float], list[float]]:
    """Connect latencies and publish round trips (seconds) of `count` paho devices, one after another."""
    connects, trips = [], []
    for i in range(count):
        cid = f"good-{tag}-{i}"
        d = PahoDevice(standin, cid, username(cid, "allow", sign("allow"), "DeviceAuth"))
        try:
            t0 = time.perf_counter()
            if d.connect(timeout=10) != "connack":
                continue
            connects.append(time.perf_counter() - t0)
            t1 = time.perf_counter()
            d.client.subscribe(f"selftest/{cid}", qos=1)
            if d.subscribed.wait(10):
                d.client.publish(f"selftest/{cid}", b"x", qos=1)
                if d.got_message.wait(10):
                    trips.append(time.perf_counter() - t1)
        finally:
            d.close()
    return connects, trips


def _ms(values: list[float]) -> str:
    if not values:
        return "none"
    values = sorted(values)
    p95 = values[max(0, round(0.95 * len(values)) - 1)]
    return (f"p50 {statistics.median(values) * 1000:.1f}  p95 {p95 * 1000:.1f}  max {values[-1] * 1000:.1f}"
            f"  (n={len(values)})")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hostile", type=int, default=200, help="hostile connections held open")
    parser.add_argument("--connects", type=int, default=30, help="good devices measured per phase")
    parser.add_argument("--sources", type=int, default=4, help="loopback addresses the hostile clients use")
    args = parser.parse_args()
    sources = [f"127.0.0.{2 + i}" for i in range(args.sources)]
    with tempfile.TemporaryDirectory() as tmp:
        standin = StandInProcess(standard_config(Path(tmp)), Path(tmp) / "stderr.txt")
        try:
            good_connects(standin, 3, "warm")
            idle = standin.stats()
            for _ in range(30):  # until the warm devices' connections are gone
                if idle.connections == 0:
                    break
                time.sleep(0.1)
                idle = standin.stats()
            quiet_connects, quiet_trips = good_connects(standin, args.connects, "quiet")

            stop = threading.Event()
            slow_heads = args.hostile * 3 // 4
            hostile = [Hostile(standin, "slow-head" if i < slow_heads else "oversized-frame",
                               sources[i % len(sources)], stop) for i in range(args.hostile)]
            t0 = time.perf_counter()
            for h in hostile:
                h.start()
                h.open.wait(5)
            time.sleep(2)  # every slow head has its TLS session and is dribbling
            ramp = time.perf_counter() - t0
            loaded = standin.stats()
            busy_connects, busy_trips = good_connects(standin, args.connects, "busy")
            during = standin.stats()
            # Past the head deadline: the slow heads were dropped (408) and came back.
            stop.wait(max(0.0, FIRST_BYTES_S + 1 - (time.perf_counter() - t0)))
            late_connects, _ = good_connects(standin, 5, "late")
            stop.set()
            for h in hostile:
                h.join(FIRST_BYTES_S + 5)
            time.sleep(1)
            after = standin.stats()
            attack_s = time.perf_counter() - t0
        finally:
            code = standin.stop()
        tracebacks = standin.stderr_text().count("Traceback")

    print("stand-in                      authprobe emulate (own process)")
    print(f"hostile connections           {args.hostile}: {slow_heads} slow heads (1 byte / 2 s), "
          f"{args.hostile - slow_heads} oversized-frame loops; from {len(sources)} address(es) "
          f"(cap {MAX_CONNECTIONS_PER_SOURCE} per address)")
    print(f"attack ran                    {attack_s:.1f} s (ramp-up {ramp:.1f} s)")
    print(f"slow heads dropped with 408   {sum(h.dropped_408 for h in hostile)}  (head deadline {FIRST_BYTES_S:.0f} s)")
    print(f"oversized frames closed 1009  {sum(h.closed_1009 for h in hostile)}")
    print(f"hostile connects refused      {sum(h.refused for h in hostile)}")
    print(f"good connect, no load    ms   {_ms(quiet_connects)}")
    print(f"good connect, under load ms   {_ms(busy_connects)}")
    print(f"good connect, after deadline  {_ms(late_connects)}")
    print(f"good round trip, no load ms   {_ms(quiet_trips)}")
    print(f"good round trip, loaded  ms   {_ms(busy_trips)}")
    print(f"stand-in threads              idle {idle.threads}  loaded {loaded.threads}  "
          f"during {during.threads}  after {after.threads}")
    print(f"stand-in RSS MB               idle {idle.rss_kb / 1024:.1f}  loaded {loaded.rss_kb / 1024:.1f}  "
          f"during {during.rss_kb / 1024:.1f}  after {after.rss_kb / 1024:.1f}")
    print(f"stand-in TCP connections      idle {idle.connections}  loaded {loaded.connections}  "
          f"during {during.connections}  after {after.connections}  (its own: 443 side and to the broker)")
    print(f"tracebacks on stderr          {tracebacks}  (exit code {code})")
    ok = (len(busy_connects) == args.connects and max(busy_connects) < 1.0 and tracebacks == 0
          and after.threads <= idle.threads + 2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
