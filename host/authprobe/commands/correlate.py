"""`authprobe correlate`: join stored device runs (or report files) with AWS IoT's V2 logs and the
authorizer function's logs, by client id and the run's window (what the host saw), into a diagnosis
per run. Stored runs of the same client ids keep their own events, authprobe's recorded replays are
labelled, and a run whose logs may not be delivered yet is provisional (exit 3; --wait waits).

Log sources: AWS Logs Insights (--cloud aws, batched queries), the stand-in's state directory
(--cloud local:DIR), or exported JSON-lines files (--iot-log / --function-log, no AWS access)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterable
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

from authprobe import root_causes
from authprobe.cloud import add_cloud_arguments, open_cloud
from authprobe.cloud.base import DEFAULT_LOG_DELAY_S, LogEvent
from authprobe.cloud.correlate import read_log_file, read_reports, run_window, with_host_times
from authprobe.cloud.logs_insights import Window
from authprobe.cloud.pipeline import DiagnosedRun, authorizer_function, diagnose_runs
from authprobe.cloud.replays import Replay, replays_from_checks
from authprobe.commands.options import count
from authprobe.errors import EXIT_FAIL, EXIT_INCOMPLETE, AuthprobeError, ConfigError
from authprobe.report.terminal import Col, fitted_table
from authprobe.store import RunStoreBackend, missing_local_store, open_store

if TYPE_CHECKING:
    from rich.console import Console

DEFAULT_STORE = ".authprobe/runs.sqlite"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_ids", nargs="*", metavar="RUN_ID", help="stored runs (default: every stored run)")
    parser.add_argument("--store", help=f"run store: a SQLite file or postgresql://user@host:port/db (default $AUTHPROBE_STORE or {DEFAULT_STORE})")
    parser.add_argument("--save", action="store_true",
                        help="write the correlated diagnosis back into each stored run's report")
    parser.add_argument("--report", action="append", default=[], metavar="FILE.json",
                        help="a JSON report (or a list of them) instead of stored runs; repeatable")
    parser.add_argument("--iot-log", action="append", default=[], metavar="FILE.jsonl",
                        help="exported AWSIotLogsV2 records, one JSON object per line; repeatable")
    parser.add_argument("--function-log", action="append", default=[], metavar="FILE.jsonl",
                        help="exported authorizer function log lines ({timestamp, message}); repeatable")
    add_cloud_arguments(parser)
    parser.add_argument("--authorizer", help="read this authorizer's function logs (default: the account default)")
    parser.add_argument("--function", help="the authorizer function's name (skips DescribeAuthorizer)")
    parser.add_argument("--checks", metavar="FILE.json", help="cloud-check --json output to use as evidence too")
    add_window_arguments(parser)
    parser.add_argument("--max-concurrent", type=count, default=10, help="Logs Insights queries at once (default 10)")
    parser.add_argument("--events", action="store_true", help="include the matched log events in --json output")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def add_window_arguments(parser: argparse.ArgumentParser) -> None:
    """--skew, --log-delay and --wait: shared with `authprobe report`."""
    parser.add_argument("--skew", type=float, default=None, metavar="SECONDS",
                        help="margin around each run's window (default: 5 around what the host saw; 120 around "
                             "the device's clock for reports without host times)")
    parser.add_argument("--log-delay", type=float, default=None, metavar="SECONDS",
                        help=f"how late the cloud may deliver logs: runs that ended less than this ago and lack "
                             f"records are provisional (default {DEFAULT_LOG_DELAY_S:g}; the stand-in's own delay "
                             "for --cloud local:)")
    parser.add_argument("--wait", action="store_true",
                        help="wait until provisional runs' logs are delivered or --log-delay has passed")


def check_window_arguments(args: argparse.Namespace) -> None:
    for flag, value in (("--skew", args.skew), ("--log-delay", args.log_delay)):
        if value is not None and not value >= 0:
            raise ConfigError(f"{flag} {value}: give a number of seconds, 0 or more")


def store_context(path: str | os.PathLike[str] | None, reports: list[dict[str, Any]],
                  store_ids: list[str] | None) -> tuple[list[dict[str, Any]], list[Replay]]:
    """From the run store (when there is one): stored runs of the same client ids around these
    runs, which keep their own events (`store_ids`: the runs already in the call; None: runs
    from report files, so no neighbours), and the TestInvokeAuthorizer replays authprobe recorded
    in their time."""
    windows = [w for w in (run_window(r) for r in reports) if w.start_ms is not None and w.end_ms is not None]
    if not windows or missing_local_store(path) is not None:
        return [], []
    lo = min(w.start_ms for w in windows) / 1000 - 3600  # type: ignore[type-var]
    hi = max(w.end_ms for w in windows) / 1000 + 3600  # type: ignore[type-var]
    ids = {w.client_id for w in windows if w.client_id}
    neighbours: list[dict[str, Any]] = []
    with open_store(path) as store:
        replays = [r for r in (Replay.from_dict(d) for d in store.list_replays(since=lo, until=hi, client_ids=ids))
                   if r is not None]
        if store_ids is not None:
            known = set(store_ids)
            for row in store.list_runs(since=lo):
                if row["run_id"] in known or row["client_id"] not in ids or row["started_epoch"] > hi:
                    continue
                try:
                    neighbours.append(stored_report(store, row["run_id"]))
                except (AuthprobeError, ValueError):
                    continue  # an unreadable neighbour only loses its claim on its events
    return neighbours, replays


def stored_report(store: RunStoreBackend, run_id: str) -> dict[str, Any]:
    """A stored run's report, with its host receive times from the store when the report lacks them."""
    return with_host_times(store.get_report(run_id), [r["_rx"] for r in store.get_records(run_id)])


