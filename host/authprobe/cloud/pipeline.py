"""Join, then diagnose: the one path from device runs and cloud evidence to a diagnosis per run.

`authprobe correlate`, `authprobe report --cloud`, the drill and the demo all call `diagnose_runs`;
the log events come from a Cloud backend (AWS, the stand-in) or from exported files, the checks from
`cloud-check` (run here with the device's settings, or read from its --json output)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from authprobe.cloud.base import Cloud, LogEvent, NotFound, function_name_of
from authprobe.cloud.checks import CheckContext, run_checks
from authprobe.cloud.correlate import DEFAULT_SKEW_S, Correlated, Joiner
from authprobe.cloud.device_settings import DeviceSettings
from authprobe.cloud.logs_insights import Window
from authprobe.errors import ConfigError
from authprobe.report.diagnosis import CloudEvidence, diagnose

# Checks about the authorizer and its function hold for every device; the others (names, signature,
# endpoint, replay, returned policy) only for the device config cloud-check was given.
ACCOUNT_WIDE_CHECKS = ("authorizer.status", "function.", "metrics.", "logging.")
EVERY_RUN = "*"   # checks_client: the checks were made from the config every run used


@dataclass
class DiagnosedRun:
    """One run after correlation: its report (diagnosis replaced by the cloud-informed one), the
    evidence that decided it, and the join (window, matched counts)."""

    report: dict[str, Any]
    evidence: CloudEvidence
    joined: Correlated

    @property
    def diagnosis(self) -> list[dict[str, Any]]:
        return self.report["diagnosis"]


def account_wide(check: dict[str, Any]) -> bool:
    return str(check.get("id", "")).startswith(ACCOUNT_WIDE_CHECKS)


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


def device_checks(cloud: Cloud, device: DeviceSettings, *, replay: bool = True) -> tuple[list[dict[str, Any]], str | None]:
    """cloud-check's results for one device's settings, and the authorizer function they found."""
    ctx = CheckContext(cloud, device, replay=replay)
    checks = [r.as_dict() for r in run_checks(ctx)]
    return checks, (ctx.function or {}).get("FunctionName")


def diagnose_runs(reports: Sequence[dict[str, Any]], events: Callable[[list[Window]], Iterable[LogEvent]], *,
                  checks: Sequence[dict[str, Any]] = (), checks_client: str | None = EVERY_RUN,
                  skew_s: float = DEFAULT_SKEW_S, keep_passing: bool = True) -> list[DiagnosedRun]:
    """Join each run with the log events `events(windows)` returns for the runs' windows, then
    diagnose it with those events and the checks that apply to it: all of them when
    `checks_client` is EVERY_RUN or the run's client id, else only the account-wide ones.

    Args:
        reports: authprobe.report/1 reports, in the order the results come back.
        events: called once with every run's window; returns the log events to join.
        checks: cloud-check results (CheckResult.as_dict() shapes).
        checks_client: the client id the checks were made for (None: no device's).
        skew_s: margin around each run's window, seconds.
        keep_passing: keep the events of passing runs (False only counts them).
    """
    joiner = Joiner(list(reports), skew_s, keep_passing=keep_passing)
    joiner.add_all(events(joiner.windows()))
    out = []
    for joined in joiner.finish():
        mine = checks_client == EVERY_RUN or joined.window.client_id == checks_client
        own = list(checks) if mine else [c for c in checks if account_wide(c)]
        evidence = CloudEvidence(own, [e.as_dict() for e in joined.events])
        out.append(DiagnosedRun(dict(joined.report, diagnosis=diagnose(joined.report, evidence)), evidence, joined))
    return out


def diagnose_with_cloud(reports: Sequence[dict[str, Any]], cloud: Cloud, *, device: DeviceSettings | None = None,
                        function: str | None = None, authorizer: str | None = None, replay: bool = True,
                        skew_s: float = DEFAULT_SKEW_S) -> list[DiagnosedRun]:
    """diagnose_runs with the cloud's own log events and, given the device's settings, cloud-check's
    results for them (which also name the authorizer function when none is given)."""
    checks: list[dict[str, Any]] = []
    if device is not None:
        # The checks look the authorizer up themselves, and report a missing one as a finding.
        checks, found = device_checks(cloud, device, replay=replay)
        function = function or found
    elif function is None:
        function = authorizer_function(cloud, authorizer)
    return diagnose_runs(reports, lambda windows: cloud.log_events(windows, function), checks=checks,
                         skew_s=skew_s)
