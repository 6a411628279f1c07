"""Station mode end to end, without hardware: `authprobe station` watching a folder of by-id-like
links while virtual native-USB boards (each its own process) are plugged at staggered times. One
has a Wi-Fi fault, one a token the cloud revoked, one is unplugged mid-run and plugged again, and a
port that is no serial port keeps appearing and vanishing. Every board's line, its stored run, its
own signed token, and that the signing key is nowhere but in its file."""

from __future__ import annotations

import json
import queue
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from authprobe.aws import signing
from authprobe.store import RunStore
from selftest.record import fingerprint
from tests.fixtures.emulator import EXAMPLE_PUBLIC
from tests.fixtures.processes import popen_as_from_a_terminal
from tests.fixtures.station import LINE_KEY, PORT_GLOB, PluggedBoard, line_device_toml, line_standin

HEALTHY = ["a4cf12000001", "a4cf12000002", "a4cf12000003", "a4cf12000004", "a4cf12000005"]
WIFI_FAULT = "a4cf120000f1"
REVOKED = "a4cf12dead07"             # tests/fixtures/station_handlers.REVOKED_UIDS
UNPLUGGED = "a4cf12000006"           # pulled out mid-run, then plugged in again
PLUG_EVERY_S = 0.4
DEADLINE_S = 55


@pytest.fixture
def line(tmp_path):
    try:
        from authprobe.board.virtual import micropython_path

        micropython_path()
    except Exception as exc:  # the unix port has wheels for Linux x86_64 only
        pytest.skip(f"virtual boards need the MicroPython unix port: {exc}")
    emu = line_standin(tmp_path)
    yield emu
    emu.close()


def read_events(stream, events: queue.Queue) -> None:
    for raw in stream:
        events.put(json.loads(raw))
    events.put(None)


