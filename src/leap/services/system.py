"""Install-wide state kept in `system_state`: the daemon's heartbeat and similar facts."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime

from leap.context import Context
from leap.db.base import utcnow
from leap.db.models import SystemState
from leap.views import iso

HEARTBEAT_KEY = "heartbeat"


def beat(ctx: Context, source: str) -> int:
    row = ctx.repos.system.get_key(HEARTBEAT_KEY)
    if row is None:
        row = ctx.repos.system.add(SystemState(key=HEARTBEAT_KEY, value={}))
    count = int(row.value.get("count", 0)) + 1
    row.value = {
        "count": count,
        "at": iso(utcnow()),
        "source": source,
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    return count


def heartbeat(ctx: Context) -> dict[str, object]:
    row = ctx.repos.system.get_key(HEARTBEAT_KEY)
    return dict(row.value) if row else {}


def daemon_alive(ctx: Context, heartbeat_seconds: float) -> bool:
    """Whether a leapd beat recently (three missed beats = stopped, as `leap doctor` says)."""
    beat = heartbeat(ctx)
    if not beat.get("at"):
        return False
    at = datetime.fromisoformat(str(beat["at"]).replace("Z", "+00:00"))
    return (datetime.now(UTC) - at).total_seconds() <= 3 * heartbeat_seconds
