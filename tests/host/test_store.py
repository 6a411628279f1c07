"""The run store, the same tests against both backends (SQLite and a real PostgreSQL server):
incremental writes, reports rebuilt from stored lines, listing, lookup, several collector threads
writing at once, the station and fleet columns, schema versions."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import sqlite3
import threading
from pathlib import Path
from unittest import mock

import pytest

from authprobe import cli
from authprobe.board import line_sample
from authprobe.board.run_log import report_from_lines
from authprobe.errors import AuthprobeError
from authprobe.report.json_report import build_report
from authprobe.store import SCHEMA_VERSION, RunStore, StoreError, is_url, open_store, redact_url
from authprobe.store.postgres import _MIGRATIONS as PG_MIGRATIONS
from authprobe.store.sqlite import _SCHEMA as SQLITE_V1
from selftest import record

BEGIN = {"k": "begin", "run": "dev-1", "board": "esp32", "runtime": "micropython", "uid": "a4cf12000001",
         "client_id": "thing-1"}
STEP_FAIL = {"k": "step", "run": "dev-1", "seq": 1, "step": "wifi", "code": 302, "name": "wifi_wrong_password",
             "status": "fail", "ms": 40, "d": {"ssid": "lab"}}
END = {"k": "end", "run": "dev-1", "verdict": "fail", "counts": {"pass": 0, "warn": 0, "fail": 1, "skip": 0}, "ms": 50}


@pytest.fixture(params=["sqlite", "postgresql"])
def spec(request, tmp_path):
    """Where the store lives: a SQLite file in a folder not made yet, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "sub" / "runs.sqlite")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(spec):
    s = open_store(spec, station="line1-st3")
    yield s
    s.close()


def add(store, run_id, rec, t=1.0):
    raw = record.encode(rec).encode()
    store.add_line(run_id, raw, t=t, kind="record", record=rec)


def test_lines_are_visible_to_another_reader_before_the_run_ends(store, spec):
    run_id = store.begin_run(port="/dev/ttyUSB0", board="esp32-generic", identity={"serial_number": "0001"})
    store.add_line(run_id, b"rst:0x1 (POWERON_RESET)", t=0.5, kind="boot", reason="rom")
    add(store, run_id, BEGIN)
    add(store, run_id, STEP_FAIL)
    with open_store(spec) as other:      # e.g. `authprobe runs` in another terminal
        run = other.get_run(run_id)
        assert run["status"] == "collecting"
        assert (run["device_run"], run["uid"], run["client_id"]) == ("dev-1", "a4cf12000001", "thing-1")
        assert [ln["kind"] for ln in other.get_lines(run_id)] == ["boot", "record", "record"]
        # The host died here: the report is rebuilt from what was stored, and says so.
        report = other.get_report(run_id)
    assert report["verdict"] == "incomplete"
    assert report["run_id"] == run_id
    assert [s["name"] for s in report["steps"]] == ["wifi_wrong_password"]
    assert report["collection"]["reason"] == "interrupted"


def test_finished_run_round_trip(store):
    run_id = store.begin_run(port="loop://")
    for rec in (BEGIN, STEP_FAIL, END):
        add(store, run_id, rec)
    report = {"schema": "authprobe.report/1", "run_id": run_id, "verdict": "fail", "steps": []}
    store.finish_run(run_id, report, status="complete")
    assert store.get_report(run_id) == report
    runs = store.list_runs()
    assert runs[0]["run_id"] == run_id and runs[0]["verdict"] == "fail" and runs[0]["status"] == "complete"
    assert runs[0]["started"].endswith("Z") and runs[0]["duration_s"] is not None
    recs = store.get_records(run_id)
    assert [r["k"] for r in recs] == ["begin", "step", "end"] and all("_rx" in r for r in recs)


