"""The transcribe stage through `leap process --now` against fake APIs on loopback: the prompt
is the glossary and never the title, and what the provider invents in a silence (the fakes
can, as Whisper does) is dropped, with times that stay relative to the trimmed audio."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from leap.context import Runtime, open_context
from leap.db.scope import Scope
from leap.text.transcript import Word
from tests.fakes.audio_words import make_speech
from tests.fakes.fireworks import FakeFireworks
from tests.fakes.openai_audio import FakeAudioAPI, FakeOpenAIAudio
from tests.fakes.server import serve

TITLE = "STAT 312 Lecture 7 (recorded)"
GHOST = "Thank you for watching."
TEMPLATE = """name = "talks"
[match]
regex = [".+"]
[blank]
min_duration_minutes = 0
min_size_mb = 0
[processing]
language = "en"
glossary = ["ARIMA", "Box-Jenkins", "arima"]
stages = ["download", "trim", "transcribe"]
[processing.trim]
min_keep_s = 5
[processing.transcription]
provider = "{provider}"
model = "{model}"
poll_seconds = 0.1
"""
MODELS = {"fireworks": "whisper-v3", "fireworks-batch": "whisper-v3", "openai": "whisper-1"}


@pytest.fixture
def lecture(tmp_path: Path) -> tuple[Path, list[Word]]:
    """6 s lead-in, two "sentences" around a 12 s pause, 8 s tail: trim cuts the edges, the
    pause stays, and it is the longest silence the fake provider can haunt."""
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
    script = [(6.0 + 1.0 * k, w) for k, w in enumerate(words * 2)]
    script += [(30.0 + 1.0 * k, w) for k, w in enumerate(reversed(words * 2))]
    inbox = tmp_path / "inbox"
    truth = make_speech(inbox / f"{TITLE}.ogg", script, total_s=50.0, seed=3)
    return inbox, truth


def fake_for(provider: str) -> FakeFireworks | FakeOpenAIAudio:
    if provider == "openai":
        return FakeOpenAIAudio(api_key="sk-test")
    return FakeFireworks(api_key="fw-test", polls_to_complete=0)


@pytest.fixture(params=["fireworks", "openai", "fireworks-batch"])
def processed(
    request: pytest.FixtureRequest,
    leap_env: dict[str, str],
    cli: Any,
    tmp_path: Path,
    lecture: tuple[Path, list[Word]],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[str, FakeAudioAPI, dict[str, Any], list[Word]]]:
    provider: str = request.param
    fake = fake_for(provider)
    fake.hallucination = GHOST
    inbox, truth = lecture
    with serve(fake.handler) as base:
        monkeypatch.setenv("LEAP_SYNC__LOCAL_SETTLE_SECONDS", "0")
        if provider == "openai":
            monkeypatch.setenv("LEAP_OPENAI__BASE_URL", f"{base}/v1")
            monkeypatch.setenv("LEAP_OPENAI__API_KEY", "sk-test")
        else:
            monkeypatch.setenv("LEAP_FIREWORKS__BASE_URL", f"{base}/v1")
            monkeypatch.setenv("LEAP_FIREWORKS__BATCH_BASE_URL", f"{base}/v1")
            monkeypatch.setenv("LEAP_FIREWORKS__API_KEY", "fw-test")
        template = tmp_path / "t.toml"
        template.write_text(TEMPLATE.format(provider=provider, model=MODELS[provider]))
        for args in (
            ("init", "--yes"),
            ("source", "add", "local", "inbox", str(inbox)),
            ("template", "add", "--file", str(template)),
            ("sync",),
        ):
            res = cli(*args)
            assert res.code == 0, (args, res.stderr)
        [row] = cli("--json", "recordings", "list").json()
        assert row["title"] == TITLE
        for _ in range(50):  # a batch job answers "waiting" until its result is in
            res = cli("--json", "process", str(row["id"]), "--now")
            assert res.code == 0, res.stderr
            rec = cli("--json", "recordings", "show", str(row["id"])).json()
            if rec["status"] != "processing":
                break
        assert rec["status"] in ("processed", "ready"), rec
        yield provider, fake, rec, truth


def test_the_prompt_is_the_glossary_never_the_title(
    processed: tuple[str, FakeAudioAPI, dict[str, Any], list[Word]],
) -> None:
    _, fake, _, _ = processed
    [upload] = fake.uploads
    assert upload.fields["prompt"] == ["ARIMA, Box-Jenkins."]
    assert "312" not in json.dumps(upload.fields)


def test_what_the_provider_invents_in_a_silence_is_dropped(
    processed: tuple[str, FakeAudioAPI, dict[str, Any], list[Word]], cli: Any, runtime: Runtime
) -> None:
    provider, _, rec, truth = processed
    tr = cli("transcript", "show", str(rec["id"]), "--format", "json").json()
    # Exactly what was said: no ghost, nothing real lost.
    assert [w["text"].strip(" .,").lower() for w in tr["words"]] == [w.text for w in truth]
    assert "watching" not in " ".join(s["text"] for s in tr["segments"]).lower()
    # Times are the trimmed audio's (the silences were found in that audio, not shifted from
    # the source's): one constant shift from the source's, about the trim point; a
    # stream-copy cut of Opus starts up to a packet group before it (0.5 s here).
    offset = float(rec["trim"]["start_s"])
    assert rec["trim"]["cut"] is True and offset > 3
    shifts = [want.start - got["start"] for got, want in zip(tr["words"], truth, strict=True)]
    assert max(shifts) - min(shifts) < 0.1, shifts
    assert offset - 1.0 < shifts[0] < offset + 0.1, (shifts[0], offset)
    # The provider did say it, in the pause: the stage reports what it dropped, the
    # transcript that it was cleaned.
    assert tr["meta"]["dropped_in_silence"] == {"segments": 1, "words": 0}
    with open_context(runtime, Scope.system_scope()) as ctx:
        [result] = [dict(s.result) for s in ctx.repos.stages.list() if s.name == "transcribe"]
    assert result["provider"] == provider
    dropped = result["dropped_in_silence"]
    assert dropped["segments"] == 1 and dropped["words"] == 0, dropped
    [first] = dropped["first"]
    assert first["text"].strip() == GHOST
    assert 18 < first["start"] + offset < 30, (first, offset)  # inside the 12 s pause
