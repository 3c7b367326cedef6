"""Issue 18, bad-input sweep: the files and texts LEAP parses without a database. Template and
preset files, metadata templates rendered against hostile recordings, match rules and the
titles they run on, leap.toml, automation jobs and quota assignments, and the export folders
rendered from hostile titles. Each ends in a value or LEAP's own error (one line), never
another exception; rendered text keeps the platforms' limits; written files stay inside the
export folder.

tests/test_hostile_input.py feeds the same kinds of files through the CLI (with a database);
here the parsers are called directly, so many more examples fit in the same time.
Derandomized: the same examples on every run.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import tomli_w
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from leap.config import Settings, load_settings
from leap.errors import ConfigError, LeapError, UsageError
from leap.path_policy import PathPolicy, open_folder, own_folders, real, write_bytes_into
from leap.specs.automation import parse_job
from leap.specs.matching import RecordingFacts, compile_template, first_match, mismatch_reason
from leap.specs.metadata import (
    VK_MARKER_CHARS,
    VK_MAX_DESCRIPTION_CHARS,
    VK_MAX_NAME_CHARS,
    YT_MAX_DESCRIPTION_BYTES,
    YT_MAX_TITLE_CHARS,
    YT_TAGS_BUDGET,
    preflight_vk,
    preflight_youtube,
    tags_length,
)
from leap.specs.preset import parse_preset
from leap.specs.quota import edited
from leap.specs.rendering import RenderContext, for_paths, render
from leap.specs.template import parse_template, spec_from_dict
from leap.text.topics import Topic, Topics

SWEEP = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# ------------------------------------------------------------------------ hostile values

HOSTILE_TEXT = [
    "",
    " ",
    "..",
    ".",
    "../../etc/passwd",
    "/etc/passwd",
    "~root",
    "a/../../b",
    "..\\..\\windows",
    "\x00",
    "nul\x00inside",
    "\u202eevil\u202c.mp4",
    "\u200f\u200e",
    "\u2028line",
    "a\nb\r\nc",
    "\x1b[31mred",
    "<script>",
    "{0.__class__}",
    "{title!r:>99999}",
    "{title:>99999}",
    "{{title}}",
    "%s%n",
    "x" * 5000,
    "Лекция " * 200,
    "😀" * 120,
    "00:00 a\n00:01 b\n00:02 c",
]
text = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=60))
scalars = st.one_of(
    text,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63, -(2**63) - 1, 10**30, 0, -1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.datetimes(timezones=st.just(UTC)),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def one_line(exc: LeapError) -> None:
    # A message may quote a newline from the input; the CLI shows it escaped, on one line
    # (cli/_output.py Output.error): test_bad_input_cli.py checks stderr itself.
    assert exc.message.strip(), exc


def outcome(call: Callable[[], Any], allowed: type[LeapError] = LeapError) -> Any:
    """The call's result, or None after an `allowed` error of one line."""
    try:
        return call()
    except allowed as exc:
        one_line(exc)
        return None


