"""The cloud interface: what cloud-check and correlate read, in AWS API response shapes, from either
AWS (boto3) or the local stand-in's state directory. Both backends raise the same errors, so the
checks never know which one they talk to."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from authprobe.errors import CloudError

# AWS IoT gives a custom authorizer's Lambda at most this long, whatever the function's own timeout.
AUTHORIZER_TIMEOUT_MS = 5000
IOT_LOG_GROUP = "AWSIotLogsV2"
# CloudWatch delivers AWS IoT's and Lambda's log records seconds to minutes after the event.
DEFAULT_LOG_DELAY_S = 120.0


class NotFound(CloudError):
    """The resource does not exist (a finding for the checks, not a failure to read the cloud)."""


class CallRejected(CloudError):
    """The service answered the call with an error that is itself evidence (TestInvokeAuthorizer
    InvalidResponseException, UnauthorizedException, ...). `code` is the AWS error code."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


@dataclass(slots=True)
class LogEvent:
    """One log line normalised for correlation. source: "iot" (AWSIotLogsV2) or "lambda" (the
    authorizer function's log group). fields: the IoT V2 record, or {"message", "requestId"}."""

    source: str
    ts_ms: int
    client_id: str | None
    fields: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "ts_ms": self.ts_ms, "client_id": self.client_id, **self.fields}


class Cloud(ABC):
    """Read-only view of one account/region's custom-auth setup."""

    label: str = "cloud"
    region: str | None = None
    account: str | None = None
    # How long after an event its log records may still be on their way (the stand-in says its own).
    log_delay_s: float = DEFAULT_LOG_DELAY_S

    @abstractmethod
    def describe_authorizer(self, name: str) -> dict[str, Any]:
        """DescribeAuthorizer authorizerDescription; NotFound when there is no such authorizer."""

    @abstractmethod
    def describe_default_authorizer(self) -> dict[str, Any] | None:
        """The default authorizer's description, or None when the account has none."""

    @abstractmethod
    def describe_endpoint(self, endpoint_type: str = "iot:Data-ATS") -> str | None:
        """DescribeEndpoint endpointAddress (None when the backend has none of that type)."""

    @abstractmethod
    def list_domain_configurations(self) -> list[str]:
        """Names of the account's customer-managed domain configurations."""

    @abstractmethod
    def describe_domain_configuration(self, name: str) -> dict[str, Any]:
        """DescribeDomainConfiguration response."""

    @abstractmethod
    def get_function(self, name_or_arn: str) -> dict[str, Any]:
        """GetFunction Configuration; NotFound when the function does not exist."""

    @abstractmethod
    def get_policy(self, name_or_arn: str) -> dict[str, Any] | None:
        """The function's resource-based policy (parsed JSON), None when it has none."""

    @abstractmethod
    def lambda_metric(self, function_name: str, metric: str, start: datetime, end: datetime,
                      statistic: str) -> float | None:
        """One statistic (Sum or Maximum) of an AWS/Lambda metric over [start, end]; None = no data."""

    @abstractmethod
    def iot_metric(self, metric: str, start: datetime, end: datetime) -> float | None:
        """The Sum of an AWS/IoT metric (Connection.AuthNError, Connect.AuthError, ...) over
        [start, end], added up over every Protocol series; None = no data."""

    @abstractmethod
    def get_v2_logging_options(self, verbose: bool = False) -> dict[str, Any] | None:
        """GetV2LoggingOptions, None when V2 logging was never configured; verbose=True lists every
        event type event-level logging supports with its configuration."""

    @abstractmethod
    def list_v2_logging_levels(self) -> list[dict[str, Any]]:
        """ListV2LoggingLevels logTargetConfigurations."""

    @abstractmethod
    def test_invoke_authorizer(self, name: str, request: dict[str, Any]) -> dict[str, Any]:
        """TestInvokeAuthorizer; `request` holds the API's request fields except authorizerName.
        Service errors that are evidence raise CallRejected."""

    @abstractmethod
    def log_events(self, windows: Iterable[Any], function_name: str | None = None) -> Iterator[LogEvent]:
        """AWSIotLogsV2 records of the windows' client ids inside their windows, and the lines of
        /aws/lambda/<function_name> that tell about failures or mention those client ids.
        `windows` are authprobe.cloud.logs_insights.Window. May return more than asked; the caller joins."""


def function_name_of(arn_or_name: str) -> str:
    """The function name from a Lambda ARN (arn:aws:lambda:REGION:ACCT:function:NAME[:QUALIFIER])."""
    if arn_or_name.startswith("arn:"):
        parts = arn_or_name.split(":")
        if len(parts) >= 7 and parts[5] == "function":
            return parts[6]
    return arn_or_name


def arn_account(arn: str | None) -> str | None:
    parts = (arn or "").split(":")
    return parts[4] if len(parts) > 5 and parts[0] == "arn" and parts[4] else None


def arn_region(arn: str | None) -> str | None:
    parts = (arn or "").split(":")
    return parts[3] if len(parts) > 5 and parts[0] == "arn" and parts[3] else None
