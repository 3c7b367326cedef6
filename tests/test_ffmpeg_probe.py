"""Locating ffmpeg/ffprobe and probing media: real generated clips and literal ffmpeg output."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import pytest

from leap.errors import ConfigError
from leap.media.ffmpeg import (
    FFmpegTools,
    MediaError,
    MediaInfo,
    ffmpeg_version,
    locate,
    parse_ffmpeg_banner,
    parse_ffprobe_json,
    probe,
)
from tests import media

# --------------------------------------------------------------------------- real clips

TOOLS = locate()
# The banner path runs everywhere; the ffprobe path only where an ffprobe exists.
PROBE_MODES = [
    pytest.param(FFmpegTools(TOOLS.ffmpeg, None), id="ffmpeg-banner"),
    pytest.param(
        TOOLS,
        id="ffprobe",
        marks=pytest.mark.skipif(TOOLS.ffprobe is None, reason="no ffprobe on this machine"),
    ),
]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    return {
        "video": media.make_video(d / "video.mp4", seconds=3),
        "noaudio": media.make_video(d / "noaudio.mp4", seconds=2, with_audio=False, size="640x360"),
        "audio": media.make_audio(d / "audio.m4a", seconds=3),
        "sts": media.make_silence_tone_silence(d / "sts.mp4"),
        "cyrillic": media.make_video(d / "Лекция №1 — запись.mp4", seconds=1),
        "dash": media.make_audio(d / "-rec.m4a", seconds=1),
        "colon": media.make_audio(d / "concat:rec.m4a", seconds=1),
    }


@pytest.mark.parametrize("tools", PROBE_MODES)
def test_probe_video_with_audio(tools: FFmpegTools, clips: dict[str, Path]) -> None:
    info = probe(tools, clips["video"])
    assert info.duration_s == pytest.approx(3.0, abs=0.1)
    assert info.size_bytes == clips["video"].stat().st_size
    assert info.format_name is not None and "mp4" in info.format_name
    assert (info.has_video, info.has_audio) == (True, True)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.width, info.height) == (320, 240)
    assert (info.audio_sample_rate, info.audio_channels) == (44100, 1)


@pytest.mark.parametrize("tools", PROBE_MODES)
def test_probe_video_without_audio(tools: FFmpegTools, clips: dict[str, Path]) -> None:
    info = probe(tools, clips["noaudio"])
    assert info.duration_s == pytest.approx(2.0, abs=0.1)
    assert (info.has_video, info.has_audio) == (True, False)
    assert (info.width, info.height) == (640, 360)
    assert info.audio_codec is None and info.audio_sample_rate is None


@pytest.mark.parametrize("tools", PROBE_MODES)
def test_probe_audio_only(tools: FFmpegTools, clips: dict[str, Path]) -> None:
    info = probe(tools, clips["audio"])
    assert info.duration_s == pytest.approx(3.0, abs=0.1)
    assert (info.has_video, info.has_audio) == (False, True)
    assert info.video_codec is None and info.width is None
    assert info.audio_codec == "aac"
    assert (info.audio_sample_rate, info.audio_channels) == (44100, 1)


@pytest.mark.parametrize("tools", PROBE_MODES)
def test_probe_silence_tone_silence_clip(tools: FFmpegTools, clips: dict[str, Path]) -> None:
    info = probe(tools, clips["sts"])
    assert info.duration_s == pytest.approx(7.0, abs=0.1)
    assert (info.has_video, info.has_audio) == (True, True)


@pytest.mark.parametrize("tools", PROBE_MODES)
@pytest.mark.parametrize("name", ["cyrillic", "dash", "colon"])
def test_probe_awkward_file_names(tools: FFmpegTools, clips: dict[str, Path], name: str) -> None:
    """Non-ASCII names, a leading dash and a protocol-like prefix are read as plain files."""
    info = probe(tools, clips[name])
    assert info.duration_s == pytest.approx(1.0, abs=0.1)
    assert info.has_audio


@pytest.mark.parametrize("tools", PROBE_MODES)
def test_probe_errors_name_the_file_in_one_line(tools: FFmpegTools, tmp_path: Path) -> None:
    cases = {
        media.make_corrupt(tmp_path / "random.bin"): "not a recognised media file",
        media.make_corrupt(tmp_path / "random.mp4"): "moov atom not found",
        media.make_empty(tmp_path / "empty.mp4"): "empty",
        tmp_path / "missing.mp4": "not found",
        tmp_path: "not a regular file",
    }
    for path, reason in cases.items():
        with pytest.raises(MediaError) as exc_info:
            probe(tools, path)
        message = exc_info.value.message
        assert str(path) in message
        assert reason in message
        assert "\n" not in message
        assert exc_info.value.exit_code == 1


@pytest.mark.parametrize("tools", PROBE_MODES)
def test_probe_cut_short_recording(tools: FFmpegTools, tmp_path: Path) -> None:
    """A recording whose writer died before the moov box (written last) reached the disk."""
    full = media.make_video(tmp_path / "full.mp4", seconds=3, faststart=False)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(MediaError, match="incomplete MP4"):
        probe(tools, cut)


@pytest.mark.parametrize("tools", PROBE_MODES)
def test_probe_header_without_duration(tools: FFmpegTools, clips: dict[str, Path]) -> None:
    """The first 100 bytes of a faststart MP4: a recognisable header, but no duration."""
    cut = clips["video"].with_name("head.mp4")
    cut.write_bytes(clips["video"].read_bytes()[:100])
    with pytest.raises(MediaError, match="no duration"):
        probe(tools, cut)


def test_probe_timeout_is_a_media_error(clips: dict[str, Path]) -> None:
    with pytest.raises(MediaError, match="timed out"):
        probe(TOOLS, clips["video"], timeout=1e-6)


def test_ffmpeg_version() -> None:
    assert ffmpeg_version(TOOLS).startswith("ffmpeg version ")


# --------------------------------------------------------------------------- locate


def _bundled() -> str:
    exe = shutil.which(str(imageio_ffmpeg.get_ffmpeg_exe()))
    assert exe is not None
    return exe


@pytest.fixture
def fake_system(tmp_path: Path) -> Path:
    """A PATH directory holding `ffmpeg` (the real bundled binary) and an `ffprobe` stub.

    locate() only checks that the files are executable; it does not run them.
    """
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "ffmpeg").symlink_to(_bundled())
    stub = bindir / "ffprobe"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    return bindir


def test_locate_falls_back_to_bundled_ffmpeg_without_ffprobe(tmp_path: Path) -> None:
    tools = locate(env={"PATH": str(tmp_path)})
    assert tools.ffmpeg == _bundled()
    # imageio-ffmpeg ships no ffprobe (a conda ffmpeg could have one next to it).
    assert tools.ffprobe is None or Path(tools.ffprobe).parent == Path(tools.ffmpeg).parent


def test_locate_prefers_system_binaries(fake_system: Path) -> None:
    tools = locate(env={"PATH": str(fake_system)})
    assert tools == FFmpegTools(str(fake_system / "ffmpeg"), str(fake_system / "ffprobe"))


def test_locate_prefer_bundled(fake_system: Path) -> None:
    tools = locate(prefer_system=False, env={"PATH": str(fake_system)})
    assert tools.ffmpeg == _bundled()
    # The bundled build has no ffprobe of its own, so the one on PATH is still used.
    assert tools.ffprobe == str(fake_system / "ffprobe")


def test_locate_env_overrides(fake_system: Path, tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path), "LEAP_FFMPEG": str(fake_system / "ffmpeg")}
    # An ffprobe next to the chosen ffmpeg comes from the same build.
    assert locate(env=env) == FFmpegTools(str(fake_system / "ffmpeg"), str(fake_system / "ffprobe"))
    env = {"PATH": str(fake_system), "LEAP_FFMPEG": "ffmpeg", "LEAP_FFPROBE": _bundled()}
    assert locate(env=env) == FFmpegTools(str(fake_system / "ffmpeg"), _bundled())


@pytest.mark.parametrize("var", ["LEAP_FFMPEG", "LEAP_FFPROBE"])
def test_locate_bad_override_is_config_error(var: str, tmp_path: Path) -> None:
    env = {"PATH": "", var: str(tmp_path / "nope" / "ffmpeg")}
    with pytest.raises(ConfigError, match=var) as exc_info:
        locate(env=env)
    assert exc_info.value.exit_code == 6


def test_locate_override_must_be_executable(tmp_path: Path) -> None:
    plain = tmp_path / "ffmpeg"
    plain.write_text("not a program")
    with pytest.raises(ConfigError, match="not an executable"):
        locate(env={"PATH": "", "LEAP_FFMPEG": str(plain)})


def test_locate_nothing_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # imageio-ffmpeg returns IMAGEIO_FFMPEG_EXE unchecked: point it at nothing.
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="ffmpeg not found") as exc_info:
        locate(env={"PATH": str(tmp_path)})
    assert "LEAP_FFMPEG" in exc_info.value.message


def test_locate_default_env_is_cached() -> None:
    tools = locate()
    assert locate() is tools
    assert os.access(tools.ffmpeg, os.X_OK)


# --------------------------------------------------------------------------- banner parser

MP4_H264_AAC = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'lecture.mp4':
  Metadata:
    major_brand     : isom
    minor_version   : 512
    compatible_brands: isomiso2avc1mp41
    creation_time   : 2024-03-11T09:58:12.000000Z
    encoder         : Lavf58.76.100
  Duration: 01:02:03.45, start: 0.000000, bitrate: 1205 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), \
1280x720 [SAR 1:1 DAR 16:9], 1130 kb/s, 30 fps, 30 tbr, 15360 tbn (default)
    Metadata:
      handler_name    : VideoHandler
      vendor_id       : [0][0][0][0]
  Stream #0:1[0x2](eng): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, mono, fltp, \
69 kb/s (default)
    Metadata:
      handler_name    : SoundHandler
      vendor_id       : [0][0][0][0]
At least one output file must be specified
"""

