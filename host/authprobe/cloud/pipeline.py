"""Join, then diagnose: the one path from device runs and cloud evidence to a diagnosis per run.

`authprobe correlate`, `authprobe report --cloud`, the drill and the demo all call `diagnose_runs`;
the log events come from a Cloud backend (AWS, the stand-in) or from exported files, the checks from
`cloud-check` (run here with the device's settings, or read from its --json output)."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from authprobe.cloud.base import Cloud, LogEvent, NotFound, function_name_of
from authprobe.cloud.checks import CheckContext, run_checks
from authprobe.cloud.correlate import Correlated, Joiner
from authprobe.cloud.device_settings import DeviceSettings
from authprobe.cloud.log_delivery import (
    STAMP_SLACK_S,
    awaiting,
    logged_event_types,
    provisional_note,
    still_due,
)
from authprobe.cloud.logs_insights import Window
from authprobe.cloud.replays import Replay
from authprobe.errors import CloudError, ConfigError
from authprobe.report.diagnosis import CloudEvidence, diagnose

# Checks about the authorizer and its function hold for every device; the others (names, signature,
# endpoint, replay, returned policy) only for the device config cloud-check was given.
ACCOUNT_WIDE_CHECKS = ("authorizer.status", "function.", "metrics.", "logging.")
EVERY_RUN = "*"   # checks_client: the checks were made from the config every run used
DEFAULT_POLL_S = 5.0


@dataclass
class DiagnosedRun:
    """One run after correlation: its report (diagnosis replaced by the cloud-informed one), the
    evidence that decided it, and the join (window, matched counts, nearby events, provisional)."""

    report: dict[str, Any]
    evidence: CloudEvidence
    joined: Correlated

    @property
    def diagnosis(self) -> list[dict[str, Any]]:
        return self.report["diagnosis"]

    @property
    def provisional(self) -> bool:
        """Logs this run's stage makes due may not have been delivered yet."""
        return self.joined.provisional

    @property
    def nearby(self) -> list[dict[str, Any]]:
        """Events near the run that are not its own (another run's, a replay, a later stage), each
        with its reason in "nearby"."""
        return [e.as_dict() for e in self.joined.nearby]


def account_wide(check: dict[str, Any]) -> bool:
    return str(check.get("id", "")).startswith(ACCOUNT_WIDE_CHECKS)


def _from_absence(check: dict[str, Any]) -> bool:
    """A check that concludes from something missing (no invocation in the metrics window)."""
    return check.get("id") == "metrics.invocations" and not (check.get("data") or {}).get("invocations")


def authorizer_function(cloud: Cloud, authorizer: str | None = None, function: str | None = None) -> str | None:
    """The authorizer function whose log group to read: `function` when named, else the named
    authorizer's, else the account's default authorizer's; None when there is no default."""
    if function:
        return function
    try:
        desc = cloud.describe_authorizer(authorizer) if authorizer else cloud.describe_default_authorizer()
    except NotFound:
        raise ConfigError(f"authorizer {authorizer!r} not found: pass --function NAME or the right --authorizer") \
            from None
    arn = (desc or {}).get("authorizerFunctionArn")
    return function_name_of(arn) if arn else None


