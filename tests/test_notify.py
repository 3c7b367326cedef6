"""Notifications (docs/notifications.md): targets from the CLI, `leap notify test` against a
recording webhook receiver and a fake SMTP server on 127.0.0.1, emit → deliver through the
real task (retries with back-off, one failing target never costing another its message, a
hanging receiver timing out), the events hooked where they happen, and a webhook's token
never shown anywhere."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from huey import MemoryHuey

from leap.config import load_settings
from leap.context import Runtime, open_context
from leap.db.base import utcnow
from leap.db.models import Notification
from leap.db.scope import Scope
from leap.services import credentials, notify, reconciler
from leap.tasks import NOTIFY_DELIVER, TaskQueue
from tests import media
from tests.fakes.server import serve
from tests.fakes.smtp import FakeSMTP, serve_smtp
from tests.fakes.webhook import FakeWebhook

# What Slack and Discord put in a webhook's path: it must never be shown.
TOKEN = "xoxbTOKEN0123456789secret"
ADMIN = Scope.for_user(1, is_admin=True)


@pytest.fixture
def hook() -> Iterator[tuple[FakeWebhook, str]]:
    fake = FakeWebhook()
    with serve(fake.handler) as base:
        try:
            yield fake, base
        finally:
            fake.release()


@pytest.fixture
def other_hook() -> Iterator[tuple[FakeWebhook, str]]:
    fake = FakeWebhook()
    with serve(fake.handler) as base:
        try:
            yield fake, base
        finally:
            fake.release()


@pytest.fixture
def installed(leap_env: dict[str, str], cli: Any) -> dict[str, str]:
    res = cli("init", "--yes")
    assert res.code == 0, res.stderr
    return leap_env


def url(base: str, name: str = "hook") -> str:
    return f"{base}/{name}/T01/B02/{TOKEN}"


def make_runtime(send: Any = None) -> Runtime:
    """A runtime on the settings of this moment's environment (tests set LEAP_NOTIFY__*)."""
    rt = Runtime.from_settings(load_settings())
    rt.enqueue = send
    return rt


def rows(runtime: Runtime) -> list[Notification]:
    with open_context(runtime, Scope.system_scope()) as ctx:
        return ctx.session.query(Notification).order_by(Notification.id).all()


def make_due(runtime: Runtime) -> None:
    """The back-off has passed (a test does not wait out 30 s)."""
    with open_context(runtime, Scope.system_scope()) as ctx:
        for row in ctx.session.query(Notification).filter_by(status="pending"):
            row.next_attempt_at = utcnow() - timedelta(seconds=1)


def no_token(*texts: str) -> None:
    for text in texts:
        assert TOKEN not in text and "T01/B02" not in text, text


# ------------------------------------------------------------------------------------ CLI


def test_add_list_remove(installed: dict[str, str], cli: Any, hook: tuple[Any, str]) -> None:
    _, base = hook
    res = cli("notify", "add", "team", "--webhook", url(base), "--style", "slack")
    assert res.code == 0, res.stderr
    no_token(res.stdout, res.stderr)
    events = "stage_failed,credential_reauth"
    res = cli("--json", "notify", "add", "ops", "--webhook", url(base), "--events", events)
    assert res.code == 0, res.stderr
    assert res.json()["events"] == "stage_failed,credential_reauth"
    listed = cli("--json", "notify", "list")
    assert listed.code == 0
    by_name = {r["name"]: r for r in listed.json()}
    assert by_name["team"]["style"] == "slack" and by_name["team"]["events"] == "all"
    assert by_name["ops"]["style"] == "json"
    assert by_name["team"]["to"] == f"{base}/…"
    table = cli("notify", "list")
    no_token(listed.stdout, table.stdout, table.stderr)
    assert cli("notify", "remove", "team").code == 0
    assert [r["name"] for r in cli("--json", "notify", "list").json()] == ["ops"]
    gone = cli("notify", "remove", "team")
    assert gone.code == 3 and "not found" in gone.stderr


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (("--webhook", f"ftp://example.org/{TOKEN}"), 2, "--webhook"),
        (("--webhook", "http:///no-host"), 2, "--webhook"),
        (("--webhook", f"example.org/{TOKEN}"), 2, "--webhook"),
        (("--webhook", "https://example.org/x", "--style", "teams"), 2, "--style"),
        (("--webhook", "https://example.org/x", "--events", "published,nope"), 2, "'nope'"),
        (("--email", "ops@example.org"), 6, "notify.smtp_host"),
        (("--email", "not an address"), 2, "--email"),
        (("--email", "a@example.org", "--webhook", "https://example.org/x"), 2, "one of"),
        ((), 2, "one of"),
    ],
)
def test_bad_input_is_one_line_naming_the_option(
    installed: dict[str, str], cli: Any, args: tuple[str, ...], code: int, needle: str
) -> None:
    res = cli("notify", "add", "t", *args)
    assert res.code == code, res.stderr
    [line] = res.stderr.strip().splitlines()
    assert line.startswith("error:") and needle in line
    no_token(res.stdout, res.stderr)
    assert cli("--json", "notify", "list").json() == []


