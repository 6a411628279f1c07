# Handshake errors to catalogue codes. Error texts differ between runtimes (mbedTLS verify strings
# on MicroPython, OpenSSL reasons on CPython, ...), so codes come from stable substrings. Loaded only
# when a handshake fails.
from selftest import net

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
    ("Certificate verification failed", 701),   # CircuitPython: one mbedTLS code for every verify flag
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
    ("Failed SSL handshake", 709),             # CircuitPython's one text for any handshake failure
    ("ConnectionReset", 705),
)


def classify(exc):
    """Catalogue code for a failed handshake."""
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
