"""The AWS backend: boto3 with the standard credential chain (--profile, --region). Every AWS error
becomes a CloudError that says what went wrong and what to do; NotFound and CallRejected are
findings the checks turn into evidence."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from authprobe.aws import iot_logging
from authprobe.cloud.base import CallRejected, Cloud, LogEvent, NotFound, arn_account
from authprobe.cloud.correlate import event_from_insights_row
from authprobe.cloud.logs_insights import InsightsRunner, build_specs
from authprobe.errors import CloudError

_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedException", "UnrecognizedClientException",
           "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException", "InvalidSignatureException",
           "AuthFailure", "UnauthorizedOperation", "SignatureDoesNotMatch"}
_THROTTLED = {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded",
              "LimitExceededException"}
_NOT_FOUND = {"ResourceNotFoundException", "ResourceNotFound", "NoSuchEntity", "NotFoundException"}
_UNAVAILABLE = {"ServiceUnavailableException", "ServiceUnavailable", "InternalFailureException",
                "InternalException", "ServiceException", "InternalServiceFault"}


class AwsCloud(Cloud):
    def __init__(self, *, profile: str | None = None, region: str | None = None, session: Any = None,
                 clients: dict[str, Any] | None = None, max_concurrent: int = 10,
                 sleep: Callable[[float], None] | None = None,
                 on_progress: Callable[[Any], None] | None = None):
        """`clients` injects ready clients by service name (tests pass stubbed ones)."""
        self._clients: dict[str, Any] = dict(clients or {})
        self._session = session
        self._profile = profile
        self.region = region
        self.max_concurrent = max_concurrent
        self._sleep = sleep
        self._on_progress = on_progress
        self.insights_progress: Any = None
        if not self._clients or session is not None or region is None:
            self._open_session()
        self.label = f"aws ({self.region})"

    def _open_session(self) -> None:
        import boto3
        from botocore.exceptions import ProfileNotFound

        if self._session is None:
            try:
                self._session = boto3.session.Session(profile_name=self._profile, region_name=self.region)
            except ProfileNotFound:
                raise CloudError(f"AWS profile {self._profile!r} is not in ~/.aws/config or ~/.aws/credentials: "
                                 "check --profile (or AWS_PROFILE)") from None
        self.region = self.region or self._session.region_name
        if not self.region:
            raise CloudError("no AWS region: pass --region, set AWS_REGION, or set region in your AWS profile")

    def client(self, service: str) -> Any:
        if service not in self._clients:
            if self._session is None:
                self._open_session()
            self._clients[service] = self._session.client(service, region_name=self.region)
        return self._clients[service]

    @contextmanager
    def _calling(self, what: str, *, evidence: bool = False):
        """Translate AWS failures into one clear message; evidence=True turns service errors that
        describe the resource (not our access to it) into CallRejected."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
            NoRegionError,
            PartialCredentialsError,
        )

        try:
            yield
        except (NoCredentialsError, PartialCredentialsError):
            raise CloudError("no AWS credentials found: run `aws configure` or `aws sso login`, pass --profile, "
                             "or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY") from None
        except NoRegionError:
            raise CloudError("no AWS region: pass --region or set AWS_REGION") from None
        except EndpointConnectionError as exc:
            raise CloudError(f"cannot reach AWS for {what} in region {self.region} ({exc}): check the region "
                             "name and the network") from None
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "")
            message = error.get("Message", "") or str(exc)
            if code in _NOT_FOUND:
                raise NotFound(f"{what}: not found in region {self.region} ({message})") from None
            if evidence and (code == "UnauthorizedException" or code not in _DENIED) and code not in _THROTTLED:
                raise CallRejected(f"{what}: {code}: {message}", code) from None
            if code in _DENIED:
                raise CloudError(f"access denied for {what} in region {self.region} ({code}): give this identity "
                                 "read access (iot:Describe*, iot:List*, iot:GetV2LoggingOptions, "
                                 "iot:TestInvokeAuthorizer, lambda:GetFunction, lambda:GetPolicy, "
                                 "cloudwatch:GetMetricStatistics, cloudwatch:ListMetrics, logs:StartQuery, logs:GetQueryResults)") from None
            if code in _THROTTLED:
                raise CloudError(f"AWS throttled {what} ({code}) even after retries: wait a minute and run "
                                 "again, or check fewer runs at once") from None
            if code in _UNAVAILABLE:
                raise CloudError(f"AWS could not answer {what} ({code}): try again shortly") from None
            raise CloudError(f"AWS refused {what}: {code}: {message}") from None
        except BotoCoreError as exc:
            raise CloudError(f"AWS call for {what} failed: {exc}") from None

    # --- IoT ---------------------------------------------------------------------------------
    def describe_authorizer(self, name: str) -> dict[str, Any]:
        with self._calling(f"authorizer {name!r}"):
            desc = self.client("iot").describe_authorizer(authorizerName=name)["authorizerDescription"]
        self.account = self.account or arn_account(desc.get("authorizerArn"))
        return desc

    def describe_default_authorizer(self) -> dict[str, Any] | None:
        try:
            with self._calling("the default authorizer"):
                desc = self.client("iot").describe_default_authorizer().get("authorizerDescription")
        except NotFound:
            return None
        return desc or None

    def describe_endpoint(self, endpoint_type: str = "iot:Data-ATS") -> str | None:
        with self._calling(f"the {endpoint_type} endpoint"):
            return self.client("iot").describe_endpoint(endpointType=endpoint_type).get("endpointAddress")

    def list_domain_configurations(self) -> list[str]:
        names: list[str] = []
        with self._calling("domain configurations"):
            pages = self.client("iot").get_paginator("list_domain_configurations").paginate(
                serviceType="DATA")
            for page in pages:
                for item in page.get("domainConfigurations", []):
                    # AWS-managed configurations have no custom-auth settings of their own.
                    if item.get("domainConfigurationName", "").startswith("iot:"):
                        continue
                    names.append(item["domainConfigurationName"])
        return names

    def describe_domain_configuration(self, name: str) -> dict[str, Any]:
        with self._calling(f"domain configuration {name!r}"):
            answer = self.client("iot").describe_domain_configuration(domainConfigurationName=name)
        answer.pop("ResponseMetadata", None)
        return answer

    def get_v2_logging_options(self, verbose: bool = False) -> dict[str, Any] | None:
        try:
            with self._calling("V2 logging options", evidence=True):
                answer = self.client("iot").get_v2_logging_options(**({"verbose": True} if verbose else {}))
        except CallRejected as exc:
            if exc.code == "NotConfiguredException":
                return None
            raise CloudError(str(exc)) from None
        answer.pop("ResponseMetadata", None)
        return answer

    def list_v2_logging_levels(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        try:
            with self._calling("V2 logging levels", evidence=True):
                kwargs: dict[str, Any] = {}
                while True:
                    page = self.client("iot").list_v2_logging_levels(**kwargs)
                    out.extend(page.get("logTargetConfigurations", []))
                    if not page.get("nextToken"):
                        break
                    kwargs["nextToken"] = page["nextToken"]
        except CallRejected as exc:
            if exc.code == "NotConfiguredException":
                return []
            raise CloudError(str(exc)) from None
        return out

    def test_invoke_authorizer(self, name: str, request: dict[str, Any]) -> dict[str, Any]:
        with self._calling(f"TestInvokeAuthorizer on {name!r}", evidence=True):
            answer = self.client("iot").test_invoke_authorizer(authorizerName=name, **request)
        answer.pop("ResponseMetadata", None)
        return answer

    # --- Lambda ------------------------------------------------------------------------------
    def get_function(self, name_or_arn: str) -> dict[str, Any]:
        with self._calling(f"Lambda function {name_or_arn}"):
            return self.client("lambda").get_function(FunctionName=name_or_arn)["Configuration"]

    def get_policy(self, name_or_arn: str) -> dict[str, Any] | None:
        try:
            with self._calling(f"resource policy of {name_or_arn}"):
                text = self.client("lambda").get_policy(FunctionName=name_or_arn)["Policy"]
        except NotFound:
            # GetPolicy answers ResourceNotFound both for "no function" and "no policy"; the
            # function check tells them apart.
            return None
        try:
            return json.loads(text)
        except ValueError:
            raise CloudError(f"the resource policy of {name_or_arn} is not JSON") from None

    def lambda_metric(self, function_name: str, metric: str, start: datetime, end: datetime,
                      statistic: str) -> float | None:
        seconds = max(60, int((end - start).total_seconds()))
        period = -(-seconds // 60) * 60  # one datapoint for the whole window, in whole minutes
        with self._calling(f"Lambda metric {metric} of {function_name}"):
            answer = self.client("cloudwatch").get_metric_statistics(
                Namespace="AWS/Lambda", MetricName=metric,
                Dimensions=[{"Name": "FunctionName", "Value": function_name}],
                StartTime=start, EndTime=end, Period=period, Statistics=[statistic])
        points = [p[statistic] for p in answer.get("Datapoints", []) if statistic in p]
        if not points:
            return None
        return max(points) if statistic == "Maximum" else sum(points)

    def iot_metric(self, metric: str, start: datetime, end: datetime) -> float | None:
        # AWS documents the dimension Protocol (MQTT | HTTP), and a field report saw HTTPS auth errors
        # counted under MQTT: add up every Protocol series rather than pin one (docs/aws-iot-now.md §1.3).
        with self._calling(f"AWS/IoT metric {metric}"):
            series: list[list[dict[str, str]]] = []
            for page in self.client("cloudwatch").get_paginator("list_metrics").paginate(
                    Namespace="AWS/IoT", MetricName=metric):
                series += [m.get("Dimensions") or [] for m in page.get("Metrics", [])]
        by_protocol = [d for d in series if [x.get("Name") for x in d] == ["Protocol"]]
        chosen = by_protocol or [d for d in series if not d]  # (an undimensioned series only when no other)
        if not chosen:
            return None
        seconds = max(60, int((end - start).total_seconds()))
        period = -(-seconds // 60) * 60
        total: float | None = None
        for dimensions in chosen:
            with self._calling(f"AWS/IoT metric {metric}"):
                answer = self.client("cloudwatch").get_metric_statistics(
                    Namespace="AWS/IoT", MetricName=metric, Dimensions=dimensions, StartTime=start, EndTime=end,
                    Period=period, Statistics=["Sum"])
            for point in answer.get("Datapoints", []):
                if "Sum" in point:
                    total = (total or 0.0) + point["Sum"]
        return total

    # --- Logs --------------------------------------------------------------------------------
    def _iot_log_groups(self) -> list[str]:
        """AWSIotLogsV2 and every log group an event type is sent to (event-level logging); just
        AWSIotLogsV2 when the options cannot be read."""
        try:
            options = self.get_v2_logging_options()
        except CloudError:
            options = None
        return iot_logging.log_groups(options)

    def log_events(self, windows: Iterable[Any], function_name: str | None = None) -> Iterator[LogEvent]:
        windows = list(windows)
        if not windows:
            return
        group = f"/aws/lambda/{function_name}" if function_name else None
        iot_groups = self._iot_log_groups()
        specs = build_specs(windows, group, iot_groups)
        kwargs: dict[str, Any] = {"max_concurrent": self.max_concurrent, "on_progress": self._on_progress}
        if self._sleep is not None:
            kwargs["sleep"] = self._sleep
        runner = InsightsRunner(self.client("logs"), **kwargs)
        self.insights_progress = runner.progress
        seen: set[str] = set()
        with self._calling("Logs Insights queries"):
            for spec, rows in runner.run(specs):
                source = "iot" if spec.log_group in iot_groups and spec.log_group != group else "lambda"
                for row in rows:
                    ptr = row.get("@ptr")
                    if ptr:
                        if ptr in seen:  # a failure line matched by several batches' windows
                            continue
                        seen.add(ptr)
                    event = event_from_insights_row(row, source)
                    if event is not None:
                        if source == "iot" and spec.log_group != iot_logging.DEFAULT_LOG_GROUP:
                            event.fields["logGroup"] = spec.log_group  # an event type's own destination
                        yield event
