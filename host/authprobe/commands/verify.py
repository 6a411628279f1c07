"""`authprobe verify`: does a signature verify over a token with a public key (or with the public
keys of an authorizer)? Accepts the percent-encoded form too, and says when it was given one."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from authprobe.aws import signing
from authprobe.cloud import add_cloud_arguments, open_cloud
from authprobe.errors import EXIT_FAIL, ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token", required=True, help="the token ('-' reads it from stdin)")
    parser.add_argument("--signature", required=True, help="base64 signature, plain or percent-encoded")
    parser.add_argument("--key", action="append", default=[], metavar="PUB.pem",
                        help="public key (PEM); repeat for several")
    parser.add_argument("--authorizer", help="verify with this authorizer's tokenSigningPublicKeys instead")

    add_cloud_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    token = sys.stdin.read().rstrip("\r\n") if args.token == "-" else args.token
    keys: dict[str, str | bytes] = {}
    problems: list[str] = []
    for path in args.key:
        try:
            keys[path] = Path(path).read_bytes()
        except OSError as exc:
            problems.append(f"cannot read public key {path}: {exc.strerror or exc}")
    if args.authorizer:
        cloud = open_cloud(args.cloud, profile=args.profile, region=args.region)
        desc = cloud.describe_authorizer(args.authorizer)
        for name, pem in (desc.get("tokenSigningPublicKeys") or {}).items():
            keys[f"{args.authorizer}/{name}"] = pem
        if desc.get("signingDisabled"):
            problems.append(f"authorizer {args.authorizer} has signing disabled; AWS ignores signatures")
    if problems and not keys:
        raise ConfigError("\n".join(problems))
    if not keys:
        raise ConfigError("no public key: pass --key PUB.pem (repeatable) or --authorizer NAME")
    result = signing.verify_signature(token, args.signature, keys)
    if result.unusable_keys and not result.valid:
        # Not "INVALID": the signature was never checked against the key meant. Fix the key first.
        raise ConfigError("; ".join([*problems, *result.unusable_keys.values()]) +
                          "; pass the authorizer's public key (PEM), e.g. from `aws iot describe-authorizer`")
    notes = problems + result.notes
    if args.json:
        print(json.dumps({"valid": result.valid, "key": result.key_name, "percent_encoded": result.percent_encoded,
                          "notes": notes, "keys_tried": result.keys_tried}))
    else:
        for note in notes:
            print(f"note: {note}")
        if result.valid:
            print(f"valid: the signature verifies over the token with {result.key_name}")
        else:
            print("INVALID: the signature does not verify over the token with any given key")
    return 0 if result.valid else EXIT_FAIL
