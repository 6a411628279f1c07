"""One self-test run through the whole chain, as the demo and the drill need it: on a virtual board
(flashed with the real mpremote path, collected into the run store) or under CPython (`authprobe
probe`), then cloud-check and correlation against the stand-in's records, then the diagnosis.

Each step is the public API the CLI commands are thin layers on (flash.flash_port, collect.collect,
commands.probe.probe, correlate.cloud_evidence, diagnosis.diagnose)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from authprobe.board import collect, flash
from authprobe.board.definitions import RUNTIMES
from authprobe.board.host_probe import probe
from authprobe.board.virtual import VirtualBoard
from authprobe.cloud.device_settings import settings_from_config
from authprobe.cloud.local import LocalCloud
from authprobe.cloud.pipeline import diagnose_with_cloud
from authprobe.drill.standin import StandIn
from authprobe.errors import AuthprobeError

# The join window is what the host saw of the run; cloud and host share this machine's clock, so a
# margin narrower than the CLI's 5 s is plenty.
SKEW_S = 3.0
# Steps after which the device has spoken MQTT to the stand-in, so a log record for its client id
# is due; the drill waits for it before correlating.
_LOGGED_STEPS = ("transport", "connect", "pubsub", "library")
RECORD_WAIT_S = 2.0
SETTLE_S = 0.15
# A function whose own timeout is longer than IoT's 5 s wait runs on after the device was refused;
# its REPORT line (the evidence) comes when it ends.
FUNCTION_WAIT_S = 30.0


@dataclass
class Outcome:
    """What one run produced: the device's report, the cloud evidence joined to it, the diagnosis."""

    runtime: str
    report: dict[str, Any]
    evidence: Any = None
    diagnosis: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    @property
    def top(self) -> str | None:
        """The root cause the diagnosis leads with (None for a pass)."""
        return self.diagnosis[0]["root_cause"] if self.diagnosis else None

    @property
    def verdict(self) -> str:
        return self.report.get("verdict", "incomplete") if not self.error else "error"


class VirtualBoardRunner:
    """One virtual board reused for many runs: only the device config changes between them, so the
    flasher's unchanged-file detection sends just the config. Wi-Fi faults go through the board's
    control file, read at every reset."""

    def __init__(self, work_dir: Path, store: Any, *, name: str = "drill-board", timeout: float = 30.0,
                 runtime: str = "micropython"):
        work_dir.mkdir(parents=True, exist_ok=True)
        self.control = work_dir / f"{name}-control.json"
        self.control.write_text("{}")
        self.runtime = runtime
        # The CircuitPython flavour is deployed through its flash folder, as through a CIRCUITPY drive.
        self.board_name = "virtual" if runtime == "micropython" else f"virtual-{runtime}"
        self.board = VirtualBoard(work_dir / f"{name}-flash", name=name, control_file=str(self.control),
                                  runtime=runtime)
        self.store = store
        self.timeout = timeout
        self.lock = threading.Lock()  # one run at a time per board, as on a bench
        self.last_flash: Any = None

    def start(self) -> VirtualBoardRunner:
        self.board.start()
        return self

    def close(self) -> None:
        self.board.stop()

    def __enter__(self) -> VirtualBoardRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> str:
        assert self.board.port is not None, "start() the board first"
        return self.board.port

    def run(self, cfg: dict[str, Any], *, wifi_fault: str | None = None) -> dict[str, Any]:
        """Flash `cfg`, reset the board, collect one run into the store; the report."""

        with self.lock:
            self.control.write_text(json.dumps({"wifi_fault": wifi_fault}))
            drive = str(self.board.flash_dir) if self.runtime == "circuitpython" else None
            self.last_flash = flash.flash_port(self.port, cfg, board=self.board_name, drive=drive)
            result = collect.collect(self.port, timeout=self.timeout, store=self.store, board=self.board_name,
                                     reset="repl", runtime=self.runtime)
            if result.reason == "interrupted":
                raise KeyboardInterrupt  # collection keeps the run and returns; the caller must stop too
            if result.status == "error":
                raise AuthprobeError(f"virtual board {self.port}: {result.error}")
            return result.report


