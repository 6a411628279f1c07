"""The HTML report as a browser shows it: Chromium runs the page's script and the drawn time axis,
the verdicts and the diagnosis are read back from the resulting DOM."""

import re
from html.parser import HTMLParser

from authprobe.report import html as html_report
from authprobe.report.json_report import build_report
from tests.fixtures.chromium import dump_dom
from tests.fixtures.html_report_run import EVENTS, RECORDS


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rects, self.circles, self.drawn, self.overall = [], [], None, None
        self._in_overall = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "rect":
            self.rects.append(a)
        elif tag == "circle":
            self.circles.append(a)
        if "data-drawn" in a:
            self.drawn = int(a["data-drawn"])
        self._in_overall = a.get("id") == "overall"

    def handle_data(self, data):
        if self._in_overall:
            self.overall = data.strip()
            self._in_overall = False


def test_chromium_draws_the_time_axis_and_shows_the_verdict(tmp_path):
    healthy = [dict(r, run="r2") for r in RECORDS[:2]] + [{"k": "end", "run": "r2", "verdict": "pass"}]
    page = tmp_path / "report.html"
    page.write_text(html_report.render([(build_report(RECORDS), EVENTS), (build_report(healthy), [])]))
    dom = dump_dom(page)
    seen = _Collect()
    seen.feed(dom)
    assert seen.overall == "fail"
    # run 1: two steps + two cloud events; run 2: one step, no events
    assert [r["class"] for r in seen.rects] == ["step pass", "step fail", "step pass"]
    assert [c["class"] for c in seen.circles] == ["event Failure", "event info"]
    # the failing step is drawn 3x wider than the passing one (1500 ms vs 500 ms)
    widths = [float(r["width"]) for r in seen.rects[:2]]
    assert abs(widths[1] / widths[0] - 3.0) < 0.01
    assert re.search(r"closed_before_connack", dom)
    assert "lambda-permission-missing" in dom  # a device-only diagnosis lists its candidates


def test_chromium_draws_nearby_events_apart_without_stretching_the_axis(tmp_path):
    """A replay a minute later and another run's Connect are drawn on their own lane, pinned to the
    axis's edge: the run's two steps keep their proportions and the axis says 2 s, not 60."""
    nearby = [{"timestamp": 1795683660000, "message": "[replay] authorizing", "attributed": "replay",
               "nearby": "authprobe's own TestInvokeAuthorizer replay, not the device"},
              {"timestamp": "2026-11-26 08:59:30.000", "eventType": "Connect", "status": "Success",
               "nearby": "not this run: it follows the connection of run r0"}]
    page = tmp_path / "nearby.html"
    page.write_text(html_report.render([(build_report(RECORDS), EVENTS + nearby)]))
    dom = dump_dom(page)
    seen = _Collect()
    seen.feed(dom)
    assert [c["class"] for c in seen.circles] == ["event Failure", "event info", "nearby info", "nearby Success"]
    assert seen.drawn == 4   # the run's own: two steps, two events
    assert "+2.000 s" in dom and "data-nearby=\"2\"" in dom
    xs = [float(c["cx"]) for c in seen.circles[2:]]
    left, right = float(seen.rects[0]["x"]), max(float(r["x"]) + float(r["width"]) for r in seen.rects)
    assert xs[0] >= right - 0.5 and xs[1] <= left + 0.5   # pinned to the edges, after and before the run
    assert "58.0 s after the run" in dom and "30.0 s before the run" in dom