def test_resolve_latest_prefix_and_errors(store):
    with pytest.raises(AuthprobeError, match="no runs"):
        store.resolve("latest")
    a = store.begin_run(port="a", started=1_000.0)
    b = store.begin_run(port="b", started=2_000.0)
    assert store.resolve("latest") == b
    assert store.resolve(a[:-2]) == a
    with pytest.raises(AuthprobeError, match="no run"):
        store.resolve("nope")
    with pytest.raises(AuthprobeError, match="ambiguous"):
        store.resolve("19")
    assert [r["run_id"] for r in store.list_runs(limit=1)] == [b]
    assert [r["run_id"] for r in store.list_runs(port="a")] == [a]


def test_threads_write_concurrently(store):
    ids = [store.begin_run(port=f"p{i}") for i in range(6)]

    def write(run_id):
        for i in range(40):
            store.add_line(run_id, f"line {i}".encode(), t=float(i), kind="noise")

    threads = [threading.Thread(target=write, args=(r,)) for r in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(len(store.get_lines(r)) == 40 for r in ids)
    assert [ln["seq"] for ln in store.get_lines(ids[0])] == list(range(1, 41))


def test_unwritable_store_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(AuthprobeError, match="--store"):
        RunStore(blocker / "runs.sqlite")


def test_env_var_sets_default_path(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTHPROBE_STORE", str(tmp_path / "env.sqlite"))
    with RunStore() as s:
        assert s.path == tmp_path / "env.sqlite"


def raw(spec, sql, args=()):
    """A statement straight into the store's database (what an older or newer authprobe left there)."""
    if spec.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(spec, autocommit=True) as conn:
            cur = conn.execute(sql.replace("?", "%s"), args)
            return cur.fetchall() if cur.description else None
    with sqlite3.connect(spec) as db:
        return db.execute(sql, args).fetchall()


def test_every_run_records_its_station(store, spec):
    here = store.begin_run(port="a")
    there = store.begin_run(port="b", station="line2-st1")
    assert store.get_run(here)["station"] == "line1-st3"
    assert store.get_run(there)["station"] == "line2-st1"
    assert [r["run_id"] for r in store.list_runs(station="line2-st1")] == [there]
    with open_store(spec) as default:
        assert default.get_run(default.begin_run(port="c"))["station"] == socket.gethostname()


def test_a_finished_run_fills_the_fleet_columns(store):
    run_id = store.begin_run(port="p", started=5_000.0)
    for rec in (dict(BEGIN, firmware="v1.24.1"), STEP_FAIL, END):
        add(store, run_id, rec)
    report = build_report([dict(BEGIN, firmware="v1.24.1"), STEP_FAIL, END], run_id=run_id)
    store.finish_run(run_id, report, status="complete", ended=5_002.0)
    (row,) = store.fleet_runs(since=4_000.0)
    assert (row["station"], row["verdict"], row["firmware"]) == ("line1-st3", "fail", "v1.24.1")
    assert row["root_cause"] == report["diagnosis"][0]["root_cause"]
    assert store.fleet_steps(since=4_000.0) == [(run_id, "wifi", "fail", 40)]
    assert store.fleet_runs(since=6_000.0) == [] and store.fleet_steps(since=6_000.0) == []
    # a correlated diagnosis replaces the report, and the root cause with it
    store.save_report(run_id, dict(report, diagnosis=[{"root_cause": "authorizer-deny"}]))
    assert store.get_run(run_id)["root_cause"] == "authorizer-deny"


def test_a_store_from_a_newer_authprobe_is_refused_and_left_untouched(store, spec):
    run_id = store.begin_run(port="p")
    store.close()
    raw(spec, "UPDATE meta SET value = '99' WHERE key = 'schema'")
    before = raw(spec, "SELECT run_id, status FROM runs")
    with pytest.raises(StoreError, match=r"schema version 99, written by a newer authprobe.*upgrade authprobe"):
        open_store(spec)
    assert raw(spec, "SELECT run_id, status FROM runs") == before == [(run_id, "collecting")]
    assert raw(spec, "SELECT value FROM meta WHERE key = 'schema'") == [("99",)]


def test_a_version_1_store_is_migrated_in_place(spec):
    if spec.startswith("postgresql://"):
        for statement in PG_MIGRATIONS[1]:
            raw(spec, statement)
    else:
        Path(spec).parent.mkdir(parents=True)
        with sqlite3.connect(spec) as db:
            db.executescript(SQLITE_V1)
    raw(spec, "INSERT INTO meta VALUES ('schema', '1')")
    report = build_report([BEGIN, STEP_FAIL, END], run_id="old-1")
    raw(spec, "INSERT INTO runs (run_id, started, ended, status, verdict, report) VALUES (?, ?, ?, ?, ?, ?)",
        ("old-1", 100.0, 101.0, "complete", "fail", json.dumps(report)))
    with open_store(spec) as s:
        old = s.get_run("old-1")
        assert old["station"] is None and old["root_cause"] == report["diagnosis"][0]["root_cause"]
        assert s.get_report("old-1") == report
        s.begin_run(port="new")
    assert raw(spec, "SELECT value FROM meta WHERE key = 'schema'") == [(str(SCHEMA_VERSION),)]


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://line:s3cr%40t@db.lan:5432/runs?sslmode=require", "postgresql://line@db.lan:5432/runs?sslmode=require"),
    ("postgres://line:pw@[::1]/runs", "postgres://line@[::1]/runs"),
    ("postgresql://line@db.lan/runs", "postgresql://line@db.lan/runs"),
])
def test_a_store_url_is_shown_without_its_password(url, shown):
    assert is_url(url) and redact_url(url) == shown


