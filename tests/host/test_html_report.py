"""The HTML report's data: steps and cloud events on one UTC axis, escaped, self-contained."""

import json

from authprobe.report import html as html_report
from authprobe.report.json_report import build_report
from tests.fixtures.html_report_run import EVENTS, RECORDS


def test_timeline_lays_steps_end_to_end_from_the_begin_time():
    tl = html_report.timeline(build_report(RECORDS), EVENTS)
    t0 = html_report._parse_utc("2026-11-26T09:00:00Z")
    assert [(s["start"] - t0, s["end"] - t0) for s in tl["steps"]] == [(0, 0.5), (0.5, 2.0)]
    assert [round(e["start"] - t0, 3) for e in tl["events"]] == [1.25, 1.3]
    assert tl["events"][0]["status"] == "Failure"


def test_host_collection_time_anchors_the_steps_to_the_millisecond():
    report = build_report(RECORDS)
    report["collection"] = {"started": "2026-11-26T08:59:58.750Z", "timings": {"begin_ms": 1300}}
    tl = html_report.timeline(report, EVENTS)
    t0 = html_report._parse_utc("2026-11-26T09:00:00Z")
    assert round(tl["steps"][0]["start"] - t0, 3) == 0.05


def test_without_device_time_steps_are_not_placed_but_events_are():
    recs = [dict(RECORDS[0], utc=None)] + RECORDS[1:]
    tl = html_report.timeline(build_report(recs), EVENTS)
    assert tl["steps"] == [] and len(tl["events"]) == 2


def test_page_escapes_device_text_and_embeds_its_data():
    page = html_report.render([(build_report(RECORDS), EVENTS)])
    assert "dev<01>" not in page and "dev&lt;01&gt;" in page
    start = page.index("data-timeline='") + len("data-timeline='")
    data = json.loads(__import__("html").unescape(page[start:page.index("'", start)]))
    assert len(data["steps"]) == 2 and len(data["events"]) == 2
    assert "<link" not in page and "src=" not in page  # nothing fetched from elsewhere
