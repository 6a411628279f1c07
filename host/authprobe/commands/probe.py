"""`authprobe probe`: run the device self-test on this machine, under CPython (which can send ALPN)
or under the real MicroPython interpreter (which cannot), so "works from my laptop, not from the
board" shows up as two reports side by side."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from typing import Any

from authprobe import device_config
from authprobe.board.host_probe import PROBE_RUNTIMES, probe
from authprobe.errors import EXIT_FAIL, EXIT_INCOMPLETE, EXIT_OK
from authprobe.output import write_output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="device.toml (`authprobe init` writes one to fill in)")
    parser.add_argument("--runtime", choices=PROBE_RUNTIMES, default="cpython",
                        help="cpython (sends ALPN) or micropython (the real unix port; no ALPN)")
    parser.add_argument("--json", metavar="PATH", help="write the JSON report (authprobe.report/1) here")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds before a MicroPython run counts as incomplete (default 120)")
    parser.add_argument("--heapsize", metavar="SIZE", help="MicroPython heap, e.g. 32k (default: the port's)")
    parser.add_argument("--quiet", action="store_true", help="no table, only the verdict line")


_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


def _detail_text(details: dict[str, Any]) -> str:
    parts = []
    for k, v in details.items():
        if k == "problems":
            continue
        if isinstance(v, dict) and "sha256" in v:
            v = f"{v['len']}B/{v['sha256'][:8]}"
        parts.append(f"{k}={v}")
    return ", ".join(parts)


def render(report: dict[str, Any], stream: Iterable[Any] | None = None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(file=sys.stdout)
    dev = report.get("device") or {}
    table = Table(title=f"authprobe probe - {dev.get('runtime', '?')} {dev.get('runtime_version', '')} "
                  f"- run {report.get('run_id')}", show_lines=False)
    for col in ("#", "step", "status", "code", "ms", "details"):
        table.add_column(col, overflow="fold")
    for st in report["steps"]:
        status = st["status"]
        table.add_row(str(st["seq"]), st["step"], f"[{_STYLE.get(status, '')}]{status}[/]",
                      f"{st['code']} {st['name']}", str(st.get("elapsed_ms") or 0), escape(_detail_text(st["details"])))
    console.print(table)
    for st in report["steps"]:
        for p in st["details"].get("problems", []):
            console.print(f"  [{_STYLE.get(p['status'], '')}]{p['status']}[/] {p['code']} {p['field']}: "
                          f"{escape(p['msg'])}", highlight=False)
    for d in report.get("diagnosis", []):
        console.print(f"[bold]{d['root_cause']}[/] ({d['confidence']:.0%}): {escape(d['title'])}", highlight=False)
        console.print(f"  fix: {escape(d['remediation'])}", highlight=False)
    counts = report["counts"]
    console.print(f"verdict: [{_STYLE.get(report['verdict'], 'bold red')}]{report['verdict']}[/]  "
                  f"pass {counts['pass']} warn {counts['warn']} fail {counts['fail']} skip {counts['skip']}")


def _progress(rec: dict[str, Any]) -> None:
    if rec.get("k") == "step":
        print(f"  {rec.get('seq', '?'):>2} {rec.get('step', '?'):<9} {rec.get('status', '?'):<4} "
              f"{rec.get('code')} {rec.get('name', '')}", file=sys.stderr, flush=True)


def exit_code(report: dict[str, Any]) -> int:
    return {"pass": EXIT_OK, "fail": EXIT_FAIL}.get(report["verdict"], EXIT_INCOMPLETE)


def run(args: argparse.Namespace) -> int:
    cfg = device_config.load(args.config)
    for code, _, field, msg in device_config.warnings(cfg):
        print(f"authprobe: warning [{code}] {field}: {msg}", file=sys.stderr)
    # On a terminal each step shows as it arrives (a run may wait out several timeouts).
    live = _progress if sys.stderr.isatty() and not args.quiet else None
    report = probe(cfg, args.runtime, timeout=args.timeout, heapsize=args.heapsize, on_record=live)
    if args.json:
        write_output(args.json, json.dumps(report, indent=2) + "\n")
    if args.quiet:
        print(f"verdict: {report['verdict']}")
    else:
        render(report)
    return exit_code(report)
