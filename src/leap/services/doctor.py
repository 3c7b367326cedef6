"""`leap doctor`: what this install has and whether each part works, one line per check."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from leap.config import Settings
from leap.context import Runtime, open_context
from leap.db.engine import redact_url
from leap.db.migrate import current_revision, head_revision
from leap.db.scope import Scope
from leap.errors import LeapError
from leap.pipeline.ffmpeg import ffmpeg_version, locate
from leap.secrets import load_keys
from leap.services import system


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def run_checks(settings: Settings, *, deep: bool) -> list[Check]:
    checks: list[Check] = [Check("config", True, str(settings.config_path or "defaults only"))]

    def attempt(name: str, fn: Callable[[], object]) -> None:
        try:
            detail = fn()
            checks.append(Check(name, True, str(detail)))
        except LeapError as exc:
            checks.append(Check(name, False, exc.message))
        except Exception as exc:  # doctor reports, it never crashes
            checks.append(Check(name, False, f"{type(exc).__name__}: {exc}"))

    runtime: Runtime | None = None
    try:
        runtime = Runtime.from_settings(settings)
        rt = runtime

        def database() -> str:
            cur, head = current_revision(rt.engine), head_revision(rt.engine)
            if cur != head:
                raise LeapError(f"schema {cur or 'empty'}, needs {head}: run 'leap db upgrade'")
            return f"{redact_url(settings.database_url)} at {cur}"

        attempt("database", database)
        attempt("secret key", lambda: load_keys(settings.data_path).origin)
        attempt("queue", lambda: f"{settings.queue.backend}: {_queue_kind(settings)}")

        def daemon() -> str:
            with open_context(rt, Scope.system_scope()) as ctx:
                beat = system.heartbeat(ctx)
            if not beat:
                raise LeapError("no heartbeat yet: is leapd running?")
            at = datetime.fromisoformat(str(beat["at"]).replace("Z", "+00:00"))
            age = (datetime.now(UTC) - at).total_seconds()
            limit = 3 * settings.worker.heartbeat_seconds
            if age > limit:
                raise LeapError(
                    f"last heartbeat {age:.0f} s ago (pid {beat.get('pid')}): leapd seems stopped"
                )
            return f"heartbeat {age:.0f} s ago from pid {beat.get('pid')}"

        attempt("leapd", daemon)
    except LeapError as exc:
        checks.append(Check("database", False, exc.message))
    finally:
        if runtime is not None:
            runtime.dispose()

    def ffmpeg() -> str:
        tools = locate()
        version = ffmpeg_version(tools) if deep else tools.ffmpeg
        return f"{version}; ffprobe: {tools.ffprobe or 'none (durations read from ffmpeg)'}"

    attempt("ffmpeg", ffmpeg)
    local = importlib.util.find_spec("faster_whisper") is not None
    checks.append(
        Check(
            "local transcription",
            local,
            "faster-whisper installed" if local else "not installed: pip install 'leap[local]'",
        )
    )
    return checks


def _queue_kind(settings: Settings) -> str:
    from leap.queue import make_huey  # only here: Huey's import pulls in Redis and psycopg

    return type(make_huey(settings)).__name__
