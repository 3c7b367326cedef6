"""The one rule for a filesystem path a user gives LEAP (a local source, an export folder, a
thumbnail): resolved, symlinks included, it must lie under a root an admin allowed that user,
and never inside LEAP's own directories except the user's own folders there. Files are opened
without following symlinks and checked at the moment they are read or written, not only when
the path was saved: a file swapped for a symlink after sync is refused. See docs/paths.md.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from leap.errors import NotFound, UsageError

IMPORTS = "imports"
EXPORTS = "exports"

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
# Opening a FIFO for reading blocks until a writer comes: a FIFO swapped in for a media file
# must be refused by the type check after open, not hang the worker in open().
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def real(path: str | Path) -> Path:
    """`path` with `~` expanded and every symlink resolved (a missing tail is kept as is)."""
    return Path(os.path.realpath(Path(path).expanduser()))


def inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def own_folders(data_dir: Path, user_id: int) -> tuple[Path, Path]:
    """The user's own import and export folders inside the data directory."""
    return data_dir / IMPORTS / f"user_{user_id}", data_dir / EXPORTS / f"user_{user_id}"


@dataclass(frozen=True)
class PathPolicy:
    """Where one user may read and write. Every path in it is already resolved."""

    user: str
    # None: anywhere outside `private` (an admin with no roots of their own).
    roots: tuple[Path, ...] | None
    own: tuple[Path, ...]
    # LEAP's data and media directories and its files (database, queue, key, config).
    private: tuple[Path, ...]

    @classmethod
    def build(
        cls,
        *,
        user: str,
        user_id: int,
        is_admin: bool,
        user_roots: Sequence[str] | None,
        install_roots: Sequence[str],
        data_dir: Path,
        private: Sequence[Path],
    ) -> PathPolicy:
        roots: tuple[Path, ...] | None
        if user_roots is not None:
            roots = tuple(real(r) for r in user_roots) + tuple(real(r) for r in install_roots)
        elif is_admin:
            roots = None
        else:
            roots = tuple(real(r) for r in install_roots)
        return cls(
            user=user,
            roots=roots,
            own=tuple(real(p) for p in own_folders(data_dir, user_id)),
            private=tuple(dict.fromkeys(real(p) for p in (data_dir, *private))),
        )

    def check(self, path: str | Path, *, what: str, also: Sequence[Path] = ()) -> Path:
        """The resolved `path`, or UsageError naming `what` and why it may not be used.

        `also`: folders allowed for this use even inside LEAP's directories (the thumbnail
        folders)."""
        given = Path(path).expanduser()
        if not given.is_absolute():
            raise UsageError(f"{what} {str(path)!r}: give an absolute path")
        resolved = real(given)
        if any(inside(resolved, real(a)) for a in also) or any(
            inside(resolved, o) for o in self.own
        ):
            return resolved
        for zone in self.private:
            if inside(resolved, zone):
                via = "" if resolved == given else f" (it leads to {resolved})"
                raise UsageError(f"{what} {str(path)!r}{via} is inside LEAP's own files ({zone})")
        if self.roots is not None and not any(inside(resolved, r) for r in self.roots):
            allowed = ", ".join(str(p) for p in (*self.own[:1], *self.roots))
            via = "" if resolved == given else f" (it leads to {resolved})"
            raise UsageError(
                f"{what} {str(path)!r}{via} is outside the folders user '{self.user}' may use "
                f"({allowed}); an admin can allow more with 'leap user set-roots'"
            )
        return resolved

    def check_tree(self, path: str | Path, *, what: str) -> Path:
        """A folder read recursively: allowed itself, and not holding LEAP's own files."""
        resolved = self.check(path, what=what)
        for zone in self.private:
            if inside(zone, resolved) and not any(inside(resolved, o) for o in self.own):
                raise UsageError(
                    f"{what} {str(path)!r} contains LEAP's own files ({zone}); "
                    "choose a folder beside them"
                )
        return resolved

    def check_open(self, fd: int, checked: Path, *, what: str, also: Sequence[Path] = ()) -> Path:
        """What the descriptor really is must pass too: a folder on the way may have been
        swapped for a symlink between `check` and `open`."""
        opened = fd_path(fd) or checked
        if opened != checked:
            return self.check(opened, what=what, also=also)
        return checked


def fd_path(fd: int) -> Path | None:
    """The path the kernel holds for an open descriptor (Linux), or None where unknown."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            return Path(f"/proc/self/fd/{fd}").readlink()
    return None


@contextlib.contextmanager
def open_regular(
    policy: PathPolicy, path: str | Path, *, what: str, also: Sequence[Path] = ()
) -> Iterator[tuple[io.FileIO, os.stat_result]]:
    """Open an allowed regular file for reading, without following a symlink swapped in."""
    checked = policy.check(path, what=what, also=also)
    try:
        fd = os.open(checked, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC | _O_NONBLOCK)
    except FileNotFoundError:
        raise NotFound(f"{what} {str(path)!r} is gone") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UsageError(f"{what} {str(path)!r} became a symbolic link; not read") from None
        raise UsageError(f"{what} {str(path)!r}: cannot open: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{what} {str(path)!r} is not a regular file; not read")
        policy.check_open(fd, checked, what=what, also=also)
        if _O_NONBLOCK:
            os.set_blocking(fd, True)
        fh = os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise
    with fh:
        yield fh, st


def open_folder(policy: PathPolicy, path: str | Path, *, what: str) -> int:
    """Create (if needed) and open an allowed folder to write into; the caller closes the fd.

    Files are then written relative to the descriptor, so a folder swapped for a symlink
    after the check cannot redirect them."""
    checked = policy.check(path, what=what)
    try:
        checked.mkdir(parents=True, exist_ok=True)
        fd = os.open(checked, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC)
    except OSError as exc:
        raise UsageError(f"{what} {str(path)!r}: {exc.strerror}") from None
    try:
        policy.check_open(fd, checked, what=what)
    except BaseException:
        os.close(fd)
        raise
    return fd


def replace_into(dir_fd: int, name: str, write: Callable[[BinaryIO], None]) -> None:
    """Write `name` in the folder `dir_fd` through a new temporary file and a rename: the
    rename replaces whatever `name` was (a symlink included) instead of writing through it."""
    tmp = f".{name}.leap-tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp, dir_fd=dir_fd)
    fd = os.open(
        tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, 0o644, dir_fd=dir_fd
    )
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise


def link_or_copy_into(dir_fd: int, name: str, src: BinaryIO, *, chunk: int = 8 << 20) -> None:
    """Put the open file `src` in the folder as `name`: a hard link of exactly that file when
    the filesystem allows (no extra space), else a streamed copy; either way by rename."""
    tmp = f".{name}.leap-tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp, dir_fd=dir_fd)
    fd_link = fd_path(src.fileno())
    if fd_link is not None:
        try:
            # Linking the kernel's own name for the descriptor links the very file we checked.
            os.link(f"/proc/self/fd/{src.fileno()}", tmp, dst_dir_fd=dir_fd, follow_symlinks=True)
        except OSError:
            pass  # another filesystem, or links refused: copy below
        else:
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            return

    def copy(out: BinaryIO) -> None:
        src.seek(0)
        while data := src.read(chunk):
            out.write(data)

    replace_into(dir_fd, name, copy)


def write_bytes_into(dir_fd: int, name: str, data: bytes) -> None:
    def write(out: BinaryIO) -> None:
        out.write(data)

    replace_into(dir_fd, name, write)
