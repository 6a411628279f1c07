"""The station's watcher (board.station.Station.poll) with ports and workers of the test's making:
what counts as a new board, a native-USB board's own resets, a board plugged again, a port that
never answers reported once, --exit-after; and a board's line from its report."""

from __future__ import annotations

import threading
import time

import pytest

from authprobe.board import definitions
from authprobe.board.station import (
    BoardOutcome,
    Station,
    StationEvent,
    StationSettings,
    _correlated,
    combined_exit_code,
    glob_ports,
    leading_cause,
    outcome_of,
    usb_ports,
)
from authprobe.commands.station import board_line
from authprobe.errors import ConfigError

P = "/dev/serial/by-id/usb-Espressif_USB_JTAG_serial_debug_unit_A4:CF:12:00:00:01-if00"
Q = "/dev/serial/by-id/usb-Silicon_Labs_CP2102N_0001-if00-port0"


class Bench:
    """A station whose worker waits until the test lets each job finish, with the outcome it names."""

    def __init__(self, **settings):
        self.calls: list[str] = []
        self.release: dict[str, threading.Event] = {}
        self.answers: dict[str, BoardOutcome] = {}
        self.events: list[StationEvent] = []
        self.station = Station(StationSettings({"auth": {"token": "allow-line"}}, **settings),
                               on_event=self.events.append, ports=set, worker=self.work)

    def work(self, port, station, update):
        self.calls.append(port)
        gate = self.release.setdefault(port, threading.Event())
        gate.wait(10)
        gate.clear()
        return self.answers.get(port) or BoardOutcome(port=port, uid="a4cf12000001", verdict="PASS", run_id="r")

    def finish(self, port: str, listed: set[str], now: float, answer: BoardOutcome | None = None) -> None:
        """Let the port's job end, then poll until its outcome is taken."""
        if answer is not None:
            self.answers[port] = answer
        self.release.setdefault(port, threading.Event()).set()
        deadline = time.monotonic() + 10
        while self.station._slots[port].busy:
            assert time.monotonic() < deadline, "the job did not end"
            time.sleep(0.005)
            self.station.poll(listed, now)

    def lines(self) -> list[BoardOutcome]:
        return [e.outcome for e in self.events if e.kind == "board" and e.outcome is not None]

    def states(self, port: str) -> list[str]:
        return [e.slot.state for e in self.events if e.kind == "slot" and e.slot.port == port]


def no_answer(port: str) -> BoardOutcome:
    return BoardOutcome(port=port, uid=None, verdict="ERROR", reason="no-answer", fix=f"{port}: cannot open the port",
                        exit_code=2, identified=False)


def test_a_port_counts_once_seen_on_two_polls_in_a_row():
    bench = Bench()
    st = bench.station
    st.poll({P, f"{P}.new"}, 0.0)   # a link being replaced shows its temporary name for an instant
    assert bench.calls == []
    st.poll({P}, 0.2)
    time.sleep(0.05)
    assert bench.calls == [P]   # the temporary name never was
    bench.finish(P, {P}, 0.4)
    assert [o.verdict for o in bench.lines()] == ["PASS"]
    assert bench.states(P)[-1] == "pass"


def test_a_native_usb_boards_own_reset_is_not_a_new_board():
    bench = Bench()
    st = bench.station
    st.poll({P}, 0.0)
    st.poll({P}, 0.2)
    # Flashed, then reset for the run: the port vanishes and comes back while the board is worked on.
    st.poll(set(), 1.0)
    st.poll({P}, 1.4)
    st.poll({P}, 1.6)
    bench.finish(P, {P}, 3.0)
    for t in (3.2, 3.4, 10.0):
        st.poll({P}, t)   # still plugged in after its run: nothing new
    time.sleep(0.05)
    assert bench.calls == [P] and len(bench.lines()) == 1


