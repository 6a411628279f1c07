"""Around the join: logs not delivered yet (the stand-in's delivery delay, --log-delay, --wait, exit
3), replays in the run store, stored runs of one client id kept apart, the stand-in's replay marks
and log streams, and the HTML page drawing nearby events apart."""

from __future__ import annotations

import json
import time

import pytest

from authprobe import cli
from authprobe.cloud.local import LocalCloud
from authprobe.cloud.logs_insights import Window
from authprobe.emulator.cloud_records import CloudRecords
from authprobe.emulator.config import config_from_dict
from authprobe.errors import ConfigError
from authprobe.report import html as html_report
from authprobe.store import RunStore
from tests.fixtures import busy_line as bl
from tests.fixtures import cloud_state as cs
from tests.fixtures.emulator import EXAMPLES


def _now_ms() -> int:
    return int(time.time() * 1000)


def _write_iot(path, events):
    path.write_text("".join(json.dumps(e.fields) + "\n" for e in events if e.source == "iot"))


# -- logs not delivered yet ----------------------------------------------------------------------

def test_a_fresh_run_without_its_records_is_provisional_exit_3(tmp_path, capsys):
    run = bl.run("fresh", "dev-1", _now_ms() - 2_500, "signature")
    reports = tmp_path / "r.json"
    reports.write_text(json.dumps(run.report))
    iot = tmp_path / "iot.jsonl"
    iot.write_text("")   # exported just now: nothing delivered yet
    assert cli.main(["correlate", "--report", str(reports), "--iot-log", str(iot), "--json"]) == 3
    out = json.loads(capsys.readouterr().out)
    (item,) = out["runs"]
    assert item["provisional"] is True and item["awaiting"] == ["the Connect record"]
    assert out["log_delay_s"] == 120
    assert cli.main(["correlate", "--report", str(reports), "--iot-log", str(iot)]) == 3
    assert "provisional" in capsys.readouterr().out
    # --log-delay 0: the absence counts at once
    assert cli.main(["correlate", "--report", str(reports), "--iot-log", str(iot), "--log-delay", "0",
                     "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["runs"][0]["provisional"] is False
    # once the records are there the run is decided, however fresh
    _write_iot(iot, run.events)
    assert cli.main(["correlate", "--report", str(reports), "--iot-log", str(iot), "--json"]) == 1
    item = json.loads(capsys.readouterr().out)["runs"][0]
    assert item["provisional"] is False and item["diagnosis"][0]["root_cause"] == "signature-invalid"


@pytest.mark.parametrize("flag,value", [("--log-delay", "-1"), ("--skew", "-5"), ("--log-delay", "nan")])
def test_negative_window_options_are_usage_errors(tmp_path, capsys, flag, value):
    reports = tmp_path / "r.json"
    reports.write_text(json.dumps(cs.report("r1")))
    assert cli.main(["correlate", "--report", str(reports), "--iot-log", str(reports), flag, value]) == 2
    assert flag in capsys.readouterr().err


def test_the_local_backend_delivers_the_stand_ins_records_after_its_delay(tmp_path):
    cloud = cs.healthy_cloud()
    cloud["delivery_delay_s"] = 30
    now = _now_ms()
    state = cs.write_state(tmp_path, cloud, iot_logs=[bl.iot("dev-1", now - 60_000, "Connect").fields,
                                                      bl.iot("dev-1", now - 10_000, "Connect").fields])
    local = LocalCloud(state)
    assert local.log_delay_s == 30
    events = list(local.log_events([Window("dev-1", now - 120_000, now)]))
    assert [e.ts_ms for e in events] == [now - 60_000]   # the other one is not delivered yet
    cloud.pop("delivery_delay_s")
    (state / "cloud.json").write_text(json.dumps(cloud))
    assert LocalCloud(state).log_delay_s == 0   # a stand-in without a delay decides at once


def test_wait_polls_the_stand_in_until_the_record_is_delivered(tmp_path, capsys):
    cloud = cs.healthy_cloud()
    cloud["delivery_delay_s"] = 1.0
    run = bl.run("waiting", "dev-1", _now_ms() - 2_000, "signature")   # its Connect Failure 0.6 s ago
    state = cs.write_state(tmp_path, cloud, iot_logs=[e.fields for e in run.events])
    reports = tmp_path / "r.json"
    reports.write_text(json.dumps(run.report))
    t0 = time.monotonic()
    code = cli.main(["correlate", "--report", str(reports), "--cloud", f"local:{state}", "--wait", "--json"])
    captured = capsys.readouterr()
    item = json.loads(captured.out)["runs"][0]
    assert code == 1 and item["provisional"] is False
    assert item["diagnosis"][0]["root_cause"] == "signature-invalid" and item["diagnosis"][0]["decided"]
    assert "waiting for logs: 1 run(s) provisional (the Connect record)" in captured.err
    assert time.monotonic() - t0 < 10


def test_the_stand_in_reads_its_delivery_delay(tmp_path):
    base = {"endpoint": "x-ats.iot.us-east-1.amazonaws.com", "state_dir": str(tmp_path / "state")}
    assert config_from_dict(dict(base), tmp_path).delivery_delay_s == 0
    assert config_from_dict(dict(base, logging={"delivery_delay_s": 2.5}), tmp_path).delivery_delay_s == 2.5
    for bad, words in (({"delivery_delay_s": -1}, "delivery_delay_s"), ({"delivery_delay_s": "1s"}, "delivery_delay_s"),
                       ({"delay": 1}, "unknown key 'delay'"), ("3", "[logging] must be a table")):
        with pytest.raises(ConfigError) as err:
            config_from_dict(dict(base, logging=bad), tmp_path)
        assert words in str(err.value)


def test_the_stand_in_marks_its_replays_and_names_each_log_stream(tmp_path):
    cfg = config_from_dict({"endpoint": "x-ats.iot.us-east-1.amazonaws.com", "state_dir": str(tmp_path / "s"),
                            "logging": {"delivery_delay_s": 4}}, tmp_path)
    records = CloudRecords(cfg)
    records.lambda_log("fn", "from a device", stream="2026/11/26/[$LATEST]aa")
    with records.replaying():
        records.lambda_log("fn", "from TestInvokeAuthorizer", stream="2026/11/26/[$LATEST]aa")
    records.lambda_log("fn", "from a device again")
    lines = [json.loads(x) for x in (records.logs_dir / "lambda" / "fn.jsonl").read_text().splitlines()]
    assert [x.get("replay") for x in lines] == [None, True, None]
    assert lines[0]["logStream"] == "2026/11/26/[$LATEST]aa" and "logStream" not in lines[2]
    assert json.loads(records.write_descriptions(time.time()).read_text())["delivery_delay_s"] == 4


def test_the_example_stand_in_config_delivers_at_once():
    from authprobe.emulator.config import load_config

    assert load_config(EXAMPLES / "emulator.toml").delivery_delay_s == 0


# -- the run store: replays and runs of one client id ---------------------------------------------

def test_replays_are_kept_in_the_run_store(tmp_path):
    with RunStore(tmp_path / "runs.sqlite") as store:
        store.add_replay(at=100.0, until=100.5, authorizer="A", client_id="tray-1", invoked=True)
        store.add_replay(at=200.0, until=200.2, authorizer="A", client_id="tray-10", invoked=None)
        store.add_replay(at=300.0, until=300.1, authorizer="B", client_id="tray-1", invoked=False)
        assert [r["at"] for r in store.list_replays()] == [100.0, 200.0, 300.0]
        assert [r["invoked"] for r in store.list_replays(client_ids={"tray-1"})] == [True, False]
        assert [r["client_id"] for r in store.list_replays(since=150, until=250)] == ["tray-10"]


def _store_runs(db, runs):
    with RunStore(db) as store:
        for r in runs:
            store.begin_run(port="loop://", run_id=r.run_id, started=(r.begin_ms - bl.BOOT_MS) / 1000)
            store.add_line(r.run_id, b"@AP1 begin", t=r.begin_ms / 1000, kind="record",
                           record={"k": "begin", "client_id": r.report["device"]["client_id"]})
            store.finish_run(r.run_id, r.report, status="complete")


def test_a_stored_run_keeps_its_events_when_a_later_run_of_its_board_is_correlated(tmp_path, capsys):
    first = bl.run("20261126T090000Z-aaaaaa", "dev-1", bl.T0, "pass")
    second = bl.run("20261126T090010Z-bbbbbb", "dev-1", bl.T0 + 10_000, "signature")
    db = tmp_path / "runs.sqlite"
    _store_runs(db, [first, second])
    iot = tmp_path / "iot.jsonl"
    _write_iot(iot, first.events + second.events)
    # a wide margin reaches the first run's records; the stored first run keeps them
    assert cli.main(["correlate", second.run_id, "--store", str(db), "--iot-log", str(iot), "--skew", "120",
                     "--json", "--events"]) == 1
    item = json.loads(capsys.readouterr().out)["runs"][0]
    assert [(e["eventType"], e["status"]) for e in item["events"]] == [("Connect", "Failure")]
    assert item["diagnosis"][0]["root_cause"] == "signature-invalid"
    assert item["nearby"] == len([e for e in first.events if e.source == "iot"])
    assert all("follows the connection of run " + first.run_id in e["nearby"] for e in item["nearby_events"])


def test_correlate_labels_the_replays_the_run_store_recorded(tmp_path, capsys):
    run = bl.run("20261126T090000Z-cccccc", "dev-1", bl.T0, "pass")
    db = tmp_path / "runs.sqlite"
    _store_runs(db, [run])
    at = bl.T0 + bl.CONNECT_AT + 500
    rid = "99999999-2222-4333-8444-555555555555"
    lines = [f"START RequestId: {rid} Version: $LATEST", "authorizing clientId='dev-1' token_len=22",
             f"END RequestId: {rid}"]
    fn = tmp_path / "fn.jsonl"
    fn.write_text("".join(json.dumps({"timestamp": at + i, "message": m, "logStream": "s"}) + "\n"
                          for i, m in enumerate(lines)))
    with RunStore(db) as store:
        store.add_replay(at=at / 1000, until=(at + 50) / 1000, authorizer="DeviceAuth", client_id="dev-1",
                         invoked=True)
    assert cli.main(["correlate", "--store", str(db), "--function-log", str(fn), "--json", "--events"]) == 0
    item = json.loads(capsys.readouterr().out)["runs"][0]
    assert item["events"] == [] and item["matched"]["lambda"] == 0
    assert [e["attributed"] for e in item["nearby_events"]] == ["replay"]


# -- the page ------------------------------------------------------------------------------------

def test_the_time_axis_spans_the_run_and_its_own_evidence_nearby_drawn_apart():
    run = bl.run("r", "dev-1", bl.T0, "signature")
    own = [{"timestamp": bl.iot_ts(bl.T0 + 1_400), "eventType": "Connect", "status": "Failure"}]
    nearby = [{"timestamp": bl.T0 - 40_000, "message": "[replay] authorizing", "logGroup": "fn", "nearby": "replay"},
              {"timestamp": bl.iot_ts(bl.T0 + 90_000), "eventType": "Connect", "status": "Success",
               "nearby": "not this run: outside its window"}]
    tl = html_report.timeline(run.report, own + nearby)
    starts = [s["start"] for s in tl["steps"]] + [e["start"] for e in tl["events"]]
    ends = [s["end"] for s in tl["steps"]] + [e["end"] for e in tl["events"]]
    assert max(ends) - min(starts) < 3   # the run's 1.9 s and its Connect Failure, not 130 s of neighbours
    assert [n["reason"] for n in tl["nearby"]] == ["replay", "not this run: outside its window"]
    page = html_report.render([(run.report, own + nearby)])
    assert "Nearby, not this run" in page and "outside its window" in page


def test_a_provisional_run_says_so_on_its_page():
    run = bl.run("r", "dev-1", bl.T0, "signature")
    run.report["correlation"] = {"provisional": True, "awaiting": ["the Connect record"]}
    page = html_report.render([(run.report, [])])
    assert "provisional</span>" in page and "the Connect record not delivered yet" in page
    run.report["correlation"] = {"provisional": False}
    assert "provisional" not in html_report.render([(run.report, [])])


def test_a_stored_run_without_timings_gets_its_host_times_from_the_store(tmp_path, capsys):
    """A run whose collection never finished (no end record, no timings): its report is rebuilt from
    the stored lines, and the store's receive times place it (the board took 10 s to boot; its own
    clock is 3 h off), so its Connect Failure is found and decides."""
    from selftest import record

    run = bl.run("20261126T085950Z-dddddd", "dev-1", bl.T0, "signature", device_utc="2026-11-26T06:00:00Z")
    records = [{"k": "begin", "run": "x", "client_id": "dev-1", "utc": "2026-11-26T06:00:00Z"}]
    records += [{"k": "step", "run": "x", "seq": s["seq"], "code": s["code"], "status": s["status"],
                 "ms": s["elapsed_ms"]} for s in run.report["steps"]]
    db = tmp_path / "runs.sqlite"
    with RunStore(db) as store:
        store.begin_run(port="loop://", run_id=run.run_id, started=(bl.T0 - 10_000) / 1000)
        for i, rec in enumerate(records):
            store.add_line(run.run_id, record.encode(rec).encode(), t=(bl.T0 + 200 * i) / 1000, kind="record",
                           record=rec)
    iot = tmp_path / "iot.jsonl"
    _write_iot(iot, run.events)
    assert cli.main(["correlate", run.run_id, "--store", str(db), "--iot-log", str(iot), "--json"]) == 1
    item = json.loads(capsys.readouterr().out)["runs"][0]
    assert item["window"]["clock"] == "host" and item["matched"]["iot"] == 1
    assert item["diagnosis"][0]["root_cause"] == "signature-invalid"
