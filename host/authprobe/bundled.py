"""What the package carries besides its code, found with importlib.resources, so a checkout (an
editable install) and an installed wheel read the very same names:

    BOARDS     the board definitions (*.toml)
    EXAMPLES   the example authorizer, keys and configs the demo, the drill and `authprobe init` use
    FIRMWARE   the board's entry files (main.py for MicroPython, code.py for CircuitPython); the
               self-test itself is the `selftest` package, see `selftest_files()`

In the repository host/authprobe/data/{boards,examples,firmware} are symbolic links to the top-level
folders, which stay the place to edit: the build copies what the links point at into the wheel and
the sdist, so there is never a second copy to keep in step by hand."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

# pip and pipx install a wheel unpacked, so the package is a folder on disk. The stand-in runs an
# authorizer from a file and the virtual board starts an interpreter on one, so these stay real
# paths (a zipped install would need them extracted first).
PACKAGE = Path(str(resources.files("authprobe")))
DATA = PACKAGE / "data"
BOARDS = DATA / "boards"
EXAMPLES = DATA / "examples"
FIRMWARE = DATA / "firmware"


def selftest_files() -> dict[str, Path]:
    """The device package as boards get it: 'selftest/x.py' (and 'selftest/vendor/...') -> file."""
    root = Path(str(resources.files("selftest")))
    return {f"selftest/{p.relative_to(root).as_posix()}": p for p in sorted(root.rglob("*.py"))}
