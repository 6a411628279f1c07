"""Benchmark of the local AWS IoT custom-auth stand-in: N paho-mqtt clients connect at once over TLS
with ALPN "mqtt", each authenticated by the example authorizer (a real Python handler in warm Lambda
workers, signature checked), then each subscribes to its own topic and round-trips one QoS 1 message.

Prints connections per second, connect latency percentiles and whether anything was lost.
Usage: python bench/bench_emulator.py [--clients 100] [--mqtt 5] (MQTT 5 clients: through the embedded
broker that is the 3.1.1 translation path)"""

from __future__ import annotations

import argparse
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import paho.mqtt.client as mqtt

from authprobe.aws import signing
from authprobe.emulator.lambda_runtime import MAX_ENVIRONMENTS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TOKEN = "selftest-EXAMPLE-token"


class _Sni(ssl.SSLContext):
    sni = ""

    def wrap_socket(self, sock, server_side=False, do_handshake_on_connect=True, suppress_ragged_eofs=True,
                    server_hostname=None, session=None):
        return super().wrap_socket(sock, server_side, do_handshake_on_connect, suppress_ragged_eofs,
                                   self.sni, session)


def _signature() -> str:
    key = signing.load_private_key((EXAMPLES / "token-signing-EXAMPLE-private.pem").read_bytes())
    return signing.sign_token(key, TOKEN)


class Client:
    def __init__(self, emu, index: int, signature: str, version: int = 4) -> None:
        self.cid = f"bench{index:04d}"
        self.topic = f"selftest/{self.cid}"
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.cid, reconnect_on_failure=False,
                             protocol=mqtt.MQTTv5 if version == 5 else mqtt.MQTTv311)
        self.c.username_pw_set(f"{self.cid}?x-amz-customauthorizer-name=DeviceAuth&x-amz-customauthorizer-signature="
                               f"{quote(signature, safe='')}&token={TOKEN}", "pw")
        ctx = _Sni(ssl.PROTOCOL_TLS_CLIENT)
        ctx.sni = emu.endpoint
        ctx.load_verify_locations(cafile=str(emu.ca_pem))
        ctx.set_alpn_protocols(["mqtt"])
        self.c.tls_set_context(ctx)
        self.connected, self.subscribed, self.received = threading.Event(), threading.Event(), threading.Event()
        # accepted only: an MQTT 5 refusal is a CONNACK too (reason code >= 0x80)
        self.c.on_connect = lambda c, u, flags, rc, *props: self.connected.set() if not rc.is_failure else None
        self.c.on_subscribe = lambda *a: self.subscribed.set()
        self.c.on_message = lambda c, u, m: self.received.set() if m.payload == self.cid.encode() else None
        self.host, self.port = emu.host, emu.port
        self.latency: float | None = None

    def connect(self, timeout: float) -> None:
        t0 = time.perf_counter()
        try:
            self.c.connect(self.host, self.port, keepalive=60)
        except OSError:
            return
        self.c.loop_start()
        if self.connected.wait(timeout):
            self.latency = time.perf_counter() - t0

    def round_trip(self, timeout: float) -> bool:
        self.c.subscribe(self.topic, qos=1)
        if not self.subscribed.wait(timeout):
            return False
        self.c.publish(self.topic, self.cid.encode(), qos=1)
        return self.received.wait(timeout)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


class _Remote:
    """`authprobe emulate` in its own process, as a user runs it; clients stay in this one."""

    def __init__(self, state_dir: Path) -> None:
        config = state_dir / "emulator.toml"
        text = (EXAMPLES / "emulator.toml").read_text()
        text = text.replace('listen = "127.0.0.1:8443"', 'listen = "127.0.0.1:0"')
        text = text.replace('listen_8883 = "127.0.0.1:8883"', "")
        text = text.replace('state_dir = "../.authprobe/emulator"', f'state_dir = "{(state_dir / "state").as_posix()}"')
        for name in ("authorizer.py", "lambda-policy.json", "token-signing-pub.pem"):
            (state_dir / name).write_bytes((EXAMPLES / name).read_bytes())
        config.write_text(text)
        self.proc = subprocess.Popen([sys.executable, "-m", "authprobe.cli", "emulate", "--config", str(config)],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if "stands for 443" in line:
                self.host, port = line.split()[1].rsplit(":", 1)
                self.port = int(port)
            elif line.strip().startswith("trust CA"):
                self.ca_pem = Path(line.split()[2])
            elif "stop with" in line:
                break
        self.endpoint = "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com"

    def __enter__(self) -> _Remote:
        return self

    def __exit__(self, *exc) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(20)
        if self.proc.stdout:
            self.proc.stdout.close()


def _stand_in(directory: Path, in_process: bool):
    if not in_process:
        return _Remote(directory)
    from authprobe.emulator import Emulator, load_config

    cfg = load_config(EXAMPLES / "emulator.toml")
    cfg.listen, cfg.listen_8883 = ("127.0.0.1", 0), None
    cfg.state_dir = directory
    return Emulator(cfg)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--mqtt", type=int, choices=(4, 5), default=4, help="4: MQTT 3.1.1 (default), 5: MQTT 5")
    parser.add_argument("--in-process", action="store_true",
                        help="run the stand-in in this process (shares the GIL with the 100 clients)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        signature = _signature()
        with _stand_in(Path(tmp), args.in_process) as emu:
            # Warm the function first (as a busy account's Lambda is): a burst that starts every
            # execution environment the stand-in keeps, so the figures are steady-state ones.
            warm = [Client(emu, 9000 + i, signature, args.mqtt) for i in range(MAX_ENVIRONMENTS)]
            with ThreadPoolExecutor(max_workers=len(warm)) as pool:
                list(pool.map(lambda c: c.connect(30), warm))
            for c in warm:
                c.close()
            clients = [Client(emu, i, signature, args.mqtt) for i in range(args.clients)]
            t0 = time.perf_counter()
            with ThreadPoolExecutor(max_workers=args.clients) as pool:
                list(pool.map(lambda c: c.connect(30), clients))
            connect_wall = time.perf_counter() - t0
            with ThreadPoolExecutor(max_workers=args.clients) as pool:
                trips = list(pool.map(lambda c: c.round_trip(10), clients))
            round_wall = time.perf_counter() - t0
            for c in clients:
                c.close()
        lat = sorted(c.latency for c in clients if c.latency is not None)
    connected = len(lat)
    p95 = lat[max(0, int(round(0.95 * connected)) - 1)] if lat else float("nan")
    print(f"stand-in                {'in this process' if args.in_process else 'authprobe emulate (own process)'}")
    print(f"clients                 {args.clients} (MQTT {'5' if args.mqtt == 5 else '3.1.1'})")
    print(f"connected (CONNACK)     {connected}")
    print(f"round trips completed   {sum(trips)}  (lost: {args.clients - sum(trips)})")
    print(f"connections/s           {connected / connect_wall:.1f}  (all connects in {connect_wall * 1000:.0f} ms)")
    if lat:
        print(f"connect latency ms      p50 {statistics.median(lat) * 1000:.1f}  p95 {p95 * 1000:.1f}  "
              f"max {lat[-1] * 1000:.1f}")
    print(f"connect + round trip    {round_wall * 1000:.0f} ms wall")
    print(f"timer resolution        {time.get_clock_info('perf_counter').resolution * 1e9:.0f} ns (perf_counter)")
    return 0 if connected == args.clients and all(trips) else 1


if __name__ == "__main__":
    sys.exit(main())