def test_a_path_is_not_a_url():
    assert not is_url("runs.sqlite") and not is_url("postgresql.sqlite") and not is_url(None)


# --- damaged stores, other schemas, bounded noise (issue 12) -------------------------------------------

def sql(path, *statements):
    db = sqlite3.connect(path)
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


def finished_store(path):
    with RunStore(path) as s:
        run_id = s.begin_run(port="/dev/ttyUSB0", started=1_000.0)
        for rec in (BEGIN, STEP_FAIL, END):
            add(s, run_id, rec)
        s.finish_run(run_id, {"schema": "authprobe.report/1", "run_id": run_id, "verdict": "fail", "steps": []},
                     status="complete", ended=1_010.0)
    return run_id


def cli_runs(*args):
    out, err = io.StringIO(), io.StringIO()
    # A fixed width: the tables must not wrap differently on another terminal.
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            mock.patch.dict(os.environ, {"COLUMNS": "300"}):
        code = cli.main(["runs", *args])
    return code, out.getvalue(), err.getvalue()


def test_a_store_written_by_a_newer_authprobe_is_refused_before_anything_is_read(tmp_path):
    path = tmp_path / "runs.sqlite"
    finished_store(path)
    newer = SCHEMA_VERSION + 1
    sql(path, f"UPDATE meta SET value = '{newer}' WHERE key = 'schema'", "ALTER TABLE runs RENAME TO runs_v2")
    with pytest.raises(AuthprobeError, match=f"schema version {newer}, written by a newer authprobe") as err:
        RunStore(path)
    assert err.value.exit_code == 2
    code, _, stderr = cli_runs("--store", str(path))
    assert code == 2 and "newer authprobe" in stderr and "Traceback" not in stderr
    # Nothing was added to the newer store (no tables of this schema recreated in it).
    with sqlite3.connect(path) as db:
        assert "runs" not in {r[0] for r in db.execute("SELECT name FROM sqlite_master")}


@pytest.mark.parametrize("value", ["0", "-3", "one"])
def test_an_impossible_or_unreadable_schema_version_is_refused(tmp_path, value):
    path = tmp_path / "runs.sqlite"
    finished_store(path)
    sql(path, f"UPDATE meta SET value = '{value}' WHERE key = 'schema'")
    with pytest.raises(AuthprobeError, match=f"is damaged .*schema version reads '{value}'"):
        RunStore(path)


