"""The host package's layering (docs/architecture.md), checked from the source: every import of a
project module goes down the layers or stays inside its own folder, no import cycle exists, project
imports sit at the top of the file, and the device package never imports the host's."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOST = ROOT / "host" / "authprobe"
FIRMWARE = ROOT / "firmware" / "selftest"

# Lowest first. A module may import from a lower layer or from its own layer's folder; layers of
# equal rank (board and emulator, store and cloud) are peers and never import each other.
LAYERS: dict[str, int] = {
    "base": 0,       # errors, root_causes, catalogue, device_config, output, redaction, version, bundled, terminal
    "aws": 1,        # AWS's rules
    "report": 2,     # the report contract, its diagnosis and renderings
    "board": 3,      # board definitions, serial reading, flash, collect, host probe, virtual board
    "emulator": 3,   # the local AWS IoT stand-in
    "store": 4,      # the run store
    "cloud": 4,      # backends, checks, Logs Insights, the join, the pipeline
    "drill": 5,      # drills and the demo
    "pytest_plugin": 5,
    "commands": 6,   # option parsing and printing only
    "cli": 7,
    "api": 8,        # authprobe/__init__.py: the public face (lazy)
}
BASE_MODULES = {"errors", "root_causes", "catalogue", "device_config", "config_text", "output", "redaction", "version",
                "bundled", "terminal"}


def module_name(path: Path) -> str:
    rel = path.relative_to(HOST.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "api"
    top = parts[1]
    if top in BASE_MODULES:
        return "base"
    if top not in LAYERS:
        raise AssertionError(f"{module}: not in any layer of docs/architecture.md; add it there and here")
    return top


def host_modules() -> dict[str, Path]:
    out = {}
    for path in sorted(HOST.rglob("*.py")):
        if "shims" in path.relative_to(HOST).parts:
            continue  # MicroPython-side modules the virtual board runs; they import nothing of ours
        out[module_name(path)] = path
    return out


def resolve(target: str, modules: dict[str, Path]) -> str:
    """The project module an import names (`from pkg import mod` names pkg.mod when that exists)."""
    while target not in modules and "." in target:
        target = target.rsplit(".", 1)[0]
    return target


def imports_of(path: Path, modules: dict[str, Path]) -> list[tuple[str, int, bool]]:
    """(imported project module, line, at top level) for every import of `authprobe`."""
    tree = ast.parse(path.read_text(), str(path))
    top_level = set()
    for node in tree.body:
        top_level.add(id(node))
        if isinstance(node, ast.If):  # `if TYPE_CHECKING:` blocks at the top count as top level
            top_level.update(id(n) for n in node.body)
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if name.split(".")[0] == "authprobe":
                found.append((resolve(name, modules), node.lineno, id(node) in top_level))
    return found


MODULES = host_modules()
GRAPH = {m: imports_of(p, MODULES) for m, p in MODULES.items()}


def test_every_module_has_a_layer():
    for m in MODULES:
        layer_of(m)


def test_imports_go_down_the_layers_or_stay_in_their_folder():
    wrong = []
    for src, targets in GRAPH.items():
        src_layer = layer_of(src)
        for target, line, _ in targets:
            dst_layer = layer_of(target)
            if dst_layer == src_layer or LAYERS[dst_layer] < LAYERS[src_layer]:
                continue
            wrong.append(f"{MODULES[src].relative_to(ROOT)}:{line}: {src} ({src_layer}) imports {target} ({dst_layer})")
    assert not wrong, "upward or sideways imports:\n" + "\n".join(wrong)


def test_only_the_local_backend_reads_the_stand_in():
    # cloud-check judges a real account with AWS's rules (authprobe.aws), never with the stand-in's code.
    readers = {src for src, targets in GRAPH.items() if layer_of(src) == "cloud"
               for target, _, _ in targets if layer_of(target) == "emulator"}
    assert readers <= {"authprobe.cloud.local"}, readers


def test_no_import_cycles():
    edges = {m: {t for t, _, _ in targets if t != m and t in MODULES} for m, targets in GRAPH.items()}
    # Tarjan's strongly connected components: any component of two or more modules is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_project_imports_are_at_the_top_of_the_file():
    # Function-level imports are for heavy optional third-party packages only (boto3, rich, ...).
    inside = [f"{MODULES[src].relative_to(ROOT)}:{line}: {target}"
              for src, targets in GRAPH.items() for target, line, top in targets if not top]
    assert not inside, "project imports inside functions:\n" + "\n".join(inside)


def test_the_device_package_never_imports_the_host():
    for path in FIRMWARE.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] == "authprobe" for n in names), f"{path}:{node.lineno}"


@pytest.mark.parametrize("src, target", [("authprobe.aws.iot_policy", "authprobe.cloud.checks"),
                                         ("authprobe.board.collect", "authprobe.store"),
                                         ("authprobe.emulator.server", "authprobe.cloud.checks"),
                                         ("authprobe.board.flash", "authprobe.emulator.server")])
def test_the_layer_rule_catches_what_it_must(src, target):
    assert not (layer_of(src) == layer_of(target) or LAYERS[layer_of(target)] < LAYERS[layer_of(src)])
