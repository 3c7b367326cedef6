"""Upload benchmark: LEAP's YouTube resumable upload against `curl -T`, same file, same server,
same run; and LEAP's peak RSS while it uploads.

The server speaks YouTube's resumable protocol (docs/platforms.md, "YouTube: resumable
upload": token, session start, chunk PUTs with Content-Range, 308 with Range, the final 200
with the video) and drains request bodies
with `recv_into` into one reused buffer, so it costs little CPU and the figures measure the
clients. LEAP runs in a child process so its VmHWM is its own; after every chunk it commits the
confirmed offset to SQLite, as the upload stage does. A second, smaller run goes through the
tests' FakeYouTube (pure Python, hashing every byte) to show what that fake can take.

    .venv/bin/python -m benchmarks.bench_upload [--size-mb 1024] [--repeat 2] [--chunk-mb 32]
        [--dir /tmp] [--fake-mb 256]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import TCPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from benchmarks.bench_download import MB, make_source

TOKEN = "bench-access-token"


class _UploadHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _UploadServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drain(self, length: int) -> int:
        """Read and discard `length` body bytes; returns how many arrived."""
        buf = self.server.buffer_for(threading.get_ident())
        view = memoryview(buf)
        got = 0
        while got < length:
            n = self.rfile.readinto(view[: min(len(buf), length - got)])
            if not n:
                break
            got += n
        return got

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path == "/token":
            token = {"access_token": TOKEN, "expires_in": 3599, "token_type": "Bearer"}
            self._reply(200, json.dumps(token).encode(), {"Content-Type": "application/json"})
            return
        if not self.path.startswith("/upload/youtube/v3/videos"):
            self._reply(404)
            return
        json.loads(body or b"{}")
        upload_id = secrets.token_urlsafe(8)
        self.server.sessions[upload_id] = [int(self.headers["X-Upload-Content-Length"]), 0]
        host = self.headers["Host"]
        location = f"http://{host}/upload/youtube/v3/videos?uploadType=resumable&upload_id="
        self._reply(200, headers={"Location": location + upload_id})

    def do_PUT(self) -> None:
        upload_id = parse_qs(urlsplit(self.path).query).get("upload_id", [""])[0]
        session = self.server.sessions.get(upload_id)
        length = int(self.headers.get("Content-Length") or 0)
        if session is None:
            self._drain(length)
            self._reply(404)
            return
        size = session[0]
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", self.headers.get("Content-Range", ""))
        if match and int(match[1]) == session[1]:
            session[1] += self._drain(length)
        else:
            self._drain(length)  # a status query (bytes */N) or a stale chunk
        if session[1] >= size:
            video = {"kind": "youtube#video", "id": "v" + upload_id}
            self._reply(200, json.dumps(video).encode(), {"Content-Type": "application/json"})
        elif session[1]:
            self._reply(308, headers={"Range": f"bytes=0-{session[1] - 1}"})
        else:
            self._reply(308)


class _UploadServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        self.sessions: dict[str, list[int]] = {}
        self._buffers: dict[int, bytearray] = {}
        super().__init__(("127.0.0.1", 0), _UploadHandler)

    def buffer_for(self, thread: int) -> bytearray:
        return self._buffers.setdefault(thread, bytearray(1 * MB))

    def server_bind(self) -> None:
        TCPServer.server_bind(self)  # skip the FQDN lookup, which can stall without DNS
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]


@contextlib.contextmanager
def serve_uploads() -> Iterator[tuple[str, _UploadServer]]:
    server = _UploadServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def open_session(base: str, size: int) -> str:
    response = httpx.post(
        f"{base}/upload/youtube/v3/videos",
        params={"uploadType": "resumable", "part": "snippet,status"},
        headers={
            "Authorization": f"Bearer {TOKEN}",
            "X-Upload-Content-Length": str(size),
            "X-Upload-Content-Type": "video/mp4",
        },
        json={"snippet": {"title": "bench"}},
    )
    response.raise_for_status()
    return response.headers["Location"]


def curl_put(session: str, src: Path, size: int, token: str = TOKEN) -> float:
    """Seconds for `curl -T` to send the whole file to the session URI in one PUT."""
    t0 = time.perf_counter()
    subprocess.run(
        [
            "curl",
            "-s",
            "-f",
            "-o",
            "/dev/null",
            "-T",
            str(src),
            "-H",
            f"Authorization: Bearer {token}",
            "-H",
            f"Content-Range: bytes 0-{size - 1}/{size}",
            session,
        ],
        check=True,
    )
    return time.perf_counter() - t0


def run_curl(base: str, src: Path, size: int) -> float:
    return curl_put(open_session(base, size), src, size)


def run_leap(base: str, src: Path, size: int, chunk_mb: int, workdir: Path) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.bench_upload",
        "--child",
        base,
        str(src),
        str(size),
        str(chunk_mb),
        str(workdir / "progress.db"),
    ]
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
    data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return data


def youtube_client(
    http: httpx.Client, base: str, client_id: str, client_secret: str, refresh_token: str
) -> tuple[Any, Any]:
    """LEAP's YouTube client (and its auth) against a server at `base`."""
    from leap.providers.youtube import YouTubeAuth, YouTubeClient

    auth = YouTubeAuth(
        http,
        token_uri=f"{base}/token",
        client_id=client_id,
        client_secret=client_secret,
        refresh_token=refresh_token,
    )
    client = YouTubeClient(
        http, auth, api_base_url=f"{base}/youtube/v3", upload_base_url=f"{base}/upload/youtube/v3"
    )
    return client, auth


