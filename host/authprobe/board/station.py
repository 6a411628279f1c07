"""Station mode: a test station that takes every board plugged into it, hands off.

    station = Station(StationSettings(cfg, watch="/dev/serial/by-id/*"), recorder=RunStore(), on_event=print)
    outcomes = station.run(stop_event)

The watcher polls for serial ports (a glob, or every USB serial port a board definition matches);
each board that appears gets a slot and a worker thread: identify it over its raw REPL (unique id,
firmware), put the self-test and its config on it (its own token and signature with a signer: one
round trip when unchanged), reset it and collect the run into the store, correlate it when a cloud
is given, and report one outcome per board. Boards are handled in parallel.

What counts as a new board, since ports come and go on their own:
- a port that vanishes and comes back while its slot is busy is the board re-enumerating on its own
  reset (a native-USB ESP32-S3 during flash or run): the worker follows it, nothing new starts;
- a port that comes back after its board's run ended is a board plugged in again: a new run;
- a port that never answers (or keeps vanishing before it does) is reported once, then retried
  quietly with a growing pause until it answers.

This module holds no terminal code: every change is a StationEvent for the caller to show."""

from __future__ import annotations

import glob
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from authprobe.board import definitions
from authprobe.board.collect import DEFAULT_TIMEOUT, collect
from authprobe.board.credentials import TokenSigner, check_template, per_board, personalize
from authprobe.board.flash import ReplLink, flash_port
from authprobe.board.identify import BoardIdentity, read_identity
from authprobe.board.run_log import RunRecorder, iso_utc, new_run_id
from authprobe.errors import EXIT_FAIL, EXIT_INCOMPLETE, EXIT_OK, EXIT_TOOL, EXIT_USAGE, AuthprobeError
from authprobe.report.json_report import build_report

# What a slot shows: waiting for a board, working on one, or the last board's outcome.
STATES = ("waiting", "identifying", "flashing", "running", "correlating", "pass", "fail", "incomplete", "error")
VERDICTS = ("PASS", "FAIL", "INCOMPLETE", "ERROR")

# A port must be seen on two polls in a row: udev makes the node, then its permissions and by-id
# link, and a name that exists for an instant (a link being replaced) is not a board.
POLL_S = 0.2
# A port back this soon after it vanished during a board's work is that board's own reset.
REENUMERATE_GRACE_S = 3.0
# A port that did not answer is tried again after these pauses (then every last one).
RETRY_S = (2.0, 4.0, 8.0, 16.0, 30.0)
# How long collection waits for a port that vanished mid-run (a native-USB reset takes 1-2 s).
REOPEN_S = 5.0


class StationRecorder(RunRecorder, Protocol):
    """Where runs go: the run store (begin/add/finish, and the correlated report written back)."""

    def save_report(self, run_id: str, report: dict[str, Any]) -> None: ...


# (report, the board's own config) -> the report with the cloud's evidence in its diagnosis.
Correlator = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]


@dataclass
class StationSettings:
    """What the station does with every board.

    Args:
        cfg: the loaded device.toml (device_config.load); each board gets it (with its own token).
        watch: a glob of port paths (e.g. /dev/serial/by-id/*); None: every USB serial port that a
            board definition matches.
        board: a board definition name for every port (default: matched from the USB id).
        signer: per-board credentials (credentials.load_signer).
        station: this station's name, recorded with every run.
        timeout: seconds per run.
        exit_after: stop once this many boards have an outcome (boards in progress are finished).
    """

    cfg: dict[str, Any]
    watch: str | None = None
    board: str | None = None
    signer: TokenSigner | None = None
    station: str = ""
    timeout: float = DEFAULT_TIMEOUT
    exit_after: int | None = None
    poll_s: float = POLL_S
    reenumerate_grace_s: float = REENUMERATE_GRACE_S
    retry_s: tuple[float, ...] = RETRY_S
    reopen_s: float = REOPEN_S


