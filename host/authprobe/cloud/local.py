"""The local backend: reads the stand-in's state directory (docs/contracts.md section 5) exactly as
the AWS backend reads AWS, answering in the same API response shapes and raising the same errors."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from authprobe.aws import iot_logging
from authprobe.cloud.base import CallRejected, Cloud, LogEvent, NotFound, function_name_of
from authprobe.cloud.correlate import read_log_file
from authprobe.emulator.cloud_records import log_group_file
from authprobe.emulator.invoke_authorizer import invoke_authorizer
from authprobe.errors import CloudError


class LocalCloud(Cloud):
    def __init__(self, state_dir: str | Path, *, test_invoke: Any = None):
        """`test_invoke(state_dir, name, request) -> response` overrides the stand-in's own."""
        self.state_dir = Path(state_dir)
        self._test_invoke = test_invoke
        self.label = f"local ({self.state_dir})"
        self._data: dict[str, Any] | None = None
        self._load()

    def _load(self) -> dict[str, Any]:
        path = self.state_dir / "cloud.json"
        if not self.state_dir.is_dir():
            raise CloudError(f"no stand-in state directory at {self.state_dir}: start `authprobe emulate` "
                             "(or pass the state_dir it prints) and try again")
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise CloudError(f"{path} is missing: the stand-in has not written its descriptions yet "
                             "(is `authprobe emulate` running with this state_dir?)") from None
        except (OSError, ValueError) as exc:
            raise CloudError(f"cannot read {path}: {exc}") from None
        if not isinstance(data, dict):
            raise CloudError(f"{path} is not a JSON object")
        self._data = data
        self.account = data.get("account")
        self.region = data.get("region")
        # The stand-in's own delivery delay ([logging] delivery_delay_s): 0 when it has none, so
        # the demo and the drill decide at once.
        delay = data.get("delivery_delay_s", 0)
        self.log_delay_s = float(delay) if isinstance(delay, int | float) and not isinstance(delay, bool) \
            and delay >= 0 else 0.0
        return data

    @property
    def data(self) -> dict[str, Any]:
        return self._data if self._data is not None else self._load()

    def refresh(self) -> None:
        self._load()

    def describe_authorizer(self, name: str) -> dict[str, Any]:
        desc = (self.data.get("authorizers") or {}).get(name)
        if desc is None:
            raise NotFound(f"authorizer {name!r}: not found in the stand-in ({self.state_dir})")
        return dict(desc)

    def describe_default_authorizer(self) -> dict[str, Any] | None:
        name = self.data.get("default_authorizer")
        if not name:
            return None
        desc = (self.data.get("authorizers") or {}).get(name)
        # AWS keeps a default that names a deleted authorizer; describe it by name only.
        return dict(desc) if desc else {"authorizerName": name}

    def describe_endpoint(self, endpoint_type: str = "iot:Data-ATS") -> str | None:
        return (self.data.get("endpoints") or {}).get(endpoint_type)

    def list_domain_configurations(self) -> list[str]:
        return list((self.data.get("domain_configurations") or {}).keys())

    def describe_domain_configuration(self, name: str) -> dict[str, Any]:
        desc = (self.data.get("domain_configurations") or {}).get(name)
        if desc is None:
            raise NotFound(f"domain configuration {name!r}: not found in the stand-in")
        return dict(desc)

    def get_function(self, name_or_arn: str) -> dict[str, Any]:
        name = function_name_of(name_or_arn)
        desc = (self.data.get("functions") or {}).get(name)
        if desc is None:
            raise NotFound(f"Lambda function {name_or_arn}: not found in the stand-in")
        return dict(desc)

    def get_policy(self, name_or_arn: str) -> dict[str, Any] | None:
        text = (self.data.get("function_policies") or {}).get(function_name_of(name_or_arn))
        if text is None:
            return None
        try:
            return json.loads(text) if isinstance(text, str) else dict(text)
        except ValueError:
            raise CloudError(f"the stand-in's resource policy of {name_or_arn} is not JSON") from None

    def lambda_metric(self, function_name: str, metric: str, start: datetime, end: datetime,
                      statistic: str) -> float | None:
        values = self._metric_values("AWS/Lambda", metric, start, end,
                                     lambda dims: dims.get("FunctionName") == function_name)
        if not values:
            return None
        return max(values) if statistic == "Maximum" else sum(values)

    def iot_metric(self, metric: str, start: datetime, end: datetime) -> float | None:
        values = self._metric_values("AWS/IoT", metric, start, end, lambda dims: True)
        return sum(values) if values else None

    def _metric_values(self, namespace: str, metric: str, start: datetime, end: datetime,
                       dimensions_match: Callable[[dict[str, Any]], bool]) -> list[float]:
        path = self.state_dir / "metrics.jsonl"
        lo, hi = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
        values: list[float] = []
        try:
            handle = open(path, encoding="utf-8")
        except FileNotFoundError:
            return values
        except OSError as exc:
            raise CloudError(f"cannot read {path}: {exc.strerror or exc}") from None
        with handle:
            for line in handle:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if (rec.get("metric") == metric and rec.get("namespace", "AWS/Lambda") == namespace
                        and dimensions_match(rec.get("dimensions") or {})
                        and lo <= rec.get("timestamp", -1) <= hi):
                    values.append(float(rec.get("value", 0)))
        return values

    def get_v2_logging_options(self, verbose: bool = False) -> dict[str, Any] | None:
        logging = self.data.get("logging")
        if not logging:
            return None
        return iot_logging.verbose(dict(logging)) if verbose else dict(logging)

    def list_v2_logging_levels(self) -> list[dict[str, Any]]:
        return list(self.data.get("logging_levels") or [])

    def test_invoke_authorizer(self, name: str, request: dict[str, Any]) -> dict[str, Any]:
        from botocore.exceptions import ClientError


        invoke = self._test_invoke or invoke_authorizer
        kwargs = {"token": request.get("token"), "token_signature": request.get("tokenSignature"),
                  "mqtt_context": request.get("mqttContext"), "http_context": request.get("httpContext"),
                  "tls_context": request.get("tlsContext")}
        try:
            answer = dict(invoke(self.state_dir, name, **kwargs))
        except ClientError as exc:
            # The stand-in answers like boto3 does; read its errors as the AWS backend reads AWS's.
            error = exc.response.get("Error", {})
            code, message = error.get("Code", ""), error.get("Message", "")
            if code == "ResourceNotFoundException":
                raise NotFound(f"authorizer {name!r}: {message}") from None
            raise CallRejected(f"TestInvokeAuthorizer on {name!r}: {code}: {message}", code) from None
        answer.pop("ResponseMetadata", None)
        return answer

    def log_events(self, windows: Iterable[Any], function_name: str | None = None) -> Iterator[LogEvent]:
        """The stand-in's records, as CloudWatch would deliver them: a record becomes visible
        `delivery_delay_s` after its event (the stand-in writes it at once and says its delay)."""
        wanted = {w.client_id for w in windows}
        delivered = int((time.time() - self.log_delay_s) * 1000)
        # Each event type from the log group the logging options send it to (event-level logging).
        paths = [(log_group_file(self.state_dir / "logs", group), "iot", group)
                 for group in iot_logging.log_groups(self.data.get("logging"))]
        if function_name:
            paths.append((self.state_dir / "logs" / "lambda" / f"{function_name}.jsonl", "lambda", None))
        for path, source, group in paths:
            if path.exists():
                for event in read_log_file(path, client_ids=wanted, source=source):
                    if event.ts_ms > delivered:
                        continue
                    if group is not None and group != iot_logging.DEFAULT_LOG_GROUP:
                        event.fields["logGroup"] = group
                    yield event
