"""The loopback redirect of an installed-app authorisation (RFC 8252): a one-request HTTP
server on 127.0.0.1 that the browser lands on after consent, raced against a pasted
redirect URL for a browser on another machine (a server reached over SSH)."""

from __future__ import annotations

import errno
import queue
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from leap.errors import AuthorizationFailed, UsageError

_DONE_PAGE = (
    b"<!doctype html><meta charset=utf-8><title>LEAP</title>"
    b"<p>LEAP received the answer. You can close this tab and return to the terminal.</p>"
)

# What the wait returns: ("redirect", query parameters) or ("paste", the pasted text).
Answer = tuple[str, Any]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        params = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
        if "code" not in params and "error" not in params:
            # A favicon or a stray visit: not the redirect, keep waiting for it.
            self.send_error(404)
            return
        body = _DONE_PAGE
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.answers.put(("redirect", params))

    def log_message(self, format: str, *args: Any) -> None:
        # The request line carries the code: never print it.
        return


class _Server(HTTPServer):
    answers: queue.Queue[Answer]


class LoopbackReceiver:
    """Bind 127.0.0.1:`port` (0: a free port), then `wait` for the redirect or a paste."""

    def __init__(self, port: int, *, option: str = "--port") -> None:
        if not 0 <= port <= 65535:
            raise UsageError(f"{option}: {port} is not a TCP port (0-65535; 0 picks a free one)")
        try:
            self._server = _Server(("127.0.0.1", port), _Handler)
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                why = "is in use" if exc.errno == errno.EADDRINUSE else "may not be opened"
                raise UsageError(
                    f"port {port} on 127.0.0.1 {why}: choose another with {option} "
                    "(0 picks a free one)"
                ) from None
            raise UsageError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
        self._server.answers = queue.Queue()
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="oauth-loopback", daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def wait(self, timeout: float, paste: Callable[[], str] | None = None) -> Answer:
        """The first of: the browser's redirect, a pasted line (if `paste`), the timeout."""
        if paste is not None:
            threading.Thread(
                target=self._read_paste, args=(paste,), name="oauth-paste", daemon=True
            ).start()
        try:
            return self._server.answers.get(timeout=timeout)
        except queue.Empty:
            raise AuthorizationFailed(
                f"no answer from the browser within {timeout:g} s; nothing saved "
                "(run the command again, or raise --timeout)"
            ) from None

    def _read_paste(self, paste: Callable[[], str]) -> None:
        try:
            text = paste()
        except (EOFError, OSError, ValueError):
            return  # no terminal to paste into: the loopback alone can answer
        self._server.answers.put(("paste", text))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LoopbackReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
