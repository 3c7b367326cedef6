"""The download stage: stream a recording file to disk in constant memory, resume it after an
interruption (Range + If-Range, state in a `.part.json` sidecar), verify it, then publish it
atomically; or take a local file by hard link or streamed copy."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import logging
import os
import re
import shutil
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import httpx

from leap.errors import LeapError, NotFound, StorageError
from leap.providers.http import (
    TRANSIENT_ERRORS,
    PermanentError,
    ResourceNotFound,
    RetryableError,
    RetryPolicy,
    error_excerpt,
    parse_retry_after,
)

__all__ = [
    "DEFAULT_ACCEPT_TYPES",
    "DownloadAuthExpired",
    "DownloadError",
    "DownloadGone",
    "DownloadResult",
    "FreeSpaceFn",
    "InsufficientSpace",
    "NotMedia",
    "ProgressFn",
    "SizeMismatch",
    "copy_local",
    "disk_free",
    "download_http",
    "part_paths",
]

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int | None], None]
FreeSpaceFn = Callable[[Path], int]

MiB = 1 << 20
# Never fill a disk to the last byte: SQLite, logs and ffmpeg's temp files need room too.
SPACE_MARGIN = 64 * MiB
DEFAULT_ACCEPT_TYPES = (
    "video/",
    "audio/",
    "text/vtt",
    "text/plain",
    "application/octet-stream",
    "binary/octet-stream",
    "application/json",
)
_SIDECAR_VERSION = 1
# Filesystems or policies (fs.protected_hardlinks, FAT, some FUSE mounts) that refuse a link.
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    size: int
    resumed_from: int  # bytes already on disk when the successful attempt started
    attempts: int  # requests (or copies) made by this call; 0 when dest was already complete


class DownloadError(PermanentError):
    """The download cannot succeed by retrying now; anything kept on disk is a valid prefix."""


class NotMedia(DownloadError):
    """The server answered with something other than the file (Zoom's HTML page, a JSON error)."""


class SizeMismatch(DownloadError):
    """The file's size differs from the size the provider listed."""


class DownloadGone(ResourceNotFound):
    """404/410: the file no longer exists at the source."""


class DownloadAuthExpired(RetryableError):
    """401 on the download URL: refresh the access token and call again; the .part is kept."""


class InsufficientSpace(LeapError):
    def __init__(self, message: str, *, need: int, free: int, directory: Path) -> None:
        super().__init__(message)
        self.need = need
        self.free = free
        self.directory = directory


class _Restart(Exception):
    """The .part turned out unusable (bad 416, wrong Content-Range start): start again from 0."""


def disk_free(directory: Path) -> int:
    return shutil.disk_usage(directory).free


def part_paths(dest: Path) -> tuple[Path, Path]:
    """Where a download of `dest` keeps its partial bytes and its resume validators."""
    return dest.with_name(dest.name + ".part"), dest.with_name(dest.name + ".part.json")


@dataclass(frozen=True)
class _Validators:
    etag: str | None = None
    last_modified: str | None = None
    total: int | None = None

    def if_range(self) -> str | None:
        # RFC 9110 §13.1.5: If-Range needs a strong validator; a weak ETag never matches.
        if self.etag and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified


def _read_sidecar(path: Path) -> _Validators | None:
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != _SIDECAR_VERSION:
        return None
    etag, modified, total = data.get("etag"), data.get("last_modified"), data.get("total")
    if not (
        isinstance(etag, str | None)
        and isinstance(modified, str | None)
        and (total is None or (isinstance(total, int) and not isinstance(total, bool)))
    ):
        return None
    return _Validators(etag, modified, total)


def _write_sidecar(path: Path, validators: _Validators, source: str) -> None:
    body = {
        "version": _SIDECAR_VERSION,
        "etag": validators.etag,
        "last_modified": validators.last_modified,
        "total": validators.total,
        "source": source,  # for people reading it; never contains a token or signature
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(body), encoding="utf-8")
    tmp.replace(path)


def _discard(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not possible on every platform, and not fatal.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _mb(n: int) -> str:
    return f"{n / MiB:,.0f}"


def _check_space(directory: Path, remaining: int | None, free_space: FreeSpaceFn) -> None:
    rest = max(0, remaining or 0)
    need = rest + max(SPACE_MARGIN, rest // 100)
    free = free_space(directory)
    if free < need:
        raise InsufficientSpace(
            f"not enough disk space: need {_mb(need)} MB, {_mb(free)} MB free on {directory}",
            need=need,
            free=free,
            directory=directory,
        )


def _no_space(exc: OSError, directory: Path, free_space: FreeSpaceFn) -> InsufficientSpace:
    free = free_space(directory)
    return InsufficientSpace(
        f"disk full while writing to {directory} ({_mb(free)} MB free): {exc.strerror}",
        need=0,
        free=free,
        directory=directory,
    )


def _resume_point(part: Path, sidecar: Path, expected_size: int | None) -> tuple[int, _Validators]:
    """How many bytes of the .part can be kept, and the validators they were fetched under."""
    try:
        size = part.stat().st_size
    except FileNotFoundError:
        _discard(sidecar)
        return 0, _Validators()
    validators = _read_sidecar(sidecar)
    total = validators.total if validators else None
    usable = (
        validators is not None
        and size > 0
        # Without a validator or a total nothing ties the bytes to this file: never splice.
        and (validators.if_range() is not None or total is not None)
        and (expected_size is None or size <= expected_size)
        and (total is None or size <= total)
        and (expected_size is None or total is None or total == expected_size)
    )
    if not usable or validators is None:
        _discard(part, sidecar)
        return 0, _Validators()
    return size, validators


def _media_type(response: httpx.Response) -> str:
    value: str = response.headers.get("Content-Type", "")
    return value.split(";", 1)[0].strip().lower()


def _accepts(media_type: str, accept_types: Sequence[str]) -> bool:
    if not media_type:
        return True  # no type at all: nothing says it is not the file; the size check decides
    for pattern in accept_types:
        p = pattern.lower()
        if media_type.startswith(p) if p.endswith("/") else media_type == p:
            return True
    return False


def _classify(response: httpx.Response, provider: str) -> None:
    status = response.status_code
    if status in (200, 206, 416):
        return
    path = response.request.url.path  # never the query: it may hold a token or a signature
    detail = error_excerpt(response) if status >= 400 else ""
    what = f"{provider}: HTTP {status} downloading {path}" + (f": {detail}" if detail else "")
    if status in (408, 429) or status >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), datetime.now(UTC))
        raise RetryableError(what, provider=provider, status=status, retry_after=retry_after)
    if status == 401:
        raise DownloadAuthExpired(
            f"{what} (the access token expired or is invalid; refresh it and retry)",
            provider=provider,
            status=status,
        )
    if status in (404, 410):
        raise DownloadGone(
            f"{what} (the file is gone at the source)", provider=provider, status=status
        )
    raise DownloadError(what, provider=provider, status=status)


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)
_UNSATISFIED = re.compile(r"bytes\s+\*/(\d+)", re.IGNORECASE)


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("Content-Length", "")
    return int(value) if value.isdigit() else None


