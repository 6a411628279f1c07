"""The pytest plugin, tested as a plugin (pytester): its fixtures in someone else's test suite, and
hardware tests skipped with a reason when no port is named."""

from __future__ import annotations

pytest_plugins = ["pytester"]


def test_fixtures_in_a_users_test_suite(pytester, monkeypatch):
    monkeypatch.delenv("AUTHPROBE_HIL_PORTS", raising=False)
    pytester.makepyfile(test_user="""
        import pytest
        from tests_support import install

        def test_virtual_board_runs(authprobe_board):
            install(authprobe_board.virtual.flash_dir)
            result = authprobe_board.run(timeout=10)
            assert result.verdict == "pass"
            assert authprobe_board.store.get_report(result.run_id)["verdict"] == "pass"

        def test_two_boards(authprobe_virtual_boards):
            a, b = authprobe_virtual_boards(), authprobe_virtual_boards(wifi_fault="no-ap")
            assert a.port != b.port and b.wifi_fault == "no-ap"

        @pytest.mark.hil
        def test_needs_hardware(authprobe_board):
            raise AssertionError("must be skipped without AUTHPROBE_HIL_PORTS")

        def test_endpoint_needs_a_marker(authprobe_endpoint):
            raise AssertionError("skipped: no authprobe_endpoint marker")
    """)
    pytester.makepyfile(tests_support=f"""
        import sys
        sys.path.insert(0, {str(__import__('pathlib').Path(__file__).resolve().parents[2])!r})
        from tests.fixtures.board_programs import PASSING, install as _install

        def install(flash_dir):
            _install(flash_dir, PASSING)
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines(["*AUTHPROBE_HIL_PORTS*", "*authprobe_endpoint*"])
