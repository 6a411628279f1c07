"""Reading a TOML config file (device.toml, emulator.toml): every way its bytes can fail to be TOML
is one ConfigError naming the file and where, never a UnicodeDecodeError or RecursionError."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from authprobe.errors import ConfigError


def read_bytes(path: Path, what: str) -> bytes:
    """A config file's bytes; a missing or unreadable file is a ConfigError saying so."""
    try:
        return path.read_bytes()
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise ConfigError(f"cannot read {what} {path}: {getattr(exc, 'strerror', None) or exc}") from None


def parse_toml(data: bytes | str, origin: str) -> dict[str, Any]:
    """TOML bytes (or text) -> dict. TOML is UTF-8 by definition, so another encoding is named as the
    problem, with the line of the first byte that is not UTF-8."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise ConfigError(f"{origin} is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); "
                              f"TOML files are UTF-8: save it as UTF-8") from None
    else:
        text = data
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin} is not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{origin}: arrays or tables nest too deeply to read; no setting needs more than "
                          f"a few levels") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ConfigError(f"{origin} is not valid TOML: {exc}") from None
