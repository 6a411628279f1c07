"""The fleet page (`authprobe report --fleet`): one self-contained HTML file of a line's runs over a
window: pass rate and counts, the pass rate over time per station, the root causes per time bucket
stacked, the groups table, the root-cause histogram and the slowest steps.

The plots are inline SVG drawn here from the figures (authprobe.fleet/1, made by store.fleet), so
the page needs no network and no script to show them; a few lines of inline script only count what
the browser laid out (`data-drawn`), which the Chromium test reads back."""

from __future__ import annotations

import html
import json
import time
from typing import Any

# Stations and root causes get colours of their own, so no station looks like a root cause.
STATION_COLOURS = ("#0969da", "#1f883d", "#8250df", "#1b7c83", "#57606a", "#116329", "#6639ba", "#0550ae")
CAUSE_COLOURS = ("#cf222e", "#bc4c00", "#bf3989", "#9a6700", "#a40e26", "#d4a72c", "#953800", "#e16f24")
W, H = 760, 250
LEFT, RIGHT, TOP, BOTTOM = 46, 14, 12, 34

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d2329;max-width:1100px}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px}
.meta{color:#57606a} .big{font-size:28px;font-weight:600}
table{border-collapse:collapse;width:100%;margin:6px 0}
td,th{border-bottom:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top;white-space:nowrap}
th{background:#f6f8fa;font-weight:600} td.n,th.n{text-align:right}
.bar{display:inline-block;height:10px;background:#cf222e;border-radius:2px}
.legend span{display:inline-block;margin-right:14px} .legend i{display:inline-block;width:10px;height:10px;
margin-right:4px;border-radius:2px}
svg text{font:11px system-ui,sans-serif;fill:#57606a} svg .grid{stroke:#d0d7de;stroke-width:1}
"""

# Counts the plotted marks the browser actually laid out (a mark with no box was not drawn).
_SCRIPT = """
let drawn = 0;
for (const el of document.querySelectorAll('svg .mark')) {
  const box = el.getBBox();
  if (box.width > 0 || box.height > 0) drawn++;
}
document.body.dataset.drawn = String(drawn);
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _script_json(value: Any) -> str:
    # JSON inside <script> is not HTML-decoded: only a closing tag could end it early.
    return json.dumps(value).replace("</", "<\\/")


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _colours(names: list[str], palette: tuple[str, ...]) -> dict[str, str]:
    return {name: palette[i % len(palette)] for i, name in enumerate(names)}


def _bucket_label(epoch: float, bucket_s: int) -> str:
    return time.strftime("%m-%d %H:%M" if bucket_s < 86400 else "%Y-%m-%d", time.gmtime(epoch))


def _x_axis(buckets: list[dict[str, Any]], bucket_s: int, x: Any) -> list[str]:
    if not buckets:
        return []
    last = len(buckets) - 1
    picks = sorted({0, last // 2, last})
    # The outer labels hang inwards so neither is cut at the plot's edge.
    anchor = {0: "start", last: "end"} if last else {0: "middle"}
    return [f'<text x="{x(i):.1f}" y="{H - 12}" text-anchor="{anchor.get(i, "middle")}">'
            f'{_esc(_bucket_label(buckets[i]["start_epoch"], bucket_s))} UTC</text>' for i in picks]


def pass_rate_plot(stats: dict[str, Any], stations: list[str], colour: dict[str, str]) -> str:
    """One line per station: its pass rate in each time bucket it ran boards in."""
    timeline = stats["timeline"]
    buckets = timeline["buckets"]
    n = len(buckets)
    inner_w, inner_h = W - LEFT - RIGHT, H - TOP - BOTTOM

    def x(i: int) -> float:
        return LEFT + (inner_w / 2 if n == 1 else i * inner_w / (n - 1))

    def y(rate: float) -> float:
        return TOP + (1 - rate) * inner_h

    parts = [f'<svg id="pass-rate-plot" viewBox="0 0 {W} {H}" width="100%" role="img" '
             f'aria-label="pass rate over time per station">']
    for pct in (0, 25, 50, 75, 100):
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{W - RIGHT}" y1="{y(pct / 100):.1f}" y2="{y(pct / 100):.1f}"/>'
                     f'<text x="{LEFT - 6}" y="{y(pct / 100) + 4:.1f}" text-anchor="end">{pct}%</text>')
    for station in stations:
        points = []
        for i, b in enumerate(buckets):
            s = b["stations"].get(station)
            if s and s["runs"]:
                points.append((i, s["pass"] / s["runs"], s, b))
        if not points:
            continue
        path = " ".join(f"{x(i):.1f},{y(rate):.1f}" for i, rate, _, _ in points)
        parts.append(f'<polyline class="mark station-line" data-station="{_esc(station)}" points="{path}" '
                     f'fill="none" stroke="{colour[station]}" stroke-width="2"/>')
        for i, rate, s, b in points:
            parts.append(f'<circle class="mark point" data-station="{_esc(station)}" data-rate="{rate:.4f}" '
                         f'cx="{x(i):.1f}" cy="{y(rate):.1f}" r="3.5" fill="{colour[station]}"><title>'
                         f'{_esc(station)} {_esc(b["start"])}: {s["pass"]}/{s["runs"]} passed</title></circle>')
    parts += _x_axis(buckets, timeline["bucket_s"], x)
    parts.append("</svg>")
    return "".join(parts)


def root_cause_plot(stats: dict[str, Any], causes: list[str], colour: dict[str, str]) -> str:
    """Per time bucket, a bar of the runs that did not pass, stacked by their leading root cause."""
    timeline = stats["timeline"]
    buckets = timeline["buckets"]
    n = max(len(buckets), 1)
    inner_w, inner_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    top = max([sum(b["root_causes"].values()) for b in buckets] + [1])
    slot = inner_w / n
    bar = max(slot * 0.7, 1.0)

    def x(i: int) -> float:
        return LEFT + slot * (i + 0.5)

    parts = [f'<svg id="root-cause-plot" viewBox="0 0 {W} {H}" width="100%" role="img" '
             f'aria-label="root causes of the runs that did not pass, per time bucket">']
    for tick in sorted({0, top // 2, top}):   # whole runs only
        ypos = TOP + (1 - tick / top) * inner_h
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{W - RIGHT}" y1="{ypos:.1f}" y2="{ypos:.1f}"/>'
                     f'<text x="{LEFT - 6}" y="{ypos + 4:.1f}" text-anchor="end">{tick}</text>')
    for i, b in enumerate(buckets):
        base = TOP + inner_h
        for cause in causes:
            count = b["root_causes"].get(cause, 0)
            if not count:
                continue
            height = count / top * inner_h
            base -= height
            parts.append(f'<rect class="mark cause" data-cause="{_esc(cause)}" data-count="{count}" '
                         f'x="{x(i) - bar / 2:.1f}" y="{base:.1f}" width="{bar:.1f}" height="{height:.1f}" '
                         f'fill="{colour[cause]}"><title>{_esc(b["start"])}: {count} x {_esc(cause)}</title></rect>')
    parts += _x_axis(buckets, timeline["bucket_s"], x)
    parts.append("</svg>")
    return "".join(parts)


def _legend(names: list[str], colour: dict[str, str]) -> str:
    return ('<div class="legend">' + "".join(f'<span><i style="background:{colour[n]}"></i>{_esc(n)}</span>'
                                              for n in names) + "</div>")


def _groups_table(stats: dict[str, Any]) -> str:
    rows = "".join(
        f'<tr><td><code>{_esc(g["key"])}</code></td><td class="n">{g["runs"]}</td><td class="n">{g["pass"]}</td>'
        f'<td class="n">{g["fail"]}</td><td class="n">{g["incomplete"]}</td><td class="n">{_rate(g["pass_rate"])}</td>'
        f'<td>{_esc(g["root_cause"] or "-")}</td><td>{_esc(g["slowest_step"] or "-")}</td></tr>'
        for g in stats["groups"])
    return (f'<table id="groups"><tr><th>{_esc(stats["by"])}</th><th class="n">runs</th><th class="n">pass</th>'
            f'<th class="n">fail</th><th class="n">incomplete</th><th class="n">pass rate</th>'
            f'<th>leading root cause</th><th>slowest step</th></tr>{rows}</table>')


def _histogram(stats: dict[str, Any], colour: dict[str, str]) -> str:
    if not stats["root_causes"]:
        return '<p class="meta">every run passed</p>'
    rows = "".join(
        f'<tr data-cause="{_esc(c["root_cause"])}"><td><code>{_esc(c["root_cause"])}</code></td>'
        f'<td class="n">{c["runs"]}</td><td class="n">{_rate(c["share"])}</td><td style="width:40%">'
        f'<span class="bar" style="width:{max(c["share"] * 100, 0.5):.1f}%;background:{colour[c["root_cause"]]}">'
        f'</span></td></tr>' for c in stats["root_causes"])
    return (f'<table id="root-causes"><tr><th>root cause</th><th class="n">runs</th><th class="n">share</th>'
            f'<th></th></tr>{rows}</table>')


def _steps_table(stats: dict[str, Any]) -> str:
    if not stats["steps"]:
        return '<p class="meta">no timed steps</p>'
    rows = "".join(
        f'<tr><td><code>{_esc(s["step"])}</code></td><td class="n">{s["runs"]}</td><td class="n">{s["median_ms"]}</td>'
        f'<td class="n">{s["p95_ms"]}</td><td class="n">{s["max_ms"]}</td><td class="n">{s["fail"]}</td></tr>'
        for s in stats["steps"])
    return ('<table id="steps"><tr><th>step</th><th class="n">runs</th><th class="n">median ms</th>'
            f'<th class="n">p95 ms</th><th class="n">max ms</th><th class="n">failed</th></tr>{rows}</table>')


def render(stats: dict[str, Any], title: str | None = None) -> str:
    """The page for fleet figures (store.fleet.fleet_stats); the figures ride along as JSON."""
    title = title or "authprobe fleet report"
    totals = stats["totals"]
    station_runs: dict[str, int] = {}
    for b in stats["timeline"]["buckets"]:
        for name, s in b["stations"].items():
            station_runs[name] = station_runs.get(name, 0) + s["runs"]
    stations = sorted(station_runs, key=lambda n: (-station_runs[n], n))
    causes = [c["root_cause"] for c in stats["root_causes"]]
    station_colour, cause_colour = _colours(stations, STATION_COLOURS), _colours(causes, CAUSE_COLOURS)
    window = f"since {stats['since']}" if stats.get("since") else "all runs"
    slowest = stats.get("slowest_step")
    body = [
        f"<h1>{_esc(title)}</h1>",
        f'<p class="meta">{_esc(stats.get("store", ""))}, {_esc(window)} until {_esc(stats["until"])}</p>',
        f'<p><span class="big" id="pass-rate">{_rate(totals["pass_rate"])}</span> passed of '
        f'<b id="runs">{totals["runs"]}</b> runs (pass {totals["pass"]}, fail {totals["fail"]}, '
        f'incomplete {totals["incomplete"]})'
        + (f'; slowest step <code id="slowest-step">{_esc(slowest["step"])}</code> (median '
           f'{slowest["median_ms"]} ms)' if slowest else "") + "</p>",
        "<h2>Pass rate over time, per station</h2>", pass_rate_plot(stats, stations, station_colour),
        _legend(stations, station_colour),
        "<h2>Root causes over time (runs that did not pass)</h2>", root_cause_plot(stats, causes, cause_colour),
        _legend(causes, cause_colour),
        f"<h2>By {_esc(stats['by'])}</h2>", _groups_table(stats),
        "<h2>Root causes</h2>", _histogram(stats, cause_colour),
        "<h2>Steps, slowest first</h2>", _steps_table(stats),
        f'<script type="application/json" id="fleet-data">{_script_json(stats)}</script>',
    ]
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>'
            f"<style>{_STYLE}</style></head><body>{''.join(body)}<script>{_SCRIPT}</script></body></html>\n")
