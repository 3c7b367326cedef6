"""Trim benchmark: LEAP's silence detection, planning and cut against plain `ffmpeg -c copy`.

Generates (once, cached) an N-minute 1280x720 25 fps recording with a silent lead-in and
tail, then measures in one run: (a) a plain `ffmpeg -ss S -i IN -t D -c copy OUT` of the cut
LEAP plans, (b) LEAP's detect_silence + plan_trim + cut (copy), (c) detect_silence alone,
(d) an accurate (re-encoding) cut; seconds, and ratios to (a).

    .venv/bin/python -m benchmarks.bench_trim [--minutes 60] [--dir DIR] [--no-accurate]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from leap.media.ffmpeg import FFmpegTools, locate, probe
from leap.media.ffmpeg_ops import cut, detect_silence
from leap.media.trim_plan import TrimPlan, plan_trim

SEGMENT_S = 60
# Speech stand-in: a tone broken by 0.8 s pauses (shorter than silencedetect's 2 s minimum,
# like pauses between sentences), over a -54 dBFS noise floor that the "silent" parts share.
NOISE = "0.002*(random(0)*2-1)"
SPEECH = f"0.4*sin(2*PI*220*t)*gt(mod(t\\,7)\\,0.8)+{NOISE}"


def _ffmpeg(tools: FFmpegTools, *args: str) -> None:
    cmd = [tools.ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args]
    subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL)


def _segment(tools: FFmpegTools, path: Path, audio_expr: str) -> None:
    video = "testsrc=size=1280x720:rate=25"
    audio = f"aevalsrc={audio_expr}:s=48000:c=mono"
    _ffmpeg(
        tools,
        *("-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio, "-t", str(SEGMENT_S)),
        # A 10 s GOP, like many recorders: a copy cut may start up to 10 s early.
        *("-c:v", "libx264", "-preset", "ultrafast", "-g", "250", "-pix_fmt", "yuv420p"),
        *("-c:a", "aac", "-b:a", "64k", str(path)),
    )


def lead_tail_minutes(minutes: int) -> tuple[int, int]:
    return max(1, round(minutes * 0.05)), max(1, round(minutes * 0.1))


def make_clip(tools: FFmpegTools, directory: Path, minutes: int) -> Path:
    """Encode one silent and one "speech" minute, then concatenate copies of them (no
    re-encoding): far faster than encoding an hour, and the packets are real H.264/AAC."""
    clip = directory / f"bench-trim-{minutes}min-720p25.mp4"
    if clip.is_file():
        print(f"using cached {clip} ({clip.stat().st_size / 1e6:.0f} MB)")
        return clip
    directory.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    silent, speech = directory / "segment-silent.mp4", directory / "segment-speech.mp4"
    _segment(tools, silent, NOISE)
    _segment(tools, speech, SPEECH)
    lead, tail = lead_tail_minutes(minutes)
    middle = minutes - lead - tail
    if middle < 1:
        raise SystemExit(f"--minutes {minutes} leaves no speech between lead-in and tail")
    order = [silent] * lead + [speech] * middle + [silent] * tail
    listing = directory / f"concat-{minutes}.txt"
    listing.write_text("".join(f"file '{p.name}'\n" for p in order))
    tmp = clip.with_name(f".tmp-{clip.name}")
    _ffmpeg(tools, "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy",
            "-movflags", "+faststart", str(tmp))  # fmt: skip
    tmp.replace(clip)
    took = time.perf_counter() - began
    print(
        f"generated {clip} in {took:.1f} s: two {SEGMENT_S} s segments (testsrc 1280x720 25 fps, "
        f"libx264 ultrafast, GOP 10 s; aac mono 48 kHz) concatenated by stream copy: "
        f"{lead} min silent, {middle} min speech, {tail} min silent; "
        f"{clip.stat().st_size / 1e6:.0f} MB"
    )
    return clip


def timed(fn: Callable[[], object]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def plain_copy(tools: FFmpegTools, src: Path, dst: Path, plan: TrimPlan) -> None:
    _ffmpeg(tools, "-ss", f"{plan.start_s:.3f}", "-i", str(src),
            "-t", f"{plan.end_s - plan.start_s:.3f}", "-c", "copy", str(dst))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "leap-bench")
    parser.add_argument("--repeat", type=int, default=5, help="runs of (a) and (b); best is kept")
    parser.add_argument("--no-accurate", action="store_true", help="skip (d), the slow one")
    opts = parser.parse_args()

    tools = locate()
    src = make_clip(tools, opts.dir, opts.minutes)
    out = opts.dir / "out"
    out.mkdir(exist_ok=True)
    duration = probe(tools, src).duration_s
    print(f"ffmpeg: {tools.ffmpeg}")
    print(f"input: {duration / 60:.1f} min, {src.stat().st_size / 1e6:.0f} MB\n")

    # (c) first also warms the page cache, so (a) and (b) both read from memory.
    began = time.perf_counter()
    silences = detect_silence(tools, src)
    detect_s = time.perf_counter() - began
    plan = plan_trim(duration, silences)
    detect_plan_s = time.perf_counter() - began
    print(f"silences: {len(silences)}; plan: {plan.reason}")

    # Interleaved, so drift in machine load hits both equally.
    plain: list[float] = []
    leap: list[float] = []
    for _ in range(opts.repeat):
        plain.append(timed(lambda: plain_copy(tools, src, out / "plain.mp4", plan)))
        leap.append(
            timed(
                lambda: cut(tools, src, out / "leap.mp4", plan.start_s, plan.end_s, accurate=False)
            )
        )
    a, b_cut = min(plain), min(leap)
    b_total = detect_plan_s + b_cut
    plain_d = probe(tools, out / "plain.mp4").duration_s
    leap_d = probe(tools, out / "leap.mp4").duration_s

    med, pmed = statistics.median(leap), statistics.median(plain)
    rows = [
        ("(a) plain ffmpeg -ss -i -t -c copy", a, f"output {plain_d:.2f} s; median {pmed:.3f} s"),
        ("(b) LEAP cut (copy)", b_cut, f"output {leap_d:.2f} s; median {med:.3f} s"),
        ("(b) LEAP detect + plan + cut", b_total, ""),
        ("(c) detect_silence", detect_s, f"{duration / detect_s:.0f}x realtime"),
    ]  # fmt: skip
    if not opts.no_accurate:
        acc_s = timed(
            lambda: cut(tools, src, out / "accurate.mp4", plan.start_s, plan.end_s, accurate=True)
        )
        acc_d = probe(tools, out / "accurate.mp4").duration_s
        kept = plan.end_s - plan.start_s
        note = f"output {acc_d:.2f} s; {kept / acc_s:.1f}x realtime"
        rows.append(("(d) LEAP cut (accurate)", acc_s, note))

    print(f"\n{'':38}{'seconds':>9}{'vs (a)':>9}")
    for name, secs, note in rows:
        print(f"{name:38}{secs:9.3f}{secs / a:8.2f}x  {note}")
    print(
        f"\n(b) cut / (a): best {b_cut / a:.2f}x, median {med / pmed:.2f}x (target <= 1.1x); "
        f"planned kept {plan.kept_s:.1f} s"
    )


if __name__ == "__main__":
    main()
