"""Benchmark: how fast the CLI starts, and what it imports on the way (issue 10).

Measured as processes, wall-clock with time.perf_counter (median of REPEATS runs):
  1. `authprobe --version`,
  2. `authprobe flash` of an unchanged board (one round trip, nothing sent) over an unthrottled pty
     (what a native-USB board or a CircuitPython board gives) and over a simulated 115200-baud UART,
     next to a plain `mpremote fs cp -r` of the same files to a blank board,
  3. the slowest imports of that flash (`python -X importtime`): by own time, and summed by package.
The device config is what `authprobe init --standin` writes (it names a CA, as a stand-in's does).
Aims: the unchanged flash through the CLI at most 150 ms on the unthrottled link and at least 3x
faster than the plain copy there; at 115200 baud the advantage (about 25x) is kept."""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from authprobe import device_config  # noqa: E402
from authprobe.board import flash  # noqa: E402
from authprobe.board.virtual import VirtualBoard  # noqa: E402
from authprobe.drill.starter import write_starter  # noqa: E402

REPEATS = 7
# Children start as a user's shell starts them: with their bytecode cached (no PYTHONDONTWRITEBYTECODE).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
AIM_MS = 150
AIM_SPEEDUP = 3.0
SHOWN_IMPORTS = 12


def authprobe_script() -> str:
    """The console script a user runs (the venv's), so start-up includes what pip generated."""
    here = Path(sys.executable).with_name("authprobe")
    return str(here) if here.exists() else shutil.which("authprobe") or "authprobe"


def median_seconds(cmd: list[str], repeats: int = REPEATS) -> tuple[float, float, float]:
    """Median wall-clock, fastest wall-clock and median CPU (user + system) seconds of the command
    as a process. On a machine whose cores other work shares, the fastest run and the CPU time tell
    what the command itself costs."""
    subprocess.run(cmd, check=True, capture_output=True, timeout=300, env=ENV)   # caches bytecode
    walls, cpus = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, timeout=120, env=ENV)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), min(walls), statistics.median(cpus)


def plain_copy_seconds(files: dict[str, bytes], work: Path, baud: int | None) -> float:
    """`mpremote fs cp -r` of the staged files to a blank board, the way one deploys by hand."""
    staged = work / f"staged-{baud or 'pty'}"
    for path, data in files.items():
        target = staged / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    with VirtualBoard(work / f"plain-{baud or 'pty'}", baud=baud) as board:
        args = ["fs", "cp", "-r", *[str(p) for p in sorted(staged.iterdir())], ":"]
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mpremote", "connect", board.port, *args], check=True,
                       capture_output=True, timeout=300, env=ENV)
        return time.perf_counter() - t0


def flash_cmd(port: str, config: Path) -> list[str]:
    return [authprobe_script(), "flash", "--port", port, "--config", str(config), "--board", "virtual"]


def unchanged_flash_seconds(work: Path, config: Path, baud: int | None) -> tuple[float, float, float]:
    with VirtualBoard(work / f"cli-{baud or 'pty'}", baud=baud) as board:
        subprocess.run(flash_cmd(board.port, config), check=True, capture_output=True, timeout=300, env=ENV)
        out = subprocess.run(flash_cmd(board.port, config), check=True, capture_output=True, text=True,
                             env=ENV).stdout
        assert "unchanged" in out, out
        return median_seconds(flash_cmd(board.port, config))


def import_times(work: Path, config: Path) -> list[tuple[str, int, int]]:
    """(module, own µs, cumulative µs) of every import an unchanged flash makes."""
    with VirtualBoard(work / "importtime") as board:
        cmd = flash_cmd(board.port, config)
        subprocess.run(cmd, check=True, capture_output=True, timeout=300, env=ENV)
        err = subprocess.run([sys.executable, "-X", "importtime", *cmd], check=True, capture_output=True,
                             text=True, env=ENV).stderr
    rows = []
    for line in err.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|")
        rows.append((name.strip(), int(own), int(cumulative)))
    return rows


def package_of(module: str) -> str:
    top = module.split(".")[0]
    return "(standard library)" if top in sys.stdlib_module_names else top


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def fmt_run(timing: tuple[float, float, float]) -> str:
    wall, fastest, cpu = timing
    return f"{fmt(wall)} (fastest {fastest * 1000:.0f} ms, CPU {cpu * 1000:.0f} ms)"


def main() -> None:
    print(f"bench_startup: time.perf_counter resolution {time.get_clock_info('perf_counter').resolution * 1e9:.0f} ns; "
          f"median of {REPEATS} runs")
    work = Path(tempfile.mkdtemp(prefix="authprobe-bench-startup-"))
    try:
        write_starter(work / "config", standin=True)
        config = work / "config" / "device.toml"
        cfg = device_config.load(config)
        files = flash.plan_files(cfg, runtime="micropython", mpy_version="6.3")

        print(f"`python -c pass` (the interpreter alone)  {fmt_run(median_seconds([sys.executable, '-c', 'pass']))}")
        print(f"`authprobe --version`                     {fmt_run(median_seconds([authprobe_script(), '--version']))}")
        for baud in (None, 115200):
            link = f"{baud}-baud UART" if baud else "unthrottled pty"
            timing = unchanged_flash_seconds(work, config, baud)
            unchanged = timing[0]
            plain = plain_copy_seconds(files, work, baud)
            aim = (f"aim <= {AIM_MS} ms and >= {AIM_SPEEDUP:.0f}x: "
                   f"{'met' if unchanged * 1000 <= AIM_MS and plain / unchanged >= AIM_SPEEDUP else 'NOT met'}"
                   if not baud else "aim: keep about 25x")
            print(f"{link}: unchanged `authprobe flash` {fmt_run(timing)}, plain `mpremote fs cp -r` "
                  f"{fmt(plain)}: {plain / unchanged:5.1f}x ({aim})")

        rows = import_times(work, config)
        total = sum(own for _, own, _ in rows)
        print(f"imports of an unchanged `authprobe flash`: {len(rows)} modules, {total / 1000:.1f} ms in all "
              f"(-X importtime inflates them)")
        print("  slowest, by own time:")
        for name, own, cumulative in sorted(rows, key=lambda r: -r[1])[:SHOWN_IMPORTS]:
            print(f"    {own / 1000:7.1f} ms own {cumulative / 1000:7.1f} ms with its imports  {name}")
        by_package: dict[str, int] = defaultdict(int)
        for name, own, _ in rows:
            by_package[package_of(name)] += own
        print("  by package:")
        for package, own in sorted(by_package.items(), key=lambda kv: -kv[1])[:SHOWN_IMPORTS]:
            print(f"    {own / 1000:7.1f} ms  {package}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
