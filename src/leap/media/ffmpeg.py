"""The one place LEAP runs ffmpeg: locating the binaries and probing media files.

Probing never decodes the file; it reads container headers only (ffprobe, or `ffmpeg -i`).
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leap.errors import ConfigError, LeapError

__all__ = [
    "FFmpegTools",
    "MediaError",
    "MediaInfo",
    "ffmpeg_version",
    "locate",
    "parse_ffmpeg_banner",
    "parse_ffprobe_json",
    "probe",
]

ENV_FFMPEG = "LEAP_FFMPEG"
ENV_FFPROBE = "LEAP_FFPROBE"

_FIX_HINT = (
    "install ffmpeg (e.g. `apt install ffmpeg`, `brew install ffmpeg`), "
    "reinstall LEAP to get the bundled imageio-ffmpeg binary, "
    f"or set {ENV_FFMPEG} to the path of an ffmpeg executable"
)


class MediaError(LeapError):
    """A media file could not be read: missing, empty, corrupt, or without a duration."""

    # A bad input recording is an operation failure, not a usage error.
    exit_code = 1


@dataclass(frozen=True)
class FFmpegTools:
    ffmpeg: str
    ffprobe: str | None


@dataclass(frozen=True)
class MediaInfo:
    duration_s: float
    size_bytes: int
    format_name: str | None
    has_video: bool
    has_audio: bool
    video_codec: str | None
    audio_codec: str | None
    width: int | None
    height: int | None
    audio_sample_rate: int | None
    audio_channels: int | None


# --------------------------------------------------------------------------- locating


def locate(prefer_system: bool = True, env: Mapping[str, str] | None = None) -> FFmpegTools:
    """Find ffmpeg (required) and ffprobe (optional).

    Order: LEAP_FFMPEG / LEAP_FFPROBE; then the system binaries on PATH and the bundled
    imageio-ffmpeg binary (system first unless `prefer_system` is False). An explicit `env`
    replaces os.environ (for tests); with the default, results are cached per process.
    """
    if env is None:
        env = os.environ
        return _locate_cached(
            prefer_system, env.get(ENV_FFMPEG), env.get(ENV_FFPROBE), env.get("PATH")
        )
    return _locate(prefer_system, env.get(ENV_FFMPEG), env.get(ENV_FFPROBE), env.get("PATH"))


# Keyed on the variables that matter, so a changed environment is looked up afresh.
@functools.lru_cache(maxsize=8)
def _locate_cached(
    prefer_system: bool, ffmpeg_var: str | None, ffprobe_var: str | None, path_var: str | None
) -> FFmpegTools:
    return _locate(prefer_system, ffmpeg_var, ffprobe_var, path_var)


def _locate(
    prefer_system: bool, ffmpeg_var: str | None, ffprobe_var: str | None, path_var: str | None
) -> FFmpegTools:
    # An empty PATH means "nowhere", but shutil.which(path=None) would read os.environ.
    search = path_var if path_var is not None else ""
    if ffmpeg_var:
        ffmpeg = _explicit(ENV_FFMPEG, ffmpeg_var, search)
    else:
        finders = [lambda: shutil.which("ffmpeg", path=search), _bundled_ffmpeg]
        if not prefer_system:
            finders.reverse()
        found = next((exe for exe in (f() for f in finders) if exe), None)
        if found is None:
            raise ConfigError(f"ffmpeg not found: {_FIX_HINT}")
        ffmpeg = found

    if ffprobe_var:
        return FFmpegTools(ffmpeg, _explicit(ENV_FFPROBE, ffprobe_var, search))
    # An ffprobe next to the chosen ffmpeg belongs to the same build; prefer it.
    ffprobe = None
    if Path(ffmpeg).stem.lower() == "ffmpeg":
        ffprobe = shutil.which("ffprobe", path=str(Path(ffmpeg).parent))
    if ffprobe is None:
        ffprobe = shutil.which("ffprobe", path=search)
    return FFmpegTools(ffmpeg, ffprobe)


def _explicit(var: str, value: str, search: str) -> str:
    # shutil.which checks a value with a directory part as a path, and looks a bare name up.
    exe = shutil.which(value, path=search)
    if exe is None:
        raise ConfigError(f"{var}={value!r} is not an executable file: fix the path or unset {var}")
    return str(Path(exe).absolute())


def _bundled_ffmpeg() -> str | None:
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        exe = str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError:  # no binary shipped for this platform
        return None
    # IMAGEIO_FFMPEG_EXE is returned unchecked, and the last resort is the bare name "ffmpeg".
    return shutil.which(exe)


def ffmpeg_version(tools: FFmpegTools, *, timeout: float = 15) -> str:
    """First line of `ffmpeg -version`, e.g. "ffmpeg version 5.1.6-0+deb12u1 Copyright ..."."""
    proc = _run([tools.ffmpeg, "-hide_banner", "-version"], timeout=timeout)
    out = proc.stdout.decode("utf-8", errors="replace").strip()
    if proc.returncode != 0 or not out:
        raise ConfigError(
            f"{tools.ffmpeg} -version failed (exit code {proc.returncode}): {_FIX_HINT}"
        )
    return out.splitlines()[0]


# --------------------------------------------------------------------------- probing


def probe(tools: FFmpegTools, path: Path, *, timeout: float = 60) -> MediaInfo:
    """Read duration, streams and codecs of a media file from its headers.

    Raises MediaError (one line, naming the file) for a missing, empty, unreadable or
    unrecognised file, a file without a duration, or when probing takes over `timeout` s.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        raise MediaError(f"{path}: file not found") from None
    except OSError as exc:
        raise MediaError(f"{path}: cannot read file: {exc.strerror or exc}") from None
    if not path.is_file():
        raise MediaError(f"{path}: not a regular file")
    if st.st_size == 0:
        raise MediaError(f"{path}: file is empty (0 bytes)")

    # "file:" stops ffmpeg from reading a name as a protocol ("http:…", "concat:…") or "-".
    target = f"file:{path}"
    try:
        if tools.ffprobe:
            cmd = [tools.ffprobe, "-v", "error", "-print_format", "json"]
            cmd += ["-show_format", "-show_streams", target]
            proc = _run(cmd, timeout=timeout)
            if proc.returncode != 0:
                raise MediaError(_failure_reason(_decode(proc.stderr)))
            try:
                data = json.loads(_decode(proc.stdout))
            except json.JSONDecodeError:
                raise MediaError("ffprobe printed invalid JSON") from None
            if not isinstance(data, dict):
                raise MediaError("ffprobe printed unexpected JSON")
            return parse_ffprobe_json(data, st.st_size)
        # Without an output file ffmpeg prints the input's header and exits with code 1.
        proc = _run([tools.ffmpeg, "-hide_banner", "-nostdin", "-i", target], timeout=timeout)
        return parse_ffmpeg_banner(_decode(proc.stderr), st.st_size)
    except MediaError as exc:
        raise MediaError(f"{path}: {exc.message}") from None
    except subprocess.TimeoutExpired:
        raise MediaError(f"{path}: probing timed out after {timeout:g} s") from None


