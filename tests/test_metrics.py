"""leapd's /healthz, /metrics and status page (docs/internals.md, "Metrics and the status
page"), against a real leapd and a data set made through the services: every figure must
be the database's, and every title on the page inert."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import unicodedata
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from leap.context import Runtime, open_context
from leap.daemon.http import text
from leap.db import models as m
from leap.db.base import utcnow
from leap.db.scope import Scope
from leap.services import credentials, runs, youtube_quota
from tests.leapd import runtime_for, start_leapd, stop, wait_until

BIDI_CONTROLS = {"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"}
# A title as a Zoom topic may carry it: markup, an event handler, and a right-to-left override
# that would make the rest read backwards.
HOSTILE = '<script>alert("pwned")</script> \u202eevil <img src=x onerror=alert(1)> Lecture'
FAILING = "Seminar <b>bold</b> \u202egnilaif"
PROJECT = "1234-test.apps.googleusercontent.com"
# The test plays the worker that holds the running stage: a live pid of this host, so
# leapd's reconciler leaves the lease alone.
WORKER = f"{socket.gethostname()}:{os.getpid()}:metrics-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode()


@dataclass
class Seeded:
    in_progress: int  # recording ids
    failed: int
    backoff: int
    ready: int


def seed(rt: Runtime) -> Seeded:
    """Four recordings whose runs stand in every state a stage can hold, each step in its
    own unit of work as a worker would take it; targets, a quota ledger, automation rows."""
    with open_context(rt, Scope.system_scope()) as ctx:
        admin = ctx.repos.users.require_name("admin")
        scope = Scope.for_user(admin.id, is_admin=True)
    with open_context(rt, scope) as ctx:
        source = ctx.repos.sources.require_name("inbox")
        ids = []
        for n, title in enumerate([HOSTILE, FAILING, "Waits out a back-off", "Ready to go"]):
            rec = ctx.repos.recordings.add(
                m.Recording(
                    source_id=source.id,
                    external_id=f"meeting-{n}",
                    title=title,
                    start_time=utcnow() - timedelta(days=1),
                )
            )
            ids.append(rec.id)
    seeded = Seeded(*ids)

    def first_stage(recording_id: int, stages: list[str]) -> int:
        with open_context(rt, scope) as ctx:
            run = runs.start_run(ctx, recording_id, stages=stages, force=True)
            stage = ctx.repos.stages.next_queued(run.id)
            assert stage is not None
            return stage.id

    def claim(stage_id: int) -> None:
        with open_context(rt, Scope.system_scope()) as ctx:
            assert runs.claim(ctx, stage_id, WORKER)

    # In progress: download done (90 s), trim running at 25 %, two stages pending.
    download = first_stage(seeded.in_progress, ["download", "trim", "transcribe", "topics"])
    claim(download)
    with open_context(rt, Scope.system_scope()) as ctx:
        runs.finish_stage(
            ctx, download, WORKER, artifacts={}, result={"size": 123_456}, skipped=False
        )
    with open_context(rt, Scope.system_scope()) as ctx:
        done = ctx.repos.stages.require(download)
        assert done.finished_at is not None
        done.started_at = done.finished_at - timedelta(seconds=90)  # as a 90 s download
        trim = ctx.repos.stages.next_queued(done.run_id)
        assert trim is not None
        trim_id = trim.id
    claim(trim_id)
    with open_context(rt, Scope.system_scope()) as ctx:
        assert ctx.repos.stages.beat(trim_id, WORKER, utcnow(), 0.25)

    # Failed for good: a dead credential (exit code 5); the upload after it is cancelled.
    stage = first_stage(seeded.failed, ["download", "upload"])
    claim(stage)
    with open_context(rt, Scope.system_scope()) as ctx:
        why = "re-authenticate fw-dead: invalid_grant"
        runs.fail_stage(ctx, stage, WORKER, why, retryable=False, exit_code=5)

    # Queued behind a remote job's poll an hour away, and queued ready for a worker.
    stage = first_stage(seeded.backoff, ["download"])
    claim(stage)
    with open_context(rt, Scope.system_scope()) as ctx:
        assert runs.wait_stage(ctx, stage, WORKER, 3600, "batch job")
    first_stage(seeded.ready, ["download", "trim"])

    with open_context(rt, scope) as ctx:
        youtube = ctx.repos.presets.add(m.OutputPreset(name="yt", platform="youtube"))
        local = ctx.repos.presets.add(m.OutputPreset(name="folder", platform="local"))
        for rec_id, preset, status, size in [
            (seeded.in_progress, youtube, "uploaded", 5_000_000),
            (seeded.failed, youtube, "failed", 0),
            (seeded.in_progress, local, "uploaded", 0),
        ]:
            ctx.repos.targets.add(
                m.OutputTarget(
                    recording_id=rec_id,
                    preset_id=preset.id,
                    platform=preset.platform,
                    status=status,
                    idempotency_key=f"key-{rec_id}-{preset.id}",
                    upload_total=size,
                )
            )
        assert youtube_quota.reserve_upload(ctx, PROJECT, 1600) is None
        assert youtube_quota.reserve_upload(ctx, PROJECT, 1650) is None
        credentials.mark_dead(ctx, credentials.get(ctx, "fw-dead"), "invalid_grant: revoked")

        now = utcnow()
        # Nothing is due before last_planned_at, whatever the clock: the automation tick
        # of this leapd leaves the jobs alone.
        nightly = ctx.repos.automations.add(
            m.AutomationJob(
                name="nightly-<sync>",
                schedule={"kind": "daily", "at": "03:00"},
                spec={"sources": ["inbox"]},
                last_planned_at=now + timedelta(days=2),
                next_run_at=now + timedelta(hours=5),
            )
        )
        ctx.repos.automations.add(
            m.AutomationJob(
                name="switched-off",
                schedule={"kind": "daily", "at": "04:00"},
                enabled=False,
                last_planned_at=now + timedelta(days=2),
                next_run_at=now + timedelta(hours=1),
            )
        )
        for n, status in enumerate(["done", "done", "failed", "running"]):
            ctx.repos.automation_runs.add(
                m.AutomationRun(
                    job_id=nightly.id, planned_at=now - timedelta(days=n + 1), status=status
                )
            )
    return seeded


@pytest.fixture
def env(
    leap_env: dict[str, str], cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """An installed LEAP whose leapd serves metrics on a free port. Its reconciler runs once,
    at start, and leases last an hour: the stages seeded above stay as they were put."""
    assert cli("init", "--yes").code == 0
    (tmp_path / "inbox").mkdir()
    assert cli("source", "add", "local", "inbox", str(tmp_path / "inbox")).code == 0
    monkeypatch.setenv("FW_KEY", "fw-secret-value-1234")
    for name in ("fw-dead", "fw-ok"):
        assert cli("credentials", "add", "fireworks", name, "--api-key-env", "FW_KEY").code == 0
    extra = {
        "LEAP_METRICS__ENABLED": "true",
        "LEAP_METRICS__PORT": str(free_port()),
        "LEAP_WORKER__HEARTBEAT_SECONDS": "0.5",
        "LEAP_WORKER__RECONCILE_SECONDS": "3600",
        "LEAP_WORKER__LEASE_SECONDS": "3600",
        "LEAP_AUTOMATION__TICK_SECONDS": "3600",
    }
    for k, v in extra.items():
        monkeypatch.setenv(k, v)  # `leap status --daemon` below reads the same settings
    return {**leap_env, **extra}


@pytest.fixture
def leapd(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A running leapd, once /healthz answers with a heartbeat; its base URL and log."""
    log = tmp_path / "leapd.log"
    proc = start_leapd(env, log)
    base = f"http://127.0.0.1:{env['LEAP_METRICS__PORT']}"

    def health() -> tuple[int, dict[str, Any] | None]:
        if proc.poll() is not None:
            raise AssertionError("leapd exited:\n" + log.read_text(errors="replace"))
        try:
            code, body = get(base + "/healthz")
        except OSError:
            return 0, None
        return code, json.loads(body)

    wait_until(
        health,
        lambda h: h[0] == 200 and h[1] is not None and h[1]["heartbeat_age_s"] is not None,
        120,
        "leapd's /healthz with a heartbeat",
        log,
    )
    try:
        yield base, log
    finally:
        if proc.poll() is None:
            stop(proc)


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found[(name, frozenset(labels.items()))]


