"""`authprobe run` with a PostgreSQL store: the run lands in the server with its station; with the
server out of reach the run is still collected, the operator told once (no password shown), the
run kept in the SQLite default and pushed by `authprobe runs sync`."""

from __future__ import annotations

import json

from authprobe import cli
from authprobe.store import RunStore, open_store
from tests.fixtures import board_programs as programs


def test_run_into_postgresql_records_the_station(authprobe_virtual_boards, pg_url, capsys):
    board = authprobe_virtual_boards()
    programs.install(board.flash_dir, programs.FAILING)
    assert cli.main(["run", "--port", board.port, "--store", pg_url, "--station", "line1-st4", "--timeout", "20",
                     "--quiet"]) == 1
    capsys.readouterr()
    with open_store(pg_url) as store:
        (run,) = store.list_runs()
        assert (run["station"], run["verdict"], run["uid"], run["root_cause"]) == (
            "line1-st4", "fail", board.uid, "wifi-failure")
    assert cli.main(["runs", "--store", pg_url, "--station", "line1-st4", "--json"]) == 0
    assert [r["run_id"] for r in json.loads(capsys.readouterr().out)] == [run["run_id"]]


def test_run_with_the_server_away_spools_and_sync_pushes(authprobe_virtual_boards, postgres, pg_url, tmp_path,
                                                        capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUTHPROBE_STORE", raising=False)
    board = authprobe_virtual_boards()
    programs.install(board.flash_dir, programs.PASSING)
    wrong = pg_url.replace(postgres.password, "wrong-password-123")
    assert cli.main(["run", "--port", board.port, "--store", wrong, "--station", "line1-st4", "--timeout", "20",
                     "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.count("password authentication failed") == 1 and "wrong-password-123" not in err
    assert "runs sync" in err
    with RunStore(tmp_path / ".authprobe" / "runs.sqlite") as local:
        (run,) = local.list_runs()
        assert (run["station"], run["verdict"]) == ("line1-st4", "pass")
        lines = local.get_lines(run["run_id"])
    assert cli.main(["runs", "sync", "--store", pg_url]) == 0
    with open_store(pg_url) as store:
        assert store.get_report(run["run_id"])["verdict"] == "pass"
        assert store.get_lines(run["run_id"]) == lines
