# Who the runtime is, for the begin record and the runtime step: name, version, and on ESP32-style
# ports the unique id and reset cause. (ALPN: tls.can_alpn; free heap: memory.heap_free.)
import sys


def name():
    n = sys.implementation.name
    return n if n in ("micropython", "circuitpython") else "cpython"


def version():
    v = sys.implementation.version
    return "%d.%d.%d" % (v[0], v[1], v[2])


def machine_identity():
    """(unique id hex, reset cause name) from an ESP32-style `machine` module, else (None, None)."""
    try:
        import machine
    except ImportError:
        return None, None
    uid = None
    reset = None
    try:
        import binascii

        uid = binascii.hexlify(machine.unique_id()).decode()
    except (AttributeError, OSError):
        pass
    try:
        cause = machine.reset_cause()
        for nm in ("PWRON_RESET", "HARD_RESET", "WDT_RESET", "DEEPSLEEP_RESET", "SOFT_RESET"):
            if getattr(machine, nm, None) == cause:
                reset = nm[:-6].lower()
                break
        else:
            reset = str(cause)
    except (AttributeError, OSError):
        pass
    return uid, reset
