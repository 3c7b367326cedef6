"""Recordings: the shared filters, listing, one recording's full view, explicit re-match."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from leap.context import Context
from leap.db.models import Recording
from leap.db.repos import RecordingQuery
from leap.domain import RecordingStatus, RunStatus
from leap.errors import Conflict, UsageError
from leap.path_policy import inside, real
from leap.services import audit, mapping, publishing, runs
from leap.specs import approval
from leap.specs.approval import Gate
from leap.specs.metadata import check_templates
from leap.specs.processing import Resolved, parse_value, set_override
from leap.views import iso, recording_view


@dataclass(frozen=True)
class RecordingFilter:
    """FILTERS as the CLI takes them (names, not ids)."""

    ids: list[int] | None = None
    statuses: list[str] = field(default_factory=list)
    template: str | None = None
    source: str | None = None
    mapped: bool | None = None
    blank: bool | None = None
    failed: bool = False
    date_from: datetime | None = None
    date_to: datetime | None = None
    search: str | None = None
    awaiting_approval: bool = False  # with a target held for `leap approve`
    limit: int | None = None
    offset: int = 0


def resolve(ctx: Context, f: RecordingFilter) -> RecordingQuery:
    valid = {s.value for s in RecordingStatus}
    bad = [s for s in f.statuses if s not in valid]
    if bad:
        raise UsageError(f"unknown status '{bad[0]}' (one of: {', '.join(sorted(valid))})")
    if f.date_from and f.date_to and f.date_from > f.date_to:
        raise UsageError("--from is after --to")
    return RecordingQuery(
        ids=f.ids,
        statuses=f.statuses,
        template_id=ctx.repos.templates.require_name(f.template).id if f.template else None,
        source_id=ctx.repos.sources.require_name(f.source).id if f.source else None,
        mapped=f.mapped,
        blank=f.blank,
        failed=f.failed,
        date_from=f.date_from,
        date_to=f.date_to,
        search=f.search,
        awaiting_approval=f.awaiting_approval,
        limit=f.limit,
        offset=f.offset,
    )


def select(ctx: Context, f: RecordingFilter) -> list[Recording]:
    return ctx.repos.recordings.search(resolve(ctx, f))


# Ids per IN (...) clause: well under SQLite's bound-parameter limit.
_CHUNK = 10_000


def existing_ids(ctx: Context, ids: list[int]) -> set[int]:
    """Which of `ids` name a recording the acting user can see: the scope hides another
    user's, so each of those is reported as not found, like a missing one."""
    found: set[int] = set()
    for i in range(0, len(ids), _CHUNK):
        query = RecordingQuery(ids=ids[i : i + _CHUNK])
        found.update(r.id for r in ctx.repos.recordings.search(query))
    return found


class Names:
    """Source and template names by id, loaded once for a listing."""

    def __init__(self, ctx: Context) -> None:
        self.sources = {s.id: s.name for s in ctx.repos.sources.list()}
        self.templates = {t.id: t.name for t in ctx.repos.templates.list()}

    def view(self, rec: Recording) -> dict[str, Any]:
        tpl = self.templates.get(rec.template_id) if rec.template_id is not None else None
        return recording_view(rec, self.sources.get(rec.source_id), tpl)


def list_views(ctx: Context, f: RecordingFilter) -> list[dict[str, Any]]:
    names = Names(ctx)
    return [names.view(r) for r in select(ctx, f)]


def show(ctx: Context, recording_id: int) -> dict[str, Any]:
    rec = ctx.repos.recordings.require(recording_id)
    view = Names(ctx).view(rec)
    view["files"] = rec.files
    view["meeting_id"] = rec.meeting_id
    view["overrides"] = rec.overrides
    view["targets"] = [
        publishing.target_view(ctx, t) for t in ctx.repos.targets.list(recording_id=rec.id)
    ]
    # Zoom cloud cleanup (docs/zoom-cleanup.md): when its Zoom copy went, and every call.
    view["zoom_trashed_at"] = iso(rec.zoom_trashed_at)
    view["zoom_trash_log"] = list(rec.zoom_trash_log or [])
    return with_pipeline(ctx, view, rec)


def rematch(ctx: Context, f: RecordingFilter) -> mapping.RematchSummary:
    recs = [r for r in select(ctx, f) if r.status in mapping.UNTOUCHED or r.template_id is None]
    return mapping.rematch(ctx, recs, mapping.load_matcher(ctx))


def configure(ctx: Context, recording_id: int, assignments: list[str], *, reset: bool) -> Resolved:
    """Edit a recording's overrides (it stores only those) and return the resolved config."""
    rec = ctx.repos.recordings.require(recording_id)
    set_config(rec, assignments, reset=reset)
    return runs.resolved_config(ctx, rec)


def set_config(rec: Recording, assignments: list[str], *, reset: bool) -> None:
    """Apply `--set KEY=VALUE` (each checked against the processing options) or `--reset`
    to a recording's processing overrides."""
    overrides: dict[str, Any] = {} if reset else dict(rec.overrides)
    for assignment in assignments:
        overrides = set_override(overrides, assignment)
    if reset or assignments:
        rec.overrides = overrides


