"""Where the thumbnail named in metadata lives.

An absolute path (or one starting with ~) is used as it is. A relative name, such as
`thumbnails/time-series.png` in a template, is looked up in the user's own folder
`<media>/user_<id>/thumbnails/` first, then in the install-wide `<media>/thumbnails/`, where
an admin keeps the images templates fall back to. Relative names never climb out of those
folders, so one user's metadata cannot point into another user's files.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from leap.errors import UsageError

FOLDER = "thumbnails"


def folders(media_dir: Path, user_id: int) -> list[Path]:
    """The folders a relative name is looked up in, in order."""
    return [media_dir / f"user_{user_id}" / FOLDER, media_dir / FOLDER]


def candidates(media_dir: Path, user_id: int, name: str) -> list[Path]:
    """Every path `name` may mean, in the order they are tried."""
    if name.startswith("~") or Path(name).is_absolute():
        return [Path(name).expanduser()]
    rel = PurePosixPath(name.replace("\\", "/"))
    if ".." in rel.parts or not rel.parts:
        raise UsageError(f"thumbnail {name!r}: a relative name may not contain '..'")
    if rel.parts[0] == FOLDER and len(rel.parts) > 1:
        rel = PurePosixPath(*rel.parts[1:])  # "thumbnails/x.png" means x.png in that folder
    return [folder / rel for folder in folders(media_dir, user_id)]


def find(media_dir: Path, user_id: int, name: str) -> Path | None:
    """The first existing file `name` means, or None."""
    return next((p for p in candidates(media_dir, user_id, name) if p.is_file()), None)


def not_found(media_dir: Path, user_id: int, name: str) -> str:
    looked = ", ".join(str(p) for p in candidates(media_dir, user_id, name))
    return f"thumbnail {name!r} not found (looked in {looked})"