@dataclass
class _Job:
    http: httpx.Client
    dest: Path
    part: Path
    sidecar: Path
    expected_size: int | None
    accept_types: Sequence[str]
    chunk_size: int
    progress: ProgressFn | None
    provider: str
    free_space: FreeSpaceFn
    source: str

    def attempt(
        self, url: str, auth: dict[str, str], offset: int, known: _Validators
    ) -> tuple[int, int]:
        """One request; returns where its bytes started and the size of the finished .part."""
        headers = {"Accept-Encoding": "identity", **auth}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if (validator := known.if_range()) is not None:
                headers["If-Range"] = validator
        with self.http.stream("GET", url, headers=headers, follow_redirects=True) as response:
            _classify(response, self.provider)
            if response.status_code == 416:
                return offset, self._unsatisfiable(response, offset)
            self._check_body_type(response)
            start, total = self._span(response, offset, known)
            if self.expected_size is not None and total is not None and total != self.expected_size:
                self._mismatch(f"the server has {total} bytes")
            if self.expected_size is None and total is not None:
                _check_space(self.dest.parent, total - start, self.free_space)
            fresh = _Validators(
                response.headers.get("ETag"), response.headers.get("Last-Modified"), total
            )
            if start == 0:
                # Old bytes must never sit under new validators, even after a crash right here.
                _discard(self.part)
            if start == 0 or fresh != known:
                _write_sidecar(self.sidecar, fresh, self.source)
            return start, self._write_body(response, start, total)

    def _unsatisfiable(self, response: httpx.Response, offset: int) -> int:
        match = _UNSATISFIED.fullmatch(response.headers.get("Content-Range", "").strip())
        total = int(match[1]) if match else self.expected_size
        if offset and total is not None and offset == total:
            return offset  # the .part already holds the whole file; a crash hit before the rename
        self._restart(offset, f"HTTP 416 for bytes {offset}- of a {total}-byte file")

    def _check_body_type(self, response: httpx.Response) -> None:
        media = _media_type(response)
        if media in ("text/html", "application/xhtml+xml"):
            raise NotMedia(
                f"{self.provider}: got an HTML page instead of {self.dest.name} (Zoom sends one "
                '"Only the host can download this recording" when the token\'s user may not '
                "download it; check the recording's owner and the download permission)",
                provider=self.provider,
                status=response.status_code,
            )
        if not _accepts(media, self.accept_types):
            raise NotMedia(
                f"{self.provider}: unexpected Content-Type {media!r} for {self.dest.name}; "
                f"expected one of {', '.join(self.accept_types)}",
                provider=self.provider,
                status=response.status_code,
            )
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            # Range offsets and the listed size count encoded bytes; we asked for identity.
            raise NotMedia(
                f"{self.provider}: the server compressed {self.dest.name} ({encoding}) "
                "although LEAP asked for it uncompressed",
                provider=self.provider,
                status=response.status_code,
            )

    def _span(
        self, response: httpx.Response, offset: int, known: _Validators
    ) -> tuple[int, int | None]:
        """Where this body starts in the file and the file's total size, if known."""
        if response.status_code == 200:
            if offset:
                log.info("%s: %s changed or range ignored; starting over", self.provider, self.dest)
            return 0, _content_length(response)
        match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
        if match is None or int(match[1]) != offset:
            got = response.headers.get("Content-Range")
            self._restart(offset, f"asked for bytes {offset}-, got Content-Range {got!r}")
        total = None if match[3] == "*" else int(match[3])
        if known.if_range() is None and known.total is not None and total != known.total:
            # No validator guarded this resume: a different total means a different file.
            self._restart(offset, f"the file's size changed from {known.total} to {total}")
        return offset, total

    def _restart(self, offset: int, why: str) -> NoReturn:
        if not offset:
            # Nothing of ours to throw away, so starting over would only loop.
            raise DownloadError(f"{self.provider}: {self.dest.name}: {why}", provider=self.provider)
        _discard(self.part, self.sidecar)
        raise _Restart(why)

    def _write_body(self, response: httpx.Response, start: int, total: int | None) -> int:
        done = start
        step = max(1, self.chunk_size)
        reported = done
        if self.progress is not None:
            self.progress(done, total)
        try:
            # Each piece httpx read (64 KiB) goes straight to the file and is dropped, so
            # memory stays flat whatever the size. Re-chunking (iter_raw(chunk_size)) or a
            # chunk_size write buffer only adds a copy: ~20% slower on loopback, no fewer
            # reads. chunk_size just paces the progress callback.
            with self.part.open("ab" if start else "wb") as out:
                for chunk in response.iter_raw():
                    out.write(chunk)
                    done += len(chunk)
                    if self.progress is not None and done - reported >= step:
                        self.progress(done, total)
                        reported = done
                    if self.expected_size is not None and done > self.expected_size:
                        self._mismatch(f"the server sent more than {self.expected_size} bytes")
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            if exc.errno in _NO_SPACE:
                raise _no_space(exc, self.dest.parent, self.free_space) from exc
            raise
        if self.progress is not None and done != reported:
            self.progress(done, total)
        return done

    def _mismatch(self, what: str, target: int | None = None) -> NoReturn:
        expected = self.expected_size if target is None else target
        with contextlib.suppress(FileNotFoundError):
            # Keep a .part only while it can still be a prefix of the expected file.
            if expected is None or self.part.stat().st_size > expected:
                _discard(self.part, self.sidecar)
        raise SizeMismatch(
            f"{self.provider}: {what} for {self.dest.name}, but {expected} were expected",
            provider=self.provider,
        )

    def finish(self, size: int, total: int | None) -> None:
        target = self.expected_size if self.expected_size is not None else total
        if target is not None and size < target:
            # A body that ended cleanly but short (no Content-Length to hold it to): resume.
            raise RetryableError(
                f"{self.provider}: {self.dest.name} ended at {size} of {target} bytes",
                provider=self.provider,
            )
        if target is not None and size > target:
            self._mismatch(f"the .part holds {size} bytes", target)
        self.part.replace(self.dest)
        _fsync_dir(self.dest.parent)
        _discard(self.sidecar)