@pytest.mark.slow
def test_healthz_metrics_and_status_page_show_the_database(
    env: dict[str, str],
    leapd: tuple[str, Path],
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base, log = leapd
    rt = runtime_for(env, monkeypatch)
    # The test is the worker here: the stages it starts must not reach leapd's queue.
    rt.enqueue = lambda *_: None
    try:
        seeded = seed(rt)
    finally:
        rt.dispose()

    code, body = get(base + "/healthz")
    health = json.loads(body)
    assert code == 200, body
    assert health.keys() == {"database", "queue", "scheduler", "heartbeat_age_s"}
    assert (health["database"], health["queue"], health["scheduler"]) == ("ok", "ok", "running")
    assert 0 <= health["heartbeat_age_s"] < 60

    code, text = get(base + "/metrics")
    assert code == 200, text
    found = samples(text)
    stages = {
        (dict(labels)["stage"], dict(labels)["state"]): v
        for (name, labels), v in found.items()
        if name == "leap_stages" and v
    }
    assert stages == {
        ("download", "done"): 1,
        ("download", "failed"): 1,
        ("download", "queued"): 2,
        ("trim", "running"): 1,
        ("trim", "pending"): 1,
        ("transcribe", "pending"): 1,
        ("topics", "pending"): 1,
        ("upload", "cancelled"): 1,
    }
    assert value(found, "leap_stages", stage="subtitles", state="done") == 0  # zero, not absent
    assert value(found, "leap_queue_depth", state="ready") == 1
    assert value(found, "leap_queue_depth", state="backoff") == 1
    # The one finished stage took 90 s: in every bucket from 120 s up, none below.
    took = "leap_stage_duration_seconds"
    assert value(found, f"{took}_count", stage="download") == 1
    assert value(found, f"{took}_sum", stage="download") == pytest.approx(90, abs=0.5)
    assert value(found, f"{took}_bucket", stage="download", le="60.0") == 0
    assert value(found, f"{took}_bucket", stage="download", le="120.0") == 1
    assert value(found, f"{took}_bucket", stage="download", le="+Inf") == 1
    failed = {
        tuple(sorted(dict(labels).items())): v
        for (name, labels), v in found.items()
        if name == "leap_stages_failed"
    }
    assert failed == {(("reason", "credential"), ("stage", "download")): 1}
    assert value(found, "leap_uploads_total", platform="youtube") == 1
    assert value(found, "leap_uploads_total", platform="local") == 1
    assert value(found, "leap_uploads_total", platform="vk") == 0
    assert value(found, "leap_output_targets", platform="youtube", status="failed") == 1
    assert value(found, "leap_uploaded_bytes_total", platform="youtube") == 5_000_000
    assert value(found, "leap_downloaded_bytes_total") == 123_456
    assert value(found, "leap_youtube_quota_units_used", project=PROJECT) == 3250
    assert value(found, "leap_youtube_quota_units_limit") == 10_000
    assert value(found, "leap_credentials_needing_reauth", kind="fireworks") == 1
    assert value(found, "leap_credentials_needing_reauth", kind="youtube") == 0
    assert value(found, "leap_automation_firings_total", status="done") == 2
    assert value(found, "leap_automation_firings_total", status="failed") == 1
    assert value(found, "leap_automation_firings_in_progress", status="running") == 1
    assert value(found, "leap_automation_firings_in_progress", status="queued") == 0
    assert 0 <= value(found, "leap_heartbeat_age_seconds") < 60
    assert value(found, "process_resident_memory_bytes") > 0  # this leapd's own

    code, page = get(base + "/")
    assert code == 200
    assert '<meta http-equiv="refresh" content="10">' in page
    # Every hostile title is text: no element came out of it, the override is shown.
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in page
    assert "\u202e" not in page and "\\u202eevil" in page
    assert "Seminar &lt;b&gt;bold&lt;/b&gt; \\u202egnilaif" in page
    assert "Runs in progress (3)" in page  # in progress, back-off, ready
    runs_part = page.split("<h2 id=runs>")[1].split("<h2 id=failures>")[0]
    assert f"<bdi>{seeded.in_progress}</bdi>" in runs_part and "<bdi>trim</bdi>" in runs_part
    assert "<bdi>25 %</bdi>" in runs_part  # the running stage's progress
    failures = page.split("<h2 id=failures>")[1].split("<h2 id=automation>")[0]
    assert "re-authenticate fw-dead: invalid_grant" in failures
    assert "<bdi>credential</bdi>" in failures and f"<bdi>{seeded.failed}</bdi>" in failures
    firings = page.split("<h2 id=automation>")[1].split("<h2 id=credentials>")[0]
    assert "nightly-&lt;sync&gt;" in firings and "switched-off" not in firings
    creds = page.split("<h2 id=credentials>")[1]
    assert "fw-dead" in creds and "fw-ok" not in creds
    # A DNS name pointed at 127.0.0.1 (DNS rebinding) is refused on a loopback listener.
    request = urllib.request.Request(base + "/", headers={"Host": "rebind.example:80"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 403
    refused.value.close()

    # `leap status --daemon` shows the heartbeat and leapd's own answer.
    res = cli("--json", "status", "--daemon")
    assert res.code == 0, res.stderr
    shown = res.json()
    assert shown["healthz"]["database"] == "ok" and shown["count"] >= 1
    res = cli("status", "--daemon")
    assert res.code == 0 and "/healthz" in res.stdout and "running" in res.stdout

    assert "Traceback" not in log.read_text(errors="replace")


@pytest.mark.slow
def test_status_daemon_says_when_leapd_does_not_answer(env: dict[str, str], cli: Any) -> None:
    res = cli("status", "--daemon")
    assert res.code == 1
    [line] = res.stderr.strip().splitlines()
    assert "unreachable" in line and f":{env['LEAP_METRICS__PORT']}/healthz" in line


@pytest.mark.slow
def test_a_taken_port_is_one_line_naming_the_setting(env: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        log = tmp_path / "leapd.log"
        proc = start_leapd({**env, "LEAP_METRICS__PORT": str(port)}, log)
        assert proc.wait(timeout=120) == 6
    [line] = log.read_text().splitlines()
    assert line.startswith(f"error: metrics.port {port}: cannot listen on 127.0.0.1:{port}")


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="chromium is not installed (scripts/test installs Debian's chromium when CI=true)",
)
def test_the_status_page_in_headless_chromium(
    env: dict[str, str], leapd: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    base, _log = leapd
    rt = runtime_for(env, monkeypatch)
    rt.enqueue = lambda *_: None
    try:
        seed(rt)
    finally:
        rt.dispose()
    started = time.monotonic()
    proc = subprocess.run(
        [
            "chromium",
            "--headless",
            "--disable-gpu",
            # The sandbox needs user namespaces that containers and root often lack.
            "--no-sandbox",
            f"--user-data-dir={tmp_path / 'chromium'}",
            "--dump-dom",
            base + "/",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = _Elements()
    dom.feed(proc.stdout)
    shown = " ".join(" ".join(dom.text).split())
    # The browser built the page: its sections and the hostile title as text, no element
    # from it (an <img onerror> or a <script> would be in the DOM).
    assert "LEAP status" in shown and "Runs in progress (3)" in shown, shown[:2000]
    assert '<script>alert("pwned")</script>' in shown and "\\u202eevil" in shown
    assert "re-authenticate fw-dead" in shown and "nightly-<sync>" in shown
    assert "script" not in dom.tags and "img" not in dom.tags, dom.tags
    assert time.monotonic() - started < 120


@pytest.mark.slow
def test_leapd_without_metrics_serves_nothing(
    leap_env: dict[str, str], cli: Any, tmp_path: Path
) -> None:
    assert cli("init", "--yes").code == 0
    port = free_port()
    log = tmp_path / "leapd.log"
    proc = start_leapd({**leap_env, "LEAP_METRICS__PORT": str(port)}, log)
    try:
        wait_until(
            lambda: log.read_text(errors="replace"),
            lambda t: "leapd running" in t,
            120,
            "leapd to start",
            log,
        )
        with pytest.raises(OSError):
            get(f"http://127.0.0.1:{port}/healthz")
    finally:
        assert stop(proc, signal.SIGTERM) == 0


@given(st.text(st.characters(exclude_categories=())))
def test_any_text_on_the_page_is_inert(value: str) -> None:
    """Every code point, lone surrogates included: no markup, no quote that could end an
    attribute, no control (but newline and tab) or bidi character, and valid UTF-8."""
    out = text(value)
    inner = out.removeprefix("<bdi>").removesuffix("</bdi>")
    assert not set(inner) & set("<>\"'")
    shown = inner.replace("\n", "").replace("\t", "")  # HTML whitespace, as a space
    assert not [c for c in shown if unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp")]
    assert not [c for c in inner if unicodedata.bidirectional(c) in BIDI_CONTROLS]
    out.encode("utf-8")
