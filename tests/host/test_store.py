"""The SQLite run store: incremental writes, reports rebuilt from stored lines, listing, lookup,
several collector threads writing at once."""

from __future__ import annotations

import threading

import pytest

from authprobe.errors import AuthprobeError
from authprobe.store import RunStore
from selftest import record

BEGIN = {"k": "begin", "run": "dev-1", "board": "esp32", "runtime": "micropython", "uid": "a4cf12000001",
         "client_id": "thing-1"}
STEP_FAIL = {"k": "step", "run": "dev-1", "seq": 1, "step": "wifi", "code": 302, "name": "wifi_wrong_password",
             "status": "fail", "ms": 40, "d": {"ssid": "lab"}}
END = {"k": "end", "run": "dev-1", "verdict": "fail", "counts": {"pass": 0, "warn": 0, "fail": 1, "skip": 0}, "ms": 50}


@pytest.fixture
def store(tmp_path):
    s = RunStore(tmp_path / "sub" / "runs.sqlite")
    yield s
    s.close()


def add(store, run_id, rec, t=1.0):
    raw = record.encode(rec).encode()
    store.add_line(run_id, raw, t=t, kind="record", record=rec)


def test_lines_are_visible_to_another_reader_before_the_run_ends(store):
    run_id = store.begin_run(port="/dev/ttyUSB0", board="esp32-generic", identity={"serial_number": "0001"})
    store.add_line(run_id, b"rst:0x1 (POWERON_RESET)", t=0.5, kind="boot", reason="rom")
    add(store, run_id, BEGIN)
    add(store, run_id, STEP_FAIL)
    with RunStore(store.path) as other:      # e.g. `authprobe runs` in another terminal
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
