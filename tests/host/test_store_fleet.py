"""The fleet view's figures, from a day on a small line written into both backends: pass rate and
counts, grouping by station/board/root cause/firmware/day, the root-cause histogram, the slowest
step, the timeline, `--since`, and `authprobe runs stats` (tables and --json)."""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import pytest

from authprobe import cli
from authprobe.errors import ConfigError
from authprobe.store import open_store
from authprobe.store.fleet import fleet_stats, parse_since, summarize
from tests.fixtures.fleet_runs import fill_line

LONG = "station-with-a-rather-long-name-c"


@pytest.fixture(params=["sqlite", "postgresql"])
def spec(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "runs.sqlite")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def line(spec):
    with open_store(spec) as store:
        now = fill_line(store)
    return spec, now


def test_the_last_24_hours(line):
    spec, now = line
    with open_store(spec) as store:
        stats = fleet_stats(store, since=now - 24 * 3600, now=now)
    assert stats["totals"] == {"runs": 20, "pass": 15, "fail": 4, "incomplete": 1, "pass_rate": 0.75}
    assert {g["key"]: (g["runs"], g["pass"], g["fail"], g["incomplete"]) for g in stats["groups"]} == {
        "st-a": (10, 8, 2, 0), "st-b": (6, 3, 2, 1), LONG: (4, 4, 0, 0)}
    assert [g["key"] for g in stats["groups"]] == ["st-a", "st-b", LONG]   # most runs first
    by_key = {g["key"]: g for g in stats["groups"]}
    assert by_key["st-a"]["root_cause"] == "authorizer-deny" and by_key[LONG]["root_cause"] is None
    assert by_key["st-a"]["pass_rate"] == 0.8
    assert {c["root_cause"]: c["runs"] for c in stats["root_causes"]} == {
        "authorizer-deny": 2, "wifi-failure": 2, "undiagnosed": 1}
    assert stats["root_causes"][-1] == {"root_cause": "undiagnosed", "runs": 1, "share": 0.2}
    slowest = stats["slowest_step"]
    # mqtt_connect: st-a 510..580, 880, 900; st-b 600 x3; c 700 x4 (skipped ones left out): 17, median 600
    assert (slowest["step"], slowest["runs"], slowest["max_ms"], slowest["fail"]) == ("mqtt_connect", 17, 900, 2)
    assert slowest["median_ms"] == 600
    assert [s["step"] for s in stats["steps"]] == ["mqtt_connect", "wifi", "config"]
    assert next(s for s in stats["steps"] if s["step"] == "wifi")["fail"] == 2
    tl = stats["timeline"]
    assert tl["bucket_s"] == 3600 and sum(b["runs"] for b in tl["buckets"]) == 20
    assert sum(sum(b["root_causes"].values()) for b in tl["buckets"]) == 5


def test_all_time_and_other_groupings(line):
    spec, now = line
    with open_store(spec) as store:
        everything = fleet_stats(store, now=now)
        assert everything["totals"]["runs"] == 22 and everything["since"] is None
        assert everything["timeline"]["bucket_s"] == 6 * 3600   # 73 hours in at most 60 buckets
        by_cause = fleet_stats(store, since=now - 24 * 3600, by="root_cause", now=now)
        assert {g["key"]: g["runs"] for g in by_cause["groups"]} == {
            "none (passed)": 15, "authorizer-deny": 2, "wifi-failure": 2, "undiagnosed": 1}
        by_fw = fleet_stats(store, since=now - 24 * 3600, by="firmware", now=now)
        assert {g["key"]: g["runs"] for g in by_fw["groups"]} == {"v1.24.1": 15, "v1.25.0": 4, "(unknown)": 1}
        by_day = fleet_stats(store, by="day", now=now)
        assert [g["key"] for g in by_day["groups"]] == sorted(g["key"] for g in by_day["groups"])
        assert sum(g["runs"] for g in by_day["groups"]) == 22
        by_board = fleet_stats(store, by="board", now=now)
        assert {g["key"] for g in by_board["groups"]} == {"(no uid)"}   # these runs sent no begin record


def test_runs_stats_on_the_command_line(line, capsys, monkeypatch):
    spec, _ = line
    monkeypatch.setenv("COLUMNS", "60")   # a narrow terminal still shows every identifier whole
    assert cli.main(["runs", "stats", "--store", spec, "--since", "24h"]) == 0
    out = capsys.readouterr().out
    assert "20 run(s)" in out and "75.0%" in out
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("│")}
    assert all(w in rows["st-a"] for w in ("10", "80.0%", "authorizer-deny", "mqtt_connect"))
    assert all(w in rows[LONG] for w in ("100.0%", "mqtt_connect"))
    assert all(w in rows["undiagnosed"] for w in ("1", "20.0%"))
    assert all(w in rows["mqtt_connect"] for w in ("17", "600", "900"))
    password = urlsplit(spec).password if spec.startswith("postgresql://") else None
    assert password is None or password not in out
    assert cli.main(["runs", "stats", "--store", spec, "--since", "24h", "--by", "station", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["schema"] == "authprobe.fleet/1" and stats["totals"]["runs"] == 20
    assert password is None or password not in stats["store"]
    assert cli.main(["runs", "stats", "--store", spec, "--since", "yesterday"]) == 2
    assert "--since 'yesterday'" in capsys.readouterr().err


def test_an_empty_store(spec, capsys):
    assert cli.main(["runs", "stats", "--store", spec, "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["totals"] == {"runs": 0, "pass": 0, "fail": 0, "incomplete": 0, "pass_rate": None}
    assert stats["groups"] == [] and stats["slowest_step"] is None and stats["timeline"]["buckets"] == []


@pytest.mark.parametrize(("text", "ago"), [("24h", 86400), ("90m", 5400), ("7d", 7 * 86400), ("30s", 30),
                                           ("2w", 14 * 86400), (" 1.5h ", 5400)])
def test_since_ages(text, ago):
    assert parse_since(text, now=1_000_000.0) == 1_000_000.0 - ago


def test_since_dates_are_utc():
    assert parse_since("2026-11-26") == 1795651200.0
    assert parse_since("2026-11-26T08:00") == 1795651200.0 + 8 * 3600
    assert parse_since("2026-11-26T08:00Z") == parse_since("2026-11-26T09:00+01:00")
    for bad in ("yesterday", "24x", "", "-5h"):
        with pytest.raises(ConfigError, match="--since"):
            parse_since(bad)


def test_an_unknown_grouping_is_refused():
    with pytest.raises(ConfigError, match="--by"):
        summarize([], [], by="colour", now=time.time())
