"""CloudWatch Logs Insights for correlation at fleet scale.

Devices are batched into few queries (a query names many client ids, never one query per device),
a query that hits its row limit is split into two half windows and re-run, results are polled with
backoff, and no more than `max_concurrent` queries run at once (the account-wide Insights limit is
shared with everyone else in the account)."""

from __future__ import annotations

import json
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from authprobe.aws.authn_error import EVENT_TYPE as AUTHN_EVENT_TYPE
from authprobe.aws.lambda_logs import FAILURE_PATTERN, SLOW_REPORT_FILTER
from authprobe.errors import CloudError

MAX_QUERY_CHARS = 10_000      # StartQuery queryString limit
DEFAULT_ROW_LIMIT = 10_000    # StartQuery `limit` default; a result this long may be truncated
DEFAULT_MAX_CONCURRENT = 10   # well under every documented account limit (20..100)
FINISHED_BAD = ("Failed", "Cancelled", "Timeout", "Unknown")



@dataclass
class Window:
    """One device's stretch of time: client id and the run's window in epoch ms (skew included)."""

    client_id: str
    start_ms: int
    end_ms: int


@dataclass
class QuerySpec:
    log_group: str
    query: str
    start_s: int
    end_s: int
    batch: int  # index of the batch it serves (progress, tests)
    splits: int = 0
    optional: bool = False  # a log group that may not exist yet (an event type's own destination)


@dataclass
class Progress:
    planned: int = 0
    started: int = 0
    completed: int = 0
    split: int = 0
    rows: int = 0
    throttled: int = 0
    truncated: int = 0  # one-second windows still at the row limit: some rows were not returned
    missing_groups: list[str] = field(default_factory=list)  # optional log groups that do not exist
    queries: list[str] = field(default_factory=list)


def _quote(client_id: str) -> str:
    return json.dumps(client_id)


def iot_query(client_ids: list[str], limit: int) -> str:
    ids = ", ".join(_quote(c) for c in client_ids)
    # Refusals before MQTT (SNI, domain configuration) carry no client id; correlation matches
    # them by time to runs that failed in TLS or the transport. AuthNError entries and HTTPS
    # publishes carry none either: correlation matches them by source port, SNI and time.
    return (f"fields @timestamp, @message | filter clientId in [{ids}] or (eventType = \"Connect\" and "
            f"status = \"Failure\" and not ispresent(clientId)) or eventType = \"{AUTHN_EVENT_TYPE}\" or "
            f"(eventType = \"Publish-In\" and protocol = \"HTTP\") | sort @timestamp asc | limit {limit}")


def _regex_escape(client_id: str) -> str:
    return re.escape(client_id).replace("/", r"\/")


# Characters a client id is made of (AWS IoT thing names and the usual client ids): a mention of
# `tray-1` must not be followed or preceded by one, or it is part of `tray-10` or `factory:tray-1`.
_ID_CHAR = "A-Za-z0-9:_-"
_MENTION = f"(^|[^{_ID_CHAR}])({{}})([^{_ID_CHAR}]|$)"


def function_query(client_ids: list[str], limit: int) -> str:
    alternatives = "|".join(_regex_escape(c) for c in client_ids)
    mention = f" or @message like /{_MENTION.format(alternatives)}/" if alternatives else ""
    # @logStream: lines a function prints carry no request id; within one stream (one execution
    # environment) they belong to the invocation in progress. Slow invocations too: a function whose
    # own timeout is over 5 s runs past IoT's wait and writes no timeout line; only its REPORT (text
    # or JSON) shows the duration.
    return (f"fields @timestamp, @message, @requestId, @logStream | filter @message like /{FAILURE_PATTERN}/ "
            f"or {SLOW_REPORT_FILTER}{mention} | sort @timestamp asc | limit {limit}")


