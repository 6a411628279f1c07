"""What the stand-in leaves behind for a troubleshooter, in the layout of docs/contracts.md section 5:
IoT log group records (AWSIotLogsV2), per-function Lambda log groups, Lambda metrics and the
descriptions (cloud.json) in AWS API response shapes.

Field names and formats follow DG cwl-format.html (timestamp "YYYY-MM-DD HH:MM:SS.mmm", UTC)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from authprobe.aws import authn_error, iot_logging
from authprobe.emulator.config import EmulatorConfig
from authprobe.errors import ConfigError


def iot_timestamp(when: float | None = None) -> str:
    t = dt.datetime.fromtimestamp(time.time() if when is None else when, dt.UTC)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + f"{t.microsecond // 1000:03d}"


def iso(when: float) -> str:
    return dt.datetime.fromtimestamp(when, dt.UTC).isoformat().replace("+00:00", "Z")


def log_group_file(logs_dir: Path, group: str) -> Path:
    """The file standing for log group `group`: logs/AWSIotLogsV2.jsonl, or the group name
    percent-encoded (a name may hold '/') plus .jsonl."""
    return logs_dir / f"{quote(group, safe='')}.jsonl"


class CloudRecords:
    """Appends records to the state directory; thread-safe, one JSON object per line, flushed."""

    def __init__(self, config: EmulatorConfig):
        self.config = config
        self.state_dir = config.state_dir
        self.logs_dir = self.state_dir / "logs"
        try:
            (self.logs_dir / "lambda").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the stand-in's state directory {self.state_dir}: "
                              f"{exc.strerror or exc} (set state_dir to a writable folder)") from None
        self.iot_log_path = self.logs_dir / "AWSIotLogsV2.jsonl"
        self.metrics_path = self.state_dir / "metrics.jsonl"
        self._lock = threading.Lock()
        self._replaying = threading.local()

    @contextmanager
    def replaying(self) -> Iterator[None]:
        """Function log lines this thread writes inside the block are marked `"replay": true`: they
        come from a TestInvokeAuthorizer call, not from a device (the host labels them `replay`)."""
        self._replaying.on = True
        try:
            yield
        finally:
            self._replaying.on = False

    def _append(self, path: Path, record: dict) -> None:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock, open(path, "a", encoding="utf-8") as f:
            f.write(line)

    def iot_log(self, event_type: str, status: str, *, level: str | None = None, trace_id: str | None = None,
                **fields: Any) -> dict:
        """One AWS IoT V2 log record, written to its event type's log group when the logging
        options ([logging]) let its level through. Failures log at ERROR, successes at INFO
        (DG cwl-format.html)."""
        level = level or ("ERROR" if status == "Failure" else "INFO")
        record: dict[str, Any] = {
            "timestamp": iot_timestamp(),
            "logLevel": level,
            "traceId": trace_id or str(uuid.uuid4()),
            "accountId": self.config.account,
            "status": status,
            "eventType": event_type,
        }
        record.update({k: v for k, v in fields.items() if v is not None})
        logging = iot_logging.effective(self.config.logging, event_type)
        if logging.logs(level):
            self._append(log_group_file(self.logs_dir, logging.log_group), record)
        return record

    def authn_error(self, *, reason: str, details: str, peer: tuple[str, int], server_name: str | None,
                    authentication_type: str = "CUSTOM_AUTH", destination: tuple[str, int] | None = None,
                    protocol: str = "MQTT", trace_id: str | None = None) -> dict:
        """A Connection.AuthNError entry and its AWS/IoT metric (the metric counts whatever the
        logging settings say). Field names for SNI and destination are our guesses [?]
        (aws/authn_error.py); the entry carries no clientId [?]: the announcement lists none."""
        self.iot_metric(authn_error.EVENT_TYPE, protocol=protocol)
        fields: dict[str, Any] = {"authenticationType": authentication_type, "sourceIp": peer[0],
                                  "sourcePort": peer[1], authn_error.SNI_FIELDS[0]: server_name}
        if destination is not None:
            fields[authn_error.DESTINATION_IP_FIELDS[0]] = destination[0]
            fields[authn_error.DESTINATION_PORT_FIELDS[0]] = destination[1]
        return self.iot_log(authn_error.EVENT_TYPE, "Failure", level="ERROR", trace_id=trace_id, **fields,
                            reason=reason, details=details)

    def iot_metric(self, metric: str, value: float = 1, protocol: str = "MQTT") -> None:
        """One AWS/IoT datapoint (DG metrics_dimensions.html: dimension Protocol = MQTT | HTTP)."""
        self._append(self.metrics_path, {
            "namespace": "AWS/IoT", "metric": metric, "dimensions": {"Protocol": protocol},
            "timestamp": int(time.time() * 1000), "value": float(value), "unit": "Count"})

    def lambda_log(self, function: str, message: str, when: float | None = None, stream: str | None = None) -> None:
        """One line of /aws/lambda/<function>; `stream` names the execution environment's log stream
        (each environment's lines are in order in its own stream, as on Lambda), so lines without a
        request id can be told apart between invocations."""
        record: dict[str, Any] = {"timestamp": int((time.time() if when is None else when) * 1000), "message": message}
        if stream:
            record["logStream"] = stream
        if getattr(self._replaying, "on", False):
            record["replay"] = True
        self._append(self.logs_dir / "lambda" / f"{function}.jsonl", record)

    def metric(self, function: str, metric: str, value: float, unit: str) -> None:
        self._append(self.metrics_path, {
            "namespace": "AWS/Lambda", "metric": metric, "dimensions": {"FunctionName": function},
            "timestamp": int(time.time() * 1000), "value": float(value), "unit": unit})

    def write_descriptions(self, started: float) -> Path:
        """cloud.json: what DescribeAuthorizer, DescribeDomainConfiguration, GetPolicy... would say."""
        cfg = self.config
        when = iso(started)
        authorizers = {}
        for a in cfg.authorizers.values():
            desc: dict[str, Any] = {
                "authorizerName": a.name,
                "authorizerArn": cfg.authorizer_arn(a.name),
                "authorizerFunctionArn": cfg.function_arn(a.function),
                "tokenSigningPublicKeys": dict(a.public_keys_pem),
                "status": a.status,
                "creationDate": when,
                "lastModifiedDate": when,
                "signingDisabled": a.signing_disabled,
                "enableCachingForHttp": a.enable_caching_for_http,
            }
            if a.token_key_name is not None:
                desc["tokenKeyName"] = a.token_key_name
            authorizers[a.name] = desc
        domains = {}
        for d in cfg.domains.values():
            desc = {
                "domainConfigurationName": d.key,
                "domainConfigurationArn": f"arn:aws:iot:{cfg.region}:{cfg.account}:domainconfiguration/{d.key}/local",
                "domainName": d.name,
                "serverCertificates": [],
                "domainConfigurationStatus": d.status,
                "serviceType": "DATA",
                "domainType": "CUSTOMER_MANAGED",
                "lastStatusChangeDate": when,
                "authenticationType": d.authentication_type,
                "applicationProtocol": d.application_protocol,
            }
            if d.default_authorizer:
                desc["authorizerConfig"] = {"defaultAuthorizerName": d.default_authorizer,
                                            "allowAuthorizerOverride": d.allow_authorizer_override}
            domains[d.key] = desc
        functions = {}
        for f in cfg.functions.values():
            functions[f.name] = {"FunctionName": f.name, "FunctionArn": cfg.function_arn(f.name),
                                 "Handler": f.handler, "Timeout": f.timeout_s, "Runtime": "python3.11",
                                 "MemorySize": f.memory_mb,
                                 "LoggingConfig": {"LogFormat": f.log_format, "LogGroup": f"/aws/lambda/{f.name}"}}
            if f.reserved_concurrency is not None:  # GetFunctionConcurrency's field
                functions[f.name]["ReservedConcurrentExecutions"] = f.reserved_concurrency
        policies = {f.name: json.dumps(f.resource_policy) for f in cfg.functions.values()
                    if f.resource_policy is not None}
        data = {
            "config_path": str(cfg.path) if cfg.path else None,
            "account": cfg.account,
            "region": cfg.region,
            "endpoints": {"iot:Data-ATS": cfg.endpoint},
            "authorizers": authorizers,
            "default_authorizer": cfg.default_authorizer,
            "domain_configurations": domains,
            "functions": functions,
            "function_policies": policies,
            "logging": {"roleArn": f"arn:aws:iam::{cfg.account}:role/authprobe-local-iot-logging", **cfg.logging},
            # Not an AWS field: how late the stand-in's records count as delivered ([logging]).
            "delivery_delay_s": cfg.delivery_delay_s,
        }
        path = self.state_dir / "cloud.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(path)
        return path
