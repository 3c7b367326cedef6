"""A hand-built install for the usage report and admin statistics tests: five users on four
plans in four timezones, custom limits (one for good, one until a future date, one expired),
usage events on both sides of each user's period start, recordings on two templates, runs
and failed stages. The expected figures are written out by hand in the tests, from the
comments here; NOW is fixed, so every period is known.

    user   plan        timezone          start day  current period (UTC)
    root   free, admin UTC               1 Jan      2026-03-01 00:00 .. 2026-04-01 00:00
    alice  free        Europe/Berlin     15         2026-03-14 23:00 .. 2026-04-14 22:00
    bob    plus, off   America/New_York  31         2026-02-28 05:00 .. 2026-03-31 04:00
    carol  enterprise  Asia/Tokyo        20         2026-03-19 15:00 .. 2026-04-19 15:00
    dave   pro         UTC               1 Nov      2026-03-01 00:00 .. 2026-04-01 00:00
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from leap.context import Runtime, open_context
from leap.db import models as m
from leap.db.scope import Scope
from leap.domain import Role
from leap.services import users

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


def t(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def build(runtime: Runtime) -> dict[str, int]:
    """The install above; returns each user's id."""
    ids: dict[str, int] = {}
    people = [
        ("root", Role.ADMIN, "free", "UTC", t(2026, 1, 1, 9)),
        ("alice", Role.USER, "free", "Europe/Berlin", t(2025, 6, 15, 10)),
        ("bob", Role.USER, "plus", "America/New_York", t(2025, 1, 31, 12)),
        ("carol", Role.USER, "enterprise", "Asia/Tokyo", t(2025, 12, 19, 20)),
        ("dave", Role.USER, "pro", "UTC", t(2025, 11, 1)),
    ]
    with open_context(runtime, Scope.system_scope()) as ctx:
        for name, role, plan, tz, created in people:
            user = users.create_user(ctx, name, role=role, timezone=tz, plan=plan)
            user.created_at = created
            ids[name] = user.id
        ctx.repos.users.require(ids["bob"]).disabled = True
    a, b, c, d = ids["alice"], ids["bob"], ids["carol"], ids["dave"]
    with open_context(runtime, Scope.system_scope()) as ctx:
        add = ctx.session.add
        # Custom limits: alice's uploads 2 until a future date (applies), her recordings 100
        # until a past one (does not: the plan's 10 stands); bob's minutes unlimited for good.
        add(m.QuotaOverride(user_id=a, key="uploads_per_month", value=2, until=t(2026, 12, 31)))
        add(m.QuotaOverride(user_id=a, key="recordings_per_month", value=100, until=t(2026, 3, 1)))
        add(m.QuotaOverride(user_id=b, key="transcription_minutes_per_month", value=None))
        recs = _recordings(ctx, a, b, c)
        lect, sem, r3, _r4, _r5, r6 = recs
        events: list[tuple[int, str, float, int | None, datetime]] = [
            # alice: 9 recordings (5 on "lectures"), 60 + 40 paid minutes, 500 local, 50,000
            # tokens, 2 YouTube uploads in her period; 1,000 paid minutes the hour before it.
            *[
                (a, "recordings", 1, lect if i < 5 else None, t(2026, 3, 15, 10, i))
                for i in range(9)
            ],
            (a, "transcription_minutes", 60, lect, t(2026, 3, 14, 23, 30)),  # 00:30 on the 15th
            (a, "transcription_minutes", 40, sem, t(2026, 3, 16, 8)),
            (a, "transcription_minutes", 1000, lect, t(2026, 3, 14, 22, 30)),  # 23:30, the 14th
            (a, "local_transcription_minutes", 500, None, t(2026, 3, 17)),
            (a, "llm_tokens", 50_000, None, t(2026, 3, 18)),
            (a, "youtube_uploads", 1, None, t(2026, 3, 19)),
            (a, "youtube_uploads", 1, None, t(2026, 3, 19, 1)),
            # bob: 900,000 tokens in his period, 500,000 half an hour before it.
            (b, "llm_tokens", 900_000, r3, t(2026, 2, 28, 5, 30)),
            (b, "llm_tokens", 500_000, r3, t(2026, 2, 28, 4, 30)),
            # carol: 5,000 paid minutes in her period, 3 VK uploads an hour before it.
            (c, "transcription_minutes", 5000, r6, t(2026, 3, 19, 16)),
            (c, "vk_uploads", 3, r6, t(2026, 3, 19, 14)),
            # dave: long ago; the second one before the six months shown.
            (d, "recordings", 1, None, t(2026, 1, 5)),
            (d, "llm_tokens", 7, None, t(2025, 9, 30)),
        ]
        for uid, kind, amount, rid, at in events:
            add(m.UsageEvent(user_id=uid, kind=kind, amount=amount, recording_id=rid, at=at))
        _runs(ctx, a, b, d, recs)
    return ids


