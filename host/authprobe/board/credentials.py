"""Per-board credentials: every board on a line gets its own token, signed on the host.

device.toml names a template, `auth.token = "dev-{uid}"`; with a signing key the host reads each
board's unique id, builds that board's token, signs it (aws.signing: RSA-SHA256, base64) and writes
token and signature into that board's config only. The private key stays in this process: a
TokenSigner never shows it (its repr names the key file), and what leaves the host about the
credentials is the pair of fingerprints (length and SHA-256 prefix, as the device reports them).

    signer = load_signer("line-key.pem")
    check_template(cfg, signer)                     # once, before any board: ConfigError if unusable
    board_cfg, creds = personalize(cfg, "a4cf12a1b2c3", signer)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from authprobe.aws import signing
from authprobe.errors import EXIT_INCOMPLETE, AuthprobeError, ConfigError
from selftest.config import MAX_TOKEN
from selftest.record import fingerprint

UID_FIELD = "{uid}"


@dataclass(frozen=True)
class BoardCredentials:
    """One board's token and signature: held to write them into its config, shown only as fingerprints."""

    token: str
    signature: str | None

    def __repr__(self) -> str:   # a stray print or log of this object shows no secret
        return f"BoardCredentials(token={self.fingerprints()['token']}, signed={self.signature is not None})"

    def fingerprints(self) -> dict[str, Any]:
        return {"token": fingerprint(self.token), "signature": fingerprint(self.signature)}


class TokenSigner:
    """Signs tokens with a private key that never leaves it: no attribute, repr or message holds
    the key's material."""

    def __init__(self, private_key: Any, source: str):
        self._key = private_key
        self.source = source
        self.key_bits = private_key.key_size

    def __repr__(self) -> str:
        return f"TokenSigner(key file {self.source!r}, {self.key_bits} bits)"

    def sign(self, token: str) -> str:
        return signing.sign_token(self._key, token)


def load_signer(path: str | Path, passphrase: bytes | None = None) -> TokenSigner:
    """The signing key of a line, from its PEM file. ConfigError names what is wrong (never the key)."""
    try:
        pem = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"--sign-key {path}: cannot read it ({exc.strerror or exc})") from None
    key = signing.load_private_key(pem, passphrase, source=f"--sign-key {path}")
    if key.key_size < signing.MIN_KEY_BITS:
        raise ConfigError(f"--sign-key {path} has {key.key_size} bits; AWS IoT needs at least "
                          f"{signing.MIN_KEY_BITS}")
    return TokenSigner(key, str(path))


def token_template(cfg: dict[str, Any] | None) -> str | None:
    auth = (cfg or {}).get("auth")
    token = auth.get("token") if isinstance(auth, dict) else None
    return token if isinstance(token, str) else None


def per_board(cfg: dict[str, Any] | None, signer: TokenSigner | None) -> bool:
    """True when each board's config differs (its own token): the board's unique id is needed first."""
    template = token_template(cfg)
    return template is not None and (signer is not None or UID_FIELD in template)


def check_template(cfg: dict[str, Any] | None, signer: TokenSigner | None) -> None:
    """Said once, before any board is touched: a key with nothing to sign, or a per-board token
    template that nobody can sign."""
    template = token_template(cfg)
    if signer is not None and template is None:
        raise ConfigError("--sign-key needs auth.token in device.toml: a template such as "
                          "auth.token = \"dev-{uid}\" ({uid} becomes each board's unique id)")
    if signer is None and template is not None and UID_FIELD in template and not _signing_disabled(cfg):
        raise ConfigError("auth.token holds {uid}, so each board gets its own token, and each token needs "
                          "its signature: pass --sign-key KEY (the private key matching the authorizer's "
                          "public key), or set auth.signing_disabled = true")


def _signing_disabled(cfg: dict[str, Any] | None) -> bool:
    auth = (cfg or {}).get("auth")
    return bool(auth.get("signing_disabled")) if isinstance(auth, dict) else False


def personalize(cfg: dict[str, Any], uid: str, signer: TokenSigner | None, *, port: str = ""
                ) -> tuple[dict[str, Any], BoardCredentials]:
    """This board's config: a copy of `cfg` with its own token (the template with {uid} filled in)
    and, with a signer, that token's signature. The shared config is left as it was."""
    template = token_template(cfg)
    if template is None:
        raise ConfigError("device.toml has no auth.token to build each board's token from")
    if UID_FIELD in template and not uid:
        raise AuthprobeError(f"{port or 'the board'}: its firmware reports no unique id, so auth.token's {{uid}} "
                             f"cannot be filled in; give this board a token without {{uid}}", EXIT_INCOMPLETE)
    token = template.replace(UID_FIELD, uid)
    if len(token) > MAX_TOKEN:
        raise ConfigError(f"auth.token for board {uid} is {len(token)} characters; AWS IoT allows at most "
                          f"{MAX_TOKEN}: shorten the template")
    signature = signer.sign(token) if signer is not None else None
    board_cfg = copy.deepcopy(cfg)
    board_cfg["auth"]["token"] = token
    if signature is not None:
        board_cfg["auth"]["signature"] = signature
    return board_cfg, BoardCredentials(token, signature)
