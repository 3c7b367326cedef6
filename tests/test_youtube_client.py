"""The YouTube client against the fake YouTube: resumable uploads through partial chunks,
dropped connections and crashes, quota and credential errors, thumbnails, playlists, captions."""

from __future__ import annotations

import hashlib
import random
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from leap.providers.http import (
    CredentialRejected,
    PermanentError,
    RetryPolicy,
    make_http_client,
)
from leap.providers.youtube import (
    CHUNK_ALIGN,
    COSTS,
    QuotaDeferred,
    SessionGone,
    YouTubeAuth,
    YouTubeClient,
    add_marker,
    next_pacific_midnight,
)
from tests.fakes.server import mock_transport, serve
from tests.fakes.youtube import FakeYouTube

BASE = "https://youtube.test"
META = {
    "snippet": {"title": "Lecture 1", "description": "Intro"},
    "status": {"privacyStatus": "private"},
}


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


class Crash(Exception):
    pass


class Kit:
    """Builds clients over MockTransport or a real server and closes every one of them."""

    def __init__(self) -> None:
        self.clients: list[httpx.Client] = []
        self.sleeps = Sleeps()

    def client(
        self,
        fake: FakeYouTube,
        base: str | None = None,
        *,
        clock: float | None = None,
        access_token: str | None = None,
    ) -> YouTubeClient:
        transport = None if base else mock_transport(fake.handler)
        http = make_http_client(timeout=10, transport=transport)
        self.clients.append(http)
        root = base or BASE
        policy = RetryPolicy(rng=random.Random(7))
        auth = YouTubeAuth(
            http,
            token_uri=root + "/token",
            client_id=fake.client_id,
            client_secret=fake.client_secret,
            refresh_token=fake.refresh_token,
            access_token=access_token,
            expires_at=(2**40 if access_token else 0.0),
            policy=policy,
            sleep=self.sleeps,
        )
        return YouTubeClient(
            http,
            auth,
            api_base_url=root + "/youtube/v3",
            upload_base_url=root + "/upload/youtube/v3",
            policy=policy,
            sleep=self.sleeps,
            clock=(lambda: clock) if clock is not None else datetime.now(UTC).timestamp,
        )


@pytest.fixture
def kit() -> Iterator[Kit]:
    made = Kit()
    yield made
    for http in made.clients:
        http.close()


def make_file(path: Path, size: int, seed: int = 1) -> str:
    """Write `size` pseudo-random bytes in 1 MiB blocks; returns their SHA-256."""
    rng = random.Random(seed)
    digest = hashlib.sha256()
    block = rng.randbytes(1024 * 1024)
    with path.open("wb") as out:
        left = size
        while left:
            piece = block[: min(left, len(block))]
            out.write(piece)
            digest.update(piece)
            left -= len(piece)
            block = block[1:] + block[:1]
    return digest.hexdigest()


def test_multi_chunk_upload_makes_exactly_one_video(kit: Kit, tmp_path: Path) -> None:
    fake = FakeYouTube()
    yt = kit.client(fake)
    size = 5 * CHUNK_ALIGN + 1234
    path = tmp_path / "v.mp4"
    digest = make_file(path, size)
    uri = yt.start_session(META, size=size, mime="video/mp4")
    assert uri.startswith(BASE + "/upload/youtube/v3/videos?") and "upload_id=" in uri
    seen: list[int] = []
    video = yt.upload(uri, path, size=size, chunk_size=2 * CHUNK_ALIGN, on_progress=seen.append)
    assert fake.video_count == 1
    stored = fake.videos[video["id"]]
    assert (stored.sha256, stored.size) == (digest, size)
    assert video["snippet"]["title"] == "Lecture 1"
    assert seen == [2 * CHUNK_ALIGN, 4 * CHUNK_ALIGN, size]
    assert fake.chunk_sizes == [2 * CHUNK_ALIGN, 2 * CHUNK_ALIGN, CHUNK_ALIGN + 1234]
    assert yt.units_spent["videos.insert"] == COSTS["videos.insert"]


