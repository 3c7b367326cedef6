"""Stable, JSON-ready views of entities: the keys `--json` promises to scripts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from leap.db.models import (
    Credential,
    InputSource,
    OutputPreset,
    OutputTarget,
    PipelineRun,
    Plan,
    Recording,
    StageResult,
    Template,
    User,
)
from leap.domain import StageStatus
from leap.logs import redact


def id_ranges(ids: Iterable[int]) -> str:
    """`1-5,9`: ids written as short ranges, each once, in order."""
    parts: list[str] = []
    ordered = sorted(set(ids))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def user_view(user: User, plan: Plan | None = None) -> dict[str, Any]:
    plan = plan if plan is not None else user.plan
    return {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "role": user.role,
        "timezone": user.timezone,
        "plan": plan.name if plan else None,
        "disabled": user.disabled,
        # Folders an admin allowed (leap user set-roots); null: the install-wide [paths] roots.
        "roots": user.allowed_roots,
        "created_at": iso(user.created_at),
    }


def _error(text: str | None) -> str | None:
    # Errors quote provider answers; rows written before redaction covered every encoded
    # form of a secret are cleaned on the way out too.
    return None if text is None else redact(text)


def recording_view(rec: Recording, source: str | None, template: str | None) -> dict[str, Any]:
    return {
        "id": rec.id,
        "external_id": rec.external_id,
        "source": source,
        "title": rec.title,
        "host": rec.host,
        "start_time": iso(rec.start_time),
        "duration_s": rec.duration_s,
        "size_bytes": rec.size_bytes,
        "status": rec.status,
        "blank_record": rec.blank_record,
        "blank_reason": rec.blank_reason,
        "template": template,
        "match_reason": rec.match_reason,
        "progress": rec.progress,
        "error": _error(rec.error),
    }


def credential_view(cred: Credential) -> dict[str, Any]:
    return {
        "id": cred.id,
        "name": cred.name,
        "kind": cred.kind,
        "status": cred.status,
        "status_reason": _error(cred.status_reason),
        "public": cred.public,
        "expires_at": iso(cred.expires_at),
        "last_used_at": iso(cred.last_used_at),
        "created_at": iso(cred.created_at),
    }


def source_view(src: InputSource, credential: str | None, recordings: int) -> dict[str, Any]:
    return {
        "id": src.id,
        "name": src.name,
        "kind": src.kind,
        "enabled": src.enabled,
        "credential": credential,
        "zoom_user": src.config.get("zoom_user"),
        "path": src.config.get("path"),
        "recordings": recordings,
        "last_synced_at": iso(src.last_synced_at),
        "last_sync_window_end": iso(src.last_sync_window_end),
        "last_sync_error": _error(src.last_sync_error),
    }


def template_view(tpl: Template, presets: list[str], recordings: int) -> dict[str, Any]:
    return {
        "id": tpl.id,
        "name": tpl.name,
        "order": tpl.position,
        "enabled": tpl.enabled,
        "approval": tpl.approval,
        "match": tpl.rules,
        "blank": tpl.blank,
        "processing": tpl.processing,
        "metadata": tpl.meta,
        "presets": presets,
        "zoom_trash_after_days": tpl.zoom_trash_after_days,
        "recordings": recordings,
    }


def preset_view(p: OutputPreset, credential: str | None) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "platform": p.platform,
        "credential": credential,
        "approval": p.approval,
        "metadata": p.meta,
    }


def stage_view(st: StageResult, fraction: float | None) -> dict[str, Any]:
    return {
        "name": st.name,
        "status": st.status,
        "attempts": st.attempts,
        # null for a failed or cancelled stage: it shows "failed", never a percentage.
        "progress": None if fraction is None else round(fraction * 100),
        "started_at": iso(st.started_at),
        "finished_at": iso(st.finished_at),
        "error": st.error,
        # A queued stage that waits on purpose (a batch job, a quota's reset): why, and until.
        "waiting": st.result.get("waiting") if st.status == StageStatus.QUEUED.value else None,
        "not_before": iso(st.not_before) if st.status == StageStatus.QUEUED.value else None,
        "run_id": st.run_id,
    }


def run_view(
    run: PipelineRun, stages: list[StageResult], fractions: list[float | None]
) -> dict[str, Any]:
    """A run and its stages (in order, each with its progress fraction or None)."""
    return {
        "run_id": run.id,
        "recording_id": run.recording_id,
        "status": run.status,
        "forced": run.forced,
        "created_at": iso(run.created_at),
        "finished_at": iso(run.finished_at),
        "error": run.error,
        "exit_code": next(
            (
                int(s.result.get("exit_code", 1))
                for s in stages
                if s.status == StageStatus.FAILED.value
            ),
            None,
        ),
        "stages": [stage_view(s, f) for s, f in zip(stages, fractions, strict=True)],
    }


def target_view(target: OutputTarget, preset: str | None) -> dict[str, Any]:
    return {
        "preset": preset,
        "platform": target.platform,
        "status": target.status,
        "remote_id": target.remote_id,
        "url": target.url,
        "error": target.error,
        # The approval gate (docs/approval.md): null, "awaiting" or "approved".
        "approval": target.approval,
        "approved_at": iso(target.approved_at),
        "publish_at": iso(target.publish_at),
        "repairs": target.repairs,
        # Extras of a YouTube publish that ended in a warning (thumbnail refused, ...).
        "warnings": [
            f"{step}: {outcome.removeprefix('warning: ')}"
            for step, outcome in ((target.sent_metadata or {}).get("youtube_steps") or {}).items()
            if str(outcome).startswith("warning: ")
        ],
    }
