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
    assert results["metrics.iot_connect_auth"].root_cause == "policy-denies-connect"
