# CircuitPython-like `microcontroller` for the virtual board: the identity and reset parts a
# self-test touches (cpu.uid, cpu.reset_reason, reset()).
import os
import sys
import time

_MARK = "\x00\x1bVB:"


class ResetReason:
    POWER_ON = "microcontroller.ResetReason.POWER_ON"
    BROWNOUT = "microcontroller.ResetReason.BROWNOUT"
    SOFTWARE = "microcontroller.ResetReason.SOFTWARE"
    DEEP_SLEEP_ALARM = "microcontroller.ResetReason.DEEP_SLEEP_ALARM"
    RESET_PIN = "microcontroller.ResetReason.RESET_PIN"
    WATCHDOG = "microcontroller.ResetReason.WATCHDOG"
    UNKNOWN = "microcontroller.ResetReason.UNKNOWN"


class RunMode:
    NORMAL = "microcontroller.RunMode.NORMAL"
    SAFE_MODE = "microcontroller.RunMode.SAFE_MODE"
    BOOTLOADER = "microcontroller.RunMode.BOOTLOADER"


# The host's numeric causes follow the ESP32 port (1 power-on, 2 hard, 3 watchdog, 4 deep sleep,
# 5 software).
_REASONS = {1: ResetReason.POWER_ON, 2: ResetReason.RESET_PIN, 3: ResetReason.WATCHDOG,
            4: ResetReason.DEEP_SLEEP_ALARM, 5: ResetReason.SOFTWARE}


class _Processor:
    frequency = 240000000
    temperature = 41.0
    voltage = 3.3

    @property
    def uid(self):
        uid = os.getenv("AUTHPROBE_VB_UID") or "a4cf12000001"
        return bytearray(int(uid[i:i + 2], 16) for i in range(0, len(uid), 2))

    @property
    def reset_reason(self):
        return _REASONS.get(int(os.getenv("AUTHPROBE_VB_RESET_CAUSE") or 1), ResetReason.UNKNOWN)


cpu = _Processor()
cpus = (cpu,)


def reset():
    # The host restarts the interpreter; like a board, this call never returns.
    sys.stdout.write(_MARK + "RESET\x00")
    while True:
        time.sleep_ms(1000)


def on_next_reset(run_mode):
    pass


def delay_us(us):
    time.sleep_us(us)
