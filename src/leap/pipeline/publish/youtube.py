"""YouTube, exactly once: the quota charged once per target and Pacific day, a resumable
upload whose session URI and offsets are committed as they happen, then the extras
(thumbnail, playlist, captions), each recorded so a retry does not repeat it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from leap.context import open_context
from leap.db.models import OutputPreset, OutputTarget, Recording
from leap.errors import CredentialDead, LeapError
from leap.pipeline.publish.targets import RESERVED_KEY, STEPS_KEY, save_target, thumbnail_path
from leap.pipeline.stage_api import StageContext
from leap.providers.http import Deferred, PermanentError, RetryableError
from leap.providers.youtube import (
    QuotaDeferred,
    SessionGone,
    YouTubeClient,
    video_mime,
)
from leap.services import clients, publishing, youtube_quota
from leap.services.publishing import Metadata

# The package's name: the CLI drops this logger's errors, which the stage's error already says
# (cli/app.py, SaidByTheCommand).
log = logging.getLogger(__package__)


def publish_youtube(
    sc: StageContext, rec: Recording, target: OutputTarget, preset: OutputPreset, meta: Metadata
) -> str:
    s = sc.runtime.settings
    if preset.credential_id is None:
        raise LeapError(f"preset '{preset.name}' has no credential")
    cred_id = preset.credential_id
    client, secret = clients.youtube_client(sc.runtime, sc.scope, cred_id, sc.http)
    video = Path(sc.artifacts.get("trimmed") or sc.artifacts.get("source") or "")
    if not video.is_file():
        raise LeapError("nothing to publish: the recording has no processed video")
    size = video.stat().st_size
    project = str(secret["client_id"])  # quotas belong to the Google project of the client
    reserved = (target.sent_metadata or {}).get(RESERVED_KEY)
    today = youtube_quota.pacific_day().isoformat()
    if not target.upload_session_uri and not target.remote_id and reserved != today:
        # Charged once per target and Pacific day, with the mark in the same transaction: an
        # attempt that dies before its session exists does not pay again on the retry.
        with open_context(sc.runtime, sc.scope) as ctx:
            units = youtube_quota.publish_units(
                s.youtube.costs,
                thumbnail=bool(meta.values.get("thumbnail")),
                playlist=bool(meta.values.get("playlist_id")),
                captions=bool(meta.values.get("captions") and sc.artifacts.get("srt")),
            )
            wait_until = youtube_quota.reserve_upload(ctx, project, units)
            if wait_until is None:
                row = ctx.repos.targets.require(target.id)
                row.sent_metadata = {**(row.sent_metadata or {}), RESERVED_KEY: today}
        if wait_until is not None:
            raise QuotaDeferred(
                "today's YouTube quota is spent (LEAP's ledger)",
                status=None,
                reason="ledger",
                retry_at=wait_until,
            )
    try:
        try:
            video_id = _youtube_upload(sc, client, target, meta, video, size)
        except QuotaDeferred as exc:
            if exc.reason != "uploadLimitExceeded":  # that one is the channel's, not the project's
                with open_context(sc.runtime, sc.scope) as ctx:
                    youtube_quota.exhaust(ctx, project)
            raise
        save_target(sc, target.id, remote_id=video_id)
        _youtube_extras(sc, rec, client, target, meta, secret, video_id)
    except CredentialDead:  # at the upload or at an extra after it (the token lapsed meanwhile)
        clients.mark_dead(sc.runtime, sc.scope, cred_id, "YouTube rejected the refresh token")
        raise
    return f"https://youtu.be/{video_id}"


def _youtube_extras(
    sc: StageContext,
    rec: Recording,
    client: YouTubeClient,
    target: OutputTarget,
    meta: Metadata,
    secret: dict[str, Any],
    video_id: str,
) -> None:
    # After the video, each extra runs once: a retry (say, after a wrong playlist id) redoes
    # only what has not happened, so no playlist item or caption track is added twice.
    done = dict((target.sent_metadata or {}).get(STEPS_KEY) or {})
    extras = meta.values
    name = str(extras.get("thumbnail") or "")
    if name and "thumbnail" not in done:
        try:
            thumb_path = thumbnail_path(sc, rec, name)
        except LeapError as exc:
            outcome = f"warning: {exc.message}"
        else:
            thumb = client.set_thumbnail(video_id, thumb_path)
            outcome = "done" if thumb.ok else f"warning: {thumb.warning}"
        _record_step(sc, target.id, "thumbnail", outcome)
    playlist = str(extras.get("playlist_id") or "")
    if playlist and done.get("playlist") != "done":
        try:
            # "sending" is recorded first: if this attempt dies between the insert and its
            # record, the retry asks the playlist instead of adding the video twice.
            landed = done.get("playlist") == "sending" and client.playlist_has(playlist, video_id)
            if not landed:
                _record_step(sc, target.id, "playlist", "sending")
                client.add_to_playlist(playlist, video_id)
        except (Deferred, CredentialDead, RetryableError):
            raise  # deferred, dead or retried like the upload itself; the video stays recorded
        except LeapError as exc:
            raise LeapError(
                f"the video is up (https://youtu.be/{video_id}) but adding it to playlist "
                f"{extras['playlist_id']} failed: {exc.message}; fix the playlist and retry"
            ) from None
        _record_step(sc, target.id, "playlist", "done")
    if extras.get("captions") and sc.artifacts.get("srt") and "captions" not in done:
        _record_step(sc, target.id, "captions", _captions(sc, client, secret, video_id))


FORCE_SSL = "https://www.googleapis.com/auth/youtube.force-ssl"


def _record_step(sc: StageContext, target_id: int, step: str, outcome: str) -> None:
    if outcome.startswith("warning: "):
        log.warning("recording %s, YouTube %s: %s", sc.recording_id, step, outcome[9:])
    with open_context(sc.runtime, sc.scope) as ctx:
        target = ctx.repos.targets.require(target_id)
        sent = dict(target.sent_metadata or {})
        sent[STEPS_KEY] = {**(sent.get(STEPS_KEY) or {}), step: outcome}
        target.sent_metadata = sent


def _captions(
    sc: StageContext, client: YouTubeClient, secret: dict[str, Any], video_id: str
) -> str:
    """Caption tracks need the force-ssl scope; without it (or on a 403) the video stays
    published and the target carries a warning, not a failure."""
    scopes = secret.get("scopes")
    if isinstance(scopes, list) and scopes and FORCE_SSL not in scopes:
        return "warning: captions need the youtube.force-ssl scope; re-authorize to add them"
    try:
        client.insert_caption(
            video_id,
            Path(sc.artifacts["srt"]),
            language=str(sc.config.get("language") or "en"),
            name="LEAP",
        )
    except PermanentError as exc:
        if exc.status == 403:
            return f"warning: YouTube refused the captions: {exc.message}"
        raise
    return "done"


def _youtube_upload(
    sc: StageContext,
    client: YouTubeClient,
    target: OutputTarget,
    meta: Metadata,
    video: Path,
    size: int,
) -> str:
    """Exactly once: resume the stored session, or find the video by its marker when the
    session is gone, and only then start a new upload."""
    if target.remote_id:
        return str(target.remote_id)
    session, offset = target.upload_session_uri, int(target.upload_offset or 0)
    if session and target.upload_total and target.upload_total != size:
        # The file changed since that session began (a re-trim): its bytes cannot continue
        # it. If that upload finished before a crash, it is the published video; otherwise
        # YouTube drops the unfinished session after a week and a new one begins.
        try:
            state = client.query_offset(session, int(target.upload_total))
        except SessionGone:
            state = None
        if isinstance(state, dict):
            return str(state["id"])
        found = client.find_video_by_marker(target.idempotency_key)
        if found:
            return found
        log.info("recording %s: the video changed size; starting a new upload", sc.recording_id)
        session = None
    elif session:
        try:
            state = client.query_offset(session, size)
        except SessionGone:
            found = client.find_video_by_marker(target.idempotency_key)
            if found:
                return found
            session = None
        else:
            if isinstance(state, dict):
                return str(state["id"])  # finished before the crash
            offset = state
    if not session:
        body = publishing.youtube_request(meta.values, target.idempotency_key)
        session = client.start_session(body, size=size, mime=video_mime(video))
        save_target(sc, target.id, upload_session_uri=session, upload_offset=0, upload_total=size)
        offset = 0

    def progress(confirmed: int) -> None:
        save_target(sc, target.id, upload_offset=confirmed)
        sc.progress(confirmed / size if size else 1.0, "uploading")

    chunk = sc.runtime.settings.youtube.upload_chunk_mb * 1024 * 1024
    try:
        done = client.upload(
            session, video, size=size, offset=offset, chunk_size=chunk, on_progress=progress
        )
    except SessionGone:
        # Expired mid-upload (404/410): the video may still have been finished; look, then
        # begin once more in a new session saved before its first byte.
        found = client.find_video_by_marker(target.idempotency_key)
        if found:
            return found
        body = publishing.youtube_request(meta.values, target.idempotency_key)
        session = client.start_session(body, size=size, mime=video_mime(video))
        save_target(sc, target.id, upload_session_uri=session, upload_offset=0, upload_total=size)
        done = client.upload(session, video, size=size, chunk_size=chunk, on_progress=progress)
    return str(done["id"])
