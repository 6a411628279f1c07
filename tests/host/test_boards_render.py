"""Report rendering against golden outputs (tests/fixtures/board_render_golden.py): the rich table a
person reads and the JUnit XML a CI server reads."""

from __future__ import annotations

import io
from xml.etree import ElementTree as ET

from rich.console import Console

from authprobe.board.collect import RunResult
from authprobe.report.render import junit_xml, record_line, render_report, render_runs, render_tray
from tests.fixtures import board_render_golden as golden


def plain_console(width: int = 100) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=width, color_system=None, force_terminal=False), buf


def results() -> list[RunResult]:
    return [RunResult(port="/dev/ttyUSB0", run_id=golden.REPORT["run_id"], report=golden.REPORT, status="complete"),
            RunResult(port="/dev/ttyUSB1", run_id="20261126T090001Z-123456", report=golden.INCOMPLETE,
                      status="incomplete", reason="vanished")]


def test_report_table_matches_golden():
    console, buf = plain_console()
    render_report(golden.REPORT, console)
    assert buf.getvalue() == golden.TABLE


def test_secrets_render_as_fingerprints_only():
    console, buf = plain_console(200)
    render_report(golden.REPORT, console)
    assert "token=<redacted len=14 sha256=0123456789ab>" in buf.getvalue()


def test_junit_matches_golden_and_parses():
    xml = junit_xml(results())
    assert xml == golden.JUNIT
    suites = ET.fromstring(xml.split("\n", 1)[1])
    first, second = suites.findall("testsuite")
    assert (first.get("tests"), first.get("failures"), first.get("skipped")) == ("3", "1", "1")
    assert first[0].tag == "properties"
    assert second.find("testcase/error").get("type") == "vanished"


def test_incomplete_report_says_why():
    console, buf = plain_console()
    render_report(golden.INCOMPLETE, console)
    text = buf.getvalue()
    assert "INCOMPLETE" in text and "incomplete: vanished - the port disappeared mid-run" in text


def test_tray_and_run_list():
    console, buf = plain_console(200)
    render_tray(results(), console)
    text = buf.getvalue()
    assert "2 boards" in text and "1 fail, 1 incomplete" in text
    assert "wifi: wifi_wrong_password (302)" in text and "vanished" in text
    console, buf = plain_console()
    render_runs([{"run_id": "r1", "started": "2026-11-26T09:00:00.000Z", "duration_s": 4.2, "port": "/dev/ttyUSB0",
                  "board": "esp32-generic", "uid": "a4cf12000001", "verdict": "fail", "status": "complete",
                  "reason": None}], console)
    assert "2026-11-26 09:00:00" in buf.getvalue() and "4.2" in buf.getvalue()


def test_record_lines():
    assert record_line({"k": "step", "seq": 2, "step": "wifi", "status": "fail", "code": 302,
                        "name": "wifi_wrong_password", "ms": 40, "d": {"ssid": "lab"}}).plain == \
        "  2 wifi       fail  302 wifi_wrong_password 40ms ssid=lab"
    assert record_line({"k": "end", "verdict": "pass", "counts": {"pass": 11}, "ms": 900}).plain.startswith("end pass")
