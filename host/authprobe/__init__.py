"""authprobe: find out, with evidence from the device and the cloud, why a board cannot connect to
AWS IoT Core with custom authentication.

This module is the whole public face: import names from `authprobe`, never from the modules behind
it (they may move). Names load on first use, so `import authprobe` stays cheap.

    import authprobe
    cfg = authprobe.load_device_config("device.toml")
    authprobe.flash(["/dev/ttyUSB0"], cfg)
    result = authprobe.collect("/dev/ttyUSB0", store=authprobe.RunStore())
    (run,) = authprobe.diagnose_with_cloud([result.report], authprobe.open_cloud("aws"))

docs/api.md walks through it; docs/architecture.md says which folder holds what."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from authprobe.version import __version__

if TYPE_CHECKING:
    from authprobe.board.collect import RunResult, collect, run
    from authprobe.board.flash import FlashResult, flash
    from authprobe.board.host_probe import probe
    from authprobe.board.virtual import VirtualBoard
    from authprobe.cloud import Cloud, open_cloud
    from authprobe.cloud.checks import CheckContext, CheckResult, run_checks
    from authprobe.cloud.device_settings import DeviceSettings, load_device_settings
    from authprobe.cloud.pipeline import DiagnosedRun, diagnose_runs, diagnose_with_cloud
    from authprobe.device_config import load as load_device_config
    from authprobe.drill.suite import run_drill
    from authprobe.emulator import Emulator
    from authprobe.errors import AuthprobeError, CloudError, ConfigError
    from authprobe.report.diagnosis import CloudEvidence, diagnose
    from authprobe.store import RunStore, open_store

# public name -> (module, attribute)
_HOMES: dict[str, tuple[str, str]] = {
    "load_device_config": ("authprobe.device_config", "load"),
    "probe": ("authprobe.board.host_probe", "probe"),
    "flash": ("authprobe.board.flash", "flash"),
    "FlashResult": ("authprobe.board.flash", "FlashResult"),
    "collect": ("authprobe.board.collect", "collect"),
    "run": ("authprobe.board.collect", "run"),
    "RunResult": ("authprobe.board.collect", "RunResult"),
    "VirtualBoard": ("authprobe.board.virtual", "VirtualBoard"),
    "RunStore": ("authprobe.store", "RunStore"),
    "open_store": ("authprobe.store", "open_store"),
    "Cloud": ("authprobe.cloud", "Cloud"),
    "open_cloud": ("authprobe.cloud", "open_cloud"),
    "DeviceSettings": ("authprobe.cloud.device_settings", "DeviceSettings"),
    "load_device_settings": ("authprobe.cloud.device_settings", "load_device_settings"),
    "CheckContext": ("authprobe.cloud.checks", "CheckContext"),
    "CheckResult": ("authprobe.cloud.checks", "CheckResult"),
    "run_checks": ("authprobe.cloud.checks", "run_checks"),
    "DiagnosedRun": ("authprobe.cloud.pipeline", "DiagnosedRun"),
    "diagnose_runs": ("authprobe.cloud.pipeline", "diagnose_runs"),
    "diagnose_with_cloud": ("authprobe.cloud.pipeline", "diagnose_with_cloud"),
    "CloudEvidence": ("authprobe.report.diagnosis", "CloudEvidence"),
    "diagnose": ("authprobe.report.diagnosis", "diagnose"),
    "Emulator": ("authprobe.emulator", "Emulator"),
    "run_drill": ("authprobe.drill.suite", "run_drill"),
    "AuthprobeError": ("authprobe.errors", "AuthprobeError"),
    "ConfigError": ("authprobe.errors", "ConfigError"),
    "CloudError": ("authprobe.errors", "CloudError"),
}

__all__ = [
    "__version__",
    "load_device_config",
    "probe",
    "flash",
    "FlashResult",
    "collect",
    "run",
    "RunResult",
    "VirtualBoard",
    "RunStore",
    "open_store",
    "Cloud",
    "open_cloud",
    "DeviceSettings",
    "load_device_settings",
    "CheckContext",
    "CheckResult",
    "run_checks",
    "DiagnosedRun",
    "diagnose_runs",
    "diagnose_with_cloud",
    "CloudEvidence",
    "diagnose",
    "Emulator",
    "run_drill",
    "AuthprobeError",
    "ConfigError",
    "CloudError",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'authprobe' has no attribute {name!r}")
    value = getattr(importlib.import_module(home[0]), home[1])
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
