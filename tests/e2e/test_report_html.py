"""`authprobe report RUN_ID... --html FILE` on real stored runs of a virtual board against the stand-in,
correlated with the stand-in's records, and read back from headless Chromium after the page's own
script has drawn the time axis."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from authprobe import cli
from authprobe.drill.standin import EXAMPLE_TOKEN, example_signature
from tests.fixtures.chromium import dump_dom
from tests.fixtures.e2e_chain import Chain


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    try:
        from authprobe.board.virtual import micropython_path

        micropython_path()
    except Exception as exc:
        pytest.skip(f"needs the MicroPython unix port: {exc}")
    c = Chain(tmp_path_factory.mktemp("report-chain"))
    yield c
    c.close()


@pytest.fixture(scope="module")
def runs(chain):
    """Three boards: a healthy one, one whose signature signs another value (refused at CONNECT, an
    IoT log Connect Failure), and one whose test topic lies outside the topics the example authorizer's
policy allows (its SUBSCRIBE is refused and the connection closed, as AWS IoT does)."""
    healthy = chain.standin.device_config("report-ok")
    bad_sig = chain.standin.device_config("report-sig")
    bad_sig["auth"]["signature"] = example_signature(EXAMPLE_TOKEN + "-old")
    bad_topic = chain.standin.device_config("report-topic")
    bad_topic["test"]["topic"] = "telemetry/report-topic"
    out = {}
    for name, cfg in (("ok", healthy), ("sig", bad_sig), ("topic", bad_topic)):
        out[name] = (chain.run(cfg), chain.config_file(cfg, f"{name}.toml"))
    return out


class _Page(HTMLParser):
    """Each run section's verdict, drawn step bars and event marks, and diagnosis root causes."""

    def __init__(self):
        super().__init__()
        self.runs: dict[str, dict] = {}
        self.current = None
        self.overall = None
        self._grab = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section" and "data-run" in a:
            self.current = self.runs.setdefault(a["data-run"], {"verdict": a.get("data-verdict"), "rects": [],
                                                                "circles": [], "drawn": None, "codes": []})
        elif self.current is not None:
            if tag == "rect":
                self.current["rects"].append(a.get("class"))
            elif tag == "circle":
                self.current["circles"].append(a.get("class"))
            if "data-drawn" in a:
                self.current["drawn"] = int(a["data-drawn"])
        if a.get("id") == "overall":
            self._grab = "overall"
        elif tag == "code" and self.current is not None:
            self._grab = "code"

    def handle_data(self, data):
        if self._grab == "overall":
            self.overall = data.strip()
        elif self._grab == "code":
            self.current["codes"].append(data.strip())
        self._grab = None


def _read(page):
    dom = dump_dom(page)
    parsed = _Page()
    parsed.feed(dom)
    return dom, parsed


def test_batch_page_correlated_with_the_stand_in(chain, runs, tmp_path, capsys):
    ok, sig, topic = (runs[k][0] for k in ("ok", "sig", "topic"))
    page = tmp_path / "batch.html"
    code = cli.main(["report", ok["run_id"], sig["run_id"], topic["run_id"], "--store", str(chain.store_path),
                     "--cloud", chain.standin.cloud_spec, "--authorizer", "DeviceAuth", "--skew", "3",
                     "--html", str(page)])
    assert code == 0
    assert "wrote" in capsys.readouterr().err
    dom, parsed = _read(page)
    assert parsed.overall == "fail"
    assert list(parsed.runs) == [ok["run_id"], sig["run_id"], topic["run_id"]]
    good, refused, dropped = (parsed.runs[r["run_id"]] for r in (ok, sig, topic))
    # The healthy run: every step drawn (the skipped library step too) and its cloud records as marks.
    assert good["verdict"] == "pass"
    assert len(good["rects"]) == len(ok["steps"]) and good["rects"].count("step pass") >= 9
    assert good["circles"] and "event Failure" not in good["circles"]
    # Its own records are drawn on the axis; the replay the correlation's cloud-check made right after
    # the run is "nearby, not this run" and drawn apart (counted by data-nearby, not data-drawn).
    own = [c for c in good["circles"] if not c.startswith("nearby")]
    assert good["drawn"] == len(good["rects"]) + len(own), " | ".join(good["circles"])
    # The refused signature: a failing connect step, the IoT log's Connect Failure, decided by it.
    assert refused["verdict"] == "fail" and "step fail" in refused["rects"]
    assert "event Failure" in refused["circles"]
    # <code> elements in order: run id, client id, then the diagnosis's root causes, lead first.
    assert refused["codes"][:3] == [sig["run_id"], "report-sig", "signature-invalid"]
    assert "Signature verification failed" in dom
    # The topic outside the policy: the subscribe is refused and logged, the diagnosis names the policy.
    assert dropped["verdict"] == "fail" and "event Failure" in dropped["circles"]
    assert dropped["codes"][2] == "policy-denies-subscribe"
    # Secrets never reach the page: the token and the signatures only as length + fingerprint.
    assert EXAMPLE_TOKEN not in dom and example_signature()[:24] not in dom