def wait_progress(runs: list[DiagnosedRun], left_s: float) -> None:
    """The --wait progress line (stderr, rewritten in place)."""
    missing = sorted({m for r in runs for m in r.joined.awaiting})
    print(f"\rwaiting for logs: {len(runs)} run(s) provisional ({'; '.join(missing)}), at most {left_s:.0f} s more ",
          end="", file=sys.stderr, flush=True)


def load_runs(args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[str], list[str] | None]:
    """Reports, one problem line per unreadable one, and (from the store) their store run ids."""

    if args.report:
        reports, problems = read_reports(args.report)
        if args.run_ids:
            wanted = set(args.run_ids)
            reports = [r for r in reports if r.get("run_id") in wanted]
        return reports, problems, None

    path = missing_local_store(args.store)
    if path is not None:
        raise ConfigError(f"no run store at {path}: run `authprobe run` first, or pass --store / --report")
    store = open_store(args.store)
    reports, problems, store_ids = [], [], []
    try:
        ids = args.run_ids or [r["run_id"] for r in store.list_runs()]
        for ref in ids:
            try:
                run_id = store.resolve(ref)
                reports.append(stored_report(store, run_id))
                store_ids.append(run_id)
            except AuthprobeError as exc:
                problems.append(str(exc))  # one line per bad id; the others are still correlated
    finally:
        store.close()
    return reports, problems, store_ids


