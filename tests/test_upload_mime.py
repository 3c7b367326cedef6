"""YouTube uploads declare the MIME type of the file's container, not video/mp4 for all: the
fake YouTube records what each upload session declared."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from leap.providers.youtube import video_mime
from tests import media
from tests.fakes.server import serve
from tests.fakes.youtube import FakeYouTube

PRESET = """name = "yt"
platform = "youtube"
credential = "chan"
[metadata]
privacy = "unlisted"
title = "{title}"
"""
TEMPLATE = """name = "talks"
presets = ["yt"]
[match]
keywords = ["talk"]
[blank]
min_duration_minutes = 0
min_size_mb = 0
[processing]
stages = ["download", "trim", "upload"]
[processing.trim]
enabled = false
"""


@pytest.mark.parametrize(
    ("name", "mime"),
    [
        ("a.mp4", "video/mp4"),
        ("a.MKV", "video/x-matroska"),
        ("a.webm", "video/webm"),
        ("a.mov", "video/quicktime"),
        ("a.ts", "video/mp2t"),
        # YouTube takes video/* or application/octet-stream: audio and the unknown go as bytes.
        ("a.m4a", "application/octet-stream"),
        ("a.bin", "application/octet-stream"),
        ("noext", "application/octet-stream"),
    ],
)
def test_video_mime_follows_the_extension(name: str, mime: str) -> None:
    assert video_mime(Path(name)) == mime


@pytest.fixture
def youtube() -> Iterator[tuple[FakeYouTube, str]]:
    fake = FakeYouTube()
    with serve(fake.handler) as base:
        yield fake, base


@pytest.mark.parametrize(
    ("suffix", "mime"), [(".mkv", "video/x-matroska"), (".mov", "video/quicktime")]
)
def test_an_upload_declares_its_container(
    leap_env: dict[str, str],
    cli: Any,
    tmp_path: Path,
    youtube: tuple[FakeYouTube, str],
    monkeypatch: pytest.MonkeyPatch,
    suffix: str,
    mime: str,
) -> None:
    fake, base = youtube
    monkeypatch.setenv("LEAP_SYNC__LOCAL_SETTLE_SECONDS", "0")
    monkeypatch.setenv("LEAP_YOUTUBE__API_BASE_URL", f"{base}/youtube/v3")
    monkeypatch.setenv("LEAP_YOUTUBE__UPLOAD_BASE_URL", f"{base}/upload/youtube/v3")
    monkeypatch.setenv("LEAP_YOUTUBE__TOKEN_URI", f"{base}/token")
    media.make_video(tmp_path / "inbox" / f"talk one{suffix}", 1, faststart=False)
    secret = {
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
        "refresh_token": fake.refresh_token,
    }
    (tmp_path / "au.json").write_text(json.dumps(secret))
    (tmp_path / "yt.toml").write_text(PRESET)
    (tmp_path / "t.toml").write_text(TEMPLATE)
    for args in (
        ("init", "--yes"),
        ("credentials", "add", "youtube", "chan", "--from-file", str(tmp_path / "au.json")),
        ("preset", "add", "--file", str(tmp_path / "yt.toml")),
        ("template", "add", "--file", str(tmp_path / "t.toml")),
        ("source", "add", "local", "in", str(tmp_path / "inbox")),
        ("sync",),
    ):
        res = cli(*args)
        assert res.code == 0, (args, res.stderr)
    [row] = cli("--json", "recordings", "list").json()
    res = cli("process", str(row["id"]), "--now")
    assert res.code == 0, res.stderr
    assert [s.mime for s in fake.sessions.values()] == [mime]
    assert fake.video_count == 1
