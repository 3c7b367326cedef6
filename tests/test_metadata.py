"""Publishing metadata: layer merge, YouTube/VK pre-flight repairs, request bodies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from leap.errors import UsageError
from leap.providers.youtube import add_marker
from leap.specs.metadata import (
    Repair,
    preflight_vk,
    preflight_youtube,
    resolve_metadata,
    tags_length,
    vk_save_params,
    youtube_body,
)


def _fields(repairs: list[Repair]) -> list[str]:
    return [r.field for r in repairs]


def _idempotent_yt(meta: dict[str, Any]) -> None:
    again, repairs = preflight_youtube(meta)
    assert repairs == []
    assert again == meta


def _idempotent_vk(meta: dict[str, Any]) -> None:
    again, repairs = preflight_vk(meta)
    assert repairs == []
    assert again == meta


# ---------------------------------------------------------------------------------------------
# Merge


def test_resolve_metadata_layers_and_origins() -> None:
    preset = {"privacy": "unlisted", "category_id": "27", "tags": ["a"], "extra": {"x": 1, "y": 2}}
    template = {"title": "{display_name}", "tags": ["лекция"], "extra": {"y": 3}}
    override = {"privacy": "private"}
    values, origins = resolve_metadata(preset, template, override)
    assert values == {
        "privacy": "private",
        "category_id": "27",
        "tags": ["лекция"],
        "extra": {"x": 1, "y": 3},
        "title": "{display_name}",
    }
    assert origins == {
        "privacy": "recording",
        "category_id": "preset",
        "tags": "template",
        "extra.x": "preset",
        "extra.y": "template",
        "title": "template",
    }
    assert preset["tags"] == ["a"]  # inputs untouched


# ---------------------------------------------------------------------------------------------
# YouTube


def test_clean_payload_needs_no_repairs() -> None:
    meta = {
        "title": "Лекция 3",
        "description": "Темы\n\n0:00 Введение\n2:36 Часть\n1:02:03 Итоги",
        "tags": ["лекция", "time series"],
        "category_id": "27",
        "privacy": "unlisted",
        "made_for_kids": False,
        "embeddable": True,
        "license": "youtube",
    }
    out, repairs = preflight_youtube(meta)
    assert repairs == []
    assert out == meta


@pytest.mark.parametrize("length", [99, 100])
def test_title_at_limit_untouched(length: int) -> None:
    title = "Ж" * length
    out, repairs = preflight_youtube({"title": title, "description": "d"})
    assert repairs == []
    assert out["title"] == title


def test_title_over_limit_cut_on_word_and_moved_to_description() -> None:
    title = " ".join(["слово"] * 20)  # 119 characters
    out, repairs = preflight_youtube({"title": title, "description": "Описание"})
    assert len(out["title"]) <= 100
    assert out["title"].endswith("слово…")
    assert out["description"] == f"{title}\n\nОписание"
    assert _fields(repairs) == ["title", "description"]
    _idempotent_yt(out)


def test_title_101_chars_no_space() -> None:
    out, _ = preflight_youtube({"title": "x" * 101})
    assert out["title"] == "x" * 99 + "…"
    assert len(out["title"]) == 100
    assert out["description"] == "x" * 101
    _idempotent_yt(out)


def test_angle_brackets_replaced() -> None:
    out, repairs = preflight_youtube({"title": "a <b> c", "description": "x > y"})
    assert out["title"] == "a ‹b› c"
    assert out["description"] == "x › y"
    assert _fields(repairs) == ["title", "description"]
    _idempotent_yt(out)


@pytest.mark.parametrize("extra", [0, 1])
def test_description_bytes_limit_cyrillic(extra: int) -> None:
    text = "я" * (2500 + extra)  # 5000 / 5002 bytes
    out, repairs = preflight_youtube({"description": text})
    if extra == 0:
        assert repairs == []
        assert out["description"] == text
    else:
        assert len(out["description"].encode()) <= 5000
        assert out["description"].endswith("…")
        assert [r.what for r in repairs] == ["cut to 5000 bytes"]
        _idempotent_yt(out)


def test_description_cut_at_line_boundary() -> None:
    lines = [f"строка номер {i:04d}" for i in range(400)]  # 33 bytes per line with newline
    text = "\n".join(lines)
    out, _ = preflight_youtube({"description": text})
    assert len(out["description"].encode()) <= 5000
    assert out["description"].split("\n")[-1] in lines  # whole lines only
    assert text.startswith(out["description"])
    _idempotent_yt(out)


def test_description_cut_at_word_boundary() -> None:
    text = " ".join(["слово"] * 1000)
    out, _ = preflight_youtube({"description": text})
    desc = out["description"]
    assert len(desc.encode()) <= 5000
    assert desc.endswith("слово…")
    _idempotent_yt(out)


def test_tags_total_limit_counts_quotes_and_commas() -> None:
    """The budget is 500 less LEAP's marker tag and its comma (470 characters)."""
    assert tags_length(["ab", "c d"]) == 2 + 1 + 5
    tags = ["x" * 48] * 9 + ["x" * 29]  # 432 + 29 + 9 commas = 470
    out, repairs = preflight_youtube({"tags": tags})
    assert repairs == []
    tags2 = [*tags[:-1], "x" * 29 + " "]  # stripped, so still fits
    out, repairs = preflight_youtube({"tags": tags2})
    assert _fields(repairs) == ["tags"]
    out, repairs = preflight_youtube({"tags": [*tags[:-1], "x y" + "x" * 26]})  # 29 + 2
    assert out["tags"] == tags[:-1]
    assert "dropped 1 tag" in repairs[0].what
    _idempotent_yt(out)


