"""The download stage against the fake Zoom over real HTTP on 127.0.0.1: Bearer then a CDN
redirect, resume after a cut or a crash, If-Range, the HTML trap, size and space checks,
retries, constant memory; and local files by hard link or copy."""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from leap.errors import LeapError, NotFound
from leap.providers.download import (
    DownloadAuthExpired,
    DownloadGone,
    DownloadResult,
    InsufficientSpace,
    NotMedia,
    SizeMismatch,
    copy_local,
    download_http,
    part_paths,
)
from leap.providers.http import PermanentError, RetryableError, RetryPolicy, make_http_client
from leap.providers.zoom import S2SAuth
from tests.fakes.server import serve
from tests.fakes.zoom import FakeZoom
from tests.fakes.zoom_data import FakeFile

MB = 1 << 20
START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 3, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    path: str
    query: str
    range: str | None
    if_range: str | None
    authorization: str | None


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


class Progress(list[tuple[int, int | None]]):
    def __call__(self, done: int, total: int | None) -> None:
        self.append((done, total))

    def assert_monotone_to(self, total: int) -> None:
        done = [d for d, _ in self]
        assert done == sorted(done), done
        assert self[-1] == (total, total)


@dataclass
class Rig:
    fake: FakeZoom
    base: str
    http: httpx.Client
    token: str
    files: list[FakeFile]
    seen: list[Seen]
    sleeps: Sleeps = field(default_factory=Sleeps)

    def mp4(self, size: int) -> tuple[str, str]:
        """A fresh MP4 file of `size` bytes: its key and its download_url."""
        f = self.files.pop()
        f.file_size = size
        return f.key, f"{self.base}/rec/download/{f.key}"

    def cdn(self) -> list[Seen]:
        return [s for s in self.seen if s.path.startswith("/cdn/")]

    def policy(self, attempts: int = 8) -> RetryPolicy:
        return RetryPolicy(max_attempts=attempts, rng=random.Random(0))

    def new_token(self) -> str:
        fresh = S2SAuth(
            self.http, self.base, self.fake.account_id, self.fake.client_id, self.fake.client_secret
        )
        return fresh.token()


@pytest.fixture
def rig() -> Iterator[Rig]:
    fake = FakeZoom()
    meetings = fake.generate_meetings(4, START, END, seed=11, user_email="teacher@uni.example")
    files = [f for m in meetings for f in m.completed_files() if f.file_type == "MP4"]
    assert len(files) >= 4
    seen: list[Seen] = []

    def app(request: httpx.Request) -> httpx.Response:
        if request.url.path != "/oauth/token":
            seen.append(
                Seen(
                    request.url.path,
                    request.url.query.decode(),
                    request.headers.get("range"),
                    request.headers.get("if-range"),
                    request.headers.get("authorization"),
                )
            )
        return fake.handler(request)

    with serve(app) as base, make_http_client(timeout=10) as http:
        token = S2SAuth(http, base, fake.account_id, fake.client_id, fake.client_secret).token()
        yield Rig(fake, base, http, token, files, seen)


def sha_served(fake: FakeZoom, key: str, size: int) -> str:
    """SHA-256 of what the CDN serves, computed in windows so big files never sit in memory."""
    h = hashlib.sha256()
    for start in range(0, size, 8 * MB):
        h.update(fake.file_bytes(key, start, start + 8 * MB))
    return h.hexdigest()


def sha_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(8 * MB):
            h.update(block)
    return h.hexdigest()


def write_sidecar(dest: Path, *, etag: str | None, total: int | None) -> None:
    """What a process that crashed mid-download leaves next to its .part (format version 1)."""
    _part, sidecar = part_paths(dest)
    body = {"version": 1, "etag": etag, "last_modified": None, "total": total}
    sidecar.write_text(json.dumps(body), encoding="utf-8")


def cdn_etag(rig: Rig, url: str) -> str:
    head = rig.http.head(
        url, headers={"Authorization": f"Bearer {rig.token}"}, follow_redirects=True
    )
    assert head.status_code == 200
    return head.headers["etag"]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# ---------------------------------------------------------------------------------------------
