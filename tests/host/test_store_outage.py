"""The PostgreSQL store out of reach: nothing listening, a wrong password, the network dropped mid-run.
Each time a clear message (no password in it), the run kept whole in the local SQLite store, and
`authprobe runs sync` pushing it when the server is back, nothing lost and nothing twice."""

from __future__ import annotations

import json

import pytest

from authprobe import cli
from authprobe.report.json_report import build_report
from authprobe.store import DEFAULT_PATH, RunStore, StoreUnavailable, default_path, open_store, redact_url
from authprobe.store import postgres as pg_store
from selftest import record
from tests.fixtures.postgres import Relay, free_port

RECORDS = [{"k": "begin", "run": "dev-1", "uid": "a4cf12000009", "client_id": "thing-9", "firmware": "v1.24.1"},
           *({"k": "step", "run": "dev-1", "seq": i, "step": f"s{i}", "code": 100, "name": "config_ok",
              "status": "pass", "ms": 10 * i} for i in range(1, 11)),
           {"k": "end", "run": "dev-1", "verdict": "pass", "counts": {"pass": 10}, "ms": 99}]


def write(store, run_id, records, t0=0.0):
    for i, rec in enumerate(records):
        store.add_line(run_id, record.encode(rec).encode(), t=t0 + i, kind="record", record=rec)


def finish(store, run_id):
    store.finish_run(run_id, build_report(RECORDS, run_id=run_id), status="complete")


def assert_whole(store, run_id, station="st-9"):
    run = store.get_run(run_id)
    assert (run["status"], run["verdict"], run["station"], run["uid"]) == ("complete", "pass", station, "a4cf12000009")
    lines = store.get_lines(run_id)
    assert [ln["seq"] for ln in lines] == list(range(1, len(RECORDS) + 1))
    assert [json.loads(ln["raw"].split(b" ")[1]) for ln in lines] == RECORDS
    assert [r["k"] for r in store.get_records(run_id)] == [r["k"] for r in RECORDS]


