# The client-library check: the same connection and round trip once more, through the library the
# user's firmware will use (umqtt.simple on MicroPython, adafruit_minimqtt on CircuitPython), so a
# passing probe next to a failing library is visible. Both get the probe's TLS settings (SNI =
# endpoint, the same CAs) and dial connect_address when one is configured.
from selftest import mqtt, net

try:
    from typing import Any  # noqa: F401 - for type comments only; boards have no typing
except ImportError:
    pass

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


def _credentials(p):
    return mqtt.auth_username(p.user, p.authorizer, p.signature, p.key, p.token), p.password


def umqtt_check(p):
    """umqtt.simple: the board's frozen copy, else the vendored one."""
    try:
        from umqtt.simple import MQTTClient, MQTTException  # type: ignore[import-not-found]
        lib = "umqtt.simple"
    except ImportError:
        from selftest.vendor.umqtt_simple import MQTTClient, MQTTException
        lib = "umqtt.simple (vendored 1.3.4)"
    user, password = _credentials(p)
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
        return 1101, FAIL, d
    except Exception as e:  # noqa: BLE001 - umqtt surfaces closes as IndexError/AssertionError/OSError
        d["error"] = net.text_of(e)[:100]
        _close(c)
        return 1101, FAIL, d
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
        return 1102, FAIL, d
    try:
        c.disconnect()
    except Exception:  # noqa: BLE001
        pass
    if payload not in got:
        d["why"] = "own message not received within %d ms" % p.timeout_ms
        return 1102, FAIL, d
    return 1100, PASS, d


def _close(c):
    try:
        c.sock.close()
    except Exception:  # noqa: BLE001
        pass


def minimqtt_check(p, pool, wrap):
    """adafruit_minimqtt with the runtime's socket pool; `wrap` is the probe world's TLS wrapper."""
    try:
        import adafruit_minimqtt.adafruit_minimqtt as MQTT  # type: ignore[import-not-found]
    except ImportError:
        return 1100, SKIP, {"why": "adafruit_minimqtt is not installed"}
    user, password = _credentials(p)
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
        return 1101, FAIL, d
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
        return 1102, FAIL, d
    _mm_close(client)
    if payload not in got:
        d["why"] = "own message not received within %d ms" % p.timeout_ms
        return 1102, FAIL, d
    return 1100, PASS, d


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


class MiniMqtt:
    """The world's library check on runtimes that use adafruit_minimqtt."""

    def __init__(self, pool, wrap):
        self.pool = pool
        self.wrap = wrap

    def __call__(self, p):
        return minimqtt_check(p, self.pool, self.wrap)
