"""Pure pieces of the device self-test: MQTT packets and the custom-auth username, WebSocket framing
and the upgrade, TLS error texts of each runtime mapped to codes, the ESP32 Wi-Fi adapter against a
fake `network` module that follows the ESP32 API, and the clock step with an unset board clock."""

from __future__ import annotations

import errno
import os
import ssl
import types

import pytest

from selftest import clock, mqtt, net, tls, tls_errors, wifi, wss, wss_upgrade
from selftest.probe import Probe, World

# --- MQTT ---------------------------------------------------------------------------------------


def test_connect_packet_layout():
    pkt = mqtt.connect("dev", "u?x=1", "pw", keepalive=60)
    assert pkt[0] == 0x10 and pkt[1] == len(pkt) - 2
    body = pkt[2:]
    assert body[:6] == b"\x00\x04MQTT" and body[6] == 4          # protocol level 3.1.1
    assert body[7] == 0x80 | 0x40 | 0x02                          # username, password, clean session
    assert body[8:10] == b"\x00\x3c"
    assert body[10:15] == b"\x00\x03dev" and body.endswith(b"\x00\x02pw")
    assert mqtt.connect("d")[9] == 0x02                           # no credentials: clean session only


def test_long_packets_use_multi_byte_lengths():
    pkt = mqtt.publish("t", b"x" * 300, pid=7, qos=1)
    assert pkt[0] == 0x32 and pkt[1] & 0x80 and pkt[2] == (2 + 1 + 2 + 300) >> 7
    stream = _Bytes(pkt)
    first, body = mqtt.read_packet(stream)
    assert first == 0x32 and mqtt.parse_publish(first, body) == ("t", b"x" * 300)
    assert mqtt.puback(first, body) == b"\x40\x02\x00\x07"
    assert mqtt.puback(0x30, body) is None


def test_custom_auth_username_percent_encodes_the_signature():
    u = mqtt.auth_username("dev", "My_Auth", "ab+/cd==", "tok", "t v")
    assert u == "dev?x-amz-customauthorizer-name=My_Auth&x-amz-customauthorizer-signature=ab%2B%2Fcd%3D%3D&tok=t%20v"
    assert mqtt.auth_username(None, None, None, "k", "v") == "?k=v"            # default authorizer, unsigned
    assert mqtt.auth_username("pre?built=1", "A", "s", "k", "v") == "pre?built=1"
    assert mqtt.auth_username("plain", None, None, None, None) == "plain"
    assert mqtt.pct("é") == "%C3%A9"


class _Bytes:
    """read(n)/write() over a byte string, like net.Stream."""

    def __init__(self, data=b""):
        self.buf = bytes(data)
        self.out = b""

    def read(self, n):
        if len(self.buf) < n:
            raise net.Closed("end")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _more(self, want):
        raise net.Closed("end")

    def write(self, data):
        self.out += data

    def close(self):
        pass


# --- WebSocket ----------------------------------------------------------------------------------

def test_upgrade_request_headers_and_query_variant():
    key = b"dGhlIHNhbXBsZSBub25jZQ=="
    head = wss_upgrade.upgrade_request("a-ats.iot.x.amazonaws.com", key, "Auth", "s+g=", "tok", "T").decode()
    assert head.startswith("GET /mqtt HTTP/1.1\r\nHost: a-ats.iot.x.amazonaws.com\r\n")
    assert "Sec-WebSocket-Protocol: mqtt\r\n" in head and "x-amz-customauthorizer-signature: s+g=\r\n" in head
    assert "tok: T\r\n" in head and head.endswith("\r\n\r\n")
    q = wss_upgrade.upgrade_request("h", key, "Auth", "s+g=", "tok", "T", query=True).decode()
    assert q.startswith("GET /mqtt?x-amz-customauthorizer-name=Auth&x-amz-customauthorizer-signature=s%2Bg%3D&tok=T ")
    assert "x-amz-customauthorizer" not in q.split("\r\n", 1)[1]


