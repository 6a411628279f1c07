"""The command line: a table of command name -> module. Each command module in authprobe.commands
exposes `add_arguments(parser)` and `run(args) -> int`; modules are imported only when their
command runs, so `authprobe --help` stays fast and one broken command cannot break the others."""

from __future__ import annotations

import argparse
import importlib
import sys

from authprobe.errors import EXIT_TOOL, AuthprobeError
from authprobe.version import __version__

# command -> (module under authprobe.commands, one-line help); aliases are just more rows.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "authprobe in a minute: the local stand-in, a virtual board, a pass and a diagnosed mistake"),
    "init": ("init", "write a commented device.toml (and, with --standin, a local stand-in) to start from"),
    "probe": ("probe", "run the device self-test here, under CPython or the real MicroPython interpreter"),
    "emulate": ("emulate", "serve the local AWS IoT Core custom-auth stand-in"),
    "boards": ("boards", "list connected boards, matched to board definitions"),
    "virtual-board": ("virtual_board", "serve a virtual MicroPython board on a pty"),
    "flash": ("flash", "deploy the self-test (and optionally a firmware image) to boards"),
    "run": ("run", "reset boards and collect their self-test reports"),
    "station": ("station", "test every board plugged in, hands off: identify, flash, run, store, one line each"),
    "monitor": ("monitor", "show decoded report records from a serial port live"),
    "runs": ("runs", "list and re-render stored runs"),
    "cloud-check": ("cloud_check", "check the cloud side: authorizer, Lambda, permissions, logging"),
    "correlate": ("correlate", "join device runs with AWS IoT and Lambda logs into a diagnosis"),
    "sign": ("sign", "sign a token for custom authentication (RSA-SHA256, base64)"),
    "verify": ("verify", "verify a token signature against public keys"),
    "report": ("report", "render a stored run as a self-contained HTML page"),
    "drill": ("drill", "inject every locally producible fault and check its diagnosis"),
}


def _load(command: str):
    module = COMMANDS[command][0]
    try:
        return importlib.import_module(f"authprobe.commands.{module}")
    except ModuleNotFoundError as exc:
        if exc.name != f"authprobe.commands.{module}":
            raise
        raise AuthprobeError(f"command {command!r} is not available in this build", EXIT_TOOL) from None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only the chosen command's module is imported (help texts are table data)."""
    parser = argparse.ArgumentParser(prog="authprobe", description="Find out why a board cannot connect to "
                                     "AWS IoT Core with custom authentication.")
    parser.add_argument("--version", action="version", version=f"authprobe {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            _load(name).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    try:
        parser = build_parser(command if command in COMMANDS else None)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        code = int(_load(args.command).run(args) or 0)
        sys.stdout.flush()  # inside the try, so a reader that left is handled below
        return code
    except AuthprobeError as exc:
        print(f"authprobe: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("authprobe: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`authprobe runs | head`): not an error of ours. Point stdout at
        # devnull so the interpreter's final flush does not complain again.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # a bug in authprobe: say so, keep the traceback for the report
        import traceback

        traceback.print_exc()
        print(f"authprobe: internal error ({type(exc).__name__}); please report it", file=sys.stderr)
        return EXIT_TOOL


if __name__ == "__main__":
    sys.exit(main())
