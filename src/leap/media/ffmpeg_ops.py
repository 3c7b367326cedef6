"""The ffmpeg work of the trim stage: detect silence and black, cut, extract speech audio.

Argv builders and output parsers are pure; run_ffmpeg runs one command with progress,
a bounded log, a timeout and one-line errors.
"""

from __future__ import annotations

import functools
import math
import os
import re
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

from leap.errors import ConfigError
from leap.media.ffmpeg import FFmpegTools, MediaError, probe
from leap.media.trim_plan import Interval, normalise

__all__ = [
    "audio_suffix",
    "cut",
    "cut_args",
    "cut_suffix",
    "detect_black",
    "detect_black_args",
    "detect_silence",
    "detect_silence_args",
    "encoders",
    "extract_audio",
    "extract_audio_args",
    "failure_reason",
    "parse_blackdetect",
    "parse_silencedetect",
    "run_ffmpeg",
]

Progress = Callable[[float], None]

DETECT_TIMEOUT_S = 3600.0
# A re-encoding cut of a 3-hour recording runs ~30 min at the ~10x realtime measured for
# 720p; the limit is there to stop a hung process, not a slow one.
CUT_TIMEOUT_S = 4 * 3600.0
EXTRACT_TIMEOUT_S = 3600.0

STDERR_TAIL_LINES = 50
# Report progress in steps of at least this fraction, so a caller's bar is not flooded.
PROGRESS_STEP = 0.01

# suffix -> (muxer, video encoder args or None for an audio-only container, audio encoder
# args) for re-encoding; copy cuts use only the muxer. WebM holds no H.264, and VP9 is too
# slow to be worth it, so accurate cuts to .webm are refused.
_CONTAINERS: dict[str, tuple[str, list[str] | None, list[str]]] = {
    ".mp4": ("mp4", ["-c:v", "libx264"], ["-c:a", "aac", "-b:a", "128k"]),
    ".m4v": ("mp4", ["-c:v", "libx264"], ["-c:a", "aac", "-b:a", "128k"]),
    ".mov": ("mov", ["-c:v", "libx264"], ["-c:a", "aac", "-b:a", "128k"]),
    ".mkv": ("matroska", ["-c:v", "libx264"], ["-c:a", "aac", "-b:a", "128k"]),
    ".webm": ("webm", None, ["-c:a", "libopus", "-b:a", "96k"]),
    ".m4a": ("ipod", None, ["-c:a", "aac", "-b:a", "128k"]),
    ".mp3": ("mp3", None, ["-c:a", "libmp3lame", "-b:a", "128k"]),
    ".ogg": ("ogg", None, ["-c:a", "libopus", "-b:a", "96k"]),
    ".opus": ("ogg", None, ["-c:a", "libopus", "-b:a", "96k"]),
    ".wav": ("wav", None, ["-c:a", "pcm_s16le"]),
}
_MP4_FAMILY = {"mp4", "mov", "ipod"}

# Speech for transcription: mono 16 kHz is what Whisper-style models resample to anyway.
# Sizes per hour measured: Opus 24k 9.8 MB, MP3 32k 14.4 MB, WAV 115 MB.
_SPEECH_AUDIO: dict[str, tuple[str, str, list[str]]] = {
    ".ogg": ("libopus", "ogg", ["-c:a", "libopus", "-b:a", "24k", "-application", "voip"]),
    ".opus": ("libopus", "ogg", ["-c:a", "libopus", "-b:a", "24k", "-application", "voip"]),
    ".mp3": ("libmp3lame", "mp3", ["-c:a", "libmp3lame", "-b:a", "32k"]),
    ".m4a": ("aac", "ipod", ["-c:a", "aac", "-b:a", "32k"]),
    ".wav": ("pcm_s16le", "wav", ["-c:a", "pcm_s16le"]),
}


# --------------------------------------------------------------------------- encoders


def encoders(tools: FFmpegTools, *, timeout: float = 30) -> frozenset[str]:
    """Encoder names the ffmpeg build has (libx264, aac, libopus, ...); cached per binary."""
    return _encoders(tools.ffmpeg, timeout)


