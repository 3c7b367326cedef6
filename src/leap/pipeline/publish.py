"""The upload stage: every target of the recording is published once. Local export writes a
folder per recording; a target already published is never published again unless forced."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from leap.artifacts import load as load_artifact
from leap.context import open_context
from leap.db.base import utcnow
from leap.db.models import OutputPreset, OutputTarget, Recording
from leap.domain import CredentialStatus, TargetStatus
from leap.errors import CredentialDead, LeapError
from leap.path_policy import link_or_copy_into, open_folder, write_bytes_into
from leap.pipeline.stage_api import StageContext, StageOutcome, Waiting
from leap.providers.http import Deferred, PermanentError, RetryableError
from leap.providers.youtube import (
    QuotaDeferred,
    SessionGone,
    YouTubeClient,
    video_mime,
)
from leap.services import clients, publishing, youtube_quota
from leap.services.publishing import Metadata
from leap.services.users import path_policy
from leap.specs import thumbnails
from leap.text.topics import Topics

log = logging.getLogger(__name__)

Publisher = Callable[[StageContext, Recording, OutputTarget, OutputPreset, Metadata], str]


def export_local(
    sc: StageContext, rec: Recording, target: OutputTarget, preset: OutputPreset, meta: Metadata
) -> str:
    """A folder with the video, subtitles, chapters, thumbnail and metadata.json.

    leapd writes with the install's rights for one user, so the rendered folder is checked
    against that user's roots now (docs/paths.md), and every file goes in through the open
    folder and a rename: a symlink planted in the folder is replaced, never written through."""
    folder = Path(str(meta.values["path"])).expanduser()
    if target.remote_id:  # exported before (a retry after a later step failed): same folder
        folder = Path(target.remote_id)
    with open_context(sc.runtime, sc.scope) as ctx:
        policy = path_policy(ctx, ctx.repos.users.require(rec.user_id))
    art = sc.artifacts
    video = Path(art.get("trimmed") or art.get("source") or "")
    if not video.is_file():
        raise LeapError("nothing to publish: the recording has no processed video")
    dir_fd = open_folder(policy, folder, what=f"preset '{preset.name}': export folder")
    try:
        with video.open("rb", buffering=0) as fh:
            link_or_copy_into(dir_fd, f"video{video.suffix}", fh)
        for kind, name in (("srt", "subtitles.srt"), ("vtt", "subtitles.vtt")):
            if art.get(kind) and Path(art[kind]).is_file():
                write_bytes_into(dir_fd, name, Path(art[kind]).read_bytes())
        chapters: list[str] = []
        if art.get("topics") and Path(art["topics"]).is_file():
            topics = load_artifact(Path(art["topics"]), "topics", Topics.from_storage)
            if topics.chapters_ok:
                chapters = topics.chapter_lines()
                text = ("\n".join(chapters) + "\n").encode("utf-8")
                write_bytes_into(dir_fd, "chapters.txt", text)
        name = str(meta.values.get("thumbnail") or "")
        if name:
            try:
                src = _thumbnail(sc, rec, name)
            except LeapError as exc:
                log.warning("recording %s: %s", rec.id, exc.message)
            else:
                write_bytes_into(dir_fd, f"thumbnail{src.suffix}", src.read_bytes())
        doc = {
            "title": meta.values.get("title"),
            "description": meta.values.get("description"),
            "tags": meta.values.get("tags", []),
            "chapters": chapters,
            "recording": {
                "id": rec.id,
                "external_id": rec.external_id,
                "title": rec.title,
                "start_time": rec.start_time.isoformat(),
            },
            "idempotency_key": target.idempotency_key,
            "repairs": [r.__dict__ for r in meta.repairs],
        }
        body = json.dumps(doc, ensure_ascii=False, indent=2, default=str).encode("utf-8")
        write_bytes_into(dir_fd, "metadata.json", body)
    finally:
        os.close(dir_fd)
    return str(policy.check(folder, what="export folder"))


def _thumbnail(sc: StageContext, rec: Recording, name: str) -> Path:
    with open_context(sc.runtime, sc.scope) as ctx:
        policy = path_policy(ctx, ctx.repos.users.require(rec.user_id))
    return thumbnails.locate(sc.runtime.settings.media_path, rec.user_id, name, policy=policy)


def _save_target(sc: StageContext, target_id: int, **values: Any) -> None:
    """Commit upload state at once: the session URI before the first byte, then each offset."""
    with open_context(sc.runtime, sc.scope) as ctx:
        target = ctx.repos.targets.require(target_id)
        for key, value in values.items():
            setattr(target, key, value)


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
        _save_target(sc, target.id, remote_id=video_id)
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
            thumb_path = _thumbnail(sc, rec, name)
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


STEPS_KEY = "youtube_steps"  # in sent_metadata: the extras done after the upload
RESERVED_KEY = "quota_reserved"  # in sent_metadata: the Pacific day the publish was charged
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
        _save_target(sc, target.id, upload_session_uri=session, upload_offset=0, upload_total=size)
        offset = 0

    def progress(confirmed: int) -> None:
        _save_target(sc, target.id, upload_offset=confirmed)
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
        _save_target(sc, target.id, upload_session_uri=session, upload_offset=0, upload_total=size)
        done = client.upload(session, video, size=size, chunk_size=chunk, on_progress=progress)
    return str(done["id"])


def publish_vk(
    sc: StageContext, rec: Recording, target: OutputTarget, preset: OutputPreset, meta: Metadata
) -> str:
    """video.save, then the file to its upload URL. VK has no resumable upload: a retry
    re-sends the whole file. A slot saved before a crash is first looked up by the target's
    marker, then re-used while VK still accepts its upload URL, so a crash never publishes
    twice nor (while the URL is valid) leaves an empty slot behind."""
    if preset.credential_id is None:
        raise LeapError(f"preset '{preset.name}' has no credential")
    cred_id = preset.credential_id
    client = clients.vk_client(sc.runtime, sc.scope, cred_id, sc.http)
    if target.remote_id:
        owner, vid = (int(x) for x in str(target.remote_id).split("_"))
        return client.video_url(owner, vid)
    video = Path(sc.artifacts.get("trimmed") or sc.artifacts.get("source") or "")
    if not video.is_file():
        raise LeapError("nothing to publish: the recording has no processed video")
    marker = f"#{target.idempotency_key}"
    pending = target.sent_metadata.get("vk_slot") if target.sent_metadata else None
    size = video.stat().st_size

    def send(upload_url: str) -> None:
        client.upload_file(
            upload_url, video, on_progress=lambda n: sc.progress(n / size if size else 1.0, "VK")
        )

    published: tuple[int, int] | None = None
    try:
        if pending:  # a slot was saved before a crash: did its upload finish?
            owner, vid = int(pending["owner_id"]), int(pending["video_id"])
            found = client.find_video_by_marker(owner, marker)
            if found:
                _save_target(sc, target.id, remote_id=f"{owner}_{found}")
                return client.video_url(owner, found)
            if target.upload_session_uri:
                # The same slot again: a file re-sent to it replaces, never adds, so even an
                # upload that did land unseen cannot become a second video.
                try:
                    send(target.upload_session_uri)
                    published = (owner, vid)
                except PermanentError as exc:
                    if exc.status not in (401, 403, 404, 410):
                        raise
                    log.warning(
                        "recording %s: VK refused the saved upload URL of video %s_%s (%s); "
                        "asking for a new slot (delete the empty one in VK if it shows)",
                        rec.id,
                        owner,
                        vid,
                        exc.message,
                    )
        if published is None:
            slot = client.save_video(publishing.vk_request(meta.values, target.idempotency_key))
            _save_target(
                sc,
                target.id,
                upload_session_uri=slot.upload_url,
                sent_metadata={
                    **meta.values,
                    "vk_slot": {"owner_id": slot.owner_id, "video_id": slot.video_id},
                },
            )
            send(slot.upload_url)
            published = (slot.owner_id, slot.video_id)
    except CredentialDead:
        clients.mark_dead(sc.runtime, sc.scope, cred_id, "VK rejected the token")
        raise
    _save_target(sc, target.id, remote_id=f"{published[0]}_{published[1]}")
    return client.video_url(*published)


PUBLISHERS: dict[str, Publisher] = {
    "local": export_local,
    "youtube": publish_youtube,
    "vk": publish_vk,
}


def run_upload(sc: StageContext) -> StageOutcome:
    with open_context(sc.runtime, sc.scope) as ctx:
        rec = ctx.repos.recordings.require(sc.recording_id)
        pairs = publishing.ensure_targets(ctx, rec)
        if sc.force and "republished" not in sc.state:
            # Redo outputs once per run: a retry, a wake-up after a quota wait or a restart
            # after a crash resumes instead of publishing yet again. The mark is written in
            # the same transaction as the resets, so no crash can separate them.
            reset = [t.id for t, _ in pairs if publishing.reset_for_republish(t)]
            stage = ctx.repos.stages.find(run_id=sc.run_id, name=sc.stage.value)
            if stage is not None:
                stage.result = {**stage.result, "republished": reset}
        plans = []
        for t, p in pairs:
            if t.status == TargetStatus.UPLOADED.value:
                continue
            cred = ctx.repos.credentials.get(p.credential_id) if p.credential_id else None
            plans.append((t.id, p, cred, publishing.resolve_for(ctx, rec, p)))
    if not pairs:
        return StageOutcome(skipped=True, result={"reason": "the template names no presets"})
    done: list[str] = []
    failed: list[str] = []
    dead: list[str] = []
    transient: list[str] = []
    deferred: list[datetime] = []
    for target_id, preset, cred, meta in plans:
        with open_context(sc.runtime, sc.scope) as ctx:
            target = ctx.repos.targets.require(target_id)
            target.status, target.attempts = TargetStatus.UPLOADING.value, target.attempts + 1
            # An upload slot saved by an earlier attempt must survive (it is how an unknown
            # outcome is reconciled before anything is sent again), and so must the record of
            # the extras done after an upload.
            kept = {
                k: v
                for k, v in (target.sent_metadata or {}).items()
                if k in ("vk_slot", STEPS_KEY, RESERVED_KEY)
            }
            target.sent_metadata = {**meta.values, **kept}
            target.repairs = [r.__dict__ for r in meta.repairs]
        try:
            if cred is not None and cred.status == CredentialStatus.NEEDS_REAUTH.value:
                raise CredentialDead("it was refused before; add it again once re-authorized")
            url = PUBLISHERS[preset.platform](sc, rec, target, preset, meta)
        except Deferred as exc:
            # Not a failure: the quota resets (or flood control ends) at retry_at; the stage
            # waits for it.
            _finish(
                sc, target_id, TargetStatus.DEFERRED, error=exc.message, deferred_until=exc.retry_at
            )
            deferred.append(exc.retry_at)
            continue
        except CredentialDead as exc:
            name = cred.name if cred is not None else preset.name
            why = f"re-authenticate {name}: {exc.message}"
            _finish(sc, target_id, TargetStatus.FAILED, error=why)
            log.error("recording %s, target %s: %s", rec.id, preset.name, why)
            failed.append(f"{preset.name}: {why}")
            dead.append(preset.name)
            continue
        except RetryableError as exc:  # the in-stage retries ran out: the stage retries later
            _finish(sc, target_id, TargetStatus.FAILED, error=exc.message)
            transient.append(f"{preset.name}: {exc.message}")
            continue
        except LeapError as exc:
            _finish(sc, target_id, TargetStatus.FAILED, error=exc.message)
            failed.append(f"{preset.name}: {exc.message}")
            continue
        _finish(sc, target_id, TargetStatus.UPLOADED, url=url)
        done.append(preset.name)
    if deferred:
        # Targets that failed meanwhile keep their error and are tried again on that pass.
        wait = max(1.0, (min(deferred) - utcnow()).total_seconds())
        raise Waiting(f"{len(deferred)} target(s) wait for the platform (quota or flood)", wait)
    if transient:
        raise RetryableError(
            f"{len(transient)} of {len(pairs)} target(s) will be retried: " + "; ".join(transient),
            provider="upload",
        )
    if failed:
        message = f"{len(failed)} of {len(pairs)} target(s) failed: " + "; ".join(failed)
        if len(dead) == len(failed):  # only dead credentials: the CLI's exit code 5
            raise CredentialDead(message)
        raise LeapError(message)
    return StageOutcome(result={"published": done, "targets": len(pairs)})


def _finish(
    sc: StageContext,
    target_id: int,
    status: TargetStatus,
    *,
    url: str | None = None,
    error: str | None = None,
    deferred_until: datetime | None = None,
) -> None:
    with open_context(sc.runtime, sc.scope) as ctx:
        target = ctx.repos.targets.require(target_id)
        target.status, target.error = status.value, error
        target.deferred_until = deferred_until
        if url is not None:
            target.url = url if "://" in url else f"file://{url}"
            target.remote_id = url
            target.uploaded_at = utcnow()
