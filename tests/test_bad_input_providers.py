"""Issue 18, bad-input sweep: fake-API replies. Every provider client's parse path is fed
hypothesis-mutated JSON (keys missing, values of the wrong type, null, huge and non-finite
numbers, hostile strings, deep nesting, bodies that are not JSON at all) through an injected
httpx MockTransport; the client either returns or raises a LeapError (ProviderError and its
kin), never a KeyError, TypeError, AttributeError, ValueError or RecursionError.

Database-free and derandomized: the same examples on every run and on every CI leg.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from leap.errors import LeapError
from leap.providers.fireworks import FireworksBatch, FireworksTranscriber
from leap.providers.http import (
    RetryPolicy,
    error_excerpt,
    json_body,
    make_http_client,
    parse_retry_after,
)
from leap.providers.llm import ChatClient, extract_json_object
from leap.providers.transcription import parse_verbose_json
from leap.providers.vk import VKAuth, VKClient, VKTokens
from leap.providers.youtube import YouTubeAuth, YouTubeClient, error_reason
from leap.providers.zoom import ZoomClient, parse_meetings
from leap.providers.zoom_auth import S2SAuth
from tests.fakes.server import mock_transport

SWEEP = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
PURE = settings(max_examples=150, deadline=None, derandomize=True, database=None)

BASE = "http://fake.test"
DEEP = 3000  # past Python's recursion limit (1000), which json.loads recurses into

# -------------------------------------------------------------------- hostile JSON values

_HOSTILE_STRINGS = [
    "",
    " ",
    "../../etc/passwd",
    "/etc/passwd",
    "\x00",
    "a\x00b",
    "\u202eevil\u202c",
    "\u2028",
    "\ud800",
    "x" * 20_000,
    "--5",
    "²",
    "١٢",
    "1e400",
    "Infinity",
    "NaN",
    "-1",
    "{0.__class__}",
    "{title!r:>99999}",
    "[" * DEEP,
    "[" * DEEP + "]" * DEEP,
    "not json",
    "2026-13-45T99:99:99Z",
    "9999-12-31T23:59:59-23:59",
]
_HOSTILE_SCALARS: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**63,
    -(2**63) - 1,
    10**400,  # a JSON integer no float holds
    1e308,
    -1e308,
    math.inf,
    -math.inf,
    math.nan,
    0.5,
    [],
    {},
    [None],
    {"": None},
]
hostile = st.one_of(
    st.sampled_from(_HOSTILE_STRINGS),
    st.sampled_from(_HOSTILE_SCALARS),
    st.text(max_size=20),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
)


def _mutate(draw: Callable[[st.SearchStrategy[Any]], Any], value: Any, depth: int = 0) -> Any:
    """`value` with, at random, entries dropped, values swapped for hostile ones, and
    containers replaced by another shape; most of the structure usually survives."""
    roll = draw(st.integers(0, 9))
    if roll == 0 or (roll == 1 and depth > 0):
        return draw(hostile)
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            fate = draw(st.integers(0, 7))
            if fate == 0:
                continue  # missing
            out[key] = _mutate(draw, item, depth + 1)
        return out
    if isinstance(value, list):
        items = [_mutate(draw, v, depth + 1) for v in value]
        if draw(st.booleans()):
            items = items * draw(st.integers(0, 3))
        return items
    return value


def _deep(levels: int) -> bytes:
    return ("[" * levels + "]" * levels).encode()


_RAW_BODIES = [
    b"",
    b"null",
    b"[]",
    b"{}",
    b"not json",
    b"\xff\xfe",
    _deep(DEEP),
    b'{"a": ' + _deep(DEEP) + b"}",
    # Deep, within json's own limit, holding what makes json_body walk it (NUL).
    b"[" * 900 + b'"\\u0000"' + b"]" * 900,
    b"1" * 5000,  # past int's 4300-digit limit
]


@st.composite
def _mutated(draw: Callable[[st.SearchStrategy[Any]], Any], valid: Any) -> Any:
    return _mutate(draw, valid)


def bodies(valid: Any) -> st.SearchStrategy[bytes]:
    mutated = _mutated(valid).map(lambda v: json.dumps(v, allow_nan=True).encode())
    return st.one_of(mutated, mutated, mutated, st.sampled_from(_RAW_BODIES))


statuses = st.one_of(
    st.just(200), st.just(200), st.sampled_from([201, 204, 308, 400, 401, 403, 404, 429, 500])
)


def outcome(call: Callable[[], Any]) -> Any:
    """The call's result, or None when it raised a LeapError; anything else fails the test."""
    try:
        return call()
    except LeapError as exc:
        assert "\n" not in exc.message, exc.message
        return None


