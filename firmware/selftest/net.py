# Byte streams over whatever socket the runtime hands us, and the error shapes of three runtimes
# folded into two exceptions the steps can reason about: Closed (the peer went away) and Timeout.
#
# MicroPython and CPython sockets have sendall/recv; CircuitPython's have send/recv_into only.

ETIMEDOUT = (110, 116, 60, 10060)     # Linux/lwIP, CircuitPython-espressif, BSD, Windows
ECONNREFUSED = (111, 61, 10061)
ECONNRESET_LIKE = (104, 32, 103, 113, 128, 54, 10054, -29312, -30848, -76)  # reset, pipe, abort, TLS EOF


class Closed(Exception):
    pass


class Timeout(Exception):
    pass


def errno_of(exc):
    n = getattr(exc, "errno", None)
    if n is None and getattr(exc, "args", None):
        a = exc.args[0]
        if isinstance(a, int):
            n = a
    return n


def text_of(exc):
    return (type(exc).__name__ + " " + " ".join(str(a) for a in getattr(exc, "args", ()))).strip()


def is_timeout(exc):
    if type(exc).__name__ in ("TimeoutError", "timeout", "Timeout"):
        return True
    if errno_of(exc) in ETIMEDOUT:
        return True
    t = text_of(exc).lower()
    return "timed out" in t or "etimedout" in t


def is_refused(exc):
    return errno_of(exc) in ECONNREFUSED or "refused" in text_of(exc).lower()


def is_closed(exc):
    if type(exc).__name__ in ("ConnectionResetError", "BrokenPipeError", "ConnectionAbortedError",
                              "SSLEOFError", "SSLZeroReturnError", "Closed"):
        return True
    if errno_of(exc) in ECONNRESET_LIKE:
        return True
    t = text_of(exc)
    return "EOF" in t or "CONN_EOF" in t or "reset by peer" in t


def digest(name, data):
    """hashlib digest on every runtime: MicroPython has hashlib.sha1/sha256 classes only,
    CircuitPython has hashlib.new() only, CPython both."""
    import hashlib

    cls = getattr(hashlib, name, None)
    h = cls(data) if cls is not None else hashlib.new(name, data)
    return h.digest()


def resolve(pool, host, port):
    """The first address getaddrinfo gives, in the shape the runtime's connect() wants."""
    info = pool.getaddrinfo(host, port)
    if not info:
        raise OSError(-2, "no address")
    return info[0][-1]


def addr_text(pool, addr):
    """host:port for a connect() address; MicroPython's unix port gives raw sockaddr bytes."""
    if isinstance(addr, (bytes, bytearray)):
        conv = getattr(pool, "sockaddr", None)
        if conv is None:
            return "?"
        addr = conv(addr)
        if len(addr) > 2 and isinstance(addr[1], (bytes, bytearray)):
            # (family, packed ip, port, ...)
            ntop = getattr(pool, "inet_ntop", None)
            ip = ntop(addr[0], addr[1]) if ntop else str(addr[1])
            return "%s:%s" % (ip, addr[2])
    if isinstance(addr, tuple):
        return "%s:%s" % (addr[0], addr[1])
    return str(addr)


def _folded(exc):
    """Timeout or Closed for a runtime's socket error that means one of them; other errors as they are."""
    if is_timeout(exc):
        return Timeout(text_of(exc))
    if is_closed(exc):
        return Closed(text_of(exc))
    return exc


class Stream:
    """Exact-length reads and full writes over a socket; timeouts and peer closes become Timeout and
    Closed so callers need not know the runtime's exception zoo."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self._recv = getattr(sock, "recv", None)
        self._scratch = bytearray(0 if self._recv else 512)

    def _more(self, want):
        try:
            if self._recv is not None:
                data = self._recv(want)
            else:
                n = self.sock.recv_into(self._scratch, min(want, 512))
                data = bytes(self._scratch[:n])
        except Exception as e:  # noqa: BLE001 - every runtime raises its own type here
            raise _folded(e)
        if not data:
            raise Closed("peer closed")
        self.buf += data

    def read(self, n):
        while len(self.buf) < n:
            self._more(max(n - len(self.buf), 64))
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def peek_some(self):
        """Whatever arrives first (at least one byte), left in the buffer."""
        if not self.buf:
            self._more(64)
        return self.buf

    def write(self, data):
        try:
            send_all = getattr(self.sock, "sendall", None)
            if send_all is not None:
                send_all(data)
                return
            view = memoryview(data)
            while len(view):
                n = self.sock.send(view)
                view = view[n:]
        except Exception as e:  # noqa: BLE001
            raise _folded(e)

    def settimeout(self, seconds):
        # Only meaningful before TLS on MicroPython (the TLS socket keeps the plain socket's timeout).
        st = getattr(self.sock, "settimeout", None)
        if st is not None:
            try:
                st(seconds)
            except Exception:  # noqa: BLE001
                pass

    def close(self):
        try:
            self.sock.close()
        except Exception:  # noqa: BLE001
            pass