def parse_ffprobe_json(data: Mapping[str, Any], size_bytes: int) -> MediaInfo:
    """MediaInfo from `ffprobe -print_format json -show_format -show_streams` output."""
    fmt = data.get("format")
    fmt = fmt if isinstance(fmt, Mapping) else {}
    duration = _float(fmt.get("duration"))
    if duration is None or not math.isfinite(duration) or duration <= 0:
        raise MediaError("no duration in the file's header")
    streams = [s for s in data.get("streams") or [] if isinstance(s, Mapping)]
    video = next(
        (
            s
            for s in streams
            if s.get("codec_type") == "video"
            # Cover art in an mp3/m4a is a one-picture "video" stream, not a video.
            and not _int((s.get("disposition") or {}).get("attached_pic"))
        ),
        None,
    )
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    return MediaInfo(
        duration_s=duration,
        size_bytes=size_bytes,
        format_name=_str(fmt.get("format_name")),
        has_video=video is not None,
        has_audio=audio is not None,
        video_codec=_str(video.get("codec_name")) if video else None,
        audio_codec=_str(audio.get("codec_name")) if audio else None,
        width=_int(video.get("width")) if video else None,
        height=_int(video.get("height")) if video else None,
        audio_sample_rate=_int(audio.get("sample_rate")) if audio else None,
        audio_channels=_int(audio.get("channels")) if audio else None,
    )


_INPUT_RE = re.compile(r"^Input #0, (?P<fmt>.+?), from '", re.MULTILINE)
_DURATION_RE = re.compile(
    r"^\s+Duration: (?:(?P<h>\d+):(?P<m>\d{2}):(?P<s>\d{2}(?:\.\d+)?)|N/A)", re.MULTILINE
)
_STREAM_RE = re.compile(
    r"^\s+Stream #0:\d+(?:\[0x[0-9a-fA-F]+\])?(?:\([^)]*\))?: (?P<kind>\w+): (?P<desc>.*)$",
    re.MULTILINE,
)
_SIZE_RE = re.compile(r"^(?P<w>[1-9]\d*)x(?P<h>[1-9]\d*)\b")
_HZ_RE = re.compile(r"^(?P<hz>\d+) Hz$")
_LAYOUT_CHANNELS = {
    "mono": 1,
    "stereo": 2,
    "downmix": 2,
    "quad": 4,
    "hexagonal": 6,
    "octagonal": 8,
    "hexadecagonal": 16,
}


