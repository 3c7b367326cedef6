"""`leap doctor` runs the ffmpeg it reports: a path that exists but is not a working ffmpeg
(/bin/false, a stand-in that prints something else, one that hangs) is a failed check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from leap.errors import ConfigError
from leap.services.doctor import check_ffmpeg


def ffmpeg_check(cli: Any) -> dict[str, Any]:
    res = cli("--json", "doctor")
    [check] = [c for c in res.json() if c["check"] == "ffmpeg"]
    if not check["ok"]:
        assert res.code == 1, res.stderr  # a failed check fails doctor
    return dict(check)


def test_the_real_ffmpeg_passes_with_its_version(leap_env: dict[str, str], cli: Any) -> None:
    check = ffmpeg_check(cli)
    assert check["ok"] and check["detail"].startswith("ffmpeg version"), check


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("/bin/false", "exit code 1"),
        ("/nonexistent/ffmpeg", "is not an executable file"),
        ("/bin/echo", "is not ffmpeg"),  # exits 0, prints its arguments
    ],
)
def test_a_binary_that_is_not_ffmpeg_fails_the_check(
    leap_env: dict[str, str], cli: Any, monkeypatch: pytest.MonkeyPatch, value: str, needle: str
) -> None:
    monkeypatch.setenv("LEAP_FFMPEG", value)
    check = ffmpeg_check(cli)
    assert check["ok"] is False and needle in check["detail"], check
    assert "LEAP_FFMPEG" in check["detail"]


def test_an_ffmpeg_that_hangs_is_cut_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hang = tmp_path / "ffmpeg"
    hang.write_text("#!/bin/sh\nexec sleep 60\n")
    hang.chmod(0o755)
    monkeypatch.setenv("LEAP_FFMPEG", str(hang))
    with pytest.raises(ConfigError, match=r"did not answer within 0\.5 s"):
        check_ffmpeg(timeout=0.5)