def _progress(p: Any) -> None:
    print(f"\rLogs Insights: {p.completed}/{p.planned + p.split} queries done, {p.split} split, "
          f"{p.rows} rows", end="", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    if args.save and args.report:
        # Said before any log is read: a Logs Insights pass over many runs takes minutes.
        raise ConfigError("--save writes into the run store; it cannot be used with --report files")
    check_window_arguments(args)
    reports, problems, store_ids = load_runs(args)
    for p in problems:
        print(f"authprobe: {p}", file=sys.stderr)
    if not reports:
        raise ConfigError("no runs to correlate" + (" (see above)" if problems else ""))
    checks: list[dict[str, Any]] = []
    checked_client = None
    if args.checks:
        try:
            data = json.loads(Path(args.checks).read_text())
            checks, checked_client = list(data["checks"]), data.get("client_id")
            if not all(isinstance(c, dict) for c in checks):
                raise ValueError("each check must be an object")
        except (OSError, ValueError, AttributeError, KeyError, TypeError) as exc:
            raise ConfigError(f"--checks {args.checks}: not cloud-check --json output ({exc})") from None
    neighbours, replays = store_context(args.store, reports, store_ids)
    replays += replays_from_checks(checks)
    cloud = None
    now_ms = _now_ms
    poll_s = 10.0
    function_read = True
    if args.iot_log or args.function_log:
        def events(windows: list[Window]) -> Iterable[LogEvent]:
            wanted = {w.client_id for w in windows}
            return chain(chain.from_iterable(read_log_file(p, client_ids=wanted, source="iot") for p in args.iot_log),
                         chain.from_iterable(read_log_file(p, client_ids=wanted, source="lambda")
                                             for p in args.function_log))
        source = "files"
        log_delay = DEFAULT_LOG_DELAY_S
        function_read = bool(args.function_log)
        files = [*args.iot_log, *args.function_log]

        def now_ms() -> int:
            # An export holds what was delivered when it was written: the oldest file's time.
            try:
                return int(min(os.stat(p).st_mtime for p in files) * 1000)
            except OSError:
                return _now_ms()
        poll_s = 2.0
    else:
        extra = {"max_concurrent": args.max_concurrent, "on_progress": None if args.json else _progress} \
            if args.cloud == "aws" else {}
        cloud = open_cloud(args.cloud, profile=args.profile, region=args.region, **extra)
        function = authorizer_function(cloud, args.authorizer, args.function)
        if function is None:
            print("authprobe: no authorizer named and no default: reading AWS IoT logs only "
                  "(pass --authorizer or --function for the function's logs)", file=sys.stderr)

        def events(windows: list[Window]) -> Iterable[LogEvent]:
            return cloud.log_events(windows, function)
        source = cloud.label
        log_delay = cloud.log_delay_s
        function_read = function is not None
        poll_s = 10.0 if args.cloud == "aws" else 0.5
    log_delay = log_delay if args.log_delay is None else args.log_delay
    waited = []

    def on_wait(runs: list[DiagnosedRun], left_s: float) -> None:
        waited.append(left_s)
        wait_progress(runs, left_s)
    results = diagnose_runs(reports, events, checks=checks, checks_client=checked_client, skew_s=args.skew,
                            keep_passing=args.events or args.save, neighbours=neighbours, replays=replays,
                            log_delay_s=log_delay, function_read=function_read, wait=args.wait, on_wait=on_wait,
                            poll_s=poll_s, now_ms=now_ms)
    if waited:
        print(file=sys.stderr)
    progress = getattr(cloud, "insights_progress", None)
    if progress is not None and not args.json:
        print(file=sys.stderr)
    if progress is not None and progress.truncated:
        problems.append(f"{progress.truncated} Logs Insights window(s) of one second still hit the row limit: "
                        "some log records were not read; correlate fewer runs at once")
        print(f"authprobe: {problems[-1]}", file=sys.stderr)
    out = []
    failing = provisional = 0
    named = {"function": function if cloud is not None else args.function, "region": getattr(cloud, "region", None),
             "account": getattr(cloud, "account", None), "authorizer": args.authorizer}
    for r in results:
        w = r.joined.window
        item = {"run_id": r.report.get("run_id"), "client_id": w.client_id, "verdict": r.report.get("verdict"),
                "window": w.as_dict(), "matched": r.joined.counts(), "nearby": r.joined.nearby_total,
                "provisional": r.provisional, "diagnosis": root_causes.fill_diagnosis(r.diagnosis, **named)}
        if r.provisional:
            item["awaiting"] = r.joined.awaiting
            provisional += 1
        if args.events:
            item["events"] = r.evidence.events
            item["nearby_events"] = r.nearby
        if r.report.get("verdict") != "pass":
            failing += 1
        out.append(item)
    if args.save:
        assert store_ids is not None  # --save without --report: the runs came from the store
        saved = _save(args, store_ids, results, out, source)
        if not args.json:
            print(f"saved the correlated diagnosis into {saved} stored run(s)", file=sys.stderr)
    if args.json:
        print(json.dumps({"schema": "authprobe.correlate/1", "source": source, "log_delay_s": log_delay,
                          "runs": out, "problems": problems}, indent=2))
    else:
        render(out, source, log_delay=log_delay)
    if provisional:
        return EXIT_INCOMPLETE  # not decided yet: the cloud may still deliver what decides it
    return EXIT_FAIL if failing else 0


def _now_ms() -> int:
    return int(time.time() * 1000)


def _save(args: argparse.Namespace, store_ids: list[str], results: list[Any], items: list[dict[str, Any]],
          source: str) -> int:
    store = open_store(args.store)
    try:
        for run_id, r, item in zip(store_ids, results, items, strict=True):
            report = dict(r.report)
            report["correlation"] = {"source": source, "window": item["window"], "matched": item["matched"],
                                     "nearby": item["nearby"], "provisional": item["provisional"]}
            store.save_report(run_id, report)
    finally:
        store.close()
    return len(items)


# Run and client ids go into the next command; the diagnosis cell holds root-cause ids, each whole.
COLUMNS = (Col("run", identifier=True), Col("client id", identifier=True, drop=2), Col("verdict"),
           Col("IoT/fn events", drop=1), Col("diagnosis"))


def render(items: list[dict[str, Any]], source: str, console: Console | None = None, *,
           log_delay: float = DEFAULT_LOG_DELAY_S) -> None:
    from rich.console import Console
    from rich.text import Text

    console = console or Console()
    rows = []
    for it in items:
        m = it["matched"]
        lead = it["diagnosis"][:3]
        diag = "\n".join(f"{d['root_cause']} ({d['confidence']:.2f}{', decided' if d.get('decided') else ''})"
                         for d in lead) or "-"
        counts = f"{m['iot']}/{m['lambda']}" + (f" (+{m['lambda_time_only']} by time)" if m["lambda_time_only"] else "")
        if it.get("nearby"):
            counts += f"; {it['nearby']} nearby, not this run"
        rows.append([str(it["run_id"]), str(it["client_id"]),
                     str(it["verdict"]) + (" (provisional)" if it.get("provisional") else ""), counts, diag])
    console.print(fitted_table(COLUMNS, rows, title=Text(f"correlate ({source}): {len(items)} run(s)")))

    def say(text: str) -> None:
        # One line each, never hard-wrapped: a run id or a fix is copied from here.
        console.print(Text(text), highlight=False, soft_wrap=True)

    for it in items:
        if it.get("provisional"):
            say(f"{it['run_id']}: provisional: {' and '.join(it['awaiting'])} not delivered yet (logs may arrive "
                f"up to {log_delay:g} s after the run); run again later or with --wait")
    timeless = [str(it["run_id"]) for it in items if it["window"]["clock"] == "none"]
    if timeless:
        say(f"not correlated (no device UTC and no host collection time): {', '.join(timeless[:10])}"
            + (" ..." if len(timeless) > 10 else ""))
    for it in items:
        decided = [d for d in it["diagnosis"] if d.get("decided")]
        if decided:
            d = decided[0]
            say(f"{it['run_id']}: {d['root_cause']}: {d['remediation']}")
        elif it["diagnosis"]:
            d = it["diagnosis"][0]
            say(f"{it['run_id']}: undecided; {d['root_cause']} is likeliest, decided by: {d['decided_by']} "
                f"(`authprobe cloud-check` reads most of it)")
