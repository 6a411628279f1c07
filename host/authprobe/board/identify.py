"""Which board is on a port, asked over its raw REPL in one round trip: its unique id (the one the
self-test reports as `uid` and `{uid}` stands for in device.toml) and the firmware it runs.

    link = ReplLink(port)
    who = read_identity(link)        # BoardIdentity(uid="a4cf12a1b2c3", runtime="micropython", ...)

The snippet runs on MicroPython (machine.unique_id) and CircuitPython (microcontroller.cpu.uid)
alike and answers with one Python literal, so a few bytes cross a slow line. A board with
`microcontroller` runs CircuitPython (so does the virtual board's CircuitPython flavour, whose
interpreter calls itself micropython)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any, Protocol

from authprobe.errors import EXIT_INCOMPLETE, AuthprobeError

IDENTIFY = """\
import sys, os, binascii
_r = sys.implementation.name
_u = b''
try:
    import microcontroller
    _r = 'circuitpython'
    _u = microcontroller.cpu.uid
except (ImportError, AttributeError):
    try:
        import machine
        _u = machine.unique_id()
    except (ImportError, AttributeError):
        pass
try:
    _m = os.uname()[4]
except (AttributeError, IndexError):
    _m = sys.platform
print(repr((binascii.hexlify(bytes(_u)).decode(), _r,
            '.'.join(str(n) for n in sys.implementation.version[:3]), _m)))
"""


class Link(Protocol):
    """What identification needs of a board link (flash.ReplLink): one exec, its output back."""

    port: str

    def exec(self, code: str) -> bytes: ...


@dataclass(frozen=True)
class BoardIdentity:
    uid: str            # lower-case hex, "" when the firmware exposes none
    runtime: str        # micropython | circuitpython (sys.implementation.name)
    version: str        # the firmware's version, e.g. 1.24.1
    machine: str        # e.g. "Generic ESP32S3 module with ESP32S3"

    def as_dict(self) -> dict[str, Any]:
        return {"uid": self.uid, "runtime": self.runtime, "firmware": self.version, "machine": self.machine}


def parse_identity(answer: bytes, port: str = "") -> BoardIdentity:
    """The board's answer to IDENTIFY (the last line holds the literal); AuthprobeError when it is
    not one, naming what came back."""
    lines = answer.decode(errors="replace").strip().splitlines()
    try:
        uid, runtime, version, machine = ast.literal_eval(lines[-1])
        if not all(isinstance(v, str) for v in (uid, runtime, version, machine)):
            raise ValueError("not four strings")
    except (IndexError, ValueError, SyntaxError, TypeError):
        tail = lines[-1][:80] if lines else "nothing"
        raise AuthprobeError(f"{port}: the board did not say who it is (answered {tail!r}); is it running "
                             f"MicroPython or CircuitPython?", EXIT_INCOMPLETE) from None
    return BoardIdentity(uid=uid.lower(), runtime=runtime, version=version, machine=machine)


def read_identity(link: Link) -> BoardIdentity:
    """One round trip on an open raw REPL."""
    return parse_identity(link.exec(IDENTIFY), link.port)
