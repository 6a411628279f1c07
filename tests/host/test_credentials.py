"""Per-board credentials (board.credentials) and identifying a board (board.identify): each board's
token from the template and its unique id, signed on the host; the shared config untouched; the
key and the secrets never in a repr or a message; a board's answer parsed or refused clearly."""

from __future__ import annotations

import copy

import pytest
from cryptography.hazmat.primitives import serialization

from authprobe.aws import signing
from authprobe.board import credentials
from authprobe.board.identify import IDENTIFY, parse_identity, read_identity
from authprobe.errors import AuthprobeError, ConfigError
from selftest.config import MAX_TOKEN
from selftest.record import fingerprint
from tests.fixtures.cloud_state import private_pem, public_pem, rsa_key


def line_cfg(token: str = "dev-{uid}", **auth: object) -> dict:
    return {"device": {"client_id": "line-{uid}"}, "auth": {"token_key_name": "token", "token": token, **auth}}


@pytest.fixture(scope="module")
def key_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("key") / "line.pem"
    path.write_bytes(private_pem(rsa_key()))
    return path


def test_each_board_gets_its_own_token_signed_and_the_shared_config_is_untouched(key_file):
    signer = credentials.load_signer(key_file)
    cfg = line_cfg(signature="c3RhbGU=")
    before = copy.deepcopy(cfg)
    one, creds_one = credentials.personalize(cfg, "a4cf12000001", signer)
    two, creds_two = credentials.personalize(cfg, "a4cf12000002", signer)
    assert cfg == before
    assert one["auth"]["token"] == "dev-a4cf12000001" and two["auth"]["token"] == "dev-a4cf12000002"
    public = signing.load_public_key(public_pem(rsa_key()))
    for board in (one, two):
        raw = signing.decode_base64(board["auth"]["signature"])
        assert signing.verifies(public, raw, board["auth"]["token"])
    assert one["auth"]["signature"] != two["auth"]["signature"]
    # RSA PKCS#1 v1.5 is deterministic: a board flashed again gets the same bytes (nothing to send).
    again, _ = credentials.personalize(cfg, "a4cf12000001", signer)
    assert again == one
    assert creds_one.fingerprints() == {"token": fingerprint("dev-a4cf12000001"),
                                        "signature": fingerprint(one["auth"]["signature"])}
    assert creds_two.token == "dev-a4cf12000002"


def test_nothing_shown_of_a_signer_or_a_boards_credentials_holds_a_secret(key_file):
    signer = credentials.load_signer(key_file)
    _, creds = credentials.personalize(line_cfg(), "a4cf12000001", signer)
    shown = repr(signer) + str(signer) + repr(creds) + str(creds)
    pem_lines = [ln for ln in key_file.read_text().splitlines() if not ln.startswith("-----")]
    assert not any(ln in shown for ln in pem_lines)
    assert creds.token not in shown and (creds.signature or "") not in shown
    assert str(key_file) in repr(signer) and "2048 bits" in repr(signer)


def test_a_uid_template_without_a_key_asks_for_one_unless_signing_is_disabled(key_file):
    with pytest.raises(ConfigError, match="--sign-key KEY"):
        credentials.check_template(line_cfg(), None)
    disabled = line_cfg(signing_disabled=True)
    credentials.check_template(disabled, None)
    assert credentials.per_board(disabled, None)
    board, creds = credentials.personalize(disabled, "a4cf12000009", None)
    assert board["auth"]["token"] == "dev-a4cf12000009" and "signature" not in board["auth"]
    assert creds.signature is None
    # A fixed token needs nothing per board; with a key it is still signed here.
    fixed = line_cfg("allow-line")
    credentials.check_template(fixed, None)
    assert not credentials.per_board(fixed, None)
    assert credentials.per_board(fixed, credentials.load_signer(key_file))


def test_a_key_with_nothing_to_sign_is_refused(key_file):
    with pytest.raises(ConfigError, match="auth.token"):
        credentials.check_template({"auth": {"username": "u"}}, credentials.load_signer(key_file))
    assert not credentials.per_board(None, credentials.load_signer(key_file))


def test_a_board_without_a_unique_id_or_a_token_grown_too_long_is_said_plainly(key_file):
    signer = credentials.load_signer(key_file)
    with pytest.raises(AuthprobeError, match="reports no unique id") as no_uid:
        credentials.personalize(line_cfg(), "", signer, port="/dev/ttyACM3")
    assert "/dev/ttyACM3" in str(no_uid.value)
    long = "x" * (MAX_TOKEN - 5) + "{uid}"
    with pytest.raises(ConfigError, match="shorten the template"):
        credentials.personalize(line_cfg(long), "a4cf12000001", signer)


def test_unusable_keys_are_named_without_their_material(tmp_path):
    with pytest.raises(ConfigError, match="cannot read it"):
        credentials.load_signer(tmp_path / "missing.pem")
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigError, match="not a readable PEM private key") as bad:
        credentials.load_signer(junk)
    assert "bm90IGEga2V5" not in str(bad.value)
    small = tmp_path / "small.pem"
    small.write_bytes(private_pem(rsa_key(1024)))
    with pytest.raises(ConfigError, match="1024 bits"):
        credentials.load_signer(small)
    locked = tmp_path / "locked.pem"
    locked.write_bytes(rsa_key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.BestAvailableEncryption(b"line-pass")))
    with pytest.raises(ConfigError, match="encrypted"):
        credentials.load_signer(locked)
    assert credentials.load_signer(locked, b"line-pass").key_bits == 2048


class Answering:
    """A board link that answers IDENTIFY with fixed bytes, counting execs."""

    port = "/dev/ttyACM0"

    def __init__(self, answer: bytes):
        self.answer = answer
        self.execs: list[str] = []

    def exec(self, code: str) -> bytes:
        self.execs.append(code)
        return self.answer


def test_a_board_says_who_it_is_in_one_round_trip():
    link = Answering(b"('A4CF12ABCDEF', 'micropython', '1.24.1', 'Generic ESP32S3 module with ESP32S3')\r\n")
    who = read_identity(link)
    assert link.execs == [IDENTIFY]
    assert (who.uid, who.runtime, who.version) == ("a4cf12abcdef", "micropython", "1.24.1")
    assert who.as_dict() == {"uid": "a4cf12abcdef", "runtime": "micropython", "firmware": "1.24.1",
                             "machine": "Generic ESP32S3 module with ESP32S3"}


@pytest.mark.parametrize("answer", [b"", b"Traceback (most recent call last):\r\nNameError: x\r\n",
                                    b"('a4cf12', 'micropython')\r\n", b"(1, 2, 3, 4)\r\n", b"\xff\xfe(\r\n"])
def test_a_board_that_does_not_say_who_it_is_gets_a_clear_message(answer):
    with pytest.raises(AuthprobeError, match="did not say who it is") as err:
        parse_identity(answer, "/dev/ttyACM0")
    assert err.value.exit_code == 3 and "/dev/ttyACM0" in str(err.value)
