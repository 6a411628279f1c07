"""The device self-test run on this host rather than on a board: under CPython (which can send ALPN)
or under the real MicroPython unix port (which cannot), so "works from my laptop, not from the
board" shows up as two reports side by side. `authprobe probe` and the drill run it."""

from __future__ import annotations

import json
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from authprobe import device_config
from authprobe.board.run_log import iso_utc
from authprobe.board.virtual import micropython_path
from authprobe.errors import EXIT_TOOL, AuthprobeError
from authprobe.report import record_schema
from authprobe.report.json_report import build_report
from selftest import world

PROBE_RUNTIMES = ("cpython", "micropython")


def micropython_exe() -> str:
    """The unix port the virtual board runs too (this venv's first, then PATH)."""
    try:
        return micropython_path()
    except AuthprobeError as exc:
        raise AuthprobeError(f"{exc}; or run with --runtime cpython", EXIT_TOOL) from None


class Collector:
    """Decodes report lines as they arrive; keeps noise counts so a damaged run is visible."""

    def __init__(self, on_record: Callable[[dict[str, Any]], None] | None = None):
        self.records: list[dict[str, Any]] = []
        self.noise = {"lines": 0, "damaged": {}}
        self.on_record = on_record
        self.lock = threading.Lock()
        self.other: list[str] = []    # the last non-record lines (tracebacks, boot noise)

    def line(self, text: str) -> None:
        rec, why = record_schema.decode(text)
        with self.lock:
            if rec is not None:
                self.records.append(rec)
            elif why is not None:
                self.noise["damaged"][why] = self.noise["damaged"].get(why, 0) + 1
            elif text.strip():
                self.noise["lines"] += 1
                self.other = (self.other + [text.rstrip()])[-20:]
        if rec is not None and self.on_record:
            self.on_record(rec)


def run_cpython(cfg: dict[str, Any], out: Collector) -> None:
    world.run(cfg, out.line)


def run_micropython(cfg: dict[str, Any], out: Collector, timeout: float = 120.0,
                    heapsize: str | None = None, exe: str | None = None) -> int | None:
    """Run main.py on the unix port in a folder laid out like the board's flash (the selftest
    package as sources, main.py, the device files); returns the interpreter's exit status, or None
    when it was stopped at the timeout."""
    exe = exe or micropython_exe()
    with tempfile.TemporaryDirectory(prefix="authprobe-flash-") as flash:
        try:
            files = device_config.device_files(cfg, "micropython")
        except (OSError, ValueError):
            # A config the lint rejected (see probe()) may name a CA that cannot be read: hand it over
            # as it is and let the self-test's config step report that, as a board's would.
            files = {device_config.CONFIG_FILE: json.dumps(cfg).encode()}
        files = {**device_config.firmware_files("micropython"), **files}
        for name, data in files.items():
            target = Path(flash) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        cmd = [exe]
        if heapsize:
            cmd += ["-X", f"heapsize={heapsize}"]
        cmd += ["main.py", device_config.CONFIG_FILE]
        # stderr joins stdout: a traceback is noise to the decoder but kept for the user.
        proc = subprocess.Popen(cmd, cwd=flash, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                out.line(raw.decode("utf-8", "replace"))
            rc = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout:
                proc.stdout.close()
        return None if rc == -9 else rc


def probe(cfg: dict[str, Any], runtime: str = "cpython", *, timeout: float = 120.0, heapsize: str | None = None,
          on_record: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run the self-test on this host and return its JSON report (authprobe.report/1).

    Args:
        cfg: the device config (authprobe.device_config.load of a device.toml); a config the lint
            rejects runs too and its report fails at the config step, with the codes a board reports.
        runtime: "cpython" (in this process; sends ALPN) or "micropython" (the real unix port; no ALPN).
        timeout: seconds before a MicroPython run is stopped and counts as incomplete.
        heapsize: MicroPython heap, e.g. "64k" (default: the port's).
        on_record: called with each decoded record as it arrives.
    """
    timings: dict[str, int] = {}
    started = time.time()

    def timed(rec: dict[str, Any]) -> None:
        # When this host received each record: the run's span for correlation, on the host's clock.
        ms = int((time.time() - started) * 1000)
        if rec.get("k") in ("begin", "end"):
            timings.setdefault(f"{rec['k']}_ms", ms)
        timings["last_record_ms"] = ms
        if on_record:
            on_record(rec)

    out = Collector(timed)
    if runtime not in PROBE_RUNTIMES:
        raise AuthprobeError(f"unknown runtime {runtime!r}; use one of {', '.join(PROBE_RUNTIMES)}")
    if runtime == "cpython":
        run_cpython(cfg, out)
    else:
        run_micropython(cfg, out, timeout, heapsize)
    report = build_report(out.records, noise=out.noise)
    report["collection"] = {"started": iso_utc(started), "ended": iso_utc(time.time()), "timings": timings,
                            "runtime": runtime}
    if report["verdict"] == "incomplete" and out.other:
        report["noise"]["tail"] = out.other
    return report
