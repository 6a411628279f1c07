"""Device code reads its diagnostic codes by name: `_CONNACK_TIMEOUT = const(908)`, named after the
catalogue row, never a bare 908 where a code is returned, reported or compared. mpy-cross inlines
underscore const() names, so the names cost the board nothing; this scan keeps them true to the
catalogue and fails on a new bare code."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import selftest
from authprobe import catalogue

SELFTEST = Path(selftest.__file__).resolve().parent
# The catalogue is the numbers; codes.py is the board's name table derived from it; vendor/ is not ours.
NOT_SCANNED = ("catalogue.py", "codes.py")
NAME_OF = {code: name for code, name, _ in catalogue.CODES}
CODE_OF = {"_" + name.upper(): code for code, name, _ in catalogue.CODES}
# Calls whose first argument is a code: the reporter's step record and the config lint's add().
REPORTING_CALLS = ("step", "add")


def device_modules() -> list[Path]:
    return sorted(p for p in SELFTEST.glob("*.py") if p.name not in NOT_SCANNED)


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def const_names(tree: ast.Module) -> list[tuple[str, object, int]]:
    """(name, value, line) of every module-level `NAME = const(value)`."""
    found = []
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Name)
                and node.value.func.id == "const" and len(node.value.args) == 1
                and isinstance(node.value.args[0], ast.Constant)):
            found.append((node.targets[0].id, node.value.args[0].value, node.lineno))
    return found


def _is_code_name(node: ast.expr) -> bool:
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return name == "code" or name.endswith("_code")


def _code_slots(tree: ast.Module):
    """Every expression that stands where a diagnostic code goes."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Return) and node.value is not None:
            value = node.value
            # `return code, status, details` / `return code, details` / `return code`
            yield value.elts[0] if isinstance(value, ast.Tuple) and value.elts else value
        elif isinstance(node, ast.Call):
            callee = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if callee in REPORTING_CALLS and node.args:
                yield node.args[0]
            elif callee == "append" and node.args and isinstance(node.args[0], ast.Tuple):
                yield from node.args[0].elts[:1]    # a config problem row (code, status, field, message)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if _is_code_name(target):
                    yield node.value
                elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    for t, v in zip(target.elts, node.value.elts, strict=False):
                        if _is_code_name(t):
                            yield v
        elif isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_is_code_name(s) for s in sides):
                yield from (s for s in sides if not _is_code_name(s))
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "code":
                    yield value             # a problem in a record: {"code": ..., "status": ...}
        elif isinstance(node, ast.Tuple) and len(node.elts) == 2:
            first = node.elts[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield node.elts[1]          # a table row (text, code), e.g. TLS error texts to codes


def _literals_in(expr: ast.expr):
    """Code-valued integer literals inside a code slot: `900 + rc`, `a if x else b`,
    `{401: a}.get(status, b)` (the values and the default, not the keys)."""
    if isinstance(expr, ast.Constant):
        if type(expr.value) is int and expr.value in NAME_OF:
            yield expr
    elif isinstance(expr, ast.IfExp):
        yield from _literals_in(expr.body)
        yield from _literals_in(expr.orelse)
    elif isinstance(expr, ast.BinOp):
        yield from _literals_in(expr.left)
        yield from _literals_in(expr.right)
    elif isinstance(expr, ast.Dict):
        for value in expr.values:
            yield from _literals_in(value)
    elif isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "get":
        yield from _literals_in(expr.func.value)
        for arg in expr.args[1:]:
            yield from _literals_in(arg)


def bare_codes(tree: ast.Module) -> list[tuple[int, int]]:
    """(line, code) of every catalogue code written as a bare number where a code goes."""
    return sorted({(lit.lineno, lit.value) for slot in _code_slots(tree) for lit in _literals_in(slot)})


def misnamed(tree: ast.Module) -> list[str]:
    """Every const() whose name and number disagree with the catalogue."""
    wrong = []
    for name, value, line in const_names(tree):
        if value in NAME_OF and name != "_" + NAME_OF[value].upper():
            wrong.append(f"line {line}: {name} = const({value}) should be _{NAME_OF[value].upper()}")
        elif value not in NAME_OF and name in CODE_OF:
            wrong.append(f"line {line}: {name} = const({value}) but the catalogue says {CODE_OF[name]}")
    return wrong


def borrowed_names(tree: ast.Module) -> list[str]:
    """Code names used here but not defined here with const(): mpy-cross inlines an underscore
    const() only inside its own module, so on a board an imported one does not exist."""
    defined = {name for name, _, _ in const_names(tree)}
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in CODE_OF}
    imported = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                for a in n.names if (a.asname or a.name) in CODE_OF}
    return sorted((used - defined) | imported)


