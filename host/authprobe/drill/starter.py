"""Starter files for `authprobe init`, made from the examples the package carries.

    written = write_starter(Path("rehearsal"), standin=True)

Without `standin`: a commented device.toml to fill in for a real account. With it: the stand-in's
emulator.toml with the example authorizer, its resource policy and token-signing keys, and a
device.toml already pointed at that stand-in (its CA made, the example token signed), so
`authprobe emulate --config emulator.toml` and `authprobe flash|probe --config device.toml` work in
that folder as written. Existing files are never overwritten unless `force` is given."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from authprobe.drill.standin import EXAMPLE_TOKEN, EXAMPLES, example_signature
from authprobe.emulator.config import load_config
from authprobe.emulator.local_ca import ensure_local_ca
from authprobe.errors import ConfigError

DEVICE_TOML = "device.toml"
EMULATOR_TOML = "emulator.toml"
# What the stand-in reads besides its config (emulator.toml names these, relative to itself).
STANDIN_FILES = ("authorizer.py", "lambda-policy.json", "token-signing-pub.pem", "token-signing-EXAMPLE-private.pem")
STATE_DIR = ".authprobe/emulator"
# Where the value of a `key = value` line ends and its comment starts, as in the examples.
COMMENT_COLUMN = 35


def _sibling_text(name: str) -> str:
    """An example file as it reads once copied next to the others: no `examples/` in its paths."""
    return (EXAMPLES / name).read_text(encoding="utf-8").replace("examples/", "")


def set_value(text: str, section: str, key: str, value: str, comment: str) -> str:
    """`key = value  # comment` in [section] of a TOML text, replacing the key's line (also a
    commented-out one), so the rest of the file keeps its comments."""
    lines = text.splitlines(keepends=True)
    current = ""
    line_of_key = re.compile(rf"^\s*#?\s*{re.escape(key)}\s*=")
    for i, line in enumerate(lines):
        header = re.match(r"^\[([^\]]+)\]", line)
        if header:
            current = header.group(1).strip()
        elif current == section and line_of_key.match(line):
            lines[i] = f"{key} = {value}".ljust(COMMENT_COLUMN - 1) + f" # {comment}\n"
            return "".join(lines)
    raise ValueError(f"[{section}] {key} is not in the example device.toml")


def _standin_device_toml(folder: Path) -> str:
    """The example device.toml pointed at the stand-in of emulator.toml in `folder`."""
    emulator = tomllib.loads((folder / EMULATOR_TOML).read_text(encoding="utf-8"))
    client_id = tomllib.loads((EXAMPLES / DEVICE_TOML).read_text(encoding="utf-8"))["device"]["client_id"]
    text = _sibling_text(DEVICE_TOML)
    edits = [
        ("endpoint", "host", f'"{emulator["endpoint"]}"', "the stand-in's endpoint (emulator.toml), sent as SNI"),
        ("endpoint", "connect_address", f'"{emulator["listen"]}"', "where `authprobe emulate` listens"),
        ("endpoint", "ca", f'"{STATE_DIR}/ca.pem"', "the stand-in's CA (made by `authprobe init`)"),
        ("auth", "authorizer", '"DeviceAuth"', "the authorizer in emulator.toml"),
        ("auth", "token", f'"{EXAMPLE_TOKEN}"', "the token authorizer.py accepts"),
        ("auth", "signature", f'"{example_signature()}"',
         "authprobe sign --key token-signing-EXAMPLE-private.pem --token " + EXAMPLE_TOKEN),
        ("test", "topic", f'"selftest/{client_id}"', "authorizer.py allows selftest/<client id>"),
    ]
    for section, key, value, comment in edits:
        text = set_value(text, section, key, value, comment)
    return text


def planned(standin: bool) -> list[str]:
    """The files `write_starter` writes, in order."""
    return [*([EMULATOR_TOML, *STANDIN_FILES] if standin else []), DEVICE_TOML]


def write_starter(folder: Path, *, standin: bool = False, force: bool = False) -> list[Path]:
    """Write the starter files into `folder` (made if missing); returns their paths. Raises
    ConfigError naming every file that exists already (nothing is written then) unless `force`."""
    existing = [folder / name for name in planned(standin) if (folder / name).exists()]
    if existing and not force:
        names = ", ".join(str(p) for p in existing)
        raise ConfigError(f"{names} already exist{'s' if len(existing) == 1 else ''}; nothing was written "
                          f"(--force overwrites)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        if standin:
            emulator = _sibling_text(EMULATOR_TOML)
            emulator = re.sub(r'(?m)^state_dir = "[^"]*"', f'state_dir = "{STATE_DIR}"', emulator)
            (folder / EMULATOR_TOML).write_text(emulator, encoding="utf-8")
            written.append(folder / EMULATOR_TOML)
            for name in STANDIN_FILES:
                (folder / name).write_bytes((EXAMPLES / name).read_bytes())
                written.append(folder / name)
            # The stand-in keeps a CA that is still valid, so the one made here is the one it serves.
            cfg = load_config(folder / EMULATOR_TOML)
            ensure_local_ca(cfg.state_dir, cfg.server_names())
            device = _standin_device_toml(folder)
        else:
            device = _sibling_text(DEVICE_TOML)
        (folder / DEVICE_TOML).write_text(device, encoding="utf-8")
        written.append(folder / DEVICE_TOML)
    except OSError as exc:
        raise ConfigError(f"cannot write the starter files into {folder} ({exc.strerror or exc})") from None
    return written
