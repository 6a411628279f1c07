"""emulator.toml inputs that used to escape as tracebacks (exit 4), found by fuzzing (issue 12): each is
now one ConfigError (exit 2) naming the problem."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from authprobe import cli
from authprobe.emulator.config import load_config
from authprobe.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE = (EXAMPLES / "emulator.toml").read_text()


@pytest.fixture
def folder(tmp_path):
    """The example config's neighbours (authorizer, keys, policy) beside the file under test."""
    for name in ("authorizer.py", "token-signing-pub.pem", "lambda-policy.json"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    return tmp_path


def write(folder: Path, text: str | bytes) -> Path:
    p = folder / "emulator.toml"
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


def test_the_example_itself_loads(folder):
    assert load_config(write(folder, EXAMPLE)).endpoint.endswith("amazonaws.com")


@pytest.mark.parametrize(("change", "words"), [
    (lambda t: t.encode().replace(b"DeviceAuth", b"Device\xffAuth"), "is not UTF-8 text (byte 0xff on line 4)"),
    (lambda t: t.encode().replace(b'region = "us-east-1"', b'region = "us-east-\xe91"'), "on line 8"),
    (lambda t: t + "\nx = " + "[" * 3000 + "]" * 3000 + "\n", "nest too deeply"),
    (lambda t: t.replace('account = "111111111111"', "account = " + "1" * 5000), "not valid TOML"),
    (lambda t: t.replace('"authorizer.py', '"~nosuchuser/authorizer.py'), "no home directory for '~nosuchuser'"),
    (lambda t: t.replace('"authorizer.py', '"auth\\u0000orizer.py'), "handler: the path 'auth\\x00orizer.py' contains a NUL"),
    (lambda t: t.replace('"lambda-policy.json', '"\\u0000policy.json'), "resource_policy: the path"),
    (lambda t: t.replace('"token-signing-pub.pem', '"\\u0000pub.pem'), "public_keys.key1: the path"),
    (lambda t: t.replace('"../.authprobe/emulator"', '"st\\u0000ate"'), "state_dir: the path"),
    (lambda t: t.replace('endpoint = "a1b2', 'endpoint = "ä1b2'), "is not a DNS name"),
    (lambda t: t.replace("iot.example.com", "iot.exämple.com"), "[domains.factory].name 'iot.exämple.com' is not a DNS"),
    (lambda t: t.replace("timeout_s = 5 ", "timeout_s = nan "), "timeout_s must be a positive number"),
])
def test_hostile_configs_are_config_errors(folder, change, words):
    with pytest.raises(ConfigError) as err:
        load_config(write(folder, change(EXAMPLE)))
    assert words in str(err.value)
    assert err.value.exit_code == 2


def test_emulate_exits_2_without_a_traceback(folder, capsys):
    path = write(folder, EXAMPLE.encode().replace(b"DeviceAuth", b"Device\xffAuth"))
    assert cli.main(["emulate", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "not UTF-8" in err and "Traceback" not in err


def test_a_policy_file_nested_too_deeply_is_a_problem(folder):
    (folder / "lambda-policy.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError, match="lambda-policy.json is not JSON"):
        load_config(write(folder, EXAMPLE))
