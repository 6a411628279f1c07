# authprobe device self-test. Small and flat so it runs on MicroPython, CircuitPython and CPython.
# The probe's world (sockets, TLS, clock, output, radio) is passed in; see probe.py.
PROBE_VERSION = "0.1.0"
