"""The stages: download and trim, and the slots later stages fill. Each stage is idempotent:
a finished output on disk is reused, never redone, unless the run is forced."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from leap.context import open_context
from leap.domain import SourceKind, Stage
from leap.errors import BadSetting, UsageError
from leap.media.ffmpeg import MediaError, locate, probe
from leap.media.ffmpeg_ops import (
    audio_suffix,
    cut,
    cut_suffix,
    detect_black,
    detect_silence,
    extract_audio,
)
from leap.media.trim_plan import TrimPlan, TrimSettings, plan_trim
from leap.path_policy import open_regular
from leap.pipeline import publish
from leap.pipeline.stage_api import StageContext, StageOutcome, section, setting
from leap.pipeline.workspace import Workspace
from leap.providers.download import DownloadAuthExpired, copy_local, download_http
from leap.providers.http import RetryableError
from leap.services import clients, metering
from leap.services.users import path_policy

MEDIA_TYPES = ("MP4", "M4A")


def pick_file(files: Sequence[Mapping[str, Any]], prefer: Sequence[str]) -> Mapping[str, Any]:
    """The best media file of a meeting: preferred view first, video before audio-only."""
    # A template may hold any TOML value here; a string would match views by substring.
    if not isinstance(prefer, list | tuple) or not all(isinstance(p, str) for p in prefer):
        raise BadSetting(f"processing setting download.prefer = {prefer!r}: expected a list")
    media = [
        f for f in files if str(f.get("file_type") or "").upper() in MEDIA_TYPES or f.get("path")
    ]
    if not media:
        raise UsageError("the recording has no video or audio file to download")

    def rank(f: Mapping[str, Any]) -> tuple[int, int, int]:
        rtype = str(f.get("recording_type") or "")
        view = prefer.index(rtype) if rtype in prefer else len(prefer)
        audio_only = 1 if str(f.get("file_type") or "").upper() == "M4A" else 0
        return (view, audio_only, -int(f.get("file_size") or f.get("size") or 0))

    return sorted(media, key=rank)[0]


def _source_name(f: Mapping[str, Any]) -> str:
    ext = str(f.get("file_extension") or "").lower() or (
        Path(str(f["path"])).suffix.lstrip(".").lower() if f.get("path") else "mp4"
    )
    return f"source.{ext}"


def run_download(sc: StageContext) -> StageOutcome:
    with open_context(sc.runtime, sc.scope) as ctx:
        rec = ctx.repos.recordings.require(sc.recording_id)
        src = ctx.repos.sources.require(rec.source_id)
        files, kind, cred_id = list(rec.files), src.kind, src.credential_id
        policy = path_policy(ctx, ctx.repos.users.require(rec.user_id))
        # A standing limit: media already at the plan's storage fails the download (exit 4)
        # until some is removed; a download under it may end above it (its size is known
        # only for some sources), and the next one waits.
        metering.check_storage(ctx, rec.user_id, sc.runtime.settings.media_path)
    chosen = pick_file(files, sc.config["download"]["prefer"])
    dest = sc.workspace.path(_source_name(chosen))

    known = int(chosen.get("file_size") or chosen.get("size") or 0)

    def progress(done: int, total: int | None) -> None:
        whole = total or known
        sc.progress(done / whole if whole else 0.0, f"{done >> 20} MiB")

    if kind == SourceKind.LOCAL.value:
        # Checked again now, at the moment it is read: the file may have been swapped for a
        # symlink since sync, or its folder taken from the user (docs/paths.md).
        path = Path(str(chosen["path"]))
        with open_regular(policy, path, what="local file") as (fh, _st):
            result = copy_local(path, dest, progress=progress, opened=fh)
    else:
        if not chosen.get("download_url") or cred_id is None:
            raise UsageError("Zoom gave no download URL for this recording")
        client = clients.make_zoom_client(sc.runtime, sc.scope, cred_id, sc.http)
        size = chosen.get("file_size")
        for attempt in range(2):
            try:
                result = download_http(
                    sc.http,
                    str(chosen["download_url"]),
                    dest,
                    expected_size=int(size) if size else None,
                    bearer=client.auth.token(),
                    progress=progress,
                )
                break
            except DownloadAuthExpired:
                # The access token died mid-download: the .part stays, a new token resumes it.
                client.auth.invalidate()
                if attempt:
                    raise
    return StageOutcome(
        artifacts={"source": str(dest)},
        result={
            "file": {k: chosen.get(k) for k in ("id", "recording_type", "file_type")},
            "size": result.size,
            "resumed_from": result.resumed_from,
        },
    )


def run_trim(sc: StageContext) -> StageOutcome:
    source = sc.artifacts.get("source")
    if not source or not Path(source).is_file():
        raise UsageError("trim needs the downloaded file; run the download stage first")
    src = Path(source)
    cfg = section(sc.config, "trim")
    accurate = bool(cfg.get("accurate"))
    tools = locate()
    info = probe(tools, src)
    if not info.has_audio:
        raise MediaError(f"{src.name}: the recording has no audio track")
    suffix = audio_suffix(tools)
    audio = sc.workspace.path(f"audio{suffix}")
    trimmed = sc.workspace.path(f"trimmed{cut_suffix(src, accurate=accurate)}")
    if sc.force:
        sc.workspace.remove([audio.name, trimmed.name])

    start, end = cfg.get("start"), cfg.get("end")
    if start is not None or end is not None:
        # Explicit cut points replace detection entirely.
        plan = _explicit_plan(sc.config, info.duration_s)
    elif cfg.get("enabled", True):
        settings = TrimSettings(
            min_lead_silence_s=setting(sc.config, "trim.min_lead_silence_s", float),
            min_tail_silence_s=setting(sc.config, "trim.min_tail_silence_s", float),
            pad_s=setting(sc.config, "trim.pad_s", float),
            min_keep_s=setting(sc.config, "trim.min_keep_s", float),
            max_cut_fraction=setting(sc.config, "trim.max_cut_fraction", float),
        )
        silences = detect_silence(
            tools,
            src,
            noise_db=setting(sc.config, "trim.noise_db", float),
            min_silence_s=setting(sc.config, "trim.min_silence_s", float, positive=True),
            progress=lambda f: sc.progress(f * 0.3, "silence"),
        )
        # None: black detection did not run, silence alone decides what is dead air.
        blacks = detect_black(tools, src) if cfg.get("detect_black") and info.has_video else None
        plan = plan_trim(info.duration_s, silences, settings, blacks=blacks)
    else:
        plan = TrimPlan(0.0, info.duration_s, "trimming is disabled", False)
    if plan.cut:
        if not trimmed.is_file():
            tmp = Workspace.temp_for(trimmed)
            cut(
                tools,
                src,
                tmp,
                plan.start_s,
                plan.end_s,
                accurate=accurate,
                progress=lambda f: sc.progress(0.3 + f * 0.4, "cut"),
            )
            Workspace.commit(tmp, trimmed)
        video = trimmed
    else:
        video = src  # nothing to cut: the source is the processed video
    if not audio.is_file():
        tmp = Workspace.temp_for(audio)
        extract_audio(tools, video, tmp, progress=lambda f: sc.progress(0.7 + f * 0.3, "audio"))
        Workspace.commit(tmp, audio)
    return StageOutcome(
        artifacts={"trimmed": str(video), "audio": str(audio)},
        result={
            "trim": {
                "start_s": plan.start_s,
                "end_s": plan.end_s,
                "reason": plan.reason,
                "cut": plan.cut,
                "accurate": accurate,
            },
            "duration_s": info.duration_s,
        },
    )


def _explicit_plan(config: dict[str, Any], duration_s: float) -> TrimPlan:
    """The trim the user typed (trim.start / trim.end); BadSetting naming the values when
    they do not fit this recording (past its end, start after end), which shows only now
    that its duration is known."""
    trim = config["trim"]
    start, end = (
        None if trim.get(k) is None else setting(config, f"trim.{k}", float)
        for k in ("start", "end")
    )
    try:
        return plan_trim(duration_s, [], start_override=start, end_override=end)
    except ValueError as exc:
        given = ", ".join(
            f"trim.{k} = {v:g}" for k, v in (("start", start), ("end", end)) if v is not None
        )
        # plan_trim words its reasons for the CLI's --start/--end; here they are settings.
        reason = str(exc).replace("--start", "start").replace("--end", "end")
        raise BadSetting(f"processing setting {given}: {reason}") from None


# The text stages (transcription providers, chunking, subtitles, offline topics: about 1 MB of
# RSS) are imported by the stage that runs them, not by every worker and `process --now`.
def run_transcribe(sc: StageContext) -> StageOutcome:
    from leap.pipeline import text_stages

    return text_stages.run_transcribe(sc)


def run_topics(sc: StageContext) -> StageOutcome:
    from leap.pipeline import text_stages

    return text_stages.run_topics(sc)


def run_subtitles(sc: StageContext) -> StageOutcome:
    from leap.pipeline import text_stages

    return text_stages.run_subtitles(sc)


STAGES: dict[Stage, Callable[[StageContext], StageOutcome]] = {
    Stage.DOWNLOAD: run_download,
    Stage.TRIM: run_trim,
    Stage.TRANSCRIBE: run_transcribe,
    Stage.TOPICS: run_topics,
    Stage.SUBTITLES: run_subtitles,
    Stage.UPLOAD: publish.run_upload,
}

# Errors worth another attempt with back-off; everything else fails the stage at once.
RETRYABLE: tuple[type[BaseException], ...] = (RetryableError,)
