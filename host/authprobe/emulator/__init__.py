"""The local AWS IoT Core custom-auth stand-in (`authprobe emulate`).

    from authprobe.emulator import Emulator, load_config, invoke_authorizer
    with Emulator(load_config("examples/emulator.toml")) as emu:
        emu.host, emu.port, emu.ca_pem, emu.endpoint, emu.state_dir

Records land in emu.state_dir as docs/contracts.md section 5 describes. AWS's rules the stand-in
enforces (policy evaluation, the authorizer response, the invoke permission) live in authprobe.aws."""

from authprobe.emulator.config import EmulatorConfig, config_from_dict, load_config
from authprobe.emulator.invoke_authorizer import invoke_authorizer
from authprobe.emulator.server import Emulator

__all__ = ["Emulator", "EmulatorConfig", "config_from_dict", "load_config", "invoke_authorizer"]
