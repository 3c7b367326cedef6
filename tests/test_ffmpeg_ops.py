"""ffmpeg operations of the trim stage: argv and log parsing on literals, then real clips."""

from __future__ import annotations

import itertools
import os
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest

from leap.errors import ConfigError
from leap.media.ffmpeg import FFmpegTools, MediaError, locate, probe
from leap.media.ffmpeg_ops import (
    audio_suffix,
    cut,
    cut_args,
    detect_black,
    detect_black_args,
    detect_silence,
    detect_silence_args,
    encoders,
    extract_audio,
    extract_audio_args,
    failure_reason,
    parse_blackdetect,
    parse_silencedetect,
    run_ffmpeg,
)
from leap.media.trim_plan import Interval, TrimSettings, plan_trim
from tests import media

TOOLS = locate()
HAS_X264 = "libx264" in media.encoders()
HAS_OPUS = "libopus" in media.encoders()

# --------------------------------------------------------------------------- parsers

SILENCE_FFMPEG_5 = """\
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'file:talk.mp4':
  Duration: 00:01:00.00, start: 0.000000, bitrate: 158 kb/s
[silencedetect @ 0x55d0c8a2b1c0] silence_start: -0.00133333
[silencedetect @ 0x55d0c8a2b1c0] silence_end: 12.5 | silence_duration: 12.5013
size=N/A time=00:00:30.00 bitrate=N/A speed= 757x
[silencedetect @ 0x55d0c8a2b1c0] silence_start: 30.25
[silencedetect @ 0x55d0c8a2b1c0] silence_end: 33.0003 | silence_duration: 2.75
[silencedetect @ 0x55d0c8a2b1c0] silence_start: 48.1
video:0kB audio:5168kB subtitle:0kB other streams:0kB global headers:0kB muxing overhead: unknown
"""

SILENCE_FFMPEG_9 = """\
[Parsed_silencedetect_0 @ 0x7f79cc001c00] silence_start: 0
[Parsed_silencedetect_0 @ 0x7f79cc001c00] silence_end: 4.000023 | silence_duration: 4.000023
[Parsed_silencedetect_0 @ 0x7f79cc001c00] silence_start: 10
[Parsed_silencedetect_0 @ 0x7f79cc001c00] silence_end: 15 | silence_duration: 5
"""


@pytest.mark.parametrize(
    ("stderr", "duration", "expected"),
    [
        pytest.param(
            SILENCE_FFMPEG_5,
            60.0,
            [Interval(0, 12.5), Interval(30.25, 33.0003), Interval(48.1, 60)],
            id="ffmpeg5-trailing-start-runs-to-end",
        ),
        pytest.param(
            SILENCE_FFMPEG_9,
            15.0,
            [Interval(0, 4.000023), Interval(10, 15)],
            id="ffmpeg9-end-at-eof",
        ),
        pytest.param("", 10.0, [], id="empty"),
        pytest.param("no silence lines at all\nframe=1\n", 10.0, [], id="unrelated"),
        pytest.param(
            "silence_end: 5 | silence_duration: 2\nsilence_start: 7.5e+00\nsilence_end: 9\n",
            10.0,
            [Interval(3, 5), Interval(7.5, 9)],
            id="end-without-start-and-exponent",
        ),
        pytest.param(
            "silence_start: 8\nsilence_end: 12.04 | silence_duration: 4.04\n",
            12.0,
            [Interval(8, 12)],
            id="clipped-to-duration",
        ),
    ],
)
def test_parse_silencedetect(stderr: str, duration: float, expected: list[Interval]) -> None:
    assert parse_silencedetect(stderr, duration) == expected


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        pytest.param(
            "[blackdetect @ 0x55d3] black_start:0 black_end:4.96 black_duration:4.96\n"
            "[blackdetect @ 0x55d3] black_start:550.2 black_end:600 black_duration:49.8\n",
            [Interval(0, 4.96), Interval(550.2, 600)],
            id="two",
        ),
        pytest.param(
            "[Parsed_blackdetect_0 @ 0x1] black_start:590\n", [Interval(590, 600)], id="open"
        ),
        pytest.param("", [], id="none"),
    ],
)
def test_parse_blackdetect(stderr: str, expected: list[Interval]) -> None:
    assert parse_blackdetect(stderr, 600.0) == expected


