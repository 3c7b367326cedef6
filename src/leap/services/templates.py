"""Templates: what a recording is. Stored rules, ordering, preset links, live re-matching."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from leap.context import Context
from leap.db.base import utcnow
from leap.db.models import Recording, Template, TemplatePreset
from leap.db.repos import RecordingQuery
from leap.errors import Conflict, UsageError
from leap.services import mapping, metering, publishing
from leap.specs.matching import compile_template, match_reason
from leap.specs.template import TemplateSpec, spec_from_dict


def to_spec(ctx: Context, tpl: Template) -> TemplateSpec:
    links = ctx.repos.template_presets.list(template_id=tpl.id, order_by=(TemplatePreset.position,))
    presets = {p.id: p.name for p in ctx.repos.presets.list()}
    return spec_from_dict(
        {
            "name": tpl.name,
            "order": tpl.position,
            "enabled": tpl.enabled,
            "approval": tpl.approval,
            "match": tpl.rules,
            "blank": tpl.blank,
            "processing": tpl.processing,
            "metadata": tpl.meta,
            "presets": [presets[link.preset_id] for link in links],
            "zoom_trash_after_days": tpl.zoom_trash_after_days,
        },
        origin=f"template '{tpl.name}'",
    )


def _store(ctx: Context, tpl: Template, spec: TemplateSpec) -> None:
    publishing.check_export_path(ctx, spec.metadata.get("path"), "metadata.path")
    tpl.name = spec.name
    tpl.position = spec.order
    tpl.enabled = spec.enabled
    tpl.rules = spec.match.model_dump(exclude_defaults=True)
    tpl.blank = spec.blank.model_dump(exclude_none=True)
    tpl.zoom_trash_after_days = spec.zoom_trash_after_days
    tpl.processing = dict(spec.processing)
    tpl.meta, tpl.approval = dict(spec.metadata), spec.approval
    preset_ids = [ctx.repos.presets.require_name(name).id for name in spec.presets]
    ctx.repos.template_presets.delete_where(template_id=tpl.id)
    for pos, pid in enumerate(preset_ids):
        ctx.repos.template_presets.add(
            TemplatePreset(template_id=tpl.id, preset_id=pid, position=pos)
        )


def _unmapped(ctx: Context) -> list[Recording]:
    return ctx.repos.recordings.list(template_id=None)


def add(ctx: Context, spec: TemplateSpec) -> tuple[Template, mapping.RematchSummary]:
    if ctx.repos.templates.by_name(spec.name) is not None:
        raise Conflict(f"template '{spec.name}' already exists (use 'leap template edit')")
    if spec.match.is_empty():
        raise UsageError(f"template '{spec.name}' has no [match] rule: it would match nothing")
    metering.check_room(ctx, "templates")
    tpl = ctx.repos.templates.add(Template(name=spec.name))
    _store(ctx, tpl, spec)
    ctx.session.flush()
    summary = mapping.rematch(ctx, _unmapped(ctx), mapping.load_matcher(ctx))
    return tpl, summary


def edit(ctx: Context, name: str, spec: TemplateSpec) -> tuple[Template, mapping.RematchSummary]:
    tpl = ctx.repos.templates.require_name(name)
    if spec.name != name and ctx.repos.templates.by_name(spec.name) is not None:
        raise Conflict(f"template '{spec.name}' already exists")
    if spec.match.is_empty():
        raise UsageError(f"template '{spec.name}' has no [match] rule: it would match nothing")
    _store(ctx, tpl, spec)
    ctx.session.flush()
    # Recordings already mapped keep their template (their processing may be under way);
    # unmapped ones get a new chance with the edited rules.
    summary = mapping.rematch(ctx, _unmapped(ctx), mapping.load_matcher(ctx))
    return tpl, summary


def remove(ctx: Context, name: str) -> int:
    """Delete a template; its recordings become unmapped and keep their status."""
    tpl = ctx.repos.templates.require_name(name)
    count = ctx.repos.recordings.update_where(
        {"template_id": None, "match_reason": None}, template_id=tpl.id
    )
    ctx.repos.templates.delete(tpl)
    return count


def list_templates(ctx: Context) -> list[Template]:
    return ctx.repos.templates.ordered()


def get(ctx: Context, name: str) -> Template:
    return ctx.repos.templates.require_name(name)


def reorder(ctx: Context, names: list[str]) -> list[Template]:
    """Put the named templates first, in the given order; the rest keep their relative order."""
    if len(set(names)) != len(names):
        raise UsageError("a template is named twice in the new order")
    named = [ctx.repos.templates.require_name(n) for n in names]
    rest = [t for t in ctx.repos.templates.ordered() if t.name not in set(names)]
    for i, tpl in enumerate(named + rest):
        tpl.position = (i + 1) * 10
    ctx.session.flush()
    return ctx.repos.templates.ordered()


@dataclass(frozen=True)
class TestHit:
    recording: Recording
    reason: str
    wins: bool  # False: an earlier template would take it
    current: str | None  # the template it is mapped to now
    winner: str | None  # who would win if this template were saved as given


def test(ctx: Context, spec: TemplateSpec, last_days: int | None) -> list[TestHit]:
    """Which existing recordings this template would match, and whether it would win.
    Changes nothing."""
    matcher = mapping.load_matcher(ctx)
    existing = ctx.repos.templates.by_name(spec.name)
    candidate = compile_template(
        existing.id if existing else -1, spec.name, spec.order, spec.match, spec.enabled
    )
    others = [t for t in matcher.templates if t.name != spec.name]
    matcher.templates = [*others, candidate]
    names = {t.id: t.name for t in ctx.repos.templates.list()}
    since = utcnow() - timedelta(days=last_days) if last_days is not None else None
    recs = ctx.repos.recordings.search(RecordingQuery(date_from=since))
    hits = []
    for rec in recs:
        reason = match_reason(candidate, matcher.facts(rec))
        if reason is None:
            continue
        win = matcher.match(rec)
        hits.append(
            TestHit(
                recording=rec,
                reason=reason,
                wins=win is not None and win.template_name == spec.name,
                current=names.get(rec.template_id) if rec.template_id else None,
                winner=win.template_name if win else None,
            )
        )
    return hits