# Plain download


def test_bearer_download_is_byte_identical_and_auth_stops_at_the_redirect(
    rig: Rig, tmp_path: Path
) -> None:
    size = 5 * MB + 12_345  # not a multiple of any block or chunk size
    key, url = rig.mp4(size)
    dest = tmp_path / "source.mp4"
    progress = Progress()
    result = download_http(
        rig.http, url, dest, expected_size=size, bearer=rig.token, progress=progress
    )
    assert result == DownloadResult(dest, size, 0, 1)
    assert dest.read_bytes() == rig.fake.file_bytes(key)
    assert leftovers(tmp_path) == ["source.mp4"]  # no .part, no sidecar
    first, *rest = rig.seen
    assert first.path == f"/rec/download/{key}" and first.authorization == f"Bearer {rig.token}"
    assert first.range is None and first.query == ""
    assert [s.authorization for s in rest] == [None] and rig.fake.cdn_authorization == [None]
    progress.assert_monotone_to(size)
    # Throttled to about one call per chunk_size, not one per 64 KiB read.
    assert len(progress) <= size // MB + 2


def test_unknown_size_takes_the_servers_word(rig: Rig, tmp_path: Path) -> None:
    size = 3 * MB + 1
    key, url = rig.mp4(size)
    progress = Progress()
    result = download_http(
        rig.http, url, tmp_path / "a.mp4", expected_size=None, bearer=rig.token, progress=progress
    )
    assert result.size == size and (tmp_path / "a.mp4").read_bytes() == rig.fake.file_bytes(key)
    progress.assert_monotone_to(size)


# ---------------------------------------------------------------------------------------------
# Resume


def test_a_cut_mid_body_resumes_from_the_bytes_on_disk(rig: Rig, tmp_path: Path) -> None:
    size = 6 * MB
    key, url = rig.mp4(size)
    cut = 2 * MB + 777
    rig.fake.inject_download_drop(after_bytes=cut)
    progress = Progress()
    dest = tmp_path / "source.mp4"
    result = download_http(
        rig.http,
        url,
        dest,
        expected_size=size,
        bearer=rig.token,
        progress=progress,
        policy=rig.policy(),
        sleep=rig.sleeps,
    )
    assert sha_file(dest) == sha_served(rig.fake, key, size)
    first, second = rig.cdn()
    assert first.range is None
    assert second.range == f"bytes={cut}-"  # only the missing part, not from 0
    assert second.if_range == f'"{key}-{size}"'  # the fake's ETag guards the splice
    assert result == DownloadResult(dest, size, cut, 2)
    assert len(rig.sleeps) == 1
    progress.assert_monotone_to(size)
    assert leftovers(tmp_path) == ["source.mp4"]


def test_a_crashed_process_leaves_a_part_that_a_new_call_finishes(rig: Rig, tmp_path: Path) -> None:
    size = 4 * MB + 3
    key, url = rig.mp4(size)
    dest = tmp_path / "source.mp4"
    part, _ = part_paths(dest)
    have = 1_234_567
    part.write_bytes(rig.fake.file_bytes(key, 0, have))
    write_sidecar(dest, etag=cdn_etag(rig, url), total=size)
    rig.seen.clear()
    result = download_http(rig.http, url, dest, expected_size=size, bearer=rig.token)
    assert result == DownloadResult(dest, size, have, 1)
    assert [s.range for s in rig.cdn()] == [f"bytes={have}-"]
    assert dest.read_bytes() == rig.fake.file_bytes(key)
    assert leftovers(tmp_path) == ["source.mp4"]


def test_a_real_leftover_from_a_failed_call_is_resumed(rig: Rig, tmp_path: Path) -> None:
    size = 3 * MB
    key, url = rig.mp4(size)
    dest = tmp_path / "source.mp4"
    rig.fake.inject_download_drop(after_bytes=MB)
    with pytest.raises(RetryableError, match="retries exhausted"):
        download_http(
            rig.http, url, dest, expected_size=size, bearer=rig.token, policy=rig.policy(1)
        )
    part, sidecar = part_paths(dest)
    assert part.stat().st_size == MB and sidecar.exists() and not dest.exists()
    result = download_http(rig.http, url, dest, expected_size=size, bearer=rig.token)
    assert result.resumed_from == MB and dest.read_bytes() == rig.fake.file_bytes(key)


