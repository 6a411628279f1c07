"""authprobe's own TestInvokeAuthorizer replays: cloud-check (also run by `report --config`, the
drill and the demo) invokes the authorizer function with the device's exact credentials, so the
function logs an invocation for the device's client id that the device never made. Each replay is
recorded (when, which authorizer, which client id, whether the function ran) so the join can label
its log lines `replay` instead of counting them as the device's invocations."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# Host clock (when authprobe called) against AWS's (when the function logged): both NTP-synced,
# plus the API call's own latency.
REPLAY_TOLERANCE_MS = 2000


@dataclass(frozen=True, slots=True)
class Replay:
    """One TestInvokeAuthorizer call: from `at_ms` (sent) to `until_ms` (answered), epoch ms.
    invoked: whether the function ran (False when the call was refused before the invocation,
    None when unknown)."""

    at_ms: int
    until_ms: int
    authorizer: str | None = None
    client_id: str | None = None
    invoked: bool | None = None

    def covers(self, ts_ms: int, tolerance_ms: int = REPLAY_TOLERANCE_MS) -> bool:
        return self.at_ms - tolerance_ms <= ts_ms <= self.until_ms + tolerance_ms

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Replay | None:
        """From as_dict() output or a run store row ({"at", "until"} in epoch seconds); None when
        it names no time."""
        at = data.get("at_ms")
        until = data.get("until_ms")
        if at is None and isinstance(data.get("at"), int | float):   # a run store row: epoch seconds
            at = int(data["at"] * 1000)
            until = int(data["until"] * 1000) if isinstance(data.get("until"), int | float) else at
        if not isinstance(at, int | float) or isinstance(at, bool):
            return None
        if not isinstance(until, int | float) or isinstance(until, bool) or until < at:
            until = at
        invoked = data.get("invoked")
        return cls(int(at), int(until), data.get("authorizer"), data.get("client_id"),
                   None if invoked is None else bool(invoked))


def replays_from_checks(checks: list[dict[str, Any]]) -> list[Replay]:
    """The replays a cloud-check --json output made (its replay.invoke check carries them)."""
    out = []
    for c in checks:
        data = (c.get("data") or {}).get("replay") if isinstance(c, dict) else None
        if isinstance(data, dict):
            replay = Replay.from_dict(data)
            if replay is not None:
                out.append(replay)
    return out
