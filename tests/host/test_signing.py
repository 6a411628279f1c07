"""Token signatures: sign/verify, percent-encoded forms, CLI output never holds key material."""

from __future__ import annotations

import json

import pytest

from authprobe import cli
from authprobe.aws import signing
from authprobe.errors import ConfigError
from tests.fixtures.cloud_state import (
    AUTHORIZER,
    TOKEN,
    healthy_cloud,
    private_pem,
    public_pem,
    rsa_key,
    write_state,
)


def test_signature_verifies_over_exactly_the_token():
    sig = signing.sign_token(rsa_key(), TOKEN)
    keys = {"k": public_pem(rsa_key())}
    assert signing.verify_signature(TOKEN, sig, keys).valid
    assert not signing.verify_signature(TOKEN + "x", sig, keys).valid


def test_signature_matches_openssl_form(tmp_path):
    # `echo -n TOKEN | openssl dgst -sha256 -sign key.pem | openssl base64` (newlines stripped)
    import base64
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    key_file = tmp_path / "k.pem"
    key_file.write_bytes(private_pem(rsa_key()))
    raw = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key_file)], input=TOKEN.encode(),
                         capture_output=True, check=True).stdout
    assert signing.sign_token(rsa_key(), TOKEN) == base64.b64encode(raw).decode()


def test_percent_encoded_and_space_damaged_signatures_are_recognised():
    sig = signing.sign_token(rsa_key(), TOKEN)
    keys = {"k": public_pem(rsa_key())}
    encoded = signing.percent_encode(sig)
    assert "+" not in encoded and "/" not in encoded and "=" not in encoded
    result = signing.verify_signature(TOKEN, encoded, keys)
    assert result.valid and result.percent_encoded
    if "+" in sig:
        damaged = signing.verify_signature(TOKEN, sig.replace("+", " "), keys)
        assert damaged.valid and damaged.spaces_restored


def test_wrong_key_and_garbage_give_notes_not_errors():
    sig = signing.sign_token(rsa_key(), TOKEN)
    other = {"other": public_pem(rsa_key(2048, 1))}
    result = signing.verify_signature(TOKEN, sig, other)
    assert not result.valid and result.keys_tried == 1
    bad = signing.verify_signature(TOKEN, "not base64!", other)
    assert not bad.valid and any("base64" in n for n in bad.notes)
    unreadable = signing.verify_signature(TOKEN, sig, {"broken": "-----BEGIN PUBLIC KEY-----\nxx\n"})
    assert not unreadable.valid and any("broken" in n for n in unreadable.notes)


def test_non_rsa_private_key_is_refused_clearly():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(ConfigError, match="not an RSA key"):
        signing.load_private_key(pem)
    with pytest.raises(ConfigError, match="not a readable PEM"):
        signing.load_private_key(b"garbage")


def test_cli_sign_and_verify_round_trip(tmp_path, capsys):
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(private_pem(rsa_key()))
    pub_file = tmp_path / "pub.pem"
    pub_file.write_text(public_pem(rsa_key()))
    assert cli.main(["sign", "--key", str(key_file), "--token", TOKEN]) == 0
    sig = capsys.readouterr().out.strip()
    assert sig == signing.sign_token(rsa_key(), TOKEN)
    assert cli.main(["sign", "--key", str(key_file), "--token", TOKEN, "--urlencode"]) == 0
    encoded = capsys.readouterr().out.strip()
    assert encoded == signing.percent_encode(sig)
    assert cli.main(["verify", "--token", TOKEN, "--signature", encoded, "--key", str(pub_file)]) == 0
    out = capsys.readouterr().out
    assert "percent-encoded" in out and "valid" in out
    assert cli.main(["verify", "--token", "other", "--signature", sig, "--key", str(pub_file), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["valid"] is False


def test_cli_sign_never_prints_key_material(tmp_path, capsys):
    key_file = tmp_path / "key.pem"
    pem = private_pem(rsa_key())
    key_file.write_bytes(pem)
    assert cli.main(["sign", "--key", str(key_file), "--token", TOKEN, "--json"]) == 0
    out = capsys.readouterr().out
    body = b"".join(pem.splitlines()[1:-1]).decode()
    assert body[:40] not in out and "PRIVATE" not in out
    # A corrupted key: the error names the file, not its bytes.
    key_file.write_bytes(pem[:200])
    assert cli.main(["sign", "--key", str(key_file), "--token", TOKEN]) == 2
    err = capsys.readouterr().err
    assert "key.pem" in err and body[:40] not in err


def test_cli_verify_without_keys_is_a_usage_error(capsys):
    assert cli.main(["verify", "--token", "t", "--signature", "c2ln"]) == 2
    assert "--key" in capsys.readouterr().err


def test_cli_verify_with_an_authorizer_notes_signing_disabled_once(tmp_path, capsys):
    cloud = healthy_cloud()
    cloud["authorizers"][AUTHORIZER]["signingDisabled"] = True
    state = write_state(tmp_path, cloud)
    sig = signing.sign_token(rsa_key(), TOKEN)
    assert cli.main(["verify", "--token", TOKEN, "--signature", sig, "--authorizer", AUTHORIZER,
                     "--cloud", f"local:{state}"]) == 0
    out = capsys.readouterr().out
    assert f"note: authorizer {AUTHORIZER} has signing disabled" in out and "note: note:" not in out
    assert f"with {AUTHORIZER}/key1" in out


def test_cli_verify_with_a_key_that_is_no_public_key_says_so(tmp_path, capsys):
    """Not "INVALID": the signature was never checked. Exit 2 names the file; a private key or a
    certificate in its place is still used (its public half)."""
    sig = signing.sign_token(rsa_key(), TOKEN)
    junk = tmp_path / "hostname"
    junk.write_text("build-host-7\n")
    assert cli.main(["verify", "--token", TOKEN, "--signature", sig, "--key", str(junk)]) == 2
    captured = capsys.readouterr()
    assert "hostname' is not a usable public key" in captured.err and "INVALID" not in captured.out
    private_file = tmp_path / "private.pem"
    private_file.write_bytes(private_pem(rsa_key()))
    assert cli.main(["verify", "--token", TOKEN, "--signature", sig, "--key", str(private_file)]) == 0
    # With a usable key that verifies, the unusable one is only a note.
    pub_file = tmp_path / "pub.pem"
    pub_file.write_text(public_pem(rsa_key()))
    assert cli.main(["verify", "--token", TOKEN, "--signature", sig, "--key", str(junk), "--key", str(pub_file)]) == 0
    assert "not a usable public key" in capsys.readouterr().out