def test_if_range_mismatch_restarts_from_zero(rig: Rig, tmp_path: Path) -> None:
    size = 2 * MB + 99
    key, url = rig.mp4(size)
    dest = tmp_path / "source.mp4"
    part, _ = part_paths(dest)
    part.write_bytes(b"\xee" * 700_000)  # bytes of an older version of the file
    write_sidecar(dest, etag='"an-older-version"', total=size)
    result = download_http(rig.http, url, dest, expected_size=size, bearer=rig.token)
    (request,) = rig.cdn()
    assert request.range == "bytes=700000-" and request.if_range == '"an-older-version"'
    assert result == DownloadResult(dest, size, 0, 1)  # the server sent 200: whole file
    assert dest.read_bytes() == rig.fake.file_bytes(key)


def test_a_part_without_sidecar_is_never_spliced(rig: Rig, tmp_path: Path) -> None:
    size = MB + 5
    key, url = rig.mp4(size)
    dest = tmp_path / "source.mp4"
    part, _ = part_paths(dest)
    part.write_bytes(b"?" * 1000)
    result = download_http(rig.http, url, dest, expected_size=size, bearer=rig.token)
    assert [s.range for s in rig.cdn()] == [None]
    assert result.resumed_from == 0 and dest.read_bytes() == rig.fake.file_bytes(key)


def test_a_part_longer_than_expected_is_dropped(rig: Rig, tmp_path: Path) -> None:
    size = MB
    key, url = rig.mp4(size)
    dest = tmp_path / "source.mp4"
    part, _ = part_paths(dest)
    part.write_bytes(b"x" * (size + 10))
    write_sidecar(dest, etag=cdn_etag(rig, url), total=size + 10)
    rig.seen.clear()
    download_http(rig.http, url, dest, expected_size=size, bearer=rig.token)
    assert [s.range for s in rig.cdn()] == [None]
    assert dest.read_bytes() == rig.fake.file_bytes(key)


def test_a_complete_part_is_finished_on_416(rig: Rig, tmp_path: Path) -> None:
    """A crash between the last byte and the rename: the server says 416, nothing is sent."""
    size = MB + 17
    key, url = rig.mp4(size)
    dest = tmp_path / "source.mp4"
    part, _ = part_paths(dest)
    part.write_bytes(rig.fake.file_bytes(key))
    write_sidecar(dest, etag=cdn_etag(rig, url), total=size)
    rig.seen.clear()
    result = download_http(rig.http, url, dest, expected_size=size, bearer=rig.token)
    assert [s.range for s in rig.cdn()] == [f"bytes={size}-"]
    assert result == DownloadResult(dest, size, size, 1)
    assert dest.read_bytes() == rig.fake.file_bytes(key)
    assert leftovers(tmp_path) == ["source.mp4"]


# ---------------------------------------------------------------------------------------------
# Refusals


def test_host_only_html_page_is_a_permanent_error(rig: Rig, tmp_path: Path) -> None:
    _key, url = rig.mp4(MB)
    rig.fake.host_only_html = True
    with pytest.raises(NotMedia) as info:
        download_http(rig.http, url, tmp_path / "s.mp4", expected_size=MB, bearer=rig.token)
    assert isinstance(info.value, PermanentError)
    assert "HTML page" in info.value.message and "\n" not in info.value.message
    assert leftovers(tmp_path) == []


def test_unexpected_content_type_is_named(rig: Rig, tmp_path: Path) -> None:
    rig.files[-1].content_type = "application/pdf"
    _key, url = rig.mp4(MB)
    with pytest.raises(NotMedia, match="application/pdf"):
        download_http(rig.http, url, tmp_path / "s.mp4", expected_size=MB, bearer=rig.token)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("delta", [+10, -10])
