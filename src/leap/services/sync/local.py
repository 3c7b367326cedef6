"""Local folder source: video/audio files found recursively, probed with ffmpeg only when new
or changed, skipped while still being written."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from leap.context import open_context
from leap.db.models import InputSource
from leap.errors import UsageError
from leap.media.ffmpeg import MediaError, locate, probe
from leap.services.sync.item import SourceItem, SyncDeps, chunks
from leap.services.sync.result import SyncResult
from leap.services.users import current_user, path_policy

log = logging.getLogger(__name__)

MEDIA_EXTENSIONS = {
    ".mp4",
    ".m4v",
    ".mov",
    ".mkv",
    ".webm",
    ".avi",
    ".mpg",
    ".mpeg",
    ".ts",
    ".m4a",
    ".mp3",
    ".wav",
    ".flac",
    ".ogg",
    ".opus",
    ".aac",
}

# 2026-03-05, 20260305, 2026_03_05 and an optional time 18-30 / 1830 / 18.30 / 18h30.
_DATE_IN_NAME = re.compile(
    r"(?<!\d)(20\d{2})[-_.]?(0[1-9]|1[0-2])[-_.]?(0[1-9]|[12]\d|3[01])"
    r"(?:[ T_.-]?([01]\d|2[0-3])[-_.:h]?([0-5]\d))?(?!\d)"
)


@dataclass(frozen=True)
class Seen:
    path: Path
    rel: str
    size: int
    mtime_ns: int


def date_from_name(name: str, tz: tzinfo) -> datetime | None:
    """A recording date written in the file name, read in the owner's timezone."""
    m = _DATE_IN_NAME.search(name)
    if not m:
        return None
    y, mo, d, hh, mm = m.groups()
    try:
        local = datetime(int(y), int(mo), int(d), int(hh or 0), int(mm or 0), tzinfo=tz)
    except ValueError:  # 2026-02-30
        return None
    return local.astimezone(UTC)


def title_from_name(stem: str) -> str:
    cleaned = _DATE_IN_NAME.sub(" ", stem).replace("_", " ")
    cleaned = re.sub(r"\s+", " ", cleaned).strip(" -.")
    return cleaned or stem


def _printable(name: str) -> bool:
    """A name the database and the terminal can hold: os.walk hands back bytes that are not
    UTF-8 as lone surrogates, which PostgreSQL refuses and no reader could type."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def scan(root: Path, skipped: dict[str, str] | None = None) -> dict[str, Seen]:
    """Media files under `root`; those that cannot be taken go to `skipped` with the reason."""
    found: dict[str, Seen] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and _printable(d))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name.startswith(".") or path.suffix.lower() not in MEDIA_EXTENSIONS:
                continue
            rel = path.relative_to(root).as_posix()
            if not _printable(name):
                if skipped is not None:
                    shown = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                    skipped[shown] = "the file name is not valid UTF-8; rename the file"
                continue
            try:
                st = path.stat()
            except OSError:
                continue  # vanished between listing and stat (or a dangling symlink)
            found[rel] = Seen(path, rel, st.st_size, st.st_mtime_ns)
    return found


def settled(
    root: Path,
    pause: float,
    sleep: Callable[[float], None],
    skipped: dict[str, str] | None = None,
) -> tuple[list[Seen], list[str]]:
    """Files whose size and mtime did not change across `pause` seconds, and those that did."""
    first = scan(root, skipped)
    if pause > 0 and first:
        sleep(pause)
    second = scan(root) if pause > 0 else first
    stable, growing = [], []
    for rel, seen in first.items():
        again = second.get(rel)
        if again is None:
            continue
        if (again.size, again.mtime_ns) != (seen.size, seen.mtime_ns) or seen.size == 0:
            growing.append(rel)
        else:
            stable.append(again)
    return stable, growing


def _stored_file(files: Sequence[Any]) -> dict[str, Any]:
    return dict(files[0]) if files and isinstance(files[0], dict) else {}


def local_pages(
    deps: SyncDeps,
    src: InputSource,
    window: tuple[Any, Any] | None,
    result: SyncResult,
) -> Iterator[list[SourceItem]]:
    with open_context(deps.runtime, deps.scope) as ctx:
        # Checked on every sync, not only when the source was added: an admin may have taken
        # the folder away since, or it may have been swapped for a symlink (docs/paths.md).
        policy = path_policy(ctx)
        root = policy.check_tree(src.config["path"], what=f"source '{src.name}': local path")
        tz = ZoneInfo(current_user(ctx).timezone)
        known = {
            r.external_id: (r, _stored_file(r.files))
            for r in ctx.repos.recordings.list(source_id=src.id)
        }
    if not root.is_dir():
        raise UsageError(f"local path {root} does not exist or is not a directory")
    pause = deps.runtime.settings.sync.local_settle_seconds
    skipped: dict[str, str] = {}
    stable, growing = settled(root, pause, deps.sleep or time.sleep, skipped)
    for rel in growing:
        result.warnings.append(f"{rel}: still being written, skipped this round")
    for rel, why in skipped.items():
        result.warnings.append(f"{rel}: {why}")
    tools = None
    items: list[SourceItem] = []
    for seen in stable:
        try:
            # A symlink may lead anywhere: what it leads to must be the user's to read.
            real_path = policy.check(seen.path, what="file")
        except UsageError as exc:
            result.warnings.append(f"{seen.rel}: {exc.message}; skipped")
            continue
        if not real_path.is_file():
            result.warnings.append(f"{seen.rel}: not a regular file; skipped")
            continue
        rec_file = known.get(seen.rel)
        stored = rec_file[1] if rec_file else {}
        if rec_file and stored.get("size") == seen.size and stored.get("mtime_ns") == seen.mtime_ns:
            rec = rec_file[0]
            # Unchanged on disk: describe it as stored, so the upsert sees no difference.
            items.append(
                SourceItem(
                    external_id=rec.external_id,
                    title=rec.title,
                    start_time=rec.start_time,
                    duration_s=rec.duration_s,
                    size_bytes=rec.size_bytes,
                    host=rec.host,
                    meeting_id=rec.meeting_id,
                    files=tuple(rec.files),
                )
            )
            continue
        tools = tools or locate()
        try:
            info = probe(tools, real_path)
        except MediaError as exc:
            result.warnings.append(exc.message)  # names the file already
            continue
        start = date_from_name(seen.path.stem, tz) or datetime.fromtimestamp(
            seen.mtime_ns / 1e9, UTC
        ).replace(microsecond=0)
        if window is not None and not (window[0] <= start.date() <= window[1]):
            continue
        kind = "video" if info.has_video else "audio"
        items.append(
            SourceItem(
                external_id=seen.rel,
                title=title_from_name(seen.path.stem),
                start_time=start,
                duration_s=round(info.duration_s, 3),
                size_bytes=seen.size,
                files=(
                    {
                        "type": kind,
                        "file_extension": seen.path.suffix.lstrip(".").upper(),
                        "recording_type": kind,
                        "size": seen.size,
                        "mtime_ns": seen.mtime_ns,
                        "path": str(seen.path),
                        "has_audio": info.has_audio,
                        "has_video": info.has_video,
                    },
                ),
            )
        )
    yield from chunks(items)