@pytest.mark.parametrize(
    ("stderr", "reason"),
    [
        pytest.param(
            "[in#0 @ 0x5603f5b9c880] Format mov,mp4,m4a,3gp,3g2,mj2 detected only with low "
            "score of 1, misdetection possible!\n"
            "[in#0 @ 0x5603f5b9c880] moov atom not found\n"
            "[in#0 @ 0x5603f5b9c540] Error opening input: Invalid data found when processing "
            "input\nError opening input file file:bad.mp4.\n"
            "Error opening input files: Invalid data found when processing input\n",
            "incomplete MP4 (moov atom not found; the recording may be cut short)",
            id="moov",
        ),
        pytest.param(
            "Stream map '' matches no streams.\nTo ignore this, add a trailing '?' to the map.\n"
            "Failed to set value '0:a:0' for option 'map': Invalid argument\n"
            "Error parsing options for output file -.\n"
            "Error opening output files: Invalid argument\n",
            "the file has no such stream (no audio or video track?)",
            id="no-stream",
        ),
        pytest.param(
            "Stream mapping:\n"
            "[out#0/mp4 @ 0x5585589a6ac0] Error opening output file:/nonexist/x.mp4: "
            "No such file or directory\n"
            "Error opening output file file:/nonexist/x.mp4.\n"
            "Error opening output files: No such file or directory\n",
            "Error opening output file:/nonexist/x.mp4: No such file or directory",
            id="output-dir-missing",
        ),
        pytest.param(
            "[libx264 @ 0x55f60e31a440] using cpu capabilities: MMX2 SSE2Fast\n"
            "[webm @ 0x55f60e2b9cc0] Only VP8 or VP9 or AV1 video and Vorbis or Opus audio "
            "and WebVTT subtitles are supported for WebM.\n"
            "[out#0/webm @ 0x55f60e368b00] Could not write header (incorrect codec parameters "
            "?): Invalid argument\n"
            "[vf#0:0 @ 0x55f60e361f40] Task finished with error code: -22 (Invalid argument)\n"
            "[out#0/webm @ 0x55f60e368b00] Nothing was written into output file, because at "
            "least one of its streams received no packets.\n"
            "frame=    0 fps=0.0 q=0.0 Lsize=       0KiB time=00:00:00.44 bitrate=   0.0kbits/s\n"
            "[aac @ 0x55f60e311740] Qavg: 64572.082\nConversion failed!\n",
            "Only VP8 or VP9 or AV1 video and Vorbis or Opus audio and WebVTT subtitles are "
            "supported for WebM.",
            id="first-specific-error",
        ),
        pytest.param(
            "[in#0 @ 0x1] Error opening input: No such file or directory\n",
            "file not found",
            id="missing",
        ),
        pytest.param("something odd happened\n", "something odd happened", id="fallback-last"),
        pytest.param("", "ffmpeg failed without a message", id="silent"),
        pytest.param("x" * 300, "x" * 199 + "…", id="long-line-cut"),
    ],
)
def test_failure_reason(stderr: str, reason: str) -> None:
    assert failure_reason(stderr.splitlines()) == reason


# --------------------------------------------------------------------------- argv


def test_cut_args_copy_mp4() -> None:
    args = cut_args(TOOLS, Path("/in/rec.mp4"), Path("/out/.tmp-trimmed.mp4"), 2.5, 11.5,
                    accurate=False)  # fmt: skip
    assert args == [
        "-ss", "2.500", "-i", "file:/in/rec.mp4", "-t", "9.000",
        "-map", "0:v?", "-map", "0:a?",
        "-c", "copy", "-avoid_negative_ts", "make_zero",
        "-movflags", "+faststart",
        "-f", "mp4", "file:/out/.tmp-trimmed.mp4",
    ]  # fmt: skip
    # -ss must come before -i: after it, a copy cut gave audio without video.
    assert args.index("-ss") < args.index("-i")


def test_cut_args_copy_mkv_has_no_movflags() -> None:
    args = cut_args(TOOLS, Path("a.mkv"), Path("b.MKV"), 0, 60, accurate=False)
    assert "-movflags" not in args
    assert args[-3:] == ["-f", "matroska", "file:b.MKV"]