@dataclass
class BoardOutcome:
    """The one line a board gets: where, which, the verdict and, when it did not pass, why and the fix."""

    port: str
    uid: str | None
    verdict: str                          # PASS | FAIL | INCOMPLETE | ERROR
    run_id: str | None = None             # the stored run (None: nothing was stored)
    root_cause: str | None = None         # the leading root cause (decided first)
    fix: str | None = None                # its remediation, or what to do about an incomplete run
    failed_step: str | None = None        # e.g. "wifi: WIFI_AUTH_FAILED (302)"
    reason: str | None = None             # incomplete/error: vanished, timeout, no-answer, flash...
    flash: str | None = None              # deployed | unchanged
    flash_round_trips: int | None = None  # raw-REPL execs of the deploy (1 when unchanged)
    seconds: float = 0.0                  # from the port appearing to the stored verdict
    credentials: dict[str, Any] | None = None   # the board's own token/signature, as fingerprints
    correlated: bool = False
    exit_code: int = EXIT_OK
    identified: bool = True               # False: the port never said who it is (no run stored)

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("identified",)}
        out["seconds"] = round(self.seconds, 2)
        return out


@dataclass
class SlotView:
    """One row of the live view."""

    port: str
    state: str = "waiting"
    uid: str | None = None
    detail: str = ""                      # the step running, bytes sent, the error
    since: float = field(default_factory=time.monotonic)
    boards: int = 0                       # outcomes so far on this slot
    failures: int = 0                     # identification failures in a row
    last: BoardOutcome | None = None


@dataclass
class StationEvent:
    kind: str                             # slot (a row changed) | board (an outcome)
    slot: SlotView
    outcome: BoardOutcome | None = None
    repeated: bool = False                # board: an unanswering port already reported once


@dataclass
class _Slot:
    view: SlotView
    busy: bool = False
    plugged_at: float = 0.0
    vanished_busy_at: float | None = None
    retry_at: float | None = None
    failure_reported: bool = False
    future: Future[BoardOutcome] | None = None


Worker = Callable[[str, "Station", Callable[..., None]], BoardOutcome]


def glob_ports(pattern: str) -> set[str]:
    """Paths matching the glob that lead to a device (a dangling by-id link is no port)."""
    return {p for p in glob.glob(pattern) if os.path.exists(p)}


BY_ID = Path("/dev/serial/by-id")


def usb_ports(registry: dict[str, definitions.Board] | None = None, by_id: Path = BY_ID) -> set[str]:
    """Every USB serial port that a board definition matches, by its /dev/serial/by-id name when it
    has one: a native-USB board that re-enumerates while /dev/ttyACM0 is still open comes back as
    ttyACM1, but under the same by-id name (USB serial number and interface), which is what the
    slot and the run follow."""
    try:
        stable = {os.path.realpath(link): str(link) for link in by_id.iterdir()}
    except OSError:
        stable = {}
    return {stable.get(os.path.realpath(p.device), p.device) for p in definitions.connected(registry) if p.candidates}


