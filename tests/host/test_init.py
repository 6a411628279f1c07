"""`authprobe init [DIR]`: starter files written from the packaged examples, in any folder; with
--standin a stand-in and a device.toml that already reaches it; existing files are kept unless
--force."""

from __future__ import annotations

import tomllib

import pytest

from authprobe import bundled, cli, device_config
from authprobe.aws import signing
from authprobe.drill import starter
from authprobe.emulator import load_config


def test_init_here_writes_the_commented_device_toml(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["init"]) == 0
    written = (tmp_path / "device.toml").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["device.toml"]
    # The example's comments come along; its paths name the copy, not the repository's examples/.
    assert "# unique per device" in written and "examples/" not in written
    example = tomllib.loads((bundled.EXAMPLES / "device.toml").read_text())
    assert tomllib.loads(written) == example
    assert device_config.load(tmp_path / "device.toml")["device"]["client_id"] == example["device"]["client_id"]
    assert "wrote device.toml" in capsys.readouterr().out


def test_init_standin_reaches_its_own_stand_in(tmp_path, capsys):
    folder = tmp_path / "new" / "rehearsal"          # made, parents too
    assert cli.main(["init", str(folder), "--standin"]) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == sorted(starter.planned(standin=True))
    emulator = load_config(folder / "emulator.toml")
    # The stand-in keeps its records next to its config, not in the package the example came from.
    assert emulator.state_dir == (folder / ".authprobe" / "emulator").resolve()
    assert emulator.functions["device-auth"].handler_file == (folder / "authorizer.py").resolve()
    # The device config passes the lint as written (its CA exists) and points at that stand-in.
    cfg = device_config.load(folder / "device.toml")
    raw = tomllib.loads((folder / "emulator.toml").read_text())
    assert cfg["endpoint"]["host"] == emulator.endpoint
    assert cfg["endpoint"]["connect_address"] == raw["listen"]
    assert cfg["endpoint"]["ca"] == str(emulator.state_dir / "ca.pem")
    assert cfg["auth"]["authorizer"] in emulator.authorizers
    assert cfg["test"]["topic"] == f"selftest/{cfg['device']['client_id']}"
    public = signing.load_public_key((folder / "token-signing-pub.pem").read_bytes())
    assert signing.verifies(public, signing.decode_base64(cfg["auth"]["signature"]), cfg["auth"]["token"])
    # The signature is a secret: it is in the file, never on the terminal.
    assert cfg["auth"]["signature"] not in out
    assert f"authprobe emulate --config {folder / 'emulator.toml'}" in out


def test_existing_files_are_kept_and_named_unless_forced(tmp_path, capsys):
    (tmp_path / "device.toml").write_text("mine = true\n")
    assert cli.main(["init", str(tmp_path), "--standin"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "device.toml") in err and "--force" in err
    # Nothing at all was written: not the device config, not the stand-in's files beside it.
    assert (tmp_path / "device.toml").read_text() == "mine = true\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["device.toml"]
    assert cli.main(["init", str(tmp_path), "--standin", "--force"]) == 0
    assert "mine" not in (tmp_path / "device.toml").read_text()


def test_a_folder_that_cannot_be_made_is_a_clear_error(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert cli.main(["init", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert "cannot write the starter files" in err and "Traceback" not in err


def test_set_value_replaces_commented_keys_in_their_section_only():
    text = "[a]\nkey = 1   # old\n[b]\n# key = 2\nkey_other = 3\n"
    out = starter.set_value(text, "b", "key", "9", "why")
    assert tomllib.loads(out) == {"a": {"key": 1}, "b": {"key": 9, "key_other": 3}}
    with pytest.raises(ValueError):
        starter.set_value(text, "b", "missing", "1", "")