def test_size_mismatch_leaves_nothing_in_dest(rig: Rig, tmp_path: Path, delta: int) -> None:
    size = 2 * MB
    _key, url = rig.mp4(size)
    dest = tmp_path / "s.mp4"
    with pytest.raises(SizeMismatch, match=f"{size} bytes"):
        download_http(rig.http, url, dest, expected_size=size + delta, bearer=rig.token)
    assert not dest.exists()
    assert leftovers(tmp_path) in ([], ["s.mp4.part.json"])  # no corrupt bytes kept
    assert not part_paths(dest)[0].exists()


def test_a_full_disk_is_refused_before_any_request(rig: Rig, tmp_path: Path) -> None:
    size = 200 * MB
    _key, url = rig.mp4(size)
    with pytest.raises(InsufficientSpace) as info:
        download_http(
            rig.http,
            url,
            tmp_path / "s.mp4",
            expected_size=size,
            bearer=rig.token,
            free_space=lambda _dir: 150 * MB,
        )
    assert rig.seen == [] and leftovers(tmp_path) == []
    assert f"MB, 150 MB free on {tmp_path}" in info.value.message
    assert info.value.need > size and isinstance(info.value, LeapError)


def test_a_missing_file_is_gone(rig: Rig, tmp_path: Path) -> None:
    with pytest.raises(DownloadGone) as info:
        download_http(
            rig.http,
            f"{rig.base}/rec/download/no-such-file",
            tmp_path / "s.mp4",
            expected_size=None,
            bearer=rig.token,
        )
    assert isinstance(info.value, NotFound) and info.value.exit_code == 3
    assert "gone at the source" in info.value.message


# ---------------------------------------------------------------------------------------------
# Idempotence, auth, retries


def test_a_complete_dest_makes_no_request(rig: Rig, tmp_path: Path) -> None:
    size = MB
    key, url = rig.mp4(size)
    dest = tmp_path / "s.mp4"
    download_http(rig.http, url, dest, expected_size=size, bearer=rig.token)
    before = len(rig.seen)
    again = download_http(rig.http, url, dest, expected_size=size, bearer=rig.token)
    assert again == DownloadResult(dest, size, size, 0) and len(rig.seen) == before
    dest.write_bytes(b"truncated")  # a dest of the wrong size is not trusted
    fixed = download_http(rig.http, url, dest, expected_size=size, bearer=rig.token)
    assert fixed.attempts == 1 and dest.read_bytes() == rig.fake.file_bytes(key)


def test_expired_token_keeps_the_part_and_a_new_token_resumes(rig: Rig, tmp_path: Path) -> None:
    size = 3 * MB
    key, url = rig.mp4(size)
    dest = tmp_path / "s.mp4"
    rig.fake.inject_download_drop(after_bytes=MB)
    with pytest.raises(RetryableError):
        download_http(
            rig.http, url, dest, expected_size=size, bearer=rig.token, policy=rig.policy(1)
        )
    rig.fake.expire_all_tokens()
    with pytest.raises(DownloadAuthExpired) as info:
        download_http(rig.http, url, dest, expected_size=size, bearer=rig.token)
    assert info.value.status == 401 and part_paths(dest)[0].stat().st_size == MB
    result = download_http(rig.http, url, dest, expected_size=size, bearer=rig.new_token())
    assert result.resumed_from == MB and dest.read_bytes() == rig.fake.file_bytes(key)


def test_query_token_is_the_fallback_after_a_refused_header(rig: Rig, tmp_path: Path) -> None:
    size = MB
    key, url = rig.mp4(size)
    result = download_http(
        rig.http,
        url,
        tmp_path / "s.mp4",
        expected_size=size,
        bearer="not-a-valid-token",
        query_token=rig.token,
    )
    assert result.attempts == 2
    refused, accepted, cdn = rig.seen
    assert refused.authorization == "Bearer not-a-valid-token" and refused.query == ""
    assert accepted.authorization is None and accepted.query == f"access_token={rig.token}"
    assert cdn.path.startswith("/cdn/") and "access_token" not in cdn.query
    assert (tmp_path / "s.mp4").read_bytes() == rig.fake.file_bytes(key)


