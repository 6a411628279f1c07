"""`authprobe emulate` as a user runs it, and TestInvokeAuthorizer against the stand-in."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import pytest
from botocore.exceptions import ClientError

from authprobe.emulator import invoke_authorizer
from tests.fixtures.emulator import (
    ENDPOINT,
    ROOT,
    lambda_log,
    metric_sum,
    sign,
    standard_config,
    start_emulator,
)
from tests.fixtures.processes import popen_as_from_a_terminal

AUTHPROBE = [sys.executable, "-m", "authprobe.cli"]


def _start_cli(config) -> tuple[subprocess.Popen, list[str]]:
    proc = popen_as_from_a_terminal([*AUTHPROBE, "emulate", "--config", str(config)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
    lines: list[str] = []
    deadline = time.monotonic() + 20
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if "stop with Ctrl-C" in line:
            return proc, lines
    proc.kill()
    proc.wait()
    raise AssertionError(f"no ready line; got {lines} / {proc.stderr.read() if proc.stderr else ''}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_emulate_prints_where_it_listens_and_stops_cleanly(tmp_path, sig):
    config = standard_config(tmp_path)
    proc, lines = _start_cli(config)
    try:
        listen = next(line for line in lines if "stands for 443" in line)
        port = int(listen.split()[1].rsplit(":", 1)[1])
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        ca_line = next(line for line in lines if line.strip().startswith("trust CA"))
        assert str(tmp_path / "state" / "ca.pem") in ca_line
        assert ENDPOINT in lines[0]
        proc.send_signal(sig)
        assert proc.wait(10) == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace('function = "auth"\ntoken_key_name = "token"\npublic_keys',
                         'function = "typo"\ntoken_key_name = "token"\npublic_keys'), "no [functions.typo]"),
    (lambda t: t.replace("token-signing-pub.pem", "no-such-key.pem"), "cannot read public key"),
    (lambda t: t + "\n[[broken\n", "is not valid TOML"),
])
def test_bad_config_stops_with_one_clear_message(tmp_path, edit, message):
    config = standard_config(tmp_path)
    config.write_text(edit(config.read_text()))
    proc = subprocess.run([*AUTHPROBE, "emulate", "--config", str(config)], capture_output=True, text=True,
                          timeout=30, cwd=ROOT)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert proc.stderr.count("authprobe:") == 1
    assert "Traceback" not in proc.stderr


# -- TestInvokeAuthorizer ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    emulator = start_emulator(standard_config(tmp_path_factory.mktemp("invoke")))
    yield emulator
    emulator.close()


def test_invoke_allows_with_aws_response_shape(emu):
    out = invoke_authorizer(emu, "DeviceAuth", token="allow", token_signature=sign("allow"),
                                 mqtt_context={"username": "dev01", "password": b"pw", "clientId": "dev01"},
                                 tls_context={"serverName": ENDPOINT})
    assert out["isAuthenticated"] is True and out["principalId"] == "testprincipal"
    assert isinstance(out["policyDocuments"][0], str)
    assert out["refreshAfterInSeconds"] == 3600 and out["disconnectAfterInSeconds"] == 86400


def test_invoke_denied_is_a_normal_answer(emu):
    out = invoke_authorizer(emu, "NoSign", token="deny")
    assert out["isAuthenticated"] is False


@pytest.mark.parametrize("name, kwargs, code", [
    ("Nope", {"token": "allow"}, "ResourceNotFoundException"),
    ("DeviceAuth", {"token": "allow", "token_signature": sign("other")}, "InvalidRequestException"),
    ("NoSign", {"token": "badprincipal"}, "InvalidResponseException"),
    ("NoPerm", {"token": "allow"}, "UnauthorizedException"),
])
def test_invoke_errors_are_client_errors(emu, name, kwargs, code):
    with pytest.raises(ClientError) as err:
        invoke_authorizer(emu, name, **kwargs)
    assert err.value.response["Error"]["Code"] == code
    assert err.value.operation_name == "TestInvokeAuthorizer"


def test_invoke_from_state_dir_runs_the_function_in_its_own_pool(emu):
    before = metric_sum(emu, "auth", "Invocations")
    out = invoke_authorizer(emu.state_dir, "NoSign", token="allow")
    assert out["isAuthenticated"] is True
    assert metric_sum(emu, "auth", "Invocations") == before + 1
    assert any(m.startswith("START RequestId") for m in lambda_log(emu, "auth"))


def test_close_leaves_no_threads_processes_or_listeners(tmp_path):
    import os
    import threading

    from tests.fixtures.emulator import PahoDevice, username

    threads_before = set(threading.enumerate())
    emu = start_emulator(standard_config(tmp_path))
    device = PahoDevice(emu, "leak01", username("leak01", "allow", None, "NoSign"))
    try:
        assert device.connect() == "connack"
        pids = [env.proc.pid for rt in emu.lambdas._runtimes.values() for env in rt._all]
        assert pids, "the connection must have started a Lambda worker"
    finally:
        device.close()
        emu.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        leftover = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
        if not leftover:
            break
        time.sleep(0.05)
    assert not leftover, leftover
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", emu.port), timeout=1).close()


def test_cloud_json_describes_the_account_in_aws_shapes(emu):
    import json

    data = json.loads((emu.state_dir / "cloud.json").read_text())
    assert data["endpoints"] == {"iot:Data-ATS": ENDPOINT}
    assert data["default_authorizer"] == "DeviceAuth"
    auth = data["authorizers"]["DeviceAuth"]
    assert auth["authorizerArn"] == "arn:aws:iot:us-east-1:111111111111:authorizer/DeviceAuth"
    assert auth["authorizerFunctionArn"] == "arn:aws:lambda:us-east-1:111111111111:function:auth"
    assert auth["tokenKeyName"] == "token" and auth["status"] == "ACTIVE" and auth["signingDisabled"] is False
    assert auth["tokenSigningPublicKeys"]["key1"].startswith("-----BEGIN PUBLIC KEY-----")
    assert auth["creationDate"].endswith("Z")
    assert data["authorizers"]["Inactive"]["status"] == "INACTIVE"
    assert data["authorizers"]["Gone"]["authorizerFunctionArn"].endswith(":function:deleted-function")
    assert "deleted-function" not in data["functions"]
    domain = data["domain_configurations"]["factory"]
    assert (domain["domainName"], domain["authenticationType"], domain["applicationProtocol"]) == (
        "iot.example.com", "CUSTOM_AUTH", "SECURE_MQTT")
    assert domain["authorizerConfig"] == {"defaultAuthorizerName": "NoSign", "allowAuthorizerOverride": False}
    assert data["functions"]["auth"]["Timeout"] == 4
    assert data["functions"]["throttled"]["ReservedConcurrentExecutions"] == 0
    policy = json.loads(data["function_policies"]["auth"])  # GetPolicy returns the policy as a string
    assert policy["Statement"][0]["Principal"] == {"Service": "iot.amazonaws.com"}
    assert "noperm" not in data["function_policies"]
    assert data["logging"]["defaultLogLevel"] == "DEBUG"


def test_listen_override_is_checked(tmp_path):
    config = standard_config(tmp_path)
    proc = subprocess.run([*AUTHPROBE, "emulate", "--config", str(config), "--listen", "127.0.0.1:notaport"],
                          capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert proc.returncode == 2
    assert "--listen: port 'notaport' is not a number 0-65535" in proc.stderr
