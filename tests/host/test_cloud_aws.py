"""The AWS backend call by call with botocore's Stubber (requests and responses validated against
the real service models), and with moto where moto implements the call."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber

from authprobe.cloud.aws import AwsCloud
from authprobe.cloud.base import CallRejected, NotFound
from authprobe.errors import CloudError
from tests.fixtures import cloud_state as cs

AUTH_DESC = {"authorizerName": cs.AUTHORIZER, "authorizerArn": cs.AUTHORIZER_ARN,
             "authorizerFunctionArn": cs.FUNCTION_ARN, "tokenKeyName": "token",
             "tokenSigningPublicKeys": {"key1": "PEM"}, "status": "ACTIVE", "signingDisabled": False}


def _session():
    return boto3.session.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                                 region_name=cs.REGION)


@pytest.fixture
def stubbed():
    """An AwsCloud whose clients are stubbed; yields (cloud, {service: Stubber})."""
    session = _session()
    clients = {s: session.client(s) for s in ("iot", "lambda", "cloudwatch", "logs")}
    stubbers = {s: Stubber(c) for s, c in clients.items()}
    for st in stubbers.values():
        st.activate()
    cloud = AwsCloud(clients=clients, region=cs.REGION, sleep=lambda s: None)
    yield cloud, stubbers
    for st in stubbers.values():
        st.assert_no_pending_responses()
        st.deactivate()


def test_describe_authorizer_and_account(stubbed):
    cloud, st = stubbed
    st["iot"].add_response("describe_authorizer", {"authorizerDescription": AUTH_DESC},
                           {"authorizerName": cs.AUTHORIZER})
    assert cloud.describe_authorizer(cs.AUTHORIZER)["authorizerFunctionArn"] == cs.FUNCTION_ARN
    assert cloud.account == cs.ACCOUNT


def test_not_found_names_the_region(stubbed):
    cloud, st = stubbed
    st["iot"].add_client_error("describe_authorizer", "ResourceNotFoundException", "Authorizer Nope not found",
                               404, expected_params={"authorizerName": "Nope"})
    with pytest.raises(NotFound, match=cs.REGION):
        cloud.describe_authorizer("Nope")


def test_default_authorizer_absent_is_none(stubbed):
    cloud, st = stubbed
    st["iot"].add_client_error("describe_default_authorizer", "ResourceNotFoundException", "none", 404)
    assert cloud.describe_default_authorizer() is None
    st["iot"].add_response("describe_default_authorizer", {"authorizerDescription": AUTH_DESC}, {})
    assert cloud.describe_default_authorizer()["authorizerName"] == cs.AUTHORIZER


def test_endpoint_and_domain_configurations(stubbed):
    cloud, st = stubbed
    st["iot"].add_response("describe_endpoint", {"endpointAddress": cs.ENDPOINT}, {"endpointType": "iot:Data-ATS"})
    assert cloud.describe_endpoint() == cs.ENDPOINT
    st["iot"].add_response("list_domain_configurations", {"domainConfigurations": [
        {"domainConfigurationName": "iot:Data-ATS", "serviceType": "DATA"},
        {"domainConfigurationName": "probe", "serviceType": "DATA"}]}, {"serviceType": "DATA"})
    assert cloud.list_domain_configurations() == ["probe"]
    st["iot"].add_response("describe_domain_configuration", {
        "domainConfigurationName": "probe", "domainName": "iot.example.com", "authenticationType": "CUSTOM_AUTH",
        "applicationProtocol": "SECURE_MQTT", "domainConfigurationStatus": "ENABLED",
        "authorizerConfig": {"defaultAuthorizerName": cs.AUTHORIZER, "allowAuthorizerOverride": False}},
        {"domainConfigurationName": "probe"})
    assert cloud.describe_domain_configuration("probe")["authenticationType"] == "CUSTOM_AUTH"


def test_function_policy_and_no_policy(stubbed):
    cloud, st = stubbed
    st["lambda"].add_response("get_function", {"Configuration": {"FunctionName": cs.FUNCTION, "Timeout": 3}},
                              {"FunctionName": cs.FUNCTION_ARN})
    assert cloud.get_function(cs.FUNCTION_ARN)["Timeout"] == 3
    st["lambda"].add_response("get_policy", {"Policy": json.dumps(cs.permission_policy()), "RevisionId": "1"},
                              {"FunctionName": cs.FUNCTION_ARN})
    assert cloud.get_policy(cs.FUNCTION_ARN)["Statement"][0]["Principal"]["Service"] == "iot.amazonaws.com"
    st["lambda"].add_client_error("get_policy", "ResourceNotFoundException", "no policy", 404)
    assert cloud.get_policy(cs.FUNCTION_ARN) is None


def test_metric_statistics_one_period_for_the_window(stubbed):
    cloud, st = stubbed
    end = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    start = end - timedelta(minutes=90)
    st["cloudwatch"].add_response("get_metric_statistics", {"Datapoints": [
        {"Timestamp": start, "Maximum": 5000.0, "Unit": "Milliseconds"},
        {"Timestamp": start, "Maximum": 40.0, "Unit": "Milliseconds"}]},
        {"Namespace": "AWS/Lambda", "MetricName": "Duration",
         "Dimensions": [{"Name": "FunctionName", "Value": cs.FUNCTION}],
         "StartTime": start, "EndTime": end, "Period": 5400, "Statistics": ["Maximum"]})
    assert cloud.lambda_metric(cs.FUNCTION, "Duration", start, end, "Maximum") == 5000.0
    st["cloudwatch"].add_response("get_metric_statistics", {"Datapoints": []})
    assert cloud.lambda_metric(cs.FUNCTION, "Invocations", start, end, "Sum") is None


def test_v2_logging_not_configured_is_none(stubbed):
    cloud, st = stubbed
    st["iot"].add_client_error("get_v2_logging_options", "NotConfiguredException", "not configured", 400)
    assert cloud.get_v2_logging_options() is None
    st["iot"].add_response("get_v2_logging_options", {"roleArn": "arn:aws:iam::1:role/x", "defaultLogLevel": "WARN",
                                                      "disableAllLogs": False})
    assert cloud.get_v2_logging_options()["defaultLogLevel"] == "WARN"
    st["iot"].add_response("list_v2_logging_levels", {"logTargetConfigurations": [
        {"logTarget": {"targetType": "CLIENT_ID", "targetName": cs.CLIENT_ID}, "logLevel": "DEBUG"}],
        "nextToken": "n"}, {})
    st["iot"].add_response("list_v2_logging_levels", {"logTargetConfigurations": []}, {"nextToken": "n"})
    assert cloud.list_v2_logging_levels()[0]["logLevel"] == "DEBUG"


def test_test_invoke_request_shape_and_rejections(stubbed):
    cloud, st = stubbed
    request = {"token": cs.TOKEN, "tokenSignature": "c2ln", "mqttContext": {
        "username": "u?token=t", "password": b"pw", "clientId": cs.CLIENT_ID},
        "tlsContext": {"serverName": cs.ENDPOINT}}
    st["iot"].add_response("test_invoke_authorizer", {"isAuthenticated": True, "principalId": "dev01",
                                                      "policyDocuments": ["{}"], "refreshAfterInSeconds": 300,
                                                      "disconnectAfterInSeconds": 3600},
                           {"authorizerName": cs.AUTHORIZER, **request})
    assert cloud.test_invoke_authorizer(cs.AUTHORIZER, request)["principalId"] == "dev01"
    st["iot"].add_client_error("test_invoke_authorizer", "InvalidResponseException", "The response is invalid", 400)
    with pytest.raises(CallRejected) as info:
        cloud.test_invoke_authorizer(cs.AUTHORIZER, request)
    assert info.value.code == "InvalidResponseException"


@pytest.mark.parametrize("code,words", [
    ("AccessDeniedException", "access denied"),
    ("ThrottlingException", "throttled"),
    ("ServiceUnavailableException", "try again"),
])
def test_aws_errors_become_clear_messages(stubbed, code, words):
    cloud, st = stubbed
    st["iot"].add_client_error("describe_endpoint", code, "nope", 400)
    with pytest.raises(CloudError, match=words):
        cloud.describe_endpoint()


def test_no_credentials_is_a_clear_message(monkeypatch, tmp_path):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    cloud = AwsCloud(region=cs.REGION)
    with pytest.raises(CloudError, match="no AWS credentials"):
        cloud.describe_endpoint()


def test_missing_profile_and_region(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    with pytest.raises(CloudError, match="profile 'ghost'"):
        AwsCloud(profile="ghost", region=cs.REGION)
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(CloudError, match="no AWS region"):
        AwsCloud()


def test_with_moto_endpoint_function_and_permission(monkeypatch):
    moto = pytest.importorskip("moto")
    for var, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                       ("AWS_DEFAULT_REGION", cs.REGION)):
        monkeypatch.setenv(var, value)
    with moto.mock_aws():
        session = boto3.session.Session(region_name=cs.REGION)
        iam = session.client("iam")
        role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        lam = session.client("lambda")
        import io
        import zipfile

        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("h.py", "def handler(e, c):\n    return {}\n")
        fn = lam.create_function(FunctionName=cs.FUNCTION, Runtime="python3.11", Role=role, Handler="h.handler",
                                 Code={"ZipFile": buf.getvalue()}, Timeout=3)
        cloud = AwsCloud(session=session, region=cs.REGION)
        assert cloud.describe_endpoint().endswith(f"-ats.iot.{cs.REGION}.amazonaws.com")
        assert cloud.get_function(cs.FUNCTION)["FunctionArn"] == fn["FunctionArn"]
        assert cloud.get_policy(cs.FUNCTION) is None
        lam.add_permission(FunctionName=cs.FUNCTION, StatementId="iot", Action="lambda:InvokeFunction",
                           Principal="iot.amazonaws.com", SourceArn=cs.AUTHORIZER_ARN)
        statement = cloud.get_policy(cs.FUNCTION)["Statement"][0]
        from authprobe.aws.lambda_permission import may_invoke

        policy = {"Statement": [statement]}
        decision = may_invoke(policy, fn["FunctionArn"], cs.AUTHORIZER_ARN, cs.ACCOUNT)
        assert decision.allowed, decision.reason
        decision = may_invoke(policy, fn["FunctionArn"], cs.AUTHORIZER_ARN.replace("DeviceAuth", "X"), cs.ACCOUNT)
        assert not decision.allowed and "does not match" in decision.reason
        with pytest.raises(NotFound):
            cloud.get_function("nope")


def test_cloud_check_against_aws_call_by_call(stubbed):
    """The whole check sequence on the AWS backend: every request validated against the models."""
    from authprobe.cloud import checks
    from authprobe.cloud.device_settings import settings_from_config

    cloud, st = stubbed
    end = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    start = end - timedelta(hours=1)
    iot, lam, cw = st["iot"], st["lambda"], st["cloudwatch"]
    iot.add_response("describe_endpoint", {"endpointAddress": cs.ENDPOINT}, {"endpointType": "iot:Data-ATS"})
    iot.add_response("list_domain_configurations", {"domainConfigurations": []}, {"serviceType": "DATA"})
    desc = dict(AUTH_DESC, tokenSigningPublicKeys={"key1": cs.public_pem(cs.rsa_key())})
    iot.add_response("describe_authorizer", {"authorizerDescription": desc}, {"authorizerName": cs.AUTHORIZER})
    lam.add_response("get_function", {"Configuration": {"FunctionName": cs.FUNCTION, "FunctionArn": cs.FUNCTION_ARN,
                                                        "Timeout": 3, "Runtime": "python3.12"}},
                     {"FunctionName": cs.FUNCTION_ARN})
    lam.add_response("get_policy", {"Policy": json.dumps(cs.permission_policy())}, {"FunctionName": cs.FUNCTION_ARN})
    for metric, stat, value in (("Invocations", "Sum", 12.0), ("Errors", "Sum", 0.0), ("Throttles", "Sum", 0.0),
                                ("Duration", "Maximum", 240.0)):
        cw.add_response("get_metric_statistics", {"Datapoints": [{"Timestamp": start, stat: value}]},
                        {"Namespace": "AWS/Lambda", "MetricName": metric,
                         "Dimensions": [{"Name": "FunctionName", "Value": cs.FUNCTION}], "StartTime": start,
                         "EndTime": end, "Period": 3600, "Statistics": [stat]})
    for metric in ("Connection.AuthNError", "Connect.AuthError"):  # AWS/IoT, every Protocol series
        cw.add_response("list_metrics", {"Metrics": []}, {"Namespace": "AWS/IoT", "MetricName": metric})
    iot.add_response("get_v2_logging_options", {"defaultLogLevel": "ERROR", "disableAllLogs": False})
    iot.add_response("list_v2_logging_levels", {"logTargetConfigurations": []}, {})
    arn = f"arn:aws:iot:{cs.REGION}:{cs.ACCOUNT}"
    doc = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn}:client/${{iot:ClientId}}"},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"], "Resource": f"{arn}:topic/{cs.TOPIC}"}]})
    iot.add_response("test_invoke_authorizer", {"isAuthenticated": True, "principalId": "dev01",
                                                "policyDocuments": [doc], "refreshAfterInSeconds": 300,
                                                "disconnectAfterInSeconds": 3600})
    ctx = checks.CheckContext(cloud, settings_from_config(cs.device_config()), window_end=end)
    results = {r.id: r for r in checks.run_checks(ctx)}
    assert results["replay.invoke"].status == "pass", results["replay.invoke"].evidence
    assert results["function.permission"].status == "pass"
    assert results["metrics.invocations"].data["invocations"] == 12
    assert results["metrics.iot_authn"].status == "pass"
    assert results["logging.v2"].status == "warn" and cs.CLIENT_ID in results["logging.v2"].remediation
    assert results["policy.connect"].status == "pass" and results["policy.publish"].status == "pass"
    assert results["policy.subscribe"].status == "fail"  # no topicfilter statement
    assert results["policy.subscribe"].root_cause == "policy-denies-subscribe"


@pytest.mark.parametrize("changes", [
    {}, {"auth.wss_auth": "query"}, {"device.transport": "mqtt", "auth.password": "pw", "auth.username": "u"},
    {"device.transport": "auto", "auth.signature": None}, {"auth.authorizer": None},
])
def test_replay_requests_are_valid_for_the_service_model(changes):
    import botocore.session
    from botocore.validate import validate_parameters

    from authprobe.cloud.checks import replay_request
    from authprobe.cloud.device_settings import settings_from_config

    shape = botocore.session.get_session().get_service_model("iot").operation_model("TestInvokeAuthorizer").input_shape
    request = replay_request(settings_from_config(cs.device_config(**changes)))
    validate_parameters({"authorizerName": cs.AUTHORIZER, **request}, shape)


def test_partial_access_is_a_warning_per_check_and_no_access_one_message(stubbed):
    from authprobe.cloud import checks
    from authprobe.cloud.device_settings import settings_from_config

    cloud, st = stubbed
    st["iot"].add_response("describe_endpoint", {"endpointAddress": cs.ENDPOINT}, {"endpointType": "iot:Data-ATS"})
    st["iot"].add_client_error("list_domain_configurations", "AccessDeniedException", "no", 403)
    st["iot"].add_client_error("describe_authorizer", "AccessDeniedException", "no", 403)
    st["iot"].add_client_error("get_v2_logging_options", "AccessDeniedException", "no", 403)
    ctx = checks.CheckContext(cloud, settings_from_config(cs.device_config()), replay=False)
    results = {r.id: r for r in checks.run_checks(ctx)}
    assert results["endpoint.sni"].status == "pass"
    assert results["authorizer.exists"].status == "warn" and "access denied" in results["authorizer.exists"].evidence[0]
    assert checks.overall(list(results.values())) == "warn"  # never "pass" when something could not be read
    st["iot"].add_client_error("describe_endpoint", "UnrecognizedClientException", "bad token", 403)
    st["iot"].add_client_error("describe_authorizer", "UnrecognizedClientException", "bad token", 403)
    with pytest.raises(CloudError, match="access denied"):
        checks.run_checks(checks.CheckContext(cloud, settings_from_config(cs.device_config()), replay=False))