def plan_batches(windows: Iterable[Window], *, query: Callable[[list[str], int], str] = iot_query,
                 row_limit: int = DEFAULT_ROW_LIMIT, max_span_ms: int = 6 * 3600_000,
                 max_chars: int = MAX_QUERY_CHARS) -> list[tuple[list[str], int, int]]:
    """Group windows into (client ids, start_ms, end_ms) batches: consecutive in time, each query
    under the size limit, each batch spanning at most max_span_ms so one query never scans days."""
    batches: list[tuple[list[str], int, int]] = []
    ids: list[str] = []
    seen: set[str] = set()
    start = end = 0
    base = len(query([], row_limit)) + len(_MENTION) + 16  # the mention clause, once there are ids
    size = base
    for w in sorted(windows, key=lambda w: w.start_ms):
        cost = len(_quote(w.client_id)) + 2 + len(_regex_escape(w.client_id)) - len(w.client_id)
        if ids and (size + cost > max_chars or max(end, w.end_ms) - start > max_span_ms):
            batches.append((ids, start, end))
            ids, seen, size = [], set(), base
        if not ids:
            start, end = w.start_ms, w.end_ms
        if w.client_id not in seen:
            seen.add(w.client_id)
            ids.append(w.client_id)
            size += cost
        end = max(end, w.end_ms)
    if ids:
        batches.append((ids, start, end))
    return batches


def _rows(results: list[list[dict[str, str]]]) -> list[dict[str, str]]:
    return [{cell["field"]: cell.get("value", "") for cell in row} for row in results]