def test_partial_chunk_acceptance_resumes_from_confirmed_offset(kit: Kit, tmp_path: Path) -> None:
    fake = FakeYouTube()
    fake.accept_partial = CHUNK_ALIGN
    yt = kit.client(fake)
    size = 3 * CHUNK_ALIGN + 10
    path = tmp_path / "v.mp4"
    digest = make_file(path, size)
    uri = yt.start_session(META, size=size, mime="video/mp4")
    seen: list[int] = []
    video = yt.upload(uri, path, size=size, chunk_size=4 * CHUNK_ALIGN, on_progress=seen.append)
    assert seen == [CHUNK_ALIGN, 2 * CHUNK_ALIGN, 3 * CHUNK_ALIGN, size]
    assert fake.videos[video["id"]].sha256 == digest
    assert fake.video_count == 1
    assert kit.sleeps == []


def test_dropped_connections_resume_from_confirmed_offset(kit: Kit, tmp_path: Path) -> None:
    fake = FakeYouTube()
    yt = kit.client(fake)
    size = 6 * CHUNK_ALIGN
    path = tmp_path / "v.mp4"
    digest = make_file(path, size)
    uri = yt.start_session(META, size=size, mime="video/mp4")
    fake.drop_mid_body(100_000)  # first chunk: 100 000 bytes stored, then the line dies
    fake.inject_drop("upload_put", 1)  # next PUT (the status query) gets no answer
    seen: list[int] = []
    video = yt.upload(uri, path, size=size, chunk_size=2 * CHUNK_ALIGN, on_progress=seen.append)
    assert seen[:2] == [0, 100_000]  # the first drop lost the whole chunk
    assert fake.videos[video["id"]].sha256 == digest
    assert fake.video_count == 1
    assert len(kit.sleeps) == 2


def test_crash_then_new_client_resumes_with_only_uri_and_offset(kit: Kit, tmp_path: Path) -> None:
    fake = FakeYouTube()
    size = 5 * CHUNK_ALIGN + 7
    path = tmp_path / "v.mp4"
    digest = make_file(path, size)
    persisted: dict[str, object] = {}
    first = kit.client(fake)
    persisted["uri"] = first.start_session(META, size=size, mime="video/mp4")

    def save_then_crash(offset: int) -> None:
        persisted["offset"] = offset
        if offset >= 2 * CHUNK_ALIGN:
            raise Crash

    with pytest.raises(Crash):
        first.upload(
            str(persisted["uri"]),
            path,
            size=size,
            chunk_size=CHUNK_ALIGN,
            on_progress=save_then_crash,
        )
    second = kit.client(fake)
    uri = str(persisted["uri"])
    offset = second.query_offset(uri, size)
    assert offset == persisted["offset"] == 2 * CHUNK_ALIGN
    assert isinstance(offset, int)
    video = second.upload(uri, path, size=size, offset=offset, chunk_size=CHUNK_ALIGN)
    assert fake.video_count == 1
    assert fake.videos[video["id"]].sha256 == digest
    # A crash after the last byte: the status query hands back the finished video.
    third = kit.client(fake)
    done = third.query_offset(uri, size)
    assert isinstance(done, dict) and done["id"] == video["id"]
    assert third.upload(uri, path, size=size, offset=size)["id"] == video["id"]
    assert fake.video_count == 1


def test_308_without_range_restarts_from_zero(kit: Kit, tmp_path: Path) -> None:
    fake = FakeYouTube()
    yt = kit.client(fake)
    size = 3 * CHUNK_ALIGN
    path = tmp_path / "v.mp4"
    digest = make_file(path, size)
    uri = yt.start_session(META, size=size, mime="video/mp4")
    assert yt.query_offset(uri, size) == 0
    seen: list[int] = []
    # A stale persisted offset: the server holds nothing and answers 308 with no Range.
    video = yt.upload(
        uri,
        path,
        size=size,
        offset=2 * CHUNK_ALIGN,
        chunk_size=CHUNK_ALIGN,
        on_progress=seen.append,
    )
    assert seen[0] == 0
    assert fake.videos[video["id"]].sha256 == digest
    assert fake.video_count == 1


