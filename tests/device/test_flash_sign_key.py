"""`authprobe flash --sign-key`: two virtual boards flashed from one config whose token is a
template; each board's flash holds its own token and a signature of exactly it, the output shows
the unique ids and fingerprints only, a second flash sends nothing, and a template nobody can sign
is refused before any board is touched."""

from __future__ import annotations

import json

from authprobe import cli
from authprobe.aws import signing
from selftest.record import fingerprint
from tests.fixtures.emulator import EXAMPLE_PRIVATE, EXAMPLE_PUBLIC

CONFIG = """
[device]
client_id = "line-{uid}"
[endpoint]
host = "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com"
[auth]
authorizer = "LineAuth"
token_key_name = "token"
token = "dev-{uid}"
[wifi]
ssid = "lab"
password = "password1"
"""


def test_each_board_is_flashed_with_its_own_signed_token(authprobe_virtual_boards, tmp_path, capsys):
    boards = [authprobe_virtual_boards(uid=uid) for uid in ("a4cf12000011", "a4cf12000012")]
    config = tmp_path / "device.toml"
    config.write_text(CONFIG)
    args = ["flash", "--config", str(config), "--board", "virtual", "--sign-key", str(EXAMPLE_PRIVATE)]
    for b in boards:
        args += ["--port", b.port]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    public = signing.load_public_key(EXAMPLE_PUBLIC.read_bytes())
    secrets = [ln for ln in EXAMPLE_PRIVATE.read_text().splitlines() if not ln.startswith("-----")]
    for b in boards:
        board_cfg = json.loads((b.flash_dir / "authprobe.json").read_text())
        token, signature = board_cfg["auth"]["token"], board_cfg["auth"]["signature"]
        assert token == f"dev-{b.uid}"
        assert signing.verifies(public, signing.decode_base64(signature), token)
        # The output names the board and its credentials by fingerprint only.
        line = next(ln for ln in out.splitlines() if ln.startswith(b.port))
        assert f"uid {b.uid}" in line
        assert f"token len={len(token)} sha256={fingerprint(token)['sha256']}" in line
        assert f"signature len={len(signature)} sha256={fingerprint(signature)['sha256']}" in line
        secrets += [token, signature]
    assert not any(s in out for s in secrets)

    # Flashed again: the same token, the same (deterministic) signature, nothing sent.
    assert cli.main(args) == 0
    again = capsys.readouterr().out
    assert again.count("unchanged, nothing sent") == 2, again


def test_a_uid_token_without_a_key_is_refused_before_any_board_is_touched(authprobe_virtual_board, tmp_path,
                                                                          capsys):
    config = tmp_path / "device.toml"
    config.write_text(CONFIG)
    rc = cli.main(["flash", "--port", authprobe_virtual_board.port, "--config", str(config), "--board", "virtual"])
    assert rc == 2
    assert "--sign-key KEY" in capsys.readouterr().err
    assert not (authprobe_virtual_board.flash_dir / "authprobe.json").exists()
