"""leapd's log: an idle daemon at INFO says nothing after start-up (heartbeats and reconciler
ticks are DEBUG), and every line a stage logs names its recording and stage, in text and in
JSON."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from leap.context import open_context
from leap.db.scope import Scope
from leap.logs import ContextFilter, JsonFormatter, RedactingTextFormatter, log_context
from leap.services import system
from tests import media
from tests.leapd import runtime_for, start_leapd, stop, wait_until

TEMPLATE = """
name = "lectures"
[match]
keywords = ["lecture"]
[blank]
min_duration_minutes = 0
min_size_mb = 0
[processing]
stages = ["download"]
"""
HOUSEKEEPING = ("heartbeat", "reconcile")


def fast(leap_env: dict[str, str], **extra: str) -> dict[str, str]:
    return {
        **leap_env,
        "LEAP_WORKER__HEARTBEAT_SECONDS": "0.2",
        "LEAP_WORKER__RECONCILE_SECONDS": "0.2",
        "LEAP_QUEUE__MAX_DELAY": "0.2",
        **extra,
    }


def idle_log(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> list[str]:
    """leapd's lines from 'leapd running' to SIGTERM, after at least 10 heartbeats (each
    with a reconciler tick beside it): however slow the machine, the ticks happened."""
    log = tmp_path / name
    rt = runtime_for(env, monkeypatch)

    def beats() -> int:
        with open_context(rt, Scope.system_scope()) as ctx:
            return int(system.heartbeat(ctx).get("count", 0))

    before = beats()  # an earlier daemon's beats are in the same database
    proc = start_leapd(env, log)
    try:
        wait_until(beats, lambda n: n >= before + 10, 120, "10 heartbeats", log)
    finally:
        assert stop(proc) == 0, log.read_text()
        rt.dispose()
    lines = log.read_text().splitlines()
    # After start-up (its last line is "leapd running", said once the consumers run and
    # SIGTERM is handled), until SIGTERM.
    start = next(i for i, ln in enumerate(lines) if "leapd running" in ln)
    end = next(i for i, ln in enumerate(lines) if "Received SIGTERM" in ln)
    return lines[start + 1 : end]


@pytest.mark.slow
def test_an_idle_leapd_logs_no_housekeeping_at_info(
    leap_env: dict[str, str], cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("init", "--yes").code == 0
    quiet = idle_log(fast(leap_env), tmp_path, monkeypatch, "info.log")
    assert quiet == []
    # The same daemon at DEBUG does log them: the check above can see them.
    loud = idle_log(fast(leap_env, LEAP_LOG__LEVEL="DEBUG"), tmp_path, monkeypatch, "debug.log")
    for word in HOUSEKEEPING:
        assert sum(word in ln for ln in loud) >= 10, loud


@pytest.mark.slow
def test_every_stage_line_names_its_recording(
    leap_env: dict[str, str], cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    media.make_silence_tone_silence(inbox / "lecture one.mp4", lead=1, tone=1, tail=1)
    monkeypatch.setenv("LEAP_SYNC__LOCAL_SETTLE_SECONDS", "0")
    (tmp_path / "t.toml").write_text(TEMPLATE)
    for args in (
        ("init", "--yes"),
        ("source", "add", "local", "inbox", str(inbox)),
        ("template", "add", "--file", str(tmp_path / "t.toml")),
        ("sync",),
    ):
        assert cli(*args).code == 0, args
    [row] = cli("--json", "recordings", "list").json()
    rid = int(row["id"])

    env = fast(leap_env, LEAP_LOG__FORMAT="json", LEAP_SYNC__LOCAL_SETTLE_SECONDS="0")
    log = tmp_path / "leapd.log"
    proc = start_leapd(env, log)
    rt = runtime_for(env, monkeypatch)
    try:
        assert cli("process", str(rid)).code == 0

        def status() -> str:
            with open_context(rt, Scope.system_scope()) as ctx:
                return ctx.repos.recordings.require(rid).status

        wait_until(status, lambda s: s == "processed", 120, "the download stage", log)
    finally:
        assert stop(proc) == 0, log.read_text()
        rt.dispose()
    records = [json.loads(ln) for ln in log.read_text().splitlines() if ln.startswith("{")]
    stage_lines = [r for r in records if r["logger"] == "leap.tasks" and "stage" in r["msg"]]
    assert stage_lines, records
    for r in stage_lines:
        assert (r.get("recording"), r.get("stage")) == (rid, "download"), r
    # Housekeeping before and after the stage carries no stale recording.
    assert all("recording" not in r for r in records if r["logger"].startswith("huey.consumer"))


def test_log_context_reaches_text_and_json_and_ends_with_its_block() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("leap.test_daemon_logs")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        handler.setFormatter(RedactingTextFormatter("%(name)s%(context)s: %(message)s"))
        with log_context(recording=12, stage="trim"):
            logger.warning("cutting")
        logger.warning("after")
        handler.setFormatter(JsonFormatter())
        with log_context(recording=12), log_context(stage="trim"):
            logger.warning("cutting")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    text, after, js = stream.getvalue().splitlines()
    assert text == "leap.test_daemon_logs [recording=12 stage=trim]: cutting"
    assert after == "leap.test_daemon_logs: after"
    data = json.loads(js)
    assert (data["recording"], data["stage"], data["msg"]) == (12, "trim", "cutting")
