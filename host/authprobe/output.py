"""Writing a command's output file: `-` means stdout, missing folders are made, and a path that
cannot be written is the user's error with the reason, not a traceback. Also: text from a device
made safe to print (control bytes escaped)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from authprobe.errors import AuthprobeError


def write_output(path: str, text: str) -> None:
    if path == "-":
        sys.stdout.write(text)
        return
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise AuthprobeError(f"cannot write {path}: {exc.strerror or exc}") from None


# C0 controls, DEL and C1 controls: bytes a terminal acts on (clears, moves the cursor, rings,
# switches character sets) instead of showing. A serial line carries them from any boot log.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAMED = {"\t": "\\t", "\r": "\\r", "\n": "\\n", "\x1b": "\\e"}


def printable(data: bytes | str) -> str:
    """`data` as one line safe for a terminal: UTF-8 decoded (undecodable bytes as \\xNN) and
    every control character escaped (\\r, \\n, \\t, \\e for ESC, else \\xNN)."""
    text = data.decode("utf-8", errors="backslashreplace") if isinstance(data, bytes) else data
    return _CONTROL.sub(lambda m: _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}"), text)