class Station:
    """The watcher and its slots. `run()` blocks until stopped or `exit_after` outcomes.

    Args:
        settings: StationSettings.
        recorder: the run store (None: runs are not stored; tests and dry runs).
        correlate: called with (report, the board's config) after each run when a cloud is given.
        on_event: called with every StationEvent, one at a time (never from two threads at once).
        ports: the port lister (default: the settings' glob, else usb_ports).
        worker: the per-board job (default handle_board); tests give their own.
    """

    def __init__(self, settings: StationSettings, *, recorder: StationRecorder | None = None,
                 correlate: Correlator | None = None, on_event: Callable[[StationEvent], None] = lambda e: None,
                 ports: Callable[[], set[str]] | None = None, worker: Worker | None = None):
        check_template(settings.cfg, settings.signer)   # said once, before any board is touched
        self.settings = settings
        self.recorder = recorder
        self.correlate = correlate
        self._on_event = on_event
        # The board definitions are read once (a broken one is said now), not at every poll or board.
        self.registry = definitions.load_boards()
        if settings.board:
            definitions.get_board(settings.board, self.registry)   # an unknown name: ConfigError naming the known
        if ports is None:
            ports = partial(glob_ports, settings.watch) if settings.watch else partial(usb_ports, self.registry)
        self._ports = ports
        self._worker = worker or handle_board
        self._slots: dict[str, _Slot] = {}
        self._lock = threading.Lock()         # the slots' state
        self._emit_lock = threading.Lock()    # on_event: one event at a time
        self._pool = ThreadPoolExecutor(max_workers=64, thread_name_prefix="station")
        self.stopping = threading.Event()
        self.outcomes: list[BoardOutcome] = []
        self._seen_once: set[str] = set()
        self._present: set[str] = set()

    # -- what the caller sees ----------------------------------------------------------------------

    def slots(self) -> list[SlotView]:
        """A snapshot of every slot, by port (for a live view drawn from another thread)."""
        with self._lock:
            return [replace(s.view) for _, s in sorted(self._slots.items())]

    def _emit(self, event: StationEvent) -> None:
        # Not under the state lock: a live view reads slots() while its own lock is held, and a
        # callback that prints takes that lock.
        with self._emit_lock:
            self._on_event(event)

    def _set(self, slot: _Slot, state: str, detail: str = "", uid: str | None = None, *, quiet: bool = False) -> None:
        """Change a slot's row; `quiet` (flash progress) only updates what a live view draws."""
        with self._lock:
            view = slot.view
            if state != view.state:
                view.since = time.monotonic()
                quiet = False
            view.state, view.detail = state, detail
            if uid is not None:
                view.uid = uid
            snapshot = replace(view)
        if not quiet:
            self._emit(StationEvent("slot", snapshot))

    # -- the watcher ---------------------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None) -> list[BoardOutcome]:
        """Watch until `stop` is set or exit_after boards have an outcome; boards in progress then
        finish (on `stop` their runs are cut short and stored as interrupted)."""
        stop = stop or threading.Event()
        try:
            while not stop.is_set():
                self.poll(self._list(), time.monotonic())
                if self._enough():
                    break
                stop.wait(self.settings.poll_s)
            if stop.is_set():
                self.stopping.set()   # workers cut their runs short; what they stored is kept
            while self._busy():
                self._reap(time.monotonic())
                time.sleep(0.05)
            self._reap(time.monotonic())
        finally:
            self.stopping.set()
            self._pool.shutdown(wait=True)
        return list(self.outcomes)

    def poll(self, listed: set[str], now: float) -> None:
        """One look at the ports (`listed`, at monotonic time `now`): start boards that appeared,
        note ports that vanished, retry ports whose pause is over, take finished workers' outcomes."""
        stable = listed & self._seen_once            # seen on two polls in a row
        for port in sorted(listed - self._seen_once - self._present):
            slot = self._slot(port)
            if not slot.busy:
                slot.plugged_at = now   # first sight: the clock of plug-to-verdict starts
        for port in sorted(stable - self._present):
            self._appeared(port, now)
        for port in sorted(self._present - listed):
            self._vanished(port, now)
        self._present = (self._present & listed) | stable
        self._seen_once = set(listed)
        for port in sorted(self._present):
            self._retry_due(port, now)
        self._reap(now)

    def _list(self) -> set[str]:
        try:
            return set(self._ports())
        except OSError:
            # The port list could not be read this time (sysfs busy): as last time, or every
            # plugged board would seem unplugged and plugged again, and be tested again.
            return set(self._seen_once)

    def _slot(self, port: str) -> _Slot:
        with self._lock:
            slot = self._slots.get(port)
            made = slot is None
            if slot is None:
                slot = self._slots[port] = _Slot(SlotView(port))
        if made:
            self._emit(StationEvent("slot", replace(slot.view)))
        return slot

    def _enough(self) -> bool:
        n = self.settings.exit_after
        return n is not None and len(self.outcomes) >= n

    def _busy(self) -> bool:
        with self._lock:
            return any(s.busy for s in self._slots.values())

    def _appeared(self, port: str, now: float) -> None:
        slot = self._slot(port)
        if slot.busy:
            slot.vanished_busy_at = None   # back from its own reset; the worker carries on
            return
        if slot.vanished_busy_at is not None and now - slot.vanished_busy_at < self.settings.reenumerate_grace_s:
            slot.vanished_busy_at = None   # a reset that outlived its worker by a moment: the same board
            return
        slot.vanished_busy_at = None
        if slot.retry_at is not None and now < slot.retry_at:
            return   # it did not answer a moment ago: _retry_due tries again when its pause is over
        if not self._enough():
            self._start(slot, now)

    def _vanished(self, port: str, now: float) -> None:
        slot = self._slot(port)
        if slot.busy:
            slot.vanished_busy_at = now
            return
        slot.vanished_busy_at = None
        if slot.view.state != "waiting" and slot.retry_at is None:
            self._set(slot, "waiting")

    def _retry_due(self, port: str, now: float) -> None:
        slot = self._slots.get(port)
        if slot is None or slot.busy or self._enough():
            return
        if slot.retry_at is not None and now >= slot.retry_at:
            self._start(slot, now)

    def _start(self, slot: _Slot, now: float) -> None:
        slot.busy = True
        slot.plugged_at = slot.plugged_at or now
        port = slot.view.port

        def update(state: str, detail: str = "", uid: str | None = None, quiet: bool = False) -> None:
            self._set(slot, state, detail, uid, quiet=quiet)

        self._set(slot, "identifying", uid="")
        slot.future = self._pool.submit(self._job, port, slot, update)

    def _job(self, port: str, slot: _Slot, update: Callable[..., None]) -> BoardOutcome:
        try:
            outcome = self._worker(port, self, update)
        except Exception as exc:  # a bug of ours on one board must not stop the station
            outcome = BoardOutcome(port=port, uid=slot.view.uid or None, verdict="ERROR", reason="internal-error",
                                   fix=f"{type(exc).__name__}: {exc} (an authprobe bug; please report it)",
                                   exit_code=EXIT_TOOL)
        outcome.seconds = time.monotonic() - slot.plugged_at
        return outcome

    def _reap(self, now: float) -> None:
        """Take the outcomes of finished workers (on the watcher's thread only)."""
        for slot in list(self._slots.values()):
            if not slot.busy or slot.future is None or not slot.future.done():
                continue
            outcome = slot.future.result()
            slot.busy, slot.future = False, None
            view = slot.view
            if not outcome.identified:
                with self._lock:
                    view.failures += 1
                pause = self.settings.retry_s[min(view.failures, len(self.settings.retry_s)) - 1]
                slot.retry_at = now + pause
                repeated, slot.failure_reported = slot.failure_reported, True
                self._set(slot, "error", f"no answer ({view.failures}x): {outcome.fix or outcome.reason}")
                if not repeated:
                    self._emit(StationEvent("board", replace(view), outcome))
                continue
            slot.retry_at, slot.failure_reported, slot.plugged_at = None, False, 0.0
            with self._lock:
                view.failures = 0
                view.boards += 1
                view.last = outcome
            self.outcomes.append(outcome)
            self._set(slot, outcome.verdict.lower(), outcome.root_cause or outcome.reason or "", outcome.uid)
            self._emit(StationEvent("board", replace(view), outcome))