M4A_AUDIO_ONLY = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from '/home/u/Запись встречи.m4a':
  Metadata:
    major_brand     : M4A
    minor_version   : 0
    compatible_brands: M4A isommp42
    title           : Duration: 99:99:99.99 is not a real header line
  Duration: 00:45:10.02, start: 0.000000, bitrate: 129 kb/s
  Chapters:
    Chapter #0:0: start 0.000000, end 1200.000000
      Metadata:
        title           : Part 1
  Stream #0:0[0x1](und): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, stereo, fltp, \
127 kb/s (default)
    Metadata:
      handler_name    : Core Media Audio
At least one output file must be specified
"""

MP3_COVER_ART = """\
[mp3 @ 0x5581c9e4a2c0] Estimating duration from bitrate, this may be inaccurate
Input #0, mp3, from 'podcast.mp3':
  Metadata:
    title           : Episode 12
    artist          : Someone
  Duration: 00:31:40.56, start: 0.025057, bitrate: 128 kb/s
  Stream #0:0: Audio: mp3 (mp3float), 44100 Hz, stereo, fltp, 128 kb/s
  Stream #0:1: Video: mjpeg (Baseline), yuvj420p(pc, bt470bg/unknown/unknown), 500x500 \
[SAR 1:1 DAR 1:1], 90k tbr, 90k tbn (attached pic)
    Metadata:
      comment         : Cover (front)
