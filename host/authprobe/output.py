"""Writing a command's output file: `-` means stdout, missing folders are made, and a path that
cannot be written is the user's error with the reason, not a traceback."""

from __future__ import annotations

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
