"""The YouTube quota ledger under concurrency: workers on several threads (and, on PostgreSQL,
several connections) charging one Google project never lose an update or over-book a day."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest

from leap.context import Runtime, open_context
from leap.db.scope import Scope
from leap.services import youtube_quota


def test_concurrent_reservations_book_exactly_the_daily_uploads(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime.settings.youtube, "daily_uploads", 5)
    monkeypatch.setattr(runtime.settings.youtube, "daily_units", 10**9)
    outcomes: list[datetime | None] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def reserve() -> None:
        try:
            barrier.wait()
            with open_context(runtime, Scope.system_scope()) as ctx:
                outcomes.append(youtube_quota.reserve_upload(ctx, "project-a", 1700))
        except BaseException as exc:  # surfaced below, with the thread's own error
            errors.append(exc)

    threads = [threading.Thread(target=reserve) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sum(1 for o in outcomes if o is None) == 5  # five fit today
    assert len(outcomes) == 8
    with open_context(runtime, Scope.system_scope()) as ctx:
        book = youtube_quota.ledger(ctx, "project-a")
        assert book.uploads == 5
        assert book.units == 5 * 1700
        assert youtube_quota.ledger(ctx, "project-b").uploads == 0  # projects are separate


def test_exhaust_holds_the_project_until_the_pacific_reset(runtime: Runtime) -> None:
    with open_context(runtime, Scope.system_scope()) as ctx:
        assert youtube_quota.reserve_upload(ctx, "p", 1600) is None
        youtube_quota.exhaust(ctx, "p")
    with open_context(runtime, Scope.system_scope()) as ctx:
        retry_at = youtube_quota.reserve_upload(ctx, "p", 1600)
        assert retry_at is not None
        assert retry_at.astimezone(youtube_quota.PACIFIC).hour == 0  # midnight Pacific
        assert youtube_quota.ledger(ctx, "p").uploads == 1  # the refused one is not charged


def test_a_publish_is_charged_the_insert_and_the_extras_it_uses() -> None:
    costs = {"videos.insert": 1600, "thumbnails.set": 50, "playlistItems.insert": 50}
    costs["captions.insert"] = 400
    plain = youtube_quota.publish_units(costs, thumbnail=False, playlist=False, captions=False)
    full = youtube_quota.publish_units(costs, thumbnail=True, playlist=True, captions=True)
    assert (plain, full) == (1600, 2100)
    bucket = {**costs, "videos.insert": 0}  # projects that count uploads in their own bucket
    assert youtube_quota.publish_units(bucket, thumbnail=True, playlist=False, captions=False) == 50


def test_costs_are_a_setting_with_known_calls_only(
    leap_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from leap.config import load_settings
    from leap.errors import ConfigError

    monkeypatch.setenv("LEAP_YOUTUBE__COSTS", '{"videos.insert": 0, "thumbnails.set": 50}')
    assert load_settings().youtube.costs["videos.insert"] == 0
    monkeypatch.setenv("LEAP_YOUTUBE__COSTS", '{"search.list": 100}')
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "search.list" in err.value.message