def test_an_sqlite_file_of_something_else_is_not_taken_for_a_store(tmp_path):
    path = tmp_path / "other.sqlite"
    sql(path, "CREATE TABLE photos (id INTEGER)")
    with pytest.raises(AuthprobeError, match="not an authprobe run store"):
        RunStore(path)


def test_a_file_that_is_not_a_database_is_damaged_with_what_to_do(tmp_path):
    path = tmp_path / "runs.sqlite"
    path.write_bytes(b"SQLite format 3\x00" + b"\x07" * 5000)
    code, _, stderr = cli_runs("--store", str(path))
    assert code == 2 and "damaged" in stderr and f"mv {path} {path}.damaged" in stderr
    assert "Traceback" not in stderr


def test_a_malformed_page_is_damaged_not_a_traceback(tmp_path):
    path = tmp_path / "runs.sqlite"
    finished_store(path)
    data = bytearray(path.read_bytes())
    assert len(data) >= 3 * 4096
    data[4096:8192] = b"\x07" * 4096       # the second page: a table's b-tree
    path.write_bytes(bytes(data))
    for args in (("--store", str(path)), ("show", "latest", "--store", str(path))):
        code, _, stderr = cli_runs(*args)
        assert code == 2 and "is damaged (database disk image is malformed)" in stderr


def test_undecodable_text_and_out_of_range_timestamps_read_as_missing(tmp_path):
    path = tmp_path / "runs.sqlite"
    run_id = finished_store(path)
    sql(path, "UPDATE runs SET port = CAST(x'ff41' AS TEXT), started = 1e300, ended = -1e300, identity = 'nope'")
    with RunStore(path) as s:
        run = s.list_runs()[0]
    assert run["port"] == "\ufffdA" and run["started"] is None and run["duration_s"] is None
    assert run["identity"] == {}
    code, out, stderr = cli_runs("--store", str(path))
    assert (code, stderr) == (0, "") and "complete" in out
    code, out, stderr = cli_runs("show", run_id, "--store", str(path), "--raw")
    assert (code, stderr) == (0, "") and "wifi_wrong_password" in out


def test_a_stored_report_built_from_a_wrongly_typed_record_is_rebuilt_from_the_lines(tmp_path):
    """What a store written before records were checked holds: a step with status 5, details [1]."""
    path = tmp_path / "runs.sqlite"
    run_id = finished_store(path)
    old = {"schema": "authprobe.report/1", "run_id": run_id, "verdict": "fail", "device": {}, "counts": {},
           "steps": [{"seq": 1, "step": "wifi", "code": 302, "name": "x", "status": 5, "details": [1]}]}
    sql(path, "UPDATE runs SET report = '" + json.dumps(old) + "'")
    with RunStore(path) as s:
        report = s.get_report(run_id)
    assert report["verdict"] == "fail" and report["steps"][0]["status"] == "fail"
    assert "status" in report["collection"]["rebuilt"]
    code, out, stderr = cli_runs("show", run_id, "--store", str(path))
    assert (code, stderr) == (0, "") and "wifi_wrong_password" in out


def test_a_collecting_run_with_a_wrongly_typed_record_still_shows(store):
    """A run the old collector left 'collecting' after a bad record crashed it: rebuilt, readable."""
    run_id = store.begin_run(port="loop://")
    add(store, run_id, BEGIN)
    bad = record.encode(dict(STEP_FAIL, code="x")).encode()
    store.add_line(run_id, bad, t=1.0, kind="record", record=dict(STEP_FAIL, code="x"))
    add(store, run_id, STEP_FAIL)
    report = store.get_report(run_id)
    assert report["noise"]["damaged"] == {"bad-schema": 1}
    assert [s["code"] for s in report["steps"]] == [302]
    assert [r["code"] for r in store.get_records(run_id) if r["k"] == "step"] == [302]


