"""The VK client against the fake VK: video.save and the streamed upload, errors at HTTP 200,
VK ID refresh with device_id and rotation, flat memory on big files, marker reconciliation."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from leap.providers.http import (
    CredentialRejected,
    Deferred,
    PermanentError,
    RetryableError,
    RetryPolicy,
    make_http_client,
)
from leap.providers.vk import (
    CAPTCHA_MESSAGE,
    VKAuth,
    VKClient,
    VKTokens,
    parse_implicit_redirect,
)
from leap.specs.metadata import vk_save_params
from tests.fakes.server import mock_transport, serve
from tests.fakes.vk import FakeVK, StreamingTransport

BASE = "https://vk.test"
VERSION = "5.199"


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Kit:
    """Builds VK clients over a transport or a real server and closes every one of them."""

    def __init__(self) -> None:
        self.clients: list[httpx.Client] = []
        self.sleeps = Sleeps()
        self.saved: list[VKTokens] = []

    def client(
        self,
        fake: FakeVK,
        base: str = BASE,
        *,
        tokens: VKTokens | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Clock | None = None,
        policy: RetryPolicy | None = None,
        on_refresh: Callable[[VKTokens], None] | None = None,
    ) -> tuple[VKClient, VKAuth]:
        if transport is None and base == BASE:
            transport = mock_transport(fake.handler)
        http = make_http_client(transport=transport)
        self.clients.append(http)
        if tokens is None:
            issued = fake.issue_tokens()
            tokens = VKTokens(
                issued["access_token"],
                issued["refresh_token"],
                issued["device_id"],
                (clock or fake.clock)() + issued["expires_in"],
                fake.client_id,
            )
        policy = policy or RetryPolicy(base_delay=0.01, max_delay=0.05)
        auth = VKAuth(
            http,
            id_base_url=base,
            tokens=tokens,
            on_refresh=on_refresh or self.saved.append,
            clock=clock or fake.clock,
            policy=policy,
            sleep=self.sleeps,
        )
        vk = VKClient(
            http,
            api_base_url=base + "/method",
            api_version=VERSION,
            auth=auth,
            policy=policy,
            sleep=self.sleeps,
        )
        return vk, auth

    def close(self) -> None:
        for http in self.clients:
            http.close()


@pytest.fixture
def kit() -> Iterator[Kit]:
    k = Kit()
    yield k
    k.close()


def _file(tmp_path: Path, size: int = 300_000) -> tuple[Path, str]:
    data = bytes(i % 251 for i in range(size))
    path = tmp_path / "lecture.mp4"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


PROFILE_META: dict[str, Any] = {
    "title": "Lecture 5",
    "description": "Intro\n\nleap:run-1",
    "privacy_view": "friends",
    "privacy_comment": "nobody",
    "album_id": 3,
    "wallpost": True,
    "repeat": 1,
}
GROUP_META: dict[str, Any] = {
    "title": "Lecture 6",
    "description": "Group video",
    "group_id": -42,
    "album_id": 7,
    "no_comments": 1,
    "wallpost": 0,
    "repeat": 0,
}


def test_save_and_upload_make_exactly_one_video(kit: Kit, tmp_path: Path) -> None:
    fake = FakeVK()
    vk, _ = kit.client(fake)
    path, digest = _file(tmp_path)
    saved = vk.save_video(vk_save_params(PROFILE_META))
    assert saved.owner_id == fake.owner_id and saved.access_key
    progress: list[int] = []
    answer = vk.upload_file(saved.upload_url, path, on_progress=progress.append)
    assert answer["video_id"] == saved.video_id and answer["size"] == path.stat().st_size
    assert progress[-1] == path.stat().st_size
    assert fake.video_count == 1
    video = fake.videos[saved.video_id]
    assert video.sha256 == digest and video.uploads == 1
    assert fake.saved_params == [
        {
            "name": "Lecture 5",
            "description": "Intro\n\nleap:run-1",
            "album_id": "3",
            "wallpost": "1",
            "repeat": "1",
            "privacy_view": "friends",
            "privacy_comment": "nobody",
        }
    ]
    assert vk.video_url(saved.owner_id, saved.video_id) == (
        f"https://vk.com/video{fake.owner_id}_{saved.video_id}"
    )


def test_group_video_over_the_real_server(kit: Kit, tmp_path: Path) -> None:
    fake = FakeVK()
    path, digest = _file(tmp_path, 2_000_000)
    fake.inject_drop("api", 1)
    fake.inject_5xx("upload", 1)
    with serve(fake.handler) as base:
        vk, _ = kit.client(fake, base)
        saved = vk.save_video(vk_save_params(GROUP_META))
        assert saved.upload_url.startswith(base + "/upload.do?")
        vk.upload_file(saved.upload_url, path)
        kit.close()
    assert saved.owner_id == -42
    assert fake.video_count == 1
    assert fake.videos[saved.video_id].sha256 == digest
    assert fake.saved_params == [
        {
            "name": "Lecture 6",
            "description": "Group video",
            "group_id": "42",
            "album_id": "7",
            "wallpost": "0",
            "no_comments": "1",
            "repeat": "0",
        }
    ]
    assert len(kit.sleeps) == 2  # the dropped API call and the 503 on upload


def test_flood_control_defers_instead_of_hammering(kit: Kit) -> None:
    fake = FakeVK()
    vk, _ = kit.client(fake)
    fake.inject_api_error(9, methods=("video.save",))
    with pytest.raises(Deferred) as err:
        vk.save_video({"name": "x", "description": "y"})
    assert err.value.reason == "flood control"
    wait = (err.value.retry_at - datetime.now(UTC)).total_seconds()
    assert 25 * 60 < wait <= 30 * 60
    assert kit.sleeps == [] and fake.api_calls == ["video.save"]  # one call, no back-off loop


@pytest.mark.parametrize("codes", [(6,), (6, 6, 6)])
def test_rate_errors_are_retried(kit: Kit, codes: tuple[int, ...]) -> None:
    fake = FakeVK()
    vk, _ = kit.client(fake)
    for code in codes:
        fake.inject_api_error(code, methods=("video.save",))
    saved = vk.save_video({"name": "x", "description": "y"})
    assert saved.video_id in fake.videos
    assert len(kit.sleeps) == len(codes)
    assert fake.api_calls == ["video.save"] * (len(codes) + 1)
    assert len(fake.saved_params) == 1


def test_rate_errors_give_up_within_the_policy(kit: Kit) -> None:
    fake = FakeVK()
    vk, _ = kit.client(fake, policy=RetryPolicy(max_attempts=3, base_delay=0.01))
    fake.inject_api_error(6, 5)
    with pytest.raises(RetryableError, match="error 6"):
        vk.call("video.get", {"owner_id": fake.owner_id})
    assert len(fake.api_calls) == 3


def test_dead_token_refreshes_once_with_device_id_and_rotation(kit: Kit) -> None:
    fake = FakeVK()
    seen_at_persist: list[int] = []

    def persist(tokens: VKTokens) -> None:
        # Persisted before use: the new access token has not reached VK yet.
        seen_at_persist.append(fake.tokens_seen.count(tokens.access_token))
        kit.saved.append(tokens)

    vk, auth = kit.client(fake, on_refresh=persist)
    old = auth.tokens
    fake.expire_access_tokens()
    assert vk.call("video.get", {"owner_id": fake.owner_id}) == {"count": 0, "items": []}
    assert fake.refreshes == 1 and auth.refresh_count == 1
    assert seen_at_persist == [0]
    new = kit.saved[-1]
    assert new.refresh_token != old.refresh_token and new.device_id == old.device_id
    assert new.client_id == old.client_id and auth.tokens == new
    assert fake.tokens_seen == [old.access_token, new.access_token]


def test_dead_refresh_token_is_credential_rejected(kit: Kit) -> None:
    fake = FakeVK()
    vk, _ = kit.client(fake)
    fake.expire_access_tokens()
    fake.revoke_refresh_tokens()
    with pytest.raises(CredentialRejected, match="re-authenticate"):
        vk.save_video({"name": "x", "description": "y"})
    assert fake.requests["oauth"] == 1 and not kit.saved


def test_token_refused_right_after_a_refresh_is_credential_rejected(kit: Kit) -> None:
    fake = FakeVK()
    vk, _ = kit.client(fake)
    fake.inject_api_error(5, 2)
    with pytest.raises(CredentialRejected, match="even after a token refresh"):
        vk.call("video.get", {})
    assert fake.refreshes == 1


def test_plain_token_without_refresh_token_just_dies(kit: Kit) -> None:
    fake = FakeVK()
    issued = fake.issue_tokens()
    vk, _ = kit.client(fake, tokens=VKTokens(issued["access_token"]))
    fake.expire_access_tokens()
    with pytest.raises(CredentialRejected, match="re-authenticate"):
        vk.call("video.get", {})
    assert fake.requests["oauth"] == 0


def test_refreshes_before_expiry(kit: Kit) -> None:
    clock = Clock()
    fake = FakeVK(clock=clock)
    vk, auth = kit.client(fake, clock=clock)
    vk.call("video.get", {})
    clock.now += 3600 - 30  # inside the one-minute margin
    vk.call("video.get", {})
    assert fake.refreshes == 1 and len(kit.saved) == 1
    assert fake.tokens_seen[-1] == auth.tokens.access_token != fake.tokens_seen[0]


def test_captcha_is_a_clear_permanent_error(kit: Kit) -> None:
    fake = FakeVK()
    vk, _ = kit.client(fake)
    fake.inject_api_error(14)
    with pytest.raises(PermanentError) as info:
        vk.save_video({"name": "x", "description": "y"})
    assert CAPTCHA_MESSAGE in info.value.message
    assert not isinstance(info.value, RetryableError)
    assert fake.api_calls == ["video.save"] and not kit.sleeps


def test_other_errors_are_permanent_with_vks_message(kit: Kit) -> None:
    fake = FakeVK()
    vk, _ = kit.client(fake)
    fake.inject_api_error(10)
    with pytest.raises(PermanentError, match="error 10: Internal server error"):
        vk.call("video.get", {})
    assert not kit.sleeps


def test_http_5xx_is_retried(kit: Kit) -> None:
    fake = FakeVK()
    vk, _ = kit.client(fake)
    fake.inject_5xx("api", 2, status=502)
    vk.call("video.get", {})
    assert len(kit.sleeps) == 2


def test_expired_upload_url_is_permanent(kit: Kit, tmp_path: Path) -> None:
    fake = FakeVK()
    vk, _ = kit.client(fake)
    saved = vk.save_video({"name": "x", "description": "y"})
    path, _ = _file(tmp_path, 10)
    with pytest.raises(PermanentError, match=r"call video\.save again"):
        vk.upload_file(saved.upload_url.replace("sig=", "sig=x"), path)
    assert fake.video_count == 0


def test_memory_stays_flat_for_a_150_mb_upload(kit: Kit, tmp_path: Path) -> None:
    # StreamingTransport hands the body to the fake unread: MockTransport and the test
    # server would both buffer it whole, in this very process.
    fake = FakeVK()
    vk, _ = kit.client(fake, transport=StreamingTransport(fake.handler))
    size = 150 * 1024 * 1024 + 4321
    path = tmp_path / "big.mp4"
    with path.open("wb") as out:
        out.truncate(size)  # sparse zeros: cheap to create, hashed like any other bytes
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(8 * 1024 * 1024):
            digest.update(block)
    saved = vk.save_video({"name": "big", "description": "leap:big"})
    progress: list[int] = []
    tracemalloc.start()
    try:
        answer = vk.upload_file(saved.upload_url, path, on_progress=progress.append)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert answer["size"] == size and progress[-1] == size
    assert fake.videos[saved.video_id].sha256 == digest.hexdigest()
    assert fake.video_count == 1
    assert peak < 8 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"
    path.unlink()


def test_dropped_upload_answer_is_resent_to_the_same_slot(kit: Kit, tmp_path: Path) -> None:
    fake = FakeVK()
    vk, _ = kit.client(fake)
    path, digest = _file(tmp_path)
    saved = vk.save_video({"name": "x", "description": "leap:abc"})
    fake.drop_after_upload(1)
    vk.upload_file(saved.upload_url, path)
    video = fake.videos[saved.video_id]
    assert video.uploads == 2 and video.sha256 == digest
    assert fake.video_count == 1


def test_marker_finds_the_video_after_an_unknown_outcome(kit: Kit, tmp_path: Path) -> None:
    fake = FakeVK()
    vk, _ = kit.client(fake, policy=RetryPolicy(max_attempts=1))
    path, digest = _file(tmp_path)
    other = vk.save_video({"name": "other", "description": "leap:zzz"})
    vk.upload_file(other.upload_url, path)
    saved = vk.save_video({"name": "x", "description": "Intro\nleap:run-7"})
    fake.drop_after_upload(1)
    with pytest.raises(RetryableError):
        vk.upload_file(saved.upload_url, path)
    assert vk.find_video_by_marker(fake.owner_id, "leap:run-7") == saved.video_id
    assert vk.find_video_by_marker(fake.owner_id, "leap:run-8") is None
    assert fake.videos[saved.video_id].sha256 == digest
    assert fake.video_count == 2


def test_marker_lookup_falls_back_to_search(kit: Kit, tmp_path: Path) -> None:
    fake = FakeVK()
    vk, _ = kit.client(fake)
    path, _ = _file(tmp_path, 100)
    saved = vk.save_video({"name": "x", "description": "leap:old"})
    vk.upload_file(saved.upload_url, path)
    for i in range(3):
        newer = vk.save_video({"name": f"n{i}", "description": "-"})
        vk.upload_file(newer.upload_url, path)
    assert vk.find_video_by_marker(fake.owner_id, "leap:old", recent=2) == saved.video_id
    assert fake.api_calls[-2:] == ["video.get", "video.search"]


def test_parse_implicit_redirect() -> None:
    tokens = parse_implicit_redirect(
        "https://oauth.vk.com/blank.html#access_token=abc&expires_in=0&user_id=1&state=s",
        clock=lambda: 100.0,
    )
    assert tokens == VKTokens("abc")
    timed = parse_implicit_redirect("access_token=abc&expires_in=86400", clock=lambda: 100.0)
    assert timed.expires_at == 86500.0 and timed.refresh_token is None


def test_rotated_tokens_that_failed_to_persist_are_persisted_before_use(kit: Kit) -> None:
    fake = FakeVK()
    failures = [OSError("disk full")]

    def persist(tokens: VKTokens) -> None:
        if failures:
            raise failures.pop()
        kit.saved.append(tokens)

    vk, auth = kit.client(fake, on_refresh=persist)
    old = auth.tokens
    fake.expire_access_tokens()
    with pytest.raises(OSError, match="disk full"):
        vk.call("video.get", {})
    assert auth.tokens == old  # the new set was never used
    vk.call("video.get", {})
    assert fake.refreshes == 1 and kit.saved == [auth.tokens]
    assert fake.tokens_seen[-1] == auth.tokens.access_token != old.access_token
