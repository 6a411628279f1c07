"""`authprobe drill`: inject every locally producible root cause through the stand-in, the device
config, the authorizer handler or the virtual board's radio, and check that `authprobe run` /
`authprobe probe` + correlate name exactly that cause.

Exit code: 0 when every case is diagnosed as injected (and the healthy runs pass), 1 otherwise."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from authprobe.drill import cases as drill_cases
from authprobe.drill import sequences as drill_sequences
from authprobe.drill import suite as drill
from authprobe.errors import EXIT_FAIL, EXIT_OK
from authprobe.report.terminal import Col, fitted_table

if TYPE_CHECKING:
    from rich.console import Console


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--only", action="append", default=[], metavar="PATTERN",
                        help="run only cases whose name (FAULT@RUNTIME/TRANSPORT, e.g. lambda-error@cpython/mqtt) "
                             "contains PATTERN; repeatable")
    parser.add_argument("--list", action="store_true", help="list the cases and the causes that cannot be "
                        "produced locally, without running anything")
    parser.add_argument("--json", action="store_true", help="print the results as JSON (authprobe.drill/1)")
    parser.add_argument("--keep", metavar="DIR",
                        help="keep the run store (DIR/runs.sqlite) and the stand-ins' records (DIR/standin-*/) "
                             "for `authprobe report`; by default everything goes to a temporary directory")


def run(args: argparse.Namespace) -> int:
    if args.list:
        return _list(drill_cases.cases(args.only or None), args.json, drill_sequences.sequences(args.only or None))
    from rich.console import Console

    console = Console(stderr=True)
    live = not args.json and console.is_terminal

    def progress(result: drill.CaseResult) -> None:
        if live:
            mark = "[green]ok[/green]" if result.passed else "[bold red]FAIL[/bold red]"
            console.print(f"  {mark} {result.name} ({result.seconds:.1f} s)", highlight=False)

    result = drill.run_drill(args.only or None, workdir=args.keep, on_result=progress)
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        render(result)
    return EXIT_OK if result.passed else EXIT_FAIL


def _list(cases: list[Any], as_json: bool, sequences: list[Any] = ()) -> int:
    rows = [{"name": c.name, "expected": c.fault.expected, "injected": c.fault.injected} for c in cases]
    rows += [{"name": s.full_name, "expected": ", ".join(e or "pass" for e in s.expected), "injected": s.injected}
             for s in sequences]
    not_local = [n.as_dict() for n in drill_cases.NOT_LOCAL]
    if as_json:
        print(json.dumps({"cases": rows, "not_local": not_local}, indent=2))
        return EXIT_OK
    for r in rows:
        print(f"{r['name']:50} {r['expected'] or 'pass'}: {r['injected']}")
    for n in not_local:
        where = f"(not drilled on {n['runtime']})" if n["runtime"] else "(not producible locally)"
        print(f"{where:50} {n['expected']}: {n['why']}")
    return EXIT_OK


# A case is named FAULT@RUNTIME/TRANSPORT, what --only takes: never cut or split. The diagnosis of
# a failing case is also said in full below the table, so a narrow terminal may leave that column out.
COLUMNS = (Col("case", identifier=True), Col("result"), Col("diagnosed", drop=3), Col("step", drop=2),
           Col("time", justify="right", drop=1))


def render(result: Any, console: Console | None = None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.text import Text

    console = console or Console()
    summary = result.summary()
    rows: list[list[Any]] = []
    for c in result.cases:
        outcome = Text("pass", style="green") if c.passed else Text("FAIL", style="bold red")
        diagnosed = c.diagnosed or ("(pass)" if c.verdict == "pass" else "-")
        if c.error:
            diagnosed = f"error: {c.error}"
        step = f"{c.failing_step} {c.code}" if c.failing_step else "-"
        rows.append([c.name, outcome, diagnosed, step, f"{c.seconds:.1f} s"])
    for n in result.not_local:
        name = f"{n['expected']}@{n['runtime']}" if n["runtime"] else n["expected"]
        rows.append([name, Text("not drilled", style="dim"), "-", "-", "-"])
    console.print(fitted_table(COLUMNS, rows, title=f"authprobe drill: {summary['passed']}/{summary['cases']} cases "
                               f"diagnosed as injected in {summary['seconds']:.1f} s"))
    for n in result.not_local:
        where = f"not drilled on {n['runtime']}" if n["runtime"] else "not producible locally"
        console.print(escape(f"{n['expected']}: {where}: {n['why']}"), highlight=False, style="dim", soft_wrap=True)
    for c in result.cases:
        if not c.passed and c.kind == "sequence":
            for line in c.notes or [c.error or "failed"]:
                console.print(escape(f"{c.name}: {line}"), style="red", highlight=False)
        elif not c.passed:
            got = f"{c.diagnosed}, but its evidence never cites {c.uncited!r}" if c.uncited \
                else c.diagnosed or c.verdict
            console.print(escape(f"{c.name}: expected {c.expected or 'a pass'}, got {got} "
                                 f"(candidates: {', '.join(c.candidates) or '-'}); injected: {c.injected}"),
                          style="red", highlight=False, soft_wrap=True)
    if result.workdir:
        console.print(escape(f"kept: {result.workdir}/runs.sqlite and {result.workdir}/standin-*/ "
                             f"(e.g. authprobe report RUN_ID --store {result.workdir}/runs.sqlite "
                             f"--cloud local:{result.workdir}/standin-main --html page.html)"), highlight=False,
                      soft_wrap=True)
    print(f"drill: {summary['passed']} of {summary['cases']} cases passed, "
          f"{summary['root_causes_drilled']} root causes drilled, {summary['root_causes_not_local']} not producible "
          f"locally, {summary['seconds']:.1f} s", file=console.file)