def test_accept_key_matches_rfc6455_example():
    assert wss_upgrade.accept_for(b"dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_frames_are_masked_and_read_back():
    data = os.urandom(200)
    f = wss.frame(data)
    assert f[0] == 0x82 and f[1] == 0x80 | 126 and f[2:4] == (200).to_bytes(2, "big")
    mask = f[4:8]
    assert bytes(b ^ mask[i & 3] for i, b in enumerate(f[8:])) == data
    # server frames are unmasked; a ping is answered with a pong, a close ends the stream
    server = bytes((0x89, 2)) + b"hi" + bytes((0x82, 3)) + b"abc" + bytes((0x88, 2)) + b"\x03\xe8"
    raw = _Bytes(server)
    ws = wss.WsStream(raw)
    assert ws.read(3) == b"abc"
    assert raw.out[0] == 0x8A                                   # pong
    with pytest.raises(net.Closed, match="1000"):
        ws.read(1)


def test_parse_head():
    status, reason, headers = wss_upgrade.parse_head(b"HTTP/1.1 403 Forbidden\r\nX-A: b\r\n\r\n")
    assert (status, reason, headers) == (403, "Forbidden", {"x-a": "b"})
    with pytest.raises(ValueError):
        wss_upgrade.parse_head(b"\x20\x02\x00\x00")


# --- TLS error texts ----------------------------------------------------------------------------

@pytest.mark.parametrize("exc,code", [
    (ValueError("\nThe certificate is not correctly signed by the trusted CA\n"), 701),           # MicroPython
    (ValueError("\nThe certificate Common Name (CN) does not match with the expected CN\n"), 702),
    (ValueError("\nThe certificate validity has expired\n"), 703),
    (ValueError("\nThe certificate validity starts in the future\n"), 704),
    (ValueError("\nThe certificate validity has expired\nThe certificate is not correctly signed by the "
                "trusted CA\n"), 701),                                                          # every flag at once
    (OSError(-29312, "MBEDTLS_ERR_SSL_CONN_EOF"), 705),
    (OSError(-30592, "MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE"), 705),
    (OSError(errno.ETIMEDOUT), 706),
    (ValueError("CERT_REQUIRED requires server_hostname"), 707),
    (OSError(errno.ENOMEM), 708),
    (OSError(-17040, "MBEDTLS_ERR_RSA_PUBLIC_FAILED+MBEDTLS_ERR_MPI_ALLOC_FAILED"), 708),
    (ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
                                     "unable to get local issuer certificate (_ssl.c:1006)"), 701),  # CPython
    (ssl.SSLCertVerificationError(1, "certificate verify failed: Hostname mismatch, certificate is not valid"), 702),
    (ssl.SSLCertVerificationError(1, "certificate verify failed: certificate has expired"), 703),
    (ssl.SSLEOFError(8, "EOF occurred in violation of protocol (_ssl.c:992)"), 705),
    (ConnectionResetError(104, "Connection reset by peer"), 705),
    (TimeoutError("timed out"), 706),
    (OSError(-9984, "X509 - Certificate verification failed, e.g. CRL, CA or signature check failed"), 701),
    (OSError(-1, "something new"), 709),
])
def test_tls_errors_of_each_runtime_map_to_codes(exc, code):
    assert tls_errors.classify(exc) == code


def test_pem_to_der_splits_every_certificate():
    import tempfile
    from pathlib import Path

    from tests.fixtures.probe_servers import TestPKI

    pki = TestPKI(Path(tempfile.mkdtemp()))
    pem = pki.ca_pem.read_text() + pki.certs["good"][0].read_text()
    ders = tls.pem_to_der(pem)
    assert len(ders) == 2 and ders[0] == pki.ca_der
    assert tls.can_alpn(ssl) is True


# --- ESP32 Wi-Fi, against the ESP32 network API ---------------------------------------------------

