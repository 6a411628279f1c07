# CircuitPython-like `ssl` for the virtual board over MicroPython's tls: create_default_context(),
# load_verify_locations(cadata=<one PEM>), wrap_socket(sock, server_hostname=...) whose connect()
# shakes hands; no ALPN. Without a CA the board's built-in bundle would be used; the virtual board
# has none, so only a configured CA verifies. Verify failures come out as CircuitPython's OSError.
import binascii

import tls

X509_VERIFY_FAILED = -9984
SSL_FATAL_ALERT = -0x7780


def _pem_to_der(pem):
    if isinstance(pem, bytes):
        pem = pem.decode()
    start = pem.find("-----BEGIN CERTIFICATE-----")
    end = pem.find("-----END CERTIFICATE-----")
    if start < 0 or end < 0:
        raise ValueError("invalid cert")
    body = pem[start + 27:end].replace("\n", "").replace("\r", "")
    return binascii.a2b_base64(body)


class SSLContext:
    def __init__(self):
        self._ca = None
        self.check_hostname = True

    def load_verify_locations(self, cafile=None, capath=None, cadata=None):
        if cafile is not None or capath is not None:
            raise NotImplementedError("only cadata is supported")
        self._ca = _pem_to_der(cadata)

    def set_default_verify_paths(self):
        pass

    def load_cert_chain(self, certfile, keyfile):
        raise NotImplementedError("client certificates are not used by the self-test")

    def wrap_socket(self, sock, server_side=False, server_hostname=None):
        return SSLSocket(self, sock, server_hostname)


def create_default_context():
    return SSLContext()


class SSLSocket:
    def __init__(self, ctx, sock, server_hostname):
        self._ctx = ctx
        self._raw = sock
        self._host = server_hostname
        self._s = None

    def settimeout(self, value):
        self._raw.settimeout(value)

    def connect(self, address):
        self._raw.connect(address)
        ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
        ctx.verify_mode = tls.CERT_REQUIRED
        if self._ctx._ca is not None:
            ctx.load_verify_locations(self._ctx._ca)
        try:
            self._s = ctx.wrap_socket(self._raw._s, server_hostname=self._host)
        except ValueError as exc:
            text = str(exc)
            if "signed" in text or "CN" in text or "expired" in text or "invalid" in text or "verif" in text:
                raise OSError(X509_VERIFY_FAILED, "X509 - Certificate verification failed, e.g. CRL, CA or "
                              "signature check failed") from None
            raise OSError(SSL_FATAL_ALERT, "SSL - A fatal alert message was received from our peer") from None

    def send(self, buf):
        return self._s.send(buf)

    def recv_into(self, buf, nbytes=0):
        data = self._s.recv(nbytes or len(buf))
        buf[:len(data)] = data
        return len(data)

    def close(self):
        if self._s is not None:
            self._s.close()
        self._raw.close()
