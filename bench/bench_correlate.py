"""Correlation at fleet scale, in one process:

1. 10,000 device runs against 1,000,000 log events read from exported JSON-lines files (800k
   AWSIotLogsV2 records, 200k function log lines): wall time and peak memory (aim < 20 s, < 1 GiB).
2. The number of Logs Insights queries for 1,000 devices over one hour, counted by botocore's
   Stubber (every StartQuery validated against the real CloudWatch Logs model).
3. Precision on a generated day of a factory line: 50 boards in trays of 10 (client ids sharing
   prefixes: line3-1, line3-10...), 20 runs each, 5 % faults (each replayed by `report --config`
   and re-run soon after), cloud-check replays now and then, a neighbouring line's devices in the
   same log groups: the fraction of log events attributed to the right run (or to none: replays,
   other devices) and of runs diagnosed right. Goal: 100 %.

Usage: python bench/bench_correlate.py [--runs N] [--events N] [--seed N]"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from authprobe.aws.lambda_logs import REPORT_DURATION, SLOW_REPORT_MS  # noqa: E402
from authprobe.report.json_report import build_report  # noqa: E402

T0 = int(datetime(2026, 11, 26, 8, 0, tzinfo=UTC).timestamp() * 1000)


def _iot_ts(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def make_reports(n: int) -> list[dict]:
    """Runs spread over 10 hours; a third fail before CONNACK, the rest pass."""
    reports = []
    for i in range(n):
        start = T0 + i * 3600  # 10,000 runs over 10 h
        failing = i % 3 == 0
        steps = [{"seq": 1, "step": "config", "code": 100, "name": "config_ok", "status": "pass", "elapsed_ms": 1,
                  "details": {}, "root_causes": []}]
        if failing:
            steps.append({"seq": 2, "step": "connect", "code": 906, "name": "closed_before_connack", "status": "fail",
                          "elapsed_ms": 800, "details": {}, "root_causes": [
                              "signature-invalid", "signature-missing", "signature-not-urlencoded",
                              "token-key-name-mismatch", "authorizer-unknown", "authorizer-inactive",
                              "lambda-permission-missing", "authorizer-function-missing", "lambda-error",
                              "lambda-response-invalid", "authorizer-denied", "policy-denies-connect"]})
        reports.append({"schema": "authprobe.report/1", "run_id": f"run-{i:05d}", "verdict": "fail" if failing else "pass",
                        "device": {"client_id": f"dev-{i % 5000:04d}", "utc": _iot_ts(start).replace(" ", "T") + "Z"},
                        "steps": steps, "end": {"ms": 3000}, "counts": {}, "diagnosis": []})
    return reports


def write_events(directory: Path, total: int, runs: int) -> tuple[Path, Path]:
    """Stream the events to two files: 80% IoT records, 20% function lines in START / event /
    (timeout|error|ok) / END / REPORT groups. Half of each land inside some run's window for its
    client id; the other half belong to devices no run knows (the noise a real log group holds)."""
    iot_path, fn_path = directory / "AWSIotLogsV2.jsonl", directory / "fn.jsonl"

    def where(i: int, n: int) -> tuple[str, int]:
        if i % 2 == 0:
            j = (i // 2) % runs
            return f"dev-{j % 5000:04d}", T0 + j * 3600 + (i % 2900)
        return f"other-{i % 7919:04d}", T0 + (i * 36_000_000 // n)

    n_iot = total * 8 // 10
    with open(iot_path, "w") as f:
        buf = []
        for i in range(n_iot):
            cid, ms = where(i, n_iot)
            status = "Failure" if i % 4 == 0 else "Success"
            rec = {"timestamp": _iot_ts(ms), "logLevel": "ERROR" if status == "Failure" else "INFO",
                   "traceId": "6c1f0e0e-0000-4000-8000-000000000000", "accountId": "123456789012",
                   "status": status, "eventType": "Connect" if i % 3 else "Publish-In", "protocol": "MQTT",
                   "clientId": cid, "principalId": "p", "sourceIp": "203.0.113.7", "sourcePort": 49430}
            if status == "Failure":
                rec["reason"] = "AUTHORIZATION_FAILURE"
                rec["details"] = "Signature verification failed"
            buf.append(json.dumps(rec, separators=(",", ":")))
            if len(buf) >= 10000:
                f.write("\n".join(buf) + "\n")
                buf.clear()
        if buf:
            f.write("\n".join(buf) + "\n")
    n_fn = total - n_iot
    with open(fn_path, "w") as f:
        buf = []
        i = 0
        while i < n_fn:
            cid, ms = where(i // 5, n_fn // 5)
            rid = str(uuid.UUID(int=i))
            kind = (i // 10) % 10
            tail = (f"{_iot_ts(ms)} {rid} Task timed out after 5.00 seconds" if kind == 0 else
                    "[ERROR] KeyError: 'token'" if kind == 1 else "returning policy")
            for msg in (f"START RequestId: {rid} Version: $LATEST", f'EVENT {{"clientId": "{cid}"}}', tail,
                        f"END RequestId: {rid}", f"REPORT RequestId: {rid}\tDuration: "
                        f"{5000.0 if kind == 0 else 12.5:.2f} ms"):
                buf.append(json.dumps({"timestamp": ms, "message": msg}, separators=(",", ":")))
                i += 1
            if len(buf) >= 10000:
                f.write("\n".join(buf) + "\n")
                buf.clear()
        if buf:
            f.write("\n".join(buf) + "\n")
    return iot_path, fn_path


def bench_files(runs: int, events: int) -> dict:
    from authprobe.cloud.correlate import Joiner, read_log_file
    from authprobe.report.diagnosis import CloudEvidence, diagnose

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        iot_path, fn_path = write_events(Path(tmp), events, runs)
        generated = time.perf_counter() - t
        size = (iot_path.stat().st_size + fn_path.stat().st_size) / 2**20
        reports = make_reports(runs)
        t = time.perf_counter()
        joiner = Joiner(reports, keep_passing=False)  # as `authprobe correlate` without --events/--save
        wanted = joiner.client_ids()
        joiner.add_all(read_log_file(iot_path, client_ids=wanted, source="iot"))
        joiner.add_all(read_log_file(fn_path, client_ids=wanted, source="lambda"))
        joined = joiner.finish()
        t_join = time.perf_counter() - t
        decided = 0
        matched = 0
        for c in joined:
            matched += sum(c.counts().values())
            d = diagnose(c.report, CloudEvidence(events=[e.as_dict() for e in c.events]))
            decided += bool(d and d[0].get("decided"))
        elapsed = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    return {"runs": runs, "events": events, "files_mib": round(size, 1), "generate_s": round(generated, 2),
            "join_s": round(t_join, 2), "correlate_and_diagnose_s": round(elapsed, 2),
            "events_matched": matched, "runs_decided": decided, "peak_rss_mib": round(peak)}


def bench_queries(devices: int = 1000) -> dict:
    import boto3
    from botocore.stub import ANY, Stubber

    from authprobe.cloud.aws import AwsCloud
    from authprobe.cloud.logs_insights import Window, build_specs

    windows = [Window(f"factory-line-3-device-{i:05d}", T0 + i * 3600, T0 + i * 3600 + 30_000)
               for i in range(devices)]  # 1,000 devices over one hour
    specs = build_specs(windows, "/aws/lambda/device-auth", "AWSIotLogsV2")
    logs = boto3.session.Session(aws_access_key_id="a", aws_secret_access_key="b",
                                 region_name="eu-west-1").client("logs")
    cloud = AwsCloud(clients={"logs": logs}, region="eu-west-1", sleep=lambda s: None, max_concurrent=10)
    with Stubber(logs) as st:
        pending = list(range(len(specs)))
        while pending:  # the runner starts up to 10, then polls them in order
            wave, pending = pending[:10], pending[10:]
            for _ in wave:
                st.add_response("start_query", {"queryId": str(uuid.uuid4())},
                                {"logGroupName": ANY, "startTime": ANY, "endTime": ANY, "queryString": ANY,
                                 "limit": 10000})
            for _ in wave:
                st.add_response("get_query_results", {"status": "Complete", "results": []}, {"queryId": ANY})
        list(cloud.log_events(windows, "device-auth"))
        st.assert_no_pending_responses()
    p = cloud.insights_progress
    return {"devices": devices, "window": "1 h", "start_query_calls": p.started,
            "iot_queries": sum(1 for s in specs if s.log_group == "AWSIotLogsV2"),
            "function_queries": sum(1 for s in specs if s.log_group != "AWSIotLogsV2"),
            "longest_query_chars": max(len(s.query) for s in specs)}


# --- a factory day: precision of the join ------------------------------------------------------------

DAY_START = int(datetime(2026, 11, 26, 6, 0, tzinfo=UTC).timestamp() * 1000)
FAULTS = ("signature-invalid", "lambda-error", "lambda-timeout", "authorizer-denied", "policy-denies-subscribe",
          "tcp-unreachable", "sni-mismatch")
# (step code, failing code, device ms) per outcome; steps before TLS vary per run (Wi-Fi, NTP).
_FAILING = {"signature-invalid": ("connect", 906), "lambda-error": ("connect", 906),
            "lambda-timeout": ("connect", 907), "authorizer-denied": ("connect", 906),
            "policy-denies-subscribe": ("pubsub", 1001), "tcp-unreachable": ("tcp", 601),
            "sni-mismatch": ("tls", 705)}
_ORDER = ("config", "wifi", "clock", "dns", "tcp", "tls", "transport", "connect", "pubsub")
_OK = {"config": 100, "wifi": 300, "clock": 400, "dns": 500, "tcp": 600, "tls": 700, "transport": 800,
       "connect": 900, "pubsub": 1000}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Day:
    """The generated day: reports, the log lines the cloud wrote (each with the run that caused it,
    or None for a replay or another line's device), the replays authprobe recorded."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.reports: list[dict] = []
        self.expected: list[str | None] = []
        self.iot: list[tuple[dict, int | None]] = []
        self.fn: list[tuple[dict, int | None]] = []
        self.replays: list[dict] = []
        self.streams = 0
        self.busy_until: dict[str, int] = {}   # client id -> when its last run (or replay) ended

    def _stream(self) -> str:
        self.streams += 1
        return f"2026/11/26/[$LATEST]{self.streams % 24:04x}"   # an environment serves one invocation at a time

    def _invocation(self, owner: int | None, cid: str, at: int, tail: list[str] | None = None,
                    ms: float = 14.0) -> int:
        rid = str(uuid.UUID(int=self.rng.getrandbits(128)))
        stream = self._stream()
        lines = [(at, f"START RequestId: {rid} Version: $LATEST"),
                 (at + 2, f"authorizing clientId='{cid}' signatureVerified=True token_len=22")]
        end = at + int(ms)
        for i, text in enumerate(tail or []):
            lines.append((end - len(tail or []) + i, text.replace("{rid}", rid)))
        lines += [(end + 1, f"END RequestId: {rid}"),
                  (end + 1, f"REPORT RequestId: {rid}\tDuration: {ms:.2f} ms\tBilled Duration: {int(ms) + 1} ms")]
        for ts, text in lines:
            self.fn.append(({"timestamp": ts, "message": text, "logStream": stream}, owner))
        return end + 1

    def _record(self, owner: int | None, cid: str | None, at: int, event: str, status: str = "Success",
                **extra: str) -> None:
        rec = {"timestamp": _iot_ts(at), "logLevel": "ERROR" if status == "Failure" else "INFO",
               "traceId": str(uuid.UUID(int=self.rng.getrandbits(128))), "accountId": "123456789012",
               "status": status, "eventType": event, "protocol": "MQTT", **extra}
        if cid is not None:
            rec["clientId"] = cid
            rec["principalId"] = cid.replace("-", "")
        self.iot.append((rec, owner))

    def run(self, cid: str, begin: int, outcome: str) -> int:
        """One run of board `cid` whose begin record the host received at `begin`; returns its end."""
        index = len(self.reports)
        rng = self.rng
        ms = {"config": 4, "wifi": rng.randint(700, 2600), "clock": rng.randint(30, 400), "dns": rng.randint(10, 80),
              "tcp": rng.randint(20, 90), "tls": rng.randint(800, 1600), "transport": rng.randint(5, 40),
              "connect": rng.randint(120, 400), "pubsub": rng.randint(300, 700)}
        fail_step, fail_code = _FAILING.get(outcome, (None, None))
        steps = []
        for step in _ORDER:
            code = fail_code if step == fail_step else _OK[step]
            steps.append({"k": "step", "seq": len(steps) + 1, "code": code, "ms": ms[step],
                          "status": "fail" if step == fail_step else "pass"})
            if step == fail_step:
                break
        session = begin + sum(ms[s] for s in ("config", "wifi", "clock", "dns", "tcp"))
        connect = session + ms["tls"] + ms["transport"]
        if outcome == "lambda-timeout":
            steps[-1]["ms"] = 5004
        total = sum(st["ms"] for st in steps)
        clock = rng.random()
        utc = (None if clock < 0.05 else _iot_ts(begin - 3 * 3600_000 if clock < 0.1 else begin)[:19].replace(" ", "T")
               + "Z")   # 5 % of boards have no clock yet, 5 % are three hours off
        records = [{"k": "begin", "run": f"d-{index}", "client_id": cid, "utc": utc, "transport": "mqtt"},
                   *steps, {"k": "end", "run": f"d-{index}", "verdict": "fail" if fail_step else "pass", "ms": total}]
        report = build_report(records, run_id=f"run-{index:04d}")
        started = begin - 350
        report["collection"] = {"started": _iso(started), "timings": {"begin_ms": 350, "end_ms": 350 + total + 3}}
        self.reports.append(report)
        self.expected.append(None if outcome == "pass" else outcome)
        fail = ("Failure", "AUTHORIZATION_FAILURE")
        if outcome == "tcp-unreachable":
            pass
        elif outcome == "sni-mismatch":
            self._record(index, None, session + 40, "Connect", fail[0], reason=fail[1],
                         details="TLS SNI unknown: a9z8y7x6w5v4u3-ats.iot.us-east-1.amazonaws.com")
        elif outcome == "signature-invalid":
            self._record(index, cid, connect + 25, "Connect", *fail[:1], reason=fail[1],
                         details="Signature verification failed")
        elif outcome == "lambda-error":
            self._invocation(index, cid, connect + 5, ["[ERROR] KeyError: 'device group'\nTraceback (most recent "
                                                       "call last):\n  File \"/var/task/auth.py\", line 9"])
            self._record(index, cid, connect + 30, "Connect", fail[0], reason=fail[1],
                         details="Authorizer function failed: KeyError")
        elif outcome == "lambda-timeout":
            end = self._invocation(index, cid, connect + 5, ["{rid} Task timed out after 5.00 seconds"], ms=5000.0)
            self._record(index, cid, end + 3, "Connect", fail[0], reason=fail[1],
                         details="Authorizer function timed out")
        elif outcome == "authorizer-denied":
            self._invocation(index, cid, connect + 5)
            self._record(index, cid, connect + 30, "Connect", fail[0], reason=fail[1],
                         details="Authorizer returned isAuthenticated false")
        else:
            self._invocation(index, cid, connect + 5)
            self._record(index, cid, connect + 30, "Connect")
            topic = f"selftest/{cid}"
            if outcome == "policy-denies-subscribe":
                self._record(index, cid, connect + ms["connect"] + 40, "Subscribe", fail[0], reason=fail[1],
                             topicName=topic)
                self._record(index, cid, connect + ms["connect"] + 42, "Disconnect", fail[0], reason=fail[1])
            else:
                self._record(index, cid, connect + ms["connect"] + 40, "Subscribe", topicName=topic)
                self._record(index, cid, connect + ms["connect"] + 90, "Publish-In", topicName=topic)
                self._record(index, cid, connect + ms["connect"] + 120, "Publish-Out", topicName=topic)
                self._record(index, cid, begin + total - 2, "Disconnect", disconnectReason="CLIENT_INITIATED_DISCONNECT")
        return begin + total

    def replay(self, cid: str, at: int, fault: str | None) -> None:
        """cloud-check's TestInvokeAuthorizer with the board's credentials (recorded by authprobe;
        the function's log says nothing that tells it from a device's invocation)."""
        if fault == "signature-invalid":   # refused before the function runs: nothing in its log
            self.replays.append({"at_ms": at, "until_ms": at + 60, "authorizer": "DeviceAuth", "client_id": cid,
                                 "invoked": False})
            return
        tail = ["[ERROR] KeyError: 'device group'"] if fault == "lambda-error" else None
        slow = fault == "lambda-timeout"
        end = self._invocation(None, cid, at + 90, ["{rid} Task timed out after 5.00 seconds"] if slow else tail,
                               ms=5000.0 if slow else 14.0)
        self.replays.append({"at_ms": at, "until_ms": end + 30, "authorizer": "DeviceAuth", "client_id": cid,
                             "invoked": True})


def factory_day(seed: int = 7, boards: int = 50, runs_per_board: int = 20, tray: int = 10) -> _Day:
    """Trays of `tray` boards run together every ~20 min; a faulty run is replayed (`report
    --config`) and re-run within a minute; cloud-check replays happen now and then all day; a
    neighbouring line's devices fill the same log groups."""
    day = _Day(seed)
    rng = day.rng
    ids = [f"line3-{n}" for n in range(1, boards + 1)]          # line3-1 is a prefix of line3-10..19
    runs_left = dict.fromkeys(ids, runs_per_board)
    t = DAY_START
    while any(runs_left.values()):
        for k in range(0, boards, tray):
            for cid in ids[k:k + tray]:
                if not runs_left[cid]:
                    continue
                begin = max(t + rng.randint(0, 4000), day.busy_until.get(cid, 0) + 1500)
                fault = rng.choice(FAULTS) if rng.random() < 0.05 else None
                end = day.run(cid, begin, fault or "pass")
                runs_left[cid] -= 1
                if fault and runs_left[cid]:
                    replay_at = end + rng.randint(1_000, 20_000)
                    day.replay(cid, replay_at, fault)
                    # the re-run often overlaps the replay: the operator starts it while the page builds
                    end = day.run(cid, end + rng.randint(3_000, 15_000), "pass")
                    runs_left[cid] -= 1
                day.busy_until[cid] = end
            t += 90_000   # the next tray
        t += 20 * 60_000
        for _ in range(rng.randint(0, 4)):   # cloud-check, now and then, on any board
            day.replay(rng.choice(ids), t - rng.randint(0, 20 * 60_000), None)
    for i in range(len(day.iot) // 4):        # another line's devices in the same log groups
        other = f"line4-{rng.randint(1, 60)}"
        at = DAY_START + rng.randint(0, t - DAY_START)
        day._record(None, other, at, rng.choice(("Connect", "Subscribe", "Publish-In", "Disconnect")))
        if i % 3 == 0:
            day._invocation(None, other, at - 30)
    return day


def _relevant(message: str) -> bool:
    """Function lines the join can give a run: not the START/END bookkeeping, not a quick REPORT."""
    if message.startswith(("START RequestId", "END RequestId")):
        return False
    m = REPORT_DURATION.search(message)
    return not (message.startswith("REPORT") and (not m or float(m.group(1)) < SLOW_REPORT_MS))


def bench_factory_day(seed: int = 7) -> dict:
    from authprobe.cloud.correlate import read_log_file
    from authprobe.cloud.pipeline import diagnose_runs
    from authprobe.cloud.replays import Replay
    from authprobe.redaction import redact

    day = factory_day(seed)
    with tempfile.TemporaryDirectory() as tmp:
        iot_path, fn_path = Path(tmp) / "iot.jsonl", Path(tmp) / "fn.jsonl"
        iot_lines = sorted(day.iot, key=lambda x: x[0]["timestamp"])
        fn_lines = sorted(day.fn, key=lambda x: x[0]["timestamp"])
        iot_path.write_text("".join(json.dumps(r) + "\n" for r, _ in iot_lines))
        fn_path.write_text("".join(json.dumps(r) + "\n" for r, _ in fn_lines))
        truth: dict[tuple, int | None] = {}
        for rec, owner in iot_lines:
            truth[("iot", rec["traceId"])] = owner
        for rec, owner in fn_lines:
            if _relevant(rec["message"]):
                truth[("lambda", rec["timestamp"], rec["logStream"], redact(rec["message"])[:60])] = owner
        replays = [Replay.from_dict(r) for r in day.replays]
        t = time.perf_counter()

        def events(windows):
            wanted = {w.client_id for w in windows}
            yield from read_log_file(iot_path, client_ids=wanted, source="iot")
            yield from read_log_file(fn_path, client_ids=wanted, source="lambda")
        results = diagnose_runs(day.reports, events, replays=[r for r in replays if r], log_delay_s=0)
        elapsed = time.perf_counter() - t
    given: dict[tuple, int] = {}
    for i, run in enumerate(results):
        for e in run.evidence.events:
            k = (("iot", e["traceId"]) if e["source"] == "iot"
                 else ("lambda", e["ts_ms"], e.get("logStream"), e["message"][:60]))
            given[k] = i
    wrong_events = sum(1 for k, owner in truth.items() if given.get(k) != owner)
    wrong_events += sum(1 for k in given if k not in truth)
    wrong_runs = [i for i, run in enumerate(results)
                  if (run.diagnosis[0]["root_cause"] if run.diagnosis else None) != day.expected[i]]
    return {"boards": 50, "runs_per_board": 20, "runs": len(day.reports), "faults": sum(1 for e in day.expected if e),
            "replays": len(day.replays), "events": len(day.iot) + len(day.fn),
            "foreign": sum(1 for r, o in day.iot if o is None and r.get("clientId", "").startswith("line4")),
            "events_right_pct": round(100 * (1 - wrong_events / max(1, len(truth))), 3), "events_wrong": wrong_events,
            "runs_right_pct": round(100 * (1 - len(wrong_runs) / len(results)), 3), "runs_wrong": len(wrong_runs),
            "wrong_runs": [day.reports[i]["run_id"] for i in wrong_runs][:10], "correlate_s": round(elapsed, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7, help="the factory day's random seed")
    args = ap.parse_args()
    day = bench_factory_day(args.seed)
    print(f"factory day: {day['boards']} boards x {day['runs_per_board']} runs ({day['faults']} faulty, "
          f"{day['replays']} replays, {day['events']} log events, {day['foreign']} IoT records of another line): "
          f"{day['events_right_pct']} % of events attributed to the right run or to none "
          f"({day['events_wrong']} wrong), {day['runs_right_pct']} % of runs diagnosed right "
          f"({day['runs_wrong']} wrong) [goal 100 %]; correlated in {day['correlate_s']} s")
    files = bench_files(args.runs, args.events)
    print(f"correlate from files: {files['runs']} runs x {files['events']} events ({files['files_mib']} MiB): "
          f"{files['correlate_and_diagnose_s']} s (join {files['join_s']} s), peak RSS {files['peak_rss_mib']} MiB "
          f"[aim < 20 s, < 1024 MiB]; {files['events_matched']} events matched, {files['runs_decided']} runs decided "
          f"(generating the files took {files['generate_s']} s, not counted)")
    q = bench_queries()
    print(f"Logs Insights for {q['devices']} devices over {q['window']}: {q['start_query_calls']} StartQuery calls "
          f"({q['iot_queries']} AWSIotLogsV2 + {q['function_queries']} function log group), "
          f"longest query {q['longest_query_chars']} chars (Stubber-counted)")
    print(json.dumps({"files": files, "insights": q, "factory_day": day}))
    if os.environ.get("BENCH_STRICT") and (files["correlate_and_diagnose_s"] > 20 or files["peak_rss_mib"] > 1024
                                           or day["events_wrong"] or day["runs_wrong"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