def test_429_on_the_cdn_honours_retry_after(rig: Rig, tmp_path: Path) -> None:
    key, url = rig.mp4(MB)
    rig.fake.inject_429("cdn", retry_after=7)
    result = download_http(
        rig.http,
        url,
        tmp_path / "s.mp4",
        expected_size=MB,
        bearer=rig.token,
        policy=rig.policy(),
        sleep=rig.sleeps,
    )
    assert rig.sleeps == [7.0] and result.attempts == 2
    assert (tmp_path / "s.mp4").read_bytes() == rig.fake.file_bytes(key)


def test_retries_exhausted_raise_retryable(rig: Rig, tmp_path: Path) -> None:
    _key, url = rig.mp4(MB)
    rig.fake.inject_5xx("download", n=10)
    with pytest.raises(RetryableError, match="retries exhausted after 3 attempts") as info:
        download_http(
            rig.http,
            url,
            tmp_path / "s.mp4",
            expected_size=MB,
            bearer=rig.token,
            policy=rig.policy(3),
            sleep=rig.sleeps,
        )
    assert info.value.status == 503 and not isinstance(info.value, DownloadAuthExpired)
    assert len(rig.sleeps) == 2 and all(0 <= s <= 1.0 for s in rig.sleeps)
    assert rig.fake.requests["download"] == 3 and leftovers(tmp_path) == []


def test_cuts_that_make_progress_do_not_use_up_the_attempts(rig: Rig, tmp_path: Path) -> None:
    size = 6 * MB
    key, url = rig.mp4(size)
    rig.fake.inject_download_drop(after_bytes=MB, n=5)
    result = download_http(
        rig.http,
        url,
        tmp_path / "s.mp4",
        expected_size=size,
        bearer=rig.token,
        policy=rig.policy(2),
        sleep=rig.sleeps,
    )
    assert result.attempts == 6 and result.resumed_from == 5 * MB
    assert [s.range for s in rig.cdn()] == [None] + [f"bytes={k * MB}-" for k in range(1, 6)]
    assert sha_file(tmp_path / "s.mp4") == sha_served(rig.fake, key, size)


# ---------------------------------------------------------------------------------------------
# Servers that are not Zoom: no Content-Length, compression


class ChunkedOrigin:
    """A file served without Content-Length (chunked), whose first answers end early or run
    long, to reach the checks that a Content-Length would otherwise make for us."""

    def __init__(self, data: bytes, first_body: bytes, encoding: str | None = None) -> None:
        self.data = data
        self.first_body = first_body
        self.encoding = encoding
        self.ranges: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        rng = request.headers.get("range")
        self.ranges.append(rng)
        headers = {"Content-Type": "video/mp4", "ETag": '"v1"'}
        if self.encoding:
            headers["Content-Encoding"] = self.encoding
        if rng is None:
            body = self.first_body
            return httpx.Response(200, headers=headers, content=iter([body[:10], body[10:]]))
        start = int(rng.removeprefix("bytes=").rstrip("-"))
        headers["Content-Range"] = f"bytes {start}-{len(self.data) - 1}/{len(self.data)}"
        return httpx.Response(206, headers=headers, content=iter([self.data[start:]]))


def test_a_body_that_ends_early_but_cleanly_is_resumed(tmp_path: Path) -> None:
    data = os.urandom(50_000)
    origin = ChunkedOrigin(data, data[:20_000])
    sleeps = Sleeps()
    with serve(origin) as base, make_http_client(timeout=10) as http:
        result = download_http(
            http,
            f"{base}/f",
            tmp_path / "f.mp4",
            expected_size=len(data),
            policy=RetryPolicy(rng=random.Random(0)),
            sleep=sleeps,
        )
    assert origin.ranges == [None, "bytes=20000-"] and result.resumed_from == 20_000
    assert (tmp_path / "f.mp4").read_bytes() == data and len(sleeps) == 1


