"""The fault drill: inject every locally producible root cause (drill_cases.FAULTS) into the whole
chain -- virtual board flashed over mpremote's raw REPL, the real MicroPython interpreter, the
CPython probe, the local stand-in running real authorizer handlers, the run store, cloud-check,
correlation, diagnosis -- and check that each comes out as exactly its root cause (the diagnosis's
first entry). A healthy configuration must pass on every runtime.

    result = run_drill(only=["lambda"])
    result.passed, result.cases[0].diagnosed

One stand-in per distinct stand-in config and one virtual board per flavour serve every case; the
cases of each board run one after another on it while the other board's and the CPython cases run
beside them (one lane each: most of a case is waiting on TLS, the authorizer and the broker)."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from authprobe.board.definitions import RUNTIMES as BOARD_RUNTIMES
from authprobe.drill import cases as drill_cases
from authprobe.drill import sequences as drill_sequences
from authprobe.drill.cases import Case
from authprobe.drill.runner import Outcome, VirtualBoardRunner, run_case
from authprobe.drill.sequences import Sequence
from authprobe.drill.standin import DRILL_EXAMPLES, StandIn
from authprobe.errors import AuthprobeError
from authprobe.store import open_store

SCHEMA = "authprobe.drill/1"
STANDIN_CONFIG = DRILL_EXAMPLES / "standin.toml"


@dataclass
class CaseResult:
    name: str
    fault: str
    runtime: str
    transport: str
    injected: str
    expected: str | None
    diagnosed: str | None
    passed: bool
    seconds: float
    verdict: str
    failing_step: str | None = None
    code: int | None = None
    decided: bool = False
    run_id: str | None = None
    stored: bool = False        # the run is in the run store (board runs; the CPython probe stores none)
    client_id: str | None = None
    candidates: list[str] = field(default_factory=list)
    error: str | None = None
    uncited: str | None = None  # the evidence the case is for, when the leading diagnosis does not cite it
    kind: str = "case"          # "case" (one fault) or "sequence" (several runs, evidence checked exactly)
    notes: list[str] = field(default_factory=list)   # a sequence's problems, one line each

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DrillResult:
    cases: list[CaseResult]
    not_local: list[dict[str, str]]
    seconds: float
    workdir: str | None = None

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.cases)

    def summary(self) -> dict[str, Any]:
        produced = sorted({c.expected for c in self.cases if c.expected and c.kind == "case"})
        nowhere = {n["expected"] for n in self.not_local if not n.get("runtime")}
        return {"cases": len(self.cases), "passed": sum(c.passed for c in self.cases),
                "failed": sum(not c.passed for c in self.cases), "seconds": round(self.seconds, 2),
                "root_causes_drilled": len(produced), "root_causes_not_local": len(nowhere)}

    def as_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "summary": self.summary(), "cases": [c.as_dict() for c in self.cases],
                "not_local": self.not_local, "workdir": self.workdir}


def judge(case: Case, outcome: Outcome) -> CaseResult:
    """A case passes when a healthy run passes with no diagnosis, or a faulty run fails and its
    diagnosis leads with exactly the injected root cause (citing the case's evidence, when it names
    some)."""
    runtime, transport = case.runtime.split("/")
    report = outcome.report
    failing = next((s for s in report.get("steps", []) if s.get("status") == "fail"), None)
    expected = case.fault.expected
    if outcome.error:
        passed = False
    elif expected is None:
        passed = outcome.verdict == "pass" and not outcome.diagnosis
    else:
        passed = outcome.verdict == "fail" and outcome.top == expected
    lead = outcome.diagnosis[0] if outcome.diagnosis else {}
    uncited = None
    if passed and case.fault.evidence:
        # The case is about one evidence path: the lead must cite it, not only arrive at the cause.
        cited = " ".join(map(str, lead.get("evidence") or [])) + " " + str(lead.get("decided_by") or "")
        if case.fault.evidence not in cited:
            passed, uncited = False, case.fault.evidence
    return CaseResult(
        name=case.name, fault=case.fault.name, runtime=runtime, transport=transport, injected=case.fault.injected,
        expected=expected, diagnosed=outcome.top, passed=passed, seconds=round(outcome.seconds, 2),
        verdict=outcome.verdict, failing_step=failing.get("step") if failing else None,
        code=failing.get("code") if failing else None, decided=bool(lead.get("decided")),
        run_id=report.get("run_id"), stored=runtime != "cpython" and bool(report.get("run_id")), client_id=(report.get("device") or {}).get("client_id"),
        candidates=[d["root_cause"] for d in outcome.diagnosis[:4]], error=outcome.error, uncited=uncited)


def _runtime(case: Case) -> str:
    return case.runtime.split("/")[0]


class Drill:
    """The stand-ins and the board the cases share; `run(cases)` runs them in two lanes (again and
    again if need be); `close()` stops everything."""

    def __init__(self, workdir: Path, *, store_path: Path | None = None):
        self.workdir = workdir
        self.store = open_store(store_path or workdir / "runs.sqlite")
        self.standins: dict[str, StandIn] = {}
        self.boards: dict[str, VirtualBoardRunner] = {}
        self.closed = False
        self.stopping = threading.Event()

    def standin(self, kind: str) -> StandIn:
        if kind not in self.standins:
            self.standins[kind] = StandIn.start(STANDIN_CONFIG, self.workdir / f"standin-{kind}",
                                                **drill_cases.STANDINS[kind])
        return self.standins[kind]

    def virtual_board(self, runtime: str) -> VirtualBoardRunner:
        """The one board of this runtime's flavour every case on it shares."""
        if runtime not in self.boards:
            self.boards[runtime] = VirtualBoardRunner(self.workdir / f"board-{runtime}", self.store,
                                                      name=f"drill-{runtime}", runtime=runtime).start()
        return self.boards[runtime]

    def prepare(self, cases: list[Case]) -> None:
        """Start what the cases need before any runs, so a start-up failure is one clear error."""
        for kind in dict.fromkeys(c.fault.standin for c in cases):
            self.standin(kind)
        for runtime in dict.fromkeys(_runtime(c) for c in cases):
            if runtime in BOARD_RUNTIMES:
                self.virtual_board(runtime)

    def run_one(self, case: Case) -> CaseResult:
        standin = self.standin(case.fault.standin)
        cfg = drill_cases.device_config(case, standin)
        runtime = _runtime(case)
        board = self.virtual_board(runtime) if runtime in BOARD_RUNTIMES else None
        outcome = run_case(standin, cfg, runtime, board=board, wifi_fault=case.fault.wifi_fault,
                           alongside=case.fault.alongside, stopping=self.stopping)
        return judge(case, outcome)

    def run_sequence(self, sequence: Sequence) -> CaseResult:
        """One drill sequence on this drill's stand-ins, boards and run store."""
        runtime, transport = sequence.runtime.split("/")
        t0 = time.monotonic()
        try:
            outcome = sequence.play(self)
            error, notes, diagnosed = None, outcome.problems, outcome.diagnosed
        except Exception as exc:  # reported like a case's; the drill goes on
            error, notes, diagnosed = f"{type(exc).__name__}: {exc}", [], []
            outcome = drill_sequences.SequenceOutcome()
        words = ", ".join(d or "pass" for d in diagnosed)
        return CaseResult(
            name=sequence.full_name, fault=sequence.name, runtime=runtime, transport=transport,
            injected=sequence.injected, expected=", ".join(e or "pass" for e in sequence.expected),
            diagnosed=words or None, passed=error is None and not notes, seconds=round(time.monotonic() - t0, 2),
            verdict="sequence", run_id=outcome.run_ids[0] if outcome.run_ids else None,
            stored=runtime in BOARD_RUNTIMES, error=error, kind="sequence", notes=notes)

    def run(self, cases: list[Case], on_result: Callable[[CaseResult], None] | None = None) -> list[CaseResult]:
        self.prepare(cases)
        # One lane per board (a board runs one self-test at a time) and one for the CPython probe.
        lanes = {r: ThreadPoolExecutor(1, thread_name_prefix=f"drill-{r}") for r in dict.fromkeys(map(_runtime, cases))}
        futures: list[Future[CaseResult]] = []
        try:
            for case in cases:
                future = lanes[_runtime(case)].submit(self.run_one, case)
                if on_result is not None:
                    future.add_done_callback(lambda f: not f.cancelled() and f.exception() is None
                                             and on_result(f.result()))
                futures.append(future)
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            # Ctrl-C or a failure: stop the boards and stand-ins first, so a case still running ends at once.
            self.close()
            raise
        finally:
            for lane in lanes.values():
                lane.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        """Stop the board and the stand-ins and close the store (again: nothing happens)."""
        if self.closed:
            return
        self.closed = True
        self.stopping.set()
        for board in self.boards.values():
            board.close()
        for s in self.standins.values():
            s.close()
        self.standins.clear()
        self.boards.clear()
        self.store.close()