def parse_ffmpeg_banner(stderr: str, size_bytes: int) -> MediaInfo:
    """MediaInfo from the stderr of `ffmpeg -hide_banner -i FILE` (no ffprobe needed)."""
    start = _INPUT_RE.search(stderr)
    if start is None:
        raise MediaError(_failure_reason(stderr))
    # The first input's dump is its "Input #0" line plus indented lines; the next unindented
    # line ("Input #1", "Output #0", "At least one output…", a log line) ends it.
    block = stderr[start.start() :]
    end = re.compile(r"^\S", re.MULTILINE).search(block, block.find("\n") + 1)
    if end is not None:
        block = block[: end.start()]

    dur = _DURATION_RE.search(block)
    if dur is None or dur.group("h") is None:
        raise MediaError("no duration in the file's header (Duration: N/A)")
    duration = int(dur.group("h")) * 3600 + int(dur.group("m")) * 60 + float(dur.group("s"))
    if duration <= 0:
        raise MediaError("no duration in the file's header (Duration: 0)")

    video: list[str] | None = None
    audio: list[str] | None = None
    for m in _STREAM_RE.finditer(block):
        kind, desc = m.group("kind"), m.group("desc")
        if kind == "Video" and video is None and "(attached pic)" not in desc:
            video = _split_top_level(desc)
        elif kind == "Audio" and audio is None:
            audio = _split_top_level(desc)

    width = height = rate = channels = None
    if video is not None:
        for field in video[1:]:
            if size := _SIZE_RE.match(field):
                width, height = int(size.group("w")), int(size.group("h"))
                break
    if audio is not None:
        for i, field in enumerate(audio[1:], start=1):
            if hz := _HZ_RE.match(field):
                rate = int(hz.group("hz"))
                if i + 1 < len(audio):
                    channels = _channels(audio[i + 1])
                break
    return MediaInfo(
        duration_s=duration,
        size_bytes=size_bytes,
        format_name=start.group("fmt"),
        has_video=video is not None,
        has_audio=audio is not None,
        video_codec=_codec(video),
        audio_codec=_codec(audio),
        width=width,
        height=height,
        audio_sample_rate=rate,
        audio_channels=channels,
    )


def _split_top_level(desc: str) -> list[str]:
    """Split a stream description at commas outside parentheses and brackets."""
    fields: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in desc:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        if ch == "," and depth == 0:
            fields.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    fields.append("".join(current).strip())
    return fields


def _codec(fields: list[str] | None) -> str | None:
    if not fields or not fields[0]:
        return None
    name = fields[0].split()[0]
    return None if name == "none" else name


def _channels(layout: str) -> int | None:
    """Channel count from ffmpeg's layout word: mono, stereo, 5.1(side), 7.1, "6 channels"."""
    word = layout.split("(")[0].strip()
    if word in _LAYOUT_CHANNELS:
        return _LAYOUT_CHANNELS[word]
    if m := re.fullmatch(r"(\d+) channels?", word):
        return int(m.group(1))
    # Numeric layouts name speakers per group: "5.1" is 6, "5.1.2" is 8.
    if re.fullmatch(r"\d+(?:\.\d+)+", word):
        return sum(int(part) for part in word.split("."))
    return None


# Known causes, most specific first; each maps to a reason a user can act on.
_REASONS: Sequence[tuple[str, str]] = (
    ("moov atom not found", "incomplete MP4 (moov atom not found; the recording may be cut short)"),
    ("No such file or directory", "file not found"),
    ("Permission denied", "permission denied"),
    ("Invalid data found when processing input", "not a recognised media file"),
    ("End of file", "file is truncated"),
)
_LOG_PREFIX_RE = re.compile(r"^\[[^\]]* @ 0x[0-9a-fA-F]+\] ")


def _failure_reason(stderr: str) -> str:
    """One line explaining why ffmpeg/ffprobe could not open a file, not the whole log."""
    for needle, reason in _REASONS:
        if needle in stderr:
            return reason
    lines = [_LOG_PREFIX_RE.sub("", ln).strip() for ln in stderr.splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        return "ffmpeg could not read the file"
    last = lines[-1]
    return last if len(last) <= 200 else last[:199] + "…"


# --------------------------------------------------------------------------- helpers


def _run(cmd: list[str], *, timeout: float) -> subprocess.CompletedProcess[bytes]:
    # ffmpeg colours its log only on a terminal, unless the user forces it; we parse the text.
    env = {**os.environ, "AV_LOG_FORCE_NOCOLOR": "1"}
    env.pop("AV_LOG_FORCE_COLOR", None)
    try:
        return subprocess.run(
            cmd, capture_output=True, stdin=subprocess.DEVNULL, timeout=timeout, env=env
        )
    except (FileNotFoundError, PermissionError) as exc:
        raise ConfigError(f"cannot run {cmd[0]}: {exc.strerror}; {_FIX_HINT}") from None


def _decode(raw: bytes) -> str:
    # File names and tags may be in any encoding; never fail on them.
    return raw.decode("utf-8", errors="replace")


def _float(value: object) -> float | None:
    try:
        return float(value) if isinstance(value, str | int | float) else None
    except ValueError:
        return None


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