def test_names_and_duplicates(installed: dict[str, str], cli: Any) -> None:
    assert cli("notify", "add", "bad name", "--webhook", "https://example.org/x").code == 2
    assert cli("notify", "add", "ok.name-1", "--webhook", "https://example.org/x").code == 0
    dup = cli("notify", "add", "ok.name-1", "--webhook", "https://example.org/y")
    assert dup.code == 7 and "already exists" in dup.stderr


def test_test_command_sends_each_style_shaped_right(
    installed: dict[str, str], cli: Any, hook: tuple[FakeWebhook, str]
) -> None:
    fake, base = hook
    for style in ("json", "slack", "discord", "ntfy"):
        res = cli("notify", "add", style, "--webhook", url(base, style), "--style", style)
        assert res.code == 0, res.stderr
    res = cli("notify", "test")
    assert res.code == 0, res.stderr
    no_token(res.stdout, res.stderr)
    assert fake.count == 4
    got = {r.path.split("/")[1]: r for r in fake.received}
    assert all(r.method == "POST" for r in got.values())
    body = got["json"].json()
    assert body["event"] == "test" and body["title"] == "LEAP test notification"
    assert body["target"] == "json" and "text" in body and body["id"] is None
    assert set(got["slack"].json()) == {"text"}
    assert "LEAP test notification" in got["slack"].json()["text"]
    discord = got["discord"].json()
    assert "LEAP test notification" in discord["content"]
    assert discord["allowed_mentions"] == {"parse": []}
    ntfy = got["ntfy"]
    assert ntfy.headers["title"] == "LEAP test notification"
    assert ntfy.headers["content-type"].startswith("text/plain")
    assert "test message" in ntfy.text
    # One target by name: one message.
    assert cli("notify", "test", "slack").code == 0
    assert fake.count == 5


def test_test_command_failure_never_shows_the_token(
    installed: dict[str, str], cli: Any, hook: tuple[FakeWebhook, str]
) -> None:
    fake, base = hook
    fake.status, fake.echo_path = 404, True  # a careless receiver repeats the path
    assert cli("notify", "add", "team", "--webhook", url(base), "--style", "slack").code == 0
    res = cli("notify", "test", "team")
    assert res.code == 1
    [line] = res.stderr.strip().splitlines()
    assert line.startswith("error:") and "HTTP 404" in line and base in line
    as_json = cli("--json", "notify", "test")
    assert as_json.code == 1
    [result] = as_json.json()
    assert result["ok"] is False and "HTTP 404" in result["error"]
    no_token(res.stdout, res.stderr, as_json.stdout, as_json.stderr)
    missing = cli("notify", "test", "nope")
    assert missing.code == 3


def test_test_command_with_no_target(installed: dict[str, str], cli: Any) -> None:
    res = cli("notify", "test")
    assert res.code == 3 and "leap notify add" in res.stderr


# ----------------------------------------------------------------------- emit and deliver


