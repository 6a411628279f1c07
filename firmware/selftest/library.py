# The client-library check: the same connection and round trip once more, through the library the
# user's firmware will use (umqtt.simple on MicroPython, adafruit_minimqtt on CircuitPython), so a
# passing probe next to a failing library is visible. Both get the probe's TLS settings (SNI =
# endpoint, the same CAs) and dial connect_address when one is configured.
from selftest import mqtt, net

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
_LIBRARY_CONNECT_FAILED = const(1101)
_LIBRARY_PUBSUB_FAILED = const(1102)

PASS = "pass"
FAIL = "fail"
SKIP = "skip"


class _Dialled:
    """A TLS socket whose connect() goes to the probe's dial address whatever the library asks."""

    def __init__(self, sock, addr):
        self._s = sock
        self._addr = addr

    def connect(self, _addr):
        return self._s.connect(self._addr)

    def __getattr__(self, name):
        return getattr(self._s, name)


class TlsContext:
    """SSLContext look-alike for libraries: wraps with the probe's SNI, CAs and ALPN."""

    def __init__(self, probe, wrap, dial_addr=None):
        self.p = probe
        self.wrap = wrap
        self.dial = dial_addr

    def wrap_socket(self, sock, server_hostname=None, **_kw):
        p = self.p
        if hasattr(sock, "settimeout"):
            sock.settimeout(p.timeout_ms / 1000)
        tsock = self.wrap(sock, p.host, [der for _, der in p.w.cas], p.w.alpn, self.dial)[0]
        return _Dialled(tsock, self.dial) if self.dial is not None else tsock


def credentials(p):
    return mqtt.auth_username(p.user, p.authorizer, p.signature, p.key, p.token), p.password


def umqtt_check(p):
    """umqtt.simple: the board's frozen copy, else the vendored one."""
    try:
        from umqtt.simple import MQTTClient, MQTTException  # type: ignore[import-not-found]
        lib = "umqtt.simple"
    except ImportError:
        from selftest.vendor.umqtt_simple import MQTTClient, MQTTException
        lib = "umqtt.simple (vendored 1.3.4)"
    user, password = credentials(p)
    got = []
    ctx = TlsContext(p, p.w.wrap_tls)  # type: Any
    c = MQTTClient(p.client_id, p.dial_host, p.dial_port, user=user, password=password or "",
                   keepalive=60, ssl=ctx, ssl_params={})
    c.set_callback(lambda topic, msg: got.append(msg))
    d = {"library": lib}  # type: dict
    try:
        c.connect()
    except MQTTException as e:
        d["rc"] = e.args[0] if e.args else None
        return _LIBRARY_CONNECT_FAILED, FAIL, d
    except Exception as e:  # noqa: BLE001 - umqtt surfaces closes as IndexError/AssertionError/OSError
        d["error"] = net.text_of(e)[:100]
        _close(c)
        return _LIBRARY_CONNECT_FAILED, FAIL, d
    payload = ("authprobe-lib " + p.nonce).encode()
    try:
        c.subscribe(p.topic.encode())
        c.publish(p.topic.encode(), payload)
        t0 = p.w.clock.ms()
        while payload not in got and p.w.clock.since(t0) < p.timeout_ms:
            c.check_msg()
            if payload not in got:
                p.w.clock.sleep_ms(10)
    except Exception as e:  # noqa: BLE001
        d["error"] = net.text_of(e)[:100]
        _close(c)
        return _LIBRARY_PUBSUB_FAILED, FAIL, d
    try:
        c.disconnect()
    except Exception:  # noqa: BLE001
        pass
    if payload not in got:
        d["why"] = "own message not received within %d ms" % p.timeout_ms
        return _LIBRARY_PUBSUB_FAILED, FAIL, d
    return _LIBRARY_OK, PASS, d


def _close(c):
    try:
        c.sock.close()
    except Exception:  # noqa: BLE001
        pass
