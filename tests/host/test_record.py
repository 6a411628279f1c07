"""The serial report protocol: encode/decode round trips and every kind of damaged line."""

import pytest

from selftest import record


def test_round_trip_keeps_every_field():
    rec = {"k": "step", "run": "r1", "seq": 3, "code": 701, "d": {"why": "not signed by CA"}}
    got, err = record.decode(record.encode(rec))
    assert err is None
    assert got == rec


def test_prefix_found_after_boot_noise_and_echo():
    line = "ets Jun  8 2016 rst:0x1>>> " + record.encode({"k": "end", "verdict": "pass"}) + "  \r\n"
    got, err = record.decode(line)
    assert err is None and got["verdict"] == "pass"


def test_string_holding_brace_space_and_hex_is_not_mistaken_for_the_checksum():
    rec = {"k": "step", "d": {"s": "a} 12345678 b"}}
    assert record.decode(record.encode(rec))[0] == rec


def test_trailing_noise_after_checksum_is_ignored():
    line = record.encode({"k": "begin"}) + " I (123) wifi: sta start"
    assert record.decode(line)[0] == {"k": "begin"}


@pytest.mark.parametrize(
    "mangle, reason",
    [
        (lambda s: s.replace('"k":"step"', '"k":"stop"'), record.BAD_CRC),
        (lambda s: s[:-1] + ("0" if s[-1] != "0" else "1"), record.BAD_CRC),
        (lambda s: s[: len(s) // 2], record.BAD_FRAME),
        (lambda s: s.replace("@AP1 ", "@AP2 "), record.BAD_VERSION),
        (lambda s: "@AP1", record.BAD_FRAME),
    ],
)
def test_damaged_lines_are_reported_not_raised(mangle, reason):
    line = mangle(record.encode({"k": "step", "code": 700}))
    got, err = record.decode(line)
    assert got is None
    assert err == reason


def test_valid_frame_with_non_object_json_is_bad_json():
    body = "[1,2]"
    line = "@AP1 " + body + " " + record.crc32_hex(body.encode())
    assert record.decode(line) == (None, record.BAD_FRAME)  # no closing brace: not a frame at all
    body = '{"no_kind":1}'
    line = "@AP1 " + body + " " + record.crc32_hex(body.encode())
    assert record.decode(line) == (None, record.BAD_JSON)


def test_noise_lines_are_not_errors():
    assert record.decode("MicroPython v1.29.0 on 2026-01-01; ESP32 module with ESP32") == (None, None)
    assert record.decode(b"\xff\xfe garbage") == (None, None)


def test_fingerprint_never_contains_the_secret():
    secret = "tok-" + "x" * 40
    fp = record.fingerprint(secret)
    assert fp["len"] == len(secret)
    assert len(fp["sha256"]) == 12
    assert secret not in str(fp)
    assert record.fingerprint(None) is None


def test_fingerprint_uses_hashlib_new_where_there_is_no_sha256_class(monkeypatch):
    """CircuitPython's hashlib has new() only; the fingerprint must keep its shape there."""
    import hashlib

    expected = record.fingerprint("tok")
    monkeypatch.delattr(hashlib, "sha256")
    assert record.fingerprint("tok") == expected
