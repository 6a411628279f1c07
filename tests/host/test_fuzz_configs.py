"""Property-based tests of the config readers (issue 12): device.toml and emulator.toml from mutated
bytes, and arbitrary TOML values in every setting. The only way out is a result, a ConfigError
(exit 2) or a lint problem with its code; never another exception."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authprobe import bundled, device_config
from authprobe.config_text import parse_toml
from authprobe.emulator.config import EmulatorConfig, config_from_dict
from authprobe.errors import ConfigError
from selftest import config as lint

pytestmark = pytest.mark.fuzz

EXAMPLES = bundled.EXAMPLES
DEVICE_TOML = (EXAMPLES / "device.toml").read_bytes()
EMULATOR_TOML = (EXAMPLES / "emulator.toml").read_bytes()


@st.composite
def mutated(draw, original: bytes):
    """The file with a few bytes flipped, replaced, inserted or deleted (or cut short)."""
    data = bytearray(original)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=max(len(data) - 1, 0)))
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "cut"]))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif op == "set" and data:
            data[at] = draw(st.integers(min_value=0, max_value=255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4) | st.sampled_from([b"[", b"{", b'"', b"~", b"\\u0000"]))
        elif op == "delete":
            del data[at:at + draw(st.integers(min_value=1, max_value=8))]
        elif op == "cut":
            del data[at:]
    return bytes(data)


toml_scalars = (st.text(max_size=20) | st.integers(min_value=-(2 ** 64), max_value=2 ** 64) | st.booleans()
                | st.floats(allow_nan=True, allow_infinity=True) | st.datetimes() | st.dates() | st.times()
                | st.sampled_from(["", "%ff", "%2", "~nosuchuser/x.pem", "a\x00b", "ä-ats.iot.x.amazonaws.com",
                                   "127.0.0.1:0", "[::1]:", "x" * 300]))
toml_values = st.recursive(toml_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
SECTIONS = sorted({s for s, _, _ in lint.FIELDS})
KEYS = sorted({k for _, k, _ in lint.FIELDS})


@st.composite
def device_configs(draw):
    """A config of the right shape with any value in any setting (plus unknown sections and keys)."""
    cfg: dict = {}
    for _ in range(draw(st.integers(min_value=0, max_value=8))):
        section = draw(st.sampled_from(SECTIONS) | st.text(max_size=6))
        if draw(st.integers(min_value=0, max_value=9)) == 0:
            cfg[section] = draw(toml_values)
            continue
        table = cfg.setdefault(section, {}) if isinstance(cfg.get(section, {}), dict) else {}
        table[draw(st.sampled_from(KEYS) | st.text(max_size=6))] = draw(toml_values)
    return cfg


def check_problems(found) -> None:
    for code, status, field, message in found:
        assert isinstance(code, int) and 100 <= code < 200
        assert status in (lint.FAIL, lint.WARN)
        assert isinstance(field, str) and isinstance(message, str) and message


# -- device.toml ------------------------------------------------------------------------------------------

@given(mutated(DEVICE_TOML))
def test_device_toml_from_mutated_bytes_loads_or_is_a_config_error(data):
    try:
        cfg = device_config.parse(data, "device.toml", EXAMPLES)
    except ConfigError as exc:
        assert str(exc) and exc.exit_code == 2
        return
    for runtime in ("micropython", "circuitpython"):
        files = device_config.device_files(cfg, runtime)
        assert all(isinstance(v, bytes) for v in files.values())


@given(device_configs())
def test_lint_of_any_values_names_problems_never_raises(cfg):
    found = lint.lint(cfg)
    check_problems(found)
    assert lint.verdict(found)[1] in ("pass", "warn", "fail")
    check_problems(device_config.problems(cfg, EXAMPLES))


@given(toml_values)
def test_lint_of_a_config_that_is_not_a_table(value):
    check_problems(lint.lint(value))


@given(st.text(max_size=40) | st.sampled_from(["%ff", "%c3%28", "%e2%82", "%%%", "%2B%2F%3D"]))
def test_percent_decode_never_raises(text):
    assert isinstance(lint.percent_decode(text), str)
    check_problems(lint.lint({"auth": {"token": "t", "token_key_name": "k", "signature": text}}))


# -- emulator.toml ----------------------------------------------------------------------------------------

def load_emulator(data: bytes) -> EmulatorConfig:
    return config_from_dict(parse_toml(data, "emulator.toml"), EXAMPLES)


@given(mutated(EMULATOR_TOML))
def test_emulator_toml_from_mutated_bytes_loads_or_is_a_config_error(data):
    try:
        cfg = load_emulator(data)
    except ConfigError as exc:
        assert str(exc) and exc.exit_code == 2
        return
    assert cfg.endpoint and cfg.endpoint.isascii()
    assert all(d.name.isascii() for d in cfg.domains.values())


EMULATOR_KEYS = ["account", "region", "endpoint", "listen", "listen_8883", "state_dir", "default_authorizer",
                 "broker", "log_level", "functions", "authorizers", "domains"]
SECTION_KEYS = ["handler", "resource_policy", "timeout_s", "memory_mb", "reserved_concurrency", "function",
                "function_missing_ok", "token_key_name", "signing_disabled", "public_keys", "status",
                "enable_caching_for_http", "name", "authentication_type", "application_protocol",
                "default_authorizer", "allow_authorizer_override"]


@st.composite
def emulator_dicts(draw):
    data = parse_toml(EMULATOR_TOML, "emulator.toml")
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        where = draw(st.sampled_from(["top", "functions", "authorizers", "domains"]))
        value = draw(toml_values)
        if where == "top":
            data[draw(st.sampled_from(EMULATOR_KEYS))] = value
        else:
            table = data.get(where)
            if isinstance(table, dict) and table:
                name = draw(st.sampled_from(sorted(table)))
                if isinstance(table[name], dict):
                    table[name][draw(st.sampled_from(SECTION_KEYS))] = value
    return data


@given(emulator_dicts())
def test_emulator_config_of_any_values_is_a_config_or_a_config_error(data):
    try:
        config_from_dict(data, EXAMPLES)
    except ConfigError as exc:
        assert str(exc) and exc.exit_code == 2