class FakeWLAN:
    """network.WLAN(STA_IF) as on the ESP32: active(), connect(), status(), status('rssi'),
    isconnected(), ifconfig(); `script` is the status sequence after connect()."""

    def __init__(self, net_mod, script):
        self.n = net_mod
        self.script = list(script)
        self.state = net_mod.STAT_IDLE
        self.was_active = False

    def active(self, on=None):
        if on is not None:
            self.was_active = on
        return self.was_active

    def connect(self, ssid, key):
        self.ssid, self.key = ssid, key
        self.state = self.n.STAT_CONNECTING

    def status(self, param=None):
        if param == "rssi":
            return -61
        if self.script:
            self.state = self.script.pop(0)
        return self.state

    def isconnected(self):
        return self.state == self.n.STAT_GOT_IP

    def ifconfig(self):
        return ("10.0.0.7", "255.255.255.0", "10.0.0.1", "10.0.0.1")


def fake_network(script):
    n = types.SimpleNamespace(STA_IF=0, STAT_IDLE=1000, STAT_CONNECTING=1001, STAT_GOT_IP=1010,
                              STAT_NO_AP_FOUND=201, STAT_WRONG_PASSWORD=202, STAT_BEACON_TIMEOUT=200,
                              STAT_ASSOC_FAIL=203, STAT_HANDSHAKE_TIMEOUT=204, STAT_CONNECT_FAIL=205)
    n.wlan = FakeWLAN(n, script)
    n.WLAN = lambda interface: n.wlan
    return n


class FastClock:
    def __init__(self):
        self.t = 0

    def ms(self):
        return self.t

    def since(self, t0):
        return self.t - t0

    def sleep_ms(self, ms):
        self.t += ms


@pytest.mark.parametrize("script,code,status", [
    (["STAT_CONNECTING", "STAT_GOT_IP"], 300, "got_ip"),
    (["STAT_CONNECTING", "STAT_NO_AP_FOUND"], 301, "no_ap_found"),
    (["STAT_WRONG_PASSWORD"], 302, "wrong_password"),
    (["STAT_HANDSHAKE_TIMEOUT"], 303, "handshake_timeout"),
    (["STAT_CONNECT_FAIL"], 304, "connect_fail"),
    ([], 303, "connecting"),                                   # never connects: our own timeout
])
def test_esp32_wifi_statuses(script, code, status):
    n = fake_network([])
    n.wlan.script = [getattr(n, s) for s in script]
    got, d = wifi.Esp32Radio(n).join("lab", "password1", 1000, FastClock())
    assert got == code and d["status"] == status and d["ssid"] == "lab"
    assert n.wlan.was_active and n.wlan.key == "password1"
    if code == 300:
        assert d["ip"] == "10.0.0.7" and d["rssi"] == -61


# --- the clock step ---------------------------------------------------------------------------------

class BoardTime:
    """A board's time module right after boot: the RTC at its epoch (2000-01-01)."""

    def __init__(self, now=946684800):
        self.now = now

    def time(self):
        return self.now

    def gmtime(self, t):
        import time

        return time.gmtime(t)

    def monotonic(self):
        return 0.0


def probe_with(clk, cfg=None):
    lines = []
    w = World("micropython", "1.29.0", None, clk, lines.append, None, False)
    p = Probe(cfg or {"device": {"client_id": "x"}}, w)
    return p, lines


def test_uid_placeholder_gives_each_board_its_own_client_id_and_topic():
    w = World("micropython", "1.29.0", None, clock.Clock(BoardTime(1764115200)), print, None, False)
    w.uid = "a1b2c3d4e5f6"
    p = Probe({"device": {"client_id": "tray-{uid}"}, "test": {"topic": "selftest/{uid}/ping"}}, w)
    assert (p.client_id, p.topic) == ("tray-a1b2c3d4e5f6", "selftest/a1b2c3d4e5f6/ping")
    p = Probe({"device": {"client_id": "tray-{uid}"}}, w)
    assert p.topic == "authprobe/tray-a1b2c3d4e5f6"
    w.uid = None  # no unique id (CPython, the unix port): the name stays as written
    assert Probe({"device": {"client_id": "tray-{uid}"}}, w).client_id == "tray-{uid}"


def test_unset_clock_without_ntp_fails_and_blocks_tls():
    from selftest import steps_board, steps_net

    p, _ = probe_with(clock.Clock(BoardTime()))
    code, status, d = steps_board.s_clock(p)
    assert (code, status, d["year"]) == (401, "fail", 2000)
    assert steps_net.s_tls(p)[1] == "skip" and p.blocked.startswith("clock unset")