def test_cloud_checks_from_the_device_config_decide_the_diagnosis(chain, runs, tmp_path):
    report, config = runs["sig"]
    page = tmp_path / "sig.html"
    assert cli.main(["report", report["run_id"], "--store", str(chain.store_path), "--cloud",
                     chain.standin.cloud_spec, "--config", str(config), "--skew", "3", "--html", str(page)]) == 0
    dom, parsed = _read(page)
    section = parsed.runs[report["run_id"]]
    assert section["codes"][2] == "signature-invalid"
    # the cloud checks of the device's settings are part of the evidence now
    assert "signature verifies with the authorizer" in dom and "TestInvokeAuthorizer" in dom


def test_one_page_per_run_and_unknown_ids_named(chain, runs, tmp_path, capsys):
    ok, sig = runs["ok"][0], runs["sig"][0]
    pattern = str(tmp_path / "run-{run_id}.html")
    code = cli.main(["report", ok["run_id"], "no-such-run", sig["run_id"][:-2], "--store", str(chain.store_path),
                     "--html", pattern])
    assert code == 0
    err = capsys.readouterr().err
    assert "no run 'no-such-run'" in err
    pages = sorted(tmp_path.glob("run-*.html"))
    assert [p.name for p in pages] == sorted(f"run-{r['run_id']}.html" for r in (ok, sig))
    # Without --cloud the stored report is shown as is: no cloud events, the device's own diagnosis.
    _, parsed = _read(tmp_path / f"run-{sig['run_id']}.html")
    section = parsed.runs[sig["run_id"]]
    assert section["verdict"] == "fail" and section["circles"] == []


def test_report_usage_errors(chain, tmp_path, capsys):
    assert cli.main(["report", "latest", "--store", str(tmp_path / "none.sqlite"), "--html", "x.html"]) == 2
    assert "no run store" in capsys.readouterr().err
    assert cli.main(["report", "nothing-here", "--store", str(chain.store_path), "--html",
                     str(tmp_path / "x.html")]) == 2
    assert "no runs to report" in capsys.readouterr().err
    assert cli.main(["report", "latest", "--store", str(chain.store_path), "--config", "device.toml",
                     "--html", str(tmp_path / "x.html")]) == 2
    assert "--config needs --cloud" in capsys.readouterr().err


def test_report_to_stdout_carries_the_data_a_script_reads(chain, runs, capsys):
    report = runs["ok"][0]
    assert cli.main(["report", report["run_id"], "--store", str(chain.store_path), "--html", "-"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("<!doctype html>") and f"data-run='{report['run_id']}'" in out
    timeline = out.split("data-timeline='", 1)[1].split("'", 1)[0]
    import html

    data = json.loads(html.unescape(timeline))
    assert len(data["steps"]) == len(report["steps"])


def test_the_second_run_of_a_board_shows_none_of_the_firsts_cloud_events(chain, tmp_path, capsys):
    """The new user's case: a pass, then the same board failing at TCP. Even with a window as wide
    as the old 120 s, the failed run's page has no cloud event of its own, its neighbour's records
    are drawn apart as nearby, and its diagnosis rules nothing out from a run that is not this one."""
    import socket

    healthy = chain.standin.device_config("report-again")
    first = chain.run(healthy)
    broken = chain.standin.device_config("report-again")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        broken["endpoint"]["connect_address"] = f"127.0.0.1:{s.getsockname()[1]}"
    second = chain.run(broken)
    page = tmp_path / "second.html"
    assert cli.main(["report", "latest", "--store", str(chain.store_path), "--cloud", chain.standin.cloud_spec,
                     "--authorizer", "DeviceAuth", "--skew", "120", "--html", str(page)]) == 0
    capsys.readouterr()
    dom, parsed = _read(page)
    assert list(parsed.runs) == [second["run_id"]] and first["run_id"] != second["run_id"]
    section = parsed.runs[second["run_id"]]
    assert section["codes"][2] == "tcp-unreachable"
    assert not [c for c in section["circles"] if c.startswith("event")]
    assert [c for c in section["circles"] if c.startswith("nearby")]
    assert "Nearby, not this run" in dom and "ruled out" not in dom
