"""Rich rendering of reports, run lists and live records: one look shared by `run`, `runs`,
`monitor` and `probe`. Secrets never reach here (records carry fingerprints only), so details are
shown as they are."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.text import Text

from authprobe.report.details import step_details
from authprobe.report.terminal import Col, fitted_table

STATUS_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim",
                "incomplete": "bold magenta"}
VERDICT_STYLE = {"pass": "bold green", "fail": "bold red", "incomplete": "bold magenta"}


# Codes and their names are what the reference and the catalogue are searched by: never cut.
STEP_COLUMNS = (Col("#", justify="right", style="dim", drop=2), Col("step", identifier=True),
                Col("status", identifier=True), Col("code", identifier=True, justify="right"),
                Col("name", identifier=True), Col("ms", justify="right", style="dim", drop=1), Col("details"))
TRAY_COLUMNS = (Col("port", identifier=True), Col("uid", identifier=True, drop=3), Col("verdict"),
                Col("first failure", drop=2), Col("likeliest cause", drop=1), Col("run", identifier=True))


def report_renderable(report: dict[str, Any]) -> Group:
    device = report.get("device") or {}
    coll = report.get("collection") or {}
    verdict = report.get("verdict", "incomplete")
    head = Text()
    head.append(f"{verdict.upper()}", style=VERDICT_STYLE.get(verdict, ""))
    head.append(f"  run {report.get('run_id') or '-'}")
    bits = [device.get("board"), device.get("runtime") and f"{device.get('runtime')} {device.get('runtime_version', '')}".strip(),
            device.get("uid") and f"uid {device['uid']}", coll.get("port"),
            device.get("client_id") and f"client {device['client_id']}"]
    line2 = Text("  ".join(str(b) for b in bits if b), style="dim")

    rows = []
    for st in report.get("steps", []):
        status = st.get("status", "")
        rows.append([str(st.get("seq") or ""), st.get("step", ""), Text(status, style=STATUS_STYLE.get(status, "")),
                     str(st.get("code", "")), st.get("name", ""),
                     "" if st.get("elapsed_ms") is None else str(st["elapsed_ms"]),
                     # A failing or warning step's details say why (the error text comes last): never cut.
                     step_details(st.get("details") or {}, width=None if status in ("fail", "warn") else 70)])
    # Left-out columns (the sequence number, the step's milliseconds) are in the JSON report.
    steps = fitted_table(STEP_COLUMNS, rows, note_dropped=False, show_edge=False, pad_edge=False, expand=False)
    parts: list[Any] = [head, line2, steps]

    counts = report.get("counts") or {}
    noise = report.get("noise") or {}
    damaged = noise.get("damaged") or {}
    summary = (f"{counts.get('pass', 0)} pass, {counts.get('warn', 0)} warn, {counts.get('fail', 0)} fail, "
               f"{counts.get('skip', 0)} skip; noise {noise.get('lines', 0)} lines")
    if damaged:
        summary += ", damaged " + ", ".join(f"{k} {v}" for k, v in sorted(damaged.items()))
    if noise.get("restarts"):
        summary += f", restarts {noise['restarts']}"
    parts.append(Text(summary, style="dim"))
    if coll.get("status") and coll.get("status") != "complete":
        msg = f"incomplete: {coll.get('reason') or 'unknown'}"
        if coll.get("error"):
            msg += f" ({coll['error']})"
        if coll.get("hint"):
            msg += f" - {coll['hint']}"
        parts.append(Text(msg, style="magenta"))

    for d in report.get("diagnosis") or []:
        diag = Text()
        diag.append(f"{d.get('root_cause')}", style="bold")
        diag.append(f"  confidence {d.get('confidence')}")
        if d.get("title"):
            diag.append(f"\n  {d['title']}")
        if d.get("remediation"):
            diag.append(f"\n  fix: {d['remediation']}", style="cyan")
        if d.get("seed"):
            diag.append(f"\n  checklist: {d['seed']}", style="dim")
        parts.append(diag)
    return Group(*parts)


def render_report(report: dict[str, Any], console: Console | None = None) -> None:
    """Print one report as a table (steps), a summary line and the diagnosis."""
    console = console or Console()
    verdict = report.get("verdict", "incomplete")
    console.print(Panel(report_renderable(report), title="authprobe report", border_style=VERDICT_STYLE.get(verdict, "")))


RUNS_COLUMNS = (Col("run", identifier=True), Col("started (UTC)", identifier=True, drop=3), Col("s", justify="right", drop=6),
                Col("port", identifier=True, drop=2), Col("board", identifier=True, drop=4),
                Col("uid", identifier=True, drop=5), Col("verdict"), Col("status", drop=1))


def render_runs(runs: list[dict[str, Any]], console: Console | None = None) -> None:
    """The run store's list: newest first. The run id is never cut (it is what `runs show`,
    `report` and `correlate` take); narrow terminals lose the status, port, times first."""
    console = console or Console()
    rows = []
    for r in runs:
        verdict = r.get("verdict") or ""
        status = r.get("status") or ""
        if r.get("reason"):
            status += f" ({r['reason']})"
        rows.append([r["run_id"], (r.get("started") or "")[:19].replace("T", " "),
                     "" if r.get("duration_s") is None else f"{r['duration_s']:.1f}", r.get("port") or "",
                     r.get("board") or "", r.get("uid") or "", Text(verdict, style=VERDICT_STYLE.get(verdict, "")),
                     status])
    console.print(fitted_table(RUNS_COLUMNS, rows, title="runs", show_edge=False, pad_edge=False))


def record_line(rec: dict[str, Any]) -> Text:
    """One decoded record as a single line, for `monitor`."""
    kind = rec.get("k")
    text = Text()
    if kind == "begin":
        text.append("begin ", style="bold")
        # Not the device's own run id: the run is known by the store's id (one id per run).
        text.append(" ".join(f"{k}={rec.get(k)}" for k in ("board", "runtime", "runtime_version", "uid",
                                                            "reset", "client_id", "transport") if rec.get(k) is not None))
    elif kind == "step":
        status = rec.get("status", "")
        text.append(f"{rec.get('seq', ''):>3} {rec.get('step', ''):<10} ")
        text.append(f"{status:<5}", style=STATUS_STYLE.get(status, ""))
        text.append(f" {rec.get('code', '')} {rec.get('name', '')} {rec.get('ms', '')}ms ")
        text.append(step_details(rec.get("d") or {}, 100, sep="; "), style="dim")
    elif kind == "end":
        verdict = rec.get("verdict", "")
        text.append("end ", style="bold")
        text.append(verdict, style=VERDICT_STYLE.get(verdict, ""))
        text.append(f" {rec.get('counts')} {rec.get('ms')}ms")
    else:
        text.append(str(rec))
    return text


def junit_xml(results: list[Any]) -> str:
    """JUnit XML for CI and factory dashboards: one test suite per board run, one test case per
    step; an incomplete run adds a failing `collection` case so it can never read as green."""
    from xml.etree import ElementTree as ET

    suites = ET.Element("testsuites", name="authprobe")
    for result in results:
        report = result.report
        coll = report.get("collection") or {}
        device = report.get("device") or {}
        suite = ET.SubElement(suites, "testsuite", name=f"authprobe {result.port}",
                              id=str(report.get("run_id") or ""), hostname=str(device.get("uid") or ""))
        tests = failures = skipped = errors = 0
        for st in report.get("steps", []):
            tests += 1
            case = ET.SubElement(suite, "testcase", classname=f"authprobe.{st.get('step')}",
                                 name=f"{st.get('seq')}-{st.get('name')}",
                                 time=f"{(st.get('elapsed_ms') or 0) / 1000:.3f}")
            status = st.get("status")
            if status == "fail":
                failures += 1
                causes = ", ".join(st.get("root_causes") or [])
                node = ET.SubElement(case, "failure", message=f"{st.get('name')} ({st.get('code')})", type=str(st.get("code")))
                node.text = f"root causes: {causes}\ndetails: {step_details(st.get('details') or {}, 400)}"
            elif status == "skip":
                skipped += 1
                ET.SubElement(case, "skipped", message=st.get("name") or "")
            elif status == "warn":
                ET.SubElement(case, "system-out").text = f"warning: {st.get('name')} ({st.get('code')})"
        if report.get("verdict") == "incomplete" or result.status != "complete":
            tests += 1
            errors += 1
            case = ET.SubElement(suite, "testcase", classname="authprobe.collection", name="run-complete")
            node = ET.SubElement(case, "error", message=f"incomplete: {coll.get('reason') or result.reason}",
                                 type=str(coll.get("reason") or result.reason or "incomplete"))
            node.text = " ".join(str(x) for x in (result.error, coll.get("hint")) if x)
        if report.get("diagnosis"):
            # JUnit's schema puts <properties> before the test cases.
            suite.insert(0, ET.Element("properties"))
        suite.set("tests", str(tests))
        suite.set("failures", str(failures))
        suite.set("errors", str(errors))
        suite.set("skipped", str(skipped))
        props = suite.find("properties")
        if props is not None:
            for diag in report.get("diagnosis") or []:
                ET.SubElement(props, "property", name=f"diagnosis.{diag.get('root_cause')}",
                              value=str(diag.get("confidence")))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def render_tray(results: list[Any], console: Console | None = None) -> None:
    """One line per board for a tray: verdict, the first failing step and the likeliest cause."""
    console = console or Console()
    rows = []
    counts: dict[str, int] = {}
    for r in results:
        report = r.report
        verdict = report.get("verdict", "incomplete") if r.status != "error" else "error"
        counts[verdict] = counts.get(verdict, 0) + 1
        failing = next((s for s in report.get("steps", []) if s.get("status") == "fail"), None)
        first = f"{failing['step']}: {failing['name']} ({failing['code']})" if failing else ""
        if not failing and verdict in ("incomplete", "error"):
            coll = report.get("collection") or {}
            first = r.error or coll.get("reason") or ""
        diag = (report.get("diagnosis") or [{}])[0]
        cause = f"{diag['root_cause']} ({diag.get('confidence')})" if diag.get("root_cause") else ""
        rows.append([r.port, (report.get("device") or {}).get("uid") or "",
                     Text(verdict, style=VERDICT_STYLE.get(verdict, "bold red")), first, cause, r.run_id])
    console.print(fitted_table(TRAY_COLUMNS, rows, title=f"{len(results)} boards", show_edge=False, pad_edge=False))
    console.print(", ".join(f"{n} {v}" for v, n in sorted(counts.items())))