class InsightsRunner:
    """Runs QuerySpecs with bounded concurrency, backoff polling and row-limit splitting."""

    def __init__(self, logs_client: Any, *, max_concurrent: int = DEFAULT_MAX_CONCURRENT,
                 row_limit: int = DEFAULT_ROW_LIMIT, poll_initial_s: float = 0.5, poll_max_s: float = 5.0,
                 query_timeout_s: float = 900.0, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic,
                 on_progress: Callable[[Progress], None] | None = None):
        self.client = logs_client
        self.max_concurrent = max(1, max_concurrent)
        self.row_limit = row_limit
        self.poll_initial_s = poll_initial_s
        self.poll_max_s = poll_max_s
        self.query_timeout_s = query_timeout_s
        self.sleep = sleep
        self.clock = clock
        self.on_progress = on_progress
        self.progress = Progress()

    def _report(self) -> None:
        if self.on_progress:
            self.on_progress(self.progress)

    def _start(self, spec: QuerySpec) -> str | None:
        from botocore.exceptions import ClientError

        try:
            answer = self.client.start_query(logGroupName=spec.log_group, startTime=spec.start_s,
                                             endTime=spec.end_s, queryString=spec.query, limit=self.row_limit)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "LimitExceededException":
                self.progress.throttled += 1
                return None  # the account is at its concurrent-query limit: wait and retry
            if code == "ResourceNotFoundException":
                if spec.optional:
                    raise _MissingGroup(spec.log_group) from None
                if spec.log_group.startswith("/aws/lambda/"):
                    raise CloudError(f"log group {spec.log_group} does not exist in this region: the function has "
                                     "never logged here (never invoked?); check --region and --function") from None
                raise CloudError(f"log group {spec.log_group} does not exist in this region: turn on AWS IoT V2 "
                                 "logging (or check --region), then run the devices again") from None
            raise
        self.progress.started += 1
        self.progress.queries.append(spec.query)
        return answer["queryId"]

    def run(self, specs: Iterable[QuerySpec]) -> Iterator[tuple[QuerySpec, list[dict[str, str]]]]:
        """Yield (spec, rows) per finished query; a split query yields its halves instead."""
        running: dict[str, tuple[QuerySpec, float]] = {}
        try:
            yield from self._run(specs, running)
        finally:
            # Whatever ended the run (an error, Ctrl-C, a caller that stopped reading), queries
            # left running would hold the account's Insights concurrency for up to an hour.
            for query_id in running:
                try:
                    self.client.stop_query(queryId=query_id)
                except Exception:
                    pass

    def _run(self, specs: Iterable[QuerySpec],
             running: dict[str, tuple[QuerySpec, float]]) -> Iterator[tuple[QuerySpec, list[dict[str, str]]]]:
        pending: deque[QuerySpec] = deque(specs)
        self.progress.planned += len(pending)
        delay = self.poll_initial_s
        refused_since: float | None = None
        self._report()
        while pending or running:
            while pending and len(running) < self.max_concurrent:
                spec = pending[0]
                try:
                    query_id = self._start(spec)
                except _MissingGroup:
                    # Nothing was ever written there (no such event yet): no rows, not a failure.
                    pending.popleft()
                    if spec.log_group not in self.progress.missing_groups:
                        self.progress.missing_groups.append(spec.log_group)
                    self.progress.completed += 1
                    continue
                if query_id is None:
                    refused_since = refused_since if refused_since is not None else self.clock()
                    break
                refused_since = None
                pending.popleft()
                running[query_id] = (spec, self.clock())
            if not running:
                if refused_since is not None and self.clock() - refused_since > self.query_timeout_s:
                    raise CloudError("Logs Insights kept refusing new queries (LimitExceeded: other queries in "
                                     "this account use the concurrency limit); try again later or lower "
                                     "--max-concurrent")
                self.sleep(delay)
                delay = min(delay * 2, self.poll_max_s)
                continue
            self.sleep(delay)
            progressed = False
            for query_id, (spec, started) in list(running.items()):
                answer = self.client.get_query_results(queryId=query_id)
                status = answer.get("status")
                if status == "Complete":
                    progressed = True
                    del running[query_id]
                    rows = _rows(answer.get("results", []))
                    if len(rows) >= self.row_limit and spec.end_s > spec.start_s:
                        pending.extend(self._halves(spec))
                        self.progress.split += 1
                    else:
                        if len(rows) >= self.row_limit:
                            self.progress.truncated += 1
                        self.progress.completed += 1
                        self.progress.rows += len(rows)
                        yield spec, rows
                elif status in FINISHED_BAD:
                    del running[query_id]
                    raise CloudError(f"Logs Insights query on {spec.log_group} ended {status}; try a shorter "
                                     "window or fewer runs")
                elif self.clock() - started > self.query_timeout_s:
                    raise CloudError(f"Logs Insights query on {spec.log_group} ran over "
                                     f"{self.query_timeout_s:.0f} s; try a shorter window")
            # Back off while nothing finishes; poll briskly again once results come in.
            delay = self.poll_initial_s if progressed else min(delay * 2, self.poll_max_s)
            self._report()
        self._report()

    @staticmethod
    def _halves(spec: QuerySpec) -> list[QuerySpec]:
        mid = (spec.start_s + spec.end_s) // 2
        return [QuerySpec(spec.log_group, spec.query, spec.start_s, mid, spec.batch, spec.splits + 1, spec.optional),
                QuerySpec(spec.log_group, spec.query, mid + 1, spec.end_s, spec.batch, spec.splits + 1,
                          spec.optional)]


class _MissingGroup(Exception):
    pass


def build_specs(windows: list[Window], function_log_group: str | None, iot_log_group: str | list[str],
                row_limit: int = DEFAULT_ROW_LIMIT) -> list[QuerySpec]:
    """Queries for the IoT log group(s) and (if known) the authorizer function's log group. With
    event-level logging an event type may go to a group of its own: every group is queried the same
    way; all but the first (AWSIotLogsV2) may not exist yet."""
    specs: list[QuerySpec] = []
    groups = [iot_log_group] if isinstance(iot_log_group, str) else list(iot_log_group)
    for i, (ids, start, end) in enumerate(plan_batches(windows, query=iot_query, row_limit=row_limit)):
        for n, group in enumerate(groups):
            specs.append(QuerySpec(group, iot_query(ids, row_limit), start // 1000, -(-end // 1000), i,
                                   optional=n > 0))
    if function_log_group:
        for i, (ids, start, end) in enumerate(plan_batches(windows, query=function_query, row_limit=row_limit)):
            specs.append(QuerySpec(function_log_group, function_query(ids, row_limit), start // 1000,
                                   -(-end // 1000), i))
    return specs