@pytest.fixture
def spool(tmp_path, monkeypatch):
    """The SQLite default (.authprobe/runs.sqlite) of a station working in tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUTHPROBE_STORE", raising=False)
    return tmp_path / ".authprobe" / "runs.sqlite"


def sync(url, capsys):
    capsys.readouterr()
    code = cli.main(["runs", "sync", "--store", url])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_server_unreachable_spools_the_run_and_sync_pushes_it(postgres, pg_url, spool, capsys):
    dead = f"postgresql://authprobe:{postgres.password}@127.0.0.1:{free_port()}/line"
    warnings: list[str] = []
    with open_store(dead, station="st-9", spool=True, on_warning=warnings.append) as store:
        run_id = store.begin_run(port="/dev/ttyUSB0", board="esp32")
        write(store, run_id, RECORDS)
        finish(store, run_id)
    assert len(warnings) == 1
    assert "cannot reach it (Connection refused)" in warnings[0] and "runs sync" in warnings[0]
    assert str(spool) in warnings[0] and postgres.password not in warnings[0]
    with RunStore(spool) as local:
        assert_whole(local, run_id)
        assert [r for r, _ in local.spool_pending()] == [run_id]
    # A reader is told plainly, not given a spool.
    with pytest.raises(StoreUnavailable, match="Connection refused"):
        open_store(dead)
    code, said = sync(dead, capsys)
    assert code == 2 and "Connection refused" in said and "the runs stay in" in said
    # The server is back (here: the right address).
    code, said = sync(pg_url, capsys)
    assert code == 0 and f"pushed {run_id}" in said and postgres.password not in said
    with open_store(pg_url) as server:
        assert_whole(server, run_id)
    with RunStore(spool) as local:
        assert local.spool_pending() == []
    code, said = sync(pg_url, capsys)
    assert code == 0 and "nothing to push" in said


def test_wrong_password_is_named_and_the_run_kept(postgres, pg_url, spool, capsys):
    wrong = pg_url.replace(postgres.password, "not-the-password")
    warnings: list[str] = []
    with open_store(wrong, station="st-9", spool=True, on_warning=warnings.append) as store:
        run_id = store.begin_run(port="/dev/ttyUSB1")
        write(store, run_id, RECORDS)
        finish(store, run_id)
    assert len(warnings) == 1
    assert 'password authentication failed for user "authprobe"' in warnings[0]
    assert "not-the-password" not in warnings[0] and "authprobe@127.0.0.1" in warnings[0]
    code, said = sync(pg_url, capsys)
    assert code == 0 and f"pushed {run_id}" in said
    with open_store(pg_url) as server:
        assert_whole(server, run_id)


def test_connection_dropped_mid_run(postgres, pg_url, spool, capsys, monkeypatch):
    relay = Relay(postgres.port)
    via_relay = postgres.url(pg_url.rsplit("/", 1)[1], port=relay.port)
    warnings: list[str] = []
    try:
        with open_store(via_relay, station="st-9", spool=True, on_warning=warnings.append) as store:
            run_id = store.begin_run(port="/dev/ttyACM0")
            write(store, run_id, RECORDS[:5])
            with open_store(pg_url) as server:       # the first lines reached the server as they arrived
                assert len(server.get_lines(run_id)) == 5
            relay.cut()
            write(store, run_id, RECORDS[5:], t0=5)
            finish(store, run_id)
            assert len(warnings) == 1 and "cannot reach it" in warnings[0]
            with RunStore(spool) as local:
                assert_whole(local, run_id)          # the spool has the whole run, not only its tail
            # Back: after the retry pause, the next run goes to the server again, and says so.
            relay.restore()
            monkeypatch.setattr(pg_store, "RETRY_OFFLINE_S", 0.0)
            store._offline_until = 0.0
            second = store.begin_run(port="/dev/ttyACM0")
            write(store, second, RECORDS)
            finish(store, second)
            assert len(warnings) == 2 and "reachable again" in warnings[1]
        with open_store(pg_url) as server:
            assert server.get_run(run_id)["status"] == "collecting"   # what it had before the drop
            assert_whole(server, second)
        code, said = sync(via_relay, capsys)
        assert code == 0 and f"pushed {run_id}" in said and second not in said
        with open_store(pg_url) as server:
            assert_whole(server, run_id)             # completed, each line once
    finally:
        relay.close()


def test_a_run_still_being_collected_is_pushed_so_far_and_kept(postgres, pg_url, spool, capsys):
    dead = f"postgresql://authprobe@127.0.0.1:{free_port()}/line"
    store = open_store(dead, station="st-9", spool=True)
    run_id = store.begin_run(port="/dev/ttyUSB2")
    write(store, run_id, RECORDS[:4])
    code, said = sync(pg_url, capsys)
    assert code == 0 and "still being collected" in said
    write(store, run_id, RECORDS[4:], t0=4)
    finish(store, run_id)
    store.close()
    code, said = sync(pg_url, capsys)
    assert code == 0 and f"pushed {run_id}" in said
    with open_store(pg_url) as server:
        assert_whole(server, run_id)
    with RunStore(spool) as local:
        assert local.spool_pending() == []


def test_a_station_started_while_the_server_was_away_creates_the_schema_when_it_is_back(postgres, pg_url, spool,
                                                                                       monkeypatch):
    relay = Relay(postgres.port)
    relay.cut()
    via_relay = postgres.url(pg_url.rsplit("/", 1)[1], port=relay.port)
    monkeypatch.setattr(pg_store, "RETRY_OFFLINE_S", 0.0)
    try:
        with open_store(via_relay, station="st-9", spool=True) as store:
            kept = store.begin_run(port="/dev/ttyUSB3")
            finish(store, kept)
            relay.restore()
            run_id = store.begin_run(port="/dev/ttyUSB3")
            write(store, run_id, RECORDS)
            finish(store, run_id)
        with open_store(pg_url) as server:
            assert_whole(server, run_id)
        with RunStore(spool) as local:
            assert [r for r, _ in local.spool_pending()] == [kept]
    finally:
        relay.close()


def test_the_environment_can_name_the_server(pg_url, spool, monkeypatch):
    monkeypatch.setenv("AUTHPROBE_STORE", pg_url)
    with open_store() as store:
        assert isinstance(store, pg_store.PostgresRunStore) and store.where == redact_url(pg_url)
    assert default_path() == DEFAULT_PATH   # the spool stays the SQLite default


def test_sync_needs_a_postgresql_store(spool, capsys):
    assert cli.main(["runs", "sync", "--store", "some.sqlite"]) == 2
    assert "postgresql://" in capsys.readouterr().err
