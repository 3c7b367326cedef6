"""What a recording is published as: its output targets (one per template preset, each with
an idempotency key) and the metadata each target gets, resolved and rendered."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from leap import views
from leap.artifacts import load as load_artifact
from leap.context import Context
from leap.db.base import utcnow
from leap.db.models import OutputPreset, OutputTarget, Recording, TemplatePreset
from leap.domain import TargetStatus
from leap.errors import UsageError
from leap.path_policy import own_folders
from leap.providers.youtube import add_marker
from leap.services import runs, users
from leap.specs import approval
from leap.specs.metadata import (
    RENDERED,
    Repair,
    parse_publish_at,
    preflight_vk,
    preflight_youtube,
    resolve_metadata,
    vk_save_params,
    youtube_body,
)
from leap.specs.rendering import RenderContext, for_paths, render
from leap.text.topics import Topics


def idempotency_key(recording_id: int, preset_id: int) -> str:
    # Stable across retries and restarts; it is also the marker put on the published video.
    return "leap-" + hashlib.sha256(f"{recording_id}:{preset_id}".encode()).hexdigest()[:24]


def template_presets(ctx: Context, rec: Recording) -> list[OutputPreset]:
    if rec.template_id is None:
        return []
    links = ctx.repos.template_presets.list(
        template_id=rec.template_id, order_by=(TemplatePreset.position,)
    )
    return [ctx.repos.presets.require(link.preset_id) for link in links]


def ensure_targets(ctx: Context, rec: Recording) -> list[tuple[OutputTarget, OutputPreset]]:
    """One target per preset of the recording's template (read live), created once."""
    out = []
    for preset in template_presets(ctx, rec):
        target = ctx.repos.targets.find(recording_id=rec.id, preset_id=preset.id)
        if target is None:
            target = ctx.repos.targets.add(
                OutputTarget(
                    recording_id=rec.id,
                    preset_id=preset.id,
                    user_id=rec.user_id,
                    platform=preset.platform,
                    status=TargetStatus.PENDING.value,
                    idempotency_key=idempotency_key(rec.id, preset.id),
                )
            )
        out.append((target, preset))
    return out


def reset_for_republish(target: OutputTarget) -> bool:
    """Forget a target's publication so a forced run publishes it again, as a new video under
    a new idempotency key (the old marker would lead lookups back to the old video). False
    when there is nothing to forget."""
    if not (
        target.status == TargetStatus.UPLOADED.value
        or target.remote_id
        or target.upload_session_uri
    ):
        return False
    target.status = TargetStatus.PENDING.value
    target.remote_id = target.url = target.upload_session_uri = None
    target.upload_offset = target.upload_total = 0
    target.sent_metadata, target.error, target.uploaded_at = {}, None, None
    # A new video is a new publication: the gate, if any, holds it again (docs/approval.md).
    target.approval = target.approved_at = target.publish_at = None
    target.idempotency_key = "leap-" + secrets.token_hex(12)
    return True


def requires_approval(ctx: Context, rec: Recording, preset: OutputPreset) -> bool:
    """The gate: the preset or the recording's template says `approval = true`."""
    tpl = ctx.repos.templates.get(rec.template_id) if rec.template_id is not None else None
    return preset.approval or (tpl is not None and tpl.approval)


def gate(
    ctx: Context, rec: Recording, preset: OutputPreset, target: OutputTarget | None
) -> approval.Gate:
    """What the approval gate does with this target when the upload stage reaches it."""
    sent = (target.sent_metadata or {}) if target is not None else {}
    return approval.at_upload(
        platform=preset.platform,
        approval=target.approval if target is not None else None,
        gated=requires_approval(ctx, rec, preset),
        # Something already went out for it (a YouTube session, a VK slot): it goes on.
        started=target is not None
        and bool(target.upload_session_uri or target.remote_id or sent.get("vk_slot")),
        publish_at=target.publish_at if target is not None else None,
        now=utcnow(),
    )


def youtube_request(values: Mapping[str, Any], key: str) -> dict[str, Any]:
    """The videos.insert body exactly as sent: the resource with LEAP's marker tag."""
    return add_marker(youtube_body(dict(values)), key)


def vk_request(values: Mapping[str, Any], key: str) -> dict[str, str]:
    """The video.save parameters exactly as sent: the marker line ends the description."""
    params = dict(vk_save_params(dict(values)))
    params["description"] = (params.get("description", "") + f"\n\n#{key}").strip()
    return params


