"""Template files: validation, one-line errors naming file and key, and export round-trips."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest

from leap.errors import UsageError
from leap.specs.template import (
    BlankRules,
    MatchRules,
    TemplateSpec,
    check_name,
    parse_template,
    parse_time_window,
    spec_from_dict,
    to_toml,
)

# The template example of LEAP's interface specification, verbatim, with `presets` written
# after [metadata] as it was there (the format: docs/cli.md, "Template files").
DOC_EXAMPLE = r"""
name = "time-series"            # unique per user
order = 10                      # evaluation order; the first matching template wins
enabled = true

[match]                         # every condition given must hold; inside a list, any item
keywords = ["анализ временных рядов", "time series"]   # substring, case-insensitive
all_keywords = []               # every item must appear
exact = []                      # whole title equals
regex = ['^ТС-\d+']
sources = ["zoom"]
zoom_meeting_ids = [81234567890]
hosts = ["teacher@uni.example"]
weekdays = ["mon", "thu"]
time_window = "18:00-21:30"     # in the owner's timezone
case_sensitive = false

[blank]                         # overrides the user's thresholds
min_duration_minutes = 20
min_size_mb = 25

[processing]                    # overrides the user's defaults; a recording overrides this
stages = ["download", "trim", "transcribe", "topics", "subtitles", "upload"]
language = "ru"
glossary = ["ARIMA", "Бокс–Дженкинс"]
transcription = { provider = "fireworks", model = "whisper-v3-turbo" }
topics = { provider = "llm" }   # llm | simple | none
trim = { enabled = true, accurate = false }

[metadata]                      # rendered; overrides the presets' metadata
title = "{display_name} — {record_time:DD.MM.YYYY}"
description = "{themes}\n\n{topics}"
topics_display = "timestamps"   # numbered | bulleted | timestamps | chapters | compact
show_timestamps = true
playlist_id = "PLxxxx"
thumbnail = "thumbnails/time-series.png"
tags = ["лекция"]

