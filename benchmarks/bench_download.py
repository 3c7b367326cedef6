"""Download benchmark: LEAP's download_http against curl, same file, same server, same run.

Serves a real file from disk over HTTP/1.1 on 127.0.0.1 with sendfile (Range-capable), so the
server costs almost no CPU and the numbers measure the clients, not a Python fake. LEAP runs
in a child process so its peak RSS (VmHWM) is its own.

    .venv/bin/python -m benchmarks.bench_download [--size-mb 1024] [--also-mb 4096]
        [--dir /tmp] [--repeat 2] [--fake-mb 256]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import TCPServer
from typing import Any

MB = 1 << 20


class _FileHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _FileServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, *, body: bool) -> None:
        path, size, etag = self.server.path, self.server.size, self.server.etag
        start, end, status = 0, size, 200
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", "").strip())
        if_range = self.headers.get("If-Range")
        if match and (if_range is None or if_range == etag):
            start = int(match[1])
            end = min(int(match[2]) + 1, size) if match[2] else size
            if start >= end:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        self.send_response(status)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(end - start))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        self.end_headers()
        if body:
            with path.open("rb") as f:
                self.wfile.flush()
                self.connection.sendfile(f, start, end - start)


class _FileServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        self.etag = f'"bench-{self.size}"'
        super().__init__(("127.0.0.1", 0), _FileHandler)

    def server_bind(self) -> None:
        TCPServer.server_bind(self)  # skip the FQDN lookup, which can stall without DNS
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]


@contextlib.contextmanager
def serve_file(path: Path) -> Iterator[str]:
    server = _FileServer(path)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/rec/{path.name}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def make_source(path: Path, size: int) -> None:
    block = os.urandom(4 * MB)
    with path.open("wb") as f:
        left = size
        while left:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n
    os.sync()  # start each measurement without someone else's dirty pages to flush


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(8 * MB):
            h.update(block)
    return h.hexdigest()


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def run_curl(url: str, out: Path) -> tuple[float, float]:
    """Seconds for curl alone, and for curl plus the fsync LEAP always does."""
    t0 = time.perf_counter()
    subprocess.run(["curl", "-s", "-f", "-o", str(out), url], check=True)
    t1 = time.perf_counter()
    fsync_file(out)
    return t1 - t0, time.perf_counter() - t0


def run_leap(url: str, out: Path, size: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.bench_download", "--child", url, str(out), str(size)]
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
    data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return data


def child(url: str, out: Path, size: int) -> None:
    """The LEAP side, in its own process: download, then report time and peak RSS."""
    from leap.providers.download import download_http
    from leap.providers.http import make_http_client

    with make_http_client(timeout=60) as http:
        t0 = time.perf_counter()
        result = download_http(http, url, out, expected_size=size, provider="bench")
        elapsed = time.perf_counter() - t0
    status = Path("/proc/self/status").read_text()
    hwm = re.search(r"VmHWM:\s+(\d+) kB", status)
    print(
        json.dumps(
            {
                "elapsed": elapsed,
                "size": result.size,
                "vmhwm_kb": int(hwm[1]) if hwm else None,
            }
        )
    )


def bench_size(workdir: Path, size_mb: int, repeat: int) -> dict[str, Any]:
    size = size_mb * MB
    src = workdir / f"src-{size_mb}.bin"
    out = workdir / "out.bin"
    print(f"\n== {size_mb} MB: preparing the source file…", flush=True)
    make_source(src, size)
    expected = sha256(src)
    curl_raw: list[float] = []
    curl_sync: list[float] = []
    leap: list[float] = []
    rss: list[int] = []
    with serve_file(src) as url:
        for i in range(repeat):
            raw, synced = run_curl(url, out)
            ok = out.stat().st_size == size
            out.unlink()
            os.sync()
            curl_raw.append(raw)
            curl_sync.append(synced)
            child_data = run_leap(url, out, size)
            ok = ok and sha256(out) == expected
            out.unlink()
            os.sync()
            if not ok:
                raise SystemExit("a download came out wrong; numbers are meaningless")
            leap.append(child_data["elapsed"])
            rss.append(child_data["vmhwm_kb"] or 0)
            print(
                f"  run {i + 1}: curl {size_mb / raw:7.0f} MB/s ({size_mb / synced:.0f} with fsync)"
                f"   LEAP {size_mb / leap[-1]:7.0f} MB/s   LEAP peak RSS {rss[-1] / 1024:.1f} MB",
                flush=True,
            )
    src.unlink()
    best = {"curl": min(curl_raw), "curl_fsync": min(curl_sync), "leap": min(leap)}
    row = {
        "size_mb": size_mb,
        "curl_mb_s": size_mb / best["curl"],
        "curl_fsync_mb_s": size_mb / best["curl_fsync"],
        "leap_mb_s": size_mb / best["leap"],
        "ratio_vs_curl": best["curl"] / best["leap"],
        "ratio_vs_curl_fsync": best["curl_fsync"] / best["leap"],
        "leap_peak_rss_mb": max(rss) / 1024,
    }
    print(
        f"  best: curl {row['curl_mb_s']:.0f} MB/s (+fsync {row['curl_fsync_mb_s']:.0f}), "
        f"LEAP {row['leap_mb_s']:.0f} MB/s; LEAP/curl {row['ratio_vs_curl']:.2f} "
        f"(vs curl+fsync {row['ratio_vs_curl_fsync']:.2f}, target >= 0.9); "
        f"LEAP peak RSS {row['leap_peak_rss_mb']:.1f} MB (target <= 80)"
    )
    return row


def bench_fake(workdir: Path, size_mb: int) -> float:
    """download_http through the Python FakeZoom, to show what that server can feed."""
    from tests.fakes.server import serve
    from tests.fakes.zoom import FakeZoom

    from leap.providers.download import download_http
    from leap.providers.http import make_http_client
    from leap.providers.zoom import S2SAuth

    fake = FakeZoom()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    meetings = fake.generate_meetings(2, start, start.replace(month=2), 1, "bench@example.com")
    f = next(f for m in meetings for f in m.completed_files() if f.file_type == "MP4")
    f.file_size = size_mb * MB
    dest = workdir / "fake.mp4"
    with serve(fake.handler) as base, make_http_client(timeout=60) as http:
        auth = S2SAuth(http, base, fake.account_id, fake.client_id, fake.client_secret)
        t0 = time.perf_counter()
        download_http(
            http,
            f"{base}/rec/download/{f.key}",
            dest,
            expected_size=f.file_size,
            bearer=auth.token(),
        )
        elapsed = time.perf_counter() - t0
    dest.unlink()
    return size_mb / elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--also-mb", type=int, action="append", default=[])
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--fake-mb", type=int, default=256, help="0 skips the FakeZoom run")
    parser.add_argument("--child", nargs=3, metavar=("URL", "OUT", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], Path(args.child[1]), int(args.child[2]))
        return
    if shutil.which("curl") is None:
        raise SystemExit("curl is not installed; it is the baseline")
    sizes = [args.size_mb, *args.also_mb]
    # Source plus one output at a time, plus room to spare for everyone else on this disk.
    need = 2 * max(sizes) * MB + 2048 * MB
    free = shutil.disk_usage(args.dir).free
    if free < need:
        raise SystemExit(f"need {need // MB} MB free in {args.dir}, have {free // MB} MB")
    workdir = Path(tempfile.mkdtemp(prefix="leap-bench-dl-", dir=args.dir))
    try:
        print(f"workdir {workdir} ({free // MB} MB free); {os.cpu_count()} CPUs")
        rows = [bench_size(workdir, size, args.repeat) for size in sizes]
        if args.fake_mb:
            rate = bench_fake(workdir, args.fake_mb)
            best = max(row["leap_mb_s"] for row in rows)
            print(
                f"\nFakeZoom (the Python test server, {args.fake_mb} MB): LEAP gets {rate:.0f} "
                f"MB/s from it vs {best:.0f} MB/s from the sendfile server above"
                + ("; the fake is the bottleneck there." if rate < 0.9 * best else ".")
            )
        print("\n" + json.dumps(rows, indent=1))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