def run_drill(only: list[str] | None = None, *, workdir: str | Path | None = None,
              on_result: Callable[[CaseResult], None] | None = None) -> DrillResult:
    """Inject each locally producible fault and check the diagnosis authprobe makes of it.

    Args:
        only: run the cases whose name contains one of these (default: all).
        workdir: keep the run store (runs.sqlite) and the stand-ins' state there; default: a
            temporary directory removed afterwards.
        on_result: called with each CaseResult as it finishes.
    """
    cases = drill_cases.cases(only)
    sequences = drill_sequences.sequences(only)
    if not cases and not sequences:
        names = ", ".join(f.name for f in drill_cases.FAULTS)
        raise AuthprobeError(f"--only {' '.join(only or [])}: no case matches; cases are FAULT@RUNTIME/TRANSPORT "
                             f"with faults {names} and runtimes {', '.join(drill_cases.RUNTIMES)}; sequences are "
                             f"{', '.join(s.full_name for s in drill_sequences.SEQUENCES)}")
    keep = workdir is not None
    base = Path(workdir) if keep else Path(tempfile.mkdtemp(prefix="authprobe-drill-"))
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AuthprobeError(f"--keep {base}: cannot make that folder ({exc.strerror or exc}); name a "
                             f"writable folder") from None
    t0 = time.monotonic()
    drill = Drill(base)
    try:
        results = drill.run(cases, on_result) if cases else []
        for sequence in sequences:   # after the cases: each sequence needs the line to itself
            if drill.stopping.is_set():
                break
            results.append(drill.run_sequence(sequence))
            if on_result is not None:
                on_result(results[-1])
    finally:
        drill.close()
        if not keep:
            shutil.rmtree(base, ignore_errors=True)
    not_local = [n.as_dict() for n in drill_cases.NOT_LOCAL]
    return DrillResult(results, not_local, time.monotonic() - t0, str(base) if keep else None)
