"""Config lint (the same selftest.config code runs on the board) and the host's device.toml loader:
one clear message per problem, every problem at once, and the files each runtime reads."""

from __future__ import annotations

import json

import pytest

from authprobe import bundled, cli, device_config
from authprobe.errors import ConfigError
from selftest import config

GOOD = {
    "device": {"client_id": "dev-1", "transport": "auto"},
    "endpoint": {"host": "a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com", "port": 443},
    "auth": {"authorizer": "MyAuth", "token_key_name": "token", "token": "t0k", "signature": "QUJD+/=="},
    "test": {"topic": "authprobe/dev-1"},
}


def variant(**changes):
    cfg = json.loads(json.dumps(GOOD))
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        if value is None:
            cfg[section].pop(key, None)
        else:
            cfg.setdefault(section, {})[key] = value
    return cfg


def codes(cfg):
    return [(p[0], p[1], p[2]) for p in config.lint(cfg)]


def test_good_config_has_no_problems():
    assert config.lint(GOOD) == []
    assert config.verdict([]) == (100, "pass")


@pytest.mark.parametrize("change,code,status,field", [
    ({"device__client_id": None}, 101, "fail", "device.client_id"),
    ({"device__client_id": "x" * 129}, 108, "fail", "device.client_id"),
    ({"device__client_id": "dev#1"}, 108, "warn", "device.client_id"),
    ({"device__transport": "websocket"}, 110, "fail", "device.transport"),
    ({"endpoint__host": None}, 101, "fail", "endpoint.host"),
    ({"endpoint__host": "https://a1b2-ats.iot.eu-west-1.amazonaws.com"}, 102, "fail", "endpoint.host"),
    ({"endpoint__host": "example.com"}, 102, "fail", "endpoint.host"),
    ({"endpoint__host": "52.94.1.7"}, 119, "fail", "endpoint.host"),
    ({"endpoint__host": "2001:db8::7"}, 119, "fail", "endpoint.host"),
    ({"endpoint__host": "1.2.3"}, 102, "fail", "endpoint.host"),
    ({"test__hold_ms": -1}, 117, "fail", "test.hold_ms"),
    ({"endpoint__host": "a1b2c3d4e5f6g7.iot.eu-west-1.amazonaws.com"}, 112, "warn", "endpoint.host"),
    ({"endpoint__port": 8883}, 103, "fail", "endpoint.port"),
    ({"endpoint__connect_address": "127.0.0.1:notaport"}, 102, "fail", "endpoint.connect_address"),
    ({"endpoint__ca": ""}, 114, "fail", "endpoint.ca"),
    ({"auth__authorizer": "bad name!"}, 104, "fail", "auth.authorizer"),
    ({"auth__authorizer": "x" * 129}, 104, "fail", "auth.authorizer"),
    ({"auth__token_key_name": "x-amz token"}, 105, "fail", "auth.token_key_name"),
    ({"auth__token": "t" * 6145}, 106, "fail", "auth.token"),
    ({"auth__token": ""}, 106, "fail", "auth.token"),
    ({"auth__signature": "not base64!"}, 107, "fail", "auth.signature"),
    ({"auth__signature": "A" * 2564}, 107, "fail", "auth.signature"),
    ({"auth__signature": "QUJD===="}, 107, "fail", "auth.signature"),
    ({"auth__signature": "QUJD%2B%2F%3D%3D"}, 113, "warn", "auth.signature"),
    ({"auth__signature": None}, 111, "warn", "auth.signature"),
    ({"auth__username": "u?x-amz-customauthorizer-signature=ab+/c=&token=t"}, 113, "fail", "auth.username"),
    ({"auth__wss_auth": "cookie"}, 117, "fail", "auth.wss_auth"),
    ({"test__topic": "a/+/b"}, 109, "fail", "test.topic"),
    ({"test__topic": "a/b/c/d/e/f/g/h/i"}, 109, "fail", "test.topic"),
    ({"test__topic": "t" * 257}, 109, "fail", "test.topic"),
    ({"test__topic": "$aws/things/x"}, 109, "fail", "test.topic"),
    ({"test__timeout_ms": 0}, 117, "fail", "test.timeout_ms"),
    ({"wifi__ssid": "x" * 33}, 115, "fail", "wifi.ssid"),
    ({"wifi__password": "short"}, 115, "fail", "wifi.password"),
    ({"endpoint__port": "443"}, 117, "fail", "endpoint.port"),
    ({"device__tarnsport": "mqtt"}, 118, "warn", "device.tarnsport"),
])
def test_each_problem_has_its_code_and_one_message(change, code, status, field):
    found = config.lint(variant(**change))
    assert [(p[0], p[1], p[2]) for p in found] == [(code, status, field)]
    assert found[0][3] and field.split(".")[-1] in found[0][3] or field in found[0][3]


