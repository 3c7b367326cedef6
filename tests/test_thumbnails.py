"""Thumbnail lookup: the user's folder first, then the install-wide fallback; absolute paths
as they are; no climbing out with '..'."""

from __future__ import annotations

from pathlib import Path

import pytest

from leap import thumbnails
from leap.errors import UsageError


@pytest.fixture
def media(tmp_path: Path) -> Path:
    for rel in ("user_1/thumbnails/own.png", "thumbnails/shared.png", "thumbnails/own.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"png")
    return tmp_path


def test_the_users_folder_wins_over_the_install_fallback(media: Path) -> None:
    assert thumbnails.find(media, 1, "own.png") == media / "user_1/thumbnails/own.png"
    assert thumbnails.find(media, 2, "own.png") == media / "thumbnails/own.png"


def test_the_fallback_serves_names_the_user_lacks(media: Path) -> None:
    assert thumbnails.find(media, 1, "shared.png") == media / "thumbnails/shared.png"


def test_a_thumbnails_prefix_means_that_folder(media: Path) -> None:
    assert thumbnails.find(media, 1, "thumbnails/own.png") == media / "user_1/thumbnails/own.png"


def test_absolute_and_home_paths_are_taken_as_they_are(media: Path) -> None:
    path = media / "user_1/thumbnails/own.png"
    assert thumbnails.find(media, 2, str(path)) == path
    assert thumbnails.candidates(media, 1, "~/x.png") == [Path("~/x.png").expanduser()]


def test_missing_names_say_where_they_were_looked_for(media: Path) -> None:
    assert thumbnails.find(media, 1, "nope.png") is None
    message = thumbnails.not_found(media, 1, "nope.png")
    assert str(media / "user_1/thumbnails/nope.png") in message
    assert str(media / "thumbnails/nope.png") in message


@pytest.mark.parametrize("name", ["../user_2/thumbnails/own.png", "a/../../x.png", ""])
def test_relative_names_cannot_climb_out(media: Path, name: str) -> None:
    with pytest.raises(UsageError):
        thumbnails.candidates(media, 1, name)