def test_a_station_handles_a_staggered_tray_hands_off(line, tmp_path):
    ports = tmp_path / "ports"
    ports.mkdir()
    config = line_device_toml(line, tmp_path / "device.toml")
    store_path = tmp_path / "store" / "runs.sqlite"
    uids = HEALTHY[:3] + [WIFI_FAULT, UNPLUGGED, REVOKED] + HEALTHY[3:]
    boards = {uid: PluggedBoard(ports, tmp_path / f"flash-{uid}", uid,
                                wifi_fault="wrong-password" if uid == WIFI_FAULT else None) for uid in uids}
    not_a_port = tmp_path / "not-a-tty"
    not_a_port.write_text("a file where a serial port should be\n")
    flapping = ports / "usb-authprobe_broken-if00"

    station = popen_as_from_a_terminal(
        [sys.executable, "-m", "authprobe.cli", "station", "--config", str(config), "--watch", str(ports / PORT_GLOB),
         "--store", str(store_path), "--station", "line-1", "--exit-after", str(len(uids) + 1), "--json-lines",
         "--sign-key", str(LINE_KEY), "--cloud", f"local:{line.config.state_dir}", "--timeout", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events: queue.Queue = queue.Queue()
    threading.Thread(target=read_events, args=(station.stdout, events), daemon=True).start()
    seen: list[dict] = []
    pulled = replugged = False
    try:
        t0 = time.monotonic()
        to_plug = list(uids)
        next_plug = t0
        flaps = 0
        while True:
            now = time.monotonic()
            assert now - t0 < DEADLINE_S, f"the station did not finish in {DEADLINE_S} s: {seen[-5:]}"
            if to_plug and now >= next_plug:
                boards[to_plug.pop(0)].plug()
                next_plug = now + PLUG_EVERY_S
            if flaps < 9 and now - t0 > 2.0 + flaps * 0.5:
                # A port that is there, gone, there again (and stays): a board failing to enumerate.
                if flapping.is_symlink():
                    flapping.unlink()
                else:
                    flapping.symlink_to(not_a_port)
                flaps += 1
            try:
                event = events.get(timeout=0.05)
            except queue.Empty:
                continue
            if event is None:
                break
            seen.append(event)
            port = event.get("port", "")
            if not pulled and port.endswith(f"{UNPLUGGED}-if00") and event["event"] == "slot" \
                    and event["state"] == "running" and event["detail"]:
                boards[UNPLUGGED].unplug()   # records are arriving: mid-run
                pulled = True
            if pulled and not replugged and event["event"] == "board" and event["uid"] == UNPLUGGED:
                boards[UNPLUGGED].plug()
                replugged = True
        rc = station.wait(timeout=10)
    finally:
        if station.poll() is None:
            station.kill()
        for board in boards.values():
            board.unplug()
    stderr = station.stderr.read()
    assert rc == 3, (rc, stderr)   # the worst board: an incomplete run

    lines = [e for e in seen if e["event"] == "board"]
    by_uid: dict[str, list[dict]] = {}
    for e in lines:
        by_uid.setdefault(e["uid"], []).append(e)
    # One line per board: a native-USB board's own resets (every run here) are no new board.
    for uid in HEALTHY:
        assert [e["verdict"] for e in by_uid[uid]] == ["PASS"], by_uid[uid]
    assert [e["verdict"] for e in by_uid[WIFI_FAULT]] == ["FAIL"], by_uid[WIFI_FAULT]
    assert by_uid[WIFI_FAULT][0]["root_cause"] == "wifi-failure" and by_uid[WIFI_FAULT][0]["fix"]
    assert by_uid[WIFI_FAULT][0]["failed_step"].startswith("wifi:")
    assert [e["verdict"] for e in by_uid[REVOKED]] == ["FAIL"]
    assert by_uid[REVOKED][0]["root_cause"] == "authorizer-denied" and by_uid[REVOKED][0]["fix"]
    # Pulled mid-run: incomplete, the station went on; plugged again: a new run, which passes.
    assert [e["verdict"] for e in by_uid[UNPLUGGED]] == ["INCOMPLETE", "PASS"], by_uid[UNPLUGGED]
    assert by_uid[UNPLUGGED][0]["reason"] == "vanished"
    assert by_uid[UNPLUGGED][0]["run_id"] != by_uid[UNPLUGGED][1]["run_id"]
    # The port that never answers: reported once, however often it came and went.
    broken = [e for e in lines if e["port"] == str(flapping)]
    assert len(broken) == 1 and broken[0]["verdict"] == "ERROR" and broken[0]["reason"] == "no-answer", broken
    assert len(lines) == len(uids) + 2
    assert all(e["correlated"] for e in lines if e["run_id"])
    summary = seen[-1]
    assert summary["event"] == "station" and summary["boards"] == len(uids) + 1 and summary["exit_code"] == 3

    # Every run stored, with its station and board; the correlated diagnosis written back.
    with RunStore(store_path) as store:
        runs = store.list_runs()
        assert len(runs) == len(uids) + 1
        assert {r["identity"]["station"] for r in runs} == {"line-1"}
        assert sorted(r["identity"]["uid"] for r in runs) == sorted([*uids, UNPLUGGED])
        for e in lines:
            if not e["run_id"]:
                continue
            run = store.get_run(e["run_id"])
            report = store.get_report(e["run_id"])
            assert run["identity"]["uid"] == e["uid"]
            if e["verdict"] == "INCOMPLETE":
                assert (run["status"], run["reason"]) == ("incomplete", "vanished")
                assert store.get_records(e["run_id"])[0]["k"] == "begin"   # what arrived is kept
                continue
            assert run["status"] == "complete" and report["verdict"] == e["verdict"].lower()
            assert report["correlation"]["source"].startswith("local")
            # The board's own token, as the device reports it: a fingerprint (a Wi-Fi fault stops earlier).
            token = f"allow-{e['uid']}"
            assert e["credentials"]["token"] == fingerprint(token)
            if e["uid"] != WIFI_FAULT:
                connect = next(s for s in report["steps"] if s["step"] == "connect")
                assert connect["details"]["token"] == fingerprint(token)

    # Each board's config holds its own token and a signature of exactly that token.
    public = signing.load_public_key(EXAMPLE_PUBLIC.read_bytes())
    signatures = set()
    for uid, board in boards.items():
        cfg = json.loads((board.flash_dir / "authprobe.json").read_text())
        assert cfg["auth"]["token"] == f"allow-{uid}"
        assert signing.verifies(public, signing.decode_base64(cfg["auth"]["signature"]), cfg["auth"]["token"])
        assert e_fp(by_uid[uid][-1], "signature") == fingerprint(cfg["auth"]["signature"])
        signatures.add(cfg["auth"]["signature"])
    assert len(signatures) == len(boards)

    # The private key never left the host's key file; tokens and signatures stay out of output and store.
    key_lines = [ln for ln in Path(LINE_KEY).read_text().splitlines() if ln and not ln.startswith("-----")]
    secrets = key_lines + [f"allow-{uid}" for uid in boards] + sorted(signatures)
    stored = b"".join(p.read_bytes() for p in store_path.parent.iterdir())
    with sqlite3.connect(store_path) as db:   # and what SQLite holds in its pages, decoded
        dumped = "\n".join(db.iterdump())
    output = json.dumps(seen) + stderr
    for secret in secrets:
        assert secret not in output and secret.encode() not in stored and secret not in dumped, secret[:12]
    for board in boards.values():
        on_board = b"".join(p.read_bytes() for p in board.flash_dir.rglob("*") if p.is_file())
        assert all(ln.encode() not in on_board for ln in key_lines)


def e_fp(event: dict, name: str) -> dict:
    return event["credentials"][name]