def no_sleep(_seconds: float) -> None:
    pass


def policy() -> RetryPolicy:
    return RetryPolicy(max_attempts=2, base_delay=0, max_delay=0, budget_s=0, rng=random.Random(1))


class Reply:
    """One hostile reply for every API request; token endpoints answer validly unless the
    test is about them."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}
        self.token_body: bytes | None = None
        self.requests = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        path = request.url.path
        if path.endswith(("/oauth/token", "/token", "/oauth2/auth")):
            if self.token_body is not None:
                return httpx.Response(self.status, content=self.token_body)
            token = {"access_token": "tok", "expires_in": 3600, "refresh_token": "r2"}
            return httpx.Response(200, json=token)
        return httpx.Response(self.status, content=self.body, headers=self.headers)


@pytest.fixture
def http_for() -> Iterator[Callable[[Reply], httpx.Client]]:
    made: list[httpx.Client] = []

    def build(reply: Reply) -> httpx.Client:
        client = make_http_client(transport=mock_transport(reply.handler))
        made.append(client)
        return client

    yield build
    for client in made:
        client.close()


# ------------------------------------------------------------------------------------ Zoom

ZOOM_FILE = {
    "id": "f1",
    "file_type": "MP4",
    "file_extension": "MP4",
    "recording_type": "shared_screen_with_speaker_view(CC)",
    "status": "completed",
    "file_size": 1234,
    "download_url": "https://zoom.test/rec/1",
    "recording_start": "2026-01-05T10:00:00Z",
    "recording_end": "2026-01-05T11:00:00Z",
}
ZOOM_MEETING = {
    "uuid": "abc==",
    "id": 81234567890,
    "topic": "Лекция 1",
    "host_id": "h",
    "host_email": "t@uni.example",
    "start_time": "2026-01-05T10:00:00Z",
    "duration": 60,
    "total_size": 1234,
    "timezone": "Europe/Moscow",
    "type": 8,
    "recording_files": [ZOOM_FILE, ZOOM_FILE],
}
ZOOM_PAGE = {"meetings": [ZOOM_MEETING, ZOOM_MEETING], "next_page_token": "", "code": 124}


@SWEEP
@given(op=st.sampled_from(["list", "meeting", "user", "trash"]), status=statuses, data=st.data())
@example(op="meeting", status=200, data=None).via("the meeting type '--5'")
@example(op="list", status=400, data=None).via("an error code '²'")
def test_zoom_replies(
    http_for: Callable[[Reply], httpx.Client], op: str, status: int, data: st.DataObject | None
) -> None:
    if data is None:  # the explicit examples
        body = (
            {**ZOOM_MEETING, "type": "--5"}
            if op == "meeting"
            else {"code": "²", "message": "x", "meetings": []}
        )
        raw = json.dumps(body).encode()
    else:
        raw = data.draw(bodies(ZOOM_PAGE if op == "list" else ZOOM_MEETING))
    reply = Reply(status, raw)
    http = http_for(reply)
    auth = S2SAuth(http, BASE, "acct", "cid", "secret", sleep=no_sleep, policy=policy())
    client = ZoomClient(http, BASE + "/v2", auth, policy(), sleep=no_sleep, max_pages=3)
    if op == "list":
        outcome(lambda: list(client.iter_recording_pages("me", date(2026, 1, 1), date(2026, 2, 9))))
    elif op == "meeting":
        outcome(lambda: client.get_meeting_recordings("abc=="))
    elif op == "user":
        outcome(lambda: client.get_user("me"))
    else:
        answer = client.trash_meeting_recordings("abc==")
        assert answer.outcome in ("trashed", "gone", "refused", "error")


@PURE
@given(data=st.data())
def test_zoom_meeting_parsing(data: st.DataObject) -> None:
    """parse_meetings keeps what it can and skips the rest with a warning, never raising."""
    meetings, warnings = parse_meetings(_mutate(data.draw, [ZOOM_MEETING, ZOOM_MEETING]))
    assert len(meetings) + len(warnings) <= 2 * 4
    for m in meetings:
        assert m.uuid and m.start_time.tzinfo is not None
        assert m.total_size >= 0 and m.duration_min >= 0


# --------------------------------------------------------------------------------- YouTube

YT_ITEM = {
    "id": "vid1",
    "snippet": {"title": "t", "description": "leap-marker", "tags": ["leap-marker"]},
    "contentDetails": {"relatedPlaylists": {"uploads": "UU1"}, "videoId": "vid1"},
    "status": {"privacyStatus": "private"},
}
YT_REPLY = {"id": "vid1", "kind": "youtube#video", "items": [YT_ITEM, YT_ITEM]}
YT_ERROR = {"error": {"code": 403, "errors": [{"reason": "quotaExceeded"}], "message": "m"}}


def youtube(http: httpx.Client, *, expired: bool = False) -> YouTubeClient:
    auth = YouTubeAuth(
        http,
        token_uri=BASE + "/token",
        client_id="c",
        client_secret="s",
        refresh_token="r",
        access_token=None if expired else "a",
        expires_at=0.0 if expired else 2**40,
        policy=policy(),
        sleep=no_sleep,
    )
    return YouTubeClient(
        http,
        auth,
        api_base_url=BASE + "/youtube/v3",
        upload_base_url=BASE + "/upload/youtube/v3",
        policy=policy(),
        sleep=no_sleep,
        clock=lambda: 1_780_000_000.0,
    )


YT_OPS = ["finish", "start", "channel", "marker", "playlist", "status", "token"]


@SWEEP
@given(
    op=st.sampled_from(YT_OPS),
    status=statuses,
    body=st.one_of(bodies(YT_REPLY), bodies(YT_ERROR)),
    header=st.sampled_from(
        ["", "bytes=0-99", "bytes=0-" + "9" * 30, "bytes=5-9", "http://[::1", "../../x", "a b"]
    ),
)
@example(op="channel", status=200, body=b'{"items": 5}', header="")
@example(op="channel", status=200, body=b'{"items": {"a": 1}}', header="")
@example(op="marker", status=200, body=b'{"items": [{"contentDetails": 5}], "id": 1}', header="")
@example(op="finish", status=200, body=_deep(DEEP), header="")
def test_youtube_replies(
    http_for: Callable[[Reply], httpx.Client], op: str, status: int, body: bytes, header: str
) -> None:
    headers = {"Range": header, "Location": header or "/upload/session?id=1"} if header else {}
    reply = Reply(status, body, headers)
    if op == "token":
        reply.token_body = body
    client = youtube(http_for(reply), expired=op == "token")
    calls: dict[str, Callable[[], Any]] = {
        "finish": lambda: client.query_offset(BASE + "/upload/session?id=1", 100),
        "start": lambda: client.start_session({"snippet": {}}, size=100, mime="video/mp4"),
        "channel": client.my_channel,
        "marker": lambda: client.find_video_by_marker("leap-marker"),
        "playlist": lambda: client.playlist_has("PL1", "vid1"),
        "status": lambda: client.update_status("vid1", {"privacyStatus": "public"}),
        "token": client.my_channel,
    }
    result = outcome(calls[op])
    if op == "start" and result is not None:
        outcome(lambda: client.query_offset(result, 100))  # YouTube's Location, called
    if op == "finish" and result is not None:
        assert isinstance(result, int) or isinstance(result.get("id"), str)
    if op == "channel" and result is not None:
        assert all(isinstance(part, str) for part in result)
    if op == "marker" and result is not None:
        assert isinstance(result, str)


# -------------------------------------------------------------------------------------- VK

VK_REPLY = {
    "response": {
        "upload_url": BASE + "/upload/vk",
        "video_id": 456239017,
        "owner_id": -1,
        "access_key": "k",
        "video_hash": "h",
        "size": 10,
        "items": [{"id": 1, "owner_id": -1, "description": "x #leap-marker", "processing": 0}],
        "count": 1,
    }
}
VK_ERROR = {"error": {"error_code": 9, "error_msg": "Flood control"}}


def vk(http: httpx.Client, *, expired: bool = False) -> VKClient:
    tokens = VKTokens("a", "r", "d", 0.0 if expired else 2.0**40, "c")
    auth = VKAuth(http, id_base_url=BASE, tokens=tokens, policy=policy(), sleep=no_sleep)
    return VKClient(
        http,
        api_base_url=BASE + "/method",
        api_version="5.199",
        auth=auth,
        policy=policy(),
        sleep=no_sleep,
    )


@SWEEP
@given(
    op=st.sampled_from(["save", "upload", "marker", "token"]),
    status=statuses,
    body=st.one_of(bodies(VK_REPLY), bodies(VK_ERROR)),
)
@example(op="save", status=200, body=b'{"error": {"error_code": [6], "error_msg": "x"}}')
@example(
    op="save",
    status=200,
    body=b'{"response": {"upload_url": "u", "video_id": Infinity, "owner_id": 1}}',
)
@example(op="marker", status=200, body=b'{"response": {"items": 7}}')
@example(
    op="save",
    status=200,
    body=b'{"response": {"upload_url": "http://[::1", "video_id": 1, "owner_id": 1}}',
)
def test_vk_replies(
    http_for: Callable[[Reply], httpx.Client], tmp_path: Path, op: str, status: int, body: bytes
) -> None:
    reply = Reply(status, body)
    if op == "token":
        reply.token_body = body
    client = vk(http_for(reply), expired=op == "token")
    video = tmp_path / "v.mp4"
    video.write_bytes(b"\0" * 64)
    calls: dict[str, Callable[[], Any]] = {
        "save": lambda: client.save_video({"name": "n", "description": "d"}),
        "upload": lambda: client.upload_file(BASE + "/upload/vk", video),
        "marker": lambda: client.find_video_by_marker(-1, "#leap-marker"),
        "token": lambda: client.call("video.get", {"count": 1}),
    }
    result = outcome(calls[op])
    if op == "save" and result is not None:
        assert isinstance(result.video_id, int) and isinstance(result.owner_id, int)
        outcome(lambda: client.upload_file(result.upload_url, video))  # VK's URL, called
    if op == "marker" and result is not None:
        assert isinstance(result, int)


# ------------------------------------------------------------------------- Fireworks, LLM

VERBOSE = {
    "text": "hello world",
    "language": "russian",
    "duration": 12.5,
    "segments": [
        {
            "id": 0,
            "start": 0.0,
            "end": 2.0,
            "text": "hello world",
            "words": [{"word": "hello", "start": 0.0, "end": 1.0}, {"word": "world", "start": 1}],
        }
    ],
    "words": [{"word": "hello", "start": 0.0, "end": 1.0}],
    "usage": {"seconds": 12},
}
BATCH = {
    "status": "completed",
    "batch_id": "b1",
    "account_id": "acc",
    "message": None,
    "content_type": "application/json",
    "body": json.dumps(VERBOSE),
}


@SWEEP
@given(
    op=st.sampled_from(["transcribe", "submit", "poll"]),
    status=statuses,
    data=st.data(),
)
@example(op="transcribe", status=200, data=None).via("a segment start of 10**400")
def test_fireworks_replies(
    http_for: Callable[[Reply], httpx.Client],
    tmp_path: Path,
    op: str,
    status: int,
    data: st.DataObject | None,
) -> None:
    if data is None:
        raw = json.dumps({"segments": [{"start": 10**400, "end": 1, "text": "x"}]}).encode()
    elif op == "poll":
        # The batch body is itself JSON text: mutate the outer object or the inner one.
        inner = data.draw(bodies(VERBOSE)).decode("utf-8", "replace")
        raw = data.draw(st.one_of(bodies(BATCH), st.just(json.dumps({**BATCH, "body": inner}))))
        raw = raw if isinstance(raw, bytes) else raw.encode()
    else:
        raw = data.draw(bodies(VERBOSE if op == "transcribe" else BATCH))
    http = http_for(Reply(status, raw))
    audio = tmp_path / "a.mp3"
    audio.write_bytes(b"ID3" + b"\0" * 64)
    common: dict[str, Any] = {"api_key": "k", "model": "whisper-v3", "policy": policy()}
    if op == "transcribe":
        sync = FireworksTranscriber(http, base_url=BASE, sleep=no_sleep, **common)
        result = outcome(lambda: sync.transcribe(audio, language=None, prompt=None))
    else:
        batch = FireworksBatch(http, batch_base_url=BASE, sleep=no_sleep, **common)
        if op == "submit":
            result = outcome(lambda: batch.submit(audio, language="ru", prompt=None))
        else:
            result = outcome(lambda: batch.poll("acc/b1"))
    if op in ("transcribe", "poll") and result is not None:
        assert math.isfinite(result.duration_s) and result.duration_s >= 0
        for seg in result.segments:
            assert math.isfinite(seg.start) and 0 <= seg.start <= seg.end


@PURE
@given(data=st.data())
def test_verbose_json_parsing(data: st.DataObject) -> None:
    doc = _mutate(data.draw, VERBOSE)
    hint = data.draw(st.none() | st.floats(0, 1e6))
    result = outcome(lambda: parse_verbose_json(doc, duration_hint=hint))
    if result is not None:
        assert all(math.isfinite(s.start) and math.isfinite(s.end) for s in result.segments)


CHAT = {
    "id": "c1",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": '{"topics": [{"title": "x"}]}'},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 10, "completion_tokens": 5},
}


@SWEEP
@given(status=statuses, body=bodies(CHAT))
@example(
    status=200,
    body=b'{"choices": [{"message": {"content": "{}"}}], "usage": {"prompt_tokens": Infinity}}',
)
@example(
    status=200,
    body=b'{"choices": [{"message": {"content": "{}"}}], "usage": {"completion_tokens": NaN}}',
)
@example(
    status=200,
    body=json.dumps({"choices": [{"message": {"content": "[" * DEEP + "]" * DEEP}}]}).encode(),
)
def test_llm_replies(http_for: Callable[[Reply], httpx.Client], status: int, body: bytes) -> None:
    client = ChatClient(
        http_for(Reply(status, body)),
        base_url=BASE,
        api_key="k",
        model="m",
        policy=policy(),
        sleep=no_sleep,
        bad_answer_retries=0,
    )
    result = outcome(lambda: client.complete_json([{"role": "user", "content": "x"}], max_tokens=9))
    if result is not None:
        parsed, usage = result
        assert isinstance(parsed, dict)
        assert usage.prompt_tokens >= 0 and usage.completion_tokens >= 0


@PURE
@given(text=st.one_of(st.text(), st.sampled_from(_HOSTILE_STRINGS)), wrap=st.booleans())
@example(text="[" * DEEP + "]" * DEEP, wrap=True)
def test_extract_json_object(text: str, wrap: bool) -> None:
    content = f"Here it is:\n```json\n{text}\n```" if wrap else text
    result = extract_json_object(content)
    assert result is None or isinstance(result, dict)


# --------------------------------------------------------------------- shared HTTP helpers


@PURE
@given(
    status=st.sampled_from([400, 403, 404, 429, 500, 200]),
    body=st.one_of(bodies(YT_ERROR), bodies({"code": 1, "message": "m"}), st.binary(max_size=50)),
)
@example(status=400, body=_deep(DEEP))
def test_error_bodies(status: int, body: bytes) -> None:
    request = httpx.Request("GET", BASE + "/x")
    excerpt = error_excerpt(httpx.Response(status, content=body, request=request))
    assert "\n" not in excerpt and len(excerpt) <= 200
    reason = error_reason(httpx.Response(status, content=body, request=request))
    assert reason is None or isinstance(reason, str)
    outcome(lambda: json_body(httpx.Response(status, content=body, request=request), "p"))


@PURE
@given(value=st.one_of(st.none(), st.text(max_size=40), st.sampled_from(_HOSTILE_STRINGS)))
@example(value="Fri, 31 Dec 9999 23:59:59 -2359")
@example(value="Mon, 01 Jan 0001 00:00:00 +2359")
def test_retry_after(value: str | None) -> None:
    seconds = parse_retry_after(value, datetime(2026, 1, 1, tzinfo=UTC))
    assert seconds is None or (math.isfinite(seconds) and seconds >= 0)
