"""Logs Insights at fleet scale: devices batched into few queries, a query at its row limit split
into half windows, LimitExceeded retried, polling with backoff, bounded concurrency."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import ANY, Stubber

from authprobe.cloud.aws import AwsCloud
from authprobe.cloud.logs_insights import (
    MAX_QUERY_CHARS,
    InsightsRunner,
    QuerySpec,
    Window,
    build_specs,
    function_query,
    iot_query,
    plan_batches,
)

T0 = 1_795_000_000_000  # epoch ms


def _logs():
    return boto3.session.Session(aws_access_key_id="a", aws_secret_access_key="b",
                                 region_name="eu-west-1").client("logs")


def _row(message: str, ts: str = "2026-11-26 09:10:00.000", ptr: str = "p") -> list[dict]:
    return [{"field": "@timestamp", "value": ts}, {"field": "@message", "value": message}, {"field": "@ptr", "value": ptr}]


def test_thousand_devices_in_an_hour_take_a_handful_of_queries():
    windows = [Window(f"device-{i:04d}", T0 + i * 3600, T0 + i * 3600 + 60_000) for i in range(1000)]
    specs = build_specs(windows, "/aws/lambda/fn", "AWSIotLogsV2")
    assert 2 <= len(specs) <= 12  # never one query per device
    for s in specs:
        assert len(s.query) <= MAX_QUERY_CHARS
    ids_in_iot_queries = sum(s.query.count('"device-') for s in specs if s.log_group == "AWSIotLogsV2")
    assert ids_in_iot_queries == 1000


def test_batches_respect_span_and_keep_ids_once():
    windows = [Window("a", T0, T0 + 1000), Window("a", T0 + 5000, T0 + 6000),
               Window("b", T0 + 10 * 3600_000, T0 + 10 * 3600_000 + 1000)]
    batches = plan_batches(windows, max_span_ms=3600_000)
    assert batches == [(["a"], T0, T0 + 6000), (["b"], T0 + 36_000_000, T0 + 36_001_000)]


def test_queries_quote_ids_safely():
    q = iot_query(['dev"1', "dev/2"], 100)
    assert 'filter clientId in ["dev\\"1", "dev/2"]' in q
    f = function_query(["dev/2", "a.b"], 100)
    assert r"dev\/2" in f and r"a\.b" in f


def test_row_limit_splits_the_window_and_polls_with_backoff():
    client = _logs()
    sleeps: list[float] = []
    runner = InsightsRunner(client, row_limit=2, sleep=sleeps.append, poll_initial_s=0.5, poll_max_s=2)
    spec = QuerySpec("AWSIotLogsV2", "fields @timestamp, @message | limit 2", 100, 200, 0)
    with Stubber(client) as st:
        st.add_response("start_query", {"queryId": "q1"}, {"logGroupName": "AWSIotLogsV2", "startTime": 100,
                                                           "endTime": 200, "queryString": spec.query, "limit": 2})
        st.add_response("get_query_results", {"status": "Running", "results": []}, {"queryId": "q1"})
        st.add_response("get_query_results", {"status": "Running", "results": []}, {"queryId": "q1"})
        st.add_response("get_query_results", {"status": "Complete", "results": [_row("{}", ptr="1"), _row("{}", ptr="2")]},
                        {"queryId": "q1"})
        st.add_response("start_query", {"queryId": "q2"}, {"logGroupName": "AWSIotLogsV2", "startTime": 100,
                                                           "endTime": 150, "queryString": ANY, "limit": 2})
        st.add_response("start_query", {"queryId": "q3"}, {"logGroupName": "AWSIotLogsV2", "startTime": 151,
                                                           "endTime": 200, "queryString": ANY, "limit": 2})
        st.add_response("get_query_results", {"status": "Complete", "results": [_row("{}", ptr="3")]}, {"queryId": "q2"})
        st.add_response("get_query_results", {"status": "Complete", "results": []}, {"queryId": "q3"})
        out = list(runner.run([spec]))
    assert [(s.start_s, s.end_s, len(rows)) for s, rows in out] == [(100, 150, 1), (151, 200, 0)]
    assert runner.progress.split == 1 and runner.progress.started == 3
    assert sleeps[:3] == [0.5, 1.0, 2.0]  # backoff while nothing finishes


def test_limit_exceeded_waits_and_retries():
    client = _logs()
    sleeps: list[float] = []
    runner = InsightsRunner(client, sleep=sleeps.append)
    spec = QuerySpec("AWSIotLogsV2", "fields @message", 1, 2, 0)
    with Stubber(client) as st:
        st.add_client_error("start_query", "LimitExceededException", "too many queries", 400)
        st.add_response("start_query", {"queryId": "q1"})
        st.add_response("get_query_results", {"status": "Complete", "results": []})
        out = list(runner.run([spec]))
    assert len(out) == 1 and runner.progress.throttled == 1 and sleeps


def test_failed_query_is_a_clear_cloud_error():
    from authprobe.errors import CloudError

    client = _logs()
    runner = InsightsRunner(client, sleep=lambda s: None)
    with Stubber(client) as st:
        st.add_response("start_query", {"queryId": "q1"})
        st.add_response("get_query_results", {"status": "Failed", "results": []})
        with pytest.raises(CloudError, match="ended Failed"):
            list(runner.run([QuerySpec("AWSIotLogsV2", "x", 1, 2, 0)]))


class CountingLogs:
    """Records how many queries are in flight; completes each on its second poll."""

    def __init__(self):
        self.running: dict[str, int] = {}
        self.peak = 0
        self.started = 0

    def start_query(self, **kw):
        self.started += 1
        qid = f"q{self.started}"
        self.running[qid] = 0
        self.peak = max(self.peak, len(self.running))
        return {"queryId": qid}

    def get_query_results(self, queryId):
        self.running[queryId] += 1
        if self.running[queryId] >= 2:
            del self.running[queryId]
            return {"status": "Complete", "results": []}
        return {"status": "Running", "results": []}


def test_concurrency_never_exceeds_the_limit():
    fake = CountingLogs()
    runner = InsightsRunner(fake, max_concurrent=3, sleep=lambda s: None)
    specs = [QuerySpec("g", "q", 1, 2, i) for i in range(10)]
    assert len(list(runner.run(specs))) == 10
    assert fake.peak == 3 and fake.started == 10


def test_aws_log_events_parses_rows_and_drops_duplicate_pointers():
    session = boto3.session.Session(aws_access_key_id="a", aws_secret_access_key="b", region_name="eu-west-1")
    logs, iot = session.client("logs"), session.client("iot")
    cloud = AwsCloud(clients={"logs": logs, "iot": iot}, region="eu-west-1", sleep=lambda s: None)
    rec = {"timestamp": "2026-11-26 09:10:01.000", "clientId": "dev01", "eventType": "Connect",
           "status": "Failure", "reason": "AUTHORIZATION_FAILURE"}
    with Stubber(logs) as st, Stubber(iot) as iot_st:
        # Never configured: every event type goes to AWSIotLogsV2.
        iot_st.add_client_error("get_v2_logging_options", "NotConfiguredException", "not configured", 400)
        st.add_response("start_query", {"queryId": "iot"}, {"logGroupName": "AWSIotLogsV2", "startTime": ANY,
                                                            "endTime": ANY, "queryString": ANY, "limit": 10000})
        st.add_response("start_query", {"queryId": "fn"}, {"logGroupName": "/aws/lambda/fn", "startTime": ANY,
                                                           "endTime": ANY, "queryString": ANY, "limit": 10000})
        st.add_response("get_query_results", {"status": "Complete", "results": [_row(json.dumps(rec), ptr="a")]})
        st.add_response("get_query_results", {"status": "Complete", "results": [
            _row("2026-11-26T09:10:06Z 1f0e... Task timed out after 5.00 seconds", "2026-11-26 09:10:06.000", "b"),
            _row("2026-11-26T09:10:06Z 1f0e... Task timed out after 5.00 seconds", "2026-11-26 09:10:06.000", "b")]})
        events = list(cloud.log_events([Window("dev01", T0, T0 + 60_000)], "fn"))
    assert [e.source for e in events] == ["iot", "lambda"]
    assert events[0].client_id == "dev01" and events[0].fields["reason"] == "AUTHORIZATION_FAILURE"
    assert cloud.insights_progress.started == 2


def test_endless_limit_exceeded_gives_up_with_a_clear_message():
    from authprobe.errors import CloudError

    class AlwaysFull:
        def start_query(self, **kw):
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "LimitExceededException", "Message": "full"}}, "StartQuery")

    now = [0.0]

    def sleep(s):
        now[0] += s

    runner = InsightsRunner(AlwaysFull(), sleep=sleep, clock=lambda: now[0], query_timeout_s=60)
    with pytest.raises(CloudError, match="max-concurrent"):
        list(runner.run([QuerySpec("AWSIotLogsV2", "q", 1, 2, 0)]))
    assert runner.progress.throttled > 3


def test_missing_log_groups_are_named():
    from authprobe.errors import CloudError

    client = _logs()
    for group, words in (("AWSIotLogsV2", "V2 logging"), ("/aws/lambda/fn", "never logged")):
        runner = InsightsRunner(client, sleep=lambda s: None)
        with Stubber(client) as st:
            st.add_client_error("start_query", "ResourceNotFoundException", "no group", 400)
            with pytest.raises(CloudError, match=words):
                list(runner.run([QuerySpec(group, "q", 1, 2, 0)]))


def test_progress_is_reported_while_queries_run():
    seen: list[tuple[int, int]] = []
    fake = CountingLogs()
    runner = InsightsRunner(fake, max_concurrent=2, sleep=lambda s: None,
                            on_progress=lambda p: seen.append((p.started, p.completed)))
    list(runner.run([QuerySpec("g", "q", 1, 2, i) for i in range(4)]))
    assert seen[0] == (0, 0) and seen[-1] == (4, 4)
    assert any(0 < done < 4 for _, done in seen)  # reported along the way, not only at the end


class StoppableLogs(CountingLogs):
    """Query q1 fails on its first poll; the others never finish by themselves."""

    def __init__(self):
        super().__init__()
        self.stopped: list[str] = []

    def get_query_results(self, queryId):
        return {"status": "Failed" if queryId == "q1" else "Running", "results": []}

    def stop_query(self, queryId):
        self.stopped.append(queryId)
        return {"success": True}


def test_queries_still_running_are_stopped_when_the_run_ends_early():
    from authprobe.errors import CloudError

    fake = StoppableLogs()
    runner = InsightsRunner(fake, max_concurrent=3, sleep=lambda s: None)
    with pytest.raises(CloudError, match="ended Failed"):
        list(runner.run([QuerySpec("g", "q", 1, 2, i) for i in range(5)]))
    assert sorted(fake.stopped) == ["q2", "q3"]  # the failed one is over already; q4, q5 never started
    fake = StoppableLogs()
    fake.get_query_results = lambda queryId: {"status": "Complete" if queryId == "q2" else "Running", "results": []}
    rows = InsightsRunner(fake, max_concurrent=3, sleep=lambda s: None).run([QuerySpec("g", "q", 1, 2, i)
                                                                             for i in range(3)])
    next(rows)  # a caller (Ctrl-C, an error of its own) stops reading after the first result
    rows.close()
    assert sorted(fake.stopped) == ["q1", "q3"]
