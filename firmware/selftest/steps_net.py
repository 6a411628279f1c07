# Steps that reach the endpoint: DNS (of the dial address), TCP, TLS with SNI = endpoint and the
# bundled + configured CAs. Handshake errors are classified in tls_errors.py, loaded only on failure.
import gc

from selftest import net
from selftest.probe import FAIL, PASS, SKIP, WARN, short
from selftest.tls import ALPN


def s_dns(p):
    d = {"host": p.dial_host, "port": p.dial_port}
    if p.dial_host != p.host:
        d["via"] = "connect_address"
    try:
        p.addr = net.resolve(p.w.pool, p.dial_host, p.dial_port)
    except Exception as e:  # noqa: BLE001
        d["error"] = short(e)
        return 501, FAIL, d
    d["addr"] = net.addr_text(p.w.pool, p.addr)
    return 500, PASS, d


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
            return 601, FAIL, d
        if net.is_timeout(e):
            d["timeout_ms"] = p.timeout_ms
            return 602, FAIL, d
        return 603, FAIL, d
    return 600, PASS, d


def s_tls(p):
    if p.no_tls:
        p.blocked = p.no_tls
        return 700, SKIP, {"why": p.no_tls}
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
        return 710, WARN, d
    return 700, PASS, d
