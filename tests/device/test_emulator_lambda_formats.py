"""The stand-in's function logs in Lambda's JSON format (`log_format = "JSON"`): real worker processes,
system events as JSON, a timeout as a report with status timeout and no "Task timed out" line; and the
same records read back through the local backend and diagnosed."""

from __future__ import annotations

import json

import pytest

from authprobe.aws import lambda_logs
from authprobe.emulator.cloud_records import CloudRecords
from authprobe.emulator.config import config_from_dict
from authprobe.emulator.lambda_runtime import LambdaService
from tests.fixtures.emulator import HANDLERS

EVENT = {"protocolData": {"mqtt": {"clientId": "dev01"}}, "signatureVerified": False, "token": "allow"}


@pytest.fixture
def service(tmp_path):
    handler = HANDLERS.as_posix()
    data = {"endpoint": "e", "state_dir": "state", "functions": {
        "json-logger": {"handler": f"{handler}:logging_handler", "log_format": "JSON"},
        "json-token": {"handler": f"{handler}:token_handler", "log_format": "JSON", "timeout_s": 1},
        "text-token": {"handler": f"{handler}:token_handler", "timeout_s": 1},
    }}
    cfg = config_from_dict(data, tmp_path)
    svc = LambdaService(cfg, CloudRecords(cfg))
    yield svc
    svc.close()


def _log(service, name):
    path = service.config.state_dir / "logs" / "lambda" / f"{name}.jsonl"
    return [json.loads(line)["message"] for line in path.read_text().splitlines()]


def test_json_format_writes_platform_events_and_json_application_logs(service):
    result = service.runtime("json-logger").invoke(EVENT)
    assert result.status == "ok"
    lines = _log(service, "json-logger")
    kinds = [json.loads(m).get("type") for m in lines if m.startswith("{")]
    assert kinds[0] == "platform.initStart" and "platform.start" in kinds and kinds[-1] == "platform.report"
    assert not any(m.startswith(("START", "END", "REPORT")) for m in lines)
    app = next(json.loads(m) for m in lines if '"level"' in m)
    assert app["message"] == "checking client dev01" and app["requestId"] == result.request_id
    report = json.loads(lines[-1])["record"]
    assert report["status"] == "success" and report["metrics"]["initDurationMs"] > 0  # a cold start
    assert report["metrics"]["billedDurationMs"] >= report["metrics"]["durationMs"]


def test_json_timeout_is_a_report_with_status_timeout_and_no_task_timed_out_line(service):
    result = service.runtime("json-token").invoke(dict(EVENT, token="sleep"))
    assert result.status == "timeout"
    lines = _log(service, "json-token")
    assert not any("Task timed out" in m for m in lines)
    report = lambda_logs.system_line(lines[-1])
    assert report.kind == "report" and report.timed_out and report.request_id == result.request_id
    assert json.loads(lines[-1])["record"]["errorType"] == "Sandbox.Timedout"


def test_json_error_is_one_json_line_with_the_trace(service):
    result = service.runtime("json-token").invoke(dict(EVENT, token="raise"))
    assert result.status == "error"
    error = next(json.loads(m) for m in _log(service, "json-token") if '"errorType"' in m and '"level"' in m)
    assert error["errorType"] == "KeyError" and error["stackTrace"] and error["requestId"] == result.request_id
    assert json.loads(_log(service, "json-token")[-1])["record"]["status"] == "error"


def test_text_format_keeps_its_lines(service):
    result = service.runtime("text-token").invoke(dict(EVENT, token="sleep"))
    lines = _log(service, "text-token")
    assert any(m.endswith(f"{result.request_id} Task timed out after 1.00 seconds") for m in lines)
    assert lines[-2] == f"END RequestId: {result.request_id}" and "\tStatus: timeout" in lines[-1]


def test_unknown_log_format_is_a_named_problem(tmp_path):
    from authprobe.errors import ConfigError

    (tmp_path / "h.py").write_text("def handler(e, c):\n    return {}\n")
    with pytest.raises(ConfigError, match='log_format must be "Text" or "JSON"'):
        config_from_dict({"endpoint": "e", "functions": {"f": {"handler": "h.py:handler", "log_format": "json"}}},
                         tmp_path)


def test_a_function_slower_than_iot_s_wait_runs_on_and_times_out_nowhere(tmp_path, monkeypatch):
    """AWS IoT waits 5 s (here 0.3 s); the function's own timeout is 3 s and it answers after 1 s."""
    import authprobe.emulator.custom_auth as custom_auth
    from authprobe.emulator.custom_auth import Credentials, CustomAuth

    monkeypatch.setattr(custom_auth, "IOT_AUTHORIZER_WAIT_S", 0.3)
    data = {"endpoint": "e", "state_dir": "state", "functions": {
        "f": {"handler": f"{HANDLERS.as_posix()}:token_handler", "timeout_s": 3,
              "resource_policy": "policy.json"}},
        "authorizers": {"A": {"function": "f", "token_key_name": "token", "signing_disabled": True}}}
    from tests.fixtures.emulator import policy_for

    (tmp_path / "policy.json").write_text(policy_for("*", "f"))
    cfg = config_from_dict(data, tmp_path)
    assert cfg.warnings == []  # 3 s is under IoT's real 5 s
    svc = LambdaService(cfg, CloudRecords(cfg))
    try:
        outcome = CustomAuth(cfg, svc).authenticate(Credentials(authorizer_name="A", params={"token": "nap1"},
                                                                client_id="dev01"))
        assert (outcome.ok, outcome.cause) == (False, "lambda-timeout")
        assert "AWS IoT stopped waiting after 0.30 seconds" in outcome.details
        assert svc.runtime("f").wait_idle(10)
    finally:
        svc.close()
    path = cfg.state_dir / "logs" / "lambda" / "f.jsonl"
    lines = [json.loads(line)["message"] for line in path.read_text().splitlines()]
    report = lambda_logs.system_line(lines[-1])
    assert report.kind == "report" and report.duration_ms >= 1000 and not report.timed_out
    assert not any("Task timed out" in m for m in lines)
    metrics = [json.loads(line) for line in (cfg.state_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["value"] for m in metrics if m["metric"] == "Errors"] == [0.0]
    streams = {json.loads(line).get("logStream") for line in path.read_text().splitlines()}
    assert len(streams) == 1 and next(iter(streams)).count("/[$LATEST]") == 1