# -- one board ---------------------------------------------------------------------------------------


def handle_board(port: str, station: Station, update: Callable[..., None]) -> BoardOutcome:
    """Identify, flash, run, store, correlate: one board, start to stored verdict."""
    settings = station.settings
    registry = station.registry
    usb = definitions.identify(port, registry)
    board = registry.get(settings.board) if settings.board else None
    if board is None and usb.candidates:
        board = registry[usb.candidates[0]]
    try:
        link = ReplLink(port, connect_wait=1.0)
    except AuthprobeError as exc:
        return _unanswered(port, exc)
    try:
        try:
            who = read_identity(link)
        except AuthprobeError as exc:
            return _unanswered(port, exc)
        update("flashing", uid=who.uid)
        identity = dict(usb.identity(), **who.as_dict(), station=settings.station)
        board_name = board.name if board else None
        cfg, creds = settings.cfg, None
        try:
            if board is None and who.runtime != "micropython":
                # Its files and their form (sources, settings.toml, the drive) come from a definition.
                raise AuthprobeError(f"{port}: the board runs {who.runtime} and no board definition matches it: "
                                     f"name one with --board (`authprobe boards --defs` lists them)", EXIT_USAGE)
            if per_board(cfg, settings.signer):
                cfg, creds = personalize(cfg, who.uid, settings.signer, port=port)

            def progress(_port: str, done: int, total: int) -> None:
                update("flashing", f"{done}/{total} bytes" if total else "", who.uid, quiet=True)

            flashed = flash_port(port, cfg, board=board, link=link, progress=progress)
        except AuthprobeError as exc:
            return _flash_failed(port, who, identity, board_name, station.recorder, exc,
                                 creds.fingerprints() if creds else None)
    finally:
        link.close()
    update("running", "", who.uid)

    def on_line(_port: str, line: Any) -> None:
        rec = line.record if line.kind == "record" else None
        if rec and rec.get("k") == "step":
            update("running", str(rec.get("step") or ""), who.uid)

    result = collect(port, timeout=settings.timeout, reset=board.reset if board else "repl", store=station.recorder,
                     board=board_name, identity=identity, runtime=board.runtime if board else who.runtime,
                     on_line=on_line, stop=station.stopping.is_set, reopen_s=settings.reopen_s)
    report = result.report
    correlated = False
    if station.correlate is not None and result.status != "error":
        update("correlating", "", who.uid)
        report, correlated = _correlated(station, report, cfg)
        if station.recorder is not None:
            station.recorder.save_report(result.run_id, report)
    outcome = outcome_of(port, who.uid, report, result.status, result.exit_code, result.run_id, result.error)
    outcome.flash = flashed.status
    outcome.flash_round_trips = flashed.round_trips
    outcome.credentials = creds.fingerprints() if creds else None
    outcome.correlated = correlated
    return outcome


