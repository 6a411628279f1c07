"""Property-based tests of the run store against damaged files (issue 12): bytes flipped anywhere in
the SQLite file, values of the wrong type or out of range in any column, any schema version. `runs`
and `runs show` answer (exit 0) or say the store is damaged or of another schema (exit 2); never a
traceback."""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import os
import sqlite3
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authprobe import cli
from authprobe.board.run_log import report_from_lines
from authprobe.commands import runs as runs_command
from authprobe.errors import AuthprobeError
from authprobe.store import RunStore
from selftest import record

pytestmark = pytest.mark.fuzz

RECORDS = [
    {"k": "begin", "run": "dev-1", "board": "esp32", "runtime": "micropython", "uid": "a4cf12000001",
     "client_id": "thing-1"},
    {"k": "step", "run": "dev-1", "seq": 1, "step": "wifi", "code": 302, "name": "wifi_wrong_password",
     "status": "fail", "ms": 40, "d": {"ssid": "lab"}},
    {"k": "end", "run": "dev-1", "verdict": "fail", "counts": {"pass": 0, "warn": 0, "fail": 1, "skip": 0}, "ms": 50},
]


class Template(tuple):
    def __repr__(self) -> str:   # a failing example prints this, not 40 KB of bytes
        return f"<store template of {len(self[0])} bytes>"


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[bytes, Path]:
    """A store of three runs (finished, still collecting, cut short), as one file's bytes."""
    folder = tmp_path_factory.mktemp("store")
    path = folder / "template.sqlite"
    with RunStore(path) as s:
        for n, finished in enumerate((True, False, True)):
            run_id = s.begin_run(port=f"/dev/ttyUSB{n}", board="esp32-generic",
                                 identity={"serial_number": f"000{n}"}, started=1_700_000_000.0 + n)
            s.add_line(run_id, b"rst:0x1 (POWERON_RESET),boot:0x13", t=1.0, kind="boot", reason="rom")
            for i, rec in enumerate(RECORDS[: 3 if finished else 2]):
                s.add_line(run_id, record.encode(rec).encode(), t=2.0 + i, kind="record", record=rec)
            s.add_line(run_id, b"\xff\xfe noise", t=9.0, kind="noise")
            if finished:
                s.finish_run(run_id, report_from_lines(run_id, s.get_lines(run_id)), status="complete")
    return Template((path.read_bytes(), folder))


_names = itertools.count()


def fresh(folder: Path, data: bytes) -> Path:
    path = folder / f"damaged-{next(_names)}.sqlite"
    path.write_bytes(data)
    return path


# `authprobe runs` as cli.main runs it, minus building every command's parser each time (most of a
# call's cost): an AuthprobeError is what cli.main prints as `authprobe: message` with its exit code;
# any other exception escaping is what it would print as a traceback with exit 4, and fails the test.
PARSER = argparse.ArgumentParser(prog="authprobe runs")
runs_command.add_arguments(PARSER)


def runs_cli(*args: str) -> tuple[int, str]:
    try:
        with contextlib.redirect_stdout(io.StringIO()), mock.patch.dict(os.environ, {"COLUMNS": "160"}):
            return runs_command.run(PARSER.parse_args(args)), ""
    except AuthprobeError as exc:
        return exc.exit_code, str(exc)


def assert_answers_or_refuses(path: Path) -> None:
    for args in (["--store", str(path)], ["show", "2023", "--store", str(path), "--raw"]):
        code, message = runs_cli(*args)
        assert code in (0, 2), (args, code, message)
        if code == 2:
            assert str(path) in message and ("damaged" in message or "schema" in message
                                             or "not an authprobe run store" in message or "no run" in message
                                             or "holds no runs" in message or "ambiguous" in message), message


def test_the_cli_maps_a_damaged_store_to_exit_2(template):
    original, folder = template
    path = fresh(folder, original[:100] + b"\x07" * (len(original) - 100))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(["runs", "show", "latest", "--store", str(path)]) == 2
    assert err.getvalue().startswith("authprobe: run store") and "Traceback" not in err.getvalue()


@given(st.data())
def test_bytes_damaged_anywhere_are_read_or_refused(template, data):
    original, folder = template
    damaged = bytearray(original)
    for _ in range(data.draw(st.integers(min_value=1, max_value=6), label="flips")):
        at = data.draw(st.integers(min_value=0, max_value=len(damaged) - 1), label="offset")
        damaged[at] = data.draw(st.integers(min_value=0, max_value=255), label="byte")
    if data.draw(st.booleans(), label="cut"):
        del damaged[data.draw(st.integers(min_value=0, max_value=len(damaged)), label="at"):]
    assert_answers_or_refuses(fresh(folder, bytes(damaged)))


COLUMNS = {
    "runs": ["run_id", "started", "ended", "port", "board", "identity", "device_run", "uid", "client_id", "status",
             "reason", "verdict", "report", "station", "root_cause", "firmware"],
    "lines": ["seq", "t", "kind", "reason", "raw"],
    "records": ["seq", "t", "line_seq", "kind", "record"],
    "meta": ["value"],
}
column_values = st.sampled_from([
    None, 1e300, -1e300, float("inf"), float("-inf"), 2 ** 63 - 1, -(2 ** 63), 0, 1.5,
    b"\xff\xfe\x00", b"", "", "\x00", "[/x]", "{}", "[]", "null", "5", '{"steps": 5}', '{"steps": [5]}',
    '{"steps": [{"status": 5, "details": [1], "code": "x"}]}', '{"verdict": 1}', "[" * 5000,
    '{"counts": [["noise", null, 1e400]]}',
]) | st.text(max_size=12) | st.binary(max_size=12) | st.integers().filter(lambda n: -(2 ** 63) <= n < 2 ** 63)


@given(st.data())
def test_values_of_any_type_in_any_column_are_read_or_refused(template, data):
    original, folder = template
    path = fresh(folder, original)
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")   # a scratch copy: no need to wait for the disk
    for _ in range(data.draw(st.integers(min_value=1, max_value=4), label="changes")):
        table = data.draw(st.sampled_from(sorted(COLUMNS)), label="table")
        column = data.draw(st.sampled_from(COLUMNS[table]), label="column")
        value = data.draw(column_values, label="value")
        with contextlib.suppress(sqlite3.IntegrityError):      # NOT NULL / primary keys hold in SQLite
            db.execute(f"UPDATE {table} SET {column} = ?", (value,))
    db.commit()
    db.close()
    assert_answers_or_refuses(path)
