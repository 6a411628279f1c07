"""The board names its records from selftest.codes, a compact projection of the catalogue (the
catalogue itself costs ~20 KB of heap on a board); the two must never differ."""

from authprobe import catalogue
from selftest import codes


def test_codes_mirror_the_catalogue():
    steps = catalogue.STEPS
    names = " " + " ".join(f"{c}:{n}" for c, n, _ in catalogue.CODES) + " "
    assert codes.STEPS == steps
    assert codes.NAMES == names, "regenerate firmware/selftest/codes.py from host/authprobe/catalogue.py"


def test_every_code_has_its_name():
    for code, name, _ in catalogue.CODES:
        assert codes.name_of(code) == name
    assert codes.name_of(12345) == "unknown_12345"
    assert codes.name_of(10) == "unknown_10"     # " 10:" must not match inside " 110:"
