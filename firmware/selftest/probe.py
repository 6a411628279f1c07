# The step runner: walks config, runtime, wifi, clock, dns, tcp, tls, transport, connect, pubsub,
# library, one step record each. A failing step blocks the steps that could only repeat it; they
# are reported as "skip" with the reason. The world (sockets, TLS, clock, radio, output) comes in
# from the entry file, so this module runs unchanged on MicroPython, CircuitPython and CPython.
import binascii
import os

from selftest import PROBE_VERSION
from selftest.codes import STEPS
from selftest.memory import load, unload
from selftest.reporter import Reporter

try:
    from typing import Any  # noqa: F401 - for type comments only; boards have no typing
except ImportError:
    pass

# Codes by catalogue name: MicroPython's compiler inlines `_NAME = const(n)` and drops the line
# (no heap; this try binds nothing there). CPython has no const() and takes the except.
try:
    _CONST_FOLDED = const(1)
except NameError:
    const = int

_LIBRARY_OK = const(1100)
_PROBE_INTERNAL_ERROR = const(9000)

PASS = "pass"
WARN = "warn"
FAIL = "fail"
SKIP = "skip"
LOW_HEAP = 16 * 1024  # below this a board is likely to fail TLS for want of memory
# Which module runs each step. On a board without PSRAM the code itself is the biggest heap user,
# so step modules are imported when their first step comes and dropped when the next module's does.
_PLAN = (
    ("steps_board", "s_config"), ("steps_board", "s_runtime"), ("steps_board", "s_wifi"),
    ("steps_board", "s_clock"), ("steps_net", "s_dns"), ("steps_net", "s_tcp"), ("steps_net", "s_tls"),
    ("steps_transport", "s_transport"), ("steps_session", "s_connect"), ("steps_session", "s_pubsub"),
    (None, "s_library"),
)


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
        self.problems = None  # type: Any  # config lint problems, when linted ahead (memory.lint)
        self.radio = None  # type: Any  # .join(ssid, password, timeout_ms, clock) -> (code, details)
        self.library = None  # type: Any  # (probe) -> (code, status, details)
        self.board = None  # type: Any
        self.firmware = None  # type: Any
        self.uid = None  # type: Any
        self.reset = None  # type: Any
        self.heap_free = None  # type: Any  # () -> int or None


def short(exc):
    """An exception as a short one-line text for the report."""
    text = (type(exc).__name__ + " " + " ".join(str(a) for a in getattr(exc, "args", ()))).strip()
    return text.replace("\n", " ")[:120]


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
        self.early_ms = 0           # when that first answer (or close, or timeout) came
        self.pubsub_ok = False
        self.no_tls = None          # why TLS cannot be judged (clock unset)
        self.addr = None  # type: Any
        from selftest import settings

        c = cfg if isinstance(cfg, dict) else {}
        g = settings.get
        self.client_id = g(c, "device", "client_id") or ""
        self.transport = g(c, "device", "transport")
        self.host = g(c, "endpoint", "host") or ""
        self.port = g(c, "endpoint", "port")
        dial = g(c, "endpoint", "connect_address")
        self.dial_host, self.dial_port = settings.split_address(dial, self.port) if dial else (self.host, self.port)
        self.authorizer = g(c, "auth", "authorizer")
        self.key = g(c, "auth", "token_key_name")
        self.token = g(c, "auth", "token")
        sig = g(c, "auth", "signature")
        if sig and settings.looks_percent_encoded(sig):
            sig = settings.percent_decode(sig)
        self.signature = sig
        self.user = g(c, "auth", "username")
        self.password = g(c, "auth", "password")
        self.timeout_ms = g(c, "test", "timeout_ms")
        self.slow_close_ms = g(c, "test", "slow_close_ms")
        self.hold_ms = g(c, "test", "hold_ms")
        self.custom_domain = g(c, "endpoint", "custom_domain")
        self.wss_query = g(c, "auth", "wss_auth") == "query"
        self.ssid = g(c, "wifi", "ssid")
        self.wifi_password = g(c, "wifi", "password")
        self.wifi_timeout_ms = g(c, "wifi", "timeout_ms")
        self.ntp_host = g(c, "test", "ntp_host")
        self.library_on = g(c, "test", "library")
        self.topic = g(c, "test", "topic") or "authprobe/" + self.client_id
        if world.uid:
            # One config for a whole tray: "{uid}" becomes each board's own unique id, so boards
            # flashed alike do not take each other's sessions (client-id-conflict).
            self.client_id = self.client_id.replace("{uid}", world.uid)
            self.topic = self.topic.replace("{uid}", world.uid)
        self.nonce = binascii.hexlify(os.urandom(6)).decode()
        del settings
        unload("settings")

    # --- plumbing -------------------------------------------------------------------------

    def run(self):
        w = self.w
        rep = Reporter(w.write, binascii.hexlify(os.urandom(6)).decode(), w.clock)
        rep.begin({"board": w.board, "runtime": w.runtime, "runtime_version": w.version,
                   "firmware": w.firmware, "probe": PROBE_VERSION, "uid": w.uid, "reset": w.reset,
                   "heap_free": w.heap_free() if w.heap_free else None, "utc": w.clock.utc(),
                   "client_id": self.client_id, "transport": self.transport})
        loaded = None
        for i, (mod, fn_name) in enumerate(_PLAN):
            ok = (i + 1) * 100
            if self.blocked and i > 1:
                rep.step(ok, SKIP, 0, {"why": self.blocked})
                continue
            if mod != loaded:
                if loaded:
                    unload(loaded)
                loaded = mod
            t0 = w.clock.ms()
            try:
                fn = getattr(load(mod), fn_name) if mod else None
                code, status, d = fn(self) if fn else getattr(self, fn_name)()
            except Exception as e:  # noqa: BLE001 - a probe bug must not hide the steps after it
                code, status, d = _PROBE_INTERNAL_ERROR, FAIL, {"step": ok // 100, "error": short(e)}
            rep.step(code, status, w.clock.since(t0), d)
            if status == FAIL and not self.blocked:
                self.blocked = "%s failed" % ("probe" if code >= _PROBE_INTERNAL_ERROR else STEPS[i])
        if loaded:
            unload(loaded)
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

    def s_library(self):
        if not self.library_on:
            return _LIBRARY_OK, SKIP, {"why": "test.library = false"}
        if self.mode != "mqtt":
            return _LIBRARY_OK, SKIP, {
                "why": "client libraries here speak MQTT over TLS only; this run used wss"}
        if self.w.library is None:
            return _LIBRARY_OK, SKIP, {"why": "no client library on this runtime"}
        if not self.pubsub_ok:
            return _LIBRARY_OK, SKIP, {
                "why": "the probe's own round trip failed; the library would repeat it"}
        for name in ("wss", "tls_errors"):
            unload(name)
        return self.w.library(self)


def run(cfg, world):
    """Run every step and write the report; returns the verdict ("pass" / "fail")."""
    return Probe(cfg, world).run()
