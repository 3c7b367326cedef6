"""Thumbnail lookup: the user's folder first, then the install-wide fallback; absolute paths
as they are; no climbing out with '..'."""

from __future__ import annotations

from pathlib import Path

import pytest

from leap.errors import UsageError
from leap.path_policy import PathPolicy
from leap.specs import thumbnails

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16


@pytest.fixture
def media(tmp_path: Path) -> Path:
    for rel in ("user_1/thumbnails/own.png", "thumbnails/shared.png", "thumbnails/own.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(PNG)
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


def test_locate_returns_images_the_user_may_use(media: Path, tmp_path: Path) -> None:
    data = media  # the media folder lives in the data directory, as by default
    assert (
        thumbnails.locate(media, 1, "own.png", policy=_policy(data))
        == (media / "user_1/thumbnails/own.png").resolve()
    )
    elsewhere = tmp_path.parent / f"{tmp_path.name}-pictures" / "lecture.jpg"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 16)
    assert thumbnails.locate(media, 1, str(elsewhere), policy=_policy(data)) == elsewhere.resolve()


def test_locate_refuses_leaps_own_files_and_other_users(media: Path) -> None:
    (media / "leap.db").write_bytes(PNG)  # even dressed up as an image
    (media / "user_2/thumbnails").mkdir(parents=True)
    (media / "user_2/thumbnails/theirs.png").write_bytes(PNG)
    for name in (str(media / "leap.db"), str(media / "user_2/thumbnails/theirs.png")):
        with pytest.raises(UsageError, match="inside LEAP's own files"):
            thumbnails.locate(media, 1, name, policy=_policy(media))
    link = media / "user_1/thumbnails/sneaky.png"
    link.symlink_to(media / "leap.db")  # a link out of the user's folder does not help
    with pytest.raises(UsageError, match="inside LEAP's own files"):
        thumbnails.locate(media, 1, "sneaky.png", policy=_policy(media))


def test_locate_refuses_what_is_not_an_image(media: Path, tmp_path: Path) -> None:
    secret = tmp_path.parent / f"{tmp_path.name}-etc" / "passwd"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0")
    with pytest.raises(UsageError, match="not a PNG or JPEG"):
        thumbnails.locate(media, 1, str(secret), policy=_policy(media))
    with pytest.raises(UsageError, match="not found"):
        thumbnails.locate(media, 1, "missing.png", policy=_policy(media))


def _policy(data: Path) -> PathPolicy:
    """User 1 as an admin without roots: anywhere but LEAP's own directories."""
    return PathPolicy.build(
        user="u1",
        user_id=1,
        is_admin=True,
        user_roots=None,
        install_roots=[],
        data_dir=data,
        private=[data],
    )