def test_emit_then_deliver_through_the_task_queue(
    installed: dict[str, str],
    cli: Any,
    hook: tuple[FakeWebhook, str],
    other_hook: tuple[FakeWebhook, str],
) -> None:
    good, base = hook
    bad, bad_base = other_hook
    bad.status = 503
    assert cli("notify", "add", "good", "--webhook", url(base)).code == 0
    assert cli("notify", "add", "bad", "--webhook", url(bad_base)).code == 0
    assert cli("notify", "add", "picky", "--webhook", url(base), "--events", "published").code == 0
    # Huey in immediate mode runs a message as it is sent and keeps delayed ones in its
    # schedule: the real task, the real send, no consumer thread.
    huey = MemoryHuey("notify-test", immediate=True, results=False, utc=True)
    runtime = make_runtime()
    queue = TaskQueue(huey, runtime)
    runtime.enqueue = queue.send
    try:
        with open_context(runtime, ADMIN) as ctx:
            count = notify.emit(ctx, "stage_failed", {"recording_id": 7, "title": "Лекция 1"})
            assert count == 2  # "picky" hears only `published`
            assert good.count == 0  # nothing leaves before the commit
        assert good.count == 1 and bad.count == 1
        body = good.last().json()
        assert body["event"] == "stage_failed" and body["data"]["title"] == "Лекция 1"
        assert "Лекция 1" in body["title"]
        by_target = {r.target_id: r for r in rows(runtime)}
        assert sorted(r.status for r in by_target.values()) == ["pending", "sent"]
        failing = next(r for r in by_target.values() if r.status == "pending")
        assert failing.attempts == 1 and "HTTP 503" in (failing.error or "")
        # The retry is a delayed message, about 30 s out.
        [again] = huey.scheduled()
        assert again.kwargs == {"notification_id": failing.id}
        assert again.eta is not None
        no_token(failing.error or "")
        # Its time comes: the receiver is back, and the message goes out once.
        bad.status = 200
        make_due(runtime)
        queue.send(NOTIFY_DELIVER, dict(again.kwargs))
        assert bad.count == 2
        assert {r.status for r in rows(runtime)} == {"sent"}
        # A duplicate message for a sent notification sends nothing.
        queue.send(NOTIFY_DELIVER, dict(again.kwargs))
        assert bad.count == 2
    finally:
        runtime.dispose()


