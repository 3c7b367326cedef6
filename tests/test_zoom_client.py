"""The Zoom client against the fake Zoom: auth and rotation, month windows, paging with every
fault we claim to survive, UUID double-encoding, tolerant parsing and downloads."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import logging
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from leap.errors import NotFound
from leap.providers.http import (
    CredentialRejected,
    PermanentError,
    RetryableError,
    RetryPolicy,
    make_http_client,
)
from leap.providers.zoom import (
    MalformedMeeting,
    OAuthTokens,
    S2SAuth,
    UserOAuth,
    ZoomClient,
    ZoomMeeting,
    ZoomRecordingGone,
    ZoomScopeMissing,
    ZoomUserNotFound,
    exchange_authorization_code,
    month_windows,
    parse_meeting,
    parse_meetings,
)
from tests.fakes.server import mock_transport, serve
from tests.fakes.zoom import FakeZoom
from tests.fakes.zoom_data import FakeMeeting, add_month

BASE = "https://zoom.test"
REDIRECT = "http://localhost:8765/callback"
START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 4, 1, tzinfo=UTC)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake() -> FakeZoom:
    return FakeZoom()


@pytest.fixture
def http(fake: FakeZoom) -> Iterator[httpx.Client]:
    with make_http_client(transport=mock_transport(fake.handler)) as client:
        yield client


@dataclass
class Rig:
    client: ZoomClient
    auth: S2SAuth
    sleeps: Sleeps


def rig(
    fake: FakeZoom,
    http: httpx.Client,
    *,
    base: str = BASE,
    policy: RetryPolicy | None = None,
    clock: Clock | None = None,
    secret: str | None = None,
) -> Rig:
    sleeps = Sleeps()
    kw: dict[str, Any] = {"clock": clock} if clock else {}
    auth = S2SAuth(
        http,
        base,
        fake.account_id,
        fake.client_id,
        secret or fake.client_secret,
        sleep=sleeps,
        **kw,
    )
    policy = policy or RetryPolicy(rng=random.Random(5))
    return Rig(ZoomClient(http, base + "/v2", auth, policy, sleep=sleeps, **kw), auth, sleeps)


def listed(client: ZoomClient, first: date, last: date, **kw: Any) -> list[ZoomMeeting]:
    return [m for page in client.iter_recording_pages("me", first, last, **kw) for m in page]


def truth(meetings: list[FakeMeeting], first: date, last: date) -> set[str]:
    return {m.uuid for m in meetings if first <= m.start_time.date() <= last}


def assert_each_once(got: list[ZoomMeeting], expected: set[str]) -> None:
    uuids = [m.uuid for m in got]
    assert len(uuids) == len(set(uuids)), "a meeting was yielded twice"
    assert set(uuids) == expected


# ---------------------------------------------------------------------------------------------
# month_windows


def _check_windows(start: date, end: date) -> None:
    windows = month_windows(start, end)
    assert windows[0][0] == start and windows[-1][1] == end
    for first, last in windows:
        assert first <= last
        assert (last - first).days + 1 <= 30
        assert last <= add_month(first)  # also within a calendar month
    for (_, prev_last), (next_first, _) in itertools.pairwise(windows):
        assert next_first == prev_last + timedelta(days=1)  # contiguous, no gap, no overlap
    total = sum((last - first).days + 1 for first, last in windows)
    assert total == (end - start).days + 1
    # Not needlessly many: every window but the last is a full 29 or 30 days.
    assert all((last - first).days + 1 >= 29 for first, last in windows[:-1])


def test_month_windows_exhaustive() -> None:
    day = date(2023, 11, 1)
    while day <= date(2025, 3, 31):  # spans the 2024 leap day and two year ends
        for length in (*range(0, 70), 89, 90, 91, 180, 366, 400):
            _check_windows(day, day + timedelta(days=length))
        day += timedelta(days=1)


def test_month_windows_edges() -> None:
    assert month_windows(date(2026, 3, 5), date(2026, 3, 5)) == [(date(2026, 3, 5),) * 2]
    assert month_windows(date(2026, 1, 1), date(2026, 1, 30)) == [
        (date(2026, 1, 1), date(2026, 1, 30))
    ]
    # Jan 31 + 29 days is Mar 1, past "one month": the window stops at Feb 28.
    assert month_windows(date(2025, 1, 31), date(2025, 3, 5))[0] == (
        date(2025, 1, 31),
        date(2025, 2, 28),
    )
    assert month_windows(date(2024, 1, 31), date(2024, 3, 5))[0] == (
        date(2024, 1, 31),
        date(2024, 2, 29),
    )
    with pytest.raises(ValueError):
        month_windows(date(2026, 1, 2), date(2026, 1, 1))


# ---------------------------------------------------------------------------------------------
# Auth


def test_s2s_token_is_cached_and_renewed_a_minute_before_expiry() -> None:
    clock = Clock(1_000_000.0)
    fake = FakeZoom(clock=clock, token_lifetime=3600)
    with make_http_client(transport=mock_transport(fake.handler)) as client:
        auth = S2SAuth(
            client, BASE, fake.account_id, fake.client_id, fake.client_secret, clock=clock
        )
        first = auth.token()
        assert auth.token() == first
        clock.now += 3600 - 61
        assert auth.token() == first and fake.tokens_issued == 1
        clock.now += 1  # 60 s left: renew now
        second = auth.token()
        assert second != first and fake.tokens_issued == 2
        auth.invalidate()
        assert auth.token() not in (first, second) and fake.tokens_issued == 3
    assert fake.requests["oauth_token"] == 3


def test_s2s_token_endpoint_429_is_retried(fake: FakeZoom, http: httpx.Client) -> None:
    fake.inject_429("oauth_token", 2, retry_after=3)
    r = rig(fake, http)
    assert r.client.get_user("me")["email"] == "host@example.com"
    assert r.sleeps == [3.0, 3.0]


@pytest.mark.parametrize(
    ("field", "value"), [("secret", "wrong-secret"), ("account", "other-account")]
)
def test_s2s_rejected_credential(
    fake: FakeZoom, http: httpx.Client, field: str, value: str
) -> None:
    secret = value if field == "secret" else fake.client_secret
    account = value if field == "account" else fake.account_id
    auth = S2SAuth(http, BASE, account, fake.client_id, secret)
    client = ZoomClient(http, BASE + "/v2", auth)
    with pytest.raises(CredentialRejected) as info:
        client.get_user("me")
    assert info.value.exit_code == 5
    assert "wrong-secret" not in info.value.message
    assert client.request_count == 0  # no API call without a token
    assert fake.requests["oauth_token"] == 1  # a rejection is not retried


def test_fake_refuses_token_grant_in_the_query_string(fake: FakeZoom, http: httpx.Client) -> None:
    response = http.post(
        BASE + "/oauth/token",
        params={"grant_type": "account_credentials", "account_id": fake.account_id},
        auth=(fake.client_id, fake.client_secret),
    )
    assert response.status_code == 400


def _user_oauth(
    fake: FakeZoom, http: httpx.Client, clock: Clock
) -> tuple[UserOAuth, list[OAuthTokens], ZoomClient]:
    code = fake.issue_authorization_code(REDIRECT)
    first = exchange_authorization_code(
        http, BASE, fake.client_id, fake.client_secret, code, REDIRECT, clock=clock
    )
    saved = [first]

    def on_refresh(new: OAuthTokens) -> None:
        # Persisted before use: Zoom has not seen the new access token on any API call yet.
        assert new.access_token not in fake.api_tokens_seen
        saved.append(new)

    auth = UserOAuth(http, BASE, fake.client_id, fake.client_secret, first, on_refresh, clock=clock)
    return auth, saved, ZoomClient(http, BASE + "/v2", auth, clock=clock)


def test_user_oauth_rotation_is_persisted_before_use() -> None:
    clock = Clock(2_000_000.0)
    fake = FakeZoom(clock=clock)
    with make_http_client(transport=mock_transport(fake.handler)) as http:
        auth, saved, client = _user_oauth(fake, http, clock)
        client.get_user("me")
        assert len(saved) == 1  # the first access token is still fresh
        clock.now += 3600 - 30
        assert client.get_user("me")["id"] == fake.default_user_id
        assert len(saved) == 2
        new = saved[-1]
        assert new.refresh_token != saved[0].refresh_token
        assert fake.api_tokens_seen[-1] == new.access_token
        assert auth.tokens == new and new.expires_at == clock.now + 3600
        # Rotation: the old refresh token is dead now.
        stale = UserOAuth(
            http,
            BASE,
            fake.client_id,
            fake.client_secret,
            OAuthTokens("", saved[0].refresh_token, 0.0),
            lambda t: None,
            clock=clock,
        )
        with pytest.raises(CredentialRejected, match="re-authenticate") as info:
            stale.token()
        assert "invalid_grant" in info.value.message and info.value.exit_code == 5


def test_user_oauth_401_refreshes_once(fake: FakeZoom, http: httpx.Client) -> None:
    clock = Clock(2_000_000.0)
    _auth, saved, client = _user_oauth(fake, http, clock)
    client.get_user("me")
    fake.expire_all_tokens()
    client.get_user("me")
    assert len(saved) == 2 and client.request_count == 3


def test_user_oauth_persist_failure_keeps_the_rotated_pair(
    fake: FakeZoom, http: httpx.Client
) -> None:
    code = fake.issue_authorization_code(REDIRECT)
    first = exchange_authorization_code(
        http, BASE, fake.client_id, fake.client_secret, code, REDIRECT
    )
    attempts: list[OAuthTokens] = []

    def flaky_store(new: OAuthTokens) -> None:
        attempts.append(new)
        if len(attempts) == 1:
            raise OSError("database is locked")

    auth = UserOAuth(
        http, BASE, fake.client_id, fake.client_secret, first, flaky_store, clock=Clock(0.0)
    )
    auth.invalidate()
    with pytest.raises(OSError):
        auth.token()
    issued = fake.tokens_issued
    token = auth.token()  # persists the same pair again; no second refresh
    assert fake.tokens_issued == issued and attempts[0] == attempts[1]
    assert token == attempts[0].access_token


def test_authorization_code_is_single_use_and_pkce_checked(
    fake: FakeZoom, http: httpx.Client
) -> None:
    code = fake.issue_authorization_code(REDIRECT)
    exchange_authorization_code(http, BASE, fake.client_id, fake.client_secret, code, REDIRECT)
    with pytest.raises(CredentialRejected):
        exchange_authorization_code(http, BASE, fake.client_id, fake.client_secret, code, REDIRECT)
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    code = fake.issue_authorization_code(REDIRECT, code_challenge=challenge.decode())
    with pytest.raises(CredentialRejected):
        exchange_authorization_code(
            http, BASE, fake.client_id, fake.client_secret, code, REDIRECT, code_verifier="x" * 50
        )
    code = fake.issue_authorization_code(REDIRECT, code_challenge=challenge.decode())
    tokens = exchange_authorization_code(
        http, BASE, fake.client_id, fake.client_secret, code, REDIRECT, code_verifier=verifier
    )
    assert tokens.refresh_token


# ---------------------------------------------------------------------------------------------
# Listing


@pytest.fixture
def generated(fake: FakeZoom) -> list[FakeMeeting]:
    return fake.generate_meetings(700, START, END, seed=7, user_email="host@example.com")


def test_paging_700_meetings_over_three_months(
    fake: FakeZoom, http: httpx.Client, generated: list[FakeMeeting]
) -> None:
    r = rig(fake, http)
    first, last = date(2026, 1, 1), date(2026, 3, 31)
    got = listed(r.client, first, last, page_size=50)
    assert_each_once(got, truth(generated, first, last))
    assert len(got) == 700
    windows = month_windows(first, last)
    pages = sum(max(1, math.ceil(len(truth(generated, a, b)) / 50)) for a, b in windows)
    assert r.client.request_count == pages == fake.requests["list_recordings"]
    assert r.sleeps == [] and fake.tokens_issued == 1
    for _method, path in fake.log:
        if "/recordings" in path:
            assert "from=" in path and "to=" in path and "page_size=50" in path
    # The default page size (300) needs one page per window here.
    fresh = rig(fake, http)
    assert len(listed(fresh.client, first, last)) == 700
    assert fresh.client.request_count == len(windows)


def test_listing_keeps_only_completed_files_and_normalises_types(
    fake: FakeZoom, http: httpx.Client, generated: list[FakeMeeting]
) -> None:
    got = {m.uuid: m for m in listed(rig(fake, http).client, date(2026, 1, 1), date(2026, 3, 31))}
    by_uuid = {m.uuid: m for m in generated}
    saw_processing = saw_cc_suffix = saw_idless = False
    for uuid, meeting in got.items():
        source = by_uuid[uuid]
        expected = {f"{BASE}/rec/download/{f.key}" for f in source.completed_files()}
        assert {f.download_url for f in meeting.files} == expected
        saw_processing |= any(f.status == "processing" for f in source.files)
        saw_cc_suffix |= any((f.recording_type or "").endswith("(CC)") for f in source.files)
        saw_idless |= any(f.id is None for f in meeting.files)
        assert all(not (f.recording_type or "").endswith("(CC)") for f in meeting.files)
        assert meeting.meeting_id == str(source.id) and meeting.topic == source.topic
        assert meeting.start_time == source.start_time and meeting.start_time.tzinfo is not None
        assert meeting.duration_min == source.duration and meeting.total_size == source.total_size
        assert meeting.host_id == source.host_id and meeting.meeting_type == source.type
    assert saw_processing and saw_cc_suffix and saw_idless
    json.dumps([m.to_dict() for m in got.values()])  # JSON-ready


def test_generated_data_is_realistic(generated: list[FakeMeeting]) -> None:
    topics = {m.topic for m in generated}
    assert any("—" in t and "лекция" in t for t in topics)
    assert any(t.startswith("Machine Learning") for t in topics)
    assert sum(m.duration < 20 for m in generated) > 20
    assert sum(m.total_size < 25 * 1024 * 1024 for m in generated) > 10
    assert sum(m.uuid.startswith("/") for m in generated) >= 10
    assert sum("//" in m.uuid for m in generated) >= 10
    ids: dict[int, set[str]] = {}
    for m in generated:
        ids.setdefault(m.id, set()).add(m.topic.split(" — ")[0].split(" lecture")[0])
    assert any(len(courses) > 2 for courses in ids.values())  # a shared meeting id
    assert all(START <= m.start_time < END for m in generated)
    again = FakeZoom().generate_meetings(700, START, END, seed=7, user_email="host@example.com")
    assert [m.uuid for m in again] == [m.uuid for m in generated]  # deterministic


def test_boundary_meetings_are_yielded_once(
    fake: FakeZoom, http: httpx.Client, generated: list[FakeMeeting]
) -> None:
    fake.date_slack_days = 1  # the API returns neighbours of each window too
    first, last = date(2026, 1, 5), date(2026, 3, 20)
    got = listed(rig(fake, http).client, first, last)
    expected = {
        m.uuid
        for m in generated
        if first - timedelta(days=1) <= m.start_time.date() <= last + timedelta(days=1)
    }
    assert_each_once(got, expected)


@pytest.mark.parametrize("form", ["seconds", "iso", "http-date", None])
def test_429_storm_yields_every_meeting_once(
    fake: FakeZoom, http: httpx.Client, generated: list[FakeMeeting], form: Any
) -> None:
    fake.storm(3, retry_after=2.0, form=form)
    r = rig(fake, http)
    first, last = date(2026, 1, 1), date(2026, 3, 31)
    assert_each_once(listed(r.client, first, last, page_size=40), truth(generated, first, last))
    storms = fake.requests["list_recordings"] // 3
    assert len(r.sleeps) == storms > 5
    if form == "seconds":
        assert set(r.sleeps) == {2.0}
    elif form is None:
        assert all(0 <= s <= 0.5 for s in r.sleeps)  # first-retry backoff ceiling
    else:
        assert all(0 <= s <= 3.0 for s in r.sleeps) and max(r.sleeps) > 1.0


def test_expired_tokens_mid_paging(
    fake: FakeZoom, http: httpx.Client, generated: list[FakeMeeting]
) -> None:
    r = rig(fake, http)
    first, last = date(2026, 1, 1), date(2026, 3, 31)
    got: list[ZoomMeeting] = []
    for index, page in enumerate(r.client.iter_recording_pages("me", first, last, page_size=60)):
        got.extend(page)
        if index in (1, 5):
            fake.expire_all_tokens()
    assert_each_once(got, truth(generated, first, last))
    assert fake.tokens_issued == 3 and r.sleeps == []


def test_repeated_401_is_a_dead_credential(fake: FakeZoom, http: httpx.Client) -> None:
    class Revoked(S2SAuth):
        def token(self) -> str:
            return "revoked-token"

    auth = Revoked(http, BASE, fake.account_id, fake.client_id, fake.client_secret)
    client = ZoomClient(http, BASE + "/v2", auth)
    with pytest.raises(CredentialRejected) as info:
        client.get_user("me")
    assert client.request_count == 2 and "revoked-token" not in info.value.message


def test_5xx_then_success(fake: FakeZoom, http: httpx.Client, generated: list[FakeMeeting]) -> None:
    fake.inject_5xx("list_recordings", 2, status=503)
    r = rig(fake, http)
    first, last = date(2026, 2, 1), date(2026, 2, 20)
    assert_each_once(listed(r.client, first, last), truth(generated, first, last))
    assert len(r.sleeps) == 2 and r.client.request_count == 3


def test_dropped_connection_then_success(
    fake: FakeZoom, http: httpx.Client, generated: list[FakeMeeting]
) -> None:
    fake.inject_drop("list_recordings")
    r = rig(fake, http)
    first, last = date(2026, 2, 1), date(2026, 2, 20)
    assert_each_once(listed(r.client, first, last), truth(generated, first, last))
    assert len(r.sleeps) == 1 and r.client.request_count == 2


def test_broken_api_exhausts_the_budget(
    fake: FakeZoom, http: httpx.Client, generated: list[FakeMeeting]
) -> None:
    fake.inject_5xx("list_recordings", 10_000, status=502)
    policy = RetryPolicy(max_attempts=10_000, base_delay=1, max_delay=4, budget_s=20)
    r = rig(fake, http, policy=policy)
    with pytest.raises(RetryableError, match="retries exhausted") as info:
        listed(r.client, date(2026, 1, 1), date(2026, 3, 31))
    assert info.value.status == 502
    assert sum(r.sleeps) <= 20 + 1e-9 and len(r.sleeps) >= 5


def test_daily_limit_gives_up_without_sleeping(fake: FakeZoom, http: httpx.Client) -> None:
    fake.inject_429(
        "list_recordings", retry_after=6 * 3600, form="iso", rate_limit_type="Daily-limit"
    )
    r = rig(fake, http)
    with pytest.raises(RetryableError) as info:
        listed(r.client, date(2026, 1, 1), date(2026, 1, 10))
    assert r.sleeps == [] and info.value.retry_after is not None
    assert info.value.retry_after > 5 * 3600


def test_expired_page_token_restarts_the_window(generated: list[FakeMeeting]) -> None:
    clock = Clock(START.timestamp() + 100 * 86400)
    fake = FakeZoom(clock=clock)
    for m in generated:
        fake.add_meeting(m)
    with make_http_client(transport=mock_transport(fake.handler)) as http:
        r = rig(fake, http, clock=clock)
        first, last = date(2026, 1, 1), date(2026, 1, 30)
        got: list[ZoomMeeting] = []
        for index, page in enumerate(
            r.client.iter_recording_pages("me", first, last, page_size=50)
        ):
            got.extend(page)
            if index == 1:
                clock.now += 901  # the next page token has expired
        assert_each_once(got, truth(generated, first, last))


def test_unknown_user(fake: FakeZoom, http: httpx.Client) -> None:
    client = rig(fake, http).client
    with pytest.raises(ZoomUserNotFound, match="does not exist") as info:
        listed_user = client.iter_recording_pages(
            "nobody@example.com", date(2026, 1, 1), date(2026, 1, 2)
        )
        next(listed_user)
    assert isinstance(info.value, PermanentError)
    with pytest.raises(ZoomUserNotFound):
        client.get_user("nobody@example.com")
    assert client.get_user("host@example.com")["id"] == fake.default_user_id


def test_tolerant_parsing_through_the_listing(
    fake: FakeZoom, http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    meetings = fake.generate_meetings(5, START, START + timedelta(days=3), 1, "host@example.com")

    def corrupt(body: dict[str, Any]) -> None:
        raw = body["meetings"]
        del raw[0]["uuid"]
        raw[1]["type"] = "8"
        for key in ("topic", "duration", "timezone", "total_size", "host_id"):
            raw[1].pop(key, None)
        raw[2]["recording_files"] = [
            {"file_type": "CC", "file_extension": "VTT", "download_url": "https://x/cc"},
            {"file_type": "TIMELINE", "file_extension": "JSON"},
            {"id": "p", "file_type": "MP4", "status": "processing", "download_url": "https://x/p"},
            {
                "id": "m",
                "file_type": "MP4",
                "status": "completed",
                "file_size": "123",
                "recording_type": "active_speaker(CC)",
                "download_url": "https://x/m",
            },
        ]
        raw[3]["start_time"] = "not a time"

    fake.mutate_listing = corrupt
    client = rig(fake, http).client
    with caplog.at_level(logging.WARNING, logger="leap.providers.zoom"):
        got = listed(client, START.date(), START.date() + timedelta(days=3))
    assert len(got) == 3 and len(client.warnings) == 2
    assert sum("skipped a Zoom meeting" in rec.getMessage() for rec in caplog.records) == 2
    by_uuid = {m.uuid: m for m in got}
    newest_first = sorted(meetings, key=lambda m: m.start_time, reverse=True)
    sparse = by_uuid[newest_first[1].uuid]
    assert sparse.topic == "" and sparse.duration_min == 0 and sparse.meeting_type == 8
    assert sparse.total_size == sum(f.file_size or 0 for f in sparse.files)
    files = by_uuid[newest_first[2].uuid].files
    assert [(f.id, f.file_type, f.status) for f in files] == [
        (None, "CC", None),
        ("m", "MP4", "completed"),
    ]
    assert files[1].file_size == 123 and files[1].recording_type == "active_speaker"


def test_parse_meetings_skips_garbage() -> None:
    meetings, warnings = parse_meetings(
        [
            None,
            {"uuid": "", "start_time": "2026-01-01T00:00:00Z"},
            {"uuid": "a", "start_time": "2026-01-01T00:00:00"},
        ]
    )
    assert [m.uuid for m in meetings] == ["a"] and len(warnings) == 2
    assert meetings[0].start_time == datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_meetings({"not": "a list"}) == ([], [])


# ---------------------------------------------------------------------------------------------
# Single meetings and UUID encoding


def test_double_encoded_uuid_lookups(
    fake: FakeZoom, http: httpx.Client, generated: list[FakeMeeting]
) -> None:
    client = rig(fake, http).client
    slash = next(m for m in generated if m.uuid.startswith("/"))
    double = next(m for m in generated if "//" in m.uuid)
    plain = next(m for m in generated if "/" not in m.uuid and "+" in m.uuid)
    for source in (slash, double, plain):
        meeting = client.get_meeting_recordings(source.uuid)
        assert meeting.uuid == source.uuid and meeting.topic == source.topic
        assert len(meeting.files) == len(source.completed_files())
    token = rig(fake, http).auth.token()
    for source in (slash, double):
        # Single encoding is not enough for these; the fake answers like Zoom.
        single = http.get(
            f"{BASE}/v2/meetings/{quote(source.uuid, safe='')}/recordings",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert single.status_code == 404 and single.json()["code"] == 3301
    unencoded = http.get(
        f"{BASE}/v2/meetings/{slash.uuid}/recordings", headers={"Authorization": f"Bearer {token}"}
    )
    assert unencoded.status_code == 404 and unencoded.json()["code"] == 3301


def test_deleted_recording_is_gone(
    fake: FakeZoom, http: httpx.Client, generated: list[FakeMeeting]
) -> None:
    client = rig(fake, http).client
    fake.delete_meeting(generated[0].uuid)
    for uuid in (generated[0].uuid, "no-such-uuid=="):
        with pytest.raises(ZoomRecordingGone) as info:
            client.get_meeting_recordings(uuid)
        assert isinstance(info.value, NotFound) and isinstance(info.value, PermanentError)
        assert info.value.exit_code == 3


# ---------------------------------------------------------------------------------------------
# Downloads (the fake's side of the contract; the pipeline's downloader builds on it)


def _small_mp4(fake: FakeZoom, generated: list[FakeMeeting], size: int = 300_000) -> str:
    f = next(f for m in generated for f in m.completed_files() if f.file_type == "MP4")
    f.file_size = size
    return f.key


def _check_download(fake: FakeZoom, http: httpx.Client, base: str, key: str, token: str) -> None:
    size = len(fake.file_bytes(key))
    url = f"{base}/rec/download/{key}"
    bearer = {"Authorization": f"Bearer {token}"}
    response = http.get(url, headers=bearer, follow_redirects=True)
    assert response.status_code == 200 and response.history[0].status_code == 302
    assert response.headers["content-type"] == "video/mp4"
    assert int(response.headers["content-length"]) == size == len(response.content)
    assert response.content == fake.file_bytes(key)
    assert fake.cdn_authorization == [None]  # the Bearer header never reached the CDN
    # Resume: a Range request from the CDN URL
    cdn = str(response.url)
    part = http.get(cdn, headers={"Range": "bytes=1000-"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 1000-{size - 1}/{size}"
    assert part.content == fake.file_bytes(key, 1000)
    etag = response.headers["etag"]
    matching = http.get(cdn, headers={"Range": "bytes=10-", "If-Range": etag})
    assert matching.status_code == 206 and matching.content == fake.file_bytes(key, 10)
    changed = http.get(cdn, headers={"Range": "bytes=10-", "If-Range": '"other"'})
    assert changed.status_code == 200 and len(changed.content) == size
    assert http.get(cdn, headers={"Range": f"bytes={size}-"}).status_code == 416
    head = http.head(cdn)
    assert head.headers["content-length"] == str(size) and head.content == b""
    # A connection cut mid-body, then a resume from what arrived.
    fake.inject_download_drop(after_bytes=70_000)
    received = bytearray()
    with pytest.raises(httpx.RemoteProtocolError), http.stream("GET", cdn) as cut:
        for chunk in cut.iter_raw():
            received += chunk
    assert 0 < len(received) <= 70_000
    rest = http.get(cdn, headers={"Range": f"bytes={len(received)}-"})
    assert bytes(received) + rest.content == fake.file_bytes(key)
    # Auth on the first hop: query token accepted, none refused; the HTML trap.
    assert http.get(url, params={"access_token": token}).status_code == 302
    denied = http.get(url)
    assert denied.status_code == 401 and denied.json()["code"] == 124
    fake.host_only_html = True
    trap = http.get(url, headers=bearer, follow_redirects=True)
    assert trap.status_code == 200 and trap.headers["content-type"].startswith("text/html")


def test_download_redirect_and_range_mock(
    fake: FakeZoom, http: httpx.Client, generated: list[FakeMeeting]
) -> None:
    key = _small_mp4(fake, generated)
    _check_download(fake, http, BASE, key, rig(fake, http).auth.token())


# ---------------------------------------------------------------------------------------------
# The same client through a real HTTP server


def test_through_the_real_http_server(generated: list[FakeMeeting]) -> None:
    fake = FakeZoom()
    for m in generated:
        fake.add_meeting(m)
    key = _small_mp4(fake, generated)
    with serve(fake.handler) as base, make_http_client(timeout=10) as http:
        fake.inject_drop("list_recordings")
        fake.inject_429("list_recordings", retry_after=1.0, form="iso")
        fake.inject_5xx("list_recordings")
        r = rig(fake, http, base=base)
        first, last = date(2026, 1, 1), date(2026, 3, 31)
        got: list[ZoomMeeting] = []
        for index, page in enumerate(
            r.client.iter_recording_pages("me", first, last, page_size=100)
        ):
            got.extend(page)
            if index == 2:
                fake.expire_all_tokens()
        assert_each_once(got, truth(generated, first, last))
        assert len(r.sleeps) == 3 and fake.tokens_issued == 2
        assert all(f.download_url and f.download_url.startswith(base) for m in got for f in m.files)
        slash = next(m for m in generated if m.uuid.startswith("/"))
        assert r.client.get_meeting_recordings(slash.uuid).uuid == slash.uuid
        # The CDN is "localhost" while the API is "127.0.0.1": another origin on one server.
        _check_download(fake, http, base, key, r.auth.token())


# ---------------------------------------------------------------------------------------------
# Hostile listings: implausible values, missing scopes, listings that never end


def _raw_meeting(**over: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "uuid": "u1",
        "id": 1,
        "topic": "Lecture",
        "start_time": "2026-01-05T10:00:00Z",
        "duration": 60,
        "recording_files": [
            {"id": "f", "file_type": "MP4", "status": "completed", "file_size": 5_000_000}
        ],
    }
    return raw | over


@pytest.mark.parametrize(
    ("over", "words"),
    [
        ({"start_time": "9999-12-31T23:59:59-23:59"}, "start_time"),  # overflows astimezone
        ({"duration": "forever"}, "duration 'forever'"),
        ({"duration": -1}, "duration -1"),
        ({"duration": 1e30}, "duration 1e+30"),
        ({"total_size": 10**30}, "total_size"),
        ({"total_size": float("nan")}, "total_size nan"),
    ],
)
def test_implausible_meeting_values_skip_the_meeting(over: dict[str, Any], words: str) -> None:
    with pytest.raises(MalformedMeeting) as caught:
        parse_meeting(_raw_meeting(**over))
    assert caught.value.label == "u1" and words in caught.value.reason


@pytest.mark.parametrize("size", [1e30, -5, "abc", "99999999999999999999", True, {"a": 1}])
def test_implausible_file_sizes_skip_the_meeting(size: Any) -> None:
    raw = _raw_meeting()
    raw["recording_files"][0]["file_size"] = size
    with pytest.raises(MalformedMeeting, match="file_size"):
        parse_meeting(raw)


def test_plausible_values_still_parse_tolerantly() -> None:
    raw = _raw_meeting(duration=None, total_size="7000000")
    raw["recording_files"][0]["file_size"] = "5000000"
    m = parse_meeting(raw)
    assert (m.duration_min, m.total_size, m.files[0].file_size) == (0, 7_000_000, 5_000_000)


def test_bad_meetings_are_reported_once_even_across_windows(
    fake: FakeZoom, http: httpx.Client
) -> None:
    meetings = fake.generate_meetings(6, START, START + timedelta(days=40), 3, "host@example.com")
    meetings[0].raw = {"duration": "soon"}
    for f in meetings[1].files:
        f.raw = {"file_size": 1e30}
    fake.date_slack_days = 40  # every window lists every meeting
    client = rig(fake, http).client
    got = listed(client, START.date(), START.date() + timedelta(days=40))
    assert {m.uuid for m in got} == {m.uuid for m in meetings[2:]}
    assert sorted(label for label, _ in client.skipped) == sorted(m.uuid for m in meetings[:2])


def test_a_missing_user_scope_is_its_own_error(fake: FakeZoom, http: httpx.Client) -> None:
    fake.user_scope = False
    client = rig(fake, http).client
    with pytest.raises(ZoomScopeMissing, match="4711") as caught:
        client.get_user("me")
    assert caught.value.status == 400 and fake.requests["get_user"] == 1  # not retried


def test_an_endless_listing_stops_at_the_page_budget(fake: FakeZoom, http: httpx.Client) -> None:
    fake.endless_pages = True
    r = rig(fake, http)
    client = ZoomClient(http, BASE + "/v2", r.auth, RetryPolicy(), sleep=r.sleeps, max_pages=25)
    with pytest.raises(PermanentError, match="more pages after 25"):
        listed(client, START.date(), START.date() + timedelta(days=3))
    assert fake.requests["list_recordings"] == 25


def test_a_repeated_page_token_stops_the_listing(fake: FakeZoom, http: httpx.Client) -> None:
    fake.endless_pages = "same-token"
    client = rig(fake, http).client
    with pytest.raises(PermanentError, match="repeats a page token"):
        listed(client, START.date(), START.date() + timedelta(days=3))
    assert fake.requests["list_recordings"] == 2
