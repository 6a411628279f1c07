"""cloud-check's checks against fixture state directories in the stand-in's documented layout: each
broken piece of wiring gives a fail naming its root cause, a healthy account passes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from authprobe import cli
from authprobe.cloud import checks
from authprobe.cloud.device_settings import settings_from_config
from authprobe.cloud.local import LocalCloud
from authprobe.errors import CloudError
from tests.fixtures import cloud_state as cs

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)


def allow_all_invoke(state_dir, name, **request):
    return {"isAuthenticated": True, "principalId": "dev01", "refreshAfterInSeconds": 300,
            "disconnectAfterInSeconds": 3600, "policyDocuments": [json.dumps({
                "Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": "iot:Connect",
                     "Resource": f"arn:aws:iot:{cs.REGION}:{cs.ACCOUNT}:client/{cs.CLIENT_ID}"},
                    {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
                     "Resource": f"arn:aws:iot:{cs.REGION}:{cs.ACCOUNT}:topic/{cs.TOPIC}"},
                    {"Effect": "Allow", "Action": "iot:Subscribe",
                     "Resource": f"arn:aws:iot:{cs.REGION}:{cs.ACCOUNT}:topicfilter/{cs.TOPIC}"}]})]}


def run(tmp_path, cloud=None, device=None, replay=False, test_invoke=None, **state):
    state_dir = cs.write_state(tmp_path, cloud, **state)
    ctx = checks.CheckContext(LocalCloud(state_dir, test_invoke=test_invoke),
                              settings_from_config(device or cs.device_config()),
                              window_end=NOW, replay=replay)
    results = checks.run_checks(ctx)
    return {r.id: r for r in results}, ctx


def failed(results):
    return {r.root_cause for r in results.values() if r.status == "fail"}


def test_healthy_account_has_no_failures(tmp_path):
    results, ctx = run(tmp_path, metrics=[cs.metric("Invocations", 3, NOW_MS - 60_000),
                                          cs.metric("Duration", 120, NOW_MS - 60_000, "Milliseconds")])
    assert failed(results) == set()
    assert results["signature.verifies"].status == "pass"
    assert results["function.permission"].status == "pass"
    assert results["metrics.duration"].status == "pass"
    assert ctx.authorizer["authorizerName"] == cs.AUTHORIZER


def test_unknown_authorizer(tmp_path):
    results, _ = run(tmp_path, device=cs.device_config(**{"auth.authorizer": "Nope"}))
    assert results["authorizer.exists"].status == "fail"
    assert results["authorizer.exists"].root_cause == "authorizer-unknown"


def test_no_name_and_no_default_authorizer(tmp_path):
    results, _ = run(tmp_path, device=cs.device_config(**{"auth.authorizer": None}))
    assert failed(results) == {"authorizer-unknown"}


def test_default_authorizer_used_when_device_names_none(tmp_path):
    cloud = cs.healthy_cloud()
    cloud["default_authorizer"] = cs.AUTHORIZER
    results, _ = run(tmp_path, cloud, device=cs.device_config(**{"auth.authorizer": None}))
    assert results["authorizer.exists"].status == "pass"
    assert "default" in results["authorizer.exists"].evidence[0]


def test_inactive_authorizer(tmp_path):
    cloud = cs.healthy_cloud()
    cloud["authorizers"][cs.AUTHORIZER]["status"] = "INACTIVE"
    results, _ = run(tmp_path, cloud)
    assert failed(results) == {"authorizer-inactive"}
    assert "update-authorizer" in results["authorizer.status"].remediation


def test_function_missing(tmp_path):
    cloud = cs.healthy_cloud()
    cloud["functions"] = {}
    results, _ = run(tmp_path, cloud)
    assert failed(results) == {"authorizer-function-missing"}


@pytest.mark.parametrize("policy", [
    None,
    cs.permission_policy(source_arn=f"arn:aws:iot:{cs.REGION}:{cs.ACCOUNT}:authorizer/Other"),
    cs.permission_policy(account="999999999999"),
    cs.permission_policy(principal="apigateway.amazonaws.com"),
])
def test_permission_missing_or_naming_another_authorizer(tmp_path, policy):
    cloud = cs.healthy_cloud()
    if policy is None:
        cloud["function_policies"] = {}
    else:
        cloud["function_policies"] = {cs.FUNCTION: json.dumps(policy)}
    results, _ = run(tmp_path, cloud)
    assert failed(results) == {"lambda-permission-missing"}
    assert "aws lambda add-permission" in results["function.permission"].remediation
    assert cs.AUTHORIZER_ARN in results["function.permission"].remediation


def test_token_key_name_mismatch(tmp_path):
    results, _ = run(tmp_path, device=cs.device_config(**{"auth.token_key_name": "tok"}))
    assert failed(results) == {"token-key-name-mismatch"}
    assert 'token_key_name = "token"' in results["authorizer.token_key_name"].remediation


def test_signature_missing(tmp_path):
    results, _ = run(tmp_path, device=cs.device_config(**{"auth.signature": None}))
    assert failed(results) == {"signature-missing"}


def test_signature_invalid(tmp_path):
    other = cs.signature(key=cs.rsa_key(2048, 1))
    results, _ = run(tmp_path, device=cs.device_config(**{"auth.signature": other}))
    assert failed(results) == {"signature-invalid"}


def test_signature_not_urlencoded_in_username(tmp_path):
    sig = cs.signature()
    raw = sig if any(c in sig for c in "+/=") else sig + "="
    user = f"probe?x-amz-customauthorizer-name={cs.AUTHORIZER}&x-amz-customauthorizer-signature={raw}&token={cs.TOKEN}"
    results, _ = run(tmp_path, device=cs.device_config(**{"auth.username": user}))
    assert "signature-not-urlencoded" in failed(results)


def test_sni_mismatch_and_domain_configuration(tmp_path):
    results, _ = run(tmp_path, device=cs.device_config(**{"endpoint.host": "wrong-ats.iot.eu-west-1.amazonaws.com"}))
    assert failed(results) == {"sni-mismatch"}
    assert cs.ENDPOINT in results["endpoint.sni"].remediation
    results, _ = run(tmp_path, device=cs.device_config(**{"endpoint.host": "a1b2c3d4e5f6g7-ats.iot.us-west-2.amazonaws.com"}))
    assert any("--region us-west-2" in e for e in results["endpoint.sni"].evidence)
    cloud = cs.healthy_cloud()
    cloud["domain_configurations"] = {"probe": {
        "domainConfigurationName": "probe", "domainName": "iot.example.com", "domainConfigurationStatus": "ENABLED",
        "authenticationType": "AWS_X509", "applicationProtocol": "SECURE_MQTT"}}
    results, _ = run(tmp_path, cloud, device=cs.device_config(**{"endpoint.host": "iot.example.com",
                                                                   "endpoint.custom_domain": True}))
    assert results["endpoint.sni"].status == "pass"
    assert results["endpoint.domain"].status == "fail"


def test_an_ip_address_as_host_sends_no_sni(tmp_path):
    results, _ = run(tmp_path, device=cs.device_config(**{"endpoint.host": "52.1.2.3"}))
    r = results["endpoint.sni"]
    assert (r.status, r.root_cause) == ("fail", "sni-missing")
    assert "connect_address" in r.remediation


def test_mqtt_on_default_endpoint_warns_about_alpn(tmp_path):
    results, _ = run(tmp_path, device=cs.device_config(**{"device.transport": "mqtt"}))
    assert results["endpoint.alpn"].status == "warn"
    assert results["endpoint.alpn"].root_cause == "alpn-missing"


def test_fixes_name_the_real_function_log_group(tmp_path):
    results, _ = run(tmp_path, metrics=[cs.metric("Invocations", 4, NOW_MS - 60_000),
                                        cs.metric("Errors", 2, NOW_MS - 60_000)])
    errors = next(r for r in results.values() if r.root_cause == "lambda-error" and r.status == "fail")
    assert f"/aws/lambda/{cs.FUNCTION}" in errors.remediation and "/aws/lambda/FN" not in errors.remediation


def test_fill_puts_known_names_in_and_leaves_the_rest():
    from authprobe import root_causes

    text = root_causes.get("lambda-permission-missing").remediation
    filled = root_causes.fill(text, function="auth-fn", authorizer="DeviceAuth")
    assert "--function-name auth-fn" in filled and "authorizer/DeviceAuth" in filled
    assert "arn:aws:iot:REGION:ACCOUNT:" in filled  # unknown: still the placeholder
    assert root_causes.fill("NAMES and FNORD", function="x", authorizer="y") == "NAMES and FNORD"


def test_auto_transport_never_warns_about_alpn(tmp_path):
    """`auto` sends MQTT only with ALPN 'mqtt' and MQTT over WebSockets otherwise: nothing to warn."""
    results, _ = run(tmp_path, device=cs.device_config(**{"device.transport": "auto"}))
    assert results["endpoint.alpn"].status == "pass"
    assert "ALPN" in " ".join(results["endpoint.alpn"].evidence)
    cloud = cs.healthy_cloud()
    cloud["domain_configurations"] = {"probe": {
        "domainConfigurationName": "probe", "domainName": "iot.example.com", "domainConfigurationStatus": "ENABLED",
        "authenticationType": "DEFAULT", "applicationProtocol": "DEFAULT"}}
    for transport, status in (("auto", "pass"), ("mqtt", "warn")):
        results, _ = run(tmp_path, cloud, device=cs.device_config(**{"endpoint.host": "iot.example.com",
                                                                       "endpoint.custom_domain": True,
                                                                       "device.transport": transport}))
        assert results["endpoint.domain"].status == status, transport


def test_metrics_errors_timeouts_and_no_invocations(tmp_path):
    results, _ = run(tmp_path, metrics=[cs.metric("Invocations", 4, NOW_MS - 60_000),
                                        cs.metric("Errors", 2, NOW_MS - 60_000),
                                        cs.metric("Duration", 5000.0, NOW_MS - 30_000, "Milliseconds")])
    assert failed(results) == {"lambda-error", "lambda-timeout"}
    # Outside the window counts for nothing: no invocations is a warning with its data.
    results, _ = run(tmp_path, metrics=[cs.metric("Invocations", 4, NOW_MS - 3 * 3600_000)])
    assert results["metrics.invocations"].status == "warn"
    assert results["metrics.invocations"].data["invocations"] == 0


def test_duration_is_judged_against_the_functions_own_timeout_when_it_is_shorter(tmp_path):
    """Lambda's default timeout is 3 s: a function cut off there times out before AWS IoT's 5 s."""
    cloud = cs.healthy_cloud()
    fn = next(iter(cloud["functions"].values()))
    fn["Timeout"] = 2
    results, _ = run(tmp_path, cloud, metrics=[cs.metric("Invocations", 1, NOW_MS - 60_000),
                                               cs.metric("Errors", 1, NOW_MS - 60_000),
                                               cs.metric("Duration", 2000.0, NOW_MS - 30_000, "Milliseconds")])
    r = results["metrics.duration"]
    assert (r.status, r.root_cause, r.data["limit_ms"]) == ("fail", "lambda-timeout", 2000)
    # The same duration under a 5 s function timeout is well inside the limit.
    fn["Timeout"] = 30
    results, _ = run(tmp_path, cloud, metrics=[cs.metric("Duration", 2000.0, NOW_MS - 30_000, "Milliseconds")])
    assert results["metrics.duration"].status == "pass"
    assert results["metrics.duration"].data["limit_ms"] == 5000


def test_logging_off_gives_the_exact_debug_command(tmp_path):
    cloud = cs.healthy_cloud()
    cloud["logging"] = {"defaultLogLevel": "ERROR", "disableAllLogs": False}
    results, _ = run(tmp_path, cloud)
    r = results["logging.v2"]
    assert r.status == "warn"
    assert ("aws iot set-v2-logging-level --log-target targetType=CLIENT_ID,"
            f"targetName={cs.CLIENT_ID} --log-level DEBUG") in r.remediation
    cloud["logging_levels"] = [{"logTarget": {"targetType": "CLIENT_ID", "targetName": cs.CLIENT_ID},
                                "logLevel": "DEBUG"}]
    results, _ = run(tmp_path, cloud)
    assert results["logging.v2"].status == "pass"


def test_replay_denied_and_invalid_response(tmp_path):
    def denied(state_dir, name, **request):
        assert request["token"] == cs.TOKEN and request["tls_context"] == {"serverName": cs.ENDPOINT}
        assert request["http_context"]["headers"]["token"] == cs.TOKEN
        return {"isAuthenticated": False, "principalId": "x", "policyDocuments": []}

    results, _ = run(tmp_path, replay=True, test_invoke=denied)
    assert results["replay.invoke"].root_cause == "authorizer-denied"
    assert results["replay.invoke"].status == "fail"

    def bad_principal(state_dir, name, **request):
        return {"isAuthenticated": True, "principalId": "dev-01!", "policyDocuments": [],
                "refreshAfterInSeconds": 10}

    results, _ = run(tmp_path, replay=True, test_invoke=bad_principal)
    assert results["replay.response"].root_cause == "lambda-response-invalid"
    assert len(results["replay.response"].evidence) == 2  # principalId and refreshAfterInSeconds


def test_replay_error_codes_name_their_cause(tmp_path):
    from botocore.exceptions import ClientError

    def failing(code, message):
        def invoke(state_dir, name, **request):
            raise ClientError({"Error": {"Code": code, "Message": message}}, "TestInvokeAuthorizer")
        return invoke

    results, _ = run(tmp_path, replay=True, test_invoke=failing("InvalidResponseException", "The response is invalid"))
    assert results["replay.invoke"].root_cause == "lambda-response-invalid"
    results, _ = run(tmp_path, replay=True, test_invoke=failing(
        "InvalidResponseException", "The response is invalid: Authorizer function timed out after 5.00 seconds"))
    assert results["replay.invoke"].root_cause == "lambda-timeout"
    results, _ = run(tmp_path, replay=True, test_invoke=failing("UnauthorizedException", "not permitted"))
    assert results["replay.invoke"].status == "warn"
    assert results["replay.invoke"].root_cause == "lambda-permission-missing"


def test_cli_cloud_check_json_and_exit_codes(tmp_path, capsys):
    cloud = cs.healthy_cloud()
    cloud["authorizers"][cs.AUTHORIZER]["status"] = "INACTIVE"
    state = cs.write_state(tmp_path, cloud)
    config = tmp_path / "device.toml"
    config.write_text(cs.toml_text(cs.device_config()))
    code = cli.main(["cloud-check", "--config", str(config), "--cloud", f"local:{state}", "--json", "--no-replay"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["verdict"] == "fail"
    by_id = {c["id"]: c for c in out["checks"]}
    assert by_id["authorizer.status"]["root_cause"] == "authorizer-inactive"
    assert by_id["authorizer.status"]["seed"] == "beyond seed"
    # People get a table; secrets (token, signature) appear in neither form.
    code = cli.main(["cloud-check", "--config", str(config), "--cloud", f"local:{state}", "--no-replay"])
    text = capsys.readouterr().out
    assert code == 1 and "INACTIVE" in text
    assert cs.signature()[:20] not in text and cs.signature()[:20] not in json.dumps(out)


def test_cli_cloud_check_bad_inputs_are_clear(tmp_path, capsys):
    assert cli.main(["cloud-check", "--config", str(tmp_path / "none.toml"), "--cloud", "local:x"]) == 2
    assert "none.toml" in capsys.readouterr().err
    config = tmp_path / "device.toml"
    config.write_text(cs.toml_text(cs.device_config()))
    assert cli.main(["cloud-check", "--config", str(config), "--cloud", f"local:{tmp_path / 'nostate'}"]) == 5
    assert "authprobe emulate" in capsys.readouterr().err
    assert cli.main(["cloud-check", "--config", str(config), "--cloud", "gcp"]) == 2
    assert cli.main(["cloud-check", "--config", str(config), "--cloud", "local:x", "--since", "soon"]) == 2


def test_window_is_respected_for_metrics(tmp_path):
    state_dir = cs.write_state(tmp_path, metrics=[cs.metric("Errors", 1, NOW_MS - 20 * 60_000)])
    cloud = LocalCloud(state_dir)
    assert cloud.lambda_metric(cs.FUNCTION, "Errors", NOW - timedelta(minutes=30), NOW, "Sum") == 1
    assert cloud.lambda_metric(cs.FUNCTION, "Errors", NOW - timedelta(minutes=10), NOW, "Sum") is None


def test_replay_request_is_what_the_probe_sends():
    from urllib.parse import parse_qs

    mqtt = checks.replay_request(settings_from_config(cs.device_config(**{
        "device.transport": "mqtt", "auth.username": "probe", "auth.password": "pw"})))
    user = mqtt["mqttContext"]["username"]
    assert user.startswith("probe?") and "+" not in user.split("?", 1)[1]
    params = parse_qs(user.split("?", 1)[1])
    assert params["x-amz-customauthorizer-signature"] == [cs.signature()]  # decodes back exactly
    assert params["token"] == [cs.TOKEN] and params["x-amz-customauthorizer-name"] == [cs.AUTHORIZER]
    assert mqtt["mqttContext"]["password"] == b"pw" and mqtt["mqttContext"]["clientId"] == cs.CLIENT_ID
    assert mqtt["tlsContext"] == {"serverName": cs.ENDPOINT} and mqtt["tokenSignature"] == cs.signature()
    wss = checks.replay_request(settings_from_config(cs.device_config(**{"auth.wss_auth": "query"})))
    assert parse_qs(wss["httpContext"]["queryString"][1:])["token"] == [cs.TOKEN]
    assert "username" not in wss["mqttContext"]


def test_domain_default_authorizer_without_override_wins(tmp_path):
    cloud = cs.healthy_cloud()
    cloud["authorizers"]["Factory"] = dict(cloud["authorizers"][cs.AUTHORIZER], authorizerName="Factory",
                                           status="INACTIVE")
    cloud["domain_configurations"] = {"probe": {
        "domainConfigurationName": "probe", "domainName": "iot.example.com", "domainConfigurationStatus": "ENABLED",
        "authenticationType": "CUSTOM_AUTH", "applicationProtocol": "MQTT_WSS",
        "authorizerConfig": {"defaultAuthorizerName": "Factory", "allowAuthorizerOverride": False}}}
    results, ctx = run(tmp_path, cloud, device=cs.device_config(**{"endpoint.host": "iot.example.com",
                                                                      "endpoint.custom_domain": True}))
    assert results["authorizer.override"].status == "warn"
    assert ctx.authorizer["authorizerName"] == "Factory"
    assert failed(results) == {"authorizer-inactive"}


def test_cli_verify_with_the_authorizers_keys(tmp_path, capsys):
    state = cs.write_state(tmp_path)
    assert cli.main(["verify", "--token", cs.TOKEN, "--signature", cs.signature(), "--authorizer", cs.AUTHORIZER,
                     "--cloud", f"local:{state}"]) == 0
    assert f"{cs.AUTHORIZER}/key1" in capsys.readouterr().out
    assert cli.main(["verify", "--token", "x", "--signature", cs.signature(), "--authorizer", cs.AUTHORIZER,
                     "--cloud", f"local:{state}"]) == 1
    assert cli.main(["verify", "--token", "x", "--signature", cs.signature(), "--authorizer", "Nope",
                     "--cloud", f"local:{state}"]) == 5
    assert "Nope" in capsys.readouterr().err


def test_table_output_keeps_bracketed_config_sections(tmp_path, capsys):
    state = cs.write_state(tmp_path)
    config = tmp_path / "device.toml"
    config.write_text(cs.toml_text(cs.device_config(**{"auth.token_key_name": "tok"})))
    assert cli.main(["cloud-check", "--config", str(config), "--cloud", f"local:{state}", "--no-replay"]) == 1
    assert '[auth] token_key_name = "token"' in capsys.readouterr().out.replace("\n", " ")


def test_permission_judged_as_the_stand_in_judges_it(tmp_path):
    """An explicit Deny beside the Allow refuses (IAM: Deny wins); an Allow without SourceArn passes
    with a note that any authorizer may invoke the function."""
    allow = cs.permission_policy()["Statement"][0]
    deny = {**allow, "Sid": "no-iot", "Effect": "Deny"}
    cloud = cs.healthy_cloud()
    cloud["function_policies"] = {cs.FUNCTION: json.dumps({"Statement": [allow, deny]})}
    results, _ = run(tmp_path / "deny", cloud)
    assert failed(results) == {"lambda-permission-missing"}
    assert "explicitly denied by no-iot" in results["function.permission"].evidence[0]
    unscoped = {k: v for k, v in allow.items() if k != "Condition"}
    cloud["function_policies"] = {cs.FUNCTION: json.dumps({"Statement": [unscoped]})}
    results, _ = run(tmp_path / "unscoped", cloud)
    assert results["function.permission"].status == "pass"
    assert "any authorizer may" in results["function.permission"].evidence[0]


def test_response_problems_name_the_documented_limits():
    # The same rules the stand-in refuses a response by (authprobe.aws.authorizer_response).
    doc = json.dumps({"Version": "2012-10-17", "Statement": [], "pad": "x" * 2100})
    problems = checks.response_problems({"isAuthenticated": True, "principalId": "dev01", "policyDocuments": [doc] * 11,
                                         "disconnectAfterInSeconds": 86401, "refreshAfterInSeconds": 300})
    assert "policyDocuments has 11 documents; at most 10" in problems
    assert any(p.startswith("policy document 1 has ") and p.endswith("characters; at most 2048") for p in problems)
    assert problems[-1] == "disconnectAfterInSeconds = 86401 is outside 300-86400"
    assert checks.response_problems({"isAuthenticated": True, "principalId": "dev01", "policyDocuments": [],
                                     "refreshAfterInSeconds": 300}) == []


def test_replay_errors_that_quote_the_request_never_show_its_secrets(tmp_path):
    """AWS validation errors name the offending value: the token and signature become fingerprints."""
    from botocore.exceptions import BotoCoreError, ClientError

    sig = cs.signature()
    message = f"1 validation error detected: Value '{sig}' at 'tokenSignature'; Value '{cs.TOKEN}' at 'token'"

    def quoting(state_dir, name, **request):
        raise ClientError({"Error": {"Code": "InvalidRequestException", "Message": message}}, "TestInvokeAuthorizer")

    def failing_locally(state_dir, name, **request):
        raise CloudError(f"AWS call failed: {BotoCoreError()} token={cs.TOKEN}")

    for name, invoke in (("rejected", quoting), ("unread", failing_locally)):
        results, _ = run(tmp_path / name, replay=True, test_invoke=invoke)
        text = " ".join(results["replay.invoke"].evidence)
        assert cs.TOKEN not in text and sig not in text and "<redacted len=" in text