@functools.lru_cache(maxsize=8)
def _encoders(ffmpeg: str, timeout: float) -> frozenset[str]:
    try:
        proc = subprocess.run(
            [ffmpeg, "-hide_banner", "-encoders"],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            env=_env(),
        )
    except (FileNotFoundError, PermissionError) as exc:
        raise ConfigError(f"cannot run {ffmpeg}: {exc.strerror}") from None
    except subprocess.TimeoutExpired:
        raise ConfigError(f"{ffmpeg} -encoders timed out after {timeout:g} s") from None
    names = set()
    for line in proc.stdout.decode("utf-8", errors="replace").splitlines():
        parts = line.split()
        # Rows look like " V....D libx264  libx264 H.264 ..."; legend rows contain "=".
        if len(parts) >= 2 and len(parts[0]) == 6 and "=" not in line:
            names.add(parts[1])
    return frozenset(names)


def audio_suffix(tools: FFmpegTools) -> str:
    """Suffix for extract_audio's output: .ogg (Opus) if the build has libopus, else .mp3,
    else .m4a (the native aac encoder every build has)."""
    names = encoders(tools)
    if "libopus" in names:
        return ".ogg"
    if "libmp3lame" in names:
        return ".mp3"
    return ".m4a"


# --------------------------------------------------------------------------- argv builders


def _ts(seconds: float) -> str:
    # Millisecond precision is below a frame and avoids "1e-05" style floats in argv.
    return f"{seconds:.3f}"


def _target(path: Path) -> str:
    # "file:" stops ffmpeg from reading a name as a protocol ("http:…", "concat:…") or "-".
    return f"file:{path}"


def _container(dst: Path) -> tuple[str, list[str] | None, list[str]]:
    try:
        return _CONTAINERS[dst.suffix.lower()]
    except KeyError:
        known = ", ".join(sorted(_CONTAINERS))
        raise ValueError(f"{dst.name}: unsupported output suffix (use one of {known})") from None


def cut_suffix(src: Path, *, accurate: bool) -> str:
    """Suffix for a cut of src: its own when cut_args can write it, else .mkv. Local sources
    may be .avi, .mpg, .ts, .flac or .aac, which have no muxer here, and an accurate cut
    cannot write .webm; Matroska holds any codec those carry (copy or re-encoded)."""
    suffix = src.suffix.lower()
    if suffix not in _CONTAINERS or (accurate and _CONTAINERS[suffix][0] == "webm"):
        return ".mkv"
    return suffix


def cut_args(
    tools: FFmpegTools, src: Path, dst: Path, start_s: float, end_s: float, *, accurate: bool
) -> list[str]:
    """ffmpeg arguments (for run_ffmpeg) that keep [start_s, end_s) of src in dst.

    Stream copy by default: fast, but it starts at the keyframe before start_s (up to one GOP
    early). `accurate` re-encodes (H.264 veryfast CRF 20 / AAC) and starts on the frame.
    The container follows dst's suffix; only video and audio streams are kept.
    """
    if not (math.isfinite(start_s) and math.isfinite(end_s) and 0 <= start_s < end_s):
        raise ValueError(f"invalid cut {start_s!r}–{end_s!r} s: need 0 <= start < end")
    if src.resolve() == dst.resolve():
        raise ValueError(f"{dst}: the output must not be the input")
    muxer, video, audio = _container(dst)
    if accurate and muxer == "webm":
        raise ValueError(f"{dst.name}: an accurate cut cannot write .webm; use .mkv or .mp4")
    # -ss before -i seeks the input: with copy it starts at the previous keyframe (after -i
    # gave audio without video); when decoding, ffmpeg then drops frames up to start_s.
    args = ["-ss", _ts(start_s), "-i", _target(src), "-t", _ts(end_s - start_s)]
    # Zoom's mp4 carries data/timecode tracks mp4 cannot be re-muxed with; "?" allows none.
    args += ["-map", "0:v?", "-map", "0:a?"]
    if not accurate:
        # Keyframe-started copies begin with negative timestamps; players mishandle those.
        args += ["-c", "copy", "-avoid_negative_ts", "make_zero"]
    else:
        if video is None:
            args += ["-vn"]
        elif "libx264" in encoders(tools):
            args += [*video, "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"]
        else:
            # Every build has the native mpeg4 encoder; q 3 is visually close to CRF 20.
            args += ["-c:v", "mpeg4", "-q:v", "3", "-pix_fmt", "yuv420p"]
        args += audio
    if muxer in _MP4_FAMILY:
        # moov up front, so the upload can be streamed and probed without reading to the end.
        args += ["-movflags", "+faststart"]
    return [*args, "-f", muxer, _target(dst)]


