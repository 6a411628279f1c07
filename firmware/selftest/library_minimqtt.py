# The library check with adafruit_minimqtt (CircuitPython, and CPython on the host), through the
# runtime's socket pool; the endpoint name resolves to the dial address and TLS comes from the
# probe's world. Kept apart from library.py so MicroPython boards never load it.
from selftest import mqtt, net
from selftest.library import FAIL, PASS, SKIP, TlsContext, credentials

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


def minimqtt_check(p, pool, wrap):
    """adafruit_minimqtt with the runtime's socket pool; `wrap` is the probe world's TLS wrapper."""
    try:
        import adafruit_minimqtt.adafruit_minimqtt as MQTT  # type: ignore[import-not-found]
    except ImportError:
        return _LIBRARY_OK, SKIP, {"why": "adafruit_minimqtt is not installed"}
    user, password = credentials(p)
    d = {"library": "adafruit_minimqtt"}  # type: dict
    addr = net.resolve(pool, p.dial_host, p.dial_port)
    got = []
    tmo = max(1, p.timeout_ms // 1000)
    poll = 0.1  # type: Any
    client = MQTT.MQTT(broker=p.host, port=p.port, username=user, password=password or "",
                       client_id=p.client_id, is_ssl=True, socket_pool=_Pool(pool, p),
                       ssl_context=_LazyContext(p, wrap, addr), connect_retries=1,
                       socket_timeout=poll, recv_timeout=tmo + 1)
    client.on_message = lambda _c, _t, msg: got.append(msg)
    try:
        client.connect()
    except Exception as e:  # noqa: BLE001 - MMQTTException carries .code for CONNACK refusals
        d["rc"] = getattr(e, "code", None)
        cause = getattr(e, "__cause__", None)
        d["error"] = net.text_of(cause or e)[:100]
        _mm_close(client)
        return _LIBRARY_CONNECT_FAILED, FAIL, d
    payload = "authprobe-lib " + p.nonce
    try:
        client.subscribe(p.topic)
        client.publish(p.topic, payload)
        t0 = p.w.clock.ms()
        while payload not in got and p.w.clock.since(t0) < p.timeout_ms:
            client.loop(timeout=0.2)
    except Exception as e:  # noqa: BLE001
        d["error"] = net.text_of(e)[:100]
        _mm_close(client)
        return _LIBRARY_PUBSUB_FAILED, FAIL, d
    _mm_close(client)
    if payload not in got:
        d["why"] = "own message not received within %d ms" % p.timeout_ms
        return _LIBRARY_PUBSUB_FAILED, FAIL, d
    return _LIBRARY_OK, PASS, d


class _Pool:
    """The runtime's socket pool, except that the endpoint name resolves to the dial address."""

    def __init__(self, pool, p):
        self._pool = pool
        self._p = p

    def getaddrinfo(self, host, port, *args):
        if host == self._p.host:
            host, port = self._p.dial_host, self._p.dial_port
        return self._pool.getaddrinfo(host, port, *args)

    def __getattr__(self, name):
        return getattr(self._pool, name)


class _LazyContext(TlsContext):
    # MiniMQTT wraps before connecting (CircuitPython style), so the handshake waits for connect().
    def wrap_socket(self, sock, server_hostname=None, **_kw):
        return _WrapOnConnect(self, sock)


class _WrapOnConnect:
    def __init__(self, ctx, sock):
        self._ctx = ctx
        self._raw = sock
        self._s = sock
        self._timeout = None

    def settimeout(self, seconds):
        # Kept for the TLS socket too: a runtime's wrapper may dial a fresh socket.
        self._timeout = seconds
        self._s.settimeout(seconds)

    def connect(self, _addr):
        c = self._ctx
        self._raw.connect(c.dial)
        self._s = c.wrap(self._raw, c.p.host, [der for _, der in c.p.w.cas], c.p.w.alpn, c.dial)[0]
        if self._timeout is not None and hasattr(self._s, "settimeout"):
            self._s.settimeout(self._timeout)

    def __getattr__(self, name):
        return getattr(self._s, name)


def _mm_close(client):
    try:
        client.disconnect()
    except Exception:  # noqa: BLE001
        try:
            client._sock.close()
        except Exception:  # noqa: BLE001
            pass


def check(p):
    """The world's library check: minimqtt over the world's own socket pool and TLS."""
    if mqtt.version(p) == 5:
        return _LIBRARY_OK, SKIP, {"why": "adafruit_minimqtt speaks MQTT 3.1.1; device.mqtt = 5 checks the "
                                          "probe's own MQTT 5 client"}
    return minimqtt_check(p, p.w.pool, p.w.wrap_tls)