At least one output file must be specified
"""

WEBM_VP9_OPUS = """\
Input #0, matroska,webm, from 'meet.webm':
  Metadata:
    ENCODER         : Chrome
  Duration: 00:12:00.51, start: 0.000000, bitrate: 600 kb/s
  Stream #0:0(eng): Audio: opus, 48000 Hz, stereo, fltp (default)
  Stream #0:1(eng): Video: vp9 (Profile 0), yuv420p(tv, progressive), 1920x1080, SAR 1:1 \
DAR 16:9, 30 fps, 30 tbr, 1k tbn (default)
At least one output file must be specified
"""

MKV_51_WITH_SUBS = """\
Input #0, matroska,webm, from 'talk.mkv':
  Metadata:
    ENCODER         : Lavf60.3.100
  Duration: 00:00:02.02, start: 0.000000, bitrate: 349 kb/s
  Stream #0:0: Video: h264 (High 4:4:4 Predictive), yuv444p(tv, progressive), 854x480 \
[SAR 1:1 DAR 427:240], 25 fps, 25 tbr, 1k tbn
    Metadata:
      DURATION        : 00:00:02.000000000
  Stream #0:1(rus): Audio: aac (LC), 44100 Hz, 5.1(side), fltp
    Metadata:
      DURATION        : 00:00:02.023000000
  Stream #0:2(rus): Subtitle: subrip
  Stream #0:3: Attachment: ttf
    Metadata:
      filename        : font.ttf
"""

WAV_OLD_FFMPEG = """\
Guessed Channel Layout for Input Stream #0.0 : mono
Input #0, wav, from 'dictation.wav':
  Duration: 00:00:10.00, bitrate: 256 kb/s
  Stream #0:0: Audio: pcm_s16le ([1][0][0][0] / 0x0001), 16000 Hz, 1 channels, s16, 256 kb/s
"""

TS_PROGRAM = """\
Input #0, mpegts, from 'capture.ts':
  Duration: 00:05:00.04, start: 1.400000, bitrate: 4021 kb/s
  Program 1
    Metadata:
      service_name    : Service01
  Stream #0:0[0x100]: Video: h264 (Main) ([27][0][0][0] / 0x001B), yuv420p(tv, bt709, \
progressive), 1920x1080 [SAR 1:1 DAR 16:9], 25 fps, 25 tbr, 90k tbn
  Stream #0:1[0x101](und): Audio: ac3 ([129][0][0][0] / 0x0081), 48000 Hz, 6 channels \
