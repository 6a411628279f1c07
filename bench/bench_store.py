"""The run store under a line's load: 8 station processes at once, each writing 500 runs of 12 records
(begin, ten steps, end; every line written as it arrives, as `authprobe run` does), first into
PostgreSQL (a server started here with its default durability: fsync and synchronous commit on),
then into SQLite for comparison. Prints, per backend: runs and records stored against those
written (lost must be 0), wall time, and records per second.

Usage: python bench/bench_store.py [--writers 8] [--runs 500] [--backend both|postgresql|sqlite]"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from authprobe.store import open_store  # noqa: E402
from tests.fixtures.postgres import start_postgres  # noqa: E402
from tests.fixtures.store_writer import STEPS  # noqa: E402

RECORDS_PER_RUN = STEPS + 2


def count(spec: str) -> tuple[int, int, int]:
    """(complete runs, records, lines) in the store."""
    with open_store(spec) as store:
        runs = store.fleet_runs()
        complete = sum(1 for r in runs if r["status"] == "complete")
        records = lines = 0
        for r in runs:
            records += len(store.get_records(r["run_id"]))
            lines += len(store.get_lines(r["run_id"]))
    return complete, records, lines


def race(spec: str, writers: int, runs: int) -> dict:
    open_store(spec).close()   # schema first, as a line's first station would
    procs = []
    for i in range(writers):
        p = subprocess.Popen([sys.executable, "-m", "tests.fixtures.store_writer", spec, f"st-{i}", str(runs)],
                             cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert p.stdout is not None and p.stdout.readline().strip() == "ready", p.stderr and p.stderr.read()
        procs.append(p)
    t0 = time.perf_counter()
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    per_writer = []
    for p in procs:
        out, err = p.communicate(timeout=3600)
        if p.returncode != 0:
            raise SystemExit(f"a writer failed: {err}")
        per_writer.append(json.loads(out.strip().splitlines()[-1])["seconds"])
    wall = time.perf_counter() - t0
    complete, records, lines = count(spec)
    expected = writers * runs * RECORDS_PER_RUN
    return {"runs": complete, "runs_expected": writers * runs, "records": records, "records_expected": expected,
            "lost": expected - records + (expected - lines), "wall_s": round(wall, 2),
            "records_per_s": round(expected / wall), "slowest_writer_s": round(max(per_writer), 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--backend", choices=("both", "postgresql", "sqlite"), default="both")
    args = parser.parse_args()
    print(f"{args.writers} writers x {args.runs} runs x {RECORDS_PER_RUN} records, one line per record, "
          f"each written as it arrives")
    results = {}
    if args.backend in ("both", "postgresql"):
        server = start_postgres(durable=True)
        try:
            results["postgresql"] = race(server.database("bench"), args.writers, args.runs)
        finally:
            server.close()
    if args.backend in ("both", "sqlite"):
        with tempfile.TemporaryDirectory() as tmp:
            results["sqlite"] = race(str(Path(tmp) / "runs.sqlite"), args.writers, args.runs)
    for name, r in results.items():
        print(f"{name:<10} runs {r['runs']}/{r['runs_expected']}  records {r['records']}/{r['records_expected']}  "
              f"lost {r['lost']}  wall {r['wall_s']} s  {r['records_per_s']} records/s  "
              f"(slowest writer {r['slowest_writer_s']} s)")
    return 0 if all(r["lost"] == 0 and r["runs"] == r["runs_expected"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