def test_a_reset_that_outlives_its_worker_by_a_moment_is_the_same_board():
    bench = Bench()
    st = bench.station
    st.poll({P}, 0.0)
    st.poll({P}, 0.2)
    st.poll(set(), 1.0)                 # vanished while busy...
    bench.finish(P, set(), 1.2)         # ...the job ended before it was back
    st.poll({P}, 2.0)
    st.poll({P}, 2.2)                   # back within the grace: its own reset
    time.sleep(0.05)
    assert bench.calls == [P]


def test_the_same_board_plugged_again_is_a_new_run():
    bench = Bench()
    st = bench.station
    st.poll({P}, 0.0)
    st.poll({P}, 0.2)
    bench.finish(P, {P}, 2.0)
    st.poll(set(), 5.0)                 # unplugged after its run
    assert bench.states(P)[-1] == "waiting"
    st.poll({P}, 5.5)
    st.poll({P}, 5.7)                   # plugged again
    bench.finish(P, {P}, 7.0)
    assert bench.calls == [P, P] and [o.verdict for o in bench.lines()] == ["PASS", "PASS"]
    assert st.slots()[0].boards == 2


def test_a_board_unplugged_mid_run_ends_incomplete_and_the_station_goes_on():
    bench = Bench()
    st = bench.station
    for t, listed in ((0.0, {P, Q}), (0.2, {P, Q})):
        st.poll(listed, t)
    st.poll({Q}, 1.0)   # P pulled out mid-run; its worker sees the port gone and ends the run
    bench.finish(P, {Q}, 7.0, BoardOutcome(port=P, uid="a4cf12000001", verdict="INCOMPLETE", run_id="r1",
                                           reason="vanished", exit_code=3))
    bench.finish(Q, {Q}, 7.2)
    assert sorted((o.port, o.verdict) for o in bench.lines()) == [(P, "INCOMPLETE"), (Q, "PASS")]
    st.poll({P, Q}, 20.0)
    st.poll({P, Q}, 20.2)               # plugged again long after: a new run
    bench.finish(P, {P, Q}, 22.0)
    assert bench.calls.count(P) == 2
    assert combined_exit_code(st.outcomes) == 3


def test_a_port_that_never_answers_is_reported_once_and_retried_quietly():
    bench = Bench(retry_s=(2.0, 4.0))
    st = bench.station
    bench.answers[P] = no_answer(P)
    st.poll({P}, 0.0)
    st.poll({P}, 0.2)
    bench.finish(P, {P}, 0.5)
    assert len(bench.lines()) == 1 and bench.lines()[0].reason == "no-answer"
    st.poll({P}, 1.0)
    time.sleep(0.05)
    assert bench.calls == [P]           # not before its pause is over
    # It comes and goes (failing to enumerate), and is tried when its pause is over: no new line.
    for t, listed in ((1.5, set()), (1.7, {P}), (1.9, {P}), (2.1, set()), (2.3, {P}), (2.6, {P})):
        st.poll(listed, t)
    time.sleep(0.05)
    assert bench.calls == [P, P]
    bench.finish(P, {P}, 2.8)
    st.poll({P}, 5.0)
    time.sleep(0.05)
    assert bench.calls == [P, P]        # the second pause is longer
    st.poll({P}, 6.9)
    bench.finish(P, {P}, 7.0)
    assert bench.calls == [P, P, P] and len(bench.lines()) == 1
    assert st.slots()[0].failures == 3 and "3x" in st.slots()[0].detail
    assert st.outcomes == []            # no verdict: it does not count towards --exit-after
    # When it answers at last, it is a board like any other, and a later silence is news again.
    del bench.answers[P]
    st.poll({P}, 20.0)
    bench.finish(P, {P}, 20.5)
    assert [o.verdict for o in bench.lines()] == ["ERROR", "PASS"]
    st.poll(set(), 30.0)
    bench.answers[P] = no_answer(P)
    st.poll({P}, 31.0)
    st.poll({P}, 31.2)
    bench.finish(P, {P}, 31.5)
    assert [o.verdict for o in bench.lines()] == ["ERROR", "PASS", "ERROR"]