def device_checks(cloud: Cloud, device: DeviceSettings, *, replay: bool = True,
                  on_replay: Callable[[Replay], None] | None = None,
                  replays: list[Replay] | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """cloud-check's results for one device's settings, and the authorizer function they found.
    The TestInvokeAuthorizer replays made are passed to `on_replay` and appended to `replays`."""
    ctx = CheckContext(cloud, device, replay=replay, on_replay=on_replay)
    checks = [r.as_dict() for r in run_checks(ctx)]
    if replays is not None:
        replays.extend(ctx.replays)
    return checks, (ctx.function or {}).get("FunctionName")


def logged_from_checks(checks: Sequence[dict[str, Any]]) -> frozenset[str] | None:
    """The event types cloud-check found logged (its logging.events check), None when it did not say."""
    for c in checks:
        events = (c.get("data") or {}).get("events") if c.get("id") == "logging.events" else None
        if isinstance(events, dict):
            return frozenset(t for t, v in events.items() if isinstance(v, dict) and v.get("logged"))
    return None


def _now_ms() -> int:
    return int(time.time() * 1000)


def diagnose_runs(reports: Sequence[dict[str, Any]], events: Callable[[list[Window]], Iterable[LogEvent]], *,
                  checks: Sequence[dict[str, Any]] = (), checks_client: str | None = EVERY_RUN,
                  skew_s: float | None = None, keep_passing: bool = True,
                  neighbours: Sequence[dict[str, Any]] = (), replays: Sequence[Replay] = (),
                  log_delay_s: float = 0.0, function_read: bool = True, wait: bool = False,
                  logged: Collection[str] | None = None,
                  on_wait: Callable[[list[DiagnosedRun], float], None] | None = None,
                  poll_s: float = DEFAULT_POLL_S, now_ms: Callable[[], int] = _now_ms,
                  sleep: Callable[[float], None] = time.sleep) -> list[DiagnosedRun]:
    """Join each run with the log events `events(windows)` returns for the runs' windows, then
    diagnose it with those events and the checks that apply to it: all of them when
    `checks_client` is EVERY_RUN or the run's client id, else only the account-wide ones.

    Args:
        reports: authprobe.report/1 reports, in the order the results come back.
        events: called with every run's window (and again for the runs still waiting, with
            `wait`); returns the log events to join.
        checks: cloud-check results (CheckResult.as_dict() shapes).
        checks_client: the client id the checks were made for (None: no device's).
        skew_s: margin around each run's window, seconds (default: 5 around the host's times,
            120 around a device clock).
        keep_passing: keep the events of passing runs (False only counts them).
        neighbours: other runs of the same client ids (stored runs) that keep their own events;
            they are not diagnosed.
        replays: authprobe's own TestInvokeAuthorizer calls: their function lines are never evidence.
        log_delay_s: how long the cloud may take to deliver logs; a run that ended less than this
            ago and lacks records its stage makes due is provisional, not decided from absence.
        function_read: whether `events` include the authorizer function's log lines.
        logged: the IoT event types the account logs (what can be due); default: what the checks'
            logging.events says, else V2 logging's defaults.
        wait: poll every `poll_s` until no run is provisional; `on_wait(waiting runs, seconds
            left at most)` is told before each poll.
        now_ms, sleep: the clock (epoch ms) and the pause, for tests.
    """
    reports = list(reports)
    if logged is None:
        logged = logged_from_checks(checks)

    def once(subset: list[dict[str, Any]], others: Sequence[dict[str, Any]]) -> list[DiagnosedRun]:
        return _diagnose_once(subset, events, checks, checks_client, skew_s, keep_passing, others, replays,
                              log_delay_s, function_read, logged, now_ms())

    results = once(reports, neighbours)
    while wait:
        pending = [i for i, r in enumerate(results) if r.provisional]
        if not pending:
            break
        deadline = max(results[i].joined.window.span_end_ms or 0 for i in pending) \
            + int((log_delay_s + STAMP_SLACK_S) * 1000)
        left = max(0.0, (deadline - now_ms()) / 1000)
        if on_wait is not None:
            on_wait([results[i] for i in pending], left)
        sleep(min(poll_s, left))
        # Only the waiting runs are read again, with every other run of their client ids beside them.
        waiting = [reports[i] for i in pending]
        ids = {(r.get("device") or {}).get("client_id") for r in waiting}
        others = [r for j, r in enumerate(reports) if j not in set(pending)
                  and (r.get("device") or {}).get("client_id") in ids]
        others += [r for r in neighbours if (r.get("device") or {}).get("client_id") in ids]
        for i, fresh in zip(pending, once(waiting, others), strict=True):
            results[i] = fresh
    return results


def _diagnose_once(reports: list[dict[str, Any]], events: Callable[[list[Window]], Iterable[LogEvent]],
                   checks: Sequence[dict[str, Any]], checks_client: str | None, skew_s: float | None,
                   keep_passing: bool, neighbours: Sequence[dict[str, Any]], replays: Sequence[Replay],
                   log_delay_s: float, function_read: bool, logged: Collection[str] | None,
                   now: int) -> list[DiagnosedRun]:
    joiner = Joiner(reports, skew_s, keep_passing=keep_passing, neighbours=neighbours, replays=replays)
    joiner.add_all(events(joiner.windows()))
    out = []
    for joined in joiner.finish():
        w = joined.window
        missing = awaiting(joined.report, w.level, joined.events, function_read=function_read, logged=logged)
        joined.provisional = bool(missing) and still_due(w.span_end_ms, now, log_delay_s)
        joined.awaiting = missing if joined.provisional else []
        mine = checks_client == EVERY_RUN or w.client_id == checks_client
        own = list(checks) if mine else [c for c in checks if account_wide(c)]
        if joined.provisional:
            own = [c for c in own if not _from_absence(c)]
        evidence = CloudEvidence(own, [e.as_dict() for e in joined.events])
        diagnosis = diagnose(joined.report, evidence)
        if joined.provisional and diagnosis:
            lead = diagnosis[0]
            diagnosis[0] = dict(lead, evidence=list(lead["evidence"]) + [provisional_note(missing, log_delay_s)])
        out.append(DiagnosedRun(dict(joined.report, diagnosis=diagnosis), evidence, joined))
    return out


def diagnose_with_cloud(reports: Sequence[dict[str, Any]], cloud: Cloud, *, device: DeviceSettings | None = None,
                        function: str | None = None, authorizer: str | None = None, replay: bool = True,
                        skew_s: float | None = None, neighbours: Sequence[dict[str, Any]] = (),
                        replays: Sequence[Replay] = (), on_replay: Callable[[Replay], None] | None = None,
                        log_delay_s: float | None = None, wait: bool = False,
                        on_wait: Callable[[list[DiagnosedRun], float], None] | None = None,
                        poll_s: float = DEFAULT_POLL_S) -> list[DiagnosedRun]:
    """diagnose_runs with the cloud's own log events and, given the device's settings, cloud-check's
    results for them (which also name the authorizer function when none is given). The checks'
    replays join `replays`; `log_delay_s` defaults to the cloud's own (`cloud.log_delay_s`)."""
    checks: list[dict[str, Any]] = []
    made = list(replays)
    if device is not None:
        # The checks look the authorizer up themselves, and report a missing one as a finding.
        checks, found = device_checks(cloud, device, replay=replay, on_replay=on_replay, replays=made)
        function = function or found
    elif function is None:
        function = authorizer_function(cloud, authorizer)
    delay = cloud.log_delay_s if log_delay_s is None else log_delay_s
    logged = logged_from_checks(checks)
    if logged is None and delay > 0:
        # What is due depends on what the account logs; only worth asking when logs may be late.
        try:
            logged = logged_event_types(cloud.get_v2_logging_options())
        except CloudError:
            logged = None
    return diagnose_runs(reports, lambda windows: cloud.log_events(windows, function), checks=checks,
                         skew_s=skew_s, neighbours=neighbours, replays=made,
                         log_delay_s=delay, function_read=function is not None, logged=logged, wait=wait,
                         on_wait=on_wait, poll_s=poll_s)