@pytest.mark.skipif(not HAS_X264, reason="ffmpeg without libx264")
def test_cut_args_accurate_mp4() -> None:
    args = cut_args(TOOLS, Path("in.mp4"), Path("out.mp4"), 1, 3.25, accurate=True)
    assert args == [
        "-ss", "1.000", "-i", "file:in.mp4", "-t", "2.250",
        "-map", "0:v?", "-map", "0:a?",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "128k",
        "-movflags", "+faststart",
        "-f", "mp4", "file:out.mp4",
    ]  # fmt: skip


def test_cut_args_accurate_audio_only_container() -> None:
    args = cut_args(TOOLS, Path("in.m4a"), Path("out.m4a"), 1, 2, accurate=True)
    assert "-vn" in args and "-c:v" not in args
    assert args[-5:] == ["-movflags", "+faststart", "-f", "ipod", "file:out.m4a"]


@pytest.mark.parametrize(
    ("src", "dst", "start", "end", "accurate", "message"),
    [
        ("a.mp4", "b.xyz", 0, 1, False, r"b\.xyz: unsupported output suffix \(use one of"),
        ("a.mp4", "b.mp4.part", 0, 1, False, "unsupported output suffix"),
        ("a.webm", "b.webm", 0, 1, True, "an accurate cut cannot write .webm"),
        ("a.mp4", "b.mp4", 2, 1, False, "need 0 <= start < end"),
        ("a.mp4", "b.mp4", -1, 1, False, "need 0 <= start < end"),
        ("a.mp4", "b.mp4", 0, float("inf"), False, "need 0 <= start < end"),
        ("a.mp4", "a.mp4", 0, 1, False, "the output must not be the input"),
    ],
)
def test_cut_args_rejects(
    src: str, dst: str, start: float, end: float, accurate: bool, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        cut_args(TOOLS, Path(src), Path(dst), start, end, accurate=accurate)


@pytest.mark.skipif(not HAS_OPUS, reason="ffmpeg without libopus")
def test_extract_audio_args_opus() -> None:
    assert audio_suffix(TOOLS) == ".ogg"
    assert extract_audio_args(TOOLS, Path("-in.mp4"), Path("audio.ogg")) == [
        "-i", "file:-in.mp4", "-map", "0:a:0", "-vn", "-sn", "-dn",
        "-ac", "1", "-ar", "16000",
        "-c:a", "libopus", "-b:a", "24k", "-application", "voip",
        "-map_metadata", "-1",
        "-f", "ogg", "file:audio.ogg",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("suffix", "codec", "muxer"),
    [(".mp3", "libmp3lame", "mp3"), (".m4a", "aac", "ipod"), (".wav", "pcm_s16le", "wav")],
)
def test_extract_audio_args_other_formats(suffix: str, codec: str, muxer: str) -> None:
    if codec not in encoders(TOOLS):
        pytest.skip(f"ffmpeg without {codec}")
    args = extract_audio_args(TOOLS, Path("in.mp4"), Path(f"audio{suffix}"))
    assert args[args.index("-c:a") + 1] == codec
    assert args[-2:] == [muxer, f"file:audio{suffix}"]


def test_extract_audio_args_rejects_unknown_suffix() -> None:
    with pytest.raises(ValueError, match="unsupported audio suffix"):
        extract_audio_args(TOOLS, Path("in.mp4"), Path("audio.flac"))


def test_detect_args() -> None:
    assert detect_silence_args(Path("x.mp4"), noise_db=-35.0, min_silence_s=2.0) == [
        "-i", "file:x.mp4", "-vn", "-sn", "-dn",
        "-af", "silencedetect=noise=-35dB:d=2", "-f", "null", "-",
    ]  # fmt: skip
    assert detect_black_args(Path("x.mp4"), min_black_s=2.0, pix_th=0.1) == [
        "-skip_frame", "nokey", "-i", "file:x.mp4", "-an", "-sn", "-dn",
        "-vf", "blackdetect=d=2:pix_th=0.1", "-f", "null", "-",
    ]  # fmt: skip


def test_encoders_are_read_once() -> None:
    names = encoders(TOOLS)
    assert {"aac", "pcm_s16le"} <= names
    assert encoders(TOOLS) is names


# --------------------------------------------------------------------------- real clips

LEAD, TONE, TAIL = 4.0, 6.0, 5.0
PAD = 1.5
# The lead-in is 4 s, under the 5 s default; these settings make both edges count.
SETTINGS = TrimSettings(min_lead_silence_s=3, min_tail_silence_s=3, pad_s=PAD, min_keep_s=1)


def _ffmpeg(*args: str) -> None:
    cmd = [media.ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args]
    subprocess.run(cmd, check=True, capture_output=True, stdin=subprocess.DEVNULL, timeout=120)


def _with_keyframes_every_second(d: Path) -> Path:
    """make_silence_tone_silence's audio under a 25 fps video with a keyframe every 25 frames
    (make_silence_tone_silence itself cannot set the GOP)."""
    total = LEAD + TONE + TAIL
    audio = media.make_silence_tone_silence(d / "sts.m4a", LEAD, TONE, TAIL, video=False)
    video = media.make_video(d / "gop25.mp4", seconds=total, gop=25, with_audio=False)
    out = d / "sts.mp4"
    _ffmpeg("-i", str(video), "-i", str(audio), "-map", "0:v", "-map", "1:a", "-c", "copy",
            "-movflags", "+faststart", str(out))  # fmt: skip
    return out


def _black_then_picture(path: Path) -> Path:
    """3 s of black, then 5 s of testsrc; a keyframe every second."""
    fill = "drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='lt(t,3)'"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "8", "-vf", fill,
            "-c:v", "libx264" if HAS_X264 else "mpeg4", "-g", "25", "-pix_fmt", "yuv420p",
            str(path))  # fmt: skip
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("ops")
    sts = _with_keyframes_every_second(d)
    odd = d / "-Лекция №1 (запись).mp4"
    shutil.copyfile(sts, odd)
    return {
        "sts": sts,
        "odd": odd,
        "noaudio": media.make_video(d / "noaudio.mp4", seconds=2, with_audio=False),
        "audio": media.make_audio(d / "audio.m4a", seconds=3),
        "black": _black_then_picture(d / "black.mp4"),
        "corrupt": media.make_corrupt(d / "corrupt.mp4"),
    }


