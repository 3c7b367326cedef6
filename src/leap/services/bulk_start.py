"""Starting runs for many recordings at once (`leap process`, the stage verbs, automation),
and saying beforehand what starting them would do (`--dry-run`).

Both go through `Planner.plan`, page by page: a page of recordings is read with a constant
number of queries (the recordings, the stages earlier runs finished, the targets), each
recording is judged by the pure `specs.startable.decide`, and a real run then starts the
page's accepted recordings in the caller's one unit of work: the runs, the per-recording
lock (one UPDATE for the page), the stages, and the queue messages, sent once it commits
(docs/cli.md, "Bulk work and --dry-run")."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from leap.context import Context
from leap.db.base import utcnow
from leap.db.models import Recording, TemplatePreset, User
from leap.db.repos import RecordingQuery
from leap.domain import (
    Approval,
    CredentialStatus,
    RecordingStatus,
    Stage,
    StageStatus,
    TargetStatus,
)
from leap.services import metering, recordings, runs
from leap.services.recordings import RecordingFilter
from leap.specs import startable
from leap.specs.processing import processing_layers, resolve
from leap.specs.startable import Decision, Facts

# Recordings per page: per page a constant number of statements, and one unit of work.
PAGE = 500
# What the decision and the start read of a recording: its file list and metadata, JSON a
# page does not need, are left in the database.
COLUMNS = (
    "id",
    "user_id",
    "source_id",
    "title",
    "status",
    "blank_record",
    "blank_reason",
    "template_id",
    "active_run_id",
    "overrides",
    "start_time",
)
# One queue message carries the first stages of a whole page; leapd fans it out
# (tasks.STAGE_BATCH). A page with this many runs or fewer sends one message per run, as a
# single `leap process 5` always did: no extra hop.
BATCH_TASK = "leap.stage_batch"
ONE_BY_ONE = 16

_MEANWHILE = "already being processed (started meanwhile)"


def _settled(target: tuple[str, str | None] | None) -> bool:
    """A target no run has work for: uploaded, or held for `leap approve` (which, not a run,
    moves it on; docs/approval.md)."""
    if target is None:
        return False
    status, approval = target
    return status == TargetStatus.UPLOADED.value or approval == Approval.AWAITING.value


@dataclass
class Started:
    """What a real run did with one page."""

    decisions: list[Decision]
    run_of: dict[int, int] = field(default_factory=dict)  # recording id -> its new run
    first_stage_of: dict[int, int] = field(default_factory=dict)  # recording id -> stage id
    stages_of: dict[int, list[str]] = field(default_factory=dict)


class Planner:
    """What every decision of one command shares, loaded once: the owners' defaults, the
    templates, the presets of each template, the sources and the credentials' health."""

    def __init__(
        self,
        ctx: Context,
        *,
        stages: Sequence[str] | None = None,
        force: bool = False,
        skip_done: bool = True,
    ) -> None:
        self.stages = list(stages) if stages else None
        self.force = force
        self.skip_done = skip_done
        self.users: dict[int, User] = {}
        self.templates = {t.id: t for t in ctx.repos.templates.list()}
        self.presets = {p.id: p for p in ctx.repos.presets.list()}
        self.sources = {s.id: s for s in ctx.repos.sources.list()}
        self.dead_credentials = {
            c.id: c.name
            for c in ctx.repos.credentials.list()
            if c.status == CredentialStatus.NEEDS_REAUTH.value
        }
        self.preset_ids: dict[int, list[int]] = {}
        for link in ctx.repos.template_presets.list(order_by=(TemplatePreset.position,)):
            self.preset_ids.setdefault(link.template_id, []).append(link.preset_id)
        self._configs: dict[tuple[int, int | None, str], dict[str, Any]] = {}
        self.budgets: dict[int, metering.Budget] = {}

    def config(self, ctx: Context, rec: Recording) -> dict[str, Any]:
        """The resolved processing config (user defaults -> template -> the recording's
        overrides), computed once per distinct combination."""
        overrides = rec.overrides
        key = (
            rec.user_id,
            rec.template_id,
            json.dumps(overrides, sort_keys=True) if overrides else "",
        )
        if key not in self._configs:
            if rec.user_id not in self.users:
                self.users[rec.user_id] = ctx.repos.users.require(rec.user_id)
            tpl = self.templates.get(rec.template_id) if rec.template_id is not None else None
            self._configs[key] = resolve(
                processing_layers(
                    self.users[rec.user_id].defaults.get("processing", {}),
                    tpl.processing if tpl else None,
                    rec.overrides,
                )
            ).values
        return self._configs[key]

    def planned(self, ctx: Context, rec: Recording) -> list[str]:
        # The config's own list: one object for many runs, so it is converted once.
        return self.stages or self.config(ctx, rec)["stages"]

    def judge(
        self, ctx: Context, recs: Sequence[Recording], *, lock: bool = False
    ) -> list[Decision]:
        """One decision per recording of a page, in the page's order. An accepted start
        then takes its owner's quota (services/metering.py): a --dry-run's budget runs on
        across pages, so what would wait shows; a real start (`lock`) recounts each page
        with the owner's row locked, so two starts cannot both take the last unit."""
        ids = [r.id for r in recs]
        finished = ctx.repos.stages.finished_names(ids) if ids else {}
        targets = ctx.repos.targets.states_for(ids) if ids else {}
        decisions = [
            startable.decide(
                self._facts(ctx, r, finished.get(r.id, set()), targets.get(r.id, {})),
                self.planned(ctx, r),
                force=self.force,
                skip_done=self.skip_done,
            )
            for r in recs
        ]
        owner = {r.id: r.user_id for r in recs}
        acting = sorted({owner[d.recording_id] for d in decisions if d.act})
        if lock:
            self.budgets = {}
        for uid in acting:  # in id order: two starts lock users in the same order
            if uid not in self.budgets:
                self.budgets[uid] = metering.budget(ctx, uid, lock=lock)
            self.budgets[uid].learn(ctx, [r.id for r in recs if r.user_id == uid])
        out = []
        for d in decisions:
            refusal = self.budgets[owner[d.recording_id]].take(d.recording_id) if d.act else None
            out.append(d if refusal is None else startable.waits_for_quota(d, refusal.message))
        return out

    def _facts(
        self,
        ctx: Context,
        rec: Recording,
        finished: set[str],
        targets: dict[int, tuple[str, str | None]],
    ) -> Facts:
        presets = self.preset_ids.get(rec.template_id, []) if rec.template_id else []
        published = all(_settled(targets.get(p)) for p in presets)
        dead: dict[str, str] = {}
        src = self.sources.get(rec.source_id)
        if src is not None and src.credential_id in self.dead_credentials:
            dead[Stage.DOWNLOAD.value] = self.dead_credentials[src.credential_id]
        for pid in presets:
            preset = self.presets.get(pid)
            if preset is not None and preset.credential_id in self.dead_credentials:
                dead.setdefault(Stage.UPLOAD.value, self.dead_credentials[preset.credential_id])
        return startable.facts_of(rec, finished=frozenset(finished), published=published, dead=dead)

    def start(self, ctx: Context, recs: Sequence[Recording]) -> Started:
        """Judge a page and start a run for every recording the decision accepts, in the
        caller's unit of work. A recording another process started meanwhile loses the
        lock and is reported as running; its run row goes again."""
        decisions = self.judge(ctx, recs, lock=True)
        accepted = {d.recording_id for d in decisions if d.act}
        chosen = [r for r in recs if r.id in accepted]
        out = Started(decisions)
        if not chosen:
            return out
        now = utcnow()
        plans = {r.id: self.planned(ctx, r) for r in chosen}
        run_of = ctx.repos.runs.add_many(
            [
                {
                    "recording_id": r.id,
                    "user_id": r.user_id,
                    "stages": plans[r.id],
                    "config": self.config(ctx, r),
                    "forced": self.force,
                    "created_at": now,
                    "updated_at": now,
                }
                for r in chosen
            ]
        )
        won = ctx.repos.recordings.lock_for_runs(run_of, RecordingStatus.QUEUED.value)
        lost = [rid for rid in run_of if rid not in won]
        if lost:
            ctx.repos.runs.delete_ids([run_of[rid] for rid in lost])
            out.decisions = [
                Decision(d.recording_id, d.title, False, _MEANWHILE, startable.CONFLICT)
                if d.recording_id in lost
                else d
                for d in decisions
            ]
        stage_rows: list[dict[str, Any]] = []
        winners = [r for r in chosen if r.id in won]
        metering.record_starts(ctx, self.budgets, {r.id: r.user_id for r in winners})
        for r in winners:
            attempts = int(self.config(ctx, r)["retries"]["max_attempts"])
            for pos, name in enumerate(plans[r.id]):
                stage_rows.append(
                    {
                        "run_id": run_of[r.id],
                        "recording_id": r.id,
                        "user_id": r.user_id,
                        "name": name,
                        "position": pos,
                        "max_attempts": attempts,
                        "status": (StageStatus.QUEUED if pos == 0 else StageStatus.PENDING).value,
                        "queued_at": now if pos == 0 else None,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
        stage_ids = ctx.repos.stages.add_many(stage_rows)
        for r in winners:
            out.first_stage_of[r.id] = stage_ids[(run_of[r.id], 0)]
        out.run_of = {rid: run_of[rid] for rid in won}
        out.stages_of = {r.id: plans[r.id] for r in winners}
        firsts = list(out.first_stage_of.values())
        if len(firsts) <= ONE_BY_ONE:
            for sid in firsts:
                ctx.defer_enqueue(runs.STAGE_TASK, stage_id=sid)
        else:
            ctx.defer_enqueue(BATCH_TASK, stage_ids=firsts)
        return out


def count(ctx: Context, f: RecordingFilter) -> int:
    """How many recordings FILTERS select (a progress bar's total), --offset and --limit
    applied. Unknown names in FILTERS fail here, before anything is done."""
    total = max(0, ctx.repos.recordings.count_matching(recordings.resolve(ctx, f)) - f.offset)
    return min(total, f.limit) if f.limit is not None else total


class Cursor:
    """The recordings FILTERS select, newest first, a page per call, each read in the
    caller's unit of work. Paged by keyset: a page started between two reads leaves the
    filter (its status changed) without shifting the next page over unseen rows."""

    def __init__(self, f: RecordingFilter, page: int = PAGE) -> None:
        self.filter, self.page = f, page
        self.left = f.limit
        self.after: tuple[Any, int] | None = None
        self.first = True
        self.ended = False

    def next(self, ctx: Context) -> list[Recording]:
        if self.ended or (self.left is not None and self.left <= 0):
            return []
        size = self.page if self.left is None else min(self.page, self.left)
        q = replace(
            recordings.resolve(ctx, self.filter),
            limit=size,
            offset=self.filter.offset if self.first else 0,
            after=self.after,
            only=COLUMNS,
        )
        batch = ctx.repos.recordings.search(q)
        self.first = False
        if self.left is not None:
            self.left -= len(batch)
        if len(batch) < size:
            self.ended = True
        if batch:
            self.after = (batch[-1].start_time, batch[-1].id)
        return batch


def id_page(ctx: Context, ids: Sequence[int]) -> tuple[list[Recording], list[Decision]]:
    """One page of given ids: the recordings the acting user can see, in the given order,
    and a "not found" decision for each other id (missing, or another user's: the scope
    hides those), which is never acted on."""
    query = RecordingQuery(ids=list(ids), only=COLUMNS)
    found = {r.id: r for r in ctx.repos.recordings.search(query)}
    return (
        [found[i] for i in ids if i in found],
        [startable.not_found(i) for i in ids if i not in found],
    )
