"""`authprobe emulate --config FILE`: serve the local AWS IoT Core custom-auth stand-in until
SIGINT/SIGTERM, printing where it listens and which CA devices must trust."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from authprobe.emulator import Emulator, load_config
from authprobe.emulator.config import parse_address
from authprobe.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE",
                        help="emulator TOML (`authprobe init --standin` writes one); paths in it are relative to it")
    parser.add_argument("--listen", metavar="HOST:PORT", help="override `listen` (port 0: any free port)")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    for warning in config.warnings:
        print(f"authprobe: warning: {args.config}: {warning}", file=sys.stderr)
    if args.listen:
        problems: list[str] = []
        address = parse_address(args.listen, "--listen", problems)
        if address is None:
            raise ConfigError(problems[0])
        config.listen = address
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with Emulator(config) as emu:
            print(f"authprobe stand-in for {emu.endpoint} (account {config.account}, {config.region})")
            print(f"  listening   {emu.host}:{emu.port}  (stands for 443: ALPN mqtt, WSS /mqtt, domain configurations)")
            if emu.port_8883 is not None:
                print(f"  listening   {emu.host}:{emu.port_8883}  (stands for 8883: client certificate required)")
            for d in config.domains.values():
                print(f"  domain      {d.name}  ({d.authentication_type}, {d.application_protocol})")
            print(f"  trust CA    {emu.ca_pem}  (DER: {emu.ca_der})")
            speaks = "MQTT 5" if emu.broker_speaks_mqtt5 else "MQTT 3.1.1; MQTT 5 clients translated"
            print(f"  broker      mqtt://{emu.broker_address[0]}:{emu.broker_address[1]}  ({config.broker}, {speaks})")
            print(f"  cloud logs  {emu.state_dir / 'logs'}")
            print("  stop with Ctrl-C", flush=True)
            # A timed wait: the signal may land on another thread, and only a main thread that
            # wakes up now and then runs the Python handler.
            while not stop.wait(0.25):
                pass
            print("authprobe stand-in: stopping", flush=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
