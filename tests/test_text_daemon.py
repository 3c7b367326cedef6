"""End to end through a real `leapd` with fake Fireworks and a fake DeepSeek on loopback:
recordings get transcripts whose words and times match the audio they carry, topics and
subtitles; a Fireworks batch job survives a leapd restart without being submitted twice."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from leap.context import Runtime, open_context
from leap.db.scope import Scope
from leap.text.transcript import Word
from tests.conftest import leap_here, leap_process
from tests.fakes.audio_words import make_speech
from tests.fakes.fireworks import FakeFireworks
from tests.fakes.llm import FakeChat
from tests.fakes.server import serve
from tests.leapd import runtime_for, start_leapd, wait_until

pytestmark = pytest.mark.slow

TEMPLATE = """name = "talks"
[match]
regex = [".+"]
[blank]
min_duration_minutes = 0
min_size_mb = 0
[processing]
stages = ["download", "trim", "transcribe", "topics", "subtitles"]
[processing.trim]
min_keep_s = 5
[processing.transcription]
provider = "{provider}"
model = "whisper-v3"
poll_seconds = 0.5
[processing.topics]
provider = "llm"
"""


@pytest.fixture
def fakes() -> Iterator[tuple[FakeFireworks, str, FakeChat, str]]:
    fw = FakeFireworks(polls_to_complete=10**9)  # batch jobs finish only when told
    chat = FakeChat()
    with serve(fw.handler) as fw_base, serve(chat.handler) as chat_base:
        yield fw, fw_base, chat, chat_base


def install(
    leap_env: dict[str, str], tmp_path: Path, fakes: Any, provider: str, files: int
) -> tuple[dict[str, str], dict[str, list[Word]]]:
    fw, fw_base, chat, chat_base = fakes
    inbox = tmp_path / "inbox"
    truth = {}
    for i in range(files):
        # 4 s of silence, ~20 s of "speech", 4 s of silence: trim has dead air to cut.
        words = [
            (4.0 + 1.2 * k, w)
            for k, w in enumerate(["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"] * 3)
        ]
        truth[f"talk {i:02d}"] = make_speech(
            inbox / f"talk {i:02d}.ogg", words, total_s=28.0, seed=i
        )
    env = {
        **leap_env,
        "LEAP_FIREWORKS__BASE_URL": f"{fw_base}/v1",
        "LEAP_FIREWORKS__BATCH_BASE_URL": f"{fw_base}/v1",
        "LEAP_FIREWORKS__API_KEY": fw.api_key,
        "LEAP_LLM__BASE_URL": chat_base,
        "LEAP_LLM__API_KEY": chat.api_key or "",
        "LEAP_SYNC__LOCAL_SETTLE_SECONDS": "0",
        "LEAP_WORKER__COUNT": "4",
        "LEAP_WORKER__RECONCILE_SECONDS": "1",
        "LEAP_WORKER__STAGE_HEARTBEAT_SECONDS": "0.3",
        "LEAP_WORKER__SHUTDOWN_TIMEOUT": "2",
    }
    (tmp_path / "t.toml").write_text(TEMPLATE.format(provider=provider))
    for args in (
        ("init", "--yes"),
        ("source", "add", "local", "inbox", str(inbox)),
        ("template", "add", "--file", str(tmp_path / "t.toml")),
        ("sync",),
    ):
        res = leap_here(*args, env=env)
        assert res.code == 0, (args, res.stderr)
    return env, truth


def stages(rt: Runtime) -> list[Any]:
    with open_context(rt, Scope.system_scope()) as ctx:
        return [(s.recording_id, s.name, s.status, dict(s.result)) for s in ctx.repos.stages.list()]


def wait(rt: Runtime, pred: Any, timeout: float, what: str, log: Path) -> None:
    wait_until(lambda: stages(rt), pred, timeout, what, log)


def test_six_recordings_get_transcripts_topics_and_subtitles(
    leap_env: dict[str, str], tmp_path: Path, fakes: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, truth = install(leap_env, tmp_path, fakes, "fireworks", 6)
    log = tmp_path / "leapd.log"
    proc = start_leapd(env, log)
    rt = runtime_for(env, monkeypatch)
    try:
        res = leap_process("--json", "process", "--template", "talks", env=env)
        assert res.code == 0, res.stderr
        wait(
            rt,
            lambda rows: len(rows) == 30 and all(r[2] == "done" for r in rows),
            240,
            "6 runs",
            log,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    # Usage equals the work done (docs/quotas.md): one unit per recording, the billed
    # minutes and the tokens the API reported, and nothing left as a reservation.
    with open_context(rt, Scope.system_scope()) as ctx:
        events = [
            (e.kind, e.recording_id, e.amount, dict(e.detail)) for e in ctx.repos.usage.list()
        ]
    done = {(rid, name): result for rid, name, _, result in stages(rt)}

    def per_recording(kind: str) -> dict[int | None, float]:
        return {rid: amount for k, rid, amount, _ in events if k == kind}

    assert sorted(k for k, *_ in events) == sorted(
        ["recordings", "transcription_minutes", "llm_tokens"] * 6
    )
    assert per_recording("recordings") == {rid: 1.0 for rid, name in done if name == "download"}
    for (rid, name), result in done.items():
        if name == "transcribe":
            assert per_recording("transcription_minutes")[rid] == pytest.approx(
                result["minutes"], abs=0.01
            )
            assert result["minutes"] > 0.3  # ~28 s of audio, trimmed
        if name == "topics":
            assert per_recording("llm_tokens")[rid] == result["tokens"] > 0
    assert not any(detail.get("reserved") for *_, detail in events)
    # Reading the results back is not what this test is about: in this process.
    rows = leap_here("--json", "recordings", "list", env=env)
    for rec in json.loads(rows.stdout):
        shown = leap_here("--json", "recordings", "show", str(rec["id"]), env=env)
        detail = json.loads(shown.stdout)
        offset = float(detail["trim"]["start_s"]) if detail["trim"]["cut"] else 0.0
        tr = json.loads(
            leap_here("transcript", "show", str(rec["id"]), "--format", "json", env=env).stdout
        )
        want = truth[rec["title"]]
        got = tr["words"]
        assert [w["text"].strip(" .,").lower() for w in got] == [w.text for w in want]
        # Times are relative to the trimmed audio; the truth is relative to the source.
        # (A stream-copy cut of Opus starts a little before the planned point.)
        for g, w in zip(got, want, strict=True):
            assert abs(g["start"] + offset - w.start) < 0.5, (g, w, offset)
        topics = json.loads(leap_here("--json", "topics", "show", str(rec["id"]), env=env).stdout)
        assert topics["themes"] and topics["topics"]
        assert Path(detail["artifacts"]["srt"]).read_text().strip()
    rt.dispose()


def test_batch_job_survives_a_restart_without_resubmitting(
    leap_env: dict[str, str], tmp_path: Path, fakes: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fw = fakes[0]
    env, _ = install(leap_env, tmp_path, fakes, "fireworks-batch", 1)
    log = tmp_path / "leapd.log"
    rt = runtime_for(env, monkeypatch)
    proc = start_leapd(env, log)

    def submitted(rows: list[Any]) -> bool:
        return any(r[1] == "transcribe" and r[3].get("batch_id") for r in rows)

    try:
        assert leap_process("process", "--template", "talks", env=env).code == 0
        wait(rt, submitted, 120, "the batch submit", log)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert len(fw.jobs) == 1
    [job_id] = list(fw.jobs)
    fw.complete(job_id)  # the job finishes while leapd is down
    proc = start_leapd(env, log)
    try:
        wait(
            rt,
            lambda rows: len(rows) == 5 and all(r[2] == "done" for r in rows),
            120,
            "the run after restart",
            log,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert len(fw.jobs) == 1  # polled, never submitted again
    rows = {r[1]: r for r in stages(rt)}
    assert rows["transcribe"][3]["batch_id"]
    rt.dispose()
