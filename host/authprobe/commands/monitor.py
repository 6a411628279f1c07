"""`authprobe monitor`: show decoded report records from a serial port as they arrive (no reset)."""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Iterator
from typing import Any

from authprobe.board.collect import open_port, port_problem, trigger_reset
from authprobe.board.serial_reader import RecordReader, port_errors
from authprobe.commands.options import seconds
from authprobe.errors import EXIT_INCOMPLETE, AuthprobeError
from authprobe.output import printable
from authprobe.report.render import record_line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", "-p", required=True, help="serial port or pyserial URL")
    parser.add_argument("--raw", action="store_true", help="also show noise lines (boot log, REPL echo)")
    parser.add_argument("--timeout", type=seconds, default=None, help="stop after this many seconds")
    parser.add_argument("--until-end", action="store_true", help="stop after the first end record")
    parser.add_argument("--reset", action="store_true",
                        help="reset the board first, from the REPL (machine.reset() or microcontroller.reset())")
    parser.add_argument("--runtime", choices=("micropython", "circuitpython"), default="micropython",
                        help="the board's runtime, which decides how --reset restarts it (default: micropython)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.text import Text


    console = Console()
    try:
        ser = open_port(args.port)
    except port_errors() as exc:
        raise AuthprobeError(f"cannot open {args.port}: {port_problem(args.port, exc)}") from None
    counts = {"record": 0, "damaged": 0, "noise": 0, "boot": 0}
    try:
        if args.reset:
            trigger_reset(ser, "repl", args.runtime)
        deadline = time.monotonic() + (args.timeout if args.timeout else 10 ** 9)
        ended = []
        reader = RecordReader(ser)
        lines = reader.lines(deadline, lambda: bool(ended))
        for line in itertools.chain(lines, _pending(reader)):
            counts[line.kind] = counts.get(line.kind, 0) + 1
            stamp = time.strftime("%H:%M:%S", time.localtime(line.t))
            if line.kind == "record" and line.record:
                console.print(Text(stamp + " ", style="dim"), record_line(line.record), sep="")
                if args.until_end and line.record.get("k") == "end":
                    ended.append(line)
            elif line.kind == "damaged":
                why = f"{line.reason}: {printable(line.detail)}" if line.detail else line.reason
                console.print(Text(f"{stamp} damaged record ({why}): {printable(line.raw[:100])}",
                                   style="yellow"), soft_wrap=True)
            elif line.kind == "vanished":
                console.print(Text(f"{stamp} port vanished: {line.reason}", style="magenta"), soft_wrap=True)
                return EXIT_INCOMPLETE
            elif args.raw:
                # Boot logs carry colour codes and cursor moves: shown escaped, never obeyed.
                console.print(Text(f"{stamp} {printable(line.raw)}", style="dim"), soft_wrap=True)
    except KeyboardInterrupt:
        pass
    finally:
        ser.close()
        console.print(Text(f"{counts['record']} records, {counts['damaged']} damaged, "
                           f"{counts['noise'] + counts['boot']} noise lines", style="dim"))
    return 0


def _pending(reader: Any) -> Iterator[Any]:
    """The partial line left when the stream stops (a last record without its line end)."""
    if not reader.vanished:
        yield from reader.finish()
