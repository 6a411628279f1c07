"""TestInvokeAuthorizer against the stand-in: same request and response shapes as the AWS API
(BOTO iot TestInvokeAuthorizer), errors raised as botocore ClientError like boto3 raises them, so the
host's `local:` cloud backend reads the stand-in through the same interface as AWS.

Which error code a refusal maps to is documented only in part: ResourceNotFoundException for an
unknown authorizer and InvalidResponseException ("The response is invalid") for a broken function
response are in the API model; the codes for an inactive authorizer, a bad signature and a missing
invoke permission are our choice [I] among the codes the model lists."""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path

from botocore.exceptions import ClientError

from authprobe.emulator.cloud_records import CloudRecords
from authprobe.emulator.config import EmulatorConfig, load_config
from authprobe.emulator.custom_auth import Credentials, CustomAuth, query_params
from authprobe.emulator.lambda_runtime import LambdaService
from authprobe.emulator.server import Emulator
from authprobe.errors import CloudError

_ERRORS = {
    "authorizer-unknown": ("ResourceNotFoundException", 404),
    "authorizer-inactive": ("InvalidRequestException", 400),
    "token-key-name-mismatch": ("InvalidRequestException", 400),
    "signature-missing": ("InvalidRequestException", 400),
    "signature-invalid": ("InvalidRequestException", 400),
    "signature-not-urlencoded": ("InvalidRequestException", 400),
    "authorizer-function-missing": ("InvalidRequestException", 400),
    "lambda-permission-missing": ("UnauthorizedException", 401),
    "lambda-timeout": ("InvalidResponseException", 400),
    "lambda-error": ("InvalidResponseException", 400),
    "lambda-response-invalid": ("InvalidResponseException", 400),
}


def _client_error(code: str, status: int, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"RequestId": str(uuid.uuid4()), "HTTPStatusCode": status}},
                       "TestInvokeAuthorizer")


def _config_from(target) -> EmulatorConfig:
    if isinstance(target, EmulatorConfig):
        return target
    path = Path(target)
    if path.is_dir():
        cloud = path / "cloud.json"
        try:
            config_path = json.loads(cloud.read_text()).get("config_path")
        except (OSError, ValueError) as exc:
            raise CloudError(f"cannot read the stand-in's descriptions {cloud}: {exc}; "
                             "start it once with `authprobe emulate --config FILE`") from None
        if not config_path:
            raise CloudError(f"{cloud} names no config file; start the stand-in from a config file")
        # The records of this replay belong with the stand-in whose state was named, not in the
        # state_dir its config file gives (the drill and the demo start stand-ins elsewhere).
        return dataclasses.replace(load_config(config_path), state_dir=path.resolve())
    return load_config(path)


def invoke_authorizer(target: Emulator | EmulatorConfig | str | Path, authorizer_name: str, *,
                      token: str | None = None, token_signature: str | None = None,
                      mqtt_context: dict | None = None, http_context: dict | None = None,
                      tls_context: dict | None = None) -> dict:
    """Invoke an authorizer the way `aws iot test-invoke-authorizer` does and answer like it.

    `target` is a running Emulator (its warm functions are used), a config, a config file or the
    stand-in's state directory. The function log lines of the call are marked `"replay": true`."""
    if isinstance(target, Emulator):
        config, auth, owned, records = target.config, target.auth, None, target.records
    else:
        config = _config_from(target)
        records = CloudRecords(config)
        owned = LambdaService(config, records)
        auth = CustomAuth(config, owned)
    try:
        authorizer = config.authorizers.get(authorizer_name)
        if authorizer is None:
            raise _client_error("ResourceNotFoundException", 404, f"Authorizer {authorizer_name} not found")
        mqtt = mqtt_context or {}
        http = http_context
        password = mqtt.get("password")
        if isinstance(password, str):
            password = password.encode()
        creds = Credentials(
            signature=token_signature, server_name=(tls_context or {}).get("serverName"),
            username=mqtt.get("username"), password=password, client_id=mqtt.get("clientId"),
            http_headers=dict(http.get("headers") or {}) if http else None,
            http_query=http.get("queryString") if http else None,
            headers={k.lower(): v for k, v in ((http or {}).get("headers") or {}).items()},
            params=query_params((http or {}).get("queryString") or ""),
            protocols=[p for p, present in (("tls", tls_context), ("http", http), ("mqtt", mqtt_context)) if present],
            explicit_token=token)
        with records.replaying():  # the function's lines of this call are marked as a replay's
            outcome = auth.authenticate(creds, authorizer=authorizer)
        if not outcome.ok and outcome.cause != "authorizer-denied":
            code, status = _ERRORS.get(outcome.cause or "", ("InternalFailureException", 500))
            message = "The response is invalid" if code == "InvalidResponseException" else outcome.details
            if code == "InvalidResponseException":
                message = f"{message}: {outcome.details}"
            raise _client_error(code, status, message)
        response = outcome.response
        assert response is not None
        out: dict = {"isAuthenticated": response.is_authenticated, "policyDocuments": list(response.policy_documents)}
        if response.principal_id:  # a bare deny carries none (the model's principalId is 1-128 characters)
            out["principalId"] = response.principal_id
        if response.refresh_after_s is not None:
            out["refreshAfterInSeconds"] = response.refresh_after_s
        if response.disconnect_after_s is not None:
            out["disconnectAfterInSeconds"] = response.disconnect_after_s
        out["ResponseMetadata"] = {"RequestId": outcome.connection_id, "HTTPStatusCode": 200}
        return out
    finally:
        if owned is not None:
            owned.close()