@pytest.mark.parametrize("path", device_modules(), ids=lambda p: p.name)
def test_code_names_are_catalogue_names(path):
    wrong = misnamed(parse(path))
    assert not wrong, f"{path.name}: " + "; ".join(wrong)


@pytest.mark.parametrize("path", device_modules(), ids=lambda p: p.name)
def test_code_names_are_defined_where_used(path):
    borrowed = borrowed_names(parse(path))
    assert not borrowed, f"{path.name} uses {borrowed}; define each here as _NAME = const(code)"


@pytest.mark.parametrize("path", device_modules(), ids=lambda p: p.name)
def test_no_bare_codes(path):
    found = bare_codes(parse(path))
    assert not found, "\n".join(
        f"{path.name}:{line}: bare code {code}; name it _{NAME_OF[code].upper()} = const({code})"
        for line, code in found)


NAMING_MODULES = [p for p in device_modules() if const_names(parse(p))]


@pytest.mark.parametrize("path", NAMING_MODULES, ids=lambda p: p.name)
def test_on_cpython_each_name_is_its_code(path):
    """CPython has no const(): the module's fallback must make every name its plain code."""
    module = importlib.import_module("selftest." + path.stem)
    assert module.const is int
    assert {name: getattr(module, name) for name, _, _ in const_names(parse(path))} == {
        name: CODE_OF.get(name, value) for name, value, _ in const_names(parse(path))}


def test_the_scan_reads_the_device_package():
    modules = {p.name for p in device_modules()}
    assert {"probe.py", "steps_session.py", "config.py"} <= modules
    named = {value for p in device_modules() for _, value, _ in const_names(parse(p))}
    assert {100, 908, 9000} <= named


# Each kind of place a code goes, written bare, and (line, code) the scan must report for it.
BARE = {
    "return tuple": ("def s(p):\n    return 908, FAIL, {}\n", [(2, 908)]),
    "return code": ("def classify(e):\n    return 709\n", [(2, 709)]),
    "conditional": ("def f(rc):\n    return (900 + rc if rc <= 5 else 909), FAIL, {}\n",
                    [(2, 900), (2, 909)]),
    "report": ("rep.step(1100, SKIP, 0, {})\n", [(1, 1100)]),
    "lint add": ("add(117, FAIL, 'test.topic', 'bad')\n", [(1, 117)]),
    "problem row": ("problems.append((114, FAIL, 'endpoint.ca', why))\n", [(1, 114)]),
    "problem dict": ("d = {'problems': [{'code': 116, 'status': FAIL}]}\n", [(1, 116)]),
    "assigned": ("if x:\n    code = 302\n", [(2, 302)]),
    "unpacked": ("code, status, d = 9000, FAIL, {}\n", [(1, 9000)]),
    "compared": ("if code != 300:\n    pass\n", [(1, 300)]),
    "mapped": ("code = {401: 803, 403: 804}.get(status, 806)\n", [(1, 803), (1, 804), (1, 806)]),
    "table row": ('_PATTERNS = (\n    ("has expired", 703),\n)\n', [(2, 703)]),
}


@pytest.mark.parametrize("kind", sorted(BARE))
def test_the_scan_finds_a_bare_code(kind):
    source, expected = BARE[kind]
    assert bare_codes(ast.parse(source)) == expected


def test_the_scan_leaves_numbers_that_are_not_codes():
    # HTTP statuses (101, 401), errnos (104), milliseconds (1000) and step blocks are not codes.
    source = ("if status == 101:\n    pass\n"
              "code = {401: _A}.get(status, _B)\n"
              "if net.errno_of(e) == 104:\n    pass\n"
              "s.settimeout(p.timeout_ms / 1000)\n"
              "ok = (i + 1) * 100\n"
              "rep.step(ok, SKIP, 0, {})\n")
    assert bare_codes(ast.parse(source)) == []


def test_a_misnamed_or_misnumbered_code_is_caught():
    tree = ast.parse("_WIFI_OK = const(301)\n_CONNACK_TIMEOUT = const(908)\n_TLS_OK = const(7000)\n")
    assert misnamed(tree) == ["line 1: _WIFI_OK = const(301) should be _WIFI_NO_AP",
                              "line 3: _TLS_OK = const(7000) but the catalogue says 700"]


def test_a_code_name_from_another_module_is_caught():
    tree = ast.parse("from selftest.library import _LIBRARY_OK\n_WIFI_OK = const(300)\n"
                     "def f():\n    return _WIFI_OK, _DNS_OK\n")
    assert borrowed_names(tree) == ["_DNS_OK", "_LIBRARY_OK"]
