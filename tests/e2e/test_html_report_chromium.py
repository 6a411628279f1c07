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
