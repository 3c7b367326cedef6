"""May a recording's Zoom cloud copy go to Zoom's trash? A pure decision (docs/zoom-cleanup.md,
"What is checked"): the facts are gathered by services/zoom_trash.py, and the dry-run plan,
the real run and leapd's pass all ask this one function, so none of them can promise what
another then does differently.

`refusal` returns None when the recording may go, else one short reason, the first that
applies, in the order the checks are listed in the docs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from leap.domain import SourceKind, TargetStatus

# The template key that lets leapd do it (top level of the template file).
AFTER_DAYS_KEY = "zoom_trash_after_days"
AFTER_DAYS_MAX = 3650  # ten years: anything longer is a typo for "never"
# leapd leaves a recording alone this long after Zoom refused it or the call failed: a
# refusal repeats until someone changes a permission, and an hourly retry would only fill
# the recording's log (the CLI always tries).
AUTO_RETRY_AFTER = timedelta(days=1)
AWAITING = "awaiting"  # output_targets.approval of a video held for a person's approval


@dataclass(frozen=True)
class TargetFact:
    """One output target as the decision sees it. `status` None: the preset has no target yet
    (the upload stage never ran for it); `required`: its preset is one the template names."""

    preset: str
    status: str | None
    approval: str | None = None
    uploaded_at: datetime | None = None
    required: bool = True


@dataclass(frozen=True)
class TrashFacts:
    source_kind: str
    trashed_at: datetime | None
    start_time: datetime
    # The source's files as synced (Zoom's fields: `id`, `file_size`).
    files: Sequence[Mapping[str, Any]]
    # The result of the newest finished download stage (`file` with Zoom's file id, `size`
    # in bytes), None when it never finished.
    download: Mapping[str, Any] | None
    mapped: bool  # the recording has a template
    targets: Sequence[TargetFact] = ()
    running: bool = False  # a pipeline run holds the recording
    after_days: int | None = None  # its template's zoom_trash_after_days
    # The newest entry of zoom_trash_log, if any: {"at", "outcome", ...}.
    last_attempt: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class TrashRule:
    """What the caller asks on top of safety: `older_than` (with the text the user wrote,
    for the reason) compares the recording's start; `auto` is leapd's pass, which also
    waits for the template's zoom_trash_after_days since publication."""

    now: datetime
    older_than: timedelta | None = None
    older_than_text: str = ""
    auto: bool = False


def refusal(facts: TrashFacts, rule: TrashRule) -> str | None:
    """None if the Zoom copy may go to the trash now, else why not."""
    if facts.source_kind != SourceKind.ZOOM.value:
        return "not from Zoom"
    if facts.trashed_at is not None:
        return "already in Zoom's trash"
    if rule.older_than is not None and facts.start_time > rule.now - rule.older_than:
        return f"newer than {rule.older_than_text or _days(rule.older_than)}"
    if facts.running:
        return "being processed"
    problem = download_problem(facts.files, facts.download)
    if problem is not None:
        return f"download not verified: {problem}"
    problem = publication_problem(facts.mapped, facts.targets)
    if problem is not None:
        return f"not published: {problem}"
    if rule.auto:
        return auto_problem(facts, rule.now)
    return None


def download_problem(
    files: Sequence[Mapping[str, Any]], download: Mapping[str, Any] | None
) -> str | None:
    """Why the finished download does not prove LEAP holds Zoom's file whole, or None.

    Zoom lists no checksum for recording files, only `file_size`, so the proof is the byte
    count: the download stage renames its file into place only after it received exactly
    that many bytes (providers/download.py) and records the count in its result. That
    record, not the file on disk, is what is checked: the copy LEAP keeps is the published
    one (checked next), and the downloaded file may be cleaned up to save the space this
    whole feature is about."""
    if download is None:
        return "never downloaded"
    chosen = download.get("file")
    file_id = chosen.get("id") if isinstance(chosen, Mapping) else None
    if not isinstance(file_id, str) or not file_id:
        return "the download names no Zoom file"
    got = _count(download.get("size"))
    if got is None:
        return "the download recorded no size"
    listed = [f for f in files if isinstance(f, Mapping) and f.get("id") == file_id]
    if not listed:
        return f"Zoom no longer lists file {file_id}"
    entry = listed[0]
    want = _count(entry.get("file_size"))
    if want is None:
        want = _count(entry.get("size"))
    if want is None:
        return f"Zoom gave no size for file {file_id}"
    if want == 0:
        return f"Zoom lists file {file_id} as empty"
    if got != want:
        return f"downloaded {got} bytes, Zoom lists {want}"
    return None


def publication_problem(mapped: bool, targets: Sequence[TargetFact]) -> str | None:
    """Why the recording is not published everywhere its template says, or None."""
    if not mapped:
        return "no template"
    required = [t for t in targets if t.required]
    if not required:
        return "its template names no presets"
    # Held for approval anywhere (even on a preset the template no longer names): a person
    # is still looking at it, so it is not published.
    waiting = [t.preset for t in targets if t.approval == AWAITING]
    open_ = [
        f"{t.preset} {t.status or TargetStatus.PENDING.value}"
        for t in required
        if t.status != TargetStatus.UPLOADED.value and t.preset not in waiting
    ]
    parts = [f"{p} awaiting approval" for p in waiting] + open_
    return ", ".join(parts) if parts else None


def published_at(targets: Sequence[TargetFact]) -> datetime | None:
    """When the recording was last published: the newest upload of a required target."""
    times = [t.uploaded_at for t in targets if t.required and t.uploaded_at is not None]
    return max(times) if times else None


def auto_problem(facts: TrashFacts, now: datetime) -> str | None:
    """leapd's own conditions: the template asks for it, and publication is old enough; a
    refusal or failure is not retried within AUTO_RETRY_AFTER."""
    if facts.after_days is None:
        return f"its template sets no {AFTER_DAYS_KEY}"
    when = published_at(facts.targets)
    if when is None or when > now - timedelta(days=facts.after_days):
        return f"published less than {facts.after_days}d ago"
    last = facts.last_attempt or {}
    if last.get("outcome") in ("refused", "error"):
        at = _instant(last.get("at"))
        if at is not None and at > now - AUTO_RETRY_AFTER:
            if last["outcome"] == "refused":
                return "Zoom refused it less than a day ago"
            return "the last call failed less than a day ago"
    return None


def check_after_days(value: Any) -> int:
    """A template's zoom_trash_after_days: a whole number of days, 1 to AFTER_DAYS_MAX;
    ValueError fit for a user otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a whole number of days, got {value!r}")
    if not 1 <= value <= AFTER_DAYS_MAX:
        raise ValueError(f"{value} is not a number of days from 1 to {AFTER_DAYS_MAX}")
    return value


def _count(value: Any) -> int | None:
    """A byte count from stored JSON: a non-negative int (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def _days(span: timedelta) -> str:
    return f"{span.days}d" if span == timedelta(days=span.days) else str(span)
