"""`authprobe flash`: deploy the self-test (and optionally a firmware image) to one board or many.

An unchanged board costs one round trip and nothing is sent; one board failing never stops the
others. Exit code (the worst board decides): 0 when every board holds the self-test, 2 for a bad config
or a port that does not open, 3 when a board did not take the deploy (no REPL answered within
--timeout, lost mid-deploy, flash full), 4 only for a bug in authprobe."""

from __future__ import annotations

import argparse
import os
import sys

from authprobe import device_config
from authprobe.board.credentials import load_signer
from authprobe.board.definitions import choose_ports
from authprobe.board.flash import REPL_TIMEOUT, flash
from authprobe.commands.options import seconds
from authprobe.errors import EXIT_INCOMPLETE, EXIT_OK, EXIT_TOOL, EXIT_USAGE, ConfigError
from authprobe.terminal import Lines, ProgressBars


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", "-p", action="append", default=[], metavar="PORT",
                        help="serial port or pyserial URL (repeatable)")
    parser.add_argument("--all", action="store_true", help="every connected port that matches a board definition")
    parser.add_argument("--config", "-c", metavar="DEVICE_TOML",
                        help="device.toml to put on the board (without it only the self-test is deployed)")
    parser.add_argument("--board", help="board definition name (default: matched from the USB id)")
    parser.add_argument("--firmware", metavar="IMAGE",
                        help="first write this MicroPython/CircuitPython image (.bin with esptool at the board's "
                             "offset, .uf2 to the bootloader drive)")
    parser.add_argument("--source", action="store_true", help="deploy .py sources instead of mpy-cross bytecode")
    parser.add_argument("--drive", metavar="DIR", help="CircuitPython: the CIRCUITPY drive (default: found by name)")
    parser.add_argument("--timeout", type=seconds, default=REPL_TIMEOUT, metavar="SECONDS",
                        help="how long one exchange with a board's REPL may take before the board counts as not "
                             "answering (default %(default)s)")
    add_signing_arguments(parser)


def add_signing_arguments(parser: argparse.ArgumentParser) -> None:
    """--sign-key and its passphrase: shared with `authprobe station`."""
    parser.add_argument("--sign-key", metavar="KEY",
                        help="per-board credentials: each board's token is auth.token with {uid} filled in, "
                             "signed with this RSA private key (PEM) here; the key never leaves this host")
    parser.add_argument("--passphrase-env", metavar="VAR", help="environment variable holding --sign-key's passphrase")


def signer_from(args: argparse.Namespace):
    """The TokenSigner for --sign-key, or None."""
    if not args.sign_key:
        if args.passphrase_env:
            raise ConfigError("--passphrase-env is the passphrase of --sign-key: pass --sign-key KEY too")
        return None
    password = None
    if args.passphrase_env:
        value = os.environ.get(args.passphrase_env)
        if value is None:
            raise ConfigError(f"environment variable {args.passphrase_env} is not set")
        password = value.encode()
    return load_signer(args.sign_key, password)


def credentials_note(fingerprints: dict | None) -> str:
    """A board's own token and signature as the device reports them: length and SHA-256 prefix."""
    if not fingerprints:
        return ""
    parts = [f"{name} len={fp['len']} sha256={fp['sha256']}" for name, fp in fingerprints.items() if fp]
    return "; ".join(parts)


def run(args: argparse.Namespace) -> int:
    # rich is imported only to draw (a terminal, bytes to send): an unchanged board answers in
    # less time than importing it takes.
    ports = choose_ports(args.port, every_match=args.all)
    cfg = device_config.load(args.config) if args.config else None
    signer = signer_from(args)
    if signer is not None and cfg is None:
        raise ConfigError("--sign-key writes each board's token into its config: pass --config device.toml")
    for code, _, field, msg in device_config.warnings(cfg) if cfg is not None else []:
        # What the board's config step will report as a warning (a typo'd key): say it before deploying.
        print(f"authprobe: warning [{code}] {field}: {msg}", file=sys.stderr)
    if cfg is None:
        Lines(sys.stderr)("no --config: deploying the self-test only; the board keeps the config it has",
                          style="yellow")
    with ProgressBars(ports, sys.stderr) as bars:
        results = flash(ports, cfg, board=args.board, firmware=args.firmware, source=args.source,
                        drive=args.drive, progress=bars.update, timeout=args.timeout, signer=signer)
    say = Lines(sys.stdout)
    for r in results:
        if r.status == "error":
            # Library messages often lead with the port already; say it once.
            message = (r.error or "").removeprefix(f"{r.port}: ")
            say(f"{r.port}: failed:", f" {message}", style="bold red")
            continue
        what = (f"{len(r.sent)} files, {r.bytes_sent} bytes sent" if r.status == "deployed"
                else "unchanged, nothing sent")
        if r.removed:
            what += f", {len(r.removed)} stale removed"
        if r.firmware:
            what = f"{r.firmware}; {what}"
        trips = f"{r.round_trips} round trip{'' if r.round_trips == 1 else 's'}"
        own = f"; uid {r.uid}, own {credentials_note(r.credentials)}" if r.credentials else ""
        say(r.port, f": {what} ({r.method}, {trips}, {r.seconds:.2f} s){own}", style="green")
    failed = [r for r in results if r.status == "error"]
    if failed and len(failed) < len(results):
        say(f"{len(failed)} of {len(results)} boards failed; the others are flashed")
    codes = {r.exit_code for r in failed}
    # The worst failure decides: a bug of ours, then bad usage, then a board that did not take it.
    return next((c for c in (EXIT_TOOL, EXIT_USAGE, EXIT_INCOMPLETE) if c in codes), EXIT_OK)


