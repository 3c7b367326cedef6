"""VK, exactly once: video.save, then the file to its upload URL; a slot saved before a crash
is found again by its marker, or re-used while VK still accepts its URL."""

from __future__ import annotations

import logging
from pathlib import Path

from leap.db.models import OutputPreset, OutputTarget, Recording
from leap.errors import CredentialDead, LeapError
from leap.pipeline.publish.targets import save_target
from leap.pipeline.stage_api import StageContext
from leap.providers.http import PermanentError
from leap.services import clients, publishing
from leap.services.publishing import Metadata

# The package's name: the CLI drops this logger's errors, which the stage's error already says
# (cli/app.py, SaidByTheCommand).
log = logging.getLogger(__package__)


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
                save_target(sc, target.id, remote_id=f"{owner}_{found}")
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
            save_target(
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
    save_target(sc, target.id, remote_id=f"{published[0]}_{published[1]}")
    return client.video_url(*published)
