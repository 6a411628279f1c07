# The step runner: walks config, runtime, wifi, clock, dns, tcp, tls, transport, connect, pubsub,
# library, one step record each. A failing step blocks the steps that could only repeat it; they
# are reported as "skip" with the reason. The world (sockets, TLS, clock, radio, output) comes in
# from the entry file, so this module runs unchanged on MicroPython, CircuitPython and CPython.
import binascii
import os

from selftest import PROBE_VERSION, config, mqtt, net, record, tls, wss
from selftest.catalogue import STEPS
from selftest.reporter import Reporter

try:
    from typing import Any  # noqa: F401 - for type comments only; boards have no typing
except ImportError:
    pass

PASS = "pass"
WARN = "warn"
FAIL = "fail"
SKIP = "skip"


class World:
    """What the probe may touch. Entry files fill it in; None means "not on this runtime"."""

    def __init__(self, runtime, version, pool, clock, write, wrap_tls, alpn):
        self.runtime = runtime
        self.version = version
        self.pool = pool            # getaddrinfo(host, port), socket()
        self.clock = clock          # selftest.clock.Clock
        self.write = write          # one report line -> serial
        self.wrap_tls = wrap_tls    # (sock, server_hostname, cas DER list, alpn, addr) -> (tls sock, details)
        self.alpn = alpn            # the TLS stack can send ALPN
        self.cas = []               # [(label, DER)], the configured CA first, then the Amazon roots
        self.ca_problem = None  # type: Any  # why the configured CA could not be read
        self.config_problem = None  # type: Any  # why the config file could not be read
        self.radio = None  # type: Any  # .join(ssid, password, timeout_ms, clock) -> (code, details)
        self.library = None  # type: Any  # (probe) -> (code, status, details)
        self.board = None  # type: Any
        self.firmware = None  # type: Any
        self.uid = None  # type: Any
        self.reset = None  # type: Any
        self.heap_free = None  # type: Any  # () -> int or None


def _short(exc):
    return net.text_of(exc).replace("\n", " ").strip()[:120]