def test_a_worker_that_breaks_is_one_error_line_and_the_station_goes_on():
    events: list[StationEvent] = []

    def broken(port, station, update):
        raise RuntimeError("boom")

    st = Station(StationSettings({}), on_event=events.append, ports=set, worker=broken)
    st.poll({P}, 0.0)
    st.poll({P}, 0.2)
    deadline = time.monotonic() + 5
    while not st.outcomes:
        assert time.monotonic() < deadline
        time.sleep(0.01)
        st.poll({P}, 0.4)
    (outcome,) = st.outcomes
    assert (outcome.verdict, outcome.exit_code, outcome.reason) == ("ERROR", 4, "internal-error")
    assert "RuntimeError: boom" in outcome.fix


def test_exit_after_stops_once_enough_boards_have_a_verdict():
    ports = {P, Q}
    done: list[str] = []

    def quick(port, station, update):
        update("running", "wifi")
        done.append(port)
        return BoardOutcome(port=port, uid=port[-4:], verdict="PASS", run_id=f"run-{port[-4:]}")

    st = Station(StationSettings({}, exit_after=2, poll_s=0.01), ports=lambda: ports, worker=quick)
    t0 = time.monotonic()
    outcomes = st.run()
    assert time.monotonic() - t0 < 5
    assert sorted(o.port for o in outcomes) == sorted(ports) and sorted(done) == sorted(ports)


def test_a_station_stopped_from_outside_finishes_its_boards_first():
    stop = threading.Event()
    started = threading.Event()

    def slow(port, station, update):
        started.set()
        while not station.stopping.is_set():
            time.sleep(0.01)
        return BoardOutcome(port=port, uid="u", verdict="INCOMPLETE", run_id="r", reason="interrupted", exit_code=3)

    st = Station(StationSettings({}, poll_s=0.01), ports=lambda: {P}, worker=slow)
    runner = threading.Thread(target=lambda: st.run(stop))
    runner.start()
    assert started.wait(5)
    stop.set()
    runner.join(5)
    assert not runner.is_alive()
    assert [o.reason for o in st.outcomes] == ["interrupted"]


def test_a_template_nobody_can_sign_stops_the_station_before_any_board():
    with pytest.raises(ConfigError, match="--sign-key"):
        Station(StationSettings({"auth": {"token": "dev-{uid}"}}), ports=set)


def report(verdict: str, steps=(), diagnosis=(), collection=None, uid="a4cf12000001") -> dict:
    return {"verdict": verdict, "device": {"uid": uid}, "steps": list(steps), "diagnosis": list(diagnosis),
            "collection": collection or {}}


WIFI_STEP = {"step": "wifi", "name": "wifi_wrong_password", "code": 302, "status": "fail"}


def test_a_boards_line_names_the_leading_cause_and_its_fix():
    likely = {"root_cause": "wifi-failure", "remediation": "Check SSID and password.", "decided": False}
    decided = {"root_cause": "authorizer-denied", "remediation": "Log the event.", "decided": True}
    assert leading_cause(report("fail", diagnosis=[likely, decided])) is decided
    assert leading_cause(report("fail", diagnosis=[likely])) is likely
    assert leading_cause(report("fail")) is None

    fail = outcome_of(P, None, report("fail", [WIFI_STEP], [likely]), "complete", 1, "20261126T091502Z-3f9a1c")
    assert (fail.verdict, fail.uid, fail.root_cause, fail.fix) == ("FAIL", "a4cf12000001", "wifi-failure",
                                                                     "Check SSID and password.")
    assert fail.failed_step == "wifi: wifi_wrong_password (302)"
    line = board_line(fail)
    for part in (P, "a4cf12000001", "FAIL", "run 20261126T091502Z-3f9a1c",
                 "wifi-failure at wifi: wifi_wrong_password (302): Check SSID and password."):
        assert part in line

    ok = outcome_of(P, "a4cf12000001", report("pass", diagnosis=[likely]), "complete", 0, "r2")
    assert (ok.verdict, ok.root_cause, ok.fix) == ("PASS", None, None)
    assert "PASS" in board_line(ok) and "wifi-failure" not in board_line(ok)

    gone = outcome_of(P, "a4cf12000009", report("incomplete", uid=None, collection={
        "reason": "vanished", "hint": "the port disappeared mid-run"}), "incomplete", 3, "r3")
    assert (gone.verdict, gone.uid, gone.reason, gone.fix) == ("INCOMPLETE", "a4cf12000009", "vanished",
                                                                "the port disappeared mid-run")
    err = outcome_of(P, "u", report("incomplete"), "error", 4, "r4", error="cannot open the port")
    assert (err.verdict, err.fix) == ("ERROR", "cannot open the port")
    assert combined_exit_code([ok, fail]) == 1 and combined_exit_code([ok, fail, gone]) == 3
    assert combined_exit_code([ok]) == 0 and combined_exit_code([err, gone]) == 4