def _with_query_token(url: str, token: str) -> str:
    return str(httpx.URL(url).copy_merge_params({"access_token": token}))


def _auth_modes(
    url: str, bearer: str | None, query_token: str | None
) -> list[tuple[str, dict[str, str]]]:
    # docs/platforms.md, "Zoom: downloads": the header first; ?access_token= only as the legacy
    # fallback.
    modes: list[tuple[str, dict[str, str]]] = []
    if bearer:
        modes.append((url, {"Authorization": f"Bearer {bearer}"}))
    if query_token:
        modes.append((_with_query_token(url, query_token), {}))
    return modes or [(url, {})]


def download_http(
    http: httpx.Client,
    url: str,
    dest: Path,
    *,
    expected_size: int | None,
    bearer: str | None = None,
    query_token: str | None = None,
    accept_types: Sequence[str] = DEFAULT_ACCEPT_TYPES,
    chunk_size: int = 1 << 20,
    progress: ProgressFn | None = None,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    provider: str = "zoom",
    free_space: FreeSpaceFn = disk_free,
) -> DownloadResult:
    """Download `url` to `dest`, resuming a `.part` left by an earlier call or process.

    Retries network errors, 408/429/5xx per `policy`, each retry resuming from the bytes on
    disk; a retry that made progress resets the attempt count and the sleep budget. Raises
    DownloadAuthExpired (401; refresh and call again), DownloadGone (404/410), NotMedia,
    SizeMismatch, InsufficientSpace, or RetryableError when retries run out. `progress`
    gets (bytes on disk, total or None) about every `chunk_size` bytes and at the end; it
    goes back to 0 only if the server forces a restart. `dest` exists only when complete
    and verified. Callers must not run two downloads of one `dest` at once (no file lock).
    """
    policy = policy or RetryPolicy()
    dest = Path(dest)
    part, sidecar = part_paths(dest)
    if dest.exists():
        size = dest.stat().st_size
        # dest only ever appears by the final rename, so with no size to check it is complete.
        if expected_size is None or size == expected_size:
            _discard(part, sidecar)
            return DownloadResult(dest, size, size, 0)
        log.warning("%s has %d bytes, expected %d; downloading it again", dest, size, expected_size)
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    clean = httpx.URL(url).copy_with(query=None, fragment=None)
    job = _Job(
        http,
        dest,
        part,
        sidecar,
        expected_size,
        tuple(accept_types),
        chunk_size,
        progress,
        provider,
        free_space,
        str(clean),
    )
    modes = _auth_modes(url, bearer, query_token)
    mode = 0
    attempts = failures = 0
    slept = 0.0
    while True:
        offset, known = _resume_point(part, sidecar, expected_size)
        total = expected_size if expected_size is not None else known.total
        _check_space(dest.parent, None if total is None else total - offset, free_space)
        attempts += 1
        request_url, auth = modes[mode]
        try:
            start, size = job.attempt(request_url, auth, offset, known)
            job.finish(size, _read_total(sidecar, known))
            return DownloadResult(dest, size, start, attempts)
        except _Restart as exc:
            log.info("%s: %s: %s; starting over", provider, dest.name, exc)
            continue
        except DownloadAuthExpired:
            if mode + 1 < len(modes):
                mode += 1  # the legacy ?access_token= may still work where the header did not
                continue
            raise
        except RetryableError as exc:
            error: RetryableError = exc
        except httpx.TransportError as exc:
            if not isinstance(exc, TRANSIENT_ERRORS):
                raise PermanentError(
                    f"{provider}: download failed ({type(exc).__name__}: {exc})", provider=provider
                ) from exc
            error = RetryableError(
                f"{provider}: network error downloading {dest.name} ({type(exc).__name__}: {exc})",
                provider=provider,
            )
            error.__cause__ = exc
        except httpx.TooManyRedirects as exc:
            raise DownloadError(f"{provider}: {exc}", provider=provider) from exc
        if part.exists() and part.stat().st_size > offset:
            failures, slept = 0, 0.0  # bytes arrived: this is a flaky line, not a dead server
        failures += 1
        pause = policy.next_delay(failures, error.retry_after, slept)
        if pause is None:
            raise RetryableError(
                f"{error.message} (retries exhausted after {attempts} attempts; "
                f"{part.stat().st_size if part.exists() else 0} bytes kept for resume)",
                provider=provider,
                status=error.status,
                retry_after=error.retry_after,
            ) from error
        log.info(
            "%s: download attempt %d failed (%s); retrying in %.2fs",
            provider,
            attempts,
            error,
            pause,
        )
        sleep(pause)
        slept += pause


