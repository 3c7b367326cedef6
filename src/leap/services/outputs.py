"""Reading a recording's processed outputs (transcript, topics) for display."""

from __future__ import annotations

from pathlib import Path

from leap import artifacts
from leap.context import Context
from leap.errors import NotFound
from leap.services import runs
from leap.text.topics import Topics
from leap.text.transcript import Transcript


def _artifact(ctx: Context, recording_id: int, kind: str, stage: str) -> Path:
    ctx.repos.recordings.require(recording_id)
    artifacts, _ = runs.current_artifacts(ctx, recording_id)
    path = artifacts.get(kind)
    if not path or not Path(path).is_file():
        raise NotFound(
            f"recording {recording_id} has no {kind} yet: run "
            f"'leap process {recording_id} --stages {stage}'"
        )
    return Path(path)


def transcript(ctx: Context, recording_id: int) -> Transcript:
    path = _artifact(ctx, recording_id, "transcript", "transcribe")
    return artifacts.load(path, "transcript", Transcript.from_storage)


def topics(ctx: Context, recording_id: int) -> Topics:
    path = _artifact(ctx, recording_id, "topics", "topics")
    return artifacts.load(path, "topics", Topics.from_storage)
