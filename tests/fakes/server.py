"""Run a fake provider's request handler two ways: inside httpx (MockTransport) for unit tests,
and as a real HTTP/1.1 server on 127.0.0.1 for end-to-end tests that run `leap` as a process."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any

import httpx

Handler = Callable[[httpx.Request], httpx.Response]
log = logging.getLogger(__name__)

# Hop-by-hop headers: the server frames the body itself.
_MIB = 1024 * 1024
_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive"}


class DropConnection(Exception):
    """Raise from a handler (or from a response body iterator, mid-body) to cut the connection:
    the real server closes the socket, MockTransport raises httpx.RemoteProtocolError."""


class _DroppableStream(httpx.SyncByteStream):
    def __init__(self, response: httpx.Response, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._response.iter_raw()
        except DropConnection as exc:
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body",
                request=self._request,
            ) from exc

    def close(self) -> None:
        self._response.close()


def mock_transport(handler: Handler) -> httpx.MockTransport:
    """A MockTransport for `handler` that behaves like the real server on DropConnection and
    HEAD, so a test passes or fails the same way on either."""

    def wrapped(request: httpx.Request) -> httpx.Response:
        try:
            response = handler(request)
        except DropConnection as exc:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from exc
        if request.method == "HEAD":
            response.close()
            return httpx.Response(
                response.status_code, headers=response.headers, stream=httpx.ByteStream(b"")
            )
        try:
            response.content  # noqa: B018 - raises when the body is a stream
        except httpx.ResponseNotRead:
            return httpx.Response(
                response.status_code,
                headers=response.headers,
                stream=_DroppableStream(response, request),
            )
        return response

    return httpx.MockTransport(wrapped)


class _Trickle:
    """A response writer that sends one byte at a time with a pause after each, like a
    hostile or broken server (headers included)."""

    def __init__(self, inner: Any, delay: float) -> None:
        self._inner = inner
        self._delay = delay

    def write(self, data: bytes) -> int:
        for i in range(len(data)):
            self._inner.write(data[i : i + 1])
            self._inner.flush()
            time.sleep(self._delay)
        return len(data)

    def flush(self) -> None:
        self._inner.flush()


def _read_chunked(rfile: Any) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int(rfile.readline(65537).split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(parts)
        parts.append(rfile.read(size))
        rfile.readline(65537)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # an idle keep-alive connection does not hold a thread forever
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("fake server: " + format, *args)

    def _handle(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = _read_chunked(self.rfile)
        else:
            body = self._read_body(int(self.headers.get("Content-Length") or 0))
        host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP]
        request = httpx.Request(
            self.command, f"http://{host}{self.path}", headers=headers, content=body
        )
        try:
            response = self.server.app(request)
        except DropConnection:
            self._drop()
            return
        except Exception as exc:
            response = httpx.Response(500, text=f"fake handler error: {type(exc).__name__}: {exc}")
        plain = self.wfile
        delay = self.server.write_delay()
        if delay > 0:
            self.wfile = _Trickle(plain, delay)  # type: ignore[assignment]
        try:
            self._write(response, head=self.command == "HEAD")
        except DropConnection:
            self._drop()
        except OSError:
            self.close_connection = True  # the client went away mid-response
        finally:
            self.wfile = plain
            response.close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    def _read_body(self, length: int) -> bytes:
        """The request body; with the server's read_delay, one MiB at a time with a pause
        after each, like a slow uplink (a client killed meanwhile leaves a short body)."""
        delay = self.server.read_delay()
        if delay <= 0 or length <= _MIB:
            return self.rfile.read(length)
        parts: list[bytes] = []
        left = length
        while left > 0:
            part = self.rfile.read(min(_MIB, left))
            if not part:
                break
            parts.append(part)
            left -= len(part)
            time.sleep(delay)
        return b"".join(parts)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _write(self, response: httpx.Response, *, head: bool) -> None:
        status = response.status_code
        chunks: Iterator[bytes] | None
        try:
            content = response.content
        except httpx.ResponseNotRead:
            chunks, length = None, None
        else:
            chunks, length = iter([content]), len(content)
        declared = response.headers.get("Content-Length")
        if declared is not None:
            length = int(declared)  # the handler's word wins, e.g. HEAD of a large file
        self.send_response_only(status)
        for key, value in response.headers.multi_items():
            if key.lower() not in _HOP:
                self.send_header(key, value)
        if "date" not in response.headers:
            self.send_header("Date", self.date_time_string())
        if response.headers.get("Connection", "").lower() == "close":
            self.close_connection = True
        if head or status in (204, 304) or status < 200:
            if length is not None and status not in (204, 304) and status >= 200:
                self.send_header("Content-Length", str(length))
            self.end_headers()
            return
        body = chunks if chunks is not None else response.iter_raw()
        if length is not None:
            self.send_header("Content-Length", str(length))
            self.end_headers()
            for chunk in body:
                self.wfile.write(chunk)
        else:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in body:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        app: Handler,
        read_delay: Callable[[], float],
        write_delay: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self.app = app
        self.read_delay = read_delay
        self.write_delay = write_delay
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._workers: list[threading.Thread] = []
        super().__init__(("127.0.0.1", 0), _RequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can stall without DNS.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            daemon=True,
            name="fake-http-conn",
        )
        with self._lock:
            self._connections.add(request)
            self._workers = [t for t in self._workers if t.is_alive()]
            self._workers.append(thread)
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("fake server: error on a connection from %s", client_address, exc_info=True)

    def close_connections(self, timeout: float) -> None:
        """Wake every connection thread (even one idle in keep-alive) and wait for it to end,
        so no socket outlives the server and trips a ResourceWarning."""
        with self._lock:
            connections = list(self._connections)
            workers = list(self._workers)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for worker in workers:
            worker.join(timeout)


@contextlib.contextmanager
def serve(
    handler: Handler,
    *,
    read_delay: Callable[[], float] = lambda: 0.0,
    write_delay: Callable[[], float] = lambda: 0.0,
) -> Iterator[str]:
    """Serve `handler` on an ephemeral 127.0.0.1 port; yields the base URL. `read_delay()`:
    seconds to pause after each MiB of a request body larger than one MiB (read per request,
    so a test can slow uploads down and speed them up again). `write_delay()`: seconds to
    pause after each byte of a response, status line and headers included (a trickling
    server; read per request)."""
    server = _Server(handler, read_delay, write_delay)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.close_connections(timeout=5)
        server.server_close()
        thread.join(5)
