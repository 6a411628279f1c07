"""Benchmark: station throughput, boards per hour from plug to stored verdict.

One `authprobe station` process (--json-lines, per-board signed tokens, correlation with the local
stand-in, SQLite store) watches a folder. Virtual native-USB boards at 115200 baud (8N1, what a
USB-UART bridge gives; each board its own process) are powered first and then "plugged" by making
their by-id-like links appear in the watched folder, all at the same instant. Measured, wall-clock
with time.perf_counter from the plug to the board's line (printed after its verdict is stored):
  1. one blank board at a time (median of 3 boards): the single-board rate,
  2. 8 blank boards plugged together: the tray's rate, and its share of 8 x the single-board rate,
  3. the same 8 boards plugged again (self-test already on them: the flash is one round trip),
with the time each phase took (identify, flash, run, correlate; medians over the tray's boards).
Aim (issue 14): the tray's rate >= 85 % of 8 x one board's rate."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.station import LINE_KEY, line_device_toml, line_standin  # noqa: E402

BAUD = 115200
TRAY = 8
SINGLES = 3
PHASES = ("identifying", "flashing", "running", "correlating")


class PoweredBoard:
    """A virtual native-USB board running in its own process, its port link outside the watched
    folder until it is plugged (a link to that link appears in the watched folder)."""

    def __init__(self, work: Path, ports: Path, uid: str):
        self.uid = uid
        self.own_link = work / "powered" / f"usb-authprobe_{uid}"
        self.plugged_link = ports / f"usb-authprobe_{uid}-if00"
        self.own_link.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "authprobe.cli", "virtual-board", "--native-usb", str(self.own_link), "--uid", uid,
             "--flash", str(work / f"flash-{uid}"), "--baud", str(BAUD)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_powered(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.own_link):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit(f"virtual board {self.uid} did not start")
            time.sleep(0.02)

    def plug(self) -> None:
        self.plugged_link.symlink_to(self.own_link)

    def unplug(self) -> None:
        if self.plugged_link.is_symlink():
            self.plugged_link.unlink()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class StationProcess:
    def __init__(self, work: Path, config: Path, ports: Path, cloud: str):
        self.events: queue.Queue = queue.Queue()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "authprobe.cli", "station", "--config", str(config), "--watch",
             str(ports / "usb-*-if00"), "--store", str(work / "runs.sqlite"), "--station", "bench", "--json-lines",
             "--sign-key", str(LINE_KEY), "--cloud", cloud, "--timeout", "60"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        first = self.next(60)
        assert first.get("state") == "watching", first

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.put((time.perf_counter(), json.loads(line)))

    def next(self, timeout: float) -> dict:
        _, event = self.events.get(timeout=timeout)
        return event

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def plug_and_wait(station: StationProcess, boards: list[PoweredBoard], timeout: float = 300) -> dict:
    """Plug every board at once; per board: seconds from the plug to its line, its verdict, and
    how long each phase took (from the slot events' arrival)."""
    ports = {str(b.plugged_link): b for b in boards}
    t0 = time.perf_counter()
    for b in boards:
        b.plug()
    entered: dict[str, dict[str, float]] = {p: {} for p in ports}
    done: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    while len(done) < len(boards):
        try:
            t, event = station.events.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            raise SystemExit(f"the station gave {len(done)} of {len(boards)} lines in {timeout} s") from None
        port = event.get("port")
        if port not in ports:
            continue
        if event["event"] == "slot":
            entered[port].setdefault(event["state"], t)
        elif event["event"] == "board" and event["verdict"] != "ERROR":
            marks = entered[port]
            order = [s for s in PHASES if s in marks] + ["end"]
            marks["end"] = t
            phases = {a: marks[b] - marks[a] for a, b in zip(order, order[1:], strict=False)}
            done[port] = {"seconds": t - t0, "verdict": event["verdict"], "flash": event["flash"], "phases": phases}
        elif event["event"] == "board":
            raise SystemExit(f"{port}: {event}")
    wall = time.perf_counter() - t0
    for b in boards:
        b.unplug()
    time.sleep(1.0)   # the station sees them go before the next round
    return {"wall": wall, "boards": done}


def per_hour(boards: int, seconds: float) -> float:
    return boards * 3600 / seconds


def phase_line(result: dict) -> str:
    parts = []
    for phase in PHASES:
        values = [b["phases"][phase] for b in result["boards"].values() if phase in b["phases"]]
        if values:
            parts.append(f"{phase} {statistics.median(values):5.2f} s")
    return ", ".join(parts)


def main() -> None:
    print(f"bench_station: time.perf_counter resolution {time.get_clock_info('perf_counter').resolution * 1e9:.0f} ns; "
          f"{os.cpu_count()} CPU(s); virtual boards at {BAUD} baud, native USB, signed per-board tokens, "
          f"correlated with the local stand-in")
    work = Path(tempfile.mkdtemp(prefix="authprobe-bench-station-"))
    emu = station = None
    boards: list[PoweredBoard] = []
    try:
        emu = line_standin(work)
        config = line_device_toml(emu, work / "device.toml")
        ports = work / "ports"
        ports.mkdir()
        station = StationProcess(work, config, ports, f"local:{emu.config.state_dir}")
        singles = [PoweredBoard(work, ports, f"a4cf1201{i:04x}") for i in range(SINGLES)]
        tray = [PoweredBoard(work, ports, f"a4cf1208{i:04x}") for i in range(TRAY)]
        boards = singles + tray
        for b in boards:
            b.wait_powered()
        time.sleep(1.0)   # every board booted (power-on main.py: a blank board has none)

        one = [plug_and_wait(station, [b]) for b in singles]
        t1 = statistics.median(r["wall"] for r in one)
        walls = ", ".join(f"{r['wall']:5.2f} s" for r in one)
        print(f"one blank board at a time:   {walls}  "
              f"(median {t1:5.2f} s = {per_hour(1, t1):6.0f} boards/h)  {phase_line(one[len(one) // 2])}")
        eight = plug_and_wait(station, tray)
        t8 = eight["wall"]
        share = per_hour(TRAY, t8) / (TRAY * per_hour(1, t1))
        last = max(b["seconds"] for b in eight["boards"].values())
        first = min(b["seconds"] for b in eight["boards"].values())
        verdicts = sorted({b["verdict"] for b in eight["boards"].values()})
        print(f"{TRAY} blank boards together:    {t8:5.2f} s to the last line (first {first:5.2f} s, last {last:5.2f} s) "
              f"= {per_hour(TRAY, t8):6.0f} boards/h; verdicts {verdicts}")
        print(f"    phases (median): {phase_line(eight)}")
        print(f"    share of {TRAY} x one board's rate: {share * 100:5.1f} %   (aim >= 85 %)")
        again = plug_and_wait(station, tray)
        flashes = sorted({b["flash"] for b in again["boards"].values()})
        print(f"the same {TRAY} plugged again:     {again['wall']:5.2f} s = {per_hour(TRAY, again['wall']):6.0f} "
              f"boards/h; flash {flashes}")
        print(f"    phases (median): {phase_line(again)}")
    finally:
        if station is not None:
            station.stop()
        for b in boards:
            b.stop()
        if emu is not None:
            emu.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