def test_every_problem_is_reported_at_once():
    cfg = variant(device__client_id=None, endpoint__port=80, auth__signature="%%%", test__topic="#")
    found = codes(cfg)
    assert {c for c, _, _ in found} == {101, 103, 107, 109}
    assert config.verdict(config.lint(cfg))[1] == "fail"


def test_wrong_types_are_reported_once_not_twice():
    found = codes(variant(device__client_id=12))
    assert found == [(117, "fail", "device.client_id")]


def test_token_needs_its_key_name_and_signature_needs_the_token():
    assert (101, "fail", "auth.token_key_name") in codes(variant(auth__token_key_name=None))
    assert (101, "fail", "auth.token") in codes(variant(auth__token=None))


def test_no_credentials_at_all():
    cfg = variant(auth__authorizer=None, auth__token=None, auth__signature=None, auth__token_key_name=None)
    assert codes(cfg) == [(101, "fail", "auth")]


def test_signing_disabled_silences_the_missing_signature_warning():
    assert codes(variant(auth__signature=None, auth__signing_disabled=True)) == []


def test_custom_domain_skips_the_ats_pattern():
    assert codes(variant(endpoint__host="iot.example.com", endpoint__custom_domain=True)) == []


def test_not_a_table():
    assert codes([1, 2]) == [(116, "fail", "")]
    assert codes({"device": "x"})[0] == (117, "fail", "device")


def test_percent_helpers():
    assert config.percent_decode("ab%2B%2f%3D") == "ab+/="
    assert config.is_base64("QUJD") and not config.is_base64("QU JD") and not config.is_base64("===")
    assert config.endpoint_kind("abc123-ats.iot.cn-north-1.amazonaws.com.cn") == "ats"
    assert config.split_address("[::1]:8443", 443) == ("::1", 8443)
    assert config.split_address("example.com", 443) == ("example.com", 443)


# --- host loader ----------------------------------------------------------------------------------

TOML = """
[device]
client_id = "dev-1"
[endpoint]
host = "a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com"
{extra}
[auth]
authorizer = "MyAuth"
token_key_name = "token"
token = "t0k"
signature = "QUJD+/=="
"""


def write(tmp_path, extra="", name="device.toml"):
    p = tmp_path / name
    p.write_text(TOML.format(extra=extra))
    return p


def test_load_resolves_the_ca_relative_to_the_file(tmp_path):
    from tests.fixtures.probe_servers import TestPKI

    pki = TestPKI(tmp_path)
    cfg = device_config.load(write(tmp_path, 'ca = "ca.pem"'))
    assert cfg["endpoint"]["ca"] == str(pki.ca_pem)
    files = device_config.device_files(cfg, "micropython")
    assert files[device_config.CA_DER] == pki.ca_der
    board = json.loads(files[device_config.CONFIG_FILE])
    assert board["endpoint"]["ca"] == device_config.CA_DER and board["auth"]["token"] == "t0k"
    cp = device_config.device_files(cfg, "circuitpython")
    settings = cp[device_config.SETTINGS_FILE].decode()
    assert 'AUTHPROBE_ENDPOINT_CA = "authprobe_ca.pem"' in settings
    assert 'AUTHPROBE_AUTH_SIGNATURE = "QUJD+/=="' in settings
    assert cp[device_config.CA_PEM].startswith(b"-----BEGIN CERTIFICATE-----")


def test_load_names_every_problem(tmp_path):
    p = write(tmp_path, 'port = 8883\nca = "missing.pem"')
    with pytest.raises(ConfigError) as err:
        device_config.load(p)
    text = str(err.value)
    assert "endpoint.port" in text and "endpoint.ca" in text and "missing.pem" in text
    assert text.count("\n  - ") == 2
    assert err.value.exit_code == 2


def test_ca_that_is_not_a_certificate(tmp_path):
    (tmp_path / "junk.pem").write_text("hello")
    with pytest.raises(ConfigError, match="no PEM or DER certificate"):
        device_config.load(write(tmp_path, 'ca = "junk.pem"'))


