"""AWS IoT V2 logging as GetV2LoggingOptions describes it, with event-level logging
(docs/aws-iot-now.md §2): an account default level, and per event type a level and a log group
(`eventConfigurations`, BOTO iot 1.44.8 `LogEventConfiguration`). cloud-check reads an account's
options with this, correlate finds each event type's log group with it, and the stand-in decides
what to write with it, so the three never disagree."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from authprobe.aws.authn_error import EVENT_TYPE as AUTHN_ERROR

DEFAULT_LOG_GROUP = "AWSIotLogsV2"  # [C] IOTARCH cloud-watch-logs.md
LOG_LEVELS = ("DEBUG", "INFO", "WARN", "ERROR", "DISABLED")  # [C] BOTO LogLevel
_RANK = {level: i for i, level in enumerate(LOG_LEVELS)}
# [C] BOTO LogDestination: 1-512 characters of this set.
LOG_GROUP_NAME = re.compile(r"[.\-_/#A-Za-z0-9]{1,512}")
# [I] Event types are the entries' own eventType strings (DG cwl-format.html sections); the API says
# only "like Connect, Publish, and Disconnect". `get-v2-logging-options --verbose` lists an account's.
EVENT_TYPES = ("Connect", "Disconnect", "Ping", AUTHN_ERROR, "DeleteConnection", "GetRetainedMessage",
               "ListRetainedMessage", "ListSubscriptions", "GetConnection", "Publish-In", "Publish-Out",
               "Queued", "Subscribe", "Unsubscribe", "SendDirectMessage")
# [I] Off until an event configuration turns it on, whatever the default level (NEWS summaries and a
# field report: V2 logging at ERROR wrote no AuthNError entries until the event type was enabled).
OFF_UNLESS_ENABLED = (AUTHN_ERROR,)
# What the diagnosis reads: the failures of these event types, logged at ERROR (a Connect Success,
# logged at INFO, also rules out every connect-stage cause; the per-client DEBUG level gives it).
NEEDED = ("Connect", AUTHN_ERROR, "Subscribe", "Publish-In")
NEEDED_LEVEL = "ERROR"


@dataclass(frozen=True)
class EventLogging:
    """Where and how far one event type is logged: `level` (DISABLED when not at all) and the log
    group; `configured` when an event configuration names it."""

    event_type: str
    level: str
    log_group: str
    configured: bool = False

    def logs(self, entry_level: str) -> bool:
        """Whether an entry at `entry_level` (ERROR for failures, INFO for successes) is written."""
        return self.level != "DISABLED" and _RANK.get(entry_level, 0) >= _RANK.get(self.level, 0)


def event_configuration(options: dict[str, Any] | None, event_type: str) -> dict[str, Any] | None:
    for conf in (options or {}).get("eventConfigurations") or []:
        if isinstance(conf, dict) and conf.get("eventType") == event_type:
            return conf
    return None


def effective(options: dict[str, Any] | None, event_type: str) -> EventLogging:
    """How `event_type` is logged under GetV2LoggingOptions `options` (None: never configured).
    The event's own level wins over the default; its logDestination over AWSIotLogsV2 [I]."""
    conf = event_configuration(options, event_type)
    group = (conf or {}).get("logDestination") or DEFAULT_LOG_GROUP
    if not options or options.get("disableAllLogs"):
        return EventLogging(event_type, "DISABLED", group, conf is not None)
    level = (conf or {}).get("logLevel")
    if not level:
        level = "DISABLED" if conf is None and event_type in OFF_UNLESS_ENABLED \
            else options.get("defaultLogLevel") or "ERROR"
    return EventLogging(event_type, level, group, conf is not None)


def log_groups(options: dict[str, Any] | None, event_types: tuple[str, ...] = EVENT_TYPES) -> list[str]:
    """Every log group `event_types` may be written to: AWSIotLogsV2 first, then each destination."""
    groups = [DEFAULT_LOG_GROUP]
    for event_type in event_types:
        group = effective(options, event_type).log_group
        if group not in groups:
            groups.append(group)
    for conf in (options or {}).get("eventConfigurations") or []:
        group = conf.get("logDestination") if isinstance(conf, dict) else None
        if group and group not in groups:
            groups.append(group)
    return groups


def verbose(options: dict[str, Any] | None) -> dict[str, Any] | None:
    """GetV2LoggingOptions(verbose=true) from the plain answer: every known event type with its
    configuration [I] (AWS: "returns every event type that event-based logging supports")."""
    if options is None:
        return None
    confs = []
    for event_type in EVENT_TYPES:
        conf = event_configuration(options, event_type)
        level = effective(options, event_type).level if not options.get("disableAllLogs") else None
        entry = {"eventType": event_type, "logLevel": (conf or {}).get("logLevel") or level or "DISABLED"}
        if (conf or {}).get("logDestination"):
            entry["logDestination"] = conf["logDestination"]  # type: ignore[index]
        confs.append(entry)
    known = set(EVENT_TYPES)
    confs += [dict(c) for c in options.get("eventConfigurations") or [] if c.get("eventType") not in known]
    return {**options, "eventConfigurations": confs}


def set_command(options: dict[str, Any] | None, enable: dict[str, str]) -> str:
    """The `aws iot set-v2-logging-options` line that sets `enable` ({eventType: level}) and keeps
    the rest: the role, the default level and every other event configuration. Whether the call
    replaces or merges the list is not documented [?], so the whole list is written back."""
    options = options or {}
    role = options.get("roleArn") or "ROLE_ARN"
    default = options.get("defaultLogLevel") or "ERROR"
    entries: dict[str, dict[str, Any]] = {}
    for conf in options.get("eventConfigurations") or []:
        if not isinstance(conf, dict) or not conf.get("eventType"):
            continue
        # verbose answers list every event type; keep those that differ from the default.
        if conf.get("logDestination") or (conf.get("logLevel") and conf.get("logLevel") != default):
            entries[conf["eventType"]] = {k: conf[k] for k in ("eventType", "logLevel", "logDestination") if conf.get(k)}
    for event_type, level in enable.items():
        entries[event_type] = {**entries.get(event_type, {"eventType": event_type}), "logLevel": level}
    parts = [f"aws iot set-v2-logging-options --role-arn {role} --default-log-level {default}"]
    if options.get("disableAllLogs"):
        parts.append("--no-disable-all-logs")
    if entries:
        shorthand = [",".join(f"{k}={v}" for k, v in e.items()) for e in entries.values()]
        parts.append("--event-configurations " + " ".join(shorthand))
    return " ".join(parts)
