"""Colour and progress bars for people, plain lines for pipes, and rich imported only when it draws.

Importing rich costs about 50 ms, as much as the whole of an unchanged deploy: a command that only
prints a line or two to a pipe (a script, a factory station's log) should not pay it.

    say = Lines(sys.stdout)
    say("/dev/ttyUSB0", ": unchanged, nothing sent", style="green")
    bars = ProgressBars(["/dev/ttyUSB0"])      # drawn on a terminal, once a board has bytes to send
"""

from __future__ import annotations

import threading
from typing import Any, TextIO


class Lines:
    """One stream's lines: a coloured lead on a terminal, plain text otherwise. Never wrapped, so a
    port or a path in a line stays whole."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self._console: Any = None
        if stream.isatty():
            from rich.console import Console

            self._console = Console(file=stream)

    def __call__(self, lead: str, rest: str = "", style: str = "") -> None:
        if self._console is None:
            print(lead + rest, file=self.stream, flush=True)
            return
        from rich.text import Text

        self._console.print(Text.assemble((lead, style), rest), soft_wrap=True, highlight=False)


class ProgressBars:
    """One bar per port on a terminal's stderr, made when the first board has bytes to send: an
    unchanged deploy (or any deploy into a pipe) draws nothing and imports nothing."""

    def __init__(self, ports: list[str], stream: TextIO):
        self.ports = ports
        self.stream = stream
        self._lock = threading.Lock()
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}

    def update(self, port: str, done: int, total: int) -> None:
        """A progress callback (port, bytes done, bytes in all); safe from several threads."""
        if not total and self._progress is None:
            return
        if not self.stream.isatty():
            return
        with self._lock:
            if self._progress is None:
                from rich.console import Console
                from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

                self._progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                          TimeElapsedColumn(), console=Console(file=self.stream))
                self._progress.start()
                self._tasks = {p: self._progress.add_task(p, total=None) for p in self.ports}
            self._progress.update(self._tasks[port], completed=done, total=total or 1)

    def close(self) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.stop()
                self._progress = None

    def __enter__(self) -> ProgressBars:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