def keyed(known: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    key = st.one_of(st.sampled_from(known), st.text(min_size=1, max_size=10))
    return st.dictionaries(key, values, max_size=len(known))


def toml_text(doc: dict[str, Any]) -> str | None:
    try:
        return tomli_w.dumps(doc)
    except (TypeError, ValueError):  # TOML cannot hold the shape (NaN keys, mixed nesting)
        return None


# ------------------------------------------------------------------ template, preset files

MATCH_KEYS = ["keywords", "all_keywords", "exact", "regex", "sources", "zoom_meeting_ids"]
MATCH_KEYS += ["hosts", "weekdays", "time_window", "case_sensitive"]
METADATA_KEYS = ["title", "description", "tags", "privacy", "category_id", "made_for_kids"]
METADATA_KEYS += ["license", "publish_at", "thumbnail", "path", "topics_display", "group_id"]
METADATA_KEYS += ["privacy_view", "album_id", "default_language", "playlist_id", "wallpost"]
PROCESSING_KEYS = ["stages", "language", "trim", "transcription", "topics", "retries"]
PROCESSING_KEYS += ["glossary", "subtitles"]


@st.composite
def template_docs(draw: Callable[[st.SearchStrategy[Any]], Any]) -> dict[str, Any]:
    doc: dict[str, Any] = draw(keyed(["name", "order", "enabled", "approval", "presets"]))
    doc.setdefault("name", draw(st.one_of(st.just("t"), text)))
    for section, keys in (
        ("match", MATCH_KEYS),
        ("blank", ["min_duration_minutes", "min_size_mb"]),
        ("metadata", METADATA_KEYS),
        ("processing", PROCESSING_KEYS),
    ):
        if draw(st.booleans()):
            doc[section] = draw(keyed(keys))
    return doc


@SWEEP
@given(doc=template_docs(), garble=st.integers(0, 5))
@example(doc={"name": "t", "match": {"regex": ["(?a)(?u)x"]}}, garble=0)
@example(doc={"name": "t", "metadata": {"title": "{0.__class__}"}}, garble=0)
@example(doc={"name": "t", "metadata": {"title": "{title!r:>99999}"}}, garble=0)
def test_template_files(doc: dict[str, Any], garble: int) -> None:
    """A template file, well-formed TOML or cut short, is a TemplateSpec or a UsageError."""
    body = toml_text(doc)
    if body is None:
        return
    if garble == 1:
        body = body[: len(body) // 2]  # cut mid-way: usually malformed TOML
    spec = outcome(lambda: parse_template(body, origin="t.toml"), UsageError)
    if spec is not None:
        event("template accepted")
        assert spec.name and "\x00" not in spec.name and "/" not in spec.name
        # What was accepted is stored as JSON and exported as TOML: both must hold it.
        again = spec_from_dict(spec.model_dump(), origin="db")
        assert again == spec


@SWEEP
@given(
    doc=st.fixed_dictionaries(
        {"name": st.one_of(st.just("p"), text)},
        optional={
            "platform": st.one_of(st.sampled_from(["youtube", "vk", "local"]), text),
            "credential": st.one_of(st.just("c"), text),
            "approval": values,
            "metadata": keyed(METADATA_KEYS),
        },
    )
)
def test_preset_files(doc: dict[str, Any]) -> None:
    body = toml_text(doc)
    if body is not None:
        outcome(lambda: parse_preset(body, origin="p.toml"), UsageError)


# ------------------------------------------------------------------------ metadata texts

FIELDS = [
    "{title}",
    "{display_name}",
    "{host}",
    "{template}",
    "{source}",
    "{duration}",
    "{themes}",
    "{topics}",
    "{record_time}",
    "{record_time:DD.MM.YYYY hh:mm}",
    "{publish_time:YYYY}",
    "{date} {time} {year}",
    "{0.__class__}",
    "{title!r:>99999}",
    "{title:>99999}",
    "{__import__}",
    "{",
    "}",
    "{{",
    "}}",
    "{record_time:%Y}",
]
templates = st.lists(st.one_of(st.sampled_from(FIELDS), text), max_size=6).map("".join)
ZONES = ["UTC", "Pacific/Kiritimati", "Etc/GMT+12", "Europe/Moscow", "America/St_Johns"]


@st.composite
def contexts(draw: Callable[[st.SearchStrategy[Any]], Any]) -> RenderContext:
    titles = st.lists(text, max_size=4)
    topics = None
    if draw(st.booleans()):
        starts = draw(st.lists(st.floats(0, 1e7), max_size=4))
        items = [Topic(start=s, title=draw(text)) for s in sorted(starts)]
        topics = Topics(
            themes=draw(titles),
            topics=items,
            chapters_ok=draw(st.booleans()),
            chapters_reason=None,
            provider="simple",
        )
    return RenderContext(
        title=draw(text),
        display_name=draw(text),
        host=draw(text),
        template=draw(text),
        source=draw(text),
        record_time=draw(st.datetimes(timezones=st.just(UTC))),
        publish_time=draw(st.none() | st.datetimes(timezones=st.just(UTC))),
        duration_s=draw(st.floats(0, 1e9)),
        themes=draw(titles),
        topics=topics,
        tz=ZoneInfo(draw(st.sampled_from(ZONES))),
    )


@SWEEP
@given(
    title=templates,
    description=templates,
    tags=st.lists(templates, max_size=40),
    ctx=contexts(),
    display=st.sampled_from(["numbered", "bulleted", "timestamps", "chapters", "compact"]),
)
@example(
    title="{record_time}",
    description="",
    tags=[],
    ctx=RenderContext(
        "t",
        "",
        "",
        "",
        "",
        datetime.max.replace(tzinfo=UTC),
        None,
        0.0,
        tz=ZoneInfo("Pacific/Kiritimati"),
    ),
    display="timestamps",
)
def test_metadata_rendering(
    title: str, description: str, tags: list[str], ctx: RenderContext, display: str
) -> None:
    """Rendered text or a UsageError; after pre-flight, what goes to YouTube and VK is within
    their limits (docs/platforms.md) whatever the recording's title held."""
    values: dict[str, Any] = {}
    for key, template in (("title", title), ("description", description)):
        rendered = outcome(lambda t=template: render(t, ctx, topics_display=display), UsageError)
        values[key] = rendered if rendered is not None else ctx.title
    values["tags"] = [r for t in tags if (r := outcome(lambda t=t: render(t, ctx), UsageError))]

    yt, _ = preflight_youtube(values)
    assert len(yt["title"]) <= YT_MAX_TITLE_CHARS
    assert len(yt["description"].encode()) <= YT_MAX_DESCRIPTION_BYTES
    assert not any(c in yt["title"] + yt["description"] for c in "<>")
    assert tags_length(yt["tags"]) <= YT_TAGS_BUDGET
    assert preflight_youtube(yt)[0] == yt  # idempotent

    vk, _ = preflight_vk(values)
    assert len(vk["name"]) <= VK_MAX_NAME_CHARS
    assert len(vk["description"]) <= VK_MAX_DESCRIPTION_CHARS - VK_MARKER_CHARS


@SWEEP
@given(ctx=contexts())
def test_path_values_cannot_add_folders(ctx: RenderContext) -> None:
    safe = for_paths(ctx)
    for value in (safe.title, safe.display_name, safe.host, safe.template, safe.source):
        assert not any(c in value for c in "/\\\x00") and value not in (".", "..")
        assert not value.startswith("~")
    for theme in safe.themes:
        assert "/" not in theme and theme not in (".", "..")


# --------------------------------------------------------------------------- export folder

PATH_TEMPLATES = [
    "{exports}/{template}/{record_time:YYYY-MM-DD} {title}",  # the default
    "{exports}/{title}",
    "{exports}/{title}/{host}",
    "{exports}/{title}{host}{source}",
    "{exports}/{themes}/{display_name}",
    "{exports}/{template}/{title}/{record_time:date}",
]


@SWEEP
@given(ctx=contexts(), template=st.sampled_from(PATH_TEMPLATES))
def test_export_folder_stays_inside(tmp_path: Path, ctx: RenderContext, template: str) -> None:
    """The export folder rendered from hostile titles and names, opened and written the way
    the local publisher does: every file lands inside the user's export folder (compared by
    realpath), or the folder is refused with a UsageError."""
    sandbox = Path(tempfile.mkdtemp(dir=tmp_path))
    data = sandbox / "data"
    exports = own_folders(data, 1)[1]
    exports.mkdir(parents=True)
    policy = PathPolicy.build(
        user="u",
        user_id=1,
        is_admin=False,
        user_roots=None,
        install_roots=[],
        data_dir=data,
        private=[],
    )
    path_template = template.replace("{exports}", str(exports).replace("{", "{{"))
    folder = outcome(lambda: render(path_template, for_paths(ctx)), UsageError)
    if folder is None:
        return
    fd = outcome(lambda: open_folder(policy, folder, what="export folder"), UsageError)
    if fd is None:
        return
    event("export folder written")
    try:
        write_bytes_into(fd, "metadata.json", b"{}")
    finally:
        os.close(fd)
    root = os.path.realpath(exports)
    for dirpath, _dirs, files in os.walk(sandbox):
        for name in files:
            written = os.path.realpath(Path(dirpath) / name)
            assert written.startswith(root + os.sep), written
    assert real(folder).is_relative_to(root)


# ------------------------------------------------------------------------------ matching

CATASTROPHIC = [
    "(a|aa)+$",
    "(a+)+b",
    "(x+x+)+y",
    "(.*a){20}",
    "(?:a|a)*$",
    "^(\\w+\\s?)*$",
    "((a{0,30}){0,30}){0,30}",
    "(x{65535}){65535}",
    "a{99999999999999999999}",
    "(?i)(?:[\\p{L}]+)+$",
    "(?a)(?u)x",
    "(?L)x",
    "(",
    "[",
    "\\",
    "(?P<n>a)(?P<n>b)",
    "(?<=a+)b",
    "\\N{NOPE}",
    "x" * 600,
]


PATTERNS = st.one_of(st.sampled_from(CATASTROPHIC), st.text(max_size=20))
RULES = st.one_of(
    st.fixed_dictionaries(
        {"regex": st.lists(PATTERNS, min_size=1, max_size=3)},
        optional={"case_sensitive": st.booleans()},
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "regex": st.lists(PATTERNS, max_size=3),
            "keywords": st.lists(text, max_size=3),
            "exact": st.lists(text, max_size=2),
            "hosts": st.lists(text, max_size=2),
            "weekdays": st.lists(text, max_size=2),
            "time_window": text,
            "zoom_meeting_ids": st.lists(st.one_of(text, st.integers()), max_size=2),
            "case_sensitive": st.booleans(),
        },
    ),
)


@SWEEP
@given(
    rules=RULES,
    title=st.one_of(
        text,
        st.integers(1, 300).map(lambda n: "a" * n + "!"),
        st.integers(1, 300).map(lambda n: "x" * n),
    ),
    host=st.none() | text,
    start=st.datetimes(timezones=st.sampled_from([UTC, ZoneInfo("Pacific/Kiritimati")])),
)
@example(
    rules={"regex": ["(a|aa)+$"]},
    title="a" * 60 + "!",
    host=None,
    start=datetime(2026, 1, 1, tzinfo=UTC),
)
def test_match_rules(rules: dict[str, Any], title: str, host: str | None, start: datetime) -> None:
    """Rules are a TemplateSpec or a UsageError; matching a hostile title with accepted rules
    answers (match or no match) in bounded time and never raises."""
    spec = outcome(lambda: spec_from_dict({"name": "t", "match": rules}, origin="t"), UsageError)
    if spec is None:
        return
    event(f"rules accepted, {len(spec.match.regex)} regex(es)")
    compiled = compile_template(1, spec.name, spec.order, spec.match)
    facts = RecordingFacts(title, "zoom", "zoom", "81234567890", host, start)
    began = time.monotonic()
    first_match([compiled], facts)
    mismatch_reason(compiled, facts)
    # Two passes over at most three patterns, each cut off after 0.1 s.
    assert time.monotonic() - began < 3.0


# ------------------------------------------------------------------------------ leap.toml


def _sections() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, field in Settings.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            out[name] = list(kind.model_fields)
    return out


SECTIONS = _sections()


@st.composite
def settings_docs(draw: Callable[[st.SearchStrategy[Any]], Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for section in draw(st.lists(st.sampled_from(sorted(SECTIONS)), max_size=3, unique=True)):
        doc[section] = draw(keyed(SECTIONS[section]))
    if draw(st.booleans()):
        doc[draw(st.sampled_from(["data_dir", "typo", "worker"]))] = draw(values)
    return doc


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for key in list(os.environ):
        if key.startswith("LEAP_") and not key.startswith("LEAP_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("LEAP_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


@SWEEP
@given(doc=settings_docs())
@example(doc={"worker": {"count": 2**70}})
@example(doc={"youtube": {"costs": {"videos.insert": -1}}})
@example(doc={"defaults": {"timezone": "../../etc/localtime"}})
def test_settings_files(clean_env: Path, doc: dict[str, Any]) -> None:
    """leap.toml with any keys and values under the real sections: Settings, or one
    ConfigError line (exit 6)."""
    body = toml_text(doc)
    if body is None:
        return
    path = clean_env / "leap.toml"
    path.write_text(body, encoding="utf-8")
    loaded = outcome(lambda: load_settings(path), ConfigError)
    if loaded is not None:
        event("settings accepted")
        # What the rest of LEAP asks of it right away.
        assert loaded.data_path and loaded.media_path and loaded.queue_path
        assert loaded.database_url


# ------------------------------------------------------------------------- jobs, limits

JOB_KEYS = ["name", "schedule", "action", "enabled", "dry_run"]
SCHEDULE = {"kind": "daily", "at": "06:00"}


@SWEEP
@given(
    job=keyed(JOB_KEYS),
    schedule=st.one_of(keyed(["kind", "at", "every", "days", "cron", "minutes"]), values),
    action=st.one_of(keyed(["sources", "templates", "since_days", "process"]), values),
)
def test_automation_jobs(job: dict[str, Any], schedule: Any, action: Any) -> None:
    job.setdefault("name", "j")
    job.setdefault("schedule", schedule)
    job.setdefault("action", action)
    outcome(lambda: parse_job(job), UsageError)
    outcome(lambda: parse_job({**job, "schedule": SCHEDULE}), UsageError)


LIMIT_KEYS = ["recordings_per_month", "storage_gb", "llm_tokens_per_month", "templates"]


@SWEEP
@given(
    sets=st.lists(
        st.tuples(st.one_of(st.sampled_from(LIMIT_KEYS), text), st.one_of(text, scalars)).map(
            lambda kv: f"{kv[0]}={kv[1]}"
        )
        | text,
        max_size=3,
    ),
    unsets=st.lists(st.one_of(st.sampled_from(LIMIT_KEYS), text), max_size=2),
)
def test_quota_assignments(sets: list[str], unsets: list[str]) -> None:
    limits = outcome(lambda: edited({}, sets, unsets), UsageError)
    if limits is not None:
        for value in limits.values():
            assert value is None or (math.isfinite(value) and value >= 0)


def test_a_time_far_in_the_future_renders() -> None:
    """Found by the sweep: a record time at the end of year 9999 shown in a zone east of UTC
    overflowed datetime."""
    end = datetime.max.replace(tzinfo=UTC) - timedelta(hours=1)
    ctx = RenderContext("t", "", "", "", "", end, None, 0.0, tz=ZoneInfo("Pacific/Kiritimati"))
    assert render("{record_time:YYYY}", ctx)
