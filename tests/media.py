"""Small real media clips for tests, made with the ffmpeg that `locate()` finds.

Clips use lavfi sources (testsrc, sine, aevalsrc), so no sample files live in the repo.
"""

from __future__ import annotations

import functools
import random
import subprocess
from pathlib import Path

from leap.media.ffmpeg import locate

SAMPLE_RATE = 44100
TONE_HZ = 440


@functools.cache
def ffmpeg() -> str:
    return locate().ffmpeg


@functools.cache
def encoders() -> frozenset[str]:
    """Encoder names the located ffmpeg was built with (libx264, aac, libopus, ...)."""
    proc = subprocess.run(
        [ffmpeg(), "-hide_banner", "-encoders"],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=30,
        check=True,
    )
    names = set()
    for line in proc.stdout.decode("utf-8", errors="replace").splitlines():
        parts = line.split()
        # Rows look like " V....D libx264   libx264 H.264 ..."; the legend rows have "=".
        if len(parts) >= 2 and len(parts[0]) == 6 and "=" not in line:
            names.add(parts[1])
    return frozenset(names)


def _video_args(fps: int, gop: int | None) -> list[str]:
    if "libx264" in encoders():
        args = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-r", str(fps)]
        if gop is not None:
            # A fixed GOP (no scene-cut keyframes) so trim tests know where keyframes are.
            args += ["-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0"]
        return args
    # Every ffmpeg build has the native mpeg4 encoder.
    args = ["-c:v", "mpeg4", "-q:v", "5", "-pix_fmt", "yuv420p", "-r", str(fps)]
    return args + (["-g", str(gop)] if gop is not None else [])


def _audio_args(path: Path) -> list[str]:
    suffix = path.suffix.lower()
    if suffix == ".wav":
        return ["-c:a", "pcm_s16le"]
    if suffix == ".mp3":
        return ["-c:a", "libmp3lame", "-b:a", "64k"]
    if suffix in {".opus", ".ogg", ".webm"}:
        return ["-c:a", "libopus", "-b:a", "32k"]
    return ["-c:a", "aac", "-b:a", "64k"]


def _container_args(path: Path, faststart: bool) -> list[str]:
    # moov up front, the way a web-ready upload looks; without it, moov is written last, the
    # way a live recording is, so a cut-short copy has none.
    is_mp4 = path.suffix.lower() in {".mp4", ".m4a", ".mov"}
    return ["-movflags", "+faststart"] if is_mp4 and faststart else []


def _run(args: list[str], path: Path, faststart: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args]
    proc = subprocess.run(
        [*cmd, *_container_args(path, faststart), str(path)],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", errors="replace")
        raise RuntimeError(f"ffmpeg failed making {path.name}: {err}")
    return path


def make_video(
    path: Path,
    seconds: float = 3,
    size: str = "320x240",
    with_audio: bool = True,
    fps: int = 25,
    gop: int | None = None,
    faststart: bool = True,
) -> Path:
    """A testsrc video (h264 when available) with an optional 440 Hz mono aac track."""
    args = ["-f", "lavfi", "-i", f"testsrc=size={size}:rate={fps}"]
    if with_audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency={TONE_HZ}:sample_rate={SAMPLE_RATE}"]
    args += ["-t", f"{seconds}", *_video_args(fps, gop)]
    args += _audio_args(path) if with_audio else ["-an"]
    return _run(args, path, faststart)


def make_audio(path: Path, seconds: float = 3) -> Path:
    """A 440 Hz mono tone; the codec follows the suffix (.m4a aac, .mp3, .opus, .wav)."""
    src = f"sine=frequency={TONE_HZ}:sample_rate={SAMPLE_RATE}"
    return _run(["-f", "lavfi", "-i", src, "-t", f"{seconds}", *_audio_args(path)], path)


def make_silence_tone_silence(
    path: Path, lead: float = 2.0, tone: float = 3.0, tail: float = 2.0, video: bool = True
) -> Path:
    """Digital silence for `lead` s, a 440 Hz tone for `tone` s, then `tail` s of silence."""
    total = lead + tone + tail
    expr = f"if(between(t\\,{lead}\\,{lead + tone})\\,0.5*sin(2*PI*{TONE_HZ}*t)\\,0)"
    args = ["-f", "lavfi", "-i", f"aevalsrc={expr}:s={SAMPLE_RATE}:c=mono:d={total}"]
    if video:
        args += ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"]
        args += ["-map", "1:v", "-map", "0:a", *_video_args(25, None)]
    args += ["-t", f"{total}", *_audio_args(path)]
    return _run(args, path)


def make_corrupt(path: Path, size: int = 64 * 1024, seed: int = 0) -> Path:
    """Random bytes under a media file name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


def make_empty(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def pad_mp4(path: Path, total: int) -> Path:
    """Grow an MP4 to `total` bytes with a trailing `free` box: still a valid file that probes
    as before (players skip `free`), as large as a long recording, and sparse on disk so a
    test of a 500 MB upload does not write 500 MB first."""
    extra = total - path.stat().st_size
    if extra < 8 or extra >= 2**32:
        raise ValueError("pad_mp4 adds between 8 bytes and 4 GiB")
    with path.open("r+b") as fh:
        fh.seek(0, 2)
        fh.write(extra.to_bytes(4, "big") + b"free")
        fh.truncate(total)
    return path
