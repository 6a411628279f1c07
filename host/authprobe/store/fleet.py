"""The fleet view's figures (`authprobe runs stats`, `authprobe report --fleet`): over the runs of a
window, the pass rate and counts per station, board, root cause, firmware or day, the root-cause
histogram, the slowest steps, and a timeline (pass rate per station, root causes per bucket) for
the page's plots. Read from the store's fleet columns; the arithmetic is plain Python, so both
backends give the same figures."""

from __future__ import annotations

import re
import statistics
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from authprobe.board.run_log import iso_utc
from authprobe.errors import ConfigError
from authprobe.store.base import RunStoreBackend

SCHEMA = "authprobe.fleet/1"
GROUPS = ("station", "board", "root_cause", "firmware", "day")
VERDICTS = ("pass", "fail", "incomplete")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# Timeline buckets: the smallest that keeps a window to at most MAX_BUCKETS points.
_BUCKETS = (3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400)
MAX_BUCKETS = 60


def parse_since(text: str, now: float | None = None) -> float:
    """Epoch seconds from an age (`24h`, `90m`, `7d`, `2w`) or a UTC date/time (`2026-11-26`,
    `2026-11-26T08:00`)."""
    now = time.time() if now is None else now
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if m:
        return now - float(m.group(1)) * _UNITS[m.group(2)]
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--since {text!r}: give an age such as 24h, 90m or 7d, or a UTC date such as "
                          f"2026-11-26 or 2026-11-26T08:00") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def verdict_of(run: dict[str, Any]) -> str:
    """pass | fail | incomplete (a run still collecting, or whose station stopped, is incomplete)."""
    return run["verdict"] if run.get("verdict") in ("pass", "fail") else "incomplete"


def cause_of(run: dict[str, Any]) -> str | None:
    """The leading root cause of a run that did not pass; `undiagnosed` when it has none."""
    if verdict_of(run) == "pass":
        return None
    return run.get("root_cause") or "undiagnosed"


def group_key(run: dict[str, Any], by: str) -> str:
    if by == "station":
        return run.get("station") or "(unknown)"
    if by == "board":
        return run.get("uid") or "(no uid)"
    if by == "root_cause":
        return cause_of(run) or "none (passed)"
    if by == "firmware":
        return run.get("firmware") or "(unknown)"
    if by == "day":
        return time.strftime("%Y-%m-%d", time.gmtime(run["started"]))
    raise ValueError(f"group by {by!r}: one of {', '.join(GROUPS)}")


def _counts(runs: list[dict[str, Any]]) -> dict[str, Any]:
    c = Counter(verdict_of(r) for r in runs)
    out: dict[str, Any] = {"runs": len(runs), **{v: c[v] for v in VERDICTS}}
    out["pass_rate"] = round(c["pass"] / len(runs), 4) if runs else None
    return out


def _percentile(sorted_values: list[int], q: float) -> int:
    """Nearest-rank percentile of sorted values."""
    rank = max(1, min(len(sorted_values), round(q * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def step_timings(steps: list[tuple[str, str | None, str | None, int | None]],
                 run_ids: set[str] | None = None) -> list[dict[str, Any]]:
    """Per step name: how many runs reached it, median / p95 / max elapsed ms and failures; slowest
    (by median) first. Skipped steps did no work and are left out."""
    times: dict[str, list[int]] = defaultdict(list)
    fails: Counter[str] = Counter()
    for run_id, step, status, ms in steps:
        if step is None or status == "skip" or (run_ids is not None and run_id not in run_ids):
            continue
        if status == "fail":
            fails[step] += 1
        if ms is not None:
            times[step].append(ms)
    out = []
    for step, values in times.items():
        values.sort()
        out.append({"step": step, "runs": len(values), "median_ms": int(statistics.median(values)),
                    "p95_ms": _percentile(values, 0.95), "max_ms": values[-1], "fail": fails[step]})
    out.sort(key=lambda s: (-s["median_ms"], -s["max_ms"], s["step"]))
    return out


def _timeline(runs: list[dict[str, Any]], start: float | None, end: float) -> dict[str, Any]:
    if not runs:
        return {"bucket_s": _BUCKETS[0], "buckets": []}
    first = start if start is not None else runs[0]["started"]
    span = max(end, runs[-1]["started"]) - first
    size = next((b for b in _BUCKETS if span / b <= MAX_BUCKETS), _BUCKETS[-1])
    lo = int(first // size) * size
    hi = int(max(end, runs[-1]["started"]) // size) * size
    slots: dict[int, list[dict[str, Any]]] = {t: [] for t in range(lo, hi + size, size)}
    for r in runs:
        slot = int(r["started"] // size) * size
        slots.setdefault(slot, []).append(r)
    buckets = []
    for t in sorted(slots):
        members = slots[t]
        stations: dict[str, dict[str, int]] = {}
        for r in members:
            s = stations.setdefault(group_key(r, "station"), {"runs": 0, "pass": 0})
            s["runs"] += 1
            s["pass"] += verdict_of(r) == "pass"
        causes = Counter(c for r in members if (c := cause_of(r)))
        buckets.append({"start": iso_utc(t), "start_epoch": t, "runs": len(members), "stations": stations,
                        "root_causes": dict(causes.most_common())})
    return {"bucket_s": size, "buckets": buckets}


def summarize(runs: list[dict[str, Any]], steps: list[tuple[str, str | None, str | None, int | None]], *,
              by: str = "station", since: float | None = None, now: float | None = None) -> dict[str, Any]:
    """The fleet figures (schema authprobe.fleet/1) of these runs (store.fleet_runs rows, by start)."""
    if by not in GROUPS:
        raise ConfigError(f"--by {by!r}: one of {', '.join(GROUPS)}")
    now = time.time() if now is None else now
    runs = sorted(runs, key=lambda r: r["started"])
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in runs:
        grouped[group_key(r, by)].append(r)
    groups = []
    for key, members in grouped.items():
        causes = Counter(c for r in members if (c := cause_of(r)))
        slowest = step_timings(steps, {r["run_id"] for r in members})
        groups.append({"key": key, **_counts(members),
                       "root_cause": causes.most_common(1)[0][0] if causes else None,
                       "slowest_step": slowest[0]["step"] if slowest else None,
                       "first": iso_utc(members[0]["started"]), "last": iso_utc(members[-1]["started"])})
    if by == "day":
        groups.sort(key=lambda g: g["key"])
    else:
        groups.sort(key=lambda g: (-g["runs"], g["key"]))
    not_passed = [c for r in runs if (c := cause_of(r))]
    histogram = [{"root_cause": cause, "runs": n, "share": round(n / len(not_passed), 4)}
                 for cause, n in Counter(not_passed).most_common()]
    timings = step_timings(steps, {r["run_id"] for r in runs})
    return {
        "schema": SCHEMA,
        "since": iso_utc(since) if since is not None else None,
        "until": iso_utc(now),
        "by": by,
        "totals": _counts(runs),
        "groups": groups,
        "root_causes": histogram,
        "slowest_step": timings[0] if timings else None,
        "steps": timings,
        "timeline": _timeline(runs, since, now),
    }


def fleet_stats(store: RunStoreBackend, *, since: float | None = None, by: str = "station",
                now: float | None = None) -> dict[str, Any]:
    """summarize() over the runs a store holds from `since` on, naming the store."""
    stats = summarize(store.fleet_runs(since), store.fleet_steps(since), by=by, since=since, now=now)
    return {"schema": stats.pop("schema"), "store": store.where, **stats}
