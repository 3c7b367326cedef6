"""Glue between stored rows and the pure matcher: compile a user's templates, build a
recording's facts in the owner's timezone, apply a match and the blank verdict."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from leap.context import Context
from leap.db.models import InputSource, Recording, Template
from leap.domain import RecordingStatus
from leap.services.users import current_user
from leap.specs.blank import BlankThresholds, blank_reason

# leap.specs.matching (with the `regex` package and the template spec's pydantic models, about
# 1.5 MB of RSS) is imported by the functions that match: `leap process` and leapd's stages
# import this module (through services.recordings) but never match anything.
if TYPE_CHECKING:
    from leap.specs.matching import CompiledTemplate, MatchResult, RecordingFacts

# Only recordings nobody has started on may change blank verdict (and so status) at sync.
UNTOUCHED = {RecordingStatus.INITIALIZED.value, RecordingStatus.SKIPPED.value}


@dataclass
class Matcher:
    """Everything needed to classify many recordings of one user without further queries."""

    templates: list[CompiledTemplate]
    by_id: dict[int, Template]
    sources: dict[int, InputSource]
    tz: ZoneInfo
    thresholds: BlankThresholds

    def facts(self, rec: Recording) -> RecordingFacts:
        from leap.specs.matching import RecordingFacts

        src = self.sources[rec.source_id]
        return RecordingFacts(
            title=rec.title,
            source_name=src.name,
            source_kind=src.kind,
            meeting_id=rec.meeting_id,
            host=rec.host,
            start_local=rec.start_time.astimezone(self.tz),
        )

    def match(self, rec: Recording) -> MatchResult | None:
        from leap.specs.matching import first_match

        return first_match(self.templates, self.facts(rec))

    def thresholds_for(self, template_id: int | None) -> BlankThresholds:
        tpl = self.by_id.get(template_id) if template_id is not None else None
        if tpl is None or not tpl.blank:
            return self.thresholds
        return self.thresholds.override(
            tpl.blank.get("min_duration_minutes"), tpl.blank.get("min_size_mb")
        )


def user_thresholds(ctx: Context) -> BlankThresholds:
    me = current_user(ctx)
    d = ctx.settings.defaults
    return BlankThresholds(
        float(me.defaults.get("blank_min_duration_minutes", d.blank_min_duration_minutes)),
        float(me.defaults.get("blank_min_size_mb", d.blank_min_size_mb)),
    )


def compile_rows(rows: Iterable[Template]) -> list[CompiledTemplate]:
    from leap.specs.matching import compile_template
    from leap.specs.template import MatchRules

    return [
        compile_template(t.id, t.name, t.position, MatchRules.model_validate(t.rules), t.enabled)
        for t in rows
    ]


def load_matcher(ctx: Context, extra: Sequence[Template] = ()) -> Matcher:
    rows = ctx.repos.templates.ordered()
    rows += [t for t in extra if t not in rows]
    me = current_user(ctx)
    return Matcher(
        templates=compile_rows(rows),
        by_id={t.id: t for t in rows},
        sources={s.id: s for s in ctx.repos.sources.list()},
        tz=ZoneInfo(me.timezone),
        thresholds=user_thresholds(ctx),
    )


def apply_blank(rec: Recording, thresholds: BlankThresholds) -> None:
    """Set the blank verdict; status follows it only while nothing has been done."""
    if rec.status not in UNTOUCHED:
        return
    reason = blank_reason(rec.duration_s, rec.size_bytes, thresholds)
    rec.blank_record = reason is not None
    rec.blank_reason = reason
    rec.status = (RecordingStatus.SKIPPED if reason else RecordingStatus.INITIALIZED).value


def apply_match(rec: Recording, result: MatchResult | None) -> None:
    rec.template_id = result.template_id if result else None
    rec.match_reason = f"{result.template_name}: {result.reason}" if result else None


@dataclass
class RematchSummary:
    examined: int = 0
    mapped: int = 0
    changed: list[int] = field(default_factory=list)


def rematch(ctx: Context, recordings: Iterable[Recording], matcher: Matcher) -> RematchSummary:
    summary = RematchSummary()
    for rec in recordings:
        summary.examined += 1
        result = matcher.match(rec)
        new_id = result.template_id if result else None
        if new_id != rec.template_id:
            summary.changed.append(rec.id)
        apply_match(rec, result)
        apply_blank(rec, matcher.thresholds_for(new_id))
        if new_id is not None:
            summary.mapped += 1
    ctx.session.flush()
    return summary
