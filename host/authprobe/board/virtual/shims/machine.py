# ESP32-like `machine` for the virtual board: the parts a self-test touches. Values follow the ESP32
# port (constants from its modmachine.c; machine.reset() reports SOFT_RESET there, as here).
import os
import sys
import time

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5

WAKE_REASON_UNDEFINED = 0

_MARK = "\x00\x1bVB:"


def _request(word):
    # The host restarts the interpreter; like a board, this call never returns.
    sys.stdout.write(_MARK + word + "\x00")
    while True:
        time.sleep_ms(1000)


def unique_id():
    uid = os.getenv("AUTHPROBE_VB_UID") or "a4cf12000001"
    return bytes(int(uid[i:i + 2], 16) for i in range(0, len(uid), 2))


def reset_cause():
    return int(os.getenv("AUTHPROBE_VB_RESET_CAUSE") or PWRON_RESET)


def wake_reason():
    return WAKE_REASON_UNDEFINED


def reset():
    _request("RESET")


def soft_reset():
    _request("SOFT")


def deepsleep(ms=0):
    _request("DEEPSLEEP " + str(int(ms)))


def lightsleep(ms=0):
    time.sleep_ms(ms)


def idle():
    time.sleep_ms(1)


def freq(hz=None):
    return 240000000 if hz is None else None


class WDT:
    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout

    def feed(self):
        pass


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 2
    PULL_DOWN = 1
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self._value = 0 if value is None else value

    def value(self, v=None):
        if v is None:
            return self._value
        self._value = 1 if v else 0

    def on(self):
        self._value = 1

    def off(self):
        self._value = 0

    def __call__(self, v=None):
        return self.value(v)
