"""`authprobe demo` (`make demo`, `python -m authprobe.drill.demo`): authprobe in a minute, from any folder.

It starts the local AWS IoT Core stand-in with the example authorizer (examples/emulator.toml, on
ephemeral ports with a temporary state directory), starts a virtual ESP32 board (the real MicroPython
interpreter behind a pty), flashes the self-test onto it over mpremote's raw REPL, runs it, and
correlates the board's report with the stand-in's cloud records. Then it repeats with one realistic
mistake -- the signature pasted into a hand-written MQTT username without percent-encoding -- and
prints the diagnosis, its evidence and the fix. Every process it started is stopped on the way out,
also on Ctrl-C or an error."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.rule import Rule
from rich.text import Text

from authprobe.drill.cases import raw_signature_in_username
from authprobe.drill.runner import VirtualBoardRunner, correlate_run
from authprobe.drill.standin import EXAMPLES, StandIn
from authprobe.errors import AuthprobeError
from authprobe.output import write_output
from authprobe.report import html as html_report
from authprobe.report.html import page_events
from authprobe.report.render import report_renderable
from authprobe.store import open_store

STANDIN_CONFIG = EXAMPLES / "emulator.toml"
CLIENT_IDS = ("demo-sensor-0042", "demo-sensor-0043")


def _events_summary(events: list[dict[str, Any]]) -> list[str]:
    """The cloud records joined to a run, one short line each (secrets are already fingerprints)."""
    lines = []
    for e in events:
        if e.get("source") == "iot":
            what = f"{e.get('eventType')} {e.get('status')}"
            if e.get("reason"):
                what += f" ({e.get('reason')}: {e.get('details')})"
            if e.get("topicName"):
                what += f" on {e.get('topicName')}"
            lines.append(f"AWS IoT log   {e.get('timestamp')}  {what}")
        else:
            message = str(e.get("message") or "").strip().replace("\t", " ")
            lines.append(f"function log  {message[:110]}")
    return lines


class Demo:
    """The stand-in, the board and the run store the two scenarios share."""

    def __init__(self, workdir: Path, console: Console):
        self.workdir = workdir
        self.console = console
        self.store = open_store(workdir / "runs.sqlite")
        self.standin: StandIn | None = None
        self.board: VirtualBoardRunner | None = None
        self.pages: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []  # (report, events) for --html

    def start(self) -> None:
        t0 = time.monotonic()
        self.standin = StandIn.start(STANDIN_CONFIG, self.workdir / "standin")
        emu = self.standin.emulator
        self.console.print(f"[bold]stand-in[/bold]  AWS IoT Core custom auth for [cyan]{emu.endpoint}[/cyan] on "
                           f"{emu.host}:{emu.port}; authorizer DeviceAuth runs examples/authorizer.py "
                           f"(records in {escape(str(self.standin.state_dir))})", highlight=False)
        self.board = VirtualBoardRunner(self.workdir / "board", self.store, name="demo-board").start()
        self.console.print(f"[bold]board[/bold]     virtual ESP32 (real MicroPython unix port) on "
                           f"{self.board.port}  [dim]({time.monotonic() - t0:.1f} s)[/dim]", highlight=False)

    def close(self) -> None:
        if self.board is not None:
            self.board.close()
            self.board = None
        if self.standin is not None:
            self.standin.close()
            self.standin = None
        self.store.close()

    def healthy_config(self, client_id: str) -> dict[str, Any]:
        assert self.standin is not None
        return self.standin.device_config(client_id)

    def scenario(self, title: str, cfg: dict[str, Any], story: str) -> dict[str, Any]:
        """Flash, run, correlate, print; returns the report with its correlated diagnosis."""
        assert self.board is not None and self.standin is not None

        console = self.console
        console.print(Rule(f"[bold]{title}[/bold]"))
        console.print(escape(story), style="dim", highlight=False)
        t0 = time.monotonic()
        report = self.board.run(cfg)
        flashed = self.board.last_flash
        sent = (f"{len(flashed.sent)} file(s), {flashed.bytes_sent} bytes" if flashed.status == "deployed"
                else "unchanged, nothing sent")
        console.print(f"flash     {sent} over mpremote's raw REPL ({flashed.seconds:.2f} s)", highlight=False)
        console.print(f"run       self-test collected into the run store as [bold]{report['run_id']}[/bold]",
                      highlight=False)
        evidence, diagnosis = correlate_run(self.standin, cfg, report)
        report = dict(report, diagnosis=diagnosis)
        self.store.save_report(report["run_id"], report)
        function = self.standin.emulator.config.authorizers["DeviceAuth"].function
        self.pages.append((report, page_events(evidence.events, function)))
        # Steps skipped after a failure only repeat it; the summary line still counts them.
        shown = [st for st in report["steps"] if st["status"] != "skip" or report["verdict"] == "pass"]
        console.print(report_renderable(dict(report, diagnosis=[], steps=shown)))
        events = _events_summary(evidence.events)
        client_id = cfg["device"]["client_id"]
        if events:
            console.print(f"correlate {len(events)} cloud record(s) in the run's window for client {client_id}:",
                          highlight=False)
        else:
            console.print(f"correlate no cloud record for client {client_id}: the board stopped before it reached "
                          "AWS IoT", highlight=False)
        for line in events[:8]:
            console.print(f"          {escape(line)}", style="dim", highlight=False)
        failed = [c for c in evidence.checks if c.get("status") == "fail"]
        console.print(f"check     {len(evidence.checks)} cloud checks of this device's settings, "
                      f"{len(failed)} failing" + (": " + ", ".join(c["id"] for c in failed) if failed else ""),
                      highlight=False)
        self._verdict(report, time.monotonic() - t0)
        return report

    def _verdict(self, report: dict[str, Any], seconds: float) -> None:
        console = self.console
        if report["verdict"] == "pass":
            console.print(Panel(Text(f"PASS: the board reached AWS IoT Core (stand-in), authenticated through the "
                                     f"custom authorizer, published and received its own message. ({seconds:.1f} s)",
                                     style="bold green"), border_style="green"))
            return
        if not report["diagnosis"]:
            console.print(Panel(Text(f"{report['verdict'].upper()}: the run ended before the self-test finished "
                                     f"({seconds:.1f} s); `authprobe runs show {report['run_id']} --raw` shows what "
                                     "arrived", style="bold magenta"), border_style="magenta"))
            return
        lead = report["diagnosis"][0]
        body = Text()
        body.append(f"{lead['root_cause']}", style="bold red")
        body.append(f"  {lead['title']}\n", style="bold")
        body.append(f"confidence {lead['confidence']:.2f}" + (", decided" if lead.get("decided") else "") + "\n\n",
                    style="dim")
        body.append("Evidence\n", style="bold")
        for line in lead["evidence"][:6]:
            body.append(f"  - {line}\n")
        body.append("\nFix\n", style="bold")
        body.append(f"  {lead['remediation']}\n", style="cyan")
        body.append("\nChecklist item\n", style="bold")
        body.append(f"  {lead['seed']}", style="dim")
        console.print(Panel(body, title=f"FAIL: diagnosis ({seconds:.1f} s)", border_style="red"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keep", metavar="DIR", help="keep the run store and the stand-in's records in DIR "
                        "(then: authprobe report RUN_ID --store DIR/runs.sqlite --cloud local:DIR/standin --html F)")
    parser.add_argument("--html", metavar="FILE", help="also write both runs as one self-contained HTML page "
                        "(what `authprobe report` writes)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m authprobe.drill.demo", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run(keep=args.keep, html=args.html)


def run(keep: str | None = None, html: str | None = None) -> int:
    """Both scenarios; 0 when the healthy board passes and the mistake is diagnosed.

    Args:
        keep: a folder to keep the run store and the stand-in's records in (default: none kept).
        html: also write both runs as one self-contained HTML page here.
    """
    console = Console()
    workdir = Path(keep) if keep is not None else Path(tempfile.mkdtemp(prefix="authprobe-demo-"))
    keep_dir = keep is not None
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        console.print(f"[bold red]demo: --keep {escape(str(workdir))}: cannot make that folder "
                      f"({escape(exc.strerror or str(exc))})[/bold red]", soft_wrap=True)
        return 2
    t0 = time.monotonic()
    demo = Demo(workdir, console)
    runs: list[dict[str, Any]] = []
    try:
        console.print(Rule("[bold]authprobe demo[/bold]: a local AWS IoT Core stand-in and a virtual board"))
        demo.start()
        healthy = demo.healthy_config(CLIENT_IDS[0])
        runs.append(demo.scenario(
            "1. a healthy device", healthy,
            "device.toml: endpoint = the stand-in's ATS endpoint (sent as SNI), token signed with the example key "
            "(`authprobe sign`), transport auto (MicroPython has no ALPN, so MQTT over WebSockets)."))
        broken = demo.healthy_config(CLIENT_IDS[1])
        assert demo.standin is not None
        raw_signature_in_username(broken, demo.standin)
        runs.append(demo.scenario(
            "2. one realistic mistake", broken,
            f"Board {CLIENT_IDS[1]}: the credentials are written into the MQTT username by hand, with the base64 signature pasted as is: "
            "'+', '/' and '=' are not percent-encoded, so AWS IoT would decode another signature."))
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: stopping the board and the stand-in[/yellow]")
        return 130
    except AuthprobeError as exc:
        console.print(f"[bold red]demo: {escape(str(exc))}[/bold red]", soft_wrap=True)
        return exc.exit_code
    finally:
        demo.close()
        if not keep_dir:
            shutil.rmtree(workdir, ignore_errors=True)
    console.print(Rule())
    page_error = None
    if html and demo.pages:
        try:
            write_output(html, html_report.render(demo.pages, "authprobe demo"))
        except AuthprobeError as exc:
            page_error = exc
            console.print(f"[bold red]demo: {escape(str(exc))}[/bold red]", soft_wrap=True)
        else:
            console.print(f"page      {escape(html)}: both runs, device steps and cloud records on one time "
                          f"axis", highlight=False)
    ok = len(runs) == 2 and runs[0]["verdict"] == "pass" and runs[1]["diagnosis"][:1] and \
        runs[1]["diagnosis"][0]["root_cause"] == "signature-not-urlencoded"
    console.print(f"demo finished in {time.monotonic() - t0:.1f} s; every process it started is stopped.",
                  highlight=False)
    if keep_dir:
        console.print(escape(f"kept: {workdir}/runs.sqlite and {workdir}/standin/; e.g. authprobe report "
                             f"{runs[-1]['run_id']} --store {workdir}/runs.sqlite --cloud local:{workdir}/standin "
                             f"--html demo.html"), highlight=False)
    console.print("next: `authprobe init --standin DIR` writes these pieces to rehearse with yourself; "
                  "docs/walkthrough.md goes on to a real board and a real AWS account.", highlight=False)
    if page_error is not None:
        return page_error.exit_code
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