def test_session_gone_then_marker_search(kit: Kit, tmp_path: Path) -> None:
    fake = FakeYouTube()
    yt = kit.client(fake)
    size = 2 * CHUNK_ALIGN
    path = tmp_path / "v.mp4"
    make_file(path, size)
    marker = "leap-run-42"
    uri = yt.start_session(add_marker(META, marker), size=size, mime="video/mp4")
    fake.expire_session(uri)
    with pytest.raises(SessionGone):
        yt.query_offset(uri, size)
    with pytest.raises(SessionGone):
        yt.upload(uri, path, size=size, chunk_size=CHUNK_ALIGN)
    assert yt.find_video_by_marker(marker) is None
    fake.add_video({"title": "other", "description": "no marker"})
    video_id = fake.add_video({"title": "Lecture 1", "tags": ["x", marker]})
    fake.add_video({"title": "later", "description": "nothing"})
    assert yt.find_video_by_marker(marker) == video_id
    desc_id = fake.add_video({"title": "d", "description": f"text\n{marker}-b"})
    assert yt.find_video_by_marker(f"{marker}-b") == desc_id
    assert yt.units_spent["videos.list"] == 2


def test_quota_errors_defer_to_pacific_midnight(kit: Kit) -> None:
    fake = FakeYouTube()
    now = datetime(2026, 11, 24, 1, 30, tzinfo=UTC)  # 17:30 PST on the 23rd
    yt = kit.client(fake, clock=now.timestamp())
    fake.inject_error("upload_start", 403, "quotaExceeded")
    with pytest.raises(QuotaDeferred) as info:
        yt.start_session(META, size=10, mime="video/mp4")
    assert info.value.retry_at == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    assert info.value.reason == "quotaExceeded" and info.value.exit_code == 4
    fake.inject_error("upload_start", 400, "uploadLimitExceeded")
    with pytest.raises(QuotaDeferred) as info:
        yt.start_session(META, size=10, mime="video/mp4")
    assert info.value.retry_at == now + timedelta(hours=24)
    assert kit.sleeps == []
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert next_pacific_midnight(summer) == datetime(2026, 7, 2, 7, 0, tzinfo=UTC)


def test_rate_limits_and_5xx_are_retried(kit: Kit, tmp_path: Path) -> None:
    fake = FakeYouTube()
    yt = kit.client(fake)
    fake.inject_error("upload_start", 403, "rateLimitExceeded")
    fake.inject_error("upload_start", 503, "backendError")
    size = 2 * CHUNK_ALIGN
    path = tmp_path / "v.mp4"
    digest = make_file(path, size)
    uri = yt.start_session(META, size=size, mime="video/mp4")
    fake.inject_error("upload_put", 500, "backendError")
    video = yt.upload(uri, path, size=size, chunk_size=CHUNK_ALIGN)
    assert fake.videos[video["id"]].sha256 == digest
    assert len(kit.sleeps) == 3
    fake.inject_error("playlist_items_insert", 400, "invalidValue")
    with pytest.raises(PermanentError, match="HTTP 400"):
        yt.add_to_playlist("PL1", video["id"])


def test_chunks_must_be_aligned(kit: Kit, tmp_path: Path) -> None:
    fake = FakeYouTube()
    yt = kit.client(fake)
    path = tmp_path / "v.mp4"
    make_file(path, 3 * CHUNK_ALIGN)
    uri = yt.start_session(META, size=3 * CHUNK_ALIGN, mime="video/mp4")
    with pytest.raises(ValueError, match="multiple"):
        yt.upload(uri, path, size=3 * CHUNK_ALIGN, chunk_size=CHUNK_ALIGN + 1)
    # The fake refuses a misaligned non-final chunk, as YouTube does.
    with httpx.Client(transport=mock_transport(fake.handler)) as raw:
        token = raw.post(
            BASE + "/token",
            data={
                "grant_type": "refresh_token",
                "client_id": fake.client_id,
                "client_secret": fake.client_secret,
                "refresh_token": fake.refresh_token,
            },
        ).json()["access_token"]
        answer = raw.put(
            uri,
            content=b"x" * 1000,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Range": f"bytes 0-999/{3 * CHUNK_ALIGN}",
            },
        )
    assert answer.status_code == 400
    assert fake.sessions[uri.split("upload_id=")[1]].offset == 0


def test_invalid_grant_is_credential_rejected(kit: Kit) -> None:
    fake = FakeYouTube()
    fake.invalid_grant = True
    yt = kit.client(fake)
    with pytest.raises(CredentialRejected, match="re-authenticate"):
        yt.start_session(META, size=10, mime="video/mp4")