def _correlated(station: Station, report: dict[str, Any], cfg: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The report with the cloud's evidence; when the cloud cannot be read, the device's own
    diagnosis with a note why: the board's verdict is stored either way."""
    assert station.correlate is not None
    try:
        return station.correlate(report, cfg), True
    except AuthprobeError as exc:
        return dict(report, correlation={"error": str(exc)}), False
    except Exception as exc:  # a cloud library's surprise must not cost the board its line
        return dict(report, correlation={"error": f"{type(exc).__name__}: {exc}"}), False


def leading_cause(report: dict[str, Any]) -> dict[str, Any] | None:
    """The diagnosis the line names: the first decided one, else the likeliest."""
    diagnosis = report.get("diagnosis") or []
    return next((d for d in diagnosis if d.get("decided")), diagnosis[0] if diagnosis else None)


def outcome_of(port: str, uid: str | None, report: dict[str, Any], status: str, exit_code: int,
               run_id: str | None, error: str | None = None) -> BoardOutcome:
    """A board's line from its (correlated) report."""
    verdict = report.get("verdict", "incomplete")
    word = "ERROR" if status == "error" else {"pass": "PASS", "fail": "FAIL"}.get(verdict, "INCOMPLETE")
    if status != "complete" and word != "ERROR":
        word = "INCOMPLETE"
    coll = report.get("collection") or {}
    out = BoardOutcome(port=port, uid=(report.get("device") or {}).get("uid") or uid, verdict=word, run_id=run_id,
                       exit_code=exit_code)
    failing = next((s for s in report.get("steps") or () if s.get("status") == "fail"), None)
    if failing:
        out.failed_step = f"{failing['step']}: {failing['name']} ({failing['code']})"
    if word in ("INCOMPLETE", "ERROR"):
        out.reason = coll.get("reason") or "error"
        out.fix = error or coll.get("hint")
    cause = leading_cause(report) if word != "PASS" else None
    if cause:
        out.root_cause = cause.get("root_cause")
        out.fix = cause.get("remediation") or out.fix
    return out


def _unanswered(port: str, exc: AuthprobeError) -> BoardOutcome:
    return BoardOutcome(port=port, uid=None, verdict="ERROR", reason="no-answer", fix=str(exc),
                        exit_code=exc.exit_code, identified=False)


def _flash_failed(port: str, who: BoardIdentity, identity: dict[str, Any], board: str | None,
                  recorder: StationRecorder | None, exc: AuthprobeError, creds: dict[str, Any] | None
                  ) -> BoardOutcome:
    """An identified board the self-test could not be put on: stored as an incomplete run, so the
    line's record of it holds the board's identity and the reason."""
    started = time.time()
    run_id = recorder.begin_run(port=port, board=board, identity=identity, started=started) if recorder \
        else new_run_id(started)
    report = build_report([], run_id=run_id)
    report["collection"] = {"run_id": run_id, "port": port, "board": board, "identity": identity,
                            "started": iso_utc(started), "status": "incomplete", "reason": "flash-failed",
                            "error": str(exc), "hint": "the self-test could not be put on the board: see the error"}
    if recorder is not None:
        recorder.finish_run(run_id, report, status="incomplete", reason="flash-failed", ended=time.time())
    return BoardOutcome(port=port, uid=who.uid, verdict="ERROR", run_id=run_id, reason="flash-failed", fix=str(exc),
                        credentials=creds, exit_code=exc.exit_code)


def combined_exit_code(outcomes: list[BoardOutcome]) -> int:
    """Worst first: our bug, bad usage, an incomplete run, a failing board."""
    codes = {o.exit_code for o in outcomes}
    return next((c for c in (EXIT_TOOL, EXIT_USAGE, EXIT_INCOMPLETE, EXIT_FAIL) if c in codes), EXIT_OK)
