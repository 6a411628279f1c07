"""Output files: '-' is stdout, folders are made, an unwritable path is the user's error."""

import pytest

from authprobe.errors import AuthprobeError
from authprobe.output import write_output


def test_dash_is_stdout(capsys):
    write_output("-", "hello\n")
    assert capsys.readouterr().out == "hello\n"


def test_missing_folders_are_made(tmp_path):
    target = tmp_path / "a" / "b" / "report.json"
    write_output(str(target), "{}\n")
    assert target.read_text() == "{}\n"


def test_unwritable_path_names_the_path_and_the_reason(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(AuthprobeError, match=r"cannot write .*file/report.json: "):
        write_output(str(blocker / "report.json"), "{}")
