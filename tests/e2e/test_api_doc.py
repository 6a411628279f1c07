"""docs/api.md's script, run as written against a virtual board and the local stand-in: only the
port, the config file and the cloud are swapped for the local ones."""

from __future__ import annotations

import re
from pathlib import Path

import authprobe
from authprobe.board.virtual import VirtualBoard
from authprobe.drill.standin import EXAMPLES, StandIn
from tests.fixtures.e2e_chain import toml_text

ROOT = Path(__file__).resolve().parents[2]


def doc_script() -> str:
    text = (ROOT / "docs" / "api.md").read_text()
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


def test_the_public_names_are_all_there():
    for name in authprobe.__all__:
        assert getattr(authprobe, name) is not None
    assert set(authprobe.__all__) == {"__version__", *authprobe._HOMES}


def test_the_api_doc_script_flashes_runs_and_diagnoses_a_board(tmp_path, monkeypatch, capsys):
    script = doc_script()
    assert len(script.strip().splitlines()) <= 12 and "import authprobe" in script
    monkeypatch.chdir(tmp_path)
    standin = StandIn.start(EXAMPLES / "emulator.toml", tmp_path / "standin")
    board = VirtualBoard(tmp_path / "flash", name="api-doc")
    try:
        port = board.start()
        cfg = standin.device_config("api-doc-01")
        cfg["device"]["transport"] = "mqtt"   # MicroPython has no ALPN: a finding the diagnosis must make
        (tmp_path / "device.toml").write_text(toml_text(cfg))
        local = script.replace("/dev/ttyUSB0", port).replace('open_cloud("aws")',
                                                              f'open_cloud("local:{standin.state_dir}")')
        exec(compile(local, "docs/api.md", "exec"), {})
    finally:
        board.stop()
        standin.close()
    verdict, root_cause, *_ = capsys.readouterr().out.split()
    assert verdict == "fail" and root_cause == "alpn-missing"
    with authprobe.RunStore(tmp_path / ".authprobe" / "runs.sqlite") as store:
        assert len(store.list_runs()) == 1