def test_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        device_config.load(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[device\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        device_config.load(bad)


def test_settings_toml_round_trips_through_the_circuitpython_reader(tmp_path):
    import tomllib

    from selftest import world_circuitpython

    cfg = device_config.load(write(tmp_path, "custom_domain = false"))
    cfg["wifi"] = {"ssid": "lab", "password": "password1"}
    text = device_config.settings_toml(cfg)
    flat = tomllib.loads(text)
    assert flat["CIRCUITPY_WIFI_SSID"] == "lab"
    back = world_circuitpython.read_settings(flat.get)
    assert back["auth"] == cfg["auth"] and back["endpoint"]["custom_domain"] is False
    assert back["device"]["client_id"] == "dev-1"


def test_example_config_is_valid():
    cfg = device_config.load(bundled.EXAMPLES / "device.toml")
    assert device_config.warnings(cfg) == []


def test_firmware_files_hold_the_package_and_entry():
    files = device_config.firmware_files("micropython")
    assert "main.py" in files and "selftest/probe.py" in files and "selftest/record.py" in files
    assert "selftest/world_circuitpython.py" not in files and "selftest/vendor/umqtt_simple.py" in files
    cp = device_config.firmware_files("circuitpython")
    assert "code.py" in cp and "selftest/world_circuitpython.py" in cp and "selftest/world.py" not in cp
    # The catalogue is the host's: boards name codes from codes.py.
    assert "selftest/catalogue.py" not in files and "selftest/catalogue.py" not in cp
    assert "selftest/codes.py" in files and "selftest/codes.py" in cp
    with pytest.raises(ConfigError):
        device_config.device_files({}, "zephyr")


# --- hostile configs (issue 12): each a ConfigError (exit 2) or a lint problem, never a traceback -----

EXAMPLE = (bundled.EXAMPLES / "device.toml").read_text()


def load_text(tmp_path, text: str | bytes):
    p = tmp_path / "device.toml"
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return device_config.load(p)


def test_a_signature_that_percent_decodes_to_no_utf8_is_a_lint_problem():
    assert config.percent_decode("%ff") == "\xff"           # the board's own lint path: no UnicodeDecodeError
    assert codes(variant(auth__signature="%ff")) == [(107, "fail", "auth.signature")]


def test_probe_names_it_and_the_config_step_fails_as_on_a_board(tmp_path, capsys):
    # `probe` hands a config the lint rejects to the self-test, as a board would get it (exit 1, the
    # device's failure); before, '%ff' crashed the self-test's decoding instead.
    p = tmp_path / "device.toml"
    p.write_text(EXAMPLE.replace('signature = "cGxhY2Vob2xkZXI="', 'signature = "%ff"'))
    assert cli.main(["probe", "--config", str(p), "--quiet"]) == 1
    out, err = capsys.readouterr()
    assert "[fail 107] auth.signature" in err and "Traceback" not in err and "verdict: fail" in out


@pytest.mark.parametrize(("text", "words"), [
    ("[endpoint]\nx = " + "[" * 3000 + "]" * 3000 + "\n", "nest too deeply"),
    ("[endpoint]\nport = " + "4" * 5000 + "\n", "not valid TOML"),
])
def test_probe_with_a_file_no_toml_reader_can_take_is_exit_2(tmp_path, capsys, text, words):
    p = tmp_path / "device.toml"
    p.write_text(text)
    assert cli.main(["probe", "--config", str(p)]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


@pytest.mark.parametrize(("ca", "words"), [
    ("~nosuchuser/ca.pem", "no home directory for '~nosuchuser'"),
    ("ca\\u0000.pem", "contains a NUL character"),
])
def test_ca_paths_that_cannot_be_paths(tmp_path, ca, words):
    with pytest.raises(ConfigError) as err:
        load_text(tmp_path, EXAMPLE.replace('# ca = "ca.pem"', f'ca = "{ca}"'))
    assert "[fail 114] endpoint.ca" in str(err.value) and words in str(err.value)


def test_a_nul_in_the_ca_is_the_board_lint_problem_too():
    assert codes(variant(endpoint__ca="ca\x00.pem")) == [(114, "fail", "endpoint.ca")]


@pytest.mark.parametrize(("text", "words"), [
    (EXAMPLE + "\n[extra]\nx = " + "[" * 3000 + "]" * 3000 + "\n", "nest too deeply"),
    (EXAMPLE.replace("[test]", "[test]\nx = " + "[" * 900 + "]" * 900), "nest too deeply"),
    (EXAMPLE.replace("port = 443", "port = " + "4" * 5000), "not valid TOML"),
    (EXAMPLE.encode().replace(b"sensor-0042", b"sensor-\xff042", 1), "not UTF-8 text (byte 0xff on line 5)"),
])
def test_files_that_are_not_readable_toml(tmp_path, text, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")) as err:
        load_text(tmp_path, text)
    assert err.value.exit_code == 2


def test_a_non_ascii_endpoint_host_is_a_lint_problem(tmp_path):
    with pytest.raises(ConfigError, match=r"\[fail 102\] endpoint.host"):
        load_text(tmp_path, EXAMPLE.replace("a1b2c3d4e5f6g7-ats", "ä1b2c3d4e5f6g7-ats"))