def test_tags_with_the_marker_stay_within_500() -> None:
    tags = ["x" * 48] * 9 + ["x" * 29]
    out, _ = preflight_youtube({"tags": [*tags, "one-more"]})
    marked = add_marker({"snippet": {"tags": out["tags"]}}, "leap-" + "a" * 24)
    assert tags_length(marked["snippet"]["tags"]) == 500
    assert tags_length(["x" * 49] * 9 + ["x" * 50]) == 500  # YouTube's own limit, exactly


def test_tags_from_string() -> None:
    out, repairs = preflight_youtube({"tags": "a, b ,,c"})
    assert out["tags"] == ["a", "b", "c"]
    assert len(repairs) == 1
    _idempotent_yt(out)


def test_publish_at_forces_private() -> None:
    when = datetime(2026, 6, 1, 13, 0, tzinfo=timezone(timedelta(hours=3)))
    out, repairs = preflight_youtube({"privacy": "public", "publish_at": when})
    assert out["privacy"] == "private"
    assert repairs == [Repair("privacy", repairs[0].what, "public", "private")]
    _idempotent_yt(out)
    body = youtube_body(out)
    assert body["status"] == {"privacyStatus": "private", "publishAt": "2026-06-01T10:00:00Z"}


def test_publish_at_missing_privacy_and_string() -> None:
    out, repairs = preflight_youtube({"publish_at": "2026-06-01T10:00:00Z"})
    assert out["privacy"] == "private"
    assert _fields(repairs) == ["privacy"]


@pytest.mark.parametrize("bad", ["tomorrow", "2026-06-01T10:00:00", 5])
def test_publish_at_invalid(bad: Any) -> None:
    with pytest.raises(UsageError, match="publish_at"):
        preflight_youtube({"publish_at": bad})


@pytest.mark.parametrize(
    ("chapters", "valid"),
    [
        (["0:00 A", "0:10 B", "0:20 C"], True),
        (["00:00 A", "1:00 B", "1:00:00 C"], True),
        (["0:00 A", "0:10 B"], False),  # fewer than 3
        (["0:01 A", "0:20 B", "0:40 C"], False),  # not at 0:00
        (["0:00 A", "0:40 B", "0:20 C"], False),  # not ascending
        (["0:00 A", "0:09 B", "0:40 C"], False),  # shorter than 10 s
        (["00:00:00 — A", "00:02:36 — B", "01:02:03 — C"], True),
    ],
)
def test_chapters(chapters: list[str], valid: bool) -> None:
    description = "Вступление\n\n" + "\n".join(chapters) + "\n\nКонец"
    out, repairs = preflight_youtube({"description": description})
    if valid:
        assert repairs == []
    else:
        # Kept as a bulleted list (YouTube still links each time), no longer read as chapters.
        listed = "\n".join(f"• {line}" for line in chapters)
        assert out["description"] == f"Вступление\n\n{listed}\n\nКонец"
        assert repairs[0].what.startswith("timestamps kept as a list, not chapters")
        _idempotent_yt(out)


def test_single_timestamp_line_is_not_chapters() -> None:
    meta = {"description": "Сбор\n10:00 начало\nКонец"}
    out, repairs = preflight_youtube(meta)
    assert repairs == []
    assert out == meta


def test_last_chapter_checked_against_duration() -> None:
    description = "0:00 A\n0:10 B\n0:20 C"
    _, repairs = preflight_youtube({"description": description, "duration_s": 30})
    assert repairs == []
    out, repairs = preflight_youtube({"description": description, "duration_s": 25})
    assert out["description"] == "• 0:00 A\n• 0:10 B\n• 0:20 C"
    assert len(repairs) == 1


def test_type_repairs() -> None:
    meta = {
        "category_id": 27,
        "made_for_kids": "false",
        "embeddable": 1,
        "license": "creative_commons",
        "privacy": "hidden",
    }
    out, repairs = preflight_youtube(meta)
    assert out == {
        "category_id": "27",
        "made_for_kids": False,
        "embeddable": True,
        "license": "creativeCommon",
        "privacy": "private",
    }
    assert sorted(_fields(repairs)) == sorted(meta)
    _idempotent_yt(out)
    assert preflight_youtube({"license": "whatever"})[0]["license"] == "youtube"


