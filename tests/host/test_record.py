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


# --- hostile lines (issue 12) ----------------------------------------------------------------------

def test_json_nested_a_thousand_deep_is_bad_json_not_a_recursion_error():
    body = '{"k":"step","d":' + "[" * 1000 + "]" * 1000 + "}"
    line = "@AP1 " + body + " " + record.crc32_hex(body.encode())
    assert record.decode(line) == (None, record.BAD_JSON)
    assert record.decode(line.encode()) == (None, record.BAD_JSON)


@pytest.mark.parametrize("noise", ["root@APnode login: ", "mail@AP.example ", "@APx "])
def test_at_ap_inside_boot_noise_is_not_a_record_prefix(noise):
    rec = {"k": "end", "run": "r1", "verdict": "pass"}
    assert record.decode(noise + record.encode(rec)) == (rec, None)
    assert record.decode(noise) == (None, None)
    # Another version's prefix after such noise is still told apart.
    assert record.decode(noise + record.encode(rec).replace("@AP1 ", "@AP2 ")) == (None, record.BAD_VERSION)


def test_a_line_cut_right_after_the_prefix_is_truncated():
    assert record.decode("boot log @AP") == (None, record.BAD_FRAME)


def test_decode_hashes_each_byte_once_however_many_checksum_candidates(monkeypatch):
    """Junk of many '} 8-hex' candidates was hashed from the start once per candidate (quadratic)."""
    import binascii

    hashed = []
    real = binascii.crc32
    monkeypatch.setattr(binascii, "crc32", lambda data, *crc: hashed.append(len(data)) or real(data, *crc))
    line = "@AP1 {" + "} 00000000" * 5000
    assert record.decode(line) == (None, record.BAD_CRC)
    assert sum(hashed) <= len(line)
    good = record.encode({"k": "end", "d": {"s": "} 12345678 " * 50}})
    assert record.decode(good)[1] is None


def test_text_with_lone_surrogates_is_not_a_crash():
    assert record.decode("noise \ud800") == (None, None)
    assert record.decode("@AP1 {\ud800} 00000000") == (None, record.BAD_FRAME)