def test_expired_token_is_refreshed_once(kit: Kit, tmp_path: Path) -> None:
    fake = FakeYouTube()
    yt = kit.client(fake, access_token="stale")  # looks valid locally, the server refuses it
    size = 2 * CHUNK_ALIGN
    path = tmp_path / "v.mp4"
    digest = make_file(path, size)
    uri = yt.start_session(META, size=size, mime="video/mp4")
    assert fake.tokens_issued == 1
    fake.expire_all_tokens()  # dies mid-upload
    video = yt.upload(uri, path, size=size, chunk_size=CHUNK_ALIGN)
    assert fake.tokens_issued == 2
    assert fake.videos[video["id"]].sha256 == digest


def test_thumbnail_playlist_and_captions(kit: Kit, tmp_path: Path) -> None:
    fake = FakeYouTube()
    yt = kit.client(fake)
    video_id = fake.add_video({"title": "t"})
    thumb = tmp_path / "t.jpg"
    thumb.write_bytes(b"\xff\xd8\xff" + b"0" * 100)
    assert yt.set_thumbnail(video_id, thumb).ok
    fake.unverified_channel = True
    result = yt.set_thumbnail(video_id, thumb)
    assert not result.ok and result.warning and "verified" in result.warning
    assert fake.videos[video_id].thumbnails == 1
    yt.add_to_playlist("PL1", video_id)
    assert fake.playlist_items == [("PL1", video_id)]
    srt = tmp_path / "c.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nПривет\n", encoding="utf-8")
    caption = yt.insert_caption(video_id, srt, language="ru", name="Auto (LEAP)")
    assert caption["snippet"]["language"] == "ru"
    assert "Привет" in fake.videos[video_id].captions[0]["body"]
    assert yt.units_spent["captions.insert"] == 400


def test_upload_over_real_http_server(kit: Kit, tmp_path: Path) -> None:
    fake = FakeYouTube()
    size = 4 * CHUNK_ALIGN + 99
    path = tmp_path / "v.mp4"
    digest = make_file(path, size)
    with serve(fake.handler) as base:
        yt = kit.client(fake, base)
        uri = yt.start_session(META, size=size, mime="video/mp4")
        assert uri.startswith(base + "/upload/youtube/v3/videos?")
        fake.drop_mid_body(CHUNK_ALIGN + 5)
        fake.accept_partial = 3 * CHUNK_ALIGN
        video = yt.upload(uri, path, size=size, chunk_size=2 * CHUNK_ALIGN)
        assert fake.video_count == 1
        assert fake.videos[video["id"]].sha256 == digest
        srt = tmp_path / "c.vtt"
        srt.write_text("WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n")
        yt.insert_caption(video["id"], srt, language="en", name="en")
        fake.unverified_channel = True
        thumb = tmp_path / "t.png"
        thumb.write_bytes(b"\x89PNG" + b"0" * 10)
        assert yt.set_thumbnail(video["id"], thumb).warning
        for http in kit.clients:
            http.close()


def test_memory_stays_flat_for_a_200_mb_upload(kit: Kit, tmp_path: Path) -> None:
    # Over the real server: MockTransport reads every request body into memory by design.
    fake = FakeYouTube()
    size = 200 * 1024 * 1024 + 12345
    path = tmp_path / "big.mp4"
    with path.open("wb") as out:
        out.truncate(size)  # sparse zeros: cheap to create, hashed like any other bytes
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(8 * 1024 * 1024):
            digest.update(block)
    chunk = 16 * CHUNK_ALIGN  # 4 MiB
    with serve(fake.handler) as base:
        yt = kit.client(fake, base)
        uri = yt.start_session(META, size=size, mime="video/mp4")
        tracemalloc.start()
        try:
            video = yt.upload(uri, path, size=size, chunk_size=chunk)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        for http in kit.clients:
            http.close()
    assert fake.videos[video["id"]].sha256 == digest.hexdigest()
    assert fake.video_count == 1
    # The fake server holds one chunk while hashing it; the client only a read block.
    assert peak < 3 * chunk, f"peak {peak / 2**20:.1f} MiB"
    path.unlink()