def extract_audio_args(tools: FFmpegTools, src: Path, dst: Path) -> list[str]:
    """ffmpeg arguments that write src's first audio track to dst as mono 16 kHz speech audio.

    The codec follows dst's suffix (.ogg/.opus Opus 24 kbps, .mp3 32 kbps, .m4a AAC 32 kbps,
    .wav PCM); audio_suffix(tools) names the most compact one this build can write.
    """
    try:
        encoder, muxer, codec = _SPEECH_AUDIO[dst.suffix.lower()]
    except KeyError:
        known = ", ".join(sorted(_SPEECH_AUDIO))
        raise ValueError(f"{dst.name}: unsupported audio suffix (use one of {known})") from None
    if encoder not in encoders(tools):
        raise ValueError(
            f"{dst.name}: this ffmpeg has no {encoder} encoder; use {audio_suffix(tools)}"
        )
    if src.resolve() == dst.resolve():
        raise ValueError(f"{dst}: the output must not be the input")
    args = ["-i", _target(src), "-map", "0:a:0", "-vn", "-sn", "-dn"]
    args += ["-ac", "1", "-ar", "16000", *codec]
    # Tags from the recording (titles, encoder names) are no use to a transcriber.
    args += ["-map_metadata", "-1"]
    return [*args, "-f", muxer, _target(dst)]


def detect_silence_args(path: Path, *, noise_db: float, min_silence_s: float) -> list[str]:
    """Decode audio only (video demuxed and dropped: ~1,200x realtime) through silencedetect."""
    flt = f"silencedetect=noise={noise_db:g}dB:d={min_silence_s:g}"
    return ["-i", _target(path), "-vn", "-sn", "-dn", "-af", flt, "-f", "null", "-"]


def detect_black_args(path: Path, *, min_black_s: float, pix_th: float) -> list[str]:
    """Decode keyframes only (~730x realtime vs 43x for every frame) through blackdetect.

    Resolution is one GOP: a black span shorter than the keyframe interval may be missed.
    """
    flt = f"blackdetect=d={min_black_s:g}:pix_th={pix_th:g}"
    args = ["-skip_frame", "nokey", "-i", _target(path)]
    return [*args, "-an", "-sn", "-dn", "-vf", flt, "-f", "null", "-"]


# --------------------------------------------------------------------------- parsers

_NUM = r"(-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)"
_SILENCE_RE = re.compile(rf"silence_(?P<kind>start|end): {_NUM}(?: \| silence_duration: {_NUM})?")
_BLACK_RE = re.compile(rf"black_start: ?{_NUM}(?: black_end: ?{_NUM})?")


def parse_silencedetect(stderr: str, duration_s: float) -> list[Interval]:
    """Silences from silencedetect's log lines, clipped to [0, duration_s], merged and sorted.

    A silence_start with no silence_end (older ffmpeg at end of file) runs to duration_s;
    a negative start (decoder delay) is clipped to 0.
    """
    found: list[Interval] = []
    start: float | None = None
    for m in _SILENCE_RE.finditer(stderr):
        value = float(m.group(2))
        if m.group("kind") == "start":
            start = value
        else:
            if start is None:
                # An end with its start lost (a truncated log): derive it from the duration.
                start = value - float(m.group(3)) if m.group(3) else 0.0
            found.append(Interval(start, value))
            start = None
    if start is not None:
        found.append(Interval(start, duration_s))
    return normalise(found, duration_s)


def parse_blackdetect(stderr: str, duration_s: float) -> list[Interval]:
    """Black spans from blackdetect's `black_start:A black_end:B black_duration:C` lines."""
    found: list[Interval] = []
    for m in _BLACK_RE.finditer(stderr):
        start = float(m.group(1))
        end = float(m.group(2)) if m.group(2) is not None else duration_s
        found.append(Interval(start, end))
    return normalise(found, duration_s)


# --------------------------------------------------------------------------- running


# Known causes, most specific first, as reasons a user can act on.
_REASONS: tuple[tuple[str, str], ...] = (
    ("moov atom not found", "incomplete MP4 (moov atom not found; the recording may be cut short)"),
    ("Invalid data found when processing input", "not a recognised media file"),
    ("matches no streams", "the file has no such stream (no audio or video track?)"),
    ("Error opening input: No such file or directory", "file not found"),
    ("Error opening input: Permission denied", "permission denied reading the input"),
    ("No space left on device", "no space left on device"),
)
_LOG_PREFIX_RE = re.compile(r"^\[[^\]]* @ (?:0x)?[0-9a-fA-F]+\] ")
_ERRORISH_RE = re.compile(
    r"rror|nvalid|ailed|No such|denied|not supported|[Uu]nsupported|[Cc]ould not|[Cc]annot|Only "
)
# ffmpeg's summary lines restate the cause without it; the line before them says more.
_GENERIC = (
    "Conversion failed",
    "Error opening output files",
    "Error opening input files",
    "Error opening input file ",
    "Error opening output file ",
    "Task finished with error code",
    "Terminating thread with return code",
    "Error parsing options",
    "Error while filtering",
    "Nothing was written into output file",
    "To ignore this",
)
_STATS_RE = re.compile(r"^(?:frame=|size=|video:\d)")


