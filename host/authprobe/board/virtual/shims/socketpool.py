# CircuitPython-like `socketpool` for the virtual board over MicroPython's socket: (host, port)
# addresses, send/recv_into, errors as OSError(errno); getaddrinfo failures as OSError(-2, ...).
import socket as _socket


class SocketPool:
    AF_INET = _socket.AF_INET
    SOCK_STREAM = _socket.SOCK_STREAM
    SOCK_DGRAM = _socket.SOCK_DGRAM
    IPPROTO_TCP = 6
    TCP_NODELAY = 1
    EAI_NONAME = -2

    def __init__(self, radio):
        self.radio = radio

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        try:
            infos = _socket.getaddrinfo(host, port, 0, _socket.SOCK_STREAM)
        except OSError:
            raise OSError(-2, "Name or service not known") from None
        out = []
        for info in infos:
            fam, ip, p = _socket.sockaddr(info[-1])
            if fam == _socket.AF_INET:
                out.append((fam, _socket.SOCK_STREAM, 6, "", (_socket.inet_ntop(fam, ip), p)))
        if not out:
            raise OSError(-2, "Name or service not known") from None
        return out

    def socket(self, family=_socket.AF_INET, type=_socket.SOCK_STREAM, proto=0):
        return Socket(self, family, type, proto)


class Socket:
    def __init__(self, pool, family, type, proto):
        self._pool = pool
        self._s = _socket.socket(family, type)

    def settimeout(self, value):
        self._s.settimeout(value)

    def setsockopt(self, level, optname, value):
        pass

    def connect(self, address):
        host, port = address
        addr = _socket.getaddrinfo(host, port, 0, _socket.SOCK_STREAM)[0][-1]
        self._s.connect(addr)

    def send(self, buf):
        return self._s.send(buf)

    def sendall(self, buf):
        self._s.sendall(buf)

    def recv_into(self, buf, nbytes=0):
        data = self._s.recv(nbytes or len(buf))
        buf[:len(data)] = data
        return len(data)

    def close(self):
        self._s.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
