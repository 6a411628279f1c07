"""Why a serial port did not open, and how long a locked one may stay locked. Apart from the
record reader (serial_reader) so `authprobe flash`, which opens ports but reads no records, does
not load the record schema and the report package with it (tests/device/test_flash_startup.py)."""

from __future__ import annotations

import os

# A port just closed by another tool (or by us) can stay locked for a moment: a process forked in
# between holds a copy of the descriptor, and with it the lock, until it execs.
LOCK_GRACE_S = 1.5


def port_problem(port: str, exc: BaseException) -> str:
    """Why `port` did not open, in words that say what to do: pyserial's and mpremote's messages
    repeat the path and hide the cause (or, in mpremote's case, drop it)."""
    text = str(exc)
    if "://" not in port and not os.path.exists(port):
        return "no such port; `authprobe boards` lists the connected ones"
    if "://" not in port and not os.access(port, os.R_OK | os.W_OK):
        return ("permission denied; on Linux add your user to the dialout group "
                "(sudo usermod -aG dialout $USER, then log in again)")
    if "://" not in port or "lock" in text or "busy" in text.lower():
        return f"{text}; another program may hold it (a serial monitor, mpremote, another authprobe): close it first"
    return text
