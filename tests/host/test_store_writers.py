"""Several stations writing into one store at once, as separate processes, against both backends:
nothing lost, no run's lines mixed with another's; a writer killed mid-run leaves an incomplete run
with everything it wrote, and the store goes on working."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from authprobe.store import open_store
from tests.fixtures.store_writer import run_records

ROOT = Path(__file__).resolve().parents[2]
WRITERS = 8
RUNS = 15


@pytest.fixture(params=["sqlite", "postgresql"])
def spec(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "runs.sqlite")
    return request.getfixturevalue("pg_url")


def start_writer(spec: str, station: str, runs: int, *extra: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "tests.fixtures.store_writer", spec, station, str(runs), *extra],
                            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "ready", (line, proc.stderr.read() if proc.poll() is not None else "")
    return proc


def test_eight_processes_write_at_once_and_nothing_is_lost_or_mixed(spec):
    open_store(spec).close()   # the schema exists before the race (the writers would manage, but one at a time)
    procs = [start_writer(spec, f"st-{i}", RUNS) for i in range(WRITERS)]
    for p in procs:            # all of them open and waiting: go
        p.stdin.write("go\n")
        p.stdin.flush()
    summaries = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        summaries.append(json.loads(out.strip().splitlines()[-1]))
    with open_store(spec) as store:
        runs = store.list_runs()
        assert len(runs) == WRITERS * RUNS == len({r["run_id"] for r in runs})
        for summary in summaries:
            station = summary["station"]
            for n, run_id in enumerate(summary["runs"]):
                run = store.get_run(run_id)
                assert (run["station"], run["status"], run["verdict"]) == (station, "complete", "pass")
                expected = run_records(station, n)
                lines = store.get_lines(run_id)
                assert [ln["seq"] for ln in lines] == list(range(1, len(expected) + 1))
                got = [json.loads(ln["raw"].split(b" ")[1]) for ln in lines]
                assert got == expected, f"{run_id}: lines of another run, or out of order"
                assert [{k: v for k, v in r.items() if k != "_rx"} for r in store.get_records(run_id)] == expected
        assert len(store.fleet_steps()) == WRITERS * RUNS * 10


def test_a_writer_killed_mid_run_leaves_an_incomplete_run_with_all_it_wrote(spec):
    proc = start_writer(spec, "st-k", 1, "--hold-after", "6")
    proc.stdin.write("go\n")
    proc.stdin.flush()
    line = proc.stdout.readline().split()
    assert line[0] == "holding", line
    run_id = line[1]
    os.kill(proc.pid, signal.SIGKILL)   # the station loses power
    proc.wait(timeout=10)
    proc.stdin.close()
    proc.stdout.close()
    proc.stderr.close()
    with open_store(spec) as store:
        run = store.get_run(run_id)
        assert (run["station"], run["status"], run["verdict"]) == ("st-k", "collecting", "incomplete")
        assert len(store.get_lines(run_id)) == 6
        report = store.get_report(run_id)
        assert report["verdict"] == "incomplete"
        assert [s["seq"] for s in report["steps"]] == [1, 2, 3, 4, 5]
        # and the store takes the next run as usual
        other = store.begin_run(port="p")
        assert store.get_run(other)["status"] == "collecting"
