"""The AWS backend's newer evidence, call by call with botocore's Stubber against the pinned
botocore models: AWS/IoT authentication metrics over every Protocol series, GetV2LoggingOptions
with event configurations, and Logs Insights over each event type's log group."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.fixtures import cloud_state as cs
from tests.host.test_cloud_aws import stubbed  # noqa: F401 - the fixture

END = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
START = END - timedelta(hours=1)


def _stats(st, metric: str, dimensions: list[dict], value: float | None) -> None:
    points = [] if value is None else [{"Timestamp": START, "Sum": value}]
    st["cloudwatch"].add_response("get_metric_statistics", {"Datapoints": points}, {
        "Namespace": "AWS/IoT", "MetricName": metric, "Dimensions": dimensions, "StartTime": START,
        "EndTime": END, "Period": 3600, "Statistics": ["Sum"]})


def test_iot_metric_adds_up_every_protocol_series(stubbed):  # noqa: F811
    cloud, st = stubbed
    mqtt, http = [{"Name": "Protocol", "Value": "MQTT"}], [{"Name": "Protocol", "Value": "HTTP"}]
    st["cloudwatch"].add_response("list_metrics", {"Metrics": [
        {"Namespace": "AWS/IoT", "MetricName": "Connection.AuthNError", "Dimensions": mqtt},
        {"Namespace": "AWS/IoT", "MetricName": "Connection.AuthNError", "Dimensions": http},
        {"Namespace": "AWS/IoT", "MetricName": "Connection.AuthNError", "Dimensions": []}]},
        {"Namespace": "AWS/IoT", "MetricName": "Connection.AuthNError"})
    _stats(st, "Connection.AuthNError", mqtt, 3.0)
    _stats(st, "Connection.AuthNError", http, 2.0)
    assert cloud.iot_metric("Connection.AuthNError", START, END) == 5.0  # the undimensioned one not again


def test_iot_metric_without_any_series_is_no_data_and_an_empty_series_too(stubbed):  # noqa: F811
    cloud, st = stubbed
    st["cloudwatch"].add_response("list_metrics", {"Metrics": []},
                                  {"Namespace": "AWS/IoT", "MetricName": "Connect.AuthError"})
    assert cloud.iot_metric("Connect.AuthError", START, END) is None
    st["cloudwatch"].add_response("list_metrics", {"Metrics": [
        {"Namespace": "AWS/IoT", "MetricName": "Connect.AuthError", "Dimensions": []}]},
        {"Namespace": "AWS/IoT", "MetricName": "Connect.AuthError"})
    _stats(st, "Connect.AuthError", [], None)
    assert cloud.iot_metric("Connect.AuthError", START, END) is None


def test_iot_metric_pages_through_list_metrics(stubbed):  # noqa: F811
    cloud, st = stubbed
    mqtt = [{"Name": "Protocol", "Value": "MQTT"}]
    st["cloudwatch"].add_response("list_metrics", {"Metrics": [], "NextToken": "p2"},
                                  {"Namespace": "AWS/IoT", "MetricName": "Connection.AuthNError"})
    st["cloudwatch"].add_response("list_metrics", {"Metrics": [
        {"Namespace": "AWS/IoT", "MetricName": "Connection.AuthNError", "Dimensions": mqtt}]},
        {"Namespace": "AWS/IoT", "MetricName": "Connection.AuthNError", "NextToken": "p2"})
    _stats(st, "Connection.AuthNError", mqtt, 1.0)
    assert cloud.iot_metric("Connection.AuthNError", START, END) == 1.0


def test_cloud_check_reads_the_authentication_metrics(stubbed):  # noqa: F811
    from authprobe.cloud import checks
    from authprobe.cloud.device_settings import settings_from_config

    cloud, st = stubbed
    mqtt = [{"Name": "Protocol", "Value": "MQTT"}]
    for metric, value in (("Connection.AuthNError", 4.0), ("Connect.AuthError", 1.0)):
        st["cloudwatch"].add_response("list_metrics", {"Metrics": [
            {"Namespace": "AWS/IoT", "MetricName": metric, "Dimensions": mqtt}]},
            {"Namespace": "AWS/IoT", "MetricName": metric})
        _stats(st, metric, mqtt, value)
    ctx = checks.CheckContext(cloud, settings_from_config(cs.device_config()), window_end=END)
    checks.check_iot_metrics(ctx)
    results = {r.id: r for r in ctx.results}
    assert results["metrics.iot_authn"].status == "warn" and results["metrics.iot_authn"].data["authn_errors"] == 4
    assert "scanners" in results["metrics.iot_authn"].evidence[0]
    connect = results["metrics.iot_connect_auth"]
    assert connect.status == "warn" and connect.root_cause is None and "iot:Connect" in connect.remediation


def _row(message: str, ts: str, ptr: str) -> list[dict]:
    return [{"field": "@timestamp", "value": ts}, {"field": "@message", "value": message},
            {"field": "@ptr", "value": ptr}]


def test_log_events_reads_each_event_type_from_its_configured_log_group(stubbed):  # noqa: F811
    import json

    from botocore.stub import ANY

    from authprobe.cloud.logs_insights import Window

    cloud, st = stubbed
    st["iot"].add_response("get_v2_logging_options", {
        "roleArn": "arn:aws:iam::111122223333:role/IoTLogging", "defaultLogLevel": "ERROR", "disableAllLogs": False,
        "eventConfigurations": [{"eventType": "Connection.AuthNError", "logLevel": "ERROR",
                                 "logDestination": "iot/authn-errors"},
                                {"eventType": "Subscribe", "logLevel": "ERROR", "logDestination": "iot/never-written"}]})
    for group, qid in (("AWSIotLogsV2", "q1"), ("iot/authn-errors", "q2")):
        st["logs"].add_response("start_query", {"queryId": qid}, {
            "logGroupName": group, "startTime": ANY, "endTime": ANY, "queryString": ANY, "limit": 10000})
    st["logs"].add_client_error("start_query", "ResourceNotFoundException", "The specified log group does not exist",
                                400, expected_params={"logGroupName": "iot/never-written", "startTime": ANY,
                                                      "endTime": ANY, "queryString": ANY, "limit": 10000})
    authn = {"timestamp": "2026-11-26 09:10:01.000", "eventType": "Connection.AuthNError", "status": "Failure",
             "reason": "CUSTOM_AUTHORIZER_NOT_FOUND", "sourcePort": 50412}
    st["logs"].add_response("get_query_results", {"status": "Complete", "results": []})
    st["logs"].add_response("get_query_results", {"status": "Complete", "results": [
        _row(json.dumps(authn), "2026-11-26 09:10:01.000", "p1")]})
    start = int(datetime(2026, 11, 26, 9, 10, tzinfo=UTC).timestamp() * 1000)
    events = list(cloud.log_events([Window("dev01", start, start + 60_000)]))
    assert [(e.source, e.fields["eventType"]) for e in events] == [("iot", "Connection.AuthNError")]
    assert events[0].fields["logGroup"] == "iot/authn-errors"
    assert cloud.insights_progress.missing_groups == ["iot/never-written"]


def test_log_events_without_logging_options_reads_awsiotlogsv2_only(stubbed):  # noqa: F811
    from botocore.stub import ANY

    from authprobe.cloud.logs_insights import Window

    cloud, st = stubbed
    st["iot"].add_client_error("get_v2_logging_options", "AccessDeniedException", "no", 403)
    st["logs"].add_response("start_query", {"queryId": "q1"}, {
        "logGroupName": "AWSIotLogsV2", "startTime": ANY, "endTime": ANY, "queryString": ANY, "limit": 10000})
    st["logs"].add_response("get_query_results", {"status": "Complete", "results": []})
    assert list(cloud.log_events([Window("dev01", 1_000_000, 1_060_000)])) == []


def test_cloud_check_reads_event_configurations_verbosely_and_gives_the_command(stubbed):  # noqa: F811
    from authprobe.cloud import checks
    from authprobe.cloud.device_settings import settings_from_config

    cloud, st = stubbed
    st["iot"].add_response("get_v2_logging_options", {
        "roleArn": "arn:aws:iam::111122223333:role/IoTLogging", "defaultLogLevel": "ERROR", "disableAllLogs": False,
        "eventConfigurations": [{"eventType": "Connect", "logLevel": "ERROR"},
                                {"eventType": "Connection.AuthNError", "logLevel": "DISABLED"},
                                {"eventType": "Ping", "logLevel": "DISABLED"},
                                {"eventType": "Subscribe", "logLevel": "ERROR", "logDestination": "iot/subscribe"},
                                {"eventType": "Publish-In", "logLevel": "ERROR"}]},
        {"verbose": True})
    st["iot"].add_response("list_v2_logging_levels", {"logTargetConfigurations": []}, {})
    ctx = checks.CheckContext(cloud, settings_from_config(cs.device_config()), window_end=END)
    checks.check_logging(ctx)
    events = next(r for r in ctx.results if r.id == "logging.events")
    assert events.status == "warn"
    assert events.data["events"]["Connection.AuthNError"] == {"level": "DISABLED", "log_group": "AWSIotLogsV2",
                                                              "logged": False}
    assert "Subscribe: ERROR to iot/subscribe" in events.evidence
    assert any("allowed to write to iot/subscribe" in e for e in events.evidence)
    command = events.data["command"]
    assert command.startswith("aws iot set-v2-logging-options --role-arn arn:aws:iam::111122223333:role/IoTLogging "
                              "--default-log-level ERROR --event-configurations ")
    assert "eventType=Connection.AuthNError,logLevel=ERROR" in command
    assert "eventType=Ping,logLevel=DISABLED" in command  # kept as it was
    assert "eventType=Subscribe,logLevel=ERROR,logDestination=iot/subscribe" in command
