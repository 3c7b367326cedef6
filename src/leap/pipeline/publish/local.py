"""Export to a folder: the video, subtitles, chapters, thumbnail and metadata.json."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from leap.artifacts import load as load_artifact
from leap.context import open_context
from leap.db.models import OutputPreset, OutputTarget, Recording
from leap.errors import LeapError
from leap.path_policy import link_or_copy_into, open_folder, write_bytes_into
from leap.pipeline.publish.targets import thumbnail_path
from leap.pipeline.stage_api import StageContext
from leap.services.publishing import Metadata
from leap.services.users import path_policy
from leap.text.topics import Topics

# The package's name: the CLI drops this logger's errors, which the stage's error already says
# (cli/app.py, SaidByTheCommand).
log = logging.getLogger(__package__)


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
                src = thumbnail_path(sc, rec, name)
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
