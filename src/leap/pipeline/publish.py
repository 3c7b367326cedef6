"""The upload stage: every target of the recording is published once. Local export writes a
folder per recording; a target already published is never published again unless forced."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from leap.context import open_context
from leap.db.base import utcnow
from leap.db.models import OutputPreset, OutputTarget, Recording
from leap.domain import TargetStatus
from leap.errors import CredentialDead, LeapError
from leap.pipeline.download import copy_local
from leap.pipeline.stage_api import StageContext, StageOutcome
from leap.services import publishing
from leap.services.publishing import Metadata
from leap.topics import Topics

log = logging.getLogger(__name__)

Publisher = Callable[[StageContext, Recording, OutputTarget, OutputPreset, Metadata], str]


class NotAvailable(LeapError):
    """A platform this release cannot publish to yet."""


def export_local(
    sc: StageContext, rec: Recording, target: OutputTarget, preset: OutputPreset, meta: Metadata
) -> str:
    """A folder with the video, subtitles, chapters, thumbnail and metadata.json."""
    folder = Path(str(meta.values["path"])).expanduser()
    if target.remote_id:  # published before (a forced re-run): the same folder again
        folder = Path(target.remote_id)
    folder.mkdir(parents=True, exist_ok=True)
    art = sc.artifacts
    video = Path(art.get("trimmed") or art.get("source") or "")
    if not video.is_file():
        raise LeapError("nothing to publish: the recording has no processed video")
    copy_local(video, folder / f"video{video.suffix}")
    for kind, name in (("srt", "subtitles.srt"), ("vtt", "subtitles.vtt")):
        if art.get(kind) and Path(art[kind]).is_file():
            shutil.copyfile(art[kind], folder / name)
    chapters: list[str] = []
    if art.get("topics") and Path(art["topics"]).is_file():
        topics = Topics.from_storage(json.loads(Path(art["topics"]).read_text("utf-8")))
        if topics.chapters_ok:
            chapters = topics.chapter_lines()
            (folder / "chapters.txt").write_text("\n".join(chapters) + "\n", encoding="utf-8")
    thumb = meta.values.get("thumbnail")
    if isinstance(thumb, str) and thumb and Path(thumb).expanduser().is_file():
        src = Path(thumb).expanduser()
        shutil.copyfile(src, folder / f"thumbnail{src.suffix}")
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
    tmp = folder / ".metadata.json.tmp"
    tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    tmp.replace(folder / "metadata.json")
    return str(folder)


def not_available(platform: str) -> Publisher:
    def publish(*_: Any) -> str:
        raise NotAvailable(f"publishing to {platform} is not available in this release yet")

    return publish


PUBLISHERS: dict[str, Publisher] = {
    "local": export_local,
    "youtube": not_available("YouTube"),
    "vk": not_available("VK"),
}


def run_upload(sc: StageContext) -> StageOutcome:
    with open_context(sc.runtime, sc.scope) as ctx:
        rec = ctx.repos.recordings.require(sc.recording_id)
        pairs = publishing.ensure_targets(ctx, rec)
        plans = [
            (t.id, p, publishing.resolve_for(ctx, rec, p))
            for t, p in pairs
            if sc.force or t.status != TargetStatus.UPLOADED.value
        ]
    if not pairs:
        return StageOutcome(skipped=True, result={"reason": "the template names no presets"})
    done: list[str] = []
    failed: list[str] = []
    for target_id, preset, meta in plans:
        with open_context(sc.runtime, sc.scope) as ctx:
            target = ctx.repos.targets.require(target_id)
            target.status, target.attempts = TargetStatus.UPLOADING.value, target.attempts + 1
            target.sent_metadata, target.repairs = meta.values, [r.__dict__ for r in meta.repairs]
        try:
            url = PUBLISHERS[preset.platform](sc, rec, target, preset, meta)
        except CredentialDead as exc:
            why = f"re-authenticate {preset.name}'s credential: {exc.message}"
            _finish(sc, target_id, TargetStatus.FAILED, error=why)
            log.error("target %s of recording %s: %s", preset.name, rec.id, why)
            failed.append(f"{preset.name}: {why}")
            continue
        except LeapError as exc:
            _finish(sc, target_id, TargetStatus.FAILED, error=exc.message)
            failed.append(f"{preset.name}: {exc.message}")
            continue
        _finish(sc, target_id, TargetStatus.UPLOADED, url=url)
        done.append(preset.name)
    if failed:
        raise LeapError(f"{len(failed)} of {len(pairs)} target(s) failed: " + "; ".join(failed))
    return StageOutcome(result={"published": done, "targets": len(pairs)})


def _finish(
    sc: StageContext,
    target_id: int,
    status: TargetStatus,
    *,
    url: str | None = None,
    error: str | None = None,
) -> None:
    with open_context(sc.runtime, sc.scope) as ctx:
        target = ctx.repos.targets.require(target_id)
        target.status, target.error = status.value, error
        if url is not None:
            target.url = url if "://" in url else f"file://{url}"
            target.remote_id = url
            target.uploaded_at = utcnow()
