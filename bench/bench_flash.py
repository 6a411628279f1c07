"""Benchmark: deploying the self-test to virtual boards, and whole flash + run loops in parallel.

Measured in one run, wall-clock with time.perf_counter (resolution printed below):
  1. first deploy (authprobe.board.flash API) to a blank virtual board, over an unthrottled pty and over a
     simulated 115200-baud UART (what a USB-UART bridge gives),
  2. unchanged re-deploy (API, and the `authprobe flash` CLI as a process),
  3. a plain `mpremote fs cp -r` of the same files to a blank board (and again, unchanged),
  4. 1, 4 and 8 virtual boards flashed and run in parallel against the local stand-in.
Aims (issue 4): unchanged re-deploy >= 10x faster than the plain copy; 8 boards <= 2.5x one board."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from authprobe import device_config  # noqa: E402
from authprobe.board import collect, flash  # noqa: E402
from authprobe.board.virtual import VirtualBoard  # noqa: E402
from tests.fixtures.board_standin_config import standin_device_toml  # noqa: E402
from tests.fixtures.emulator import DOMAIN, ENDPOINT, make_ca, standard_config, start_emulator  # noqa: E402

REPEATS = 5


def config_text(emu, client_id: str) -> str:
    return standin_device_toml(emu, client_id, timeout_ms=5000)


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def mpremote(port: str, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "mpremote", "connect", port, *args], check=True, capture_output=True,
                   timeout=120)


def stage(files: dict[str, bytes], folder: Path) -> None:
    for path, data in files.items():
        target = folder / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:9.1f} ms"


def deploy_figures(work: Path, cfg: dict, config_path: Path, baud: int | None = None) -> None:
    files = flash.plan_files(cfg, runtime="micropython", mpy_version="6.3")
    total = sum(len(d) for d in files.values())
    line = f"a {baud}-baud line (8N1)" if baud else "an unthrottled pty"
    print(f"deploy over {line}: {len(files)} files, {total} bytes (selftest as .mpy, main.py, authprobe.json, CA)")
    tag = f"-{baud}" if baud else ""

    with VirtualBoard(work / f"api{tag}", baud=baud) as board:
        first, res = timed(flash.flash_port, board.port, cfg, board="virtual")
        assert res.status == "deployed", res
        again = []
        for _ in range(REPEATS):
            t, res = timed(flash.flash_port, board.port, cfg, board="virtual")
            assert res.status == "unchanged" and res.round_trips == 1, res
            again.append(t)
        cli = []
        for _ in range(3):
            t, _ = timed(subprocess.run, [sys.executable, "-m", "authprobe.cli", "flash", "--port", board.port,
                                          "--config", str(config_path), "--board", "virtual"],
                         check=True, capture_output=True)
            cli.append(t)

    staged = work / f"staged{tag}"
    stage(files, staged)
    with VirtualBoard(work / f"plain{tag}", baud=baud) as board:
        args = ["fs", "cp", "-r", *[str(p) for p in sorted(staged.iterdir())], ":"]
        plain, _ = timed(mpremote, board.port, *args)
        plain_again, _ = timed(mpremote, board.port, *args)

    unchanged = statistics.median(again)
    unchanged_cli = statistics.median(cli)
    print(f"first deploy (API, incl. mpy-cross cache)   {fmt(first)}")
    print(f"unchanged re-deploy (API, median of {REPEATS})     {fmt(unchanged)}   (1 round trip)")
    print(f"unchanged re-deploy (`authprobe flash` CLI)   {fmt(unchanged_cli)}   (median of 3, incl. Python start)")
    print(f"plain `mpremote fs cp -r`, blank board      {fmt(plain)}")
    print(f"plain `mpremote fs cp -r`, unchanged board  {fmt(plain_again)}   (mpremote hashes file by file)")
    print(f"speed-up unchanged vs plain copy: API {plain / unchanged:6.1f}x, CLI {plain / unchanged_cli:5.1f}x "
          f"(aim >= 10x); vs mpremote's own unchanged copy: API {plain_again / unchanged:5.1f}x")
    print(f"first deploy vs plain copy: {plain / first:5.1f}x")


def flash_and_run(port: str, cfg: dict) -> tuple[str, str]:
    res = flash.flash_port(port, cfg, board="virtual")
    run = collect.collect(port, timeout=60)
    return res.status, run.verdict


def loop_figures(work: Path, emu) -> None:
    print("flash + run in parallel against the local stand-in (each board its own client id):")
    base = None
    for n in (1, 4, 8):
        boards = [VirtualBoard(work / f"par{n}-{i}", name=f"par{n}-{i}") for i in range(n)]
        cfgs = []
        for i, b in enumerate(boards):
            b.start()
            path = work / f"device-{n}-{i}.toml"
            path.write_text(config_text(emu, f"bench-{n}-{i}"))
            cfgs.append(device_config.load(path))

        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=n) as pool:
            outcomes = list(pool.map(flash_and_run, [b.port for b in boards], cfgs))
        wall = time.perf_counter() - t0
        for b in boards:
            b.stop()
        verdicts = {v for _, v in outcomes}
        base = base or wall
        print(f"  {n} board(s): {fmt(wall)}   {wall / base:4.2f}x one board   verdicts {sorted(verdicts)}")
    print("  (aim: 8 boards <= 2.5x one board)")


def main() -> None:
    print(f"bench_flash: time.perf_counter resolution {time.get_clock_info('perf_counter').resolution * 1e9:.0f} ns")
    work = Path(tempfile.mkdtemp(prefix="authprobe-bench-flash-"))
    emu = None
    try:
        ca = make_ca(work / "ca", [ENDPOINT, DOMAIN])
        emu = start_emulator(standard_config(work / "emulator"), ca)
        config_path = work / "device.toml"
        config_path.write_text(config_text(emu, "bench-deploy"))
        cfg = device_config.load(config_path)
        deploy_figures(work, cfg, config_path)
        deploy_figures(work, cfg, config_path, baud=115200)
        loop_figures(work, emu)
    finally:
        if emu is not None:
            emu.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
