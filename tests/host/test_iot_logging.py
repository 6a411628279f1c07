"""Event-level logging: how GetV2LoggingOptions' eventConfigurations decide each event type's level
and log group, and the stand-in's [logging] table that models it."""

from __future__ import annotations

from pathlib import Path

import pytest

from authprobe.aws import iot_logging
from authprobe.emulator.config import config_from_dict
from authprobe.errors import ConfigError

OPTIONS = {"roleArn": "arn:aws:iam::111122223333:role/IoTLogging", "defaultLogLevel": "ERROR",
           "disableAllLogs": False,
           "eventConfigurations": [{"eventType": "Connection.AuthNError", "logLevel": "ERROR",
                                    "logDestination": "iot/authn-errors"},
                                   {"eventType": "Connect", "logLevel": "INFO"},
                                   {"eventType": "Ping", "logLevel": "DISABLED"},
                                   {"eventType": "Subscribe", "logDestination": "iot/subscribe"}]}


@pytest.mark.parametrize("event_type, level, group, configured", [
    ("Connection.AuthNError", "ERROR", "iot/authn-errors", True),
    ("Connect", "INFO", "AWSIotLogsV2", True),
    ("Ping", "DISABLED", "AWSIotLogsV2", True),
    ("Subscribe", "ERROR", "iot/subscribe", True),     # a destination without a level: the default level
    ("Publish-In", "ERROR", "AWSIotLogsV2", False),
])
def test_effective_level_and_group(event_type, level, group, configured):
    assert iot_logging.effective(OPTIONS, event_type) == iot_logging.EventLogging(event_type, level, group, configured)


def test_authn_errors_are_off_unless_enabled_and_everything_is_off_when_disabled():
    plain = {"defaultLogLevel": "DEBUG", "disableAllLogs": False}
    assert iot_logging.effective(plain, "Connection.AuthNError").level == "DISABLED"
    assert iot_logging.effective(plain, "Connect").level == "DEBUG"
    assert iot_logging.effective(dict(OPTIONS, disableAllLogs=True), "Connect").level == "DISABLED"
    assert iot_logging.effective(None, "Connect").level == "DISABLED"


def test_levels_let_failures_and_successes_through():
    error = iot_logging.EventLogging("Connect", "ERROR", "g")
    assert error.logs("ERROR") and not error.logs("INFO")
    assert iot_logging.EventLogging("Connect", "INFO", "g").logs("INFO")
    assert not iot_logging.EventLogging("Connect", "DISABLED", "g").logs("ERROR")


def test_log_groups_lists_every_destination_once_default_first():
    assert iot_logging.log_groups(OPTIONS) == ["AWSIotLogsV2", "iot/authn-errors", "iot/subscribe"]
    assert iot_logging.log_groups(None) == ["AWSIotLogsV2"]


def test_verbose_lists_every_event_type_with_its_level():
    answer = iot_logging.verbose({"defaultLogLevel": "WARN", "disableAllLogs": False})
    levels = {c["eventType"]: c["logLevel"] for c in answer["eventConfigurations"]}
    assert set(levels) == set(iot_logging.EVENT_TYPES)
    assert levels["Connect"] == "WARN" and levels["Connection.AuthNError"] == "DISABLED"


def _base(tmp_path: Path) -> dict:
    (tmp_path / "h.py").write_text("def handler(e, c):\n    return {}\n")
    return {"endpoint": "x-ats.iot.us-east-1.amazonaws.com", "functions": {"f": {"handler": "h.py:handler"}},
            "authorizers": {"A": {"function": "f", "token_key_name": "token", "signing_disabled": True}}}


def test_standin_logging_table_becomes_the_options(tmp_path):
    data = _base(tmp_path)
    data["logging"] = {"default_level": "disabled", "events": {
        "Connection.AuthNError": {"level": "error", "destination": "iot/authn"}, "Conect": {"level": "INFO"}}}
    cfg = config_from_dict(data, tmp_path)
    assert cfg.logging == {"defaultLogLevel": "DISABLED", "disableAllLogs": False, "eventConfigurations": [
        {"eventType": "Connection.AuthNError", "logLevel": "ERROR", "logDestination": "iot/authn"},
        {"eventType": "Conect", "logLevel": "INFO"}]}
    assert any("did you mean Connect?" in w for w in cfg.warnings)


def test_standin_logging_problems_are_named(tmp_path):
    data = _base(tmp_path)
    data["log_level"] = "INFO"
    data["logging"] = {"default_level": "LOUD", "events": {"Connect": {"level": "x", "destination": "no spaces"}}}
    with pytest.raises(ConfigError) as err:
        config_from_dict(data, tmp_path)
    text = str(err.value)
    assert "log_level and [logging] both" in text and "default_level must be one of" in text
    assert '[logging.events."Connect"].level' in text and "destination must be a log group name" in text


def test_standin_without_logging_table_keeps_log_level(tmp_path):
    data = _base(tmp_path)
    data["log_level"] = "DISABLED"
    assert config_from_dict(data, tmp_path).logging == {"defaultLogLevel": "DISABLED", "disableAllLogs": True}