def test_usb_ports_are_named_by_their_by_id_link_when_they_have_one(tmp_path, monkeypatch):
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in ("ttyACM0", "ttyUSB0", "ttyUSB1"):
        (dev / name).write_text("")
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    (by_id / "usb-Espressif_USB_JTAG_serial_debug_unit_A4:CF:12-if00").symlink_to(dev / "ttyACM0")
    (by_id / "usb-FTDI_FT232R_UART_A10K-if00-port0").symlink_to(dev / "ttyUSB1")   # no definition matches
    listed = [definitions.Port(str(dev / "ttyACM0"), candidates=["esp32-s3-devkitc"]),
              definitions.Port(str(dev / "ttyUSB0"), candidates=["esp32-generic"]),   # no by-id link: its path
              definitions.Port(str(dev / "ttyUSB1"))]
    monkeypatch.setattr(definitions, "connected", lambda registry=None: listed)
    assert usb_ports({}, by_id) == {str(by_id / "usb-Espressif_USB_JTAG_serial_debug_unit_A4:CF:12-if00"),
                                            str(dev / "ttyUSB0")}
    assert usb_ports({}, tmp_path / "no-by-id-folder") == {str(dev / "ttyACM0"), str(dev / "ttyUSB0")}


def test_a_glob_lists_ports_that_lead_somewhere(tmp_path):
    (tmp_path / "tty").write_text("")
    (tmp_path / "usb-a-if00").symlink_to(tmp_path / "tty")
    (tmp_path / "usb-b-if00").symlink_to(tmp_path / "gone")   # a by-id link whose device went away
    assert glob_ports(str(tmp_path / "usb-*-if00")) == {str(tmp_path / "usb-a-if00")}


def test_a_port_list_that_cannot_be_read_for_a_moment_changes_nothing():
    calls: list[int] = []
    answers = [{P}, {P}, OSError("sysfs busy"), {P}]

    def ports():
        answer = answers[min(len(calls), len(answers) - 1)]
        calls.append(1)
        if isinstance(answer, Exception):
            raise answer
        return answer

    bench = Bench()
    st = bench.station
    st._ports = ports
    for t in (0.0, 0.2):
        st.poll(st._list(), t)
    bench.finish(P, {P}, 0.3)
    for t in (0.4, 0.6, 0.8):
        st.poll(st._list(), t)
    time.sleep(0.05)
    assert bench.calls == [P] and bench.states(P)[-1] == "pass"


@pytest.mark.parametrize("failure", [ConfigError("--cloud aws: no credentials"), KeyError("logGroupName")])
def test_a_cloud_that_cannot_be_read_leaves_the_devices_own_diagnosis_with_a_note(failure):
    def correlate(report, cfg):
        raise failure

    st = Station(StationSettings({}), ports=set, worker=lambda *a: None, correlate=correlate)
    mine = report("fail", [WIFI_STEP], [{"root_cause": "wifi-failure"}])
    out, correlated = _correlated(st, mine, {})
    assert not correlated and out["diagnosis"] == mine["diagnosis"]
    assert str(failure.args[0]) in out["correlation"]["error"]
