"""Text from outside (Zoom topics, file names, provider answers) never drives the operator's
terminal: no control byte reaches stdout or stderr, Rich markup in it is shown as typed, and
`--json` stays valid JSON."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leap.cli._output import Output, json_text, terminal_safe
from leap.context import Runtime, open_context
from leap.db import models as m
from leap.db.scope import Scope
from tests.conftest import make_user
from tests.fakes.server import serve
from tests.fakes.zoom import FakeZoom

# OSC retitle + BEL, clear screen, colour, CR overwrite, 8-bit CSI, backspace, DEL, a bidi
# override, markup that Rich would apply ([bold], [link]) or choke on ([/]), and an emoji code
# Rich would replace (a title is printed as written).
HOSTILE = (
    "\x1b]0;pwned\x07\x1b[2J\x1b[31mred\rover\x9b1mcsi\x08\x7f \u202eevil "
    "[bold]x[/] [/] [link=http://e.vil]y[/link] :fire:"
)
MARKUP = "[bold]x[/] [/] [link=http://e.vil]y[/link]"


def controls(text: str) -> list[str]:
    """Characters a terminal would act on: controls (but newline and tab), surrogates, bidi."""
    return [
        c
        for c in text
        if c not in "\n\t"
        and (unicodedata.category(c) in ("Cc", "Cs") or unicodedata.bidirectional(c) == "RLO")
    ]


# -- the pure parts --------------------------------------------------------------------------


# Every code point, lone surrogates included (file names that were not UTF-8).
ANY_TEXT = st.text(st.characters(exclude_categories=()))


@given(ANY_TEXT)
def test_terminal_safe_leaves_nothing_a_terminal_acts_on(text: str) -> None:
    out = terminal_safe(text)
    assert not controls(out)
    out.encode("utf-8")  # no lone surrogate left to crash the writer


@given(st.recursive(ANY_TEXT | st.integers() | st.none(), lambda c: st.lists(c, max_size=3)))
def test_json_text_is_inert_valid_json_of_the_same_data(data: Any) -> None:
    text = json_text({"v": data})
    assert not controls(text)
    text.encode("utf-8")
    assert json.loads(text) == {"v": data}


def test_safe_text_is_shown_as_visible_escapes() -> None:
    assert (
        terminal_safe("a\x1b[2Jb\rc\x07\udc80\u202e\n\t") == "a\\x1b[2Jb\\rc\\x07\\udc80\\u202e\n\t"
    )
    assert terminal_safe("Анализ временных рядов — 2026") == "Анализ временных рядов — 2026"


def test_every_output_path_is_safe(capsys: pytest.CaptureFixture[str]) -> None:
    out = Output()
    nasty = HOSTILE + " \udc80 \x00"
    out.table([{"t": nasty, "n": 1}], ["t", "n"], title=nasty)
    out.record({nasty: nasty, "files": [{"name": nasty}]}, title=nasty)
    out.message(nasty)
    out.warning(nasty)
    out.error(nasty)
    got = capsys.readouterr()
    assert not controls(got.out) and not controls(got.err)
    assert MARKUP in got.out and MARKUP in got.err  # markup shown as typed, not applied
    assert "\\x1b]0;pwned\\x07" in got.out


def test_json_output_survives_lone_surrogates(capsys: pytest.CaptureFixture[str]) -> None:
    Output(as_json=True).table([{"t": HOSTILE + "\udc80"}], ["t"])
    got = capsys.readouterr().out
    assert not controls(got)
    assert json.loads(got) == [{"t": HOSTILE + "\udc80"}]


# -- through the commands --------------------------------------------------------------------


def seed(runtime: Runtime, scope: Scope) -> int:
    with open_context(runtime, scope) as ctx:
        src = ctx.repos.sources.add(m.InputSource(name="uni", kind="local"))
        rec = ctx.repos.recordings.add(
            m.Recording(
                source_id=src.id,
                external_id=HOSTILE,
                title=HOSTILE,
                host=HOSTILE,
                start_time=datetime(2026, 3, 1, 10, tzinfo=UTC),
                files=[{"id": "f1", "file_name": HOSTILE + ".mp4", "size": 1}],
                match_reason=HOSTILE,
                error=HOSTILE,
            )
        )
        return rec.id


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    # Rich folds and crops cells to the terminal width; let whole titles show.
    monkeypatch.setenv("COLUMNS", "1000")


def check_human(res: Any) -> None:
    assert res.code == 0, res.stderr
    assert not controls(res.stdout) and not controls(res.stderr), res.stdout
    assert "[/]" in res.stdout and "pwned" in res.stdout and ":fire:" in res.stdout


def check_json(res: Any) -> Any:
    assert res.code == 0, res.stderr
    assert not controls(res.stdout), res.stdout
    return res.json()


def test_recordings_list_and_show_print_hostile_titles_inertly(
    runtime: Runtime, cli: Any, wide: None
) -> None:
    make_user(runtime, "alice")
    rec_id = seed(runtime, make_user(runtime, "bob"))
    who = ("--user", "bob")

    check_human(cli(*who, "recordings", "list"))
    check_human(cli(*who, "recordings", "show", str(rec_id)))
    [row] = check_json(cli(*who, "--json", "recordings", "list"))
    assert row["title"] == HOSTILE  # the data itself is unchanged for scripts
    shown = check_json(cli(*who, "--json", "recordings", "show", str(rec_id)))
    assert shown["files"][0]["file_name"] == HOSTILE + ".mp4"


@pytest.fixture
def zoom() -> Iterator[tuple[FakeZoom, str]]:
    fake = FakeZoom(user_email="teacher@uni.example")
    with serve(fake.handler) as base:
        yield fake, base


def test_a_hostile_zoom_topic_is_listed_inertly(
    leap_env: dict[str, str],
    cli: Any,
    zoom: tuple[FakeZoom, str],
    monkeypatch: pytest.MonkeyPatch,
    wide: None,
) -> None:
    fake, base = zoom
    start, end = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 10, tzinfo=UTC)
    [meeting] = fake.generate_meetings(1, start, end, seed=1, user_email="teacher@uni.example")
    meeting.topic = HOSTILE
    monkeypatch.setenv("LEAP_ZOOM__API_BASE_URL", f"{base}/v2")
    monkeypatch.setenv("LEAP_ZOOM__OAUTH_BASE_URL", base)
    monkeypatch.setenv("ZOOM_SECRET", fake.client_secret)
    client = ("--client-id", fake.client_id, "--client-secret-env", "ZOOM_SECRET")
    for args in (
        ("init", "--yes"),
        ("credentials", "add", "zoom-s2s", "z", "--account-id", fake.account_id, *client),
        ("source", "add", "zoom", "uni", "--credential", "z", "--zoom-user", "teacher@uni.example"),
        ("sync", "--from", "2026-03-01", "--to", "2026-03-10"),
    ):
        res = cli(*args)
        assert res.code == 0, (args, res.stderr)
        assert not controls(res.stdout + res.stderr)

    check_human(cli("recordings", "list"))
    [row] = check_json(cli("--json", "recordings", "list"))
    check_human(cli("recordings", "show", str(row["id"])))
    check_json(cli("--json", "recordings", "show", str(row["id"])))
