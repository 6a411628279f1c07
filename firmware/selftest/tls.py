# TLS: a verifying client context for MicroPython and CPython (CircuitPython has its own adapter),
# and the classification of handshake errors. Error texts differ between runtimes (mbedTLS verify
# strings on MicroPython, OpenSSL reasons on CPython), so codes come from stable substrings.
import binascii

ALPN = "mqtt"

# (substring, code); the first match wins. mbedTLS lists every verify flag at once, so the most
# fundamental comes first: an untrusted chain makes its dates and names moot.
_PATTERNS = (
    ("requires server_hostname", 707),
    ("not correctly signed", 701),
    ("unable to get local issuer", 701),
    ("self-signed", 701),
    ("self signed", 701),
    ("NOT_TRUSTED", 701),
    ("CA_CHAIN_REQUIRED", 701),
    ("unknown ca", 701),
    ("has expired", 703),
    ("validity has expired", 703),
    ("CERT_EXPIRED", 703),
    ("not yet valid", 704),
    ("starts in the future", 704),
    ("CERT_FUTURE", 704),
    ("expected CN", 702),
    ("CN does not match", 702),
    ("CN_MISMATCH", 702),
    ("Hostname mismatch", 702),
    ("IP address mismatch", 702),
    ("doesn't match", 702),
    ("ALLOC_FAILED", 708),
    ("MemoryError", 708),
    ("CONN_EOF", 705),
    ("EOF occurred", 705),
    ("UNEXPECTED_EOF", 705),
    ("FATAL_ALERT", 705),
    ("handshake failure", 705),
    ("HANDSHAKE_FAILURE", 705),
    ("certificate required", 705),
    ("CERTIFICATE_REQUIRED", 705),
    ("reset by peer", 705),
    ("ConnectionReset", 705),
)


def classify(exc):
    """Catalogue code for a failed handshake."""
    from selftest import net

    text = net.text_of(exc)
    for needle, code in _PATTERNS:
        if needle in text:
            return code
    if net.is_timeout(exc):
        return 706
    if net.errno_of(exc) == 12 or type(exc).__name__ == "MemoryError":   # ENOMEM
        return 708
    if net.is_closed(exc):
        return 705
    return 709


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