def target_key(ctx: Context, rec: Recording, preset: OutputPreset) -> str:
    target = ctx.repos.targets.find(recording_id=rec.id, preset_id=preset.id)
    return target.idempotency_key if target is not None else idempotency_key(rec.id, preset.id)


def request_preview(key: str, platform: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """What publishing would send for these values: the request body per platform, or for a
    local export the folder and the metadata.json fields."""
    if platform == "youtube":
        return youtube_request(values, key)
    if platform == "vk":
        return dict(vk_request(values, key))
    fields = ("title", "description", "tags")
    return {"folder": values.get("path"), "metadata.json": {k: values.get(k) for k in fields}}


@dataclass(frozen=True)
class Metadata:
    values: dict[str, Any]  # rendered and repaired: exactly what would be sent
    origins: dict[str, str]
    repairs: list[Repair]


def render_context(ctx: Context, rec: Recording) -> RenderContext:
    """Everything a metadata template may refer to, in the owner's timezone."""
    user = ctx.repos.users.require(rec.user_id)
    tpl = ctx.repos.templates.get(rec.template_id) if rec.template_id is not None else None
    src = ctx.repos.sources.require(rec.source_id)
    artifacts, results = runs.current_artifacts(ctx, rec.id)
    topics: Topics | None = None
    if artifacts.get("topics") and Path(artifacts["topics"]).is_file():
        topics = load_artifact(Path(artifacts["topics"]), "topics", Topics.from_storage)
    trim = (results.get("trim") or {}).get("trim") or {}
    duration = (float(trim["end_s"]) - float(trim["start_s"])) if trim else rec.duration_s
    display = str((tpl.meta.get("display_name") if tpl else None) or rec.title)
    return RenderContext(
        title=rec.title,
        display_name=display,
        host=rec.host or "",
        template=tpl.name if tpl else "",
        source=src.name,
        record_time=rec.start_time,
        publish_time=None,
        duration_s=duration,
        themes=list(topics.themes) if topics else [],
        topics=topics,
        tz=ZoneInfo(user.timezone),
    )


def resolve_for(ctx: Context, rec: Recording, preset: OutputPreset) -> Metadata:
    """preset -> template -> recording override, deep-merged; strings rendered; then the
    platform's pre-flight repairs."""
    tpl = ctx.repos.templates.get(rec.template_id) if rec.template_id is not None else None
    values, origins = resolve_metadata(
        preset.meta,
        tpl.meta if tpl else {},
        rec.meta_overrides,
    )
    if preset.platform == "local" and not values.get("path"):
        exports = own_folders(ctx.settings.data_path, rec.user_id)[1]
        values["path"] = str(exports / "{template}" / "{record_time:YYYY-MM-DD} {title}")
        origins["path"] = "default"
    rc = render_context(ctx, rec)
    publish_at = values.get("publish_at")
    if publish_at:
        rc = replace(rc, publish_time=parse_publish_at(publish_at, "metadata.publish_at"))
    display = str(values.get("topics_display") or "timestamps")
    stamps = bool(values.get("show_timestamps", True))
    for key in RENDERED:
        if isinstance(values.get(key), str):
            values[key] = render(
                values[key],
                for_paths(rc) if key == "path" else rc,
                topics_display=display,
                show_timestamps=stamps,
                where=f"metadata.{key}",
            )
    if isinstance(values.get("tags"), list):
        values["tags"] = [render(str(t), rc, where="metadata.tags") for t in values["tags"]]
    values.setdefault("title", rec.title)
    repairs: list[Repair] = []
    if preset.platform == "youtube":
        values, repairs = preflight_youtube(values)
    elif preset.platform == "vk":
        values, repairs = preflight_vk(values)
    return Metadata(values, origins, repairs)


def target_view(ctx: Context, target: OutputTarget) -> dict[str, Any]:
    preset = ctx.repos.presets.get(target.preset_id)
    return views.target_view(target, preset.name if preset else None)


def check_export_path(ctx: Context, value: Any, where: str) -> None:
    """An export folder template, checked when saved: the part before the first `{` must be a
    folder the acting user may write (docs/paths.md); the rendered folder is checked again at
    upload, when the values are known."""
    if value is None:
        return
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{where}: an export path is a non-empty string")
    fixed = value.split("{", 1)[0]
    if "{" in value:
        fixed = fixed[: fixed.rfind("/") + 1]  # the folders before the first rendered value
    if not fixed.startswith(("/", "~/")) and fixed != "~":
        raise UsageError(f"{where} {value!r}: an export path starts with '/' or '~/'")
    users.path_policy(ctx).check(fixed, what=where)
