# Handshake errors to catalogue codes. Error texts differ between runtimes (mbedTLS verify strings
# on MicroPython, OpenSSL reasons on CPython, ...), so codes come from stable substrings. Loaded only
# when a handshake fails.
from selftest import net

# Codes by catalogue name: MicroPython's compiler inlines `_NAME = const(n)` and drops the line
# (no heap; this try binds nothing there). CPython has no const() and takes the except.
try:
    _CONST_FOLDED = const(1)
except NameError:
    const = int

_TLS_UNTRUSTED = const(701)
_TLS_NAME_MISMATCH = const(702)
_TLS_CERT_EXPIRED = const(703)
_TLS_CERT_NOT_YET_VALID = const(704)
_TLS_CLOSED_IN_HANDSHAKE = const(705)
_TLS_TIMEOUT = const(706)
_TLS_NO_SNI = const(707)
_TLS_OUT_OF_MEMORY = const(708)
_TLS_ERROR = const(709)

# (substring, code); the first match wins. mbedTLS lists every verify flag at once, so the most
# fundamental comes first: an untrusted chain makes its dates and names moot.
_PATTERNS = (
    ("requires server_hostname", _TLS_NO_SNI),
    ("not correctly signed", _TLS_UNTRUSTED),
    ("unable to get local issuer", _TLS_UNTRUSTED),
    ("self-signed", _TLS_UNTRUSTED),
    ("self signed", _TLS_UNTRUSTED),
    ("NOT_TRUSTED", _TLS_UNTRUSTED),
    ("CA_CHAIN_REQUIRED", _TLS_UNTRUSTED),
    ("unknown ca", _TLS_UNTRUSTED),
    # CircuitPython: one mbedTLS code for every verify flag
    ("Certificate verification failed", _TLS_UNTRUSTED),
    ("has expired", _TLS_CERT_EXPIRED),
    ("validity has expired", _TLS_CERT_EXPIRED),
    ("CERT_EXPIRED", _TLS_CERT_EXPIRED),
    ("not yet valid", _TLS_CERT_NOT_YET_VALID),
    ("starts in the future", _TLS_CERT_NOT_YET_VALID),
    ("CERT_FUTURE", _TLS_CERT_NOT_YET_VALID),
    ("expected CN", _TLS_NAME_MISMATCH),
    ("CN does not match", _TLS_NAME_MISMATCH),
    ("CN_MISMATCH", _TLS_NAME_MISMATCH),
    ("Hostname mismatch", _TLS_NAME_MISMATCH),
    ("IP address mismatch", _TLS_NAME_MISMATCH),
    ("doesn't match", _TLS_NAME_MISMATCH),
    ("ALLOC_FAILED", _TLS_OUT_OF_MEMORY),
    ("MemoryError", _TLS_OUT_OF_MEMORY),
    ("CONN_EOF", _TLS_CLOSED_IN_HANDSHAKE),
    ("EOF occurred", _TLS_CLOSED_IN_HANDSHAKE),
    ("UNEXPECTED_EOF", _TLS_CLOSED_IN_HANDSHAKE),
    ("FATAL_ALERT", _TLS_CLOSED_IN_HANDSHAKE),
    ("handshake failure", _TLS_CLOSED_IN_HANDSHAKE),
    ("HANDSHAKE_FAILURE", _TLS_CLOSED_IN_HANDSHAKE),
    ("certificate required", _TLS_CLOSED_IN_HANDSHAKE),
    ("CERTIFICATE_REQUIRED", _TLS_CLOSED_IN_HANDSHAKE),
    ("reset by peer", _TLS_CLOSED_IN_HANDSHAKE),
    ("Failed SSL handshake", _TLS_ERROR),  # CircuitPython's one text for any handshake failure
    ("ConnectionReset", _TLS_CLOSED_IN_HANDSHAKE),
)


def classify(exc):
    """Catalogue code for a failed handshake."""
    text = net.text_of(exc)
    for needle, code in _PATTERNS:
        if needle in text:
            return code
    if net.is_timeout(exc):
        return _TLS_TIMEOUT
    if net.errno_of(exc) == 12 or type(exc).__name__ == "MemoryError":   # ENOMEM
        return _TLS_OUT_OF_MEMORY
    if net.is_closed(exc):
        return _TLS_CLOSED_IN_HANDSHAKE
    return _TLS_ERROR
