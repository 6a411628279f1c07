"""Benchmark of IoT policy evaluation (authprobe.aws.iot_policy over authprobe.aws.wildcard), the check the
stand-in runs on every PUBLISH, SUBSCRIBE and delivery and cloud-check runs on the device's topic:

1. adversarial wildcard patterns (the shapes that made the old `*` -> `.*` regex backtrack for
   minutes, issue 12) on topics of 1, 4, 16 and 64 KiB: median time per match, and the 64 KiB / 16 KiB
   ratio, which is about 4 when the time is linear in the topic (patterns decided at the topic's
   ends take microseconds at any size);
2. a whole policy decision on a 64 KiB topic (an Allow plus adversarial Denies, all read);
3. a realistic self-test policy (variables, three statements) on a short topic: decisions per second;
4. a 64 KiB client id spliced into a resource by ${iot:ClientId};
5. with --regex-baseline, the old regex translation on growing inputs, for comparison, stopped
   once one match takes longer than --baseline-limit seconds.

Usage: python bench/bench_policy.py [--repeat 5] [--regex-baseline] [--baseline-limit 2]"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host"))

from authprobe.aws import wildcard  # noqa: E402
from authprobe.aws.iot_policy import Context, is_allowed  # noqa: E402

ARN = "arn:aws:iot:us-east-1:111111111111"
SIZES = (1024, 4096, 16384, 65536)
# (name, pattern, value of n characters) - each made a backtracking regex explode. The first ones
# are decided at the value's ends; those ending in `*` make the matcher scan the whole value.
ADVERSARIAL = [
    ("a*a*...*b vs a...a", "topic/a*a*a*a*a*a*a*a*a*a*b", lambda n: "topic/" + "a" * n),
    ("*/*/.../end vs ////", "*/*/*/*/*/*/*/*/end", lambda n: "/" * n),
    ("topic/*/*/*/*/x", "topic/*/*/*/*/x", lambda n: "topic/" + "/" * n),
    ("a*a*...*b* (scans)", "topic/a*a*a*a*a*a*a*a*a*a*b*", lambda n: "topic/" + "a" * n),
    ("*/*/.../end* (scans)", "*/*/*/*/*/*/*/*/end*", lambda n: "/" * n),
    ("*a?a?...b* (2 KB, scans)", "*" + "a?" * 1000 + "b*", lambda n: "a" * n),
    ("*?*?...z* (scans)", "*?*?*?*?*?*?*?*?*?*?z*", lambda n: "y" * n),
]


def median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def _matcher(pattern: str, value: str):
    return lambda: wildcard.match(pattern, value)


def adversarial(repeat: int) -> None:
    print("1. adversarial patterns, median ms per match")
    print(f"   {'pattern':<26}" + "".join(f"{n // 1024:>7} KiB" for n in SIZES) + "   64/16 ratio")
    for name, pattern, value in ADVERSARIAL:
        row = [median_ms(_matcher(pattern, value(n)), repeat) for n in SIZES]
        ratio = f"{row[3] / row[2]:>8.1f}" if row[2] >= 0.05 else "       -"  # too fast to compare
        print(f"   {name:<26}" + "".join(f"{ms:>11.3f}" for ms in row) + f"   {ratio}")


def whole_policy(repeat: int) -> None:
    policies = [{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{ARN}:topic/*"},
        {"Effect": "Deny", "Action": "iot:Publish",
         "Resource": [f"{ARN}:topic/{p}" for _, p, _ in ADVERSARIAL]}]}]
    ctx = Context(client_id="dev01")
    topic = "a" * 65536
    assert is_allowed(policies, "iot:Publish", topic, ctx).allowed
    ms = median_ms(lambda: is_allowed(policies, "iot:Publish", topic, ctx), repeat)
    print(f"2. whole decision, 1 Allow + {len(ADVERSARIAL)} adversarial Deny resources, 64 KiB topic: {ms:.1f} ms")


def realistic(seconds: float = 1.0) -> None:
    policies = [{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{ARN}:client/${{iot:ClientId}}"},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
         "Resource": [f"{ARN}:topic/selftest/${{iot:ClientId}}", f"{ARN}:topic/selftest/${{iot:ClientId}}/*"]},
        {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": f"{ARN}:topicfilter/selftest/${{iot:ClientId}}/*"}]}]
    ctx = Context(client_id="dev01")
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        assert is_allowed(policies, "iot:Publish", "selftest/dev01/x", ctx).allowed
        count += 1
    rate = count / (time.perf_counter() - started)
    print(f"3. self-test policy, topic selftest/dev01/x: {rate:,.0f} decisions/s ({1e6 / rate:.0f} us each)")


def long_client_id(repeat: int) -> None:
    """A client id's characters are literal tokens spliced into the pattern: a long one must cost a
    comparison, not a bigger automaton."""
    policies = [{"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": f"{ARN}:topic/${{iot:ClientId}}/*"}]}]
    cid = "a" * 65536
    ctx = Context(client_id=cid)
    ms = median_ms(lambda: is_allowed(policies, "iot:Publish", f"{cid}/x", ctx), repeat)
    print(f"4. 64 KiB client id spliced into topic/${{iot:ClientId}}/*, 64 KiB topic: {ms:.1f} ms")


def regex_baseline(limit_s: float) -> None:
    """The translation the evaluator used before: `*` -> `.*`, `?` -> `.`, with DOTALL."""
    print(f"5. old regex translation, one match (stopped past {limit_s:g} s)")
    for name, pattern, value in ADVERSARIAL[:3]:
        regex = re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.DOTALL)
        cells = []
        for n in (8, 16, 24, 32, 40, 48, 64, 128, 256, 512):
            started = time.perf_counter()
            regex.fullmatch(value(n))
            took = time.perf_counter() - started
            cells.append(f"{n}: {took * 1000:.1f} ms")
            if took > limit_s:
                break
        print(f"   {name:<26}" + ", ".join(cells))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--regex-baseline", action="store_true")
    parser.add_argument("--baseline-limit", type=float, default=2.0)
    args = parser.parse_args()
    adversarial(args.repeat)
    whole_policy(args.repeat)
    realistic()
    long_client_id(args.repeat)
    if args.regex_baseline:
        regex_baseline(args.baseline_limit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