def test_a_target_failing_forever_ends_failed_and_costs_no_other_its_message(
    installed: dict[str, str],
    cli: Any,
    hook: tuple[FakeWebhook, str],
    other_hook: tuple[FakeWebhook, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    good, base = hook
    bad, bad_base = other_hook
    bad.status = 500
    monkeypatch.setenv("LEAP_NOTIFY__MAX_ATTEMPTS", "3")
    assert cli("notify", "add", "broken", "--webhook", url(bad_base)).code == 0
    assert cli("notify", "add", "fine", "--webhook", url(base), "--style", "discord").code == 0
    queued: list[tuple[str, dict[str, Any], float | None]] = []
    runtime = make_runtime(lambda name, kwargs, delay: queued.append((name, kwargs, delay)))
    sent: list[tuple[str, dict[str, Any], float | None]] = []

    def send(name: str, kwargs: dict[str, Any], delay: float | None) -> None:
        sent.append((name, kwargs, delay))

    try:
        with open_context(runtime, ADMIN) as ctx:
            assert notify.emit(ctx, "credential_reauth", {"credential": "yt"}) == 2
        assert [q[0] for q in queued] == [NOTIFY_DELIVER, NOTIFY_DELIVER]
        outcomes = [notify.deliver(runtime, q[1]["notification_id"], send) for q in queued]
        assert sorted(outcomes) == ["retry", "sent"]
        assert good.count == 1 and "yt" in good.last().json()["content"]
        while sent:
            name, kwargs, delay = sent.pop(0)
            assert name == NOTIFY_DELIVER and delay is not None
            # Not yet due: a message arriving early (or twice) is not an extra attempt.
            assert notify.deliver(runtime, kwargs["notification_id"], send) == "busy"
            make_due(runtime)
            notify.deliver(runtime, kwargs["notification_id"], send)
        broken = next(r for r in rows(runtime) if r.status != "sent")
        assert broken.status == "failed" and broken.attempts == 3 and bad.count == 3
        assert "HTTP 500" in (broken.error or "")
        assert good.count == 1
        listed = cli("--json", "notify", "list").json()
        assert {r["name"]: r["last_status"] for r in listed} == {"broken": "failed", "fine": "sent"}
        no_token(json.dumps(listed), broken.error or "")
    finally:
        runtime.dispose()


def test_back_off_doubles_and_is_capped() -> None:
    assert [notify.backoff(n) for n in (1, 2, 3, 4)] == [30.0, 60.0, 120.0, 240.0]
    assert notify.backoff(20) == 3600.0


def test_a_hanging_webhook_times_out(
    installed: dict[str, str],
    cli: Any,
    hook: tuple[FakeWebhook, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, base = hook
    fake.hang = 30
    monkeypatch.setenv("LEAP_NOTIFY__TIMEOUT_SECONDS", "0.5")
    assert cli("notify", "add", "slow", "--webhook", url(base)).code == 0
    queued: list[Any] = []
    runtime = make_runtime(lambda *a: queued.append(a))
    try:
        with open_context(runtime, ADMIN) as ctx:
            notify.emit(ctx, "published", {"recording_id": 1, "links": []})
        started = time.monotonic()
        later: list[Any] = []
        outcome = notify.deliver(
            runtime, queued[0][1]["notification_id"], lambda *a: later.append(a)
        )
        assert time.monotonic() - started < 5
        assert outcome == "retry" and len(later) == 1
        [row] = rows(runtime)
        assert row.status == "pending" and "in time" in (row.error or "")
        no_token(row.error or "")
        # `leap notify test` says the same, as one line.
        res = cli("notify", "test", "slow")
        assert res.code == 1 and "in time" in res.stderr
    finally:
        runtime.dispose()


def test_lost_messages_are_sent_again_by_the_reconciler(
    installed: dict[str, str], cli: Any, hook: tuple[FakeWebhook, str]
) -> None:
    fake, base = hook
    assert cli("notify", "add", "team", "--webhook", url(base)).code == 0
    runtime = make_runtime(lambda *a: None)  # a queue that loses every message
    try:
        with open_context(runtime, ADMIN) as ctx:
            notify.emit(ctx, "quota_deferred", {"recording_id": 3})
        with open_context(runtime, Scope.system_scope()) as ctx:
            assert notify.requeue_due(ctx) == 0  # its own message may still be on the way
        with open_context(runtime, Scope.system_scope()) as ctx:
            for row in ctx.session.query(Notification):
                row.next_attempt_at = utcnow() - timedelta(minutes=10)
        with open_context(runtime, Scope.system_scope()) as ctx:
            assert reconciler.reconcile(ctx) == 0  # the count is stages; the nudge is extra
            [(task, kwargs, _)] = ctx.take_pending()
        assert task == NOTIFY_DELIVER
        with open_context(runtime, Scope.system_scope()) as ctx:
            assert notify.requeue_due(ctx) == 0  # stamped: not nudged on every pass
        assert notify.deliver(runtime, kwargs["notification_id"], lambda *a: None) == "sent"
        assert fake.count == 1
    finally:
        runtime.dispose()


# -------------------------------------------------------------------------------- e-mail


@pytest.fixture
def smtp(installed: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSMTP]:
    fake = FakeSMTP(password="mail-password-123")
    with serve_smtp(fake) as port:
        monkeypatch.setenv("LEAP_NOTIFY__SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("LEAP_NOTIFY__SMTP_PORT", str(port))
        monkeypatch.setenv("LEAP_NOTIFY__SMTP_STARTTLS", "false")
        monkeypatch.setenv("LEAP_NOTIFY__SMTP_USER", "leap")
        monkeypatch.setenv("LEAP_NOTIFY__SMTP_PASSWORD", "mail-password-123")
        monkeypatch.setenv("LEAP_NOTIFY__SMTP_FROM", "leap@example.org")
        monkeypatch.setenv("LEAP_NOTIFY__TIMEOUT_SECONDS", "5")
        yield fake


def test_email_is_sent(smtp: FakeSMTP, cli: Any) -> None:
    assert cli("notify", "add", "ops", "--email", "ops@example.org").code == 0
    res = cli("notify", "test")
    assert res.code == 0, res.stderr
    [mail] = smtp.mails
    assert mail.sender == "leap@example.org" and mail.recipients == ["ops@example.org"]
    assert "Subject: [LEAP] LEAP test notification" in mail.text
    assert smtp.logins == [("leap", "mail-password-123")]
    # An event, through emit and deliver.
    queued: list[Any] = []
    runtime = make_runtime(lambda *a: queued.append(a))
    try:
        with open_context(runtime, ADMIN) as ctx:
            link = {"preset": "yt", "platform": "youtube", "url": "https://youtu.be/abc"}
            payload = {"recording_id": 4, "title": "Week 2", "links": [link]}
            notify.emit(ctx, "published", payload)
        assert notify.deliver(runtime, queued[0][1]["notification_id"], lambda *a: None) == "sent"
        assert "https://youtu.be/abc" in smtp.mails[-1].text
        assert "Published: Week 2" in smtp.mails[-1].text
    finally:
        runtime.dispose()


def test_email_refusals_are_one_line(
    smtp: FakeSMTP, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("notify", "add", "ops", "--email", "ops@example.org").code == 0
    smtp.refuse_rcpt = True
    res = cli("notify", "test", "ops")
    assert res.code == 1
    [line] = res.stderr.strip().splitlines()
    assert "refused the recipient" in line and "550" in line
    assert "mail-password-123" not in res.stderr
    smtp.refuse_rcpt = False
    monkeypatch.setenv("LEAP_NOTIFY__SMTP_PASSWORD", "wrong-password-456")
    res = cli("notify", "test", "ops")
    assert res.code == 1 and "refused the login" in res.stderr
    assert "wrong-password-456" not in res.stderr
    # STARTTLS asked for and not offered: refused, the password never goes out in the clear.
    monkeypatch.setenv("LEAP_NOTIFY__SMTP_STARTTLS", "true")
    logins = len(smtp.logins)
    res = cli("notify", "test", "ops")
    assert res.code == 1 and "STARTTLS" in res.stderr
    assert len(smtp.logins) == logins and smtp.mails == []


# ----------------------------------------------------------------- events where they happen


def test_credential_reauth_only_on_the_transition(
    installed: dict[str, str],
    cli: Any,
    hook: tuple[FakeWebhook, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, base = hook
    monkeypatch.setenv("FW_KEY", "fw-secret-key-0123456789")
    assert cli("credentials", "add", "fireworks", "fw", "--api-key-env", "FW_KEY").code == 0
    assert cli("notify", "add", "ops", "--webhook", url(base)).code == 0
    runtime = make_runtime(lambda *a: None)
    try:
        for _ in range(3):  # every refusal calls mark_dead; only the first one notifies
            with open_context(runtime, ADMIN) as ctx:
                credentials.mark_dead(ctx, credentials.get(ctx, "fw"), "401 invalid api key")
        [row] = rows(runtime)
        assert row.event == "credential_reauth"
        assert row.payload == {
            "credential": "fw",
            "kind": "fireworks",
            "reason": "401 invalid api key",
        }
        assert "fw-secret-key" not in json.dumps(row.payload)
        # Re-authenticated, then refused again: a new transition, a new message.
        assert (
            cli(
                "credentials", "add", "fireworks", "fw", "--api-key-env", "FW_KEY", "--replace"
            ).code
            == 0
        )
        with open_context(runtime, ADMIN) as ctx:
            credentials.mark_dead(ctx, credentials.get(ctx, "fw"), "401 again")
        assert len(rows(runtime)) == 2
    finally:
        runtime.dispose()


FOLDER_PRESET = """name = "folder"
platform = "local"
[metadata]
path = "{root}/{{title}}"
"""
TEMPLATE = """name = "talks"
presets = ["folder"]
[match]
keywords = ["talk"]
[blank]
min_duration_minutes = 0
min_size_mb = 0
[processing]
stages = ["download", "trim", "upload"]
[processing.trim]
enabled = false
"""


def test_published_and_stage_failed_are_emitted_by_the_pipeline(
    installed: dict[str, str],
    cli: Any,
    tmp_path: Path,
    hook: tuple[FakeWebhook, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, base = hook
    monkeypatch.setenv("LEAP_SYNC__LOCAL_SETTLE_SECONDS", "0")
    media.make_video(tmp_path / "inbox" / "talk one.mp4", 2)
    media.make_video(tmp_path / "inbox" / "talk two.mp4", 2)
    (tmp_path / "f.toml").write_text(FOLDER_PRESET.format(root=tmp_path / "out"))
    (tmp_path / "t.toml").write_text(TEMPLATE)
    for args in (
        ("preset", "add", "--file", str(tmp_path / "f.toml")),
        ("template", "add", "--file", str(tmp_path / "t.toml")),
        ("source", "add", "local", "in", str(tmp_path / "inbox")),
        ("sync",),
        ("notify", "add", "ops", "--webhook", url(base)),
    ):
        res = cli(*args)
        assert res.code == 0, (args, res.stderr)
    recs = {r["title"]: r["id"] for r in cli("--json", "recordings", "list").json()}
    assert cli("process", str(recs["talk one"]), "--now").code == 0
    (tmp_path / "inbox" / "talk two.mp4").unlink()  # gone before its download: fails for good
    assert cli("process", str(recs["talk two"]), "--now").code != 0
    runtime = make_runtime()
    try:
        published, failed = rows(runtime)
        assert published.event == "published" and published.status == "pending"
        assert published.payload["recording_id"] == recs["talk one"]
        [link] = published.payload["links"]
        assert link["preset"] == "folder" and link["url"].startswith("file://")
        assert failed.event == "stage_failed" and failed.payload["stage"] == "download"
        assert failed.payload["recording_id"] == recs["talk two"] and failed.payload["reason"]
        # `leap process --now` has no leapd to hand the message to: the row waits, and the
        # reconciler of the next leapd sends it (here: deliver, as that message would).
        sent = [notify.deliver(runtime, r.id, lambda *a: None) for r in (published, failed)]
        assert sent == ["sent", "sent"] and fake.count == 2
        assert "Published: talk one" in fake.received[0].json()["title"]
        # Publishing nothing new (every target already up) is not news.
        assert cli("process", str(recs["talk one"]), "--now", "--stages", "upload").code == 0
        assert len(rows(runtime)) == 2
    finally:
        runtime.dispose()


def test_a_quota_deferral_is_emitted(
    installed: dict[str, str],
    cli: Any,
    tmp_path: Path,
    hook: tuple[FakeWebhook, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.fakes.youtube import FakeYouTube

    _, hook_base = hook
    yt = FakeYouTube()
    yt.inject_error("upload_start", 403, "quotaExceeded", n=1)
    with serve(yt.handler) as base:
        monkeypatch.setenv("LEAP_SYNC__LOCAL_SETTLE_SECONDS", "0")
        monkeypatch.setenv("LEAP_YOUTUBE__API_BASE_URL", f"{base}/youtube/v3")
        monkeypatch.setenv("LEAP_YOUTUBE__UPLOAD_BASE_URL", f"{base}/upload/youtube/v3")
        monkeypatch.setenv("LEAP_YOUTUBE__TOKEN_URI", f"{base}/token")
        media.make_video(tmp_path / "inbox" / "talk one.mp4", 2)
        secret = {
            "client_id": yt.client_id,
            "client_secret": yt.client_secret,
            "refresh_token": yt.refresh_token,
        }
        (tmp_path / "au.json").write_text(json.dumps(secret))
        (tmp_path / "yt.toml").write_text(
            'name = "yt"\nplatform = "youtube"\ncredential = "chan"\n[metadata]\n'
            'privacy = "unlisted"\n'
        )
        (tmp_path / "t.toml").write_text(TEMPLATE.replace('["folder"]', '["yt"]'))
        for args in (
            ("credentials", "add", "youtube", "chan", "--from-file", str(tmp_path / "au.json")),
            ("preset", "add", "--file", str(tmp_path / "yt.toml")),
            ("template", "add", "--file", str(tmp_path / "t.toml")),
            ("source", "add", "local", "in", str(tmp_path / "inbox")),
            ("sync",),
            ("notify", "add", "ops", "--webhook", url(hook_base), "--events", "quota_deferred"),
        ):
            res = cli(*args)
            assert res.code == 0, (args, res.stderr)
        [rec] = cli("--json", "recordings", "list").json()
        cli("process", str(rec["id"]), "--now")  # returns once the upload waits for the reset
    runtime = make_runtime()
    try:
        [row] = rows(runtime)
        assert row.event == "quota_deferred" and row.payload["preset"] == "yt"
        assert row.payload["recording_id"] == rec["id"] and row.payload["retry_at"]
        assert yt.client_secret not in json.dumps(row.payload)
    finally:
        runtime.dispose()