def test_a_body_longer_than_expected_is_cut_off_and_dropped(tmp_path: Path) -> None:
    data = os.urandom(10_000)
    origin = ChunkedOrigin(data, data + os.urandom(5_000))
    with (
        serve(origin) as base,
        make_http_client(timeout=10) as http,
        pytest.raises(SizeMismatch, match="more than 10000 bytes"),
    ):
        download_http(http, f"{base}/f", tmp_path / "f.mp4", expected_size=len(data))
    assert leftovers(tmp_path) == []


def test_a_compressed_body_is_refused(tmp_path: Path) -> None:
    origin = ChunkedOrigin(b"x" * 100, b"x" * 100, encoding="gzip")
    with (
        serve(origin) as base,
        make_http_client(timeout=10) as http,
        pytest.raises(NotMedia, match="gzip"),
    ):
        download_http(http, f"{base}/f", tmp_path / "f.mp4", expected_size=None)
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# Memory


def test_memory_stays_flat_for_a_300_mb_file(rig: Rig, tmp_path: Path) -> None:
    size = 300 * MB + 1
    key, url = rig.mp4(size)
    dest = tmp_path / "big.mp4"
    tracemalloc.start()
    try:
        download_http(rig.http, url, dest, expected_size=size, bearer=rig.token)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The fake server runs in this process too, so its buffers count against the limit.
    assert peak < 10 * MB, f"peak traced memory {peak / MB:.1f} MB"
    assert dest.stat().st_size == size
    assert sha_file(dest) == sha_served(rig.fake, key, size)


# ---------------------------------------------------------------------------------------------
# Local files


def test_copy_local_hard_links_on_the_same_filesystem(tmp_path: Path) -> None:
    src = tmp_path / "in" / "lecture.mp4"
    src.parent.mkdir()
    src.write_bytes(os.urandom(300_000))
    dest = tmp_path / "ws" / "source.mp4"
    progress = Progress()
    result = copy_local(src, dest, progress=progress)
    assert result == DownloadResult(dest, 300_000, 0, 1)
    assert dest.stat().st_ino == src.stat().st_ino and src.stat().st_nlink == 2
    progress.assert_monotone_to(300_000)
    assert copy_local(src, dest).attempts == 0  # already the same inode
    assert leftovers(dest.parent) == ["source.mp4"]


def test_copy_local_copies_when_asked(tmp_path: Path) -> None:
    src = tmp_path / "lecture.mp4"
    data = os.urandom(3 * MB + 7)
    src.write_bytes(data)
    dest = tmp_path / "ws" / "source.mp4"
    progress = Progress()
    result = copy_local(src, dest, link=False, progress=progress, chunk_size=MB)
    assert result.size == len(data) and dest.read_bytes() == data
    assert dest.stat().st_ino != src.stat().st_ino
    progress.assert_monotone_to(len(data))
    assert copy_local(src, dest, link=False).attempts == 0
    assert leftovers(dest.parent) == ["source.mp4"]


def test_copy_local_falls_back_to_a_copy_across_filesystems(tmp_path: Path) -> None:
    if not Path("/dev/shm").is_dir() or Path("/dev/shm").stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs a second filesystem (/dev/shm)")
    src = tmp_path / "lecture.mp4"
    src.write_bytes(b"abc" * 100_000)
    with tempfile.TemporaryDirectory(dir="/dev/shm") as other:
        dest = Path(other) / "source.mp4"
        result = copy_local(src, dest)
        assert result.attempts == 1 and dest.read_bytes() == src.read_bytes()
        assert dest.stat().st_ino != src.stat().st_ino


def test_copy_local_refusals(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="gone"):
        copy_local(tmp_path / "missing.mp4", tmp_path / "out.mp4")
    src = tmp_path / "lecture.mp4"
    src.write_bytes(b"x" * 1000)
    with pytest.raises(InsufficientSpace):
        copy_local(src, tmp_path / "ws" / "out.mp4", link=False, free_space=lambda _d: MB)
    assert leftovers(tmp_path / "ws") == []
