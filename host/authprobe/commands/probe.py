"""`authprobe probe`: run the device self-test on this machine, under CPython (which can send ALPN)
or under the real MicroPython interpreter (which cannot), so "works from my laptop, not from the
board" shows up as two reports side by side."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from authprobe import device_config
from authprobe.board.host_probe import PROBE_RUNTIMES, probe
from authprobe.commands.options import check_output_paths, seconds
from authprobe.config_text import parse_toml, read_bytes
from authprobe.errors import EXIT_FAIL, EXIT_INCOMPLETE, EXIT_OK, ConfigError
from authprobe.output import write_output
from authprobe.report.details import step_details
from authprobe.report.terminal import Col, fitted_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="device.toml (`authprobe init` writes one to fill in)")
    parser.add_argument("--runtime", choices=PROBE_RUNTIMES, default="cpython",
                        help="cpython (sends ALPN) or micropython (the real unix port; no ALPN)")
    parser.add_argument("--json", metavar="PATH", help="write the JSON report (authprobe.report/1) here")
    parser.add_argument("--timeout", type=seconds, default=120.0,
                        help="seconds before a MicroPython run counts as incomplete (default 120)")
    parser.add_argument("--heapsize", metavar="SIZE", help="MicroPython heap, e.g. 32k (default: the port's)")
    parser.add_argument("--quiet", action="store_true", help="no table, only the verdict line")


_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


# Codes with their names are what the reference is searched by: never cut. A config step's
# problems lead its details, failing ones first (report.render.step_details).
COLUMNS = (Col("#", justify="right", drop=2), Col("step", identifier=True), Col("status", identifier=True),
           Col("code", identifier=True), Col("ms", justify="right", drop=1), Col("details"))


def render(report: dict[str, Any], stream: Iterable[Any] | None = None) -> None:
    from rich.console import Console
    from rich.text import Text

    console = Console(file=sys.stdout)
    dev = report.get("device") or {}
    rows = []
    for st in report["steps"]:
        status = st["status"]
        rows.append([str(st["seq"]), st["step"], Text(status, style=_STYLE.get(status, "")),
                     f"{st['code']} {st['name']}", str(st.get("elapsed_ms") or 0), step_details(st.get("details") or {})])
    console.print(fitted_table(COLUMNS, rows, title=f"authprobe probe - {dev.get('runtime', '?')} "
                               f"{dev.get('runtime_version', '')} - run {report.get('run_id')}"))

    def say(line: Text) -> None:
        console.print(line, highlight=False, soft_wrap=True)

    for d in report.get("diagnosis", []):
        say(Text(d["root_cause"], style="bold") + Text(f" ({d['confidence']:.0%}): {d['title']}"))
        say(Text(f"  fix: {d['remediation']}"))
    counts = report["counts"]
    say(Text("verdict: ") + Text(report["verdict"], style=_STYLE.get(report["verdict"], "bold red")) +
        Text(f"  pass {counts['pass']} warn {counts['warn']} fail {counts['fail']} skip {counts['skip']}"))


def _progress(rec: dict[str, Any]) -> None:
    if rec.get("k") == "step":
        print(f"  {rec.get('seq', '?'):>2} {rec.get('step', '?'):<9} {rec.get('status', '?'):<4} "
              f"{rec.get('code')} {rec.get('name', '')}", file=sys.stderr, flush=True)


def exit_code(report: dict[str, Any]) -> int:
    return {"pass": EXIT_OK, "fail": EXIT_FAIL}.get(report["verdict"], EXIT_INCOMPLETE)


def load_as_the_board_would(path: str) -> dict[str, Any]:
    """The config the self-test gets. A config the lint rejects is still handed over, as a board
    would get it, so the report fails at its config step with the codes and root causes a board
    reports; a file that is missing or no TOML at all stays a usage error (exit 2, no report)."""
    try:
        cfg = device_config.load(path)
    except ConfigError as exc:
        try:
            cfg = parse_toml(read_bytes(Path(path), "config file"), path)   # never a traceback (config_text)
        except ConfigError:
            raise exc from None
        print(f"authprobe: {exc}", file=sys.stderr)
        ca = cfg.get("endpoint", {}).get("ca") if isinstance(cfg.get("endpoint"), dict) else None
        if isinstance(ca, str) and ca and "\x00" not in ca and not _absolute(ca):
            cfg["endpoint"]["ca"] = str(Path(path).parent / ca)  # relative to the config, as load() does
        return cfg
    for code, _, field, msg in device_config.warnings(cfg):
        print(f"authprobe: warning [{code}] {field}: {msg}", file=sys.stderr)
    return cfg


def _absolute(path: str) -> bool:
    try:
        return Path(path).expanduser().is_absolute()
    except RuntimeError:   # ~user with no home: the lint named it; the board gets it as written
        return True


def run(args: argparse.Namespace) -> int:
    check_output_paths(json=args.json)
    cfg = load_as_the_board_would(args.config)
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
