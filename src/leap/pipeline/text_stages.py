"""The transcribe, topics and subtitles stages: providers chosen by the resolved config,
outputs written atomically into the recording's workspace, usage recorded."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from leap.context import open_context
from leap.domain import CredentialKind
from leap.errors import ArtifactError, UsageError
from leap.media.ffmpeg import locate, probe
from leap.media.ffmpeg_ops import detect_silence
from leap.pipeline import metered
from leap.pipeline.chunking import transcribe_audio
from leap.pipeline.stage_api import StageContext, StageOutcome, Waiting, section, setting
from leap.pipeline.workspace import Workspace
from leap.providers.download import download_http
from leap.providers.fireworks import FireworksBatch
from leap.providers.llm import BadAnswer, ChatClient
from leap.providers.transcription import Transcriber, build_prompt, usage_minutes
from leap.services import clients, usage
from leap.text.silence import Filtered, drop_in_silence
from leap.text.subtitles import build_cues, to_srt, to_vtt
from leap.text.topics import Topics, TopicsParseError, extract_with_llm
from leap.text.topics.offline import simple_topics
from leap.text.transcript import Transcript
from leap.text.vtt import cut_to, parse_vtt

TRANSCRIPT = "transcript.json"
TOPICS = "topics.json"
# Providers whose text is checked against the audio's silences: the local one removes
# non-speech itself (its VAD) before Whisper can invent words in it; Zoom's is Zoom's.
API_PROVIDERS = frozenset({"fireworks", "fireworks-batch", "openai"})


def write_json(sc: StageContext, name: str, data: dict[str, Any]) -> Path:
    final = sc.workspace.path(name)
    tmp = Workspace.temp_for(final)
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    return Workspace.commit(tmp, final)


def write_text(sc: StageContext, name: str, text: str) -> Path:
    final = sc.workspace.path(name)
    tmp = Workspace.temp_for(final)
    tmp.write_text(text, encoding="utf-8")
    return Workspace.commit(tmp, final)


def load_transcript(sc: StageContext) -> Transcript:
    path = sc.artifacts.get("transcript")
    if not path:
        raise UsageError(f"{sc.stage.value} needs a transcript: run the transcribe stage first")
    # The way back works whatever stages the failed run had; transcribe redoes a bad file.
    again = (
        f"make it again with 'leap process {sc.recording_id} --stages transcribe,{sc.stage.value}'"
    )
    if not Path(path).is_file():
        raise ArtifactError(f"the transcript {path} is gone: {again}")
    try:
        return read_transcript(Path(path))
    except ArtifactError as exc:
        raise ArtifactError(f"{exc.message}: {again}") from None


def read_transcript(path: Path) -> Transcript:
    """A stored transcript; ArtifactError naming the file when it is unreadable, truncated or
    not a transcript (a crash or a hand edit), so no JSON error escapes a stage."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise TypeError(f"a JSON object was expected, not {type(data).__name__}")
        return Transcript.from_storage(data)
    except OSError as exc:
        raise ArtifactError(f"cannot read the transcript {path}: {exc.strerror or exc}") from None
    except (ValueError, TypeError, KeyError) as exc:  # JSONDecodeError is a ValueError
        reason = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ArtifactError(f"the transcript {path} is damaged ({reason})") from None


def api_key(sc: StageContext, kind: CredentialKind, install_wide: SecretStr) -> str:
    return clients.api_key(sc.runtime, sc.scope, kind, install_wide)


def _language(sc: StageContext) -> str | None:
    lang = str(sc.config.get("language") or "auto")
    return None if lang == "auto" else lang


def make_transcriber(sc: StageContext, provider: str, model: str | None) -> Transcriber:
    return clients.transcriber(sc.runtime, sc.scope, sc.http, provider, model)


def _zoom_vtt(sc: StageContext) -> Transcript | None:
    """Zoom's own transcript of the meeting, re-timed to the trimmed video; None if absent."""
    with open_context(sc.runtime, sc.scope) as ctx:
        rec = ctx.repos.recordings.require(sc.recording_id)
        src = ctx.repos.sources.require(rec.source_id)
        files, cred_id = list(rec.files), src.credential_id
    vtt = next(
        (
            f
            for f in files
            if str(f.get("file_type") or "").upper() in ("TRANSCRIPT", "CC")
            and f.get("download_url")
        ),
        None,
    )
    if vtt is None or cred_id is None:
        return None
    client = clients.make_zoom_client(sc.runtime, sc.scope, cred_id, sc.http)
    dest = sc.workspace.path("zoom_transcript.vtt")
    download_http(
        sc.http, str(vtt["download_url"]), dest, expected_size=None, bearer=client.auth.token()
    )
    whole = parse_vtt(dest.read_text(encoding="utf-8", errors="replace"), language=_language(sc))
    trim = sc.results.get("trim", {}).get("trim") or {}
    if trim:
        return cut_to(whole, float(trim["start_s"]), float(trim["end_s"]))
    return whole


