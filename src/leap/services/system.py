"""Install-wide state kept in `system_state`: the queue's heartbeat, each leapd's presence,
and similar facts.

Two different beats: `beat` is a queue task (sent by the one scheduler, run by whichever
worker takes it), so it proves the queue is consumed; `present` is written by every leapd
process itself, under its own key, so `leap status --daemon` lists every live daemon, with
its host, queues and workers (README.md, "Several hosts")."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

from leap.context import Context
from leap.db.base import utcnow
from leap.db.models import SystemState
from leap.views import iso

HEARTBEAT_KEY = "heartbeat"
DAEMON_PREFIX = "daemon:"
# A daemon's row left behind (kill -9, a host gone) is removed by the others after this.
FORGET_AFTER = timedelta(days=1)


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
    """Whether a leapd beat recently (three missed beats = stopped, as `leap doctor` says):
    the queue's heartbeat, or any daemon's own row."""
    beat = heartbeat(ctx)
    if beat.get("at"):
        at = datetime.fromisoformat(str(beat["at"]).replace("Z", "+00:00"))
        if (datetime.now(UTC) - at).total_seconds() <= 3 * heartbeat_seconds:
            return True
    return any(d["alive"] for d in daemons(ctx, heartbeat_seconds))


def daemon_key(host: str, pid: int) -> str:
    return f"{DAEMON_PREFIX}{host}:{pid}"[:64]


def present(ctx: Context, facts: dict[str, Any]) -> None:
    """This leapd is alive: its row (`facts`: role, queues, workers, started_at) with the
    time. Rows of daemons silent for a day are removed on the way."""
    key = daemon_key(socket.gethostname(), os.getpid())
    now = utcnow()
    row = ctx.repos.system.get_key(key)
    value = {**facts, "host": socket.gethostname(), "pid": os.getpid(), "at": iso(now)}
    if row is None:
        ctx.repos.system.add(SystemState(key=key, value=value))
    else:
        row.value = value
    for other in ctx.repos.system.list_prefixed(DAEMON_PREFIX):
        if other.key != key and other.updated_at < now - FORGET_AFTER:
            ctx.session.delete(other)


def gone(ctx: Context) -> None:
    """This leapd stops (a clean shutdown): its row goes."""
    row = ctx.repos.system.get_key(daemon_key(socket.gethostname(), os.getpid()))
    if row is not None:
        ctx.session.delete(row)


def daemons(ctx: Context, heartbeat_seconds: float) -> list[dict[str, Any]]:
    """Every leapd that wrote its row, newest first, each marked alive (beat within three
    heartbeats) or silent (stopped, killed, or its host is down)."""
    now = datetime.now(UTC)
    out = []
    for row in ctx.repos.system.list_prefixed(DAEMON_PREFIX):
        at = row.updated_at
        age = (now - at).total_seconds()
        out.append(
            {
                **row.value,
                "alive": age <= 3 * heartbeat_seconds,
                "seconds_since_beat": round(age, 1),
            }
        )
    return sorted(out, key=lambda d: (not d["alive"], str(d.get("host")), int(d.get("pid", 0))))
