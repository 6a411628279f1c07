"""AWS IoT Core's limits on the topics a client may publish to and the topic filters it may subscribe
to, as the AWS IoT limits page documents them ("Protocol Limits" in DG limits-iot.html, read in an
archived copy; the page now points to "AWS IoT Core endpoints and quotas",
https://docs.aws.amazon.com/general/latest/gr/iot-core.html#limits_iot):

- Topic size: a topic in a publish request is at most 256 bytes of UTF-8; the three mandatory
  segments of a Basic Ingest topic ($AWS/rules/rule-name/) do not count.
- Maximum number of slashes in topic and topic filter: at most 7 forward slashes in the topic of a
  publish or the filter of a subscribe request; again the Basic Ingest prefix's slashes do not count.

The AWS IoT Device SDKs apply the same numbers client-side (JS SDK v2 AwsIotCoreDefaults: topics
and filters at most 7 slashes, topics at most 256 bytes). The documented size limit names publish
topics only, so a subscription's filter is held to the slash limit alone."""

from __future__ import annotations

import re

MAX_TOPIC_BYTES = 256
MAX_TOPIC_SLASHES = 7
# "$AWS/rules/rule-name/" in the page; the reserved-topics page spells the prefix $aws/rules/.
_BASIC_INGEST = re.compile(r"\$aws/rules/[^/]*/", re.IGNORECASE)


def _without_basic_ingest(topic: str) -> str:
    m = _BASIC_INGEST.match(topic)
    return topic[m.end():] if m else topic


def topic_problem(topic: str, *, is_filter: bool = False) -> str | None:
    """Why AWS IoT would refuse this topic (or, with is_filter, topic filter); None when it fits."""
    rest = _without_basic_ingest(topic)
    slashes = rest.count("/")
    if slashes > MAX_TOPIC_SLASHES:
        kind = "topic filter" if is_filter else "topic"
        return f"{kind} has {slashes} forward slashes; AWS IoT allows at most {MAX_TOPIC_SLASHES}"
    if not is_filter:
        size = len(rest.encode("utf-8", "surrogatepass"))
        if size > MAX_TOPIC_BYTES:
            return f"topic is {size:,} bytes; AWS IoT allows at most {MAX_TOPIC_BYTES} (UTF-8)"
    return None


__all__ = ["MAX_TOPIC_BYTES", "MAX_TOPIC_SLASHES", "topic_problem"]