def _read_total(sidecar: Path, known: _Validators) -> int | None:
    fresh = _read_sidecar(sidecar)
    return fresh.total if fresh is not None else known.total


def copy_local(
    src: Path,
    dest: Path,
    *,
    progress: ProgressFn | None = None,
    link: bool = True,
    chunk_size: int = 8 * MiB,
    free_space: FreeSpaceFn = disk_free,
    opened: io.FileIO | None = None,
) -> DownloadResult:
    """Bring a local file into the workspace: a hard link when `link` and the filesystem
    allows it (instant, no extra space; treat dest as read-only, it IS the source), else a
    streamed copy through `.part` + fsync + rename. Idempotent.

    `opened`: the file already opened and checked by the caller (path_policy.open_regular);
    then exactly that file is linked or copied, whatever `src` names by now."""
    src, dest = Path(src), Path(dest)
    with contextlib.ExitStack() as stack:
        if opened is None:
            try:
                opened = stack.enter_context(src.open("rb", buffering=0))
            except FileNotFoundError:
                raise NotFound(f"local file is gone: {src}") from None
            except IsADirectoryError:
                raise NotFound(f"not a regular file: {src}") from None
        st = os.fstat(opened.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise NotFound(f"not a regular file: {src}")
        return _take(src, opened, st, dest, progress, link, chunk_size, free_space)
    raise AssertionError("unreachable")  # pragma: no cover - the with block returns


def _take(
    src: Path,
    fin: io.FileIO,
    st: os.stat_result,
    dest: Path,
    progress: ProgressFn | None,
    link: bool,
    chunk_size: int,
    free_space: FreeSpaceFn,
) -> DownloadResult:
    size = st.st_size
    with contextlib.suppress(FileNotFoundError):
        have = dest.stat()
        linkable = link and have.st_dev == st.st_dev
        if os.path.samestat(have, st) or (have.st_size == size and not linkable):
            return DownloadResult(dest, size, size, 0)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part, sidecar = part_paths(dest)
    _discard(part, sidecar)
    if link:
        try:
            _link_opened(src, fin, part)
            if not os.path.samestat(part.stat(), st):
                # Linked by name and the name now means another file: never take it.
                _discard(part)
                raise NotFound(f"local file {src} was replaced while being read; not taken")
        except OSError as exc:
            if exc.errno not in _NO_LINK:
                raise
            log.debug("cannot hard-link %s to %s (%s); copying", src, dest, exc.strerror)
        else:
            part.replace(dest)
            _fsync_dir(dest.parent)
            if progress is not None:
                progress(size, size)
            return DownloadResult(dest, size, 0, 1)
    _check_space(dest.parent, size, free_space)
    done = 0
    buf = bytearray(max(1, chunk_size))
    view = memoryview(buf)
    try:
        fin.seek(0)
        with part.open("wb", buffering=0) as fout:
            if progress is not None:
                progress(0, size)
            while n := fin.readinto(buf):
                _write_all(fout.fileno(), view[:n])
                done += n
                if progress is not None:
                    progress(done, size)
            os.fsync(fout.fileno())
    except OSError as exc:
        _discard(part)
        if exc.errno in _NO_SPACE:
            raise _no_space(exc, dest.parent, free_space) from exc
        raise StorageError(f"cannot copy {src} to {dest}: {exc.strerror or exc}") from exc
    finally:
        view.release()
    after = os.fstat(fin.fileno())
    if done != size or (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
        _discard(part)
        # Still being written (a recorder, a sync client): worth trying again later.
        raise RetryableError(
            f"local: {src} changed while being copied ({size} → {after.st_size} bytes)",
            provider="local",
        )
    part.replace(dest)
    _fsync_dir(dest.parent)
    return DownloadResult(dest, done, 0, 1)


def _link_opened(src: Path, fin: io.FileIO, part: Path) -> None:
    """Hard-link the open file: through the kernel's name for the descriptor where there is
    one (Linux), which cannot be redirected; else by name (checked by the caller after)."""
    proc = Path(f"/proc/self/fd/{fin.fileno()}")
    if proc.is_symlink():
        try:
            os.link(proc, part, follow_symlinks=True)
            return
        except OSError as exc:
            if exc.errno not in _NO_LINK and exc.errno != errno.ENOENT:
                raise
    os.link(src, part, follow_symlinks=False)


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data) :]
