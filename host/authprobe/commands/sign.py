"""`authprobe sign`: the token signature AWS IoT custom authorizers verify (RSA-SHA256 PKCS#1 v1.5,
base64), for provisioning scripts. Prints only the signature: never key material."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from authprobe.aws import signing
from authprobe.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key", required=True, help="the RSA private key (PEM) matching the authorizer's public key")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--token", help="the token to sign ('-' reads it from stdin, keeping it out of `ps`)")
    src.add_argument("--token-file", help="read the token from this file (trailing newline dropped)")
    parser.add_argument("--urlencode", action="store_true",
                        help="print the percent-encoded form, for MQTT usernames and query strings")
    parser.add_argument("--passphrase-env", metavar="VAR", help="environment variable holding the key's passphrase")
    parser.add_argument("--json", action="store_true", help="print JSON: signature, urlencoded, token length")


def read_token(args: argparse.Namespace) -> str:
    if args.token_file:
        try:
            return Path(args.token_file).read_text().rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"cannot read token file {args.token_file}: {exc.strerror or exc}") from None
    if args.token == "-":
        return sys.stdin.read().rstrip("\r\n")
    return args.token


def run(args: argparse.Namespace) -> int:
    import os

    token = read_token(args)
    if not token:
        raise ConfigError("the token is empty: AWS IoT signs and verifies the exact token bytes")
    try:
        pem = Path(args.key).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read private key {args.key}: {exc.strerror or exc}") from None
    password = None
    if args.passphrase_env:
        value = os.environ.get(args.passphrase_env)
        if value is None:
            raise ConfigError(f"environment variable {args.passphrase_env} is not set")
        password = value.encode()
    key = signing.load_private_key(pem, password, source=f"private key {args.key}")
    if key.key_size < signing.MIN_KEY_BITS:
        raise ConfigError(f"private key {args.key} has {key.key_size} bits; AWS IoT needs at least "
                          f"{signing.MIN_KEY_BITS}")
    signature = signing.sign_token(key, token)
    encoded = signing.percent_encode(signature)
    if args.json:
        print(json.dumps({"signature": signature, "urlencoded": encoded, "token_length": len(token),
                          "key_bits": key.key_size}))
    else:
        print(encoded if args.urlencode else signature)
    return 0