def run_transcribe(sc: StageContext) -> StageOutcome:
    cfg = section(sc.config, "transcription")
    provider, model = str(cfg.get("provider")), cfg.get("model")
    existing = sc.workspace.root / TRANSCRIPT
    if existing.is_file() and not sc.force:
        try:
            read_transcript(existing)
        except ArtifactError as exc:
            # Passing a damaged file on would fail every later stage; make it again.
            sc.log(f"recording {sc.recording_id}: {exc.message}; transcribing again")
        else:
            return StageOutcome(artifacts={"transcript": str(existing)}, result={"reused": True})
    audio = sc.artifacts.get("audio")
    if not audio or not Path(audio).is_file():
        raise UsageError("transcribe needs the audio track: run the trim stage first")
    language = _language(sc)
    # Vocabulary only: the title in Whisper's prompt cost the opening words (build_prompt).
    prompt = build_prompt(language=language, glossary=list(sc.config.get("glossary") or []))
    transcript: Transcript | None = None
    if provider == "zoom-vtt":
        transcript = _zoom_vtt(sc)
        if transcript is None:  # no Zoom transcript for this meeting: the fallback decides
            provider = str(cfg.get("fallback") or "local")
    if transcript is None and provider in API_PROVIDERS:
        # Paid minutes: reserved from the audio's duration before the first byte is sent,
        # settled to what was billed (pipeline/metered.py). A retry of this run reuses the
        # reservation; a --force run is a new call and a new reservation.
        estimate = probe(locate(), Path(audio)).duration_s / 60.0
        with metered.reserved(
            sc,
            usage.TRANSCRIPTION_MINUTES,
            estimate,
            f"transcribe:{sc.run_id}",
            provider=provider,
            model=model,
        ) as settle:
            transcript = _transcribe(sc, provider, model, Path(audio), language, prompt)
            settle(usage_minutes(transcript))
    if transcript is None:
        transcript = _transcribe(sc, provider, model, Path(audio), language, prompt)
    silent: Filtered | None = None
    # The local model too: its VAD skips most silence, yet tiny.en still ran a "see you in the
    # next video" loop over a 12 s silent tail (benchmarks/bench_transcript_quality.py, the
    # en-gb voice: 173 words); nothing is said inside a silence whoever transcribes it.
    if provider in API_PROVIDERS or provider == "local":
        silent = _without_silence(sc, Path(audio), transcript)
        transcript = silent.transcript
        # Kept with the transcript: whoever reads it can tell it was checked, and how much went
        # (nothing, when the filter refused: the text over silence was kept).
        gone = (
            {"segments": silent.segments_dropped, "words": silent.words_dropped}
            if not silent.refused
            else {"segments": 0, "words": 0}
        )
        transcript = replace(transcript, meta=transcript.meta | {"dropped_in_silence": gone})
    path = write_json(sc, TRANSCRIPT, transcript.to_storage())
    minutes = usage_minutes(transcript)
    if provider == "local":  # free, and shown in `leap usage`
        with open_context(sc.runtime, sc.scope) as ctx:
            usage.record(
                ctx,
                sc.scope.user_id or 0,
                usage.LOCAL_TRANSCRIPTION_MINUTES,
                minutes,
                recording_id=sc.recording_id,
                provider=provider,
                model=model,
            )
    return StageOutcome(
        artifacts={"transcript": str(path)},
        result={
            "provider": provider,
            "language": transcript.language,
            "segments": len(transcript.segments),
            "words": len(transcript.words),
            "minutes": round(minutes, 2),
        }
        | (_dropped_summary(silent) if silent is not None else {}),
    )


def _transcribe(
    sc: StageContext,
    provider: str,
    model: str | None,
    audio: Path,
    language: str | None,
    prompt: str | None,
) -> Transcript:
    if provider == "fireworks-batch":
        return _batch(sc, audio, language, prompt, model)
    transcriber = make_transcriber(sc, provider, model)
    chunks = sc.workspace.path("chunks")
    chunks.mkdir(exist_ok=True)
    return transcribe_audio(
        locate(),
        audio,
        transcriber,
        language=language,
        prompt=prompt,
        concurrency=setting(sc.config, "transcription.concurrency", int, 4, positive=True),
        workdir=chunks,
        progress=lambda f: sc.progress(f, "transcribing"),
        # A local model gains nothing from chunks; an API gains parallel requests.
        max_chunk_s=None
        if provider == "local"
        else setting(sc.config, "transcription.chunk_s", float, 960.0, positive=True),
    )


def _without_silence(sc: StageContext, audio: Path, transcript: Transcript) -> Filtered:
    """`transcript` without what the provider wrote over silence in `audio`.

    The silences are detected in the very audio that was transcribed, as the trim stage
    detects them in the source (same thresholds): its times are the transcript's, with no
    offset to apply. Shifting the source's silences by the trim point would be off by up to
    a GOP, since a stream-copy cut starts at the keyframe before that point. One more pass
    over audio only: about 3 s an hour of audio.
    """
    silences = detect_silence(
        locate(),
        audio,
        noise_db=setting(sc.config, "trim.noise_db", float, -35.0),
        min_silence_s=setting(sc.config, "trim.min_silence_s", float, 2.0, positive=True),
    )
    filtered = drop_in_silence(transcript, silences)
    if filtered.refused:
        sc.log(f"recording {sc.recording_id}: text over silence kept: {filtered.refused}")
    elif filtered.dropped:
        sc.log(
            f"recording {sc.recording_id}: dropped {filtered.segments_dropped} segment(s) and "
            f"{filtered.words_dropped} word(s) the provider wrote over silence"
        )
    return filtered