def _recordings(ctx: Any, a: int, b: int, c: int) -> list[int]:
    """alice: "lectures" (failed transcribe), "seminars" (failed download), one in progress;
    bob: two failed; carol: one initialized."""
    ids = []
    for uid, src_name in ((a, "a-in"), (b, "b-in"), (c, "c-in")):
        ctx.session.add(m.InputSource(user_id=uid, name=src_name, kind="local", config={}))
    ctx.session.flush()
    src = {s.user_id: s.id for s in ctx.session.query(m.InputSource).all()}
    lectures = m.Template(user_id=a, name="lectures")
    seminars = m.Template(user_id=a, name="seminars")
    ctx.session.add_all([lectures, seminars])
    ctx.session.flush()
    for uid, tpl, status in (
        (a, lectures.id, "failed"),
        (a, seminars.id, "failed"),
        (b, None, "failed"),
        (b, None, "failed"),
        (a, None, "downloading"),
        (c, None, "initialized"),
    ):
        rec = m.Recording(
            user_id=uid,
            source_id=src[uid],
            external_id=f"r{len(ids)}",
            start_time=t(2026, 3, 1),
            template_id=tpl,
            status=status,
        )
        ctx.session.add(rec)
        ctx.session.flush()
        ids.append(rec.id)
    return ids


def _runs(ctx: Any, a: int, b: int, d: int, recs: list[int]) -> None:
    """Stage rows: download 4 finished / 2 failed (404 from Zoom twice), trim 2 / 0,
    transcribe 2 / 1 (429), upload 1 / 1 (re-authenticate, exit 5); alice has a run in
    progress; dave's only run changed on 10 January (he is not active)."""
    lect, sem, r3, r4, r5, _r6 = recs
    plan: list[tuple[int, int, str, datetime, list[tuple[str, str, str | None, int]]]] = [
        (
            a,
            lect,
            "failed",
            t(2026, 3, 16),
            [
                ("download", "done", None, 0),
                ("trim", "done", None, 0),
                ("transcribe", "failed", "HTTP 429 from Fireworks: slow down (recording 1)", 1),
            ],
        ),
        (
            a,
            sem,
            "failed",
            t(2026, 3, 16),
            [
                ("download", "failed", "HTTP 404 from Zoom: meeting 123 is gone", 1),
            ],
        ),
        (
            b,
            r3,
            "failed",
            t(2026, 3, 1),
            [
                ("download", "failed", "HTTP 404 from Zoom: meeting 456 is gone", 1),
            ],
        ),
        (
            b,
            r4,
            "failed",
            t(2026, 3, 1),
            [
                ("download", "done", None, 0),
                ("trim", "done", None, 0),
                ("transcribe", "done", None, 0),
                ("upload", "failed", "re-authenticate yt-main", 5),
            ],
        ),
        (a, r5, "active", t(2026, 3, 20), [("download", "running", None, 0)]),
    ]
    # dave's run needs a recording of his own.
    src = m.InputSource(user_id=d, name="d-in", kind="local", config={})
    ctx.session.add(src)
    ctx.session.flush()
    rec = m.Recording(user_id=d, source_id=src.id, external_id="d0", start_time=t(2026, 1, 1))
    ctx.session.add(rec)
    ctx.session.flush()
    plan.append((d, rec.id, "done", t(2026, 1, 10), [("download", "done", None, 0)]))
    for uid, rid, status, when, stages in plan:
        run = m.PipelineRun(
            user_id=uid, recording_id=rid, status=status, created_at=when, updated_at=when
        )
        ctx.session.add(run)
        ctx.session.flush()
        for pos, (name, st_status, error, code) in enumerate(stages):
            result = {"exit_code": code} if st_status == "failed" else {}
            ctx.session.add(
                m.StageResult(
                    user_id=uid,
                    run_id=run.id,
                    recording_id=rid,
                    name=name,
                    position=pos,
                    status=st_status,
                    error=error,
                    result=result,
                )
            )
