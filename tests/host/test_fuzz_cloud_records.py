"""Log records are untrusted input (another account's writer, a hand-edited export, a field AWS may
rename): function-log lines in either format and records without a client id are read or ignored,
never a crash, and a record matched by port belongs to one run only."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authprobe.aws import authn_error, lambda_logs
from authprobe.cloud.connection_match import BY_PORT, RunConnection, assign, match

pytestmark = pytest.mark.fuzz

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=12))
JSONISH = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                       max_leaves=12)
KINDS = st.sampled_from(["platform.start", "platform.report", "platform.runtimeDone", "platform.initStart", "x"])


@given(st.text(max_size=200))
def test_any_text_is_a_system_line_or_none(text):
    line = lambda_logs.system_line(text)
    assert line is None or line.kind in ("start", "end", "report", "runtime-done")
    lambda_logs.is_timeout(text)


@given(KINDS, JSONISH, JSONISH)
def test_any_json_event_is_read_without_a_crash(kind, record, metrics):
    if isinstance(record, dict):
        record = {**record, "metrics": metrics}
    line = lambda_logs.system_line(json.dumps({"time": "t", "type": kind, "record": record}))
    if line is not None:
        assert line.duration_ms is None or isinstance(line.duration_ms, float)
        assert line.request_id is None or isinstance(line.request_id, str)


@given(st.dictionaries(st.sampled_from(["reason", "authenticationType", "destinationPort", "sourcePort", "sni",
                                        "serverNameIndication", "eventType", "topicName", "protocol"]),
                       SCALARS, max_size=9),
       st.integers(min_value=0, max_value=10_000))
def test_any_record_matches_or_not_without_a_crash(record, ts):
    confirmed, supported = authn_error.causes_for(record)
    assert isinstance(confirmed, tuple) and isinstance(supported, tuple)
    run = RunConnection(0, 5000, source_port=50412, sni="a.example", topic="t")
    assert match(record, ts, run) in (None, "source_port", "sni", "time")


@given(st.lists(st.tuples(st.integers(0, 100), st.sampled_from([None, 1, 2, 3]), st.sampled_from([None, "a", "b"])),
                max_size=12),
       st.lists(st.tuples(st.sampled_from([None, 1, 2]), st.sampled_from([None, "a"])), min_size=1, max_size=4))
def test_a_record_matched_by_port_goes_to_one_run(records, runs):
    recs = [(ts, {"eventType": "Connection.AuthNError", "sourcePort": port, "sni": sni}) for ts, port, sni in records]
    conns = [RunConnection(0, 100, port, sni) for port, sni in runs]
    out = assign(recs, conns, [True] * len(conns))
    for index in range(len(recs)):
        holders = [i for i, pairs in enumerate(out) for j, how in pairs if j == index]
        by_port = [i for i, pairs in enumerate(out) for j, how in pairs if j == index and how == BY_PORT]
        assert not by_port or holders == by_port
        assert len(holders) <= 1  # one run per record (the correlation's partition)
