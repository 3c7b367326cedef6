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
from leap.path_policy import PathPolicy, open_regular, real

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


def locate(media_dir: Path, user_id: int, name: str, *, policy: PathPolicy) -> Path:
    """The thumbnail file for `name`, or UsageError saying why not.

    leapd reads it with the install's rights on behalf of one user, so it must be an image
    (PNG or JPEG) that the user may read (docs/paths.md): inside LEAP's directories only that
    user's own media folder or the shared thumbnails folder, never the database, the key file
    or another user's media; elsewhere only under the user's roots."""
    path = find(media_dir, user_id, name)
    if path is None:
        raise UsageError(not_found(media_dir, user_id, name))
    also = (media_dir / f"user_{user_id}", media_dir / FOLDER)
    with open_regular(policy, path, what=f"thumbnail {name!r}:", also=also) as (fh, _st):
        head = fh.read(8)
    if not head.startswith(IMAGE_MAGIC):
        raise UsageError(f"thumbnail {name!r} is not a PNG or JPEG image")
    return real(path)
