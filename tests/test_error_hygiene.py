"""Errors are one redacted line wherever they come from: a LeapError's own message, a
stored artifact that is damaged, a settings key, a queue URL."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from leap import artifacts
from leap.cli._output import Output
from leap.config import load_settings
from leap.errors import ArtifactError, LeapError
from leap.logs import redact
from leap.text.topics import Topics


def test_a_leap_error_never_carries_a_secret() -> None:
    exc = LeapError('token endpoint said: {"error": "bad", "access_token": "ya29.abcdef123456"}')
    assert "ya29" not in exc.message and "ya29" not in str(exc)


def test_a_password_without_a_user_name_is_hidden() -> None:
    assert "hunter22" not in redact("cannot reach redis://:hunter22@10.0.0.5:6379/0")
    assert "hunter22" not in redact("cannot reach postgresql://leap:hunter22@db/leap")


def test_install_wide_api_keys_are_known_secrets(
    leap_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "fw-install-wide-9f8e7d6c5b4a"
    monkeypatch.setenv("LEAP_FIREWORKS__API_KEY", key)
    load_settings()
    basic = base64.b64encode(f"user:{key}".encode()).decode()
    for text in (f"echo {key}", f"Basic {basic}", f"key={key}"):
        assert key not in redact(text) and basic not in redact(text)


def test_an_error_is_printed_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    out = Output()
    out.error("invalid name 'a\nb'\n")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a\\nb" in err


@pytest.mark.parametrize(
    ("content", "why"),
    [(b'{"themes": ["a"], "topics": [{"start"', "damaged"), (b"[1, 2]", "damaged"), (b"\xff", "")],
)
def test_a_damaged_artifact_names_its_file(tmp_path: Path, content: bytes, why: str) -> None:
    path = tmp_path / "topics.json"
    path.write_bytes(content)
    with pytest.raises(ArtifactError) as info:
        artifacts.load(path, "topics", Topics.from_storage)
    assert str(path) in info.value.message and why in info.value.message
    with pytest.raises(ArtifactError, match="cannot read"):
        artifacts.load(tmp_path / "missing.json", "topics", Topics.from_storage)


def test_a_sound_artifact_loads(tmp_path: Path) -> None:
    path = tmp_path / "topics.json"
    path.write_text('{"themes": ["x"], "topics": [{"start": 1.5, "title": "Intro"}]}')
    topics = artifacts.load(path, "topics", Topics.from_storage)
    assert topics.themes == ["x"] and topics.topics[0].title == "Intro"
