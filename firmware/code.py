# CircuitPython entry: settings.toml (written by `authprobe flash`) through os.getenv, then the
# self-test over wifi/socketpool/ssl; the report goes to the USB serial console.
import gc
import os
import ssl
import time

import socketpool
import wifi

from selftest import world_circuitpython

modules = {"wifi": wifi, "socketpool": socketpool, "ssl": ssl, "time": time, "gc": gc}  # type: dict
for _name in ("rtc", "adafruit_ntp", "microcontroller", "board"):
    try:
        modules[_name] = __import__(_name)
    except ImportError:
        modules[_name] = None

world_circuitpython.main(os.getenv, print, modules)
