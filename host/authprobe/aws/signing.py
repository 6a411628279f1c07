"""Token signatures for AWS IoT custom authentication: RSA-SHA256 (PKCS#1 v1.5) over exactly the
token bytes, base64 without line breaks. In an MQTT username or a query string the base64 must be
percent-encoded, or the server decodes '+' as a space and the signature no longer verifies.

Private keys are only ever loaded to sign; nothing here returns or prints key material."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from authprobe.errors import ConfigError

# cryptography is imported where a key is used: an unchanged `authprobe flash` never needs it, and
# importing it costs more than that whole deploy.
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

# AWS stores and checks keys of at least this size (DescribeAuthorizer tokenSigningPublicKeys).
MIN_KEY_BITS = 2048
_BASE64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def load_private_key(pem: bytes, password: bytes | None = None, *, source: str = "private key"):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        key = serialization.load_pem_private_key(pem, password=password)
    except TypeError:
        raise ConfigError(f"{source} is encrypted: pass its passphrase") from None
    except ValueError:
        # The library's message may quote key bytes; say only what is wrong.
        raise ConfigError(f"{source} is not a readable PEM private key (or the passphrase is wrong)") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"{source} is not an RSA key: AWS IoT custom authorizers verify RSA-SHA256 signatures")
    return key


def load_public_key(pem: str | bytes, *, source: str = "public key") -> rsa.RSAPublicKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        # A certificate or a private key given where a public key is wanted is still usable.
        key = _public_key_inside(data)
        if key is None:
            raise ConfigError(f"{source} is not a usable public key: no PEM public key, certificate or "
                              f"unencrypted private key in it") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ConfigError(f"{source} is not an RSA public key")
    return key


def _public_key_inside(data: bytes) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        return x509.load_pem_x509_certificate(data).public_key()
    except ValueError:
        pass
    try:
        return serialization.load_pem_private_key(data, password=None).public_key()
    except (ValueError, TypeError):  # TypeError: the private key is encrypted
        return None


def sign_token(private_key, token: str) -> str:
    """The base64 signature AWS IoT expects in x-amz-customauthorizer-signature."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    raw = private_key.sign(token.encode(), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(raw).decode()


def percent_encode(signature: str) -> str:
    """The form for MQTT usernames and query strings: every '+', '/' and '=' percent-encoded."""
    return quote(signature, safe="")


@dataclass
class SignatureInput:
    """A signature as a user or device supplied it, normalised to plain base64, with notes on what
    had to be undone (those notes are evidence for signature-not-urlencoded)."""

    base64: str
    percent_encoded: bool = False
    spaces_restored: bool = False
    notes: list[str] = field(default_factory=list)


def normalise_signature(text: str) -> SignatureInput:
    text = text.strip()
    result = SignatureInput(base64=text)
    if "%" in text:
        result.base64 = unquote(text)
        result.percent_encoded = True
        result.notes.append("the signature was percent-encoded; decoded it before verifying")
    if " " in result.base64:
        # A raw '+' inside a URL-decoded username arrives as a space: the server saw another value.
        result.base64 = result.base64.replace(" ", "+")
        result.spaces_restored = True
        result.notes.append("the signature held spaces where base64 has '+': it was URL-decoded without "
                            "having been percent-encoded")
    result.base64 = "".join(result.base64.split())
    return result


def decode_base64(signature: str) -> bytes | None:
    if not signature or set(signature) - _BASE64_CHARS:
        return None
    try:
        return base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return None


def verifies(key: rsa.RSAPublicKey, raw_signature: bytes, token: str) -> bool:
    """True when raw_signature is this key's RSA-SHA256 (PKCS#1 v1.5) signature of exactly the token."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        key.verify(raw_signature, token.encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def needs_percent_encoding(signature: str) -> bool:
    """True when a signature placed raw in a username/query string would be decoded differently."""
    return any(ch in signature for ch in "+/=")


@dataclass
class Verification:
    valid: bool
    key_name: str | None  # which key verified it
    notes: list[str]
    percent_encoded: bool = False
    spaces_restored: bool = False
    keys_tried: int = 0
    weak_keys: list[str] = field(default_factory=list)
    unusable_keys: dict[str, str] = field(default_factory=dict)   # name -> why it is no public key


def verify_signature(token: str, signature: str, public_keys: dict[str, str | bytes]) -> Verification:
    """Check a signature over exactly the token against every named public key. Unreadable keys and
    malformed signatures become notes, so the caller can show one message per problem."""
    sig = normalise_signature(signature)
    notes = list(sig.notes)
    result = Verification(False, None, notes, sig.percent_encoded, sig.spaces_restored)
    raw = decode_base64(sig.base64)
    if raw is None:
        notes.append("the signature is not valid base64 (A-Z a-z 0-9 + / with = padding)")
        return result
    if not public_keys:
        notes.append("no public keys to verify against")
        return result
    for name, pem in public_keys.items():
        try:
            key = load_public_key(pem, source=f"public key {name!r}")
        except ConfigError as exc:
            notes.append(str(exc))
            result.unusable_keys[name] = str(exc)
            continue
        result.keys_tried += 1
        if key.key_size < MIN_KEY_BITS:
            result.weak_keys.append(name)
            notes.append(f"public key {name!r} has {key.key_size} bits; AWS requires at least {MIN_KEY_BITS}")
        if not verifies(key, raw, token):
            continue
        result.valid = True
        result.key_name = name
        return result
    if result.keys_tried:
        notes.append(f"the signature does not verify over the token with any of {result.keys_tried} key(s)")
    return result
