"""Output presets: where and how a recording is published; many templates share one."""

from __future__ import annotations

from leap.context import Context
from leap.db.models import OutputPreset
from leap.errors import Conflict, UsageError
from leap.services import metering, publishing
from leap.specs.preset import PresetSpec

CREDENTIAL_KIND = {"youtube": "youtube", "vk": "vk"}


def _credential_id(ctx: Context, spec: PresetSpec) -> int | None:
    if spec.platform == "local" or spec.credential is None:
        return None
    cred = ctx.repos.credentials.require_name(spec.credential)
    if cred.kind != CREDENTIAL_KIND[spec.platform]:
        raise UsageError(f"credential '{cred.name}' is {cred.kind}, not {spec.platform}")
    return cred.id


def _check_paths(ctx: Context, spec: PresetSpec) -> None:
    if spec.platform == "local":
        publishing.check_export_path(ctx, spec.metadata.get("path"), "metadata.path")


def add(ctx: Context, spec: PresetSpec) -> OutputPreset:
    _check_paths(ctx, spec)
    if ctx.repos.presets.by_name(spec.name) is not None:
        raise Conflict(f"preset '{spec.name}' already exists (use 'leap preset edit')")
    metering.check_room(ctx, "presets")
    return ctx.repos.presets.add(
        OutputPreset(
            name=spec.name,
            platform=spec.platform,
            credential_id=_credential_id(ctx, spec),
            meta=dict(spec.metadata),
            approval=spec.approval,
        )
    )


def edit(ctx: Context, name: str, spec: PresetSpec) -> OutputPreset:
    preset = ctx.repos.presets.require_name(name)
    _check_paths(ctx, spec)
    if spec.name != name and ctx.repos.presets.by_name(spec.name) is not None:
        raise Conflict(f"preset '{spec.name}' already exists")
    preset.name, preset.platform = spec.name, spec.platform
    preset.credential_id = _credential_id(ctx, spec)
    preset.meta, preset.approval = dict(spec.metadata), spec.approval
    return preset


def remove(ctx: Context, name: str) -> None:
    preset = ctx.repos.presets.require_name(name)
    used = [
        t.name
        for t in ctx.repos.templates.list()
        if ctx.repos.template_presets.find(template_id=t.id, preset_id=preset.id)
    ]
    if used:
        raise Conflict(f"preset '{name}' is used by template(s) {', '.join(sorted(used))}")
    ctx.repos.presets.delete(preset)


def list_presets(ctx: Context) -> list[OutputPreset]:
    return ctx.repos.presets.list(order_by=(OutputPreset.name,))


def get(ctx: Context, name: str) -> OutputPreset:
    return ctx.repos.presets.require_name(name)
