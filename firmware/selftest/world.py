# The world for runtimes with BSD-style `socket` and a CPython-like `ssl` (MicroPython on ESP32 and
# on the unix port, and CPython): sockets, verifying TLS, clock, radio (ESP32 `network`, absent on
# the unix port and CPython), ESP32 `machine` identity, the client library for the library step.
import json
import sys

from selftest import memory

try:
    from typing import Any  # noqa: F401 - for type comments only; boards have no typing
except ImportError:
    pass


def read_config(path):
    """(config dict, None) or (None, why it cannot be read)."""
    try:
        with open(path) as f:
            cfg = json.load(f)
    except OSError as e:
        return None, "cannot read %s (%s); copy it to the board with `authprobe flash`" % (path, e)
    except ValueError as e:
        return None, "%s is not valid JSON (%s)" % (path, e)
    if not isinstance(cfg, dict):
        return None, "%s holds no JSON object" % path
    return cfg, None


def read_ca(path):
    """([DER, ...], None) or ([], why): a PEM (any number of certificates) or one DER file."""
    from selftest import tls

    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return [], "cannot read the CA file %s (%s)" % (path, e)
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            ders = tls.pem_to_der(data)
        except ValueError:
            ders = []
        if not ders:
            return [], "%s holds no readable PEM certificate" % path
        return ders, None
    if data[:1] != b"\x30":
        return [], "%s is neither PEM nor DER" % path
    return [data], None


def build(cfg, write=print):
    import socket
    import ssl
    import time

    from selftest import clock, probe, roots, runtime, tls

    name = runtime.name()
    radio = None
    ntp = None  # type: Any
    try:
        import network  # type: ignore[import-not-found]

        from selftest.wifi import Esp32Radio

        radio = Esp32Radio(network)
        try:
            import ntptime  # type: ignore[import-not-found]

            def _ntp(host):
                ntptime.host = host
                ntptime.settime()

            ntp = _ntp
        except ImportError:
            pass
    except ImportError:
        pass

    wrap = tls.Wrap(ssl)

    w = probe.World(name, runtime.version(), socket, clock.Clock(time, ntp, "ntp" if ntp else "system"),
                    write, wrap, tls.can_alpn(ssl))
    w.radio = radio
    w.uid, w.reset = runtime.machine_identity()
    w.heap_free = memory.heap_free
    w.board = (cfg or {}).get("device", {}).get("board") if isinstance((cfg or {}).get("device"), dict) else None
    w.board = w.board or getattr(sys, "platform", None)
    w.firmware = getattr(sys.implementation, "_machine", None) or sys.version.split()[0]
    w.cas = [(label, der) for label, der in roots.ROOTS]
    if name == "micropython":
        w.library = memory.Lazy("library", "umqtt_check")
    elif name == "cpython":
        w.library = memory.Lazy("library_minimqtt", "check")
    return w


def prepare(path="authprobe.json", write=print):
    """(config, world) from the config file on flash; a config or CA that cannot be read becomes a
    problem for the config step to report, not an exception."""
    cfg, problem = read_config(path)
    return setup(cfg, write, problem)


def setup(cfg, write=print, problem=None):
    """(config, world) for a config dict (endpoint.ca a file path)."""
    problems = None if problem else memory.lint(cfg)
    w = build(cfg, write)
    w.problems = problems
    memory.unload("runtime")
    if problem:
        w.config_problem = problem
        cfg = {}
    ca = cfg.get("endpoint", {}).get("ca") if isinstance(cfg.get("endpoint"), dict) else None
    if isinstance(ca, str) and ca:
        ders, why = read_ca(ca)
        if why:
            w.ca_problem = why
        w.cas = [("configured CA %d" % (i + 1), der) for i, der in enumerate(ders)] + w.cas
    return cfg, w


def run(cfg, write=print, problem=None):
    """Run the probe on a config dict; returns the verdict."""
    cfg, w = setup(cfg, write, problem)
    from selftest import probe

    return probe.run(cfg, w)