def set_meta(ctx: Context, rec: Recording, assignments: list[str], *, reset: bool) -> None:
    """Apply `--set KEY=VALUE` (metadata templates checked) or `--reset` to a recording's
    manual metadata overrides."""
    overrides: dict[str, Any] = {} if reset else dict(rec.meta_overrides)
    for assignment in assignments:
        if "=" not in assignment:
            raise UsageError(f"--set {assignment!r}: expected KEY=VALUE")
        key, raw = assignment.split("=", 1)
        overrides[key.strip()] = parse_value(raw)
    check_templates(overrides, "--set")
    if any(a.split("=", 1)[0].strip() == "path" for a in assignments):
        publishing.check_export_path(ctx, overrides.get("path"), "--set path")
    if reset or assignments:
        rec.meta_overrides = overrides


def edit_many(
    ctx: Context, ids: list[int], assignments: list[str], *, reset: bool, meta: bool
) -> int:
    """`recordings config|meta SELECTION --set ...`: the same edit on every recording, in the
    caller's one unit of work (a value refused for one leaves all unchanged). Recordings are
    read a page at a time."""
    done = 0
    for i in range(0, len(ids), _CHUNK):
        for rec in ctx.repos.recordings.search(RecordingQuery(ids=ids[i : i + _CHUNK])):
            if meta:
                set_meta(ctx, rec, assignments, reset=reset)
            else:
                set_config(rec, assignments, reset=reset)
            done += 1
    return done


def with_pipeline(ctx: Context, view: dict[str, Any], rec: Recording) -> dict[str, Any]:
    run = ctx.repos.runs.latest_for(rec.id)
    artifacts, results = runs.current_artifacts(ctx, rec.id)
    view["config"] = runs.resolved_config(ctx, rec).values
    view["stages"] = runs.run_view(ctx, run)["stages"] if run else []
    view["artifacts"] = artifacts
    view["trim"] = results.get("trim", {}).get("trim")
    return view


def configure_meta(
    ctx: Context, recording_id: int, assignments: list[str], *, reset: bool
) -> list[dict[str, Any]]:
    """Edit the recording's manual metadata overrides; return, per preset of its template,
    the merged values with their origins and exactly what would be sent."""
    rec = ctx.repos.recordings.require(recording_id)
    set_meta(ctx, rec, assignments, reset=reset)
    out = []
    for preset in publishing.template_presets(ctx, rec):
        meta = publishing.resolve_for(ctx, rec, preset)
        target = ctx.repos.targets.find(recording_id=rec.id, preset_id=preset.id)
        sent = meta.values
        if publishing.gate(ctx, rec, preset, target) is Gate.PRIVATE:
            sent = approval.held(meta.values)[0]  # what the gate uploads; approval does the rest
        required = publishing.requires_approval(ctx, rec, preset)
        out.append(
            {
                "preset": preset.name,
                "platform": preset.platform,
                "values": meta.values,
                "origins": meta.origins,
                "repairs": [r.__dict__ for r in meta.repairs],
                # docs/approval.md: null, "required" (the gate will hold it), "awaiting",
                # "approved"
                "approval": (target.approval if target is not None else None)
                or ("required" if required else None),
                "request": publishing.request_preview(
                    publishing.target_key(ctx, rec, preset), preset.platform, sent
                ),
            }
        )
    return out


def media_folder(ctx: Context, rec: Recording) -> Path:
    """Where the pipeline keeps this recording's files (pipeline.workspace's layout)."""
    return ctx.settings.media_path / f"user_{rec.user_id}" / "recordings" / str(rec.id)


def delete(ctx: Context, recording_id: int) -> tuple[Recording, Path]:
    """Delete a recording's row; its runs, stages and targets go with it (ON DELETE CASCADE
    in the database). Refused while a run is in progress: a worker would write into a
    recording that no longer exists. Returns the media folder to remove once committed
    (the files are not the database's: removing them first would lose them on a rollback).
    The source's own file (Zoom's copy, a local source's file) is never touched."""
    rec = ctx.repos.recordings.lock(recording_id)
    active = [
        r for r in ctx.repos.runs.list(recording_id=rec.id) if r.status == RunStatus.ACTIVE.value
    ]
    if rec.active_run_id is not None or active:
        run_id = rec.active_run_id or active[0].id
        raise Conflict(
            f"recording {rec.id} has a run in progress (run {run_id}); `leap cancel {rec.id}` first"
        )
    folder = media_folder(ctx, rec)
    me = ctx.repos.users.require(ctx.scope.user_id) if ctx.scope.user_id is not None else None
    audit.record(
        ctx,
        owner_id=rec.user_id if me is None else me.id,
        actor=me.name if me is not None else "system",
        action="recording.delete",
        subject=f"recording {rec.id}",
        title=rec.title[:200],
        owner=rec.user_id,
    )
    ctx.repos.recordings.delete(rec)
    return rec, folder


def remove_media(media_dir: Path, user_id: int, folder: Path) -> bool:
    """Remove a deleted recording's media folder, only if it lies inside the user's own
    media folder once every symlink is resolved (docs/paths.md): a folder swapped for a
    link elsewhere is left alone. True if something was removed."""
    own = real(media_dir / f"user_{user_id}")
    target = real(folder)
    if target == own or not inside(target, own) or not target.is_dir():
        return False
    # rmtree unlinks symlinks inside the folder; it never follows them.
    shutil.rmtree(target)
    return True
