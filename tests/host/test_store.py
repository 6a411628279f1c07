"""The run store, the same tests against both backends (SQLite and a real PostgreSQL server):
incremental writes, reports rebuilt from stored lines, listing, lookup, several collector threads
writing at once, the station and fleet columns, schema versions."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
from pathlib import Path

import pytest

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
