"""`leap doctor`: what this install has and whether each part works, one line per check."""

from __future__ import annotations

import importlib.util
import subprocess
import tempfile
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from leap.config import Settings
from leap.context import Runtime, open_context
from leap.db.engine import redact_url
from leap.db.migrate import current_revision, head_revision
from leap.db.scope import Scope
from leap.errors import ConfigError, LeapError
from leap.media.ffmpeg import ENV_FFMPEG, ffmpeg_version, locate
from leap.providers.local_whisper import SAMPLE_RATE, LocalWhisperTranscriber, bundled_model_dir
from leap.secrets import load_keys
from leap.services import consistency, credential_health, system, users
from leap.specs.lanes import LANES


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    # Credential rows only (services.credential_health): the state and the days left until
    # a known lapse, so `--json` readers need not parse the detail.
    state: str | None = None
    days_left: float | None = None


def run_checks(settings: Settings, *, deep: bool, user: str | None = None) -> list[Check]:
    """Every check, in order; then one row per credential of `user` (--user, else the only
    user), when a user can be resolved."""
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
    schema_ok = False
    try:
        try:
            runtime = Runtime.from_settings(settings)
            rt = runtime

            def database() -> str:
                cur, head = current_revision(rt.engine), head_revision(rt.engine)
                if cur != head:
                    raise LeapError(f"schema {cur or 'empty'}, needs {head}: run 'leap db upgrade'")
                return f"{redact_url(settings.database_url)} at {cur}"

            attempt("database", database)
            schema_ok = checks[-1].ok
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
                        f"last heartbeat {age:.0f} s ago (pid {beat.get('pid')}): "
                        "leapd seems stopped"
                    )
                return f"heartbeat {age:.0f} s ago from pid {beat.get('pid')}"

            attempt("leapd", daemon)
        except LeapError as exc:
            checks.append(Check("database", False, exc.message))

        attempt("ffmpeg", check_ffmpeg)
        if importlib.util.find_spec("faster_whisper") is None:
            checks.append(
                Check("local transcription", False, "not installed: pip install 'leap[local]'")
            )
        else:
            attempt("local transcription", lambda: local_transcription(settings, deep=deep))
        if deep and runtime is not None and schema_ok:
            checks.extend(consistency_checks(runtime))
        # Credentials last: each costs a call to its platform, and a schema behind head
        # could not even list them.
        if runtime is not None and schema_ok:
            checks.extend(credential_checks(runtime, user))
    finally:
        if runtime is not None:
            runtime.dispose()
    return checks


def credential_checks(runtime: Runtime, user: str | None) -> list[Check]:
    """One row per credential of the acting user (credential_health.check_all). None when no
    user can be resolved (doctor runs before `leap init` too, and an install of several users
    needs --user), unless --user named one that cannot be."""
    try:
        scope = users.resolve_identity(runtime, user)
    except LeapError as exc:
        return [] if user is None else [Check("credentials", False, exc.message)]
    try:
        views = credential_health.check_all(runtime, scope)
    except LeapError as exc:
        return [Check("credentials", False, exc.message)]
    except Exception as exc:  # doctor reports, it never crashes
        return [Check("credentials", False, f"{type(exc).__name__}: {exc}")]
    return [
        Check(
            f"credential {v['name']}",
            not v["attention"],
            str(v["detail"]),
            state=str(v["state"]),
            days_left=v["days_left"],
        )
        for v in views
    ]


CONSISTENCY_PREFIX = "consistency: "


def consistency_checks(runtime: Runtime) -> list[Check]:
    """`--deep`: the database against the disk, the queue and itself, over the whole install
    (services/consistency.py; docs/operations.md, "leap doctor --deep")."""
    settings = runtime.settings

    def queued_ids() -> set[int]:
        # Both lanes: a trim waits in the cpu queue (specs/lanes.py).
        from leap.queue import make_huey

        return set().union(
            *(consistency.queue_stage_ids(make_huey(settings, lane)) for lane in LANES)
        )

    try:
        with open_context(runtime, Scope.system_scope()) as ctx:
            verdicts = consistency.check_all(ctx, queued_ids)
    except Exception as exc:  # doctor reports, it never crashes
        detail = exc.message if isinstance(exc, LeapError) else f"{type(exc).__name__}: {exc}"
        return [Check(f"{CONSISTENCY_PREFIX}checks", False, detail)]
    return [Check(CONSISTENCY_PREFIX + v.name, v.ok, v.detail) for v in verdicts]


# `ffmpeg -version` answers in milliseconds; a binary that has not answered by then hangs.
FFMPEG_CHECK_TIMEOUT_S = 10.0
FIX_HINT = f"install ffmpeg or set {ENV_FFMPEG} to the path of an ffmpeg executable"


def check_ffmpeg(timeout: float = FFMPEG_CHECK_TIMEOUT_S) -> str:
    """Run the ffmpeg the pipeline would use: a path that exists is not yet an ffmpeg
    (LEAP_FFMPEG=/bin/false was reported as fine)."""
    tools = locate()
    try:
        version = ffmpeg_version(tools, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ConfigError(
            f"{tools.ffmpeg} -version did not answer within {timeout:g} s; {FIX_HINT}"
        ) from None
    if not version.startswith("ffmpeg version"):
        shown = version if len(version) <= 60 else version[:59] + "…"
        raise ConfigError(f"{tools.ffmpeg} is not ffmpeg (-version said {shown!r}); {FIX_HINT}")
    short = version.split(" Copyright")[0]
    ffprobe = tools.ffprobe or "none (durations read from ffmpeg)"
    return f"{short} ({tools.ffmpeg}); ffprobe: {ffprobe}"


def local_transcription(settings: Settings, *, deep: bool) -> str:
    """Which Whisper model local transcription uses; with `deep`, that model loaded and one
    second of audio transcribed with it, as the transcribe stage would (so a model that is
    not on this machine fails here, not in the first run). Raises ConfigError otherwise."""
    whisper = LocalWhisperTranscriber.from_settings(settings.local_whisper)
    # The default language decides the default model (English-only bundled weights or not).
    language = settings.defaults.language
    model = whisper.model_for(None if language == "auto" else language)
    bundled = bundled_model_dir()
    name = f"bundled tiny.en ({model})" if bundled and model == str(bundled) else model
    if not deep:
        return f"faster-whisper installed; model {name} (--deep loads it)"
    with tempfile.TemporaryDirectory(prefix="leap-doctor-") as tmp:
        audio = Path(tmp) / "second.wav"
        _write_silence(audio, seconds=1.0)
        started = time.monotonic()
        # Without VAD: it would remove the silence and leave the model nothing to decode.
        probe = LocalWhisperTranscriber(
            model=model,
            device=settings.local_whisper.device,
            compute_type=settings.local_whisper.compute_type,
            beam_size=1,
            vad=False,
            temperature=0.0,
        )
        tr = probe.transcribe(audio, language="en" if language == "auto" else language, prompt=None)
    elapsed = time.monotonic() - started
    return f"model {name} on {tr.meta['device']}: 1 s of audio transcribed in {elapsed:.1f} s"


def _write_silence(path: Path, *, seconds: float) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(b"\0\0" * int(SAMPLE_RATE * seconds))


def _huey(settings: Settings) -> Any:
    from leap.queue import make_huey  # only here: Huey's import pulls in Redis and psycopg

    return make_huey(settings)


def _queue_kind(settings: Settings) -> str:
    return type(_huey(settings)).__name__