def test_a_hundred_megabytes_of_noise_keeps_a_bounded_sample_and_exact_counts(tmp_path):
    store = RunStore(tmp_path / "runs.sqlite")
    run_id = store.begin_run(port="/dev/ttyUSB0")
    add(store, run_id, BEGIN)
    store.close()       # the WAL is folded into the file: sizes compare like for like
    before = store.path.stat().st_size
    junk = b"\x00\xfe garbage " * 100                       # 1,100 bytes, no record in it
    lines = 100 * 1024 * 1024 // len(junk) + 1
    for _ in range(lines):
        store.add_line(run_id, junk, t=2.0, kind="noise")
    store.add_line(run_id, b"rst:0xc (SW_CPU_RESET)", t=3.0, kind="boot", reason="rom")   # always kept
    add(store, run_id, END)
    store.close()
    grown = store.path.stat().st_size - before
    assert grown < 2 * line_sample.NOISE_SAMPLE_BYTES      # was 103 MB
    kept = store.get_lines(run_id)
    assert [ln["kind"] for ln in kept][-2:] == ["boot", "record"]
    omitted = [ln for ln in kept if ln["kind"] == "omitted"]
    assert len(omitted) == 1
    # The report rebuilt from what was stored counts every line, stored or not.
    report = store.get_report(run_id)
    assert report["noise"]["lines"] == lines + 1 and report["noise"]["restarts"] == 1
    assert report_from_lines(run_id, kept)["noise"]["lines"] == lines + 1
    store.close()
    code, out, _ = cli_runs("show", run_id, "--store", str(store.path), "--raw")
    assert code == 0 and "more lines" in out and "counted, not stored" in out


def test_both_backends_keep_a_bounded_sample_of_noise_and_count_the_rest(store, spec):
    run_id = store.begin_run(port="/dev/ttyUSB0")
    add(store, run_id, BEGIN)
    junk = b"garbage " * 128                                  # 1 KB
    lines = 2 * line_sample.NOISE_SAMPLE_BYTES // len(junk)  # twice the sample
    for _ in range(lines):
        store.add_line(run_id, junk, t=2.0, kind="noise")
    store.add_line(run_id, b"bad line", t=2.5, kind="damaged", reason="crc-mismatch")
    add(store, run_id, END)
    store.close()       # the counts not yet written go out now (a reader sees them within a second)
    with open_store(spec) as other:
        kept = other.get_lines(run_id)
        report = other.get_report(run_id)      # never finished: rebuilt from the stored lines
    noise = [ln for ln in kept if ln["kind"] == "noise"]
    assert 0 < sum(len(ln["raw"]) for ln in noise) <= line_sample.NOISE_SAMPLE_BYTES
    (omitted,) = [ln for ln in kept if ln["kind"] == line_sample.OMITTED]
    assert sorted(line_sample.counts_of(omitted["reason"])) == [
        ("damaged", "crc-mismatch", 1), ("noise", None, lines - len(noise))]
    assert [ln["kind"] for ln in kept if ln["kind"] == "record"] == ["record", "record"]
    assert report["noise"]["lines"] == lines and report["noise"]["damaged"] == {"crc-mismatch": 1}


def test_a_schema_text_that_is_no_utf8_is_damaged(tmp_path):
    # Found by the property tests: SQLite's error quotes the damaged schema, which Python then failed to decode.
    path = tmp_path / "runs.sqlite"
    finished_store(path)
    data = path.read_bytes()
    at = data.index(b"raw BLOB NOT NULL") + len(b"raw BLOB NOT ")    # NULL -> \x80ULL: a syntax error
    path.write_bytes(data[:at] + b"\x80" + data[at + 1:])
    with pytest.raises(AuthprobeError, match="is damaged"):
        RunStore(path)


def test_a_schema_version_that_only_looks_like_a_number_is_damaged(tmp_path):
    path = tmp_path / "runs.sqlite"
    finished_store(path)
    sql(path, "UPDATE meta SET value = '²' WHERE key = 'schema'")   # str.isdigit() says yes, int() says no
    with pytest.raises(AuthprobeError, match="damaged .*schema version"):
        RunStore(path)
