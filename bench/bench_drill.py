"""End to end figures: the fault drill (cases, pass count, wall time against the serial sum, the
slowest cases), what one case costs on the shared virtual board (first deploy vs a config-only
re-deploy, run, correlate), and `make demo`'s wall time.

    .venv/bin/python bench/bench_drill.py [--skip-drill]"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path


def bench_drill() -> None:
    from authprobe.drill.suite import run_drill

    t0 = time.monotonic()
    result = run_drill()
    wall = time.monotonic() - t0
    cases = result.cases
    serial = sum(c.seconds for c in cases)
    s = result.summary()
    print(f"drill: {s['passed']}/{s['cases']} cases diagnosed as injected, {s['root_causes_drilled']} root causes "
          f"drilled, {s['root_causes_not_local']} not producible locally")
    print(f"drill: wall {wall:.1f} s (incl. start-up) vs {serial:.1f} s of case time run one after another "
          f"({serial / wall:.1f}x from one lane per board and one for CPython)")
    by_runtime: dict[str, list[float]] = {}
    for c in cases:
        by_runtime.setdefault(f"{c.runtime}/{c.transport}", []).append(c.seconds)
    for runtime, times in sorted(by_runtime.items()):
        print(f"drill: {runtime:18} {len(times):2} cases, median {statistics.median(times):.2f} s, "
              f"max {max(times):.2f} s")
    for c in sorted(cases, key=lambda c: -c.seconds)[:3]:
        print(f"drill: slowest {c.name} {c.seconds:.1f} s")


def bench_one_case() -> None:
    from authprobe.drill.runner import VirtualBoardRunner, correlate_run
    from authprobe.drill.standin import DRILL_EXAMPLES, StandIn
    from authprobe.store import RunStore

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store = RunStore(work / "runs.sqlite")
        standin = StandIn.start(DRILL_EXAMPLES / "standin.toml", work / "standin")
        board = VirtualBoardRunner(work / "board", store).start()
        try:
            flashes, bytes_sent, runs, correlations = [], [], [], []
            for i in range(6):
                cfg = standin.device_config(f"bench-{i}", transport="wss")
                t0 = time.monotonic()
                report = board.run(cfg)
                total = time.monotonic() - t0
                flashes.append(board.last_flash.seconds)
                bytes_sent.append(board.last_flash.bytes_sent)
                runs.append(total - board.last_flash.seconds)
                t1 = time.monotonic()
                correlate_run(standin, cfg, report)
                correlations.append(time.monotonic() - t1)
                assert report["verdict"] == "pass", report["steps"]
            print(f"case:  first deploy {flashes[0]:.3f} s ({bytes_sent[0]} bytes); config-only re-deploy median "
                  f"{statistics.median(flashes[1:]):.3f} s ({statistics.median(bytes_sent[1:]):.0f} bytes)")
            print(f"case:  reset + self-test + collection median {statistics.median(runs):.3f} s; "
                  f"cloud-check + correlate + diagnose median {statistics.median(correlations):.3f} s")
        finally:
            board.close()
            standin.close()
            store.close()


def bench_demo() -> None:
    from authprobe.drill import demo

    t0 = time.monotonic()
    with redirect_stdout(StringIO()):
        code = demo.main([])
    print(f"demo:  {time.monotonic() - t0:.1f} s wall, exit {code}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--skip-drill", action="store_true", help="only the per-case and demo figures")
    args = parser.parse_args()
    bench_one_case()
    bench_demo()
    if not args.skip_drill:
        bench_drill()


if __name__ == "__main__":
    main()
