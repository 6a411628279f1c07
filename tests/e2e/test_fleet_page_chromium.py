"""The line's page (`authprobe report --fleet`) as a browser shows it: Chromium lays out the inline
SVG plots, and the pass-rate lines per station, their points, the stacked root-cause bars, the
figures and the tables are read back from the resulting DOM."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from authprobe import cli
from authprobe.store import open_store
from tests.fixtures.chromium import dump_dom
from tests.fixtures.fleet_runs import fill_line

LONG = "station-with-a-rather-long-name-c"


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.lines, self.points, self.bars, self.external = [], [], [], []
        self.drawn = None
        self.ids: dict[str, str] = {}
        self._open_id: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = a.get("class") or ""
        if tag == "polyline" and "station-line" in cls:
            self.lines.append(a)
        elif tag == "circle" and "point" in cls:
            self.points.append(a)
        elif tag == "rect" and "cause" in cls:
            self.bars.append(a)
        if tag == "body" and "data-drawn" in a:
            self.drawn = int(a["data-drawn"])
        for attr in ("src", "href"):
            if a.get(attr):
                self.external.append(a[attr])
        self._open_id = a.get("id") if a.get("id") in ("pass-rate", "runs", "slowest-step") else None

    def handle_data(self, data):
        if self._open_id:
            self.ids[self._open_id] = data.strip()
            self._open_id = None


def test_chromium_draws_the_line_page(tmp_path, capsys):
    store_path = tmp_path / "runs.sqlite"
    with open_store(store_path) as store:
        fill_line(store)
    page = tmp_path / "line.html"
    assert cli.main(["report", "--fleet", "--since", "24h", "--store", str(store_path), "--html", str(page)]) == 0
    assert "20 run(s), pass rate 75.0%" in capsys.readouterr().err
    dom = dump_dom(page)
    seen = _Collect()
    seen.feed(dom)
    assert seen.external == []                       # self-contained: nothing fetched
    assert seen.ids == {"pass-rate": "75.0%", "runs": "20", "slowest-step": "mqtt_connect"}
    # One line per station; a point per hour a station ran boards in (st-a 10, st-b 6, c 4: one run each).
    assert sorted(line["data-station"] for line in seen.lines) == sorted(["st-a", "st-b", LONG])
    per_station = {s: [p for p in seen.points if p["data-station"] == s] for s in ("st-a", "st-b", LONG)}
    assert {s: len(p) for s, p in per_station.items()} == {"st-a": 10, "st-b": 6, LONG: 4}
    assert sorted(float(p["data-rate"]) for p in per_station["st-b"]) == [0, 0, 0, 1, 1, 1]
    # A failed point sits at the bottom of the plot, a passed one at the top.
    ys = {float(p["data-rate"]): float(p["cy"]) for p in per_station["st-b"]}
    assert ys[0] > ys[1]
    # Root causes stacked per hour: 2 authorizer-deny, 2 wifi-failure, 1 undiagnosed (the open run).
    counts: dict[str, int] = {}
    for bar in seen.bars:
        counts[bar["data-cause"]] = counts.get(bar["data-cause"], 0) + int(bar["data-count"])
        assert float(bar["height"]) > 0
    assert counts == {"authorizer-deny": 2, "wifi-failure": 2, "undiagnosed": 1}
    # The browser laid out every mark.
    assert seen.drawn == len(seen.lines) + len(seen.points) + len(seen.bars) == 3 + 20 + 5
    # The tables, identifiers whole; the figures ride along as JSON.
    assert re.search(r"<code>" + re.escape(LONG) + r"</code>", dom)
    assert re.search(r'id="root-causes".*authorizer-deny.*40\.0%', dom, re.S)
    data = json.loads(re.search(r'<script type="application/json" id="fleet-data">(.*?)</script>', dom, re.S).group(1))
    assert data["schema"] == "authprobe.fleet/1" and data["totals"]["pass_rate"] == 0.75


def test_fleet_page_usage_errors(tmp_path, capsys):
    assert cli.main(["report", "--fleet", "latest", "--html", str(tmp_path / "x.html"),
                     "--store", str(tmp_path / "runs.sqlite")]) == 2
    assert "leave out the run ids" in capsys.readouterr().err
    assert cli.main(["report", "--fleet", "--html", str(tmp_path / "x.html"), "--store", str(tmp_path / "none.sqlite")]) == 2
    assert "no run store at" in capsys.readouterr().err
    assert cli.main(["report", "--html", str(tmp_path / "x.html")]) == 2
    assert "--fleet" in capsys.readouterr().err
