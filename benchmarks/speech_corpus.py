"""Synthetic lectures for transcript-quality benchmarks: espeak-ng speech with known text and
known silences (generated once, cached), and the scoring: normalised WER and words invented
inside silences.

Normalisation (`normalise`), applied to script and transcript alike: lower case, ё→е,
dashes and hyphens split words, other punctuation dropped (so "A.R." is "ar"; apostrophes
inside words stay), and the few numbers the scripts say become their spoken words
(`SPOKEN_NUMBERS`: "1970" and "nineteen seventy" score the same). Nothing else: a
misspelled term is an error, which is what prompts and hotwords are meant to fix.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from leap.media.ffmpeg import FFmpegTools
from leap.text.transcript import Word

__all__ = [
    "LECTURES",
    "Corpus",
    "Lecture",
    "Silence",
    "espeak_missing",
    "invented_in_silence",
    "make_corpus",
    "normalise",
    "word_errors",
]

SAMPLE_RATE = 16_000
LEAD_S = 15.0  # the recorder runs before the lecturer speaks
TAIL_S = 12.0  # ... and after the last word
MID_PAUSE_S = 15.0  # writing on the board, mid-lecture
SECTION_PAUSE_S = 2.0
SENTENCE_PAUSE_S = 0.6
MIN_SILENCE_S = 1.0  # shorter pauses are speech rhythm, not silences to score


@dataclass(frozen=True)
class Lecture:
    """A lecture script: sections of sentences; the long pause comes before `pause_before`."""

    language: str
    title: str
    glossary: tuple[str, ...]
    sections: tuple[tuple[str, ...], ...]
    pause_before: int

    @property
    def text(self) -> str:
        return " ".join(s for section in self.sections for s in section)


@dataclass(frozen=True)
class Silence:
    start: float
    end: float
    kind: str  # lead, section, mid, tail


@dataclass(frozen=True)
class Corpus:
    """One voice reading one lecture: the 16 kHz mono WAV and its truth."""

    lecture: Lecture
    voice: str
    audio: Path
    duration_s: float
    silences: tuple[Silence, ...]


LECTURES: dict[str, Lecture] = {
    "en": Lecture(
        language="en",
        title="Time Series Forecasting: ARIMA and the Box–Jenkins Method",
        glossary=(
            "ARIMA",
            "SARIMA",
            "Box–Jenkins",
            "autocorrelation",
            "partial autocorrelation",
            "stationarity",
            "differencing",
            "Dickey–Fuller",
            "Ljung–Box",
            "Akaike",
            "correlogram",
            "Gwilym Jenkins",
        ),
        sections=(
            (
                "Welcome to lecture four of the course on time series forecasting.",
                "Today we study ARIMA models and the Box–Jenkins method.",
                "An ARIMA model combines three ideas: autoregression, differencing, "
                "and a moving average of past errors.",
                "George Box and Gwilym Jenkins described this approach in their book of 1970.",
            ),
            (
                "Part one. Stationarity.",
                "A time series is stationary when its mean and variance do not change over time.",
                "Most economic series are not stationary, so we remove the trend by differencing.",
                "The augmented Dickey–Fuller test checks whether a unit root is present.",
                "If the test rejects the unit root, we fit the model to the differenced series.",
            ),
            (
                "Part two. Autocorrelation.",
                "The autocorrelation function measures how each value depends on earlier values.",
                "The partial autocorrelation function removes the effect of intermediate lags.",
                "A sharp cut-off in the partial autocorrelation suggests the autoregressive order.",
                "For monthly sales data we often see a seasonal peak at lag 12.",
            ),
            (
                "Part three. The Box–Jenkins method.",
                "The method has three stages: identification, estimation, and diagnostic checking.",
                "First we identify candidate orders from the correlogram.",
                "Then we estimate the parameters by maximum likelihood and compare the models "
                "with the Akaike information criterion.",
                "Finally we check that the residuals look like white noise, for example with "
                "the Ljung–Box test.",
                "When the data are seasonal, we extend the model to SARIMA.",
            ),
            (
                "To sum up, ARIMA is a simple and robust baseline for forecasting.",
                "Next week we will compare it with exponential smoothing and neural networks.",
                "Thank you, and see you next time.",
            ),
        ),
        pause_before=3,
    ),
    "ru": Lecture(
        language="ru",
        title="Прогнозирование временных рядов: ARIMA и метод Бокса–Дженкинса",
        glossary=(
            "ARIMA",
            "SARIMA",
            "Бокс–Дженкинс",
            "стационарность",
            "автокорреляция",
            "частная автокорреляция",
            "дифференцирование",
            "Дики–Фуллер",
            "Льюнг–Бокс",
            "Акаике",
            "коррелограмма",
            "Гвилим Дженкинс",
        ),
        sections=(
            (
                "Добро пожаловать на четвёртую лекцию курса по прогнозированию временных рядов.",
                "Сегодня мы изучаем модели ARIMA и метод Бокса–Дженкинса.",
                "Модель ARIMA объединяет три идеи: авторегрессию, дифференцирование "
                "и скользящее среднее прошлых ошибок.",
                "Джордж Бокс и Гвилим Дженкинс описали этот подход в книге "
                "тысяча девятьсот семидесятого года.",
            ),
            (
                "Часть первая. Стационарность.",
                "Временной ряд стационарен, если его среднее и дисперсия не меняются со временем.",
                "Большинство экономических рядов нестационарны, поэтому мы убираем тренд "
                "с помощью дифференцирования.",
                "Расширенный тест Дики–Фуллера проверяет, есть ли единичный корень.",
                "Если тест отвергает единичный корень, модель строят по разностям ряда.",
            ),
            (
                "Часть вторая. Автокорреляция.",
                "Автокорреляционная функция показывает, как каждое значение зависит от предыдущих.",
                "Частная автокорреляционная функция убирает влияние промежуточных лагов.",
                "Резкий обрыв частной автокорреляции подсказывает порядок авторегрессии.",
                "Для месячных продаж мы часто видим сезонный пик на лаге 12.",
            ),
            (
                "Часть третья. Метод Бокса–Дженкинса.",
                "Метод состоит из трёх этапов: идентификация, оценивание и диагностика.",
                "Сначала мы подбираем порядки модели по коррелограмме.",
                "Затем оцениваем параметры методом максимального правдоподобия и сравниваем "
                "модели по информационному критерию Акаике.",
                "Наконец, проверяем, что остатки похожи на белый шум, например с помощью "
                "теста Льюнга–Бокса.",
                "Если данные сезонные, мы расширяем модель до SARIMA.",
            ),
            (
                "Подведём итог: ARIMA — простая и надёжная базовая модель для прогнозирования.",
                "На следующей неделе мы сравним её с экспоненциальным сглаживанием "
                "и нейронными сетями.",
                "Спасибо за внимание, до встречи.",
            ),
        ),
        pause_before=3,
    ),
}

# Every number a script says, by language, as the words a transcript may use instead.
SPOKEN_NUMBERS: dict[str, dict[str, str]] = {
    "en": {"1970": "nineteen seventy", "12": "twelve", "4": "four"},
    "ru": {"12": "двенадцать", "1970": "тысяча девятьсот семидесятого"},
}


# --------------------------------------------------------------------------- scoring


def normalise(text: str, language: str) -> list[str]:
    """The words of `text` as scored (see the module docstring)."""
    text = text.lower().replace("ё", "е")
    text = re.sub(r"[-‐‑‒–—―]", " ", text)
    # Apostrophes inside words stay ("don't"); any other non-word character goes.
    text = re.sub(r"(?<=\w)['’](?=\w)", "\0", text)
    text = re.sub(r"[^\w\s\0]", "", text).replace("\0", "'")
    numbers = SPOKEN_NUMBERS.get(language, {})
    words: list[str] = []
    for token in text.split():
        words.extend(numbers.get(token, token).split())
    return words


def word_errors(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Substitutions + deletions + insertions: word-level Levenshtein distance."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(
                min(
                    previous[j] + 1,  # deletion
                    current[j - 1] + 1,  # insertion
                    previous[j - 1] + (ref != hyp),  # substitution or match
                )
            )
        previous = current
    return previous[-1]


def invented_in_silence(words: Sequence[Word], silences: Sequence[Silence]) -> list[Word]:
    """Transcript words whose whole time span lies inside a known silence."""
    return [w for w in words if any(s.start <= w.start and w.end <= s.end for s in silences)]


# --------------------------------------------------------------------------- generating


def espeak_missing() -> str | None:
    """Why the corpus cannot be generated here, or None."""
    if shutil.which("espeak-ng") is None:
        return (
            "espeak-ng is not installed: install it with `apt-get install -y espeak-ng` "
            "(Debian/Ubuntu) or `brew install espeak-ng` (macOS)"
        )
    return None


def _espeak_version() -> str:
    out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def make_corpus(
    tools: FFmpegTools, lecture: Lecture, voice: str, directory: Path, *, speed: int = 170
) -> tuple[Corpus, bool]:
    """`voice` reading `lecture`, from the cache in `directory` when made before; the flag
    says whether it was (re)generated."""
    plan = {
        "espeak": _espeak_version(),
        "voice": voice,
        "speed": speed,
        "sections": lecture.sections,
        "pause_before": lecture.pause_before,
        "pauses": [LEAD_S, TAIL_S, MID_PAUSE_S, SECTION_PAUSE_S, SENTENCE_PAUSE_S],
    }
    key = hashlib.sha256(json.dumps(plan, ensure_ascii=False).encode()).hexdigest()[:12]
    safe_voice = re.sub(r"[^\w]+", "_", voice)
    audio = directory / f"lecture-{lecture.language}-{safe_voice}-{key}.wav"
    truth = audio.with_suffix(".silences.json")
    if audio.is_file() and truth.is_file():
        spans = [Silence(*s) for s in json.loads(truth.read_text())]
        return Corpus(lecture, voice, audio, _duration(audio), tuple(spans)), False
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="leap-bench-espeak-") as tmp:
        silences = _synthesise(tools, lecture, voice, speed, Path(tmp), audio)
    truth.write_text(json.dumps([[s.start, s.end, s.kind] for s in silences]))
    return Corpus(lecture, voice, audio, _duration(audio), tuple(silences)), True


def _synthesise(
    tools: FFmpegTools, lecture: Lecture, voice: str, speed: int, tmp: Path, out: Path
) -> list[Silence]:
    """Speak each sentence to its own WAV, write the pauses as WAVs of zeros, and let ffmpeg
    concatenate and resample them; silence times come from exact sample counts."""
    pieces: list[Path] = []
    silences: list[Silence] = []
    t = 0.0
    rate: int | None = None

    def pause(seconds: float, kind: str) -> None:
        nonlocal t
        assert rate is not None
        path = tmp / f"{len(pieces):03d}-pause.wav"
        frames = round(seconds * rate)
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(b"\0\0" * frames)
        if seconds >= MIN_SILENCE_S:
            silences.append(Silence(t, t + frames / rate, kind))
        pieces.append(path)
        t += frames / rate

    sentences = [
        (i, j == 0, s) for i, section in enumerate(lecture.sections) for j, s in enumerate(section)
    ]
    for n, (section, first, sentence) in enumerate(sentences):
        path = tmp / f"{len(pieces):03d}-speech.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), sentence],
            check=True,
            capture_output=True,
        )
        with wave.open(str(path), "rb") as w:
            if rate is None:
                rate = w.getframerate()
                pause(LEAD_S, "lead")
            elif first and section == lecture.pause_before:
                pause(MID_PAUSE_S, "mid")
            elif first:
                pause(SECTION_PAUSE_S, "section")
            elif n:
                pause(SENTENCE_PAUSE_S, "sentence")
            if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (rate, 1, 2):
                raise RuntimeError(f"espeak-ng wrote an unexpected format to {path}")
            frames = w.getnframes()
        pieces.append(path)
        t += frames / rate
    pause(TAIL_S, "tail")

    listing = tmp / "pieces.txt"
    listing.write_text("".join(f"file '{p}'\n" for p in pieces))
    partial = out.with_name(out.name + ".part")
    subprocess.run(
        [
            tools.ffmpeg,
            *("-hide_banner", "-loglevel", "error", "-nostdin", "-y"),
            *("-f", "concat", "-safe", "0", "-i", str(listing)),
            *("-ac", "1", "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le", "-f", "wav"),
            str(partial),
        ],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    partial.replace(out)
    return silences


def _duration(audio: Path) -> float:
    with wave.open(str(audio), "rb") as w:
        return w.getnframes() / w.getframerate()