def test_ntp_sets_the_clock_or_reports_why_not():
    from selftest import steps_board

    t = BoardTime()

    def ntp(host):
        t.now = 1764115200   # 2025-11-26
    p, _ = probe_with(clock.Clock(t, ntp))
    code, status, d = steps_board.s_clock(p)
    assert (code, status, d["source"]) == (400, "pass", "ntp") and d["utc"].startswith("2025-11-26T")

    def broken(host):
        raise OSError(errno.ETIMEDOUT)
    p, _ = probe_with(clock.Clock(BoardTime(), broken), {"device": {"client_id": "x"}, "test": {"ntp_host": "ntp.lan"}})
    code, status, d = steps_board.s_clock(p)
    assert (code, status, d["ntp_host"]) == (402, "fail", "ntp.lan") and "OSError" in d["error"]


def test_error_helpers():
    assert net.is_timeout(OSError(110)) and net.is_timeout(TimeoutError()) and not net.is_timeout(OSError(111))
    assert net.is_refused(ConnectionRefusedError(111, "refused")) and net.is_refused(OSError(111))
    assert net.is_closed(OSError(-29312, "MBEDTLS_ERR_SSL_CONN_EOF")) and not net.is_closed(OSError(2))


class _FailingPool:
    """A socket pool whose connect() fails the way a runtime reports it."""

    def __init__(self, exc):
        self.exc = exc

    def socket(self, *a):
        exc = self.exc

        class S:
            def settimeout(self, t):
                pass

            def connect(self, addr):
                raise exc

            def close(self):
                pass
        return S()


@pytest.mark.parametrize("exc,code", [
    (OSError(111), 601),                          # unix, CPython
    (OSError(104), 601),                          # lwIP (ESP32): RST answering the SYN
    (ConnectionRefusedError(111, "Connection refused"), 601),
    (OSError(116), 602),                          # lwIP ETIMEDOUT
    (OSError(110), 602),
    (TimeoutError("timed out"), 602),
    (OSError(113), 603),
])
def test_tcp_errors_of_each_runtime(exc, code):
    from selftest import steps_net

    w = World("micropython", "1.29.0", _FailingPool(exc), clock.Clock(BoardTime(1764115200)), print, None, False)
    p = Probe({"device": {"client_id": "x"}}, w)
    p.addr = ("127.0.0.1", 443)
    got, status, d = steps_net.s_tcp(p)
    assert (got, status) == (code, "fail") and d["addr"] == "127.0.0.1:443"


def test_low_heap_is_a_runtime_warning():
    from selftest import steps_board

    w = World("micropython", "1.29.0", None, clock.Clock(BoardTime(1764115200)), print, None, False)
    w.heap_free = lambda: 9000
    p = Probe({"device": {"client_id": "x"}}, w)
    code, status, d = steps_board.s_runtime(p)
    assert (code, status, d["heap_free"]) == (202, "warn", 9000)


def test_a_probe_bug_is_reported_and_the_run_still_ends():
    from selftest import record as rec

    lines = []
    w = World("cpython", "3.11", None, clock.Clock(BoardTime(1764115200)), lines.append, None, True)
    w.radio = types.SimpleNamespace(join=lambda *a: 1 / 0)         # a broken adapter
    verdict = Probe({"device": {"client_id": "x"}, "endpoint": {"host": "a1b2-ats.iot.eu-west-1.amazonaws.com"},
                     "auth": {"token": "t", "token_key_name": "k", "signing_disabled": True},
                     "wifi": {"ssid": "lab"}}, w).run()
    records = [rec.decode(line)[0] for line in lines]
    wifi_rec = records[3]
    assert (wifi_rec["code"], wifi_rec["step"], wifi_rec["status"]) == (9000, "probe", "fail")
    assert "ZeroDivisionError" in wifi_rec["d"]["error"] and wifi_rec["d"]["step"] == 3
    assert all(r["status"] == "skip" for r in records[4:-1]) and records[-1]["k"] == "end"
    assert verdict == "fail"