def child(base: str, src: Path, size: int, chunk_mb: int, db: Path) -> None:
    """The LEAP side, in its own process: session, chunks, a commit per confirmed offset."""
    from leap.providers.http import make_http_client

    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # as LEAP's engine sets it
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, offset INTEGER)")
    conn.execute("INSERT OR REPLACE INTO t VALUES (1, 0)")
    conn.commit()

    def progress(confirmed: int) -> None:
        conn.execute("UPDATE t SET offset = ? WHERE id = 1", (confirmed,))
        conn.commit()

    with make_http_client(timeout=60) as http:
        client, _ = youtube_client(http, base, "bench", "bench", "bench")
        t0 = time.perf_counter()
        session = client.start_session({"snippet": {"title": "bench"}}, size=size, mime="video/mp4")
        video = client.upload(
            session, src, size=size, chunk_size=chunk_mb * MB, on_progress=progress
        )
        elapsed = time.perf_counter() - t0
    status = Path("/proc/self/status").read_text()
    hwm = re.search(r"VmHWM:\s+(\d+) kB", status)
    print(
        json.dumps(
            {"elapsed": elapsed, "video": video["id"], "vmhwm_kb": int(hwm[1]) if hwm else None}
        )
    )


def baseline_rss_kb() -> int:
    """VmHWM of a child that imports what LEAP's side imports and uploads nothing."""
    code = (
        "import re, pathlib, leap.providers.youtube, leap.providers.http, sqlite3;"
        "print(re.search(r'VmHWM:\\s+(\\d+)', pathlib.Path('/proc/self/status').read_text())[1])"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return int(out.stdout.strip())


def bench_size(workdir: Path, size_mb: int, repeat: int, chunk_mb: int) -> dict[str, Any]:
    size = size_mb * MB
    src = workdir / f"src-{size_mb}.bin"
    print(f"\n== {size_mb} MB, {chunk_mb} MiB chunks: preparing the source file…", flush=True)
    make_source(src, size)
    curl: list[float] = []
    leap: list[float] = []
    rss: list[int] = []
    with serve_uploads() as (base, server):
        for i in range(repeat):
            curl.append(run_curl(base, src, size))
            data = run_leap(base, src, size, chunk_mb, workdir)
            upload_id = str(data["video"])[1:]
            if server.sessions[upload_id][1] != size:
                raise SystemExit("LEAP's upload came out short; numbers are meaningless")
            leap.append(data["elapsed"])
            rss.append(data["vmhwm_kb"] or 0)
            print(
                f"  run {i + 1}: curl -T {size_mb / curl[-1]:7.0f} MB/s   "
                f"LEAP {size_mb / leap[-1]:7.0f} MB/s   LEAP peak RSS {rss[-1] / 1024:.1f} MB",
                flush=True,
            )
    src.unlink()
    row = {
        "size_mb": size_mb,
        "chunk_mb": chunk_mb,
        "curl_mb_s": size_mb / min(curl),
        "leap_mb_s": size_mb / min(leap),
        "ratio_vs_curl": min(curl) / min(leap),
        "leap_peak_rss_mb": max(rss) / 1024,
    }
    print(
        f"  best: curl -T {row['curl_mb_s']:.0f} MB/s, LEAP {row['leap_mb_s']:.0f} MB/s; "
        f"LEAP/curl {row['ratio_vs_curl']:.2f} (target >= 0.8); "
        f"LEAP peak RSS {row['leap_peak_rss_mb']:.1f} MB (target <= 80)"
    )
    return row


def bench_fake(workdir: Path, size_mb: int, chunk_mb: int) -> dict[str, float]:
    """The same client through the tests' FakeYouTube (Python, hashing every byte)."""
    from tests.fakes.server import serve
    from tests.fakes.youtube import FakeYouTube

    from leap.providers.http import make_http_client

    size = size_mb * MB
    src = workdir / "fake-src.bin"
    make_source(src, size)
    fake = FakeYouTube()
    with serve(fake.handler) as base, make_http_client(timeout=120) as http:
        client, auth = youtube_client(
            http, base, fake.client_id, fake.client_secret, fake.refresh_token
        )
        t0 = time.perf_counter()
        session = client.start_session({"snippet": {"title": "bench"}}, size=size, mime="video/mp4")
        client.upload(session, src, size=size, chunk_size=chunk_mb * MB)
        leap_s = time.perf_counter() - t0
        session = client.start_session({"snippet": {"title": "bench"}}, size=size, mime="video/mp4")
        curl_s = curl_put(session, src, size, auth.token())
    src.unlink()
    if fake.video_count != 2:
        raise SystemExit("an upload to FakeYouTube did not complete")
    return {"leap_mb_s": size_mb / leap_s, "curl_mb_s": size_mb / curl_s}


STAGE_TEMPLATE = """name = "bench"
presets = ["yt"]
[match]
regex = [".+"]
[blank]
min_duration_minutes = 0
min_size_mb = 0
[processing]
stages = ["download", "trim", "upload"]
[processing.trim]
enabled = false
"""
STAGE_PRESET = """name = "yt"
platform = "youtube"
credential = "chan"
[metadata]
title = "{title}"
privacy = "private"
"""
MEASURED = """
import json, pathlib, re, sys, time
from leap.cli.app import main
t0 = time.perf_counter()
try:
    main(sys.argv[1:])
    code = 0
except SystemExit as exc:
    code = int(exc.code or 0)
hwm = re.search(r"VmHWM:\\s+(\\d+) kB", pathlib.Path("/proc/self/status").read_text())
print(json.dumps({"code": code, "elapsed": time.perf_counter() - t0, "vmhwm_kb": int(hwm[1])}))
"""


def bench_stage(workdir: Path, size_mb: int) -> dict[str, Any]:
    """The whole `leap process --now` of one recording whose upload is `size_mb`: every import,
    the database, the download (a local copy) and the upload stage with its commits."""
    from cryptography.fernet import Fernet
    from tests import media

    home = workdir / "stage"
    inbox = home / "inbox"
    video = media.pad_mp4(media.make_video(inbox / "lecture.mp4", 1), size_mb * MB)
    (home / "t.toml").write_text(STAGE_TEMPLATE)
    (home / "p.toml").write_text(STAGE_PRESET)
    secret = {"client_id": "bench", "client_secret": "bench", "refresh_token": "bench"}
    (home / "au.json").write_text(json.dumps(secret))
    with serve_uploads() as (base, server):
        env = {
            **os.environ,
            "LEAP_DATA_DIR": str(home / "data"),
            "LEAP_CONFIG": str(home / "leap.toml"),
            "LEAP_DATABASE__URL": f"sqlite:///{home / 'data' / 'leap.db'}",
            "LEAP_SECRET_KEY": Fernet.generate_key().decode(),
            "LEAP_SYNC__LOCAL_SETTLE_SECONDS": "0",
            "LEAP_YOUTUBE__TOKEN_URI": f"{base}/token",
            "LEAP_YOUTUBE__API_BASE_URL": f"{base}/youtube/v3",
            "LEAP_YOUTUBE__UPLOAD_BASE_URL": f"{base}/upload/youtube/v3",
        }
        for args in (
            ["init", "--yes"],
            ["credentials", "add", "youtube", "chan", "--from-file", str(home / "au.json")],
            ["preset", "add", "--file", str(home / "p.toml")],
            ["template", "add", "--file", str(home / "t.toml")],
            ["source", "add", "local", "in", str(inbox)],
            ["sync"],
        ):
            subprocess.run(
                [sys.executable, "-m", "leap.cli", *args], env=env, check=True, capture_output=True
            )
        proc = subprocess.run(
            [sys.executable, "-c", MEASURED, "process", "--template", "bench", "--now"],
            env=env,
            capture_output=True,
            text=True,
        )
        data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        size = video.stat().st_size

        def uploads() -> int:
            return sum(1 for s in server.sessions.values() if s[1] == size)

        if data["code"] != 0 or uploads() != 1:
            raise SystemExit(f"leap process failed: {proc.stderr.strip()[-500:]}")
        data["leapd_vmhwm_kb"] = leapd_peak(env, lambda: uploads() == 2)
    shutil.rmtree(home, ignore_errors=True)
    return data


def leapd_peak(env: dict[str, str], done: Any) -> int:
    """The same recording again (--force), published by leapd: its peak RSS in kB."""
    daemon = subprocess.Popen(
        [sys.executable, "-m", "leap.daemon"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        subprocess.run(
            [sys.executable, "-m", "leap.cli", "process", "--template", "bench", "--force"],
            env=env,
            check=True,
            capture_output=True,
        )
        deadline = time.monotonic() + 600
        while not done():
            if time.monotonic() > deadline or daemon.poll() is not None:
                raise SystemExit("leapd did not publish the recording")
            time.sleep(0.2)
        status = Path(f"/proc/{daemon.pid}/status").read_text()
        hwm = re.search(r"VmHWM:\s+(\d+) kB", status)
        return int(hwm[1]) if hwm else 0
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--chunk-mb", type=int, default=32)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--fake-mb", type=int, default=256, help="0 skips the FakeYouTube run")
    parser.add_argument("--stage-mb", type=int, default=1024, help="0 skips the whole-process run")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        base, src, size, chunk, db = args.child
        child(base, Path(src), int(size), int(chunk), Path(db))
        return
    if shutil.which("curl") is None:
        raise SystemExit("curl is not installed; it is the baseline")
    need = max(args.size_mb, args.fake_mb) * MB + 1024 * MB
    free = shutil.disk_usage(args.dir).free
    if free < need:
        raise SystemExit(f"need {need // MB} MB free in {args.dir}, have {free // MB} MB")
    workdir = Path(tempfile.mkdtemp(prefix="leap-bench-up-", dir=args.dir))
    try:
        base_kb = baseline_rss_kb()
        print(f"workdir {workdir}; Python with LEAP's client imported: {base_kb / 1024:.1f} MB")
        row = bench_size(workdir, args.size_mb, args.repeat, args.chunk_mb)
        row["import_baseline_rss_mb"] = base_kb / 1024
        if args.fake_mb:
            fake = bench_fake(workdir, args.fake_mb, args.chunk_mb)
            row["fake_mb"] = args.fake_mb
            row.update({f"fake_{k}": v for k, v in fake.items()})
            print(
                f"\nFakeYouTube (the Python test server, {args.fake_mb} MB): LEAP "
                f"{fake['leap_mb_s']:.0f} MB/s, curl -T {fake['curl_mb_s']:.0f} MB/s, "
                f"ratio {fake['leap_mb_s'] / fake['curl_mb_s']:.2f}"
            )
        if args.stage_mb:
            stage = bench_stage(workdir, args.stage_mb)
            row["stage_mb"] = args.stage_mb
            row["stage_seconds"] = stage["elapsed"]
            row["stage_peak_rss_mb"] = stage["vmhwm_kb"] / 1024
            row["leapd_peak_rss_mb"] = stage["leapd_vmhwm_kb"] / 1024
            print(
                f"\n`leap process --now` of a {args.stage_mb} MB recording (local copy, then the "
                f"upload stage): {stage['elapsed']:.1f} s, peak RSS "
                f"{stage['vmhwm_kb'] / 1024:.1f} MB (target <= 80)\n"
                f"leapd publishing it again: peak RSS {stage['leapd_vmhwm_kb'] / 1024:.1f} MB"
            )
        print("\n" + json.dumps(row, indent=1))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