def _dropped_summary(filtered: Filtered) -> dict[str, Any]:
    """What went (the first few, so `leap recordings show` tells without a transcript)."""
    if not filtered.dropped:
        return {}
    summary: dict[str, Any] = {
        "segments": filtered.segments_dropped,
        "words": filtered.words_dropped,
        "first": [
            {"start": round(d.start, 2), "end": round(d.end, 2), "text": d.text[:80]}
            for d in filtered.dropped[:5]
        ],
    }
    if filtered.refused:
        summary["refused"] = filtered.refused
    return {"dropped_in_silence": summary}


def _batch(
    sc: StageContext, audio: Path, language: str | None, prompt: str | None, model: str | None
) -> Transcript:
    s = sc.runtime.settings
    batch = FireworksBatch(
        sc.http,
        batch_base_url=s.fireworks.batch_base_url,
        api_key=api_key(sc, CredentialKind.FIREWORKS, s.fireworks.api_key),
        model=model or s.fireworks.model,
    )
    poll_s = setting(sc.config, "transcription.poll_seconds", float, 60.0, positive=True)
    job = sc.state.get("batch_id")
    if not job:
        job = batch.submit(audio, language=language, prompt=prompt)
        # Committed before anything else happens: a restart polls this job, never a new one.
        sc.save_state({"batch_id": job})
        raise Waiting(f"fireworks batch {job} submitted", poll_s)
    result = batch.poll(str(job))
    if result is None:
        raise Waiting(f"fireworks batch {job} still running", poll_s)
    return result


def run_topics(sc: StageContext) -> StageOutcome:
    cfg = section(sc.config, "topics")
    provider = str(cfg.get("provider"))
    if provider == "none":
        return StageOutcome(skipped=True, result={"reason": "topics.provider = none"})
    transcript = load_transcript(sc)
    language = _language(sc) or transcript.language
    result: dict[str, Any] = {"provider": provider}
    topics: Topics
    if provider == "llm":
        s = sc.runtime.settings
        chat = ChatClient(
            sc.http,
            base_url=s.llm.base_url,
            api_key=api_key(sc, CredentialKind.LLM, s.llm.api_key),
            model=str(cfg.get("model") or s.llm.model),
        )
        with open_context(sc.runtime, sc.scope) as ctx:
            title = ctx.repos.recordings.require(sc.recording_id).title
        try:
            # Tokens are reserved from the transcript's length (about 3 characters a token,
            # plus room for the answer) and settled to what the API reported.
            estimate = sum(len(s.text) for s in transcript.segments) / 3 + 2000
            with metered.reserved(
                sc, usage.LLM_TOKENS, round(estimate), f"topics:{sc.run_id}", model=chat.model
            ) as settle:
                topics, used = extract_with_llm(
                    chat,
                    transcript,
                    language=language,
                    title=title,
                    max_topics=setting(sc.config, "topics.max_topics", int, 15, positive=True),
                )
                settle(used.total_tokens)
            result["tokens"] = used.total_tokens
        except (TopicsParseError, BadAnswer) as exc:
            # The LLM's answer was unusable: chapters still come from the offline provider.
            topics = _simple(transcript, sc.config, language)
            result["fallback"] = f"simple ({exc.message})"
    elif provider == "simple":
        topics = _simple(transcript, sc.config, language)
    else:
        raise UsageError(f"unknown topics provider '{provider}' (llm, simple, none)")
    path = write_json(sc, TOPICS, topics.to_storage())
    result |= {
        "themes": len(topics.themes),
        "topics": len(topics.topics),
        "chapters_ok": topics.chapters_ok,
        "chapters_reason": topics.chapters_reason,
    }
    return StageOutcome(artifacts={"topics": str(path)}, result=result)


def _simple(transcript: Transcript, config: dict[str, Any], language: str | None) -> Topics:
    return simple_topics(
        transcript,
        language=language,
        target_section_s=setting(config, "topics.section_s", float, 600.0, positive=True),
        min_section_s=setting(config, "topics.min_section_s", float, 120.0, positive=True),
        max_topics=setting(config, "topics.max_topics", int, 12, positive=True),
    )


def run_subtitles(sc: StageContext) -> StageOutcome:
    transcript = load_transcript(sc)
    cues = build_cues(transcript)
    srt_path = write_text(sc, "subtitles.srt", to_srt(cues))
    vtt_path = write_text(sc, "subtitles.vtt", to_vtt(cues))
    return StageOutcome(
        artifacts={"srt": str(srt_path), "vtt": str(vtt_path)}, result={"cues": len(cues)}
    )
