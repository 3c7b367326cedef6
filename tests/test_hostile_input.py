"""No hostile input ever crashes LEAP (issue 10): random and hostile values fed to every file
format LEAP reads and to the CLI's numeric and date options end in a documented exit code and
one line on stderr, never "internal error" and never a traceback.

The CLI runs in-process (fast); each property builds one install and feeds it many examples.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leap.errors import UsageError
from leap.specs.processing import check_processing, set_override
from tests.conftest import CliResult

HOSTILE = settings(
    max_examples=40,
    deadline=None,
    # The install (fixtures) is built once per test and shared by its examples on purpose.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Values a hostile or careless file may hold: huge and negative numbers, inf/nan, control
# characters, wrong types, and nesting.
_scalars = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63, 2**63 - 1, -(2**63) - 1, 0, -1, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.inf, -math.inf, math.nan, -0.0, 1e308, -1e-308]),
    st.booleans(),
    st.text(max_size=30),
    st.sampled_from(["", "\x00", "a\nb", "\x1b[31m", "\u2028", "../../etc", "inf", "nan", "-1"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _key(known: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(known), st.text(min_size=1, max_size=12))


def _table(known: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(_key(known), _values, max_size=4)


def _toml(doc: dict[str, Any]) -> bytes:
    try:
        return tomli_w.dumps(doc).encode()
    except (TypeError, ValueError):  # TOML cannot hold some shapes (e.g. mixed nesting)
        return b'name = "x"\n'


def _deep(kind: str, levels: int) -> bytes:
    if kind == "toml-array":
        return f'name = "x"\na = {"[" * levels}{"]" * levels}\n'.encode()
    if kind == "toml-table":
        return f'name = "x"\na = {"{b = " * levels}1{"}" * levels}\n'.encode()
    return ("[" * levels + "]" * levels).encode()


# Whole files: random bytes (mostly not UTF-8), control characters, deep nesting, or a
# structured document of hostile values under the format's real keys.
def _files(known: dict[str, list[str]], fmt: str) -> st.SearchStrategy[bytes]:
    top = list(known)
    doc = st.fixed_dictionaries(
        {},
        optional={k: (_table(v) if v else _values) for k, v in known.items()},
    ).flatmap(lambda d: st.dictionaries(_key(top), _values, max_size=2).map(lambda e: {**e, **d}))
    encoded = doc.map(_toml) if fmt == "toml" else doc.map(_json_bytes)
    return st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.sampled_from(["toml-array", "toml-table", "json"]).flatmap(
            lambda k: st.sampled_from([100, 1000, 5000]).map(lambda n: _deep(k, n))
        ),
        encoded,
    )


def _json_bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, allow_nan=True).encode()


def check(res: CliResult, allowed: set[int]) -> None:
    lines = res.stderr.strip().splitlines()
    assert "internal error" not in res.stderr, res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    assert res.code in allowed, (res.code, res.stderr)
    assert len(lines) <= 1, res.stderr
    if res.code != 0:
        assert len(lines) == 1, res.stderr


@pytest.fixture
def installed(leap_env: dict[str, str], cli: Any) -> Any:
    assert cli("init", "--admin", "root", "--yes").code == 0
    return cli


TEMPLATE_KEYS: dict[str, list[str]] = {
    "name": [],
    "order": [],
    "enabled": [],
    "presets": [],
    "match": ["keywords", "regex", "zoom_meeting_ids", "hosts", "weekdays", "time_window"],
    "blank": ["min_duration_minutes", "min_size_mb"],
    "processing": ["stages", "language", "trim", "transcription", "topics", "retries"],
    "metadata": ["title", "privacy", "category_id", "made_for_kids", "license", "tags"],
}
PRESET_KEYS: dict[str, list[str]] = {
    "name": [],
    "platform": [],
    "credential": [],
    "metadata": [
        "privacy",
        "category_id",
        "made_for_kids",
        "embeddable",
        "license",
        "captions",
        "default_language",
        "group_id",
        "privacy_view",
        "wallpost",
        "path",
        "publish_at",
    ],
}
CREDENTIAL_KEYS: dict[str, list[str]] = {
    k: []
    for k in (
        "account_id",
        "client_id",
        "client_secret",
        "refresh_token",
        "access_token",
        "expires_at",
        "expires_in",
        "api_key",
        "scopes",
        "user_id",
    )
}
KINDS = ["zoom-s2s", "zoom-oauth", "youtube", "vk", "fireworks", "openai", "llm"]


@HOSTILE
@given(data=_files(TEMPLATE_KEYS, "toml"))
def test_template_files(installed: Any, tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "t.toml"
    path.write_bytes(data)
    check(installed("template", "add", "--file", str(path)), {0, 2, 3, 7})


@HOSTILE
@given(data=_files(PRESET_KEYS, "toml"))
def test_preset_files(installed: Any, tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "p.toml"
    path.write_bytes(data)
    check(installed("preset", "add", "--file", str(path)), {0, 2, 3, 7})


@HOSTILE
@given(kind=st.sampled_from(KINDS), data=_files(CREDENTIAL_KEYS, "json"), n=st.integers(0, 10**6))
def test_credential_files(installed: Any, tmp_path: Path, kind: str, data: bytes, n: int) -> None:
    path = tmp_path / "c.json"
    path.write_bytes(data)
    check(installed("credentials", "add", kind, f"c{n}", "--from-file", str(path)), {0, 2, 7})


@HOSTILE
@given(
    data=_files(
        {
            "data_dir": [],
            "worker": ["count", "heartbeat_seconds"],
            "queue": ["max_delay", "backend"],
            "sync": ["initial_days"],
            "defaults": ["language", "timezone", "blank_min_size_mb"],
            "youtube": ["costs", "daily_units"],
            "paths": ["roots"],
        },
        "toml",
    )
)
def test_settings_files(
    leap_env: dict[str, str], cli: Any, monkeypatch: pytest.MonkeyPatch, data: bytes
) -> None:
    Path(leap_env["LEAP_CONFIG"]).write_bytes(data)
    # Settings alone: `init` would create what the file names; `whoami` reads it and the DB.
    check(cli("whoami"), {0, 3, 6})


_ENV_NAMES = st.one_of(
    st.sampled_from(
        [
            "WORKER__COUNT",
            "WORKER__HEARTBEAT_SECONDS",
            "QUEUE__MAX_DELAY",
            "YOUTUBE__COSTS",
            "SYNC__INITIAL_DAYS",
            "DEFAULTS__LANGUAGE",
            "WORKER",
            "WORKERS__COUNT",
            "WORKER__COUNTS",
            "PATHS__ROOTS",
            "LOG__LEVEL",
        ]
    ),
    st.from_regex(r"[A-Z_]{1,12}(__[A-Z_]{1,12})?", fullmatch=True),
)
_ENV_VALUES = st.one_of(
    st.sampled_from(
        [
            "inf",
            "nan",
            "-inf",
            "-1",
            "1e400",
            "99999999999999999999",
            "[",
            "{}",
            '{"a": 1}',
            "[[[[[[[[[[]]]]]]]]]]" * 50,
            "true",
        ]
    ),
    st.text(alphabet=st.characters(blacklist_characters="\x00", codec="utf-8"), max_size=20),
)


@HOSTILE
@given(name=_ENV_NAMES, value=_ENV_VALUES)
def test_environment(
    leap_env: dict[str, str], cli: Any, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    with monkeypatch.context() as m:
        m.setenv(f"LEAP_{name}", value)
        check(cli("whoami"), {0, 3, 6})


_NUMBERS = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.sampled_from(
        [
            "0",
            "-0",
            "00",
            str(2**63),
            str(2**63 - 1),
            str(2**31),  # past PostgreSQL's INTEGER ids
            str(2**31 - 1),
            "9" * 5000,
            "1e3",
            "0x10",
            "١٢",
            "",
            " ",
            "\x1b",
            "inf",
            "nan",
            "1.5",
        ]
    ),
    st.text(max_size=10),
)
_DATES = st.one_of(
    st.sampled_from(
        [
            "99999-01-01",
            "10000000d",
            "0000-01-01",
            "9999-12-31",
            "0001-01-01",
            "2024-02-30",
            "7d",
            "0d",
            "999999999d",
            "2w",
            "5h",
            "",
            "-1d",
            "٣d",
            "2024-01-01T00:00",
            "2024W01",
        ]
    ),
    st.from_regex(r"[0-9]{1,12}[dhw]", fullmatch=True),
    st.dates().map(str),
    st.text(max_size=12),
)


_ID_COMMANDS = [
    ("recordings", "show", "--", "{}"),
    ("transcript", "show", "--", "{}"),
    ("status", "--", "{}"),
    ("cancel", "--", "{}"),
    ("recordings", "config", "--", "{}"),
    ("recordings", "list", "--limit={}"),
    ("recordings", "list", "--offset={}"),
]
_DATE_COMMANDS = [
    ("recordings", "list", "--from={}"),
    ("recordings", "list", "--to={}"),
    ("retry", "--failed", "--since={}"),
    ("template", "test", "--file", "/dev/null", "--last={}"),
]


@HOSTILE
@given(command=st.sampled_from(_ID_COMMANDS), value=_NUMBERS)
def test_ids_and_counts(installed: Any, command: tuple[str, ...], value: str) -> None:
    check(installed(*(a.replace("{}", value) for a in command)), {0, 2, 3})


@HOSTILE
@given(command=st.sampled_from(_DATE_COMMANDS), value=_DATES)
def test_dates(installed: Any, command: tuple[str, ...], value: str) -> None:
    check(installed(*(a.replace("{}", value) for a in command)), {0, 2, 3})


@HOSTILE
@given(
    key=st.one_of(
        st.sampled_from(
            [
                "trim.pad_s",
                "trim.noise_db",
                "stages",
                "language",
                "transcription.provider",
                "retries.max_attempts",
                "topics.max_topics",
                "trim",
                "glossary",
                "trim.start",
            ]
        ),
        st.text(max_size=10),
    ),
    value=st.one_of(_ENV_VALUES, _NUMBERS),
)
def test_recording_config_set(key: str, value: str) -> None:
    """`recordings config ID --set KEY=VALUE`: refused with a UsageError naming the key, or
    stored as a value the pipeline can use (it passes the same check a template's does)."""
    try:
        out = set_override({}, f"{key}={value}")
    except UsageError as exc:
        assert "\n" not in exc.message
        return
    check_processing(out, "--set")


# ---------------------------------------------------------------- the cases found, by name


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (("recordings", "show", "99999999999999999999"), 3, "recording 99999999999999999999 not"),
        (("recordings", "show", "abc"), 2, "'abc' is not a recording id"),
        (("transcript", "show", "99999999999999999999"), 3, "not found"),
        (("topics", "show", "99999999999999999999"), 3, "not found"),
        (("status", "99999999999999999999"), 3, "not found"),
        (("cancel", "99999999999999999999"), 3, "not found"),
        (("process", "99999999999999999999"), 3, "not found"),
        (("recordings", "show", str(2**31)), 3, "not found"),  # past PostgreSQL's INTEGER
        (("recordings", "list", "--limit", "99999999999999999999"), 2, "--limit:"),
        (("recordings", "list", "--limit", "0"), 2, "--limit:"),
        (("recordings", "list", "--offset", "99999999999999999999"), 2, "--offset:"),
        (("recordings", "list", "--from", "99999-01-01"), 2, "--from:"),
        (("recordings", "list", "--from", "10000000d"), 2, "--from: '10000000d' is out of range"),
        (("recordings", "list", "--to", "9999-12-31"), 2, "--to:"),
        (("recordings", "list", "--from", ""), 2, "--from:"),
        (("retry", "--failed", "--since", "999999999w"), 2, "--since:"),
        (("template", "test", "--file", "/dev/null", "--last", "9999999999d"), 2, "--last:"),
        (("process", "1", "--stages", ""), 2, "--stages: a non-empty list"),
        (("process", "1", "--stages", "fly"), 2, "--stages: unknown stage 'fly'"),
        (("template", "add", "--file", "/dev/zero"), 2, "larger than"),
        (("preset", "add", "--file", "/dev/zero"), 2, "larger than"),
        (("credentials", "add", "llm", "k", "--from-file", "/dev/zero"), 2, "larger than"),
    ],
)
def test_hostile_cli_values(
    installed: Any, args: tuple[str, ...], code: int, fragment: str
) -> None:
    res = installed(*args)
    check(res, {code})
    assert fragment in res.stderr, res.stderr


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"\xff\xfe{}", "not UTF-8 text"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"api_key": NaN}', "NaN is not a JSON number"),
        (
            b'{"client_id": "b", "client_secret": "c", "refresh_token": "r", "expires_at": 1e300}',
            "expires_at: expected seconds",
        ),
        (
            b'{"client_id": "b", "client_secret": "c", "refresh_token": "r", "expires_in": "abc"}',
            "expires_in: expected seconds",
        ),
    ],
)
def test_hostile_credential_files(
    installed: Any, tmp_path: Path, content: bytes, fragment: str
) -> None:
    path = tmp_path / "c.json"
    path.write_bytes(content)
    res = installed("credentials", "add", "zoom-oauth", "z", "--from-file", str(path))
    check(res, {2})
    assert fragment in res.stderr, res.stderr


def test_template_file_errors_quoting_control_characters_stay_one_line(
    installed: Any, tmp_path: Path
) -> None:
    path = tmp_path / "t.toml"
    path.write_text('name = "x"\n"bad\\nkey" = 1\n')
    res = installed("template", "add", "--file", str(path))
    check(res, {2})
    assert "bad\\nkey" in res.stderr