def _children() -> list[int]:
    """Live (not zombie) child processes of this test process, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after the last ")".
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == os.getpid() and state != "Z":
            found.append(int(entry.name))
    return found


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def test_detect_silence_finds_lead_and_tail(clips: dict[str, Path]) -> None:
    silences = detect_silence(TOOLS, clips["sts"])
    assert len(silences) == 2, silences
    lead, tail = silences
    assert lead.start == pytest.approx(0, abs=0.15) and lead.end == pytest.approx(LEAD, abs=0.15)
    assert tail.start == pytest.approx(LEAD + TONE, abs=0.15)
    assert tail.end == pytest.approx(LEAD + TONE + TAIL, abs=0.15)


def test_detect_silence_thresholds(clips: dict[str, Path]) -> None:
    # A 4 s minimum leaves out nothing here, a 4.5 s one drops the 4 s lead-in.
    assert len(detect_silence(TOOLS, clips["sts"], min_silence_s=4.5)) == 1
    # The tone peaks at -6 dBFS: with the threshold above it, everything is "silence".
    assert detect_silence(TOOLS, clips["sts"], noise_db=0) == [Interval(0, 15.0)]


def _kept_tone(tools: FFmpegTools, path: Path) -> float:
    """Length of the non-silent part of a trimmed clip (the tone), from its silences."""
    duration = probe(tools, path).duration_s
    silences = detect_silence(tools, path, min_silence_s=0.5)
    assert len(silences) == 2, silences
    assert silences[0].start == pytest.approx(0, abs=0.05)
    assert silences[1].end == pytest.approx(duration, abs=0.1)
    return silences[1].start - silences[0].end


def test_plan_and_copy_cut_keeps_all_of_the_tone(clips: dict[str, Path], tmp_path: Path) -> None:
    info = probe(TOOLS, clips["sts"])
    plan = plan_trim(info.duration_s, detect_silence(TOOLS, clips["sts"]), SETTINGS)
    assert plan.cut, plan.reason
    assert plan.start_s == pytest.approx(LEAD - PAD, abs=0.15)
    assert plan.end_s == pytest.approx(LEAD + TONE + PAD, abs=0.15)

    out = tmp_path / "trimmed.mp4"
    cut(TOOLS, clips["sts"], out, plan.start_s, plan.end_s, accurate=False)
    got = probe(TOOLS, out)
    # A copy starts at the keyframe before the cut: up to one GOP (1 s) more lead-in.
    assert TONE + 2 * PAD - 1 <= got.duration_s <= TONE + 2 * PAD + 1.5, got
    assert got.has_video and got.has_audio
    assert (got.video_codec, got.audio_codec) == ("h264", "aac")
    assert _kept_tone(TOOLS, out) == pytest.approx(TONE, abs=0.15)


@pytest.mark.skipif(not HAS_X264, reason="ffmpeg without libx264")
def test_accurate_cut_is_on_the_frame(clips: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "accurate.mp4"
    start, end = LEAD - PAD, LEAD + TONE + PAD
    cut(TOOLS, clips["sts"], out, start, end, accurate=True)
    got = probe(TOOLS, out)
    assert got.duration_s == pytest.approx(end - start, abs=0.1)
    assert got.has_video and got.has_audio
    silences = detect_silence(TOOLS, out, min_silence_s=0.5)
    assert silences[0].end == pytest.approx(PAD, abs=0.1)
    assert _kept_tone(TOOLS, out) == pytest.approx(TONE, abs=0.15)


def test_extract_audio_is_mono_16k_and_small(clips: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / f"audio{audio_suffix(TOOLS)}"
    extract_audio(TOOLS, clips["sts"], out)
    got = probe(TOOLS, out)
    assert (got.has_video, got.has_audio, got.audio_channels) == (False, True, 1)
    assert got.duration_s == pytest.approx(LEAD + TONE + TAIL, abs=0.1)
    # 24-32 kbps for 15 s is 45-60 kB; allow for container overhead.
    assert got.size_bytes < 75_000
    if out.suffix == ".ogg":
        # ffmpeg reports every Opus stream as 48 kHz (the decoder's rate); the encoded
        # rate is in the OpusHead packet.
        data = out.read_bytes()
        head = data.index(b"OpusHead")
        assert struct.unpack_from("<I", data, head + 12)[0] == 16000
    else:
        assert got.audio_sample_rate == 16000


@pytest.mark.parametrize("suffix", [".mp3", ".wav"])
def test_extract_audio_other_formats(clips: dict[str, Path], tmp_path: Path, suffix: str) -> None:
    if suffix == ".mp3" and "libmp3lame" not in encoders(TOOLS):
        pytest.skip("ffmpeg without libmp3lame")
    out = tmp_path / f"audio{suffix}"
    extract_audio(TOOLS, clips["sts"], out)
    got = probe(TOOLS, out)
    assert (got.audio_sample_rate, got.audio_channels) == (16000, 1)
    assert got.duration_s == pytest.approx(LEAD + TONE + TAIL, abs=0.15)


def test_no_audio_is_an_error_not_all_silence(clips: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"noaudio\.mp4: no audio track; cannot detect silence"):
        detect_silence(TOOLS, clips["noaudio"])
    with pytest.raises(MediaError, match=r"noaudio\.mp4: no audio track to extract"):
        extract_audio(TOOLS, clips["noaudio"], tmp_path / "a.ogg")


def test_copy_cut_of_a_video_without_audio(clips: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "v.mp4"
    cut(TOOLS, clips["noaudio"], out, 0.5, 1.5, accurate=False)
    got = probe(TOOLS, out)
    assert (got.has_video, got.has_audio) == (True, False)


def test_copy_cut_of_audio_only(clips: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "a.m4a"
    cut(TOOLS, clips["audio"], out, 1, 2, accurate=False)
    got = probe(TOOLS, out)
    assert (got.has_video, got.has_audio) == (False, True)
    assert got.duration_s == pytest.approx(1, abs=0.1)


def test_detect_black(clips: dict[str, Path]) -> None:
    [black] = detect_black(TOOLS, clips["black"])
    # Judged on keyframes (every 1 s here), so the edges are exact only to a keyframe.
    assert black.start == pytest.approx(0, abs=0.05)
    assert black.end == pytest.approx(3, abs=1.0)
    assert detect_black(TOOLS, clips["sts"]) == []
    with pytest.raises(MediaError, match=r"audio\.m4a: no video track"):
        detect_black(TOOLS, clips["audio"])


def test_corrupt_input(clips: dict[str, Path], tmp_path: Path) -> None:
    bad = clips["corrupt"]
    with pytest.raises(MediaError, match=r"corrupt\.mp4: "):
        detect_silence(TOOLS, bad)
    with pytest.raises(MediaError, match=r"corrupt\.mp4: "):
        extract_audio(TOOLS, bad, tmp_path / "a.ogg")
    # cut does not probe first: the reason comes from ffmpeg's own log.
    with pytest.raises(MediaError) as err:
        cut(TOOLS, bad, tmp_path / "c.mp4", 0, 1, accurate=False)
    assert err.value.message.startswith(f"{bad}: ")
    assert "\n" not in err.value.message
    assert err.value.message.endswith(
        ("not a recognised media file", "moov atom not found; the recording may be cut short)")
    )


def test_missing_input_and_output_dir(clips: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"nope\.mp4: file not found$"):
        cut(TOOLS, tmp_path / "nope.mp4", tmp_path / "c.mp4", 0, 1, accurate=False)
    with pytest.raises(MediaError, match="No such file or directory"):
        cut(TOOLS, clips["sts"], tmp_path / "no" / "dir.mp4", 0, 1, accurate=False)


def test_odd_names(clips: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    # Relative names, so the leading "-" reaches ffmpeg's argv at the start of the name.
    monkeypatch.chdir(clips["odd"].parent)
    src = Path(clips["odd"].name)
    assert src.name.startswith("-")
    assert len(detect_silence(TOOLS, src)) == 2
    dst = Path("-обрезка №1.mp4")
    cut(TOOLS, src, dst, 2.5, 11.5, accurate=False)
    assert probe(TOOLS, dst).has_video
    audio = Path(f"-аудио{audio_suffix(TOOLS)}")
    extract_audio(TOOLS, dst, audio)
    assert probe(TOOLS, audio).has_audio


# --------------------------------------------------------------------------- run_ffmpeg


def _realtime(seconds: float) -> list[str]:
    """A job that takes `seconds` of wall time: -re reads the generated input at its rate."""
    return ["-re", "-f", "lavfi", "-i", f"sine=d={seconds}", "-f", "null", "-"]


def test_progress_increases_to_the_end() -> None:
    seen: list[float] = []
    run_ffmpeg(TOOLS, _realtime(3), duration_s=3, progress=seen.append, timeout=60)
    assert len(seen) >= 3, seen
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert all(0 <= f <= 1 for f in seen)
    assert seen[-1] >= 0.99
    assert all(b - a >= 0.01 for a, b in itertools.pairwise(seen))


def test_progress_without_a_duration_only_reports_the_end() -> None:
    seen: list[float] = []
    run_ffmpeg(TOOLS, _realtime(1), duration_s=None, progress=seen.append, timeout=60)
    assert seen == [1.0]


def test_detect_silence_reports_progress(clips: dict[str, Path]) -> None:
    seen: list[float] = []
    detect_silence(TOOLS, clips["sts"], progress=seen.append)
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)


@needs_proc
def test_timeout_kills_ffmpeg() -> None:
    began = time.monotonic()
    with pytest.raises(MediaError, match=r"^ffmpeg timed out after 0\.5 s$"):
        run_ffmpeg(TOOLS, _realtime(30), duration_s=30, timeout=0.5)
    assert time.monotonic() - began < 10
    assert _children() == []


class Cancelled(Exception):
    pass


@needs_proc
def test_a_raising_progress_callback_cancels() -> None:
    def cancel(_fraction: float) -> None:
        raise Cancelled

    with pytest.raises(Cancelled):
        run_ffmpeg(TOOLS, _realtime(30), duration_s=30, progress=cancel, timeout=60)
    assert _children() == []


def test_failure_is_one_line() -> None:
    with pytest.raises(MediaError) as err:
        run_ffmpeg(TOOLS, ["-f", "lavfi", "-i", "nosuchfilter", "-f", "null", "-"],
                   duration_s=None, timeout=60)  # fmt: skip
    assert "\n" not in err.value.message and err.value.message


def test_missing_ffmpeg_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot run /nonexistent/ffmpeg"):
        run_ffmpeg(FFmpegTools("/nonexistent/ffmpeg", None), ["-version"],
                   duration_s=None, timeout=5)  # fmt: skip
