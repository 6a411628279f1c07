"""Reset boards and collect their self-test reports: the Python API behind `authprobe run`.

    from authprobe.board.collect import collect, run
    result = collect("/dev/ttyUSB0", timeout=60)          # one board
    results = run(["/dev/ttyUSB0", "/dev/ttyUSB1"])        # many, in parallel
    result.report["verdict"], result.exit_code, result.run_id

Every line is written to the run store as it arrives. Noise is counted, never fatal; a board that
restarts over and over (reset loop) or vanishes ends the run early, marked incomplete, with every
record it did send."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from authprobe.board.definitions import RESET_METHODS
from authprobe.board.port_problems import LOCK_GRACE_S, port_problem
from authprobe.board.run_log import (
    RESET_LOOP_LIMIT,
    RunRecorder,
    RunTracker,
    finish_report,
    iso_utc,
    new_run_id,
)
from authprobe.board.serial_reader import RESTARTS, Line, RecordReader, port_errors
from authprobe.errors import EXIT_FAIL, EXIT_INCOMPLETE, EXIT_OK, EXIT_TOOL, EXIT_USAGE
from authprobe.report.json_report import build_report

DEFAULT_TIMEOUT = 90.0

# Until the reset is seen to take effect, records belong to the run that was already going (a board
# mid-run when the port opened) and must not complete this one. The echo of our reset command, a
# restart in the boot log, or a native-USB port coming back all mark the moment.
RESET_MARKERS = (b"machine.reset()", b"microcontroller.reset()")
# Silence this long after the reset keystrokes: they were lost (a port opened while the board was
# re-enumerating, input swallowed while it booted), so send them once more.
RESET_RETRY_S = 2.0
# A board whose reset shows none of those (boot log disabled): stop waiting for a marker after this.
ARM_GRACE_S = 4.0

RESET_LINES = {
    "micropython": b"import machine; machine.reset()\r",
    "circuitpython": b"import microcontroller; microcontroller.reset()\r",
}

@dataclass
class RunResult:
    port: str
    run_id: str
    report: dict[str, Any]
    status: str                     # complete | incomplete | error
    reason: str | None = None
    error: str | None = None        # a tool/port error that stopped collection before it began
    error_exit: int = EXIT_TOOL     # that error's exit code: a port that does not open is the user's
    lines: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return self.report.get("verdict", "incomplete")

    @property
    def exit_code(self) -> int:
        if self.status == "error":
            return self.error_exit
        if self.status != "complete" or self.verdict == "incomplete":
            return EXIT_INCOMPLETE
        return EXIT_FAIL if self.verdict == "fail" else EXIT_OK


def combined_exit_code(results: Iterable[RunResult]) -> int:
    """Worst first: tool error, incomplete run, device failure, pass."""
    codes = {r.exit_code for r in results}
    for code in (EXIT_TOOL, EXIT_USAGE, EXIT_INCOMPLETE, EXIT_FAIL):
        if code in codes:
            return code
    return EXIT_OK


def open_port(url: str, baudrate: int = 115200) -> Any:
    """Any pyserial URL; a device path is locked so two tools never read the same board."""
    import serial

    if "://" in url:
        return serial.serial_for_url(url, baudrate=baudrate, timeout=0.05)
    deadline = time.monotonic() + LOCK_GRACE_S
    while True:
        try:
            return serial.serial_for_url(url, baudrate=baudrate, timeout=0.05, exclusive=True)
        except serial.SerialException as exc:
            if "exclusively lock" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def trigger_reset(ser: Any, method: str, runtime: str = "micropython") -> str:
    """Restart the board so its main.py runs the self-test from the top. Returns the method used
    (`rts` falls back to `repl` on ports without modem lines, such as ptys)."""
    if method == "none":
        return method
    if method == "rts":
        try:
            # The classic ESP32 auto-reset circuit: RTS drives EN low, DTR high keeps IO0 up.
            ser.dtr = False
            ser.rts = True
            time.sleep(0.1)
            ser.rts = False
            return method
        except (OSError, ValueError):
            method = "repl"
    # Interrupt whatever runs, leave the raw REPL if a tool left the board in it, then reset from the
    # friendly REPL: works the same on a USB-UART bridge, native USB and a pty.
    ser.write(b"\r\x03\x03")
    ser.flush()
    time.sleep(0.05)
    ser.write(b"\x02\r")
    if method == "soft":
        ser.write(b"\x04")
    else:
        ser.write(RESET_LINES.get(runtime, RESET_LINES["micropython"]))
    ser.flush()
    return method


def collect(port: str, *, timeout: float = DEFAULT_TIMEOUT, reset: str | Callable[[], None] = "repl",
            store: RunRecorder | None = None, board: str | None = None, identity: dict[str, Any] | None = None,
            runtime: str = "micropython", on_line: Callable[[str, Line], None] | None = None,
            stop: Callable[[], bool] = lambda: False, reopen_s: float = 5.0, baudrate: int = 115200,
            reset_loop_limit: int = RESET_LOOP_LIMIT) -> RunResult:
    """Reset the board on `port` and collect one run of its self-test.

    Args:
        port: any pyserial URL (/dev/ttyUSB0, a pty, socket://host:port).
        timeout: seconds before the run counts as incomplete.
        reset: repl | soft | rts | none, or a callable that resets the board (VirtualBoard.hard_reset).
        store: where every line is written as it arrives (a RunRecorder such as RunStore).
        board, identity, runtime: what the run records about the board (runtime picks the reset line).
        on_line: called with (port, line) for every line, live.
        stop: polled; True ends the run early, kept and marked interrupted.

    Returns the RunResult: report (authprobe.report/1), status, exit_code, run_id."""
    if isinstance(reset, str) and reset not in RESET_METHODS:
        raise ValueError(f"reset method {reset!r}: choose one of {', '.join(RESET_METHODS)}")
    started = time.time()
    t0 = time.monotonic()
    identity = dict(identity or {})
    run_id = store.begin_run(port=port, board=board, identity=identity, started=started) if store else new_run_id()
    tracker = RunTracker(reset_loop_limit)
    collection = {"run_id": run_id, "port": port, "board": board, "identity": identity,
                  "started": iso_utc(started)}
    errors = port_errors()

    def finish(reason_if_open: str | None, error: str | None = None, error_exit: int = EXIT_TOOL) -> RunResult:
        ended = time.time()
        coll = dict(collection, ended=iso_utc(ended), duration_ms=int((ended - started) * 1000),
                    lines=tracker.lines, timings=dict(timings))
        if error:
            coll["error"] = error
        report, status, reason = finish_report(tracker, run_id, reason_if_open=reason_if_open, collection=coll)
        if error and not tracker.lines:
            status, reason = "error", "port-error"
            report["collection"].update(status=status, reason=reason)
        if store:
            store.finish_run(run_id, report, status="incomplete" if status == "error" else status,
                             reason=reason, ended=ended)
        return RunResult(port=port, run_id=run_id, report=report, status=status, reason=reason, error=error,
                         error_exit=error_exit, lines=tracker.lines, seconds=time.monotonic() - t0)

    armed = [reset == "none"]
    reset_at = [time.monotonic()]
    retried = [False]

    heard = [False]   # anything at all since the reset keystrokes: then they arrived

    def on_idle() -> None:
        # Re-sending to a board that did hear us could interrupt the fresh run, so only silence counts.
        if armed[0] or retried[0] or heard[0] or time.monotonic() - reset_at[0] < RESET_RETRY_S:
            return
        retried[0] = True
        reset_at[0] = time.monotonic()
        collection["reset_retried"] = True
        try:
            if callable(reset):
                reset()
            else:
                trigger_reset(ser, reset, runtime)
        except errors:
            pass  # the next read reports the port's state

    # Milliseconds from opening the port: how long the board took to restart, to start the
    # self-test and to finish it (boot time is a finding of its own on a slow or crashing board).
    timings: dict[str, int] = {}

    def mark(name: str) -> None:
        timings.setdefault(name, int((time.monotonic() - t0) * 1000))

    def take(line: Line) -> bool:
        if line.kind != "vanished" and line.raw:
            mark("first_byte_ms")
            heard[0] = True
        if not armed[0]:
            restart = line.kind == "boot" and (line.reason in RESTARTS or (line.reason or "").startswith("reconnect"))
            if restart or any(m in line.raw for m in RESET_MARKERS) or time.monotonic() - reset_at[0] > ARM_GRACE_S:
                armed[0] = True
                mark("reset_seen_ms")
            elif line.kind == "record":
                line = Line("stale", line.raw, line.t, reason="before-reset")
        if line.kind == "record" and line.record is not None:
            kind = line.record.get("k")
            if kind in ("begin", "end"):
                mark(f"{kind}_ms")
            # The run's span as the host saw it, for correlation, even when no end record comes.
            timings["last_record_ms"] = int((time.monotonic() - t0) * 1000)
        if store:
            store.add_line(run_id, line.raw, t=line.t, kind=line.kind, reason=line.reason, record=line.record)
        if on_line:
            on_line(port, line)
        return tracker.add(line)

    try:
        ser = open_port(port, baudrate)
    except errors as exc:
        return finish(None, error=f"cannot open {port}: {port_problem(port, exc)}", error_exit=EXIT_USAGE)
    deadline = t0 + timeout
    try:
        # The port is open before the reset: opening flushes input, so nothing of the boot is lost.
        reset_at[0] = time.monotonic()
        if callable(reset):
            reset()
            collection["reset"] = "callback"
        else:
            try:
                collection["reset"] = trigger_reset(ser, reset, runtime)
            except errors as exc:
                return finish(None, error=f"cannot reset the board on {port}: {exc}", error_exit=EXIT_INCOMPLETE)
        while True:
            reader = RecordReader(ser)
            for line in reader.lines(deadline, stop, on_idle):
                if line.kind == "vanished" and reopen_s > 0 and time.monotonic() < deadline:
                    # Native-USB boards re-enumerate on reset (a second or two on an ESP32-S3): give
                    # the port a moment to come back.
                    reopened = _reopen(port, baudrate, min(deadline, time.monotonic() + reopen_s))
                    if reopened is not None:
                        ser.close()
                        ser = reopened
                        take(Line("boot", b"", line.t, reason="reconnect: " + (line.reason or "")))
                        break
                if take(line):
                    break
            else:
                # Deadline or stop: flush a pending partial line (a truncated record counts as damaged).
                for line in reader.finish():
                    take(line)
                return finish("interrupted" if stop() else "timeout")
            if tracker.done:
                return finish(None)
    except KeyboardInterrupt:
        return finish("interrupted")
    except Exception as exc:
        # A bug of ours must not leave the run 'collecting' in the store for ever: close it with
        # what it received, then let the bug surface (collect.run reports it as a tool error).
        try:
            finish("tool-error", error=f"{type(exc).__name__}: {exc}")
        except Exception:  # noqa: BLE001 - the first error is the one to report
            pass
        raise
    finally:
        try:
            ser.close()
        except errors:
            pass


# A native-USB board starts its self-test as soon as it is back, and what it prints before the host
# opens the port again is lost: look for the port often (a missing path costs one failed open).
REOPEN_POLL_S = 0.02


def _reopen(port: str, baudrate: int, until: float) -> Any:
    errors = port_errors()
    while time.monotonic() < until:
        try:
            return open_port(port, baudrate)
        except errors:
            time.sleep(REOPEN_POLL_S)
    return None


def run(ports: list[str], *, parallel: bool = True, **kwargs: Any) -> list[RunResult]:
    """Collect from several boards at once (one thread each); one failing board never stops the
    others. Ctrl-C stops every board's collection at once; each run is kept, marked 'interrupted'.

    Args:
        ports: pyserial URLs.
        parallel: one thread per board (False: one after the other).
        **kwargs: collect()'s keywords for every board; `per_port={port: {...}}` overrides them per
            board (board.definitions.port_settings builds it from the board definitions).
    """
    per_port: dict[str, dict[str, Any]] = kwargs.pop("per_port", {}) or {}
    stopping = threading.Event()
    outer_stop = kwargs.pop("stop", None)

    def stop() -> bool:
        return stopping.is_set() or bool(outer_stop and outer_stop())

    def one(port: str) -> RunResult:
        kw = dict(kwargs, stop=stop)
        kw.update(per_port.get(port, {}))
        try:
            return collect(port, **kw)
        except Exception as exc:  # one board's bug must not lose the other boards' runs
            return RunResult(port=port, run_id=new_run_id(), report=build_report([]), status="error",
                             error=f"{type(exc).__name__}: {exc}")

    if not parallel or len(ports) == 1:
        return [one(p) for p in ports]
    pool = ThreadPoolExecutor(max_workers=len(ports), thread_name_prefix="collect")
    futures = [pool.submit(one, p) for p in ports]
    try:
        while not all(f.done() for f in futures):
            time.sleep(0.05)
    except KeyboardInterrupt:
        # The workers see the stop flag within one read timeout and store what they have.
        stopping.set()
    pool.shutdown(wait=True)
    return [f.result() for f in futures]