class Probe:
    def __init__(self, cfg, world):
        self.cfg = cfg
        self.w = world
        self.blocked = None
        self.sock = None  # type: Any  # the raw socket (its timeout governs TLS reads on MicroPython)
        self.stream = None  # type: Any  # net.Stream or wss.WsStream carrying MQTT
        self.mode = None            # "mqtt" | "wss"
        self.alpn = None            # negotiated ALPN
        self.early = None           # what came back first after CONNECT on direct MQTT
        self.t_connect = 0
        self.pubsub_ok = False
        c = cfg if isinstance(cfg, dict) else {}
        g = config.get
        self.client_id = g(c, "device", "client_id") or ""
        self.transport = g(c, "device", "transport")
        self.host = g(c, "endpoint", "host") or ""
        self.port = g(c, "endpoint", "port")
        dial = g(c, "endpoint", "connect_address")
        self.dial_host, self.dial_port = config.split_address(dial, self.port) if dial else (self.host, self.port)
        self.authorizer = g(c, "auth", "authorizer")
        self.key = g(c, "auth", "token_key_name")
        self.token = g(c, "auth", "token")
        sig = g(c, "auth", "signature")
        if sig and config.looks_percent_encoded(sig):
            sig = config.percent_decode(sig)
        self.signature = sig
        self.user = g(c, "auth", "username")
        self.password = g(c, "auth", "password")
        self.timeout_ms = g(c, "test", "timeout_ms")
        self.topic = g(c, "test", "topic") or "authprobe/" + self.client_id
        self.nonce = binascii.hexlify(os.urandom(6)).decode()

    # --- plumbing -------------------------------------------------------------------------

    def run(self):
        w = self.w
        rep = Reporter(w.write, binascii.hexlify(os.urandom(6)).decode(), w.clock)
        rep.begin({"board": w.board, "runtime": w.runtime, "runtime_version": w.version,
                   "firmware": w.firmware, "probe": PROBE_VERSION, "uid": w.uid, "reset": w.reset,
                   "heap_free": w.heap_free() if w.heap_free else None, "utc": w.clock.utc(),
                   "client_id": self.client_id, "transport": self.transport})
        steps = (self.s_config, self.s_runtime, self.s_wifi, self.s_clock, self.s_dns, self.s_tcp,
                 self.s_tls, self.s_transport, self.s_connect, self.s_pubsub, self.s_library)
        for i, fn in enumerate(steps):
            ok = (i + 1) * 100
            if self.blocked and i > 1:
                rep.step(ok, SKIP, 0, {"why": self.blocked})
                continue
            t0 = w.clock.ms()
            try:
                code, status, d = fn()
            except Exception as e:  # noqa: BLE001 - a probe bug must not hide the steps after it
                code, status, d = 9000, FAIL, {"step": ok // 100, "error": _short(e)}
            rep.step(code, status, w.clock.since(t0), d)
            if status == FAIL and not self.blocked:
                self.blocked = "%s failed" % ("probe" if code >= 9000 else STEPS[i])
        self.close()
        return rep.end()

    def close(self):
        for s in (self.stream, self.sock):
            if s is not None:
                try:
                    s.close()
                except Exception:  # noqa: BLE001
                    pass
        self.stream = self.sock = None

    def wait_packet(self):
        return mqtt.read_packet(self.stream)

    # --- steps ------------------------------------------------------------------------------

    def s_config(self):
        if self.w.config_problem:
            self.blocked = "config unreadable"
            return 116, FAIL, {"problems": [{"code": 116, "status": FAIL, "field": "",
                                             "msg": self.w.config_problem}]}
        problems = config.lint(self.cfg)
        if self.w.ca_problem:
            problems.append((114, FAIL, "endpoint.ca", self.w.ca_problem))
        code, status = config.verdict(problems)
        d = {}
        if problems:
            d["problems"] = [{"code": p[0], "status": p[1], "field": p[2], "msg": p[3]} for p in problems]
        d["ca"] = [label for label, _ in self.w.cas]
        if status == FAIL:
            self.blocked = "config invalid"
        return code, status, d

    def s_runtime(self):
        w = self.w
        heap = w.heap_free() if w.heap_free else None
        d = {"runtime": w.runtime, "version": w.version, "alpn": w.alpn, "heap_free": heap,
             "uid": w.uid, "reset": w.reset}
        if self.transport == "mqtt" and not w.alpn:
            d["why"] = "transport mqtt needs ALPN 'mqtt' on default endpoints; this runtime cannot send it"
            return 201, WARN, d
        if heap is not None and heap < LOW_HEAP:
            return 202, WARN, d
        return 200, PASS, d

    def s_wifi(self):
        if self.w.radio is None:
            return 300, SKIP, {"why": "no Wi-Fi radio on this runtime (host network)"}
        ssid = config.get(self.cfg, "wifi", "ssid")
        if not ssid:
            return 300, SKIP, {"why": "no wifi.ssid configured; assuming the board is already online"}
        code, d = self.w.radio.join(ssid, config.get(self.cfg, "wifi", "password"),
                                    config.get(self.cfg, "wifi", "timeout_ms"), self.w.clock)
        if code != 300:
            self.blocked = "wifi failed"
            return code, FAIL, d
        return code, PASS, d

    def s_clock(self):
        clk = self.w.clock
        d = {"source": clk.source}
        if not clk.valid():
            host = config.get(self.cfg, "test", "ntp_host")
            try:
                synced = clk.sync(host)
            except Exception as e:  # noqa: BLE001
                d.update({"ntp_host": host, "error": _short(e)})
                self.no_tls = "clock unset (NTP failed): certificates cannot be judged"
                return 402, FAIL, d
            if not synced or not clk.valid():
                self.no_tls = "clock unset: certificates cannot be judged"
                d["year"] = clk.now()[0]
                return 401, FAIL, d
            d["source"] = clk.source
        d["utc"] = clk.utc()
        return 400, PASS, d

    # The clock does not stop DNS and TCP (they still tell something); it stops TLS.
    no_tls = None

    def s_dns(self):
        d = {"host": self.dial_host, "port": self.dial_port}
        if self.dial_host != self.host:
            d["via"] = "connect_address"
        try:
            self.addr = net.resolve(self.w.pool, self.dial_host, self.dial_port)
        except Exception as e:  # noqa: BLE001
            d["error"] = _short(e)
            return 501, FAIL, d
        d["addr"] = net.addr_text(self.w.pool, self.addr)
        return 500, PASS, d

    def s_tcp(self):
        d = {"addr": net.addr_text(self.w.pool, self.addr)}
        sock = self.w.pool.socket()
        self.sock = sock
        s = net.Stream(sock)
        s.settimeout(self.timeout_ms / 1000)
        try:
            sock.connect(self.addr)
        except Exception as e:  # noqa: BLE001
            d["error"] = _short(e)
            if net.is_refused(e):
                return 601, FAIL, d
            if net.is_timeout(e):
                d["timeout_ms"] = self.timeout_ms
                return 602, FAIL, d
            return 603, FAIL, d
        return 600, PASS, d

    def s_tls(self):
        if self.no_tls:
            self.blocked = self.no_tls
            return 700, SKIP, {"why": self.no_tls}
        want = self.transport in ("mqtt", "auto") and self.w.alpn
        labels = [label for label, _ in self.w.cas]
        try:
            tsock, d = self.w.wrap_tls(self.sock, self.host, [der for _, der in self.w.cas], want, self.addr)
        except Exception as e:  # noqa: BLE001
            return tls.classify(e), FAIL, {"sni": self.host, "ca": labels, "error": _short(e)}
        self.stream = net.Stream(tsock)
        self.alpn = d.get("alpn")
        d["ca"] = labels
        if want and self.alpn != tls.ALPN:
            d["why"] = "sent ALPN 'mqtt' but the server did not select it"
            return 710, WARN, d
        return 700, PASS, d

    def s_transport(self):
        t = self.transport
        if t == "auto":
            self.mode = "mqtt" if self.w.alpn else "wss"
            why = ("runtime sends ALPN 'mqtt'" if self.w.alpn else
                   "runtime cannot send ALPN, so MQTT over WebSockets (no ALPN needed)")
        else:
            self.mode = t
            why = "configured"
        d = {"mode": self.mode, "why": why, "alpn": self.alpn}
        if self.mode == "wss":
            return self._upgrade(d)
        return self._first_answer(d)

    def _first_answer(self, d):
        # Whether the server speaks MQTT here shows only in its answer to CONNECT: an endpoint that
        # got no ALPN treats the stream as HTTPS and answers HTTP (or just closes).
        self.stream.write(mqtt.connect(self.client_id, mqtt.auth_username(
            self.user, self.authorizer, self.signature, self.key, self.token), self.password))
        self.t_connect = self.w.clock.ms()
        try:
            first = bytes(self.stream.peek_some()[:8])
        except net.Closed:
            self.early = "closed"
            # A domain configuration (CUSTOM_AUTH + SECURE_MQTT) needs no ALPN; there a close is the
            # authorizer's answer, for the connect step to judge.
            if self.alpn != tls.ALPN and not config.get(self.cfg, "endpoint", "custom_domain"):
                d["why"] = "closed before any MQTT answer and no ALPN 'mqtt' was negotiated"
                d["elapsed_ms"] = self.w.clock.since(self.t_connect)
                return 801, FAIL, d
            return 800, PASS, d
        except net.Timeout:
            self.early = "timeout"
            return 800, PASS, d
        if first.startswith(b"HTTP/") or first.startswith(b"<"):
            d["answer"] = "".join(chr(b) if 32 <= b < 127 else "." for b in first)
            d["why"] = "the server answered MQTT with HTTP: it did not see ALPN 'mqtt'"
            return 802, FAIL, d
        return 800, PASS, d

    def _upgrade(self, d):
        key = wss.new_key()
        query = config.get(self.cfg, "auth", "wss_auth") == "query"
        self.stream.write(wss.upgrade_request(self.host, key, self.authorizer, self.signature, self.key,
                                              self.token, query))
        d["credentials"] = "query" if query else "headers"
        try:
            status, reason, headers = wss.read_head(self.stream)
        except net.Closed:
            return 807, FAIL, d
        except net.Timeout:
            return 808, FAIL, d
        except ValueError as e:
            d["error"] = _short(e)
            return 806, FAIL, d
        d["status"] = status
        d["reason"] = reason[:40]
        if status == 101:
            expect = wss.accept_for(key)
            got = headers.get("sec-websocket-accept")
            if expect is not None and got != expect:
                d["why"] = "Sec-WebSocket-Accept does not match the key"
                return 806, FAIL, d
            self.stream = wss.WsStream(self.stream)
            return 800, PASS, d
        code = {401: 803, 403: 804, 426: 805}.get(status, 806)
        return code, FAIL, d

    def s_connect(self):
        d = {"username_len": 0, "token": record.fingerprint(self.token),
             "signature": record.fingerprint(self.signature), "password": record.fingerprint(self.password)}
        if self.mode == "wss":
            user = self.user if self.user is not None or self.password is None else ""
            d["username_len"] = len(user or "")
            self.stream.write(mqtt.connect(self.client_id, user, self.password))
            self.t_connect = self.w.clock.ms()
        else:
            d["username_len"] = len(mqtt.auth_username(self.user, self.authorizer, self.signature, self.key,
                                                       self.token))
        if self.early == "closed":
            return self._closed(d)
        try:
            first, body = self.wait_packet()
        except net.Closed:
            return self._closed(d)
        except net.Timeout:
            d["elapsed_ms"] = self.w.clock.since(self.t_connect)
            return 908, FAIL, d
        d["elapsed_ms"] = self.w.clock.since(self.t_connect)
        if first != mqtt.CONNACK or len(body) != 2:
            d["packet"] = first
            return 909, FAIL, d
        rc = body[1]
        d["rc"] = rc
        if rc == 0:
            return 900, PASS, d
        return (900 + rc if rc <= 5 else 909), FAIL, d

    def _closed(self, d):
        ms = self.w.clock.since(self.t_connect)
        d["elapsed_ms"] = ms
        if ms >= config.get(self.cfg, "test", "slow_close_ms"):
            d["why"] = "closed after %d ms: near the 5 s authorizer limit" % ms
            return 907, FAIL, d
        return 906, FAIL, d

    def s_pubsub(self):
        d = {"topic": self.topic}
        s = self.stream
        payload = ("authprobe " + self.nonce).encode()
        s.write(mqtt.subscribe(1, self.topic, 0))
        try:
            while True:
                first, body = self.wait_packet()
                if first == mqtt.SUBACK:
                    break
        except net.Closed:
            return 1001, FAIL, d
        except net.Timeout:
            d["why"] = "no SUBACK within %d ms" % self.timeout_ms
            return 1004, FAIL, d
        d["suback"] = body[-1]
        if body[-1] & 0x80:
            return 1004, FAIL, d
        s.write(mqtt.publish(self.topic, payload, 2, 1))
        puback = False
        try:
            while True:
                first, body = self.wait_packet()
                kind = first & 0xF0
                if kind == mqtt.PUBACK:
                    puback = True
                elif kind == mqtt.PUBLISH:
                    ack = mqtt.puback(first, body)
                    if ack:
                        s.write(ack)
                    topic, got = mqtt.parse_publish(first, body)
                    if topic == self.topic and got == payload:
                        break
        except net.Closed:
            d["puback"] = puback
            return 1002, FAIL, d
        except net.Timeout:
            d["puback"] = puback
            d["why"] = "own message not received within %d ms" % self.timeout_ms
            return 1003, FAIL, d
        d["puback"] = puback
        try:
            s.write(mqtt.DISCONNECT)
        except Exception:  # noqa: BLE001 - the round trip is done; a late close is not a failure
            pass
        self.close()
        self.pubsub_ok = True
        return 1000, PASS, d

    def s_library(self):
        if not config.get(self.cfg, "test", "library"):
            return 1100, SKIP, {"why": "test.library = false"}
        if self.mode != "mqtt":
            return 1100, SKIP, {"why": "client libraries here speak MQTT over TLS only; this run used wss"}
        if self.w.library is None:
            return 1100, SKIP, {"why": "no client library on this runtime"}
        if not self.pubsub_ok:
            return 1100, SKIP, {"why": "the probe's own round trip failed; the library would repeat it"}
        return self.w.library(self)


LOW_HEAP = 16 * 1024


def run(cfg, world):
    """Run every step and write the report; returns the verdict ("pass" / "fail")."""
    return Probe(cfg, world).run()
