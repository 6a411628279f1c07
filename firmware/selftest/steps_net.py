# Steps that reach the endpoint: DNS (of the dial address), TCP, TLS with SNI = endpoint and the
# bundled + configured CAs. Handshake errors are classified in tls_errors.py, loaded only on failure.
import gc

from selftest import net
from selftest.probe import FAIL, PASS, SKIP, WARN, short
from selftest.tls import ALPN

# Codes by catalogue name: MicroPython's compiler inlines `_NAME = const(n)` and drops the line
# (no heap; this try binds nothing there). CPython has no const() and takes the except.
try:
    _CONST_FOLDED = const(1)
except NameError:
    const = int

_DNS_OK = const(500)
_DNS_FAILURE = const(501)
_TCP_OK = const(600)
_TCP_REFUSED = const(601)
_TCP_TIMEOUT = const(602)
_TCP_ERROR = const(603)
_TLS_OK = const(700)
_TLS_ALPN_NOT_NEGOTIATED = const(710)


def s_dns(p):
    d = {"host": p.dial_host, "port": p.dial_port}
    if p.dial_host != p.host:
        d["via"] = "connect_address"
    try:
        p.addr = net.resolve(p.w.pool, p.dial_host, p.dial_port)
    except Exception as e:  # noqa: BLE001
        d["error"] = short(e)
        return _DNS_FAILURE, FAIL, d
    d["addr"] = net.addr_text(p.w.pool, p.addr)
    return _DNS_OK, PASS, d


def s_tcp(p):
    d = {"addr": net.addr_text(p.w.pool, p.addr)}
    sock = p.w.pool.socket()
    p.sock = sock
    s = net.Stream(sock)
    s.settimeout(p.timeout_ms / 1000)
    try:
        sock.connect(p.addr)
    except Exception as e:  # noqa: BLE001
        d["error"] = short(e)
        # lwIP (ESP32) reports a RST answering the SYN as ECONNRESET rather than ECONNREFUSED.
        if net.is_refused(e) or net.errno_of(e) == 104:
            return _TCP_REFUSED, FAIL, d
        if net.is_timeout(e):
            d["timeout_ms"] = p.timeout_ms
            return _TCP_TIMEOUT, FAIL, d
        return _TCP_ERROR, FAIL, d
    # The cloud logs a refused connection by its source port, not its client id (Connection.AuthNError);
    # CPython can tell it (MicroPython and CircuitPython sockets have no getsockname).
    name = getattr(sock, "getsockname", None)
    if name is not None:
        try:
            d["local_port"] = name()[1]
        except Exception:  # noqa: BLE001
            pass
    return _TCP_OK, PASS, d


def s_tls(p):
    if p.no_tls:
        p.blocked = p.no_tls
        return _TLS_OK, SKIP, {"why": p.no_tls}
    want = p.transport in ("mqtt", "auto") and p.w.alpn
    labels = [label for label, _ in p.w.cas]
    try:
        gc.collect()    # the handshake wants a few KB in one piece
        tsock, d = p.w.wrap_tls(p.sock, p.host, [der for _, der in p.w.cas], want, p.addr)
    except Exception as e:  # noqa: BLE001
        from selftest import tls_errors

        return tls_errors.classify(e), FAIL, {"sni": p.host, "ca": labels, "error": short(e)}
    p.stream = net.Stream(tsock)
    p.alpn = d.get("alpn")
    d["ca"] = labels
    if want and p.alpn != ALPN:
        d["why"] = "sent ALPN 'mqtt' but the server did not select it"
        return _TLS_ALPN_NOT_NEGOTIATED, WARN, d
    return _TLS_OK, PASS, d
