"""The local AWS IoT Core custom-auth stand-in (`authprobe emulate`).

    from authprobe.emulator import Emulator, load_config, test_invoke_authorizer
    with Emulator(load_config("examples/emulator.toml")) as emu:
        emu.host, emu.port, emu.ca_pem, emu.endpoint, emu.state_dir

Records land in emu.state_dir as docs/contracts.md section 5 describes."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from authprobe.emulator.config import EmulatorConfig, config_from_dict, load_config
    from authprobe.emulator.server import Emulator
    from authprobe.emulator.test_invoke import test_invoke_authorizer

# Loaded on first use: cloud-check imports lambda_permission alone and need not load the server.
_HOMES = {"Emulator": "server", "EmulatorConfig": "config", "config_from_dict": "config", "load_config": "config",
          "test_invoke_authorizer": "test_invoke"}


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)


__all__ = ["Emulator", "EmulatorConfig", "config_from_dict", "load_config", "test_invoke_authorizer"]
