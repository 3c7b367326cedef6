"""A minimal SMTP server on 127.0.0.1 for tests: enough of RFC 5321 for smtplib (EHLO/HELO,
AUTH PLAIN, MAIL FROM, RCPT TO, DATA, RSET, NOOP, QUIT). It records each message as sent.

Knobs: `refuse_rcpt` (550 for every recipient), `password` (AUTH PLAIN must give it, else
535), `starttls` (advertise STARTTLS; it is then refused with 454, which is all a test of
"required but unusable" needs)."""

from __future__ import annotations

import base64
import contextlib
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Mail:
    sender: str
    recipients: list[str]
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


@dataclass
class FakeSMTP:
    refuse_rcpt: bool = False
    password: str | None = None
    starttls: bool = False
    mails: list[Mail] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, mail: Mail) -> None:
        with self._lock:
            self.mails.append(mail)


def _address(arg: str) -> str:
    # "FROM:<a@b> SIZE=10" -> "a@b"
    inner = arg.split(":", 1)[1].strip() if ":" in arg else arg
    return inner.split(">", 1)[0].lstrip("<").strip()


class _Handler(socketserver.StreamRequestHandler):
    server: _Server
    timeout = 30

    def reply(self, *lines: str) -> None:
        out = [
            f"{line[:3]}{'-' if i < len(lines) - 1 else ' '}{line[4:]}"
            for i, line in enumerate(lines)
        ]
        self.wfile.write(("\r\n".join(out) + "\r\n").encode())
        self.wfile.flush()

    def handle(self) -> None:
        fake = self.server.fake
        self.reply("220 fake-smtp ready")
        sender, rcpts = "", []
        while True:
            raw = self.rfile.readline(65537)
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                caps = ["250 fake-smtp", "250 8BITMIME", "250 AUTH PLAIN"]
                if fake.starttls:
                    caps.append("250 STARTTLS")
                self.reply(*caps)
            elif verb == "HELO":
                self.reply("250 fake-smtp")
            elif verb == "STARTTLS":
                self.reply("454 TLS not available")
            elif verb == "AUTH":
                mech, _, initial = arg.partition(" ")
                if mech.upper() != "PLAIN" or not initial:
                    self.reply("504 only AUTH PLAIN with an initial response")
                    continue
                _, user, password = base64.b64decode(initial).decode().split("\0")
                fake.logins.append((user, password))
                if fake.password is not None and password != fake.password:
                    self.reply("535 5.7.8 authentication failed")
                else:
                    self.reply("235 2.7.0 ok")
            elif verb == "MAIL":
                sender, rcpts = _address(arg), []
                self.reply("250 ok")
            elif verb == "RCPT":
                if fake.refuse_rcpt:
                    self.reply("550 5.1.1 no such mailbox here")
                else:
                    rcpts.append(_address(arg))
                    self.reply("250 ok")
            elif verb == "DATA":
                if not rcpts:
                    self.reply("503 no valid recipients")
                    continue
                self.reply("354 end with <CRLF>.<CRLF>")
                body: list[bytes] = []
                while True:
                    chunk = self.rfile.readline(65537)
                    if not chunk or chunk in (b".\r\n", b".\n"):
                        break
                    body.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                fake.record(Mail(sender, list(rcpts), b"".join(body)))
                self.reply("250 queued")
            elif verb in ("RSET", "NOOP"):
                if verb == "RSET":
                    sender, rcpts = "", []
                self.reply("250 ok")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: FakeSMTP) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)


@contextlib.contextmanager
def serve_smtp(fake: FakeSMTP) -> Iterator[int]:
    """Serve `fake` on an ephemeral 127.0.0.1 port; yields the port."""
    server = _Server(fake)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
