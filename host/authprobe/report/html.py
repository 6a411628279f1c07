"""One self-contained HTML page per run (or per batch of boards): the device's steps and the cloud's
events on one time axis, the verdict, and the diagnosis with its evidence and fix.

The page carries its data as JSON and draws the time axis with a few lines of inline script, so it
needs no network, no external files, and the same data a script would read is inside the page."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from typing import Any

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d2329;max-width:1100px}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:22px 0 8px} h3{font-size:14px;margin:14px 0 4px}
.verdict{display:inline-block;padding:2px 10px;border-radius:10px;font-weight:600;color:#fff}
.pass{background:#1f883d}.fail{background:#cf222e}.incomplete{background:#9a6700}.warn{background:#bf8700}
.skip{background:#8c959f}
table{border-collapse:collapse;width:100%;margin:6px 0}
td,th{border-bottom:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600} code{font-size:12px}
.meta{color:#57606a} .run{border:1px solid #d0d7de;border-radius:8px;padding:12px 16px;margin:16px 0}
.diag{border-left:4px solid #cf222e;padding:4px 12px;margin:8px 0;background:#fff8f8}
svg text{font:11px system-ui,sans-serif} tr.nearby td{color:#57606a}
"""

# Draws each run's time axis from its embedded JSON: device steps as bars on one lane, the run's own
# cloud events as marks on a second, both against UTC so a clock-skewed board still lines up with
# AWS's logs. The axis spans the run and its own evidence only; events near the run that are not its
# own sit on a third lane, hollow, pinned to the axis's edge when they fall outside it.
_SCRIPT = """
for (const box of document.querySelectorAll('.timeline')) {
  const data = JSON.parse(box.dataset.timeline);
  const nearby = data.nearby || [];
  let items = data.steps.concat(data.events);
  if (!items.length) items = nearby;
  if (!items.length) { box.textContent = 'no timed evidence'; continue; }
  const t0 = Math.min(...items.map(i => i.start)), t1 = Math.max(...items.map(i => i.end));
  const span = Math.max(t1 - t0, 0.001), W = 1000, L = 110, H = nearby.length ? 118 : 86;
  const x = t => L + Math.min(Math.max((t - t0) / span, 0), 1) * (W - L - 10);
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`); svg.setAttribute('width', '100%');
  const add = (tag, attrs, text) => { const e = document.createElementNS(ns, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]); if (text) e.textContent = text; svg.appendChild(e); return e; };
  add('text', {x: 4, y: 24}, 'device'); add('text', {x: 4, y: 62}, 'cloud');
  const colour = {pass: '#1f883d', warn: '#bf8700', fail: '#cf222e', skip: '#8c959f',
                  Success: '#1f883d', Failure: '#cf222e', info: '#0969da'};
  for (const s of data.steps) {
    const r = add('rect', {x: x(s.start), y: 12, width: Math.max(x(s.end) - x(s.start), 3), height: 18,
                           fill: colour[s.status] || '#0969da', class: 'step ' + s.status});
    add('title', {}, `${s.label} (${s.status})`); r.appendChild(svg.lastChild);
  }
  for (const e of data.events) {
    const c = add('circle', {cx: x(e.start), cy: 56, r: 6, fill: colour[e.status] || '#0969da',
                             class: 'event ' + e.status});
    add('title', {}, e.label); c.appendChild(svg.lastChild);
  }
  if (nearby.length) {
    add('text', {x: 4, y: 98}, 'nearby, not');
    add('text', {x: 4, y: 110}, 'this run');
    for (const e of nearby) {
      const off = e.start < t0 ? ` (${(t0 - e.start).toFixed(1)} s before the run)`
                : e.start > t1 ? ` (${(e.start - t1).toFixed(1)} s after the run)` : '';
      const c = add('circle', {cx: x(e.start), cy: 102, r: 5, fill: 'none', stroke: colour[e.status] || '#8c959f',
                               'stroke-width': 2, class: 'nearby ' + e.status});
      add('title', {}, `${e.label}: ${e.reason}${off}`); c.appendChild(svg.lastChild);
    }
  }
  const base = nearby.length ? 116 : 82;
  add('text', {x: L, y: base}, new Date(t0 * 1000).toISOString());
  add('text', {x: W - 10, y: base, 'text-anchor': 'end'}, '+' + span.toFixed(3) + ' s');
  box.appendChild(svg);
  box.dataset.drawn = String(data.steps.length + data.events.length);
  box.dataset.nearby = String(nearby.length);
}
"""