def failure_reason(stderr_lines: Iterable[str]) -> str:
    """One line saying why ffmpeg failed, from the tail of its log."""
    lines = [_LOG_PREFIX_RE.sub("", ln).strip() for ln in stderr_lines]
    lines = [ln for ln in lines if ln and not _STATS_RE.match(ln)]
    text = "\n".join(lines)
    for needle, reason in _REASONS:
        if needle in text:
            return reason
    specific = [ln for ln in lines if _ERRORISH_RE.search(ln) and not ln.startswith(_GENERIC)]
    pick = specific[0] if specific else (lines[-1] if lines else "ffmpeg failed without a message")
    return pick if len(pick) <= 200 else pick[:199] + "…"


def run_ffmpeg(
    tools: FFmpegTools,
    args: list[str],
    *,
    duration_s: float | None,
    progress: Progress | None = None,
    timeout: float,
) -> None:
    """Run `ffmpeg -hide_banner -nostdin -y -progress pipe:1 -nostats ARGS`.

    progress(fraction) is called from this thread with increasing values in 0..1 (steps of
    >= 1 %; 1.0 on success; only 1.0 when `duration_s` is unknown). An exception raised by
    progress stops ffmpeg and propagates, so a caller can cancel. Raises MediaError with a
    one-line reason on failure or after `timeout` s (the process is killed and reaped), and
    ConfigError when ffmpeg cannot be started. An output left by a failed run is not removed.
    """
    _run(tools, args, duration_s=duration_s, progress=progress, timeout=timeout)


class _Stderr:
    """Drains ffmpeg's stderr in a thread: the last lines, plus every line with `keep` in it."""

    def __init__(self, stream: Iterable[bytes], keep: str | None) -> None:
        self.tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self.kept: list[str] = []
        self._keep = keep
        self._thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self._thread.start()

    def _drain(self, stream: Iterable[bytes]) -> None:
        for raw in stream:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            self.tail.append(line)
            if self._keep is not None and self._keep in line:
                self.kept.append(line)

    def join(self) -> None:
        self._thread.join()