def probe_cpython(cfg: dict[str, Any]) -> dict[str, Any]:
    """`authprobe probe --runtime cpython`: the self-test in this process, with ALPN."""
    return probe(cfg, "cpython")


def _client_records(state_dir: Path, client_id: str) -> bool:
    path = state_dir / "logs" / "AWSIotLogsV2.jsonl"
    try:
        text = path.read_text()
    except OSError:
        return False
    return f'"clientId": "{client_id}"' in text or f'"clientId":"{client_id}"' in text


def wait_for_records(standin: StandIn, report: dict[str, Any]) -> None:
    """The stand-in writes a record as it refuses or drops a connection; a device may report first.
    Wait (briefly) until the record for this client is there when one is due."""
    steps = report.get("steps", [])
    failing = next((s for s in steps if s.get("status") == "fail"), None)
    reached = report.get("verdict") == "pass" or (failing is not None and failing.get("step") in _LOGGED_STEPS)
    client_id = (report.get("device") or {}).get("client_id")
    if not reached or not client_id:
        return
    deadline = time.monotonic() + RECORD_WAIT_S
    while time.monotonic() < deadline and not _client_records(standin.state_dir, client_id):
        time.sleep(0.02)
    time.sleep(SETTLE_S)  # the function's log lines and the session's last records follow


def wait_for_function(standin: StandIn, cfg: dict[str, Any]) -> None:
    """Wait until the device's authorizer function has no invocation running, so every line it
    logs for this run is there."""
    config = standin.emulator.config
    name = (cfg.get("auth") or {}).get("authorizer") or config.default_authorizer
    authorizer = config.authorizers.get(name or "")
    runtime = standin.emulator.lambdas.runtime(authorizer.function) if authorizer else None
    if runtime is not None:
        runtime.wait_idle(FUNCTION_WAIT_S)


def correlate_run(standin: StandIn, cfg: dict[str, Any], report: dict[str, Any]) -> tuple[Any, list[dict[str, Any]]]:
    """`authprobe cloud-check` + `authprobe correlate --checks` for one run: the cloud evidence
    (checks of this device's settings, and the stand-in's log records in the run's window) and the
    diagnosis it leads to."""
    wait_for_records(standin, report)
    wait_for_function(standin, cfg)
    cloud = LocalCloud(standin.state_dir)
    (run,) = diagnose_with_cloud([report], cloud, device=settings_from_config(cfg), skew_s=SKEW_S)
    return run.evidence, run.diagnosis


def run_case(standin: StandIn, cfg: dict[str, Any], runtime: str, *, board: VirtualBoardRunner | None = None,
             wifi_fault: str | None = None, alongside: Any = None,
             stopping: threading.Event | None = None) -> Outcome:
    """One run on `runtime` ("micropython" or "circuitpython" on a virtual board of that flavour,
    "cpython" through the probe),
    correlated with the stand-in. `alongside(standin, cfg)` is a context manager kept open while
    the board runs (another device, for example); once `stopping` is set nothing more is started. Errors of the tool itself are kept in the
    outcome, not raised, so one broken case never hides the others."""
    t0 = time.monotonic()
    try:
        with alongside(standin, cfg) if alongside is not None else contextlib.nullcontext():
            if runtime in RUNTIMES:
                if board is None:
                    raise ValueError(f"a {runtime} run needs a virtual board")
                report = board.run(cfg, wifi_fault=wifi_fault)
            elif runtime == "cpython":
                report = probe_cpython(cfg)
            else:
                raise ValueError(f"unknown runtime {runtime!r}")
        if stopping is not None and stopping.is_set():
            # Stopped from the host (Ctrl-C): no cloud-check replay that would wait on a Lambda.
            return Outcome(runtime, report, error="stopped", seconds=time.monotonic() - t0)
        evidence, diagnosis = correlate_run(standin, cfg, report)
    except Exception as exc:  # reported per case; the drill goes on with the others
        return Outcome(runtime, {}, error=f"{type(exc).__name__}: {exc}", seconds=time.monotonic() - t0)
    report = dict(report, diagnosis=diagnosis)
    return Outcome(runtime, report, evidence, diagnosis, time.monotonic() - t0)
