"""Correlation at fleet scale, in one process:

1. 10,000 device runs against 1,000,000 log events read from exported JSON-lines files (800k
   AWSIotLogsV2 records, 200k function log lines): wall time and peak memory (aim < 20 s, < 1 GiB).
2. The number of Logs Insights queries for 1,000 devices over one hour, counted by botocore's
   Stubber (every StartQuery validated against the real CloudWatch Logs model).

Usage: python bench/bench_correlate.py [--runs N] [--events N]"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--events", type=int, default=1_000_000)
    args = ap.parse_args()
    files = bench_files(args.runs, args.events)
    print(f"correlate from files: {files['runs']} runs x {files['events']} events ({files['files_mib']} MiB): "
          f"{files['correlate_and_diagnose_s']} s (join {files['join_s']} s), peak RSS {files['peak_rss_mib']} MiB "
          f"[aim < 20 s, < 1024 MiB]; {files['events_matched']} events matched, {files['runs_decided']} runs decided "
          f"(generating the files took {files['generate_s']} s, not counted)")
    q = bench_queries()
    print(f"Logs Insights for {q['devices']} devices over {q['window']}: {q['start_query_calls']} StartQuery calls "
          f"({q['iot_queries']} AWSIotLogsV2 + {q['function_queries']} function log group), "
          f"longest query {q['longest_query_chars']} chars (Stubber-counted)")
    print(json.dumps({"files": files, "insights": q}))
    if os.environ.get("BENCH_STRICT") and (files["correlate_and_diagnose_s"] > 20 or files["peak_rss_mib"] > 1024):
        sys.exit(1)


if __name__ == "__main__":
    main()
