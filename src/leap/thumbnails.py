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


IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")  # PNG, JPEG: what YouTube takes


def find(media_dir: Path, user_id: int, name: str) -> Path | None:
    """The first existing file `name` means, or None."""
    return next((p for p in candidates(media_dir, user_id, name) if p.is_file()), None)


def not_found(media_dir: Path, user_id: int, name: str) -> str:
    looked = ", ".join(str(p) for p in candidates(media_dir, user_id, name))
    return f"thumbnail {name!r} not found (looked in {looked})"


def locate(media_dir: Path, user_id: int, name: str, *, private_dir: Path) -> Path:
    """The thumbnail file for `name`, or UsageError saying why not.

    leapd reads it with the install's rights on behalf of one user, so it must be an image
    (PNG or JPEG) and, inside LEAP's data directory, only in that user's own folder or the
    shared thumbnails folder: never the database, the key file or another user's media."""
    path = find(media_dir, user_id, name)
    if path is None:
        raise UsageError(not_found(media_dir, user_id, name))
    real = path.resolve()
    allowed = [(media_dir / f"user_{user_id}").resolve(), (media_dir / FOLDER).resolve()]
    private = private_dir.resolve()
    inside_private = real == private or private in real.parents
    if inside_private and not any(root == real or root in real.parents for root in allowed):
        raise UsageError(f"thumbnail {name!r} is inside LEAP's data directory; not used")
    with real.open("rb") as fh:
        head = fh.read(8)
    if not head.startswith(IMAGE_MAGIC):
        raise UsageError(f"thumbnail {name!r} is not a PNG or JPEG image")
    return real
