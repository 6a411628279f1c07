"""`authprobe demo` (what `make demo` runs): the local stand-in and a virtual board, a healthy run
and one realistic mistake diagnosed, in about a minute and from any folder."""

from __future__ import annotations

import argparse

from authprobe.drill import demo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    demo.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    return demo.run(keep=args.keep, html=args.html)