@pytest.mark.parametrize(
    ("meta", "message"),
    [({"category_id": "education"}, "category_id"), ({"made_for_kids": "maybe"}, "made_for_kids")],
)
def test_unrepairable(meta: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        preflight_youtube(meta)


def test_youtube_body() -> None:
    meta = {
        "title": "T <1>",
        "description": "D",
        "tags": ["a"],
        "category_id": "27",
        "default_language": "ru",
        "privacy": "unlisted",
        "made_for_kids": False,
        "embeddable": True,
        "license": "youtube",
        "playlist_id": "PLx",
    }
    assert youtube_body(meta) == {
        "snippet": {
            "title": "T ‹1›",
            "description": "D",
            "tags": ["a"],
            "categoryId": "27",
            "defaultLanguage": "ru",
        },
        "status": {
            "privacyStatus": "unlisted",
            "selfDeclaredMadeForKids": False,
            "embeddable": True,
            "license": "youtube",
        },
    }
    minimal = youtube_body({"title": "x"})
    assert minimal == {
        "snippet": {"title": "x", "description": ""},
        "status": {"privacyStatus": "private"},
    }


def test_publish_at_utc_format() -> None:
    when = datetime(2026, 6, 1, 10, 0, 30, 123, tzinfo=UTC)
    assert youtube_body({"publish_at": when})["status"]["publishAt"] == "2026-06-01T10:00:30Z"


# ---------------------------------------------------------------------------------------------
# VK


@pytest.mark.parametrize("length", [127, 128])
def test_vk_name_at_limit(length: int) -> None:
    _, repairs = preflight_vk({"name": "Ж" * length})
    assert repairs == []


def test_vk_name_over_limit_and_title_fallback() -> None:
    title = " ".join(["слово"] * 30)
    out, repairs = preflight_vk({"title": title, "description": "Д"})
    assert len(out["name"]) <= 128
    assert out["name"].endswith("…")
    assert out["description"] == f"{title}\n\nД"
    assert _fields(repairs) == ["name", "description"]
    _idempotent_vk(out)


@pytest.mark.parametrize("extra", [0, 1])
def test_vk_description_chars(extra: int) -> None:
    """5000 characters less room for LEAP's "\n\n#leap-<24 hex>" marker line (32)."""
    text = "я" * (4968 + extra)
    out, repairs = preflight_vk({"name": "n", "description": text})
    assert len(out["description"]) <= 4968
    assert len(out["description"] + "\n\n#leap-" + "a" * 24) <= 5000
    assert len(repairs) == extra
    _idempotent_vk(out)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("all", "all"),
        ("friends,list3,123,-45", "friends,list3,123,-45"),
        (["friends", "bogus"], "friends"),
        ("public", "all"),
        ("private", "only_me"),
        ("bogus", "only_me"),
        ("friends, friends", "friends"),
    ],
)
def test_vk_privacy(value: Any, expected: str) -> None:
    out, repairs = preflight_vk({"name": "n", "privacy_view": value, "privacy_comment": value})
    assert out["privacy_view"] == expected
    assert out["privacy_comment"] == expected
    assert len(repairs) == (0 if value == expected else 2)
    _idempotent_vk(out)


def test_vk_flags_and_ids() -> None:
    meta = {
        "name": "n",
        "wallpost": True,
        "no_comments": "false",
        "repeat": 0,
        "is_private": "1",
        "group_id": -123,
        "album_id": "7",
    }
    out, repairs = preflight_vk(meta)
    assert out == {
        "name": "n",
        "wallpost": 1,
        "no_comments": 0,
        "repeat": 0,
        "is_private": 1,
        "group_id": 123,
        "album_id": 7,
    }
    assert sorted(_fields(repairs)) == [
        "album_id",
        "group_id",
        "is_private",
        "no_comments",
        "wallpost",
    ]
    _idempotent_vk(out)
    with pytest.raises(UsageError, match="album_id"):
        preflight_vk({"album_id": "x"})
    with pytest.raises(UsageError, match="wallpost"):
        preflight_vk({"wallpost": "maybe"})


def test_vk_save_params() -> None:
    params = vk_save_params(
        {
            "title": "Лекция",
            "description": "Д",
            "wallpost": True,
            "privacy_view": "all",
            "album_id": 3,
        }
    )
    assert params == {
        "name": "Лекция",
        "description": "Д",
        "album_id": "3",
        "wallpost": "1",
        "privacy_view": "all",
    }
    group = vk_save_params({"name": "n", "group_id": "-5", "privacy_view": "friends"})
    assert group == {"name": "n", "description": "", "group_id": "5"}


def test_bulleted_timestamps_still_fit_in_5000_bytes() -> None:
    stamps = "\n".join(f"0:{i:02d} topic {i}" for i in range(0, 60, 5))  # 5 s apart: invalid
    description = stamps + "\n" + "я" * 2600  # over 5000 bytes once bullets are added
    out, repairs = preflight_youtube({"description": description})
    assert len(out["description"].encode()) <= 5000
    assert out["description"].startswith("• 0:00 topic 0")
    assert any(r.what.startswith("timestamps kept as a list") for r in repairs)
    _idempotent_yt(out)
