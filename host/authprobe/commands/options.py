"""Option types and checks shared by the commands: numbers that must make sense (argparse reports a
bad one as a usage error, exit 2, naming the option), and output files checked before any work."""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from authprobe.errors import ConfigError


def _number(kind: type, minimum: float, inclusive: bool, what: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number; give {what}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r}: give {what}")
        if value < minimum or (value == minimum and not inclusive):
            raise argparse.ArgumentTypeError(f"{text}: give {what}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


seconds = _number(float, 0, False, "seconds greater than 0, e.g. 30")
"""Seconds that must pass: a timeout (0, negative, nan and inf make no sense)."""

margin_seconds = _number(float, 0, True, "seconds, 0 or more, e.g. 120")
"""Seconds of slack around something: 0 is allowed."""

count = _number(int, 1, True, "a whole number, 1 or more")
"""How many of something: at least one."""


def check_output_paths(**paths: str | None) -> None:
    """Fail now, before a board is reset or a run starts, when an output file could not be written
    later: its folder would have to be made inside a file, or cannot be written, or the path is a
    folder. Nothing is left behind. `-` (stdout) and None pass. Keywords name the option, e.g. json=..."""

    for option, path in paths.items():
        if path is None or path == "-":
            continue
        flag = "--" + option.replace("_", "-")
        target = Path(path)
        if target.is_dir():
            raise ConfigError(f"{flag} {path}: is a folder; give a file name")
        if target.exists():
            if not os.access(target, os.W_OK):
                raise ConfigError(f"{flag} {path}: the file is not writable")
            continue  # (root passes os.access; writing it later still reports a refusal clearly)
        folder = target.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            raise ConfigError(f"{flag} {path}: {folder} is not a folder, so the file cannot be made there")
        try:
            # Asking the file system beats os.access: root passes every access check, and a
            # read-only mount or /proc refuses anyway. The probe file is gone at once.
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as exc:
            raise ConfigError(f"{flag} {path}: cannot write in {folder} ({exc.strerror or exc})") from None
