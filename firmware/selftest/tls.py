# TLS: a verifying client context for MicroPython and CPython (CircuitPython has its own adapter),
# PEM to DER, and whether the runtime can send ALPN. Handshake errors: tls_errors.py.
import binascii

ALPN = "mqtt"

def pem_to_der(pem):
    """Every certificate in a PEM text, as DER (MicroPython's cadata wants one DER at a time)."""
    if isinstance(pem, (bytes, bytearray)):
        pem = bytes(pem).decode()
    out = []
    begin = "-----BEGIN CERTIFICATE-----"
    end = "-----END CERTIFICATE-----"
    i = pem.find(begin)
    while i >= 0:
        j = pem.find(end, i)
        if j < 0:
            break
        body = "".join(pem[i + len(begin):j].split())
        out.append(binascii.a2b_base64(body))
        i = pem.find(begin, j)
    return out


def can_alpn(ssl_mod):
    try:
        ctx = ssl_mod.SSLContext(ssl_mod.PROTOCOL_TLS_CLIENT)
    except Exception:  # noqa: BLE001
        return False
    return hasattr(ctx, "set_alpn_protocols")


def wrap(ssl_mod, sock, host, cas, alpn):
    """Handshake with SNI = host, CERT_REQUIRED against every DER in cas, ALPN when asked and
    possible. Returns (tls socket, details)."""
    ctx = ssl_mod.SSLContext(ssl_mod.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl_mod.CERT_REQUIRED
    for der in cas:
        ctx.load_verify_locations(cadata=der)
    sent = False
    if alpn and hasattr(ctx, "set_alpn_protocols"):
        ctx.set_alpn_protocols([ALPN])
        sent = True
    tsock = ctx.wrap_socket(sock, server_hostname=host)
    d = {"sni": host, "alpn_sent": sent, "alpn": None}
    sel = getattr(tsock, "selected_alpn_protocol", None)
    if sel is not None:
        d["alpn"] = sel()
    cipher = getattr(tsock, "cipher", None)
    if cipher is not None:
        try:
            c = cipher()
            d["cipher"] = c[0] if isinstance(c, tuple) else str(c)
            if isinstance(c, tuple) and len(c) > 1:
                d["version"] = c[1]
        except Exception:  # noqa: BLE001
            pass
    return tsock, d


class Wrap:
    """The world's wrap_tls for an `ssl` module with SSLContext (MicroPython, CPython)."""

    def __init__(self, ssl_mod):
        self.ssl = ssl_mod

    def __call__(self, sock, host, cas, alpn, addr=None):
        return wrap(self.ssl, sock, host, cas, alpn)
