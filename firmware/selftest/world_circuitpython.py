# The world on CircuitPython (ESP32-S2/S3): settings.toml through os.getenv, `wifi.radio`,
# `socketpool`, `ssl`, `rtc` (+ adafruit_ntp when installed), `microcontroller` identity.
#
# CircuitPython's SSL socket shakes hands inside connect(), so TLS here dials afresh: the TCP step's
# plain socket proves reachability and is closed. Its SSLContext takes one PEM CA (cadata) or uses
# the built-in bundle, which carries the Amazon roots; there is no ALPN, so `auto` means wss.
import binascii
import sys

from selftest import clock, probe, runtime, settings

try:
    from typing import Any  # noqa: F401 - for type comments only; boards have no typing
except ImportError:
    pass

SETTINGS_PREFIX = "AUTHPROBE_"
CA_FILE = "authprobe_ca.pem"


def read_settings(getenv):
    """The nested config from settings.toml keys AUTHPROBE_<SECTION>_<KEY> (bools stored as 0/1)."""
    cfg = {}
    from selftest import config

    for section, key, kind in config.FIELDS:
        value = getenv((SETTINGS_PREFIX + section + "_" + key).upper())
        if value is None:
            continue
        if kind == "bool" and isinstance(value, int):
            value = bool(value)
        cfg.setdefault(section, {})[key] = value
    return cfg


class Tls:
    """(sock, host, cas, alpn, addr) -> (TLS socket, details) for CircuitPython's ssl."""

    def __init__(self, ssl_mod, pool, timeout_s, configured_pem=None):
        self.ssl = ssl_mod
        self.pool = pool
        self.timeout = timeout_s
        self.pem = configured_pem

    def __call__(self, sock, host, cas, alpn, addr=None):
        try:
            sock.close()
        except Exception:  # noqa: BLE001
            pass
        ctx = self.ssl.create_default_context()
        if self.pem:
            ctx.load_verify_locations(cadata=self.pem)
        raw = self.pool.socket(self.pool.AF_INET, self.pool.SOCK_STREAM)
        raw.settimeout(self.timeout)
        tsock = ctx.wrap_socket(raw, server_hostname=host)
        try:
            tsock.connect(addr)
        except BaseException:
            tsock.close()
            raise
        return tsock, {"sni": host, "alpn_sent": False, "alpn": None,
                       "ca": "configured" if self.pem else "built-in bundle"}


def build(cfg, write, modules):
    """modules: {"wifi", "socketpool", "ssl", "time", "rtc"?, "adafruit_ntp"?, "microcontroller"?, "gc"?}"""
    wifi = modules["wifi"]
    pool = modules["socketpool"].SocketPool(wifi.radio)
    ssl_mod = modules["ssl"]
    ntp = None  # type: Any
    if modules.get("adafruit_ntp") is not None and modules.get("rtc") is not None:
        def _ntp(host):
            source = modules["adafruit_ntp"].NTP(pool, server=host, tz_offset=0)
            modules["rtc"].RTC().datetime = source.datetime

        ntp = _ntp

    timeout = settings.get(cfg or {}, "test", "timeout_ms") / 1000
    wrap = Tls(ssl_mod, pool, timeout)
    w = probe.World("circuitpython", runtime.version(), pool,
                    clock.Clock(modules["time"], ntp, "ntp" if ntp else "rtc"), write, wrap, False)
    from selftest.wifi import CircuitPythonRadio

    w.radio = CircuitPythonRadio(wifi)
    mc = modules.get("microcontroller")
    if mc is not None:
        try:
            w.uid = binascii.hexlify(bytes(mc.cpu.uid)).decode()
            w.reset = str(mc.cpu.reset_reason).split(".")[-1].lower()
        except (AttributeError, ValueError):
            pass
    gc = modules.get("gc")
    if gc is not None:
        w.heap_free = gc.mem_free
    w.board = getattr(modules.get("board"), "board_id", None) or sys.platform
    w.firmware = getattr(sys.implementation, "_machine", None)
    from selftest import memory, roots

    w.cas = list(roots.ROOTS)
    w.library = memory.Lazy("library_minimqtt", "check")
    return w


def main(getenv, write, modules, open_file=open):
    cfg = read_settings(getenv)
    from selftest import memory

    problems = memory.lint(cfg)
    w = build(cfg, write, modules)
    w.problems = problems
    ca = settings.get(cfg, "endpoint", "ca")
    if ca:
        try:
            with open_file(ca) as f:
                pem = f.read()
        except OSError as e:
            w.ca_problem = "cannot read the CA file %s (%s)" % (ca, e)
        else:
            if "-----BEGIN CERTIFICATE-----" not in pem:
                w.ca_problem = "%s holds no PEM certificate" % ca
            else:
                w.wrap_tls.pem = pem
                w.cas = [("configured CA 1", b"")] + w.cas
    return probe.run(cfg, w)