def _parse_utc(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def event_time(event: dict[str, Any]) -> float | None:
    """Epoch seconds of a cloud event: an AWSIotLogsV2 record ("YYYY-MM-DD HH:MM:SS.mmm", UTC) or a
    CloudWatch Logs event ({"timestamp": epoch ms})."""
    ts = event.get("timestamp")
    if isinstance(ts, (int, float)):
        return ts / 1000.0
    if isinstance(ts, str):
        try:
            return datetime.strptime(ts, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC).timestamp()
        except ValueError:
            return _parse_utc(ts)
    return None


def event_label(event: dict[str, Any]) -> str:
    if "eventType" in event:
        parts = [event.get("eventType", ""), event.get("status", ""), event.get("reason", ""),
                 event.get("details", ""), event.get("topicName", "")]
        return " ".join(p for p in parts if p)
    tag = "[replay] " if event.get("attributed") == "replay" else ""
    return tag + str(event.get("message", "")).strip()[:160]


def timeline(report: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    """Device steps laid end to end from the run's start, and cloud events at their times.

    The start is when the host read the begin record (millisecond resolution, host clock) where the
    run was collected from a board; otherwise the device's own UTC time (whole seconds at best)."""
    coll = report.get("collection") or {}
    begin_ms = (coll.get("timings") or {}).get("begin_ms")
    host_start = _parse_utc(coll.get("started"))
    if host_start is not None and isinstance(begin_ms, int | float):
        start: float | None = host_start + begin_ms / 1000.0
    else:
        start = _parse_utc(report.get("device", {}).get("utc"))
    steps = []
    if start is not None:
        t = start
        for s in report.get("steps", []):
            dur = (s.get("elapsed_ms") or 0) / 1000.0
            steps.append({"start": t, "end": t + dur, "status": s.get("status"),
                          "label": f"{s.get('step')}: {s.get('name')} ({s.get('code')})"})
            t += dur
    marks = []
    nearby = []
    for e in events:
        when = event_time(e)
        if when is not None:
            mark = {"start": when, "end": when, "status": e.get("status") or "info", "label": event_label(e)}
            if e.get("nearby"):
                nearby.append(dict(mark, reason=str(e["nearby"])))
            else:
                marks.append(mark)
    return {"steps": steps, "events": marks, "nearby": nearby}


def _esc(value: Any) -> str:
    return html.escape(str(value if value is not None else ""))


def _run_section(report: dict[str, Any], events: list[dict[str, Any]]) -> str:
    dev = report.get("device", {})
    verdict = report.get("verdict", "incomplete")
    rows = "".join(
        f"<tr><td>{_esc(s.get('step'))}</td><td>{_esc(s.get('code'))}</td><td><code>{_esc(s.get('name'))}</code></td>"
        f"<td><span class='verdict {_esc(s.get('status'))}'>{_esc(s.get('status'))}</span></td>"
        f"<td>{_esc(s.get('elapsed_ms'))}</td>"
        f"<td>{_esc(', '.join(f'{k}={v}' for k, v in sorted((s.get('details') or {}).items())))}</td></tr>"
        for s in report.get("steps", [])
    )
    diags = "".join(
        f"<div class='diag'><h3><code>{_esc(d.get('root_cause'))}</code> — {_esc(d.get('title', ''))} "
        f"<span class='meta'>(confidence {_esc(d.get('confidence'))})</span></h3>"
        f"<div><b>Evidence:</b><ul>{''.join(f'<li>{_esc(e)}</li>' for e in d.get('evidence', []))}</ul></div>"
        f"<div><b>Fix:</b> {_esc(d.get('remediation'))}</div>"
        f"<div class='meta'><b>Checklist:</b> {_esc(d.get('seed'))}"
        + (f" · <b>decided by:</b> {_esc(d.get('decided_by'))}" if d.get("decided_by") else "")
        + "</div></div>"
        for d in report.get("diagnosis", [])
    ) or "<p>No problem found.</p>"
    own = [e for e in events if not e.get("nearby")]
    apart = [e for e in events if e.get("nearby")]
    event_rows = "".join(
        f"<tr><td>{_esc(datetime.fromtimestamp(t, UTC).isoformat(timespec='milliseconds') if t else '')}</td>"
        f"<td>{_esc(e.get('logGroup') or (e.get('eventType') and 'AWSIotLogsV2') or 'lambda')}</td>"
        f"<td>{_esc(event_label(e))}</td></tr>"
        for e in own
        for t in [event_time(e)]
    )
    nearby_rows = "".join(
        f"<tr class='nearby'><td>{_esc(datetime.fromtimestamp(t, UTC).isoformat(timespec='milliseconds') if t else '')}"
        f"</td><td>{_esc(event_label(e))}</td><td>{_esc(e.get('nearby'))}</td></tr>"
        for e in apart
        for t in [event_time(e)]
    )
    data = json.dumps(timeline(report, events)).replace("</", "<\\/")
    correlation = report.get("correlation") or {}
    waiting = [str(w) for w in correlation.get("awaiting") or ["some logs"]] if correlation.get("provisional") else []
    return (
        f"<section class='run' data-run='{_esc(report.get('run_id'))}' data-verdict='{_esc(verdict)}'>"
        f"<h2>Run <code>{_esc(report.get('run_id'))}</code> <span class='verdict {_esc(verdict)}'>{_esc(verdict)}</span>"
        + (" <span class='verdict incomplete provisional'>provisional</span>" if waiting else "") + "</h2>"
        + (f"<p class='meta'>Provisional: {_esc(' and '.join(waiting))} not delivered yet; the diagnosis may change "
           "when CloudWatch delivers them.</p>" if waiting else "")
        + f"<div class='meta'>board {_esc(dev.get('board'))} · {_esc(dev.get('runtime'))} {_esc(dev.get('runtime_version'))}"
        f" · client id <code>{_esc(dev.get('client_id'))}</code> · transport {_esc(dev.get('transport'))}"
        f" · started {_esc(dev.get('utc'))}</div>"
        f"<h3>Time axis</h3><div class='timeline' data-timeline='{_esc(data)}'></div>"
        f"<h3>Diagnosis</h3>{diags}"
        f"<h3>Device steps</h3><table><tr><th>step</th><th>code</th><th>name</th><th>status</th><th>ms</th>"
        f"<th>details</th></tr>{rows}</table>"
        + (f"<h3>Cloud events</h3><table><tr><th>UTC</th><th>log group</th><th>event</th></tr>{event_rows}</table>"
           if own else "<h3>Cloud events</h3><p class='meta'>none collected for this run</p>")
        + (f"<h3>Nearby, not this run</h3><table><tr><th>UTC</th><th>event</th><th>why not</th></tr>{nearby_rows}"
           "</table>" if apart else "")
        + "</section>"
    )


def render(runs: list[tuple[dict[str, Any], list[dict[str, Any]]]], title: str = "authprobe report") -> str:
    """HTML for one or more (report, cloud events) pairs."""
    verdicts = [r.get("verdict") for r, _ in runs]
    overall = "pass" if verdicts and all(v == "pass" for v in verdicts) else (
        "fail" if "fail" in verdicts else "incomplete")
    body = "".join(_run_section(r, ev) for r, ev in runs)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_esc(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{_esc(title)} <span class='verdict {overall}' id='overall'>{overall}</span></h1>"
        f"<div class='meta'>{len(runs)} run(s) · generated {datetime.now(UTC).isoformat(timespec='seconds')}</div>"
        f"{body}<script>{_SCRIPT}</script></body></html>"
    )


def page_events(events: list[dict[str, Any]], function: str | None) -> list[dict[str, Any]]:
    """Correlated events in the shapes html_report draws: IoT V2 records as they are, function log
    lines as CloudWatch Logs events ({"timestamp": epoch ms, "message", "logGroup"}). An event with
    "nearby" (why it is not the run's own) is drawn apart."""
    out = []
    for e in events:
        if e.get("source") == "lambda":
            item = {"timestamp": e.get("ts_ms"), "message": e.get("message", ""),
                    "logGroup": f"/aws/lambda/{function}" if function else "function log"}
            for key in ("attributed", "nearby"):
                if e.get(key):
                    item[key] = e[key]
            out.append(item)
        else:
            out.append({k: v for k, v in e.items() if k not in ("source", "ts_ms", "client_id")})
    return out