presets = ["youtube-unlisted", "vk-public"]
"""


def test_documented_example_parses() -> None:
    spec = parse_template(DOC_EXAMPLE, origin="time-series.toml")
    assert spec.name == "time-series"
    assert spec.order == 10
    assert spec.enabled is True
    assert spec.match.keywords == ["анализ временных рядов", "time series"]
    assert spec.match.regex == [r"^ТС-\d+"]
    assert spec.match.zoom_meeting_ids == ["81234567890"]
    assert spec.match.weekdays == ["mon", "thu"]
    assert spec.match.time_window == "18:00-21:30"
    assert spec.blank == BlankRules(min_duration_minutes=20.0, min_size_mb=25.0)
    assert spec.processing["transcription"] == {
        "provider": "fireworks",
        "model": "whisper-v3-turbo",
    }
    assert spec.metadata["description"] == "{themes}\n\n{topics}"
    # TOML would put the trailing key inside [metadata]; it is lifted back to the top.
    assert spec.presets == ["youtube-unlisted", "vk-public"]
    assert "presets" not in spec.metadata


@pytest.mark.parametrize("section", ["match", "blank", "processing", "metadata"])
def test_presets_after_any_last_table_is_lifted(section: str) -> None:
    text = f'name = "x"\n[{section}]\npresets = ["p1", "p2"]\n'
    spec = parse_template(text, origin="t.toml")
    assert spec.presets == ["p1", "p2"]
    assert spec.match.is_empty() and spec.processing == {} and spec.metadata == {}


def test_minimal_template_has_defaults() -> None:
    spec = parse_template('name = "x"', origin="x.toml")
    assert spec == TemplateSpec(name="x")
    assert spec.order == 100
    assert spec.enabled is True
    assert spec.match.is_empty()
    assert spec.blank == BlankRules()
    assert spec.processing == {} and spec.metadata == {} and spec.presets == []


# --------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ([81234567890], ["81234567890"]),
        (["812 3456 7890"], ["81234567890"]),
        (["812-3456-7890"], ["81234567890"]),
        (["  81234567890 "], ["81234567890"]),
        ([123, "456 789"], ["123", "456789"]),
    ],
)
def test_meeting_ids_normalised_to_digit_strings(raw: list[Any], expected: list[str]) -> None:
    assert MatchRules.model_validate({"zoom_meeting_ids": raw}).zoom_meeting_ids == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["mon"], ["mon"]),
        (["Monday", "THU"], ["mon", "thu"]),
        (["sunday", "Saturday", "fri"], ["sun", "sat", "fri"]),
        (["wed", "Wednesday"], ["wed"]),
        ([" tue "], ["tue"]),
    ],
)
def test_weekdays_normalised(raw: list[str], expected: list[str]) -> None:
    assert MatchRules.model_validate({"weekdays": raw}).weekdays == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("18:00-21:30", "18:00-21:30"),
        ("9:05-10:00", "09:05-10:00"),
        (" 22:00 - 01:30 ", "22:00-01:30"),
        ("18:00–21:30", "18:00-21:30"),  # en dash, as copied from documents
        ("18:00-24:00", "18:00-00:00"),
        ("00:00-23:59", "00:00-23:59"),
    ],
)
def test_time_window_normalised(raw: str, expected: str) -> None:
    assert MatchRules.model_validate({"time_window": raw}).time_window == expected


def test_parse_time_window_minutes() -> None:
    assert parse_time_window("18:00-21:30") == (1080, 1290)
    assert parse_time_window("22:00-01:30") == (1320, 90)


def test_texts_are_nfc_normalised() -> None:
    decomposed = "и\u0306"  # "й" as two code points
    rules = MatchRules.model_validate({"keywords": [decomposed], "exact": [decomposed]})
    assert rules.keywords == ["й"] and rules.exact == ["й"]


def test_hosts_and_sources_are_stripped() -> None:
    rules = MatchRules.model_validate({"hosts": [" T@uni.example "], "sources": [" zoom "]})
    assert rules.hosts == ["T@uni.example"]
    assert rules.sources == ["zoom"]


@pytest.mark.parametrize(
    ("rules", "empty"),
    [
        ({}, True),
        ({"case_sensitive": True}, True),
        ({"keywords": ["a"]}, False),
        ({"all_keywords": ["a"]}, False),
        ({"exact": ["a"]}, False),
        ({"regex": ["a"]}, False),
        ({"sources": ["zoom"]}, False),
        ({"zoom_meeting_ids": [1]}, False),
        ({"hosts": ["a@b"]}, False),
        ({"weekdays": ["mon"]}, False),
        ({"time_window": "10:00-11:00"}, False),
    ],
)
def test_is_empty(rules: dict[str, Any], empty: bool) -> None:
    assert MatchRules.model_validate(rules).is_empty() is empty


@pytest.mark.parametrize("name", ["time-series", "ТС-2024", "a", "a.b_c-d", "A1", "x" * 64])
def test_good_names(name: str) -> None:
    assert check_name(name) == name


# --------------------------------------------------------------- errors

BAD: list[tuple[str, str]] = [
    # (file text, the exact one-line message after "bad.toml: ")
    ('name = "x"\nordr = 1', "unknown key 'ordr' (did you mean 'order'?)"),
    ('name = "x"\nkeywords = ["a"]', "unknown key 'keywords' (it belongs under [match])"),
    (
        'name = "x"\n[match]\nkeywordz = ["a"]',
        "unknown key 'match.keywordz' (did you mean 'keywords'?)",
    ),
    (
        'name = "x"\n[blank]\nmin_size = 1',
        "unknown key 'blank.min_size' (did you mean 'min_size_mb'?)",
    ),
    ('name = "x"\n[match]\nzzz = 1', "unknown key 'match.zzz'"),
    ('name = "x"\n[match.sub]\nx = 1', "unknown key 'match.sub'"),
    ("order = 1", "missing required key 'name'"),
    ('name = ""', "name: must be 1-64 characters"),
    (f'name = "{"x" * 65}"', "name: must be 1-64 characters"),
    (
        'name = "time series"',
        "name: 'time series' may contain only letters, digits, '-', '_' and '.', "
        "and must start with a letter or digit",
    ),
    (
        'name = "-x"',
        "name: '-x' may contain only letters, digits, '-', '_' and '.', "
        "and must start with a letter or digit",
    ),
    ("name = 5", "name: expected a string, got integer 5"),
    ('name = "x"\norder = "10"', "order: expected an integer, got string '10'"),
    ('name = "x"\norder = 1.5', "order: expected an integer, got float 1.5"),
    ('name = "x"\norder = 99999999999', "order: must be less than or equal to 1000000"),
    ('name = "x"\nenabled = "yes"', "enabled: expected true or false, got string 'yes'"),
    ('name = "x"\nmatch = 5', "match: expected a table, got integer 5"),
    ('name = "x"\nprocessing = []', "processing: expected a table, got array []"),
    (
        'name = "x"\n[match]\nkeywords = "abc"',
        "match.keywords: expected an array, got string 'abc'",
    ),
    (
        'name = "x"\n[match]\nkeywords = ["a", 5]',
        "match.keywords[1]: expected a string, got integer 5",
    ),
    ('name = "x"\n[match]\nkeywords = ["a", ""]', "match.keywords: empty strings are not allowed"),
    ('name = "x"\n[match]\nexact = ["  "]', "match.exact: empty strings are not allowed"),
    ('name = "x"\n[match]\nregex = [""]', "match.regex: empty strings are not allowed"),
    (
        'name = "x"\n[match]\nregex = ["ok", "("]',
        "match.regex: invalid pattern '(': missing ) at position 1",
    ),
    (
        "name = \"x\"\n[match]\nregex = ['^ТС-[']",
        "match.regex: invalid pattern '^ТС-[': unterminated character set at position 5",
    ),
    (
        'name = "x"\n[match]\ncase_sensitive = 1',
        "match.case_sensitive: expected true or false, got integer 1",
    ),
    (
        'name = "x"\n[match]\ntime_window = "18:00-18:00"',
        "match.time_window: '18:00-18:00' starts and ends at the same time; "
        "remove time_window to match any time",
    ),
    (
        'name = "x"\n[match]\ntime_window = "25:00-26:00"',
        "match.time_window: '25:00-26:00' has an invalid time (use 24-hour HH:MM)",
    ),
    (
        'name = "x"\n[match]\ntime_window = "18:60-19:00"',
        "match.time_window: '18:60-19:00' has an invalid time (use 24-hour HH:MM)",
    ),
    (
        'name = "x"\n[match]\ntime_window = "6pm-9pm"',
        "match.time_window: '6pm-9pm' is not a time window like '18:00-21:30'",
    ),
    (
        'name = "x"\n[match]\ntime_window = 18',
        "match.time_window: expected a string, got integer 18",
    ),
    (
        'name = "x"\n[match]\nweekdays = ["mon", "funday"]',
        "match.weekdays: 'funday' is not a weekday (use mon, tue, wed, thu, fri, sat, sun)",
    ),
    (
        'name = "x"\n[match]\nzoom_meeting_ids = ["812 34x"]',
        "match.zoom_meeting_ids: '812 34x' is not a Zoom meeting id (digits, e.g. 81234567890)",
    ),
    (
        'name = "x"\n[match]\nzoom_meeting_ids = [true]',
        "match.zoom_meeting_ids: true is not a Zoom meeting id (digits, e.g. 81234567890)",
    ),
    (
        'name = "x"\n[match]\nzoom_meeting_ids = [-5]',
        "match.zoom_meeting_ids: -5 is not a Zoom meeting id (digits, e.g. 81234567890)",
    ),
    (
        'name = "x"\n[match]\nzoom_meeting_ids = 812',
        "match.zoom_meeting_ids: expected an array, got integer 812",
    ),
    ('name = "x"\n[match]\nhosts = ["teacher"]', "match.hosts: 'teacher' is not an email address"),
    (
        'name = "x"\n[blank]\nmin_size_mb = -1',
        "blank.min_size_mb: must be greater than or equal to 0",
    ),
    (
        'name = "x"\n[blank]\nmin_duration_minutes = -0.5',
        "blank.min_duration_minutes: must be greater than or equal to 0",
    ),
    ('name = "x"\n[blank]\nmin_size_mb = nan', "blank.min_size_mb: must be a finite number"),
    ('name = "x"\n[blank]\nmin_size_mb = inf', "blank.min_size_mb: must be a finite number"),
    (
        'name = "x"\n[blank]\nmin_size_mb = true',
        "blank.min_size_mb: expected a number, got boolean True",
    ),
    (
        'name = "x"\n[blank]\nmin_size_mb = "25"',
        "blank.min_size_mb: expected a number, got string '25'",
    ),
    ('name = "x"\npresets = ["a", "b", "a"]', "presets: preset 'a' is listed twice"),
    ('name = "x"\npresets = [""]', "presets: empty strings are not allowed"),
    ('name = "x"\npresets = "a"', "presets: expected an array, got string 'a'"),
    (
        'name = "x"\n[processing]\ntrim = { accurate = nan }',
        "processing.trim.accurate: nan is not allowed; use a finite number",
    ),
    (
        'name = "x"\npresets = ["b"]\n[metadata]\npresets = ["a"]',
        "metadata.presets: presets is a top-level key; write it once, before the first [table]",
    ),
    (
        'name = "x"\n[match]\npresets = ["a"]\n[metadata]\npresets = ["b"]',
        "unknown key 'match.presets' "
        "(presets is a top-level key; write it once, before the first [table]) (and 1 more)",
    ),
    ('name = "x"\nname = "y"', "malformed TOML: Cannot overwrite a value"),
    ('name = "x"\n[match]\nkeywords = [\n"a"', "malformed TOML: "),
    ('name = "x"\n[match]\nkeywords = [\n', "malformed TOML: "),
    ('name = "x\n', "malformed TOML: "),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m[:40] for _, m in BAD])
def test_bad_input_is_one_line_naming_file_and_key(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_template(text, origin="bad.toml")
    got = info.value.message
    assert "\n" not in got
    assert got.startswith("bad.toml: ")
    if message.startswith("malformed TOML: "):  # the rest is tomllib's wording and position
        assert got.startswith(f"bad.toml: {message}")
        assert "(at line " in got or "(at end of document)" in got
    else:
        assert got == f"bad.toml: {message}"
    assert "pydantic" not in got and "Input should" not in got


def test_malformed_toml_gives_line_and_column() -> None:
    with pytest.raises(UsageError) as info:
        parse_template('name = "x"\n\n[match]\nkeywords = \n', origin="t.toml")
    assert info.value.message == "t.toml: malformed TOML: Invalid value (at line 4, column 12)"


def test_several_problems_report_the_first_and_a_count() -> None:
    with pytest.raises(UsageError) as info:
        parse_template('name = ""\norder = "x"\nenabled = 3', origin="t.toml")
    assert info.value.message == "t.toml: name: must be 1-64 characters (and 2 more)"


def test_usage_error_exit_code() -> None:
    with pytest.raises(UsageError) as info:
        parse_template("", origin="t.toml")
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "x", "processing": {"a": None}}, "processing.a: null is not allowed"),
        ({"name": "x", "metadata": {"tags": ["a", None]}}, "metadata.tags[1]: null is not allowed"),
        ({"name": "x", "processing": {"a": {1: "b"}}}, "processing.a: keys must be strings"),
        ({"name": "x", "processing": {"a": object()}}, "processing.a: unsupported value"),
        ({"name": "x", "match": {"keywordz": []}}, "unknown key 'match.keywordz'"),
        ({"name": "x", "processing": {"presets": []}}, "processing.presets: presets is a top"),
        ({"name": "x", "match": {"regex": ["("]}}, "match.regex: invalid pattern '('"),
    ],
)
def test_spec_from_dict_errors(data: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError) as info:
        spec_from_dict(data, origin="template 'x'")
    assert info.value.message.startswith(f"template 'x': {message}")
    assert "\n" not in info.value.message


def test_spec_from_dict_rejects_non_mapping() -> None:
    with pytest.raises(UsageError, match=r"^db: expected a table of template keys$"):
        spec_from_dict([], origin="db")  # type: ignore[arg-type]


def test_spec_from_dict_matches_parse_template() -> None:
    text = 'name = "x"\norder = 5\n[match]\nkeywords = ["a"]\nzoom_meeting_ids = ["1 2"]\n'
    assert spec_from_dict(tomllib.loads(text), origin="db") == parse_template(text, origin="f")


def test_toml_dates_in_free_form_sections_become_iso_text() -> None:
    spec = parse_template(
        'name = "x"\n[metadata]\npublish_at = 2025-03-01T10:00:00+03:00\n',
        origin="t.toml",
    )
    assert spec.metadata == {"publish_at": "2025-03-01T10:00:00+03:00"}


def test_stored_json_shapes_validate() -> None:
    # What the templates service writes with model_dump must read back unchanged.
    rules = MatchRules.model_validate(
        {"zoom_meeting_ids": ["812 3456 7890"], "weekdays": ["Thursday"], "keywords": ["a"]}
    )
    assert MatchRules.model_validate(rules.model_dump(exclude_defaults=True)) == rules
    blank = BlankRules.model_validate({"min_size_mb": 25})
    assert BlankRules.model_validate(blank.model_dump(exclude_none=True)) == blank


# --------------------------------------------------------------- export

ROUND_TRIP: list[TemplateSpec] = [
    TemplateSpec(name="x"),
    TemplateSpec(name="off", order=-5, enabled=False),
    parse_template(DOC_EXAMPLE, origin="doc"),
    TemplateSpec.model_validate(
        {
            "name": "ТС-лекции",
            "order": 7,
            "match": {
                "keywords": ['кавычки " и \\ обратный слэш', "ёлка"],
                "all_keywords": ["ml", "lecture"],
                "exact": ["Анализ  временных рядов"],
                "regex": [r"^ТС-\d+\s*\(", r"\bлекция\b", r"C:\\path", "'single'"],
                "sources": ["zoom", "my-folder"],
                "zoom_meeting_ids": ["812 3456 7890", "0123", "123456789012345678901"],
                "hosts": ["Teacher@Uni.Example"],
                "weekdays": ["sunday", "mon"],
                "time_window": "22:00-01:30",
                "case_sensitive": True,
            },
            "blank": {"min_duration_minutes": 2.5, "min_size_mb": 0},
            "processing": {
                "stages": ["download", "trim"],
                "trim": {"enabled": True, "accurate": False, "pad_s": 1.5},
                "glossary": ["Бокс–Дженкинс"],
                "cleanup": {},
                "download": {"prefer": ["speaker_view", "audio_only"]},
            },
            "metadata": {
                "title": "{display_name} — {record_time:DD.MM.YYYY}",
                "description": "line 1\nline 2\ttab",
            },
            "presets": ["youtube-unlisted", "vk-public"],
        }
    ),
    TemplateSpec.model_validate({"name": "b", "blank": {"min_size_mb": 25}}),
    TemplateSpec.model_validate({"name": "w", "match": {"time_window": "00:00-06:00"}}),
]


@pytest.mark.parametrize("spec", ROUND_TRIP, ids=[s.name for s in ROUND_TRIP])
def test_to_toml_round_trips(spec: TemplateSpec) -> None:
    text = to_toml(spec)
    assert parse_template(text, origin="export.toml") == spec
    assert to_toml(parse_template(text, origin="export.toml")) == text


def test_to_toml_layout_and_omissions() -> None:
    spec = TemplateSpec.model_validate(
        {
            "name": "ts",
            "order": 10,
            "match": {"keywords": ["a"], "zoom_meeting_ids": ["812 3456 7890"]},
            "metadata": {"title": "t"},
            "presets": ["p"],
        }
    )
    text = to_toml(spec)
    lines = [line for line in text.splitlines() if line and not line.startswith(" ")]
    assert lines == [
        'name = "ts"',
        "order = 10",
        "enabled = true",
        "presets = [",
        "]",
        "[match]",
        "keywords = [",
        "]",
        "zoom_meeting_ids = [",
        "]",
        "[metadata]",
        'title = "t"',
    ]
    assert "81234567890," in text  # written as a number, like the documented example
    for absent in ("[blank]", "[processing]", "case_sensitive", "regex", "time_window"):
        assert absent not in text


def test_to_toml_writes_integral_thresholds_as_integers() -> None:
    text = to_toml(TemplateSpec.model_validate({"name": "b", "blank": {"min_size_mb": 25}}))
    assert "min_size_mb = 25\n" in text


@pytest.mark.parametrize(
    ("metadata", "needle"),
    [
        ('title = "{bogus}"', "unknown variable {bogus} in t.toml: metadata.title"),
        ('description = "{record_time:XX}"', "bad time format {record_time:XX}"),
        ('title = "{title:DD}"', "{title} in t.toml: metadata.title takes no format"),
        ('tags = ["ok", "{nope}"]', "unknown variable {nope} in t.toml: metadata.tags"),
        ('topics_display = "fancy"', "metadata.topics_display: 'fancy' is not one of"),
        ('thumbnail = "../other/x.png"', "metadata.thumbnail '../other/x.png'"),
    ],
)
def test_metadata_templates_are_checked_when_the_template_is_saved(
    metadata: str, needle: str
) -> None:
    text = f'name = "t"\n[match]\nkeywords = ["a"]\n[metadata]\n{metadata}\n'
    with pytest.raises(UsageError) as err:
        parse_template(text, origin="t.toml")
    assert needle in err.value.message


def test_valid_metadata_templates_pass() -> None:
    text = (
        'name = "t"\n[match]\nkeywords = ["a"]\n[metadata]\n'
        'title = "{display_name} — {record_time:DD.MM.YYYY}"\n'
        'description = "{themes}\\n\\n{topics}"\ntopics_display = "chapters"\n'
        'thumbnail = "thumbnails/x.png"\ntags = ["{template}"]\n'
    )
    assert parse_template(text, origin="t.toml").metadata["topics_display"] == "chapters"


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ('"tomorrow"', "is not an ISO 8601 time"),
        ('"2026-05-01T18:00:00"', "needs a UTC offset"),
        ("2026-05-01T18:00:00", "needs a UTC offset"),  # a TOML local datetime, unquoted
    ],
)
def test_publish_at_is_checked_when_saved(value: str, needle: str) -> None:
    text = f'name = "t"\n[match]\nkeywords = ["a"]\n[metadata]\npublish_at = {value}\n'
    with pytest.raises(UsageError) as err:
        parse_template(text, origin="t.toml")
    assert "metadata.publish_at" in err.value.message and needle in err.value.message


def test_a_toml_datetime_with_an_offset_is_a_valid_publish_at() -> None:
    text = 'name = "t"\n[match]\nkeywords = ["a"]\n[metadata]\npublish_at = 2026-05-01T18:00:00Z\n'
    assert parse_template(text, origin="t.toml").metadata["publish_at"].startswith("2026-05-01T18")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ('stages = ["download", "fly"]', "processing.stages: unknown stage 'fly'"),
        ("stages = []", "processing.stages: a non-empty list"),
        ("trim = { pad_s = -1 }", "processing.trim.pad_s: -1 is out of range"),
        ("trim = { pad_s = inf }", "processing.trim.pad_s: inf is not allowed"),
        ('trim = { pad_s = "1" }', "processing.trim.pad_s: expected a number"),
        ('transcription = { provider = "whisperx" }', "processing.transcription.provider:"),
        ('topics = { provider = "gpt" }', "processing.topics.provider:"),
        ("retries = { max_attempts = 99999999999 }", "processing.retries.max_attempts:"),
        ("trim = 1", "processing.trim: expected a table"),
        ("colour = 1", "processing.colour: unknown processing setting"),
        ("trim = { bogus = 1 }", "processing.trim.bogus: unknown processing setting"),
        ("language = 5", "processing.language: 5 is not a language code"),
    ],
)
def test_processing_section_is_checked_key_by_key(body: str, fragment: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_template(f'name = "x"\n[processing]\n{body}\n', origin="t.toml")
    assert info.value.message == f"t.toml: {fragment}" or fragment in info.value.message


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ('[metadata]\nprivacy = "secret"', "metadata.privacy: 'secret' is not one of"),
        ('[metadata]\ncolour = "red"', "metadata.colour: unknown key"),
        ("[metadata]\nmade_for_kids = 1", "metadata.made_for_kids: expected true or false"),
        ('[match]\nkeywords = ["a\\u0000"]', "the NUL character"),
        ("[metadata]\ntitle = 99999999999999999999", "is out of range"),
    ],
)
def test_metadata_and_text_are_checked(body: str, fragment: str) -> None:
    with pytest.raises(UsageError, match=re.escape(fragment)):
        parse_template(f'name = "x"\n{body}\n', origin="t.toml")


def test_deep_nesting_is_a_usage_error() -> None:
    for body in (
        "a = " + "[" * 5000 + "]" * 5000,
        "[processing]\ntrim = " + "{a = " * 40 + "1" + "}" * 40,
    ):
        with pytest.raises(UsageError, match="nested"):
            parse_template(f'name = "x"\n{body}\n', origin="t.toml")
