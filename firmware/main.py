# MicroPython entry: read authprobe.json from flash, build the world from socket/ssl/time and (on
# ESP32) network/machine, run the self-test; the report goes to the serial console. On the unix port
# the config path may be given as the first argument.
import sys

from selftest import world

cfg, w = world.prepare(sys.argv[1] if len(getattr(sys, "argv", ())) > 1 else "authprobe.json")
del world
from selftest import memory, probe  # noqa: E402 - after the world's builder is forgotten

memory.unload("world")
probe.run(cfg, w)