(FL+FR+FC+LFE+BL+BR), fltp, 384 kb/s
"""

RAW_H264_NO_DURATION = """\
Input #0, h264, from 'stream.h264':
  Duration: N/A, bitrate: N/A
  Stream #0:0: Video: h264 (High), yuv420p(progressive), 1920x1080, 30 fps, 30 tbr, \
1200k tbn
At least one output file must be specified
"""

LAVFI_NO_DURATION = """\
Input #0, lavfi, from 'testsrc':
  Duration: N/A, start: 0.000000, bitrate: N/A
  Stream #0:0: Video: wrapped_avframe, rgb24, 320x240 [SAR 1:1 DAR 4:3], 25 fps
"""

CORRUPT_FFMPEG_51 = """\
[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d0c8a4b340] Format mov,mp4,m4a,3gp,3g2,mj2 detected only \
with low score of 1, misdetection possible!
[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d0c8a4b340] moov atom not found
rec.mp4: Invalid data found when processing input
"""

CORRUPT_FFMPEG_9 = """\
[in#0 @ 0x55cb467accc0] Error opening input: Invalid data found when processing input
Error opening input file file:notes.txt.
Error opening input files: Invalid data found when processing input
"""

UNKNOWN_FAILURE = """\
[in#0 @ 0x55cb467accc0] Error opening input: Something unusual happened
Error opening input file file:x.mp4.
Error opening input files: Something unusual happened
"""


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        pytest.param(
            MP4_H264_AAC,
            MediaInfo(3723.45, 10, "mov,mp4,m4a,3gp,3g2,mj2", True, True, "h264", "aac",
                      1280, 720, 44100, 1),
            id="mp4-h264-aac",
        ),
        pytest.param(
            M4A_AUDIO_ONLY,
            MediaInfo(2710.02, 10, "mov,mp4,m4a,3gp,3g2,mj2", False, True, None, "aac",
                      None, None, 48000, 2),
            id="m4a-audio-only",
        ),
        pytest.param(
            MP3_COVER_ART,
            MediaInfo(1900.56, 10, "mp3", False, True, None, "mp3", None, None, 44100, 2),
            id="mp3-attached-pic",
        ),
        pytest.param(
            WEBM_VP9_OPUS,
            MediaInfo(720.51, 10, "matroska,webm", True, True, "vp9", "opus",
                      1920, 1080, 48000, 2),
            id="webm-vp9-opus",
        ),
        pytest.param(
            MKV_51_WITH_SUBS,
            MediaInfo(2.02, 10, "matroska,webm", True, True, "h264", "aac",
                      854, 480, 44100, 6),
            id="mkv-5.1-subtitles",
        ),
        pytest.param(
            WAV_OLD_FFMPEG,
            MediaInfo(10.0, 10, "wav", False, True, None, "pcm_s16le", None, None, 16000, 1),
            id="wav-1-channels",
        ),
        pytest.param(
            TS_PROGRAM,
            MediaInfo(300.04, 10, "mpegts", True, True, "h264", "ac3", 1920, 1080, 48000, 6),
            id="mpegts-program",
        ),
    ],
)  # fmt: skip
def test_parse_ffmpeg_banner(stderr: str, expected: MediaInfo) -> None:
    info = parse_ffmpeg_banner(stderr, 10)
    assert info == MediaInfo(**{**vars(expected), "duration_s": pytest.approx(expected.duration_s)})


def test_banner_ignores_streams_after_the_first_input() -> None:
    stderr = MP4_H264_AAC.replace("At least one output file must be specified\n", "") + (
        "Input #1, wav, from 'other.wav':\n"
        "  Duration: 00:00:05.00, bitrate: 256 kb/s\n"
        "  Stream #1:0: Audio: pcm_s16le, 16000 Hz, 1 channels, s16, 256 kb/s\n"
        "Stream mapping:\n"
        "  Stream #0:0 -> #0:0 (h264 (native) -> h264 (libx264))\n"
        "Output #0, mp4, to 'out.mp4':\n"
        "  Stream #0:0: Video: h264, yuv420p(progressive), 640x360, q=2-31, 25 fps\n"
    )
    info = parse_ffmpeg_banner(stderr, 1)
    assert (info.width, info.height, info.audio_sample_rate) == (1280, 720, 44100)


@pytest.mark.parametrize("stderr", [RAW_H264_NO_DURATION, LAVFI_NO_DURATION])
def test_banner_without_duration(stderr: str) -> None:
    with pytest.raises(MediaError, match=r"no duration.*N/A"):
        parse_ffmpeg_banner(stderr, 10)


@pytest.mark.parametrize(
    ("stderr", "reason"),
    [
        (CORRUPT_FFMPEG_51, "incomplete MP4 (moov atom not found"),
        (CORRUPT_FFMPEG_9, "not a recognised media file"),
        (UNKNOWN_FAILURE, "Error opening input files: Something unusual happened"),
        ("", "ffmpeg could not read the file"),
    ],
)
def test_banner_failure_reasons(stderr: str, reason: str) -> None:
    with pytest.raises(MediaError) as exc_info:
        parse_ffmpeg_banner(stderr, 10)
    assert exc_info.value.message.startswith(reason)
    assert "\n" not in exc_info.value.message


# --------------------------------------------------------------------------- ffprobe JSON

FFPROBE_MP3_WITH_COVER: dict[str, Any] = {
    "streams": [
        {
            "index": 0,
            "codec_name": "mp3",
            "codec_long_name": "MP3 (MPEG audio layer 3)",
            "codec_type": "audio",
            "sample_fmt": "fltp",
            "sample_rate": "44100",
            "channels": 2,
            "channel_layout": "stereo",
            "bits_per_sample": 0,
            "r_frame_rate": "0/0",
            "time_base": "1/14112000",
            "start_pts": 353600,
            "start_time": "0.025057",
            "duration_ts": 26818535424,
            "duration": "1900.406667",
            "bit_rate": "128000",
            "disposition": {"default": 0, "attached_pic": 0},
        },
        {
            "index": 1,
            "codec_name": "mjpeg",
            "codec_long_name": "Motion JPEG",
            "profile": "Baseline",
            "codec_type": "video",
            "width": 500,
            "height": 500,
            "pix_fmt": "yuvj420p",
            "r_frame_rate": "90000/1",
            "disposition": {"default": 0, "attached_pic": 1},
            "tags": {"comment": "Cover (front)"},
        },
    ],
    "format": {
        "filename": "podcast.mp3",
        "nb_streams": 2,
        "format_name": "mp3",
        "format_long_name": "MP2/3 (MPEG audio layer 2/3)",
        "start_time": "0.025057",
        "duration": "1900.560000",
        "size": "30408960",
        "bit_rate": "128000",
        "probe_score": 51,
        "tags": {"title": "Episode 12"},
    },
}

FFPROBE_MP4: dict[str, Any] = {
    "streams": [
        {
            "index": 0,
            "codec_name": "h264",
            "profile": "High",
            "codec_type": "video",
            "codec_tag_string": "avc1",
            "width": 1280,
            "height": 720,
            "coded_width": 1280,
            "coded_height": 720,
            "pix_fmt": "yuv420p",
            "r_frame_rate": "30/1",
            "duration": "3723.433333",
            "disposition": {"default": 1, "attached_pic": 0},
        },
        {
            "index": 1,
            "codec_name": "aac",
            "profile": "LC",
            "codec_type": "audio",
            "sample_fmt": "fltp",
            "sample_rate": "44100",
            "channels": 1,
            "channel_layout": "mono",
            "duration": "3723.450000",
            "disposition": {"default": 1, "attached_pic": 0},
        },
    ],
    "format": {
        "filename": "lecture.mp4",
        "nb_streams": 2,
        "format_name": "mov,mp4,m4a,3gp,3g2,mj2",
        "duration": "3723.450000",
        "size": "560788130",
    },
}


def test_parse_ffprobe_json() -> None:
    """Runs everywhere; the ffprobe subprocess itself is exercised by the "ffprobe" probe
    tests above only on machines that have an ffprobe (this project's CI box has none)."""
    assert parse_ffprobe_json(FFPROBE_MP4, 560788130) == MediaInfo(
        3723.45, 560788130, "mov,mp4,m4a,3gp,3g2,mj2", True, True, "h264", "aac",
        1280, 720, 44100, 1,
    )  # fmt: skip
    assert parse_ffprobe_json(FFPROBE_MP3_WITH_COVER, 30408960) == MediaInfo(
        1900.56, 30408960, "mp3", False, True, None, "mp3", None, None, 44100, 2
    )


@pytest.mark.parametrize("duration", [None, "N/A", "0.000000", "nan"])
def test_parse_ffprobe_json_without_duration(duration: str | None) -> None:
    fmt = {k: v for k, v in FFPROBE_MP4["format"].items() if k != "duration"}
    if duration is not None:
        fmt["duration"] = duration
    with pytest.raises(MediaError, match="no duration"):
        parse_ffprobe_json({**FFPROBE_MP4, "format": fmt}, 1)
