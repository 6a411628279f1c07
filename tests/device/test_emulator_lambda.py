"""The stand-in's Lambda runtime on its own: real worker processes running user handlers, their
log group lines and metrics, init failures, warm reuse."""

from __future__ import annotations

import re

import pytest

from authprobe.emulator.cloud_records import CloudRecords
from authprobe.emulator.config import config_from_dict
from authprobe.emulator.lambda_runtime import LambdaService
from tests.fixtures.emulator import HANDLERS


@pytest.fixture
def service(tmp_path):
    (tmp_path / "broken.py").write_text("import no_such_module_here\n")
    (tmp_path / "odd.py").write_text("def handler(e, c):\n    return {1, 2}\n\ndef other(e, c):\n    return 1\n")
    data = {"endpoint": "e", "state_dir": "state", "functions": {
        "logger": {"handler": f"{HANDLERS.as_posix()}:logging_handler"},
        "broken": {"handler": "broken.py:handler"},
        "missing": {"handler": "odd.py:nothing"},
        "unjson": {"handler": "odd.py:handler"},
    }}
    cfg = config_from_dict(data, tmp_path)
    svc = LambdaService(cfg, CloudRecords(cfg))
    yield svc
    svc.close()


def _log(service, name):
    import json

    path = service.config.state_dir / "logs" / "lambda" / f"{name}.jsonl"
    return [json.loads(line)["message"] for line in path.read_text().splitlines()]


EVENT = {"protocolData": {"mqtt": {"clientId": "dev01"}}, "signatureVerified": False}


def test_logging_lines_carry_level_time_and_request_id(service):
    result = service.runtime("logger").invoke(EVENT)
    assert result.status == "ok" and result.payload["principalId"] == "logger"
    lines = _log(service, "logger")
    assert re.fullmatch(rf"\[INFO\]\t\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z\t{result.request_id}\t"
                        r"checking client dev01", next(m for m in lines if m.startswith("[INFO]")))


def test_environment_stays_warm(service):
    runtime = service.runtime("logger")
    first = runtime.invoke(EVENT)
    pids = {env.proc.pid for env in runtime._all}
    second = runtime.invoke(EVENT)
    assert first.request_id != second.request_id
    assert {env.proc.pid for env in runtime._all} == pids
    lines = _log(service, "logger")
    assert sum(m.startswith("INIT_START") for m in lines) == 1
    reports = [m for m in lines if m.startswith("REPORT")]
    assert len(reports) == 2 and "Init Duration" in reports[0] and "Init Duration" not in reports[1]


@pytest.mark.parametrize("name, error_type", [
    ("broken", "Runtime.ImportModuleError"),
    ("missing", "Runtime.HandlerNotFound"),
    ("unjson", "Runtime.MarshalError"),
])
def test_failures_are_errors_with_lambda_names(service, name, error_type):
    result = service.runtime(name).invoke(EVENT)
    assert result.status == "error" and result.error["errorType"] == error_type
    assert any(m.startswith(f"[ERROR] {error_type}") for m in _log(service, name))
    metrics = (service.config.state_dir / "metrics.jsonl").read_text()
    assert '"metric":"Errors"' in metrics and '"value":1.0' in metrics


def test_unknown_function_has_no_runtime(service):
    assert service.runtime("nope") is None