def _run(
    tools: FFmpegTools,
    args: list[str],
    *,
    duration_s: float | None,
    progress: Progress | None,
    timeout: float,
    keep: str | None = None,
) -> list[str]:
    """run_ffmpeg, returning the stderr lines that contain `keep` (filter logs, in full)."""
    cmd = [tools.ffmpeg, "-hide_banner", "-nostdin", "-y", "-progress", "pipe:1", "-nostats"]
    try:
        proc = subprocess.Popen(
            [*cmd, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(),
        )
    except (FileNotFoundError, PermissionError) as exc:
        raise ConfigError(f"cannot run {tools.ffmpeg}: {exc.strerror}") from None
    assert proc.stdout is not None and proc.stderr is not None

    timed_out = threading.Event()

    def kill_on_timeout() -> None:
        timed_out.set()
        proc.kill()

    # A killed ffmpeg closes its stdout, which ends the read loop below wherever it was stuck.
    timer = threading.Timer(timeout, kill_on_timeout)
    timer.daemon = True
    stderr = _Stderr(proc.stderr, keep)
    timer.start()
    try:
        reported = 0.0
        for raw in proc.stdout:
            if progress is None or duration_s is None or duration_s <= 0:
                continue
            key, _, value = raw.decode("ascii", errors="replace").strip().partition("=")
            # out_time_ms is in microseconds too (a historical ffmpeg misnomer).
            if key not in ("out_time_us", "out_time_ms"):
                continue
            try:
                done = int(value) / 1e6 / duration_s
            except ValueError:  # "N/A" before the first frame
                continue
            done = min(max(done, 0.0), 1.0)
            # Not within a step of the end either: 1.0 is reported once ffmpeg has exited
            # well, and a 0.995 just before it was a step of half a percent (a flaky test
            # caught it when ffmpeg's last report landed there).
            if done - reported >= PROGRESS_STEP and done <= 1.0 - PROGRESS_STEP:
                reported = done
                progress(done)
        returncode = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:  # progress() raised, or we are being interrupted
            proc.kill()
            proc.wait()
        stderr.join()
        proc.stdout.close()
        proc.stderr.close()

    # The timer may fire just after a clean exit; then the run succeeded.
    if timed_out.is_set() and returncode != 0:
        raise MediaError(f"ffmpeg timed out after {timeout:g} s")
    if returncode < 0:
        raise MediaError(f"ffmpeg was killed by signal {-returncode}")
    if returncode != 0:
        raise MediaError(failure_reason(stderr.tail))
    if progress is not None:
        progress(1.0)
    return stderr.kept


def _env() -> dict[str, str]:
    # ffmpeg colours its log only on a terminal, unless the user forces it; we parse the text.
    env = {**os.environ, "AV_LOG_FORCE_NOCOLOR": "1"}
    env.pop("AV_LOG_FORCE_COLOR", None)
    return env


def _named(path: Path, exc: MediaError) -> MediaError:
    return MediaError(f"{path}: {exc.message}")


# --------------------------------------------------------------------------- operations


def detect_silence(
    tools: FFmpegTools,
    path: Path,
    *,
    noise_db: float = -35.0,
    min_silence_s: float = 2.0,
    timeout: float = DETECT_TIMEOUT_S,
    progress: Progress | None = None,
) -> list[Interval]:
    """Silences of at least `min_silence_s` below `noise_db` in path's audio, sorted, merged.

    Raises MediaError for an unreadable file or one without an audio track (no audio is
    not "all silent": planning a trim on it would be a guess).
    """
    info = probe(tools, path)
    if not info.has_audio:
        raise MediaError(f"{path}: no audio track; cannot detect silence")
    args = detect_silence_args(path, noise_db=noise_db, min_silence_s=min_silence_s)
    try:
        lines = _run(
            tools,
            args,
            duration_s=info.duration_s,
            progress=progress,
            timeout=timeout,
            keep="silence_",
        )
    except MediaError as exc:
        raise _named(path, exc) from None
    return parse_silencedetect("\n".join(lines), info.duration_s)


def detect_black(
    tools: FFmpegTools,
    path: Path,
    *,
    min_black_s: float = 2.0,
    pix_th: float = 0.10,
    timeout: float = DETECT_TIMEOUT_S,
    progress: Progress | None = None,
) -> list[Interval]:
    """Black spans of at least `min_black_s` in path's video, judged on keyframes only.

    Raises MediaError for an unreadable file or one without a video track.
    """
    info = probe(tools, path)
    if not info.has_video:
        raise MediaError(f"{path}: no video track; cannot detect black")
    args = detect_black_args(path, min_black_s=min_black_s, pix_th=pix_th)
    try:
        lines = _run(
            tools,
            args,
            duration_s=info.duration_s,
            progress=progress,
            timeout=timeout,
            keep="black_start",
        )
    except MediaError as exc:
        raise _named(path, exc) from None
    return parse_blackdetect("\n".join(lines), info.duration_s)


def cut(
    tools: FFmpegTools,
    src: Path,
    dst: Path,
    start_s: float,
    end_s: float,
    *,
    accurate: bool,
    progress: Progress | None = None,
    timeout: float = CUT_TIMEOUT_S,
) -> None:
    """Write [start_s, end_s) of src to dst (see cut_args); dst should be a temp name."""
    args = cut_args(tools, src, dst, start_s, end_s, accurate=accurate)
    try:
        run_ffmpeg(tools, args, duration_s=end_s - start_s, progress=progress, timeout=timeout)
    except MediaError as exc:
        raise _named(src, exc) from None


def extract_audio(
    tools: FFmpegTools,
    src: Path,
    dst: Path,
    *,
    progress: Progress | None = None,
    timeout: float = EXTRACT_TIMEOUT_S,
) -> None:
    """Write src's first audio track to dst as mono 16 kHz speech audio (see extract_audio_args).

    Raises MediaError for an unreadable file or one without an audio track.
    """
    info = probe(tools, src)
    if not info.has_audio:
        raise MediaError(f"{src}: no audio track to extract")
    args = extract_audio_args(tools, src, dst)
    try:
        run_ffmpeg(tools, args, duration_s=info.duration_s, progress=progress, timeout=timeout)
    except MediaError as exc:
        raise _named(src, exc) from None
