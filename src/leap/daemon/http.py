"""leapd's HTTP side (`[metrics] enabled`): /healthz, /metrics for Prometheus and a read-only
status page, served from a background thread by the standard library's ThreadingHTTPServer
(docs/internals.md, "Metrics and the status page"). Three read-only GET routes need no web
framework; every answer is computed from the database when it is asked for."""

from __future__ import annotations

import contextlib
import html
import ipaddress
import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

from leap import __version__
from leap.config import MetricsSettings, Settings
from leap.context import Runtime, open_context
from leap.db.scope import Scope
from leap.domain import CredentialKind, Platform, Stage, StageStatus, TargetStatus
from leap.errors import ConfigError, LeapError
from leap.services import status_report
from leap.services.status_report import FIRING_IN_PROGRESS, Aggregates, StatusPage

log = logging.getLogger(__name__)

# Seconds a client may take to send its request; a connection that idles longer is closed,
# so a stalled client does not keep a thread.
REQUEST_TIMEOUT_S = 10.0
# How often the serving thread checks for shutdown: the longest leapd's stop waits for it.
POLL_INTERVAL_S = 0.5
# The status page reloads itself this often (no JavaScript).
REFRESH_S = 10


def is_loopback(host: str) -> bool:
    """Whether every address `host` names is on this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


# -- /metrics ---------------------------------------------------------------------------------


class DatabaseCollector(Collector):
    """The leap_* metrics, read from the database on every scrape (status_report.aggregates):
    the figures are the install's, shared by every leapd, not this process's."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        with open_context(self.runtime, Scope.system_scope()) as ctx:
            agg = status_report.aggregates(ctx)
        yield from families(agg, self.runtime.settings)
        yield GaugeMetricFamily(
            "leap_scrape_duration_seconds",
            "Time this scrape spent reading the database.",
            value=time.perf_counter() - started,
        )


def _zero_filled(seen: dict[Any, int], known: list[Any]) -> dict[Any, int]:
    """`seen` with a 0 for each known label set it lacks: a series that is 0 is shown as 0
    rather than vanishing (an alert on it then resolves instead of going stale)."""
    return {**dict.fromkeys(known, 0), **seen}


def families(agg: Aggregates, settings: Settings) -> Iterator[Metric]:
    """The metric families of one set of aggregates (docs/internals.md lists them)."""
    stages = GaugeMetricFamily(
        "leap_stages",
        "Pipeline stages in the database, by stage and state.",
        labels=["stage", "state"],
    )
    known = [(s.value, st.value) for s in Stage for st in StageStatus]
    for (name, state), n in sorted(_zero_filled(agg.stages, known).items()):
        stages.add_metric([name, state], n)
    yield stages

    queue = GaugeMetricFamily(
        "leap_queue_depth",
        "Queued stages: ready for a worker now, or waiting out a retry back-off (backoff).",
        labels=["state"],
    )
    queue.add_metric(["ready"], agg.queue_ready)
    queue.add_metric(["backoff"], agg.queue_backoff)
    yield queue

    durations = HistogramMetricFamily(
        "leap_stage_duration_seconds",
        "Time from a stage's first start to its end, for stages done, by stage.",
        labels=["stage"],
    )
    for name, hist in sorted(agg.durations.items()):
        buckets = [
            (repr(float(bound)), float(n))  # 1.0, 14400.0: as Go writes them
            for bound, n in zip(status_report.DURATION_BUCKETS, hist.buckets, strict=True)
        ]
        buckets.append(("+Inf", float(hist.count)))
        durations.add_metric([name], buckets, sum_value=hist.total)
    yield durations

    failed = GaugeMetricFamily(
        "leap_stages_failed",
        "Stages that failed for good (state failed), by stage and reason category.",
        labels=["stage", "reason"],
    )
    for (name, reason), n in sorted(agg.failures.items()):
        failed.add_metric([name, reason], n)
    yield failed

    platforms = [p.value for p in Platform]
    done_status = TargetStatus.UPLOADED.value
    uploaded = {p: n for (p, status), n in agg.targets.items() if status == done_status}
    uploads = CounterMetricFamily(
        "leap_uploads_total",
        "Output targets published (uploaded), by platform.",
        labels=["platform"],
    )
    for platform, n in sorted(_zero_filled(uploaded, platforms).items()):
        uploads.add_metric([platform], n)
    yield uploads

    targets = GaugeMetricFamily(
        "leap_output_targets",
        "Output targets by platform and status.",
        labels=["platform", "status"],
    )
    for (platform, status), n in sorted(agg.targets.items()):
        targets.add_metric([platform, status], n)
    yield targets

    yield CounterMetricFamily(
        "leap_downloaded_bytes_total",
        "Sizes of the source files that finished download stages brought in.",
        value=agg.downloaded_bytes,
    )
    sent = CounterMetricFamily(
        "leap_uploaded_bytes_total",
        "Sizes of the videos of uploaded targets, as their resumable upload recorded them "
        "(YouTube; VK and local record none).",
        labels=["platform"],
    )
    for platform, n in sorted(_zero_filled(agg.uploaded_bytes, platforms).items()):
        sent.add_metric([platform], n)
    yield sent

    units = GaugeMetricFamily(
        "leap_youtube_quota_units_used",
        "YouTube Data API units charged today (Pacific day), by Google project.",
        labels=["project"],
    )
    for project, n in sorted(agg.youtube_units_today.items()):
        units.add_metric([project], n)
    yield units
    yield GaugeMetricFamily(
        "leap_youtube_quota_units_limit",
        "The daily units per Google project LEAP plans with (youtube.daily_units).",
        value=settings.youtube.daily_units,
    )

    reauth = GaugeMetricFamily(
        "leap_credentials_needing_reauth",
        "Credentials a service rejected (needs_reauth), by kind.",
        labels=["kind"],
    )
    kinds = [k.value for k in CredentialKind]
    for kind, n in sorted(_zero_filled(agg.credentials_needing_reauth, kinds).items()):
        reauth.add_metric([kind], n)
    yield reauth

    done = {s: n for s, n in agg.automation_firings.items() if s not in FIRING_IN_PROGRESS}
    in_progress = {s: n for s, n in agg.automation_firings.items() if s in FIRING_IN_PROGRESS}
    firings = CounterMetricFamily(
        "leap_automation_firings_total",
        "Automation firings that ended, by final status.",
        labels=["status"],
    )
    for status, n in sorted(done.items()):
        firings.add_metric([status], n)
    yield firings
    pending = GaugeMetricFamily(
        "leap_automation_firings_in_progress",
        "Automation firings queued or running.",
        labels=["status"],
    )
    for status, n in sorted(_zero_filled(in_progress, list(FIRING_IN_PROGRESS)).items()):
        pending.add_metric([status], n)
    yield pending

    if agg.heartbeat_age_s is not None:
        yield GaugeMetricFamily(
            "leap_heartbeat_age_seconds",
            "Seconds since any leapd last wrote its heartbeat.",
            value=agg.heartbeat_age_s,
        )


# -- the status page ----------------------------------------------------------------------------

# Characters that would make the page read differently from what the database holds: C0/C1
# controls, lone surrogates (undecodable file names), line separators and the bidi controls
# (a right-to-left override turns "gpj.exe" around). Shown as visible escapes, like the CLI
# does on a terminal; every value is also HTML-escaped and isolated in <bdi>.
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff"
    "\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def text(value: object) -> str:
    """`value` as inert HTML text."""
    shown = _UNSAFE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", "" if value is None else str(value))
    return f"<bdi>{html.escape(shown, quote=True)}</bdi>"


def _when(at: datetime | None, now: datetime) -> str:
    if at is None:
        return ""
    seconds = (at - now).total_seconds()
    span = abs(seconds)
    if span < 90:
        ago = f"{span:.0f} s"
    elif span < 5400:
        ago = f"{span / 60:.0f} min"
    elif span < 172800:
        ago = f"{span / 3600:.1f} h"
    else:
        ago = f"{span / 86400:.0f} d"
    rel = f"in {ago}" if seconds > 0 else f"{ago} ago"
    return f"{at.strftime('%Y-%m-%d %H:%M:%S')} UTC ({rel})"


def _table(headers: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f"<p class=empty>{html.escape(empty)}</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _pct(fraction: float | None) -> str:
    return "" if fraction is None else f"{100 * fraction:.0f} %"


def _of(shown: int, total: int) -> str:
    return f"{total}" if shown >= total else f"{shown} shown of {total}"


STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;
vertical-align:top}th{background:#f3f3f3}.error{max-width:60em;white-space:pre-wrap}
.bad{color:#b00;font-weight:bold}.ok{color:#070}.empty{color:#777}
"""


def render_page(page: StatusPage, health: dict[str, Any], who: str) -> str:
    now = page.now
    runs = _table(
        ["run", "recording", "title", "user", "stage", "stage progress", "progress", "started"],
        [
            [
                text(r.run_id),
                text(r.recording_id),
                text(r.title),
                text(r.user),
                text(r.stage or "")
                + (f" ({text(r.stage_status)})" if r.stage_status not in (None, "running") else ""),
                text(
                    _pct(r.stage_progress)
                    + (f", waits until {_when(r.not_before, now)}" if r.not_before else "")
                ),
                text(f"{r.progress} %"),
                text(_when(r.started, now)),
            ]
            for r in page.runs
        ],
        "No run in progress.",
    )
    failures = _table(
        ["recording", "title", "user", "stage", "reason", "when", "error"],
        [
            [
                text(f.recording_id),
                text(f.title),
                text(f.user),
                text(f.stage),
                text(f.reason),
                text(_when(f.at, now)),
                f"<div class=error>{text(f.error)}</div>",
            ]
            for f in page.failures
        ],
        "No failed stage.",
    )
    firings = _table(
        ["job", "user", "next firing"],
        [[text(f.job), text(f.user), text(_when(f.at, now))] for f in page.firings],
        "No automation job is scheduled.",
    )
    creds = _table(
        ["credential", "kind", "user", "why", "since"],
        [
            [text(c.name), text(c.kind), text(c.user), text(c.reason), text(_when(c.since, now))]
            for c in page.credentials
        ],
        "Every credential works.",
    )
    beat = page.heartbeat_age_s
    facts = [
        ("database", health.get("database")),
        ("queue", health.get("queue")),
        ("scheduler", health.get("scheduler")),
        ("last heartbeat", "never" if beat is None else f"{beat:.0f} s ago"),
    ]
    summary = " · ".join(
        f"{html.escape(k)}: <span class={'ok' if v in ('ok', 'running') else 'bad'}>"
        f"{text(v)}</span>"
        if k != "last heartbeat"
        else f"{html.escape(k)}: {text(v)}"
        for k, v in facts
    )
    return f"""<!DOCTYPE html>
<html lang=en><head><meta charset=utf-8>
<meta http-equiv="refresh" content="{REFRESH_S}">
<meta name=viewport content="width=device-width,initial-scale=1">
<title>LEAP status</title><style>{STYLE}</style></head>
<body>
<h1>LEAP status</h1>
<p>{summary}</p>
<p class=empty>{text(who)} · LEAP {text(__version__)} · {text(f"{now:%Y-%m-%d %H:%M:%S} UTC")} ·
read-only, reloads every {REFRESH_S} s · <a href="/metrics">metrics</a> ·
<a href="/healthz">healthz</a></p>
<h2 id=runs>Runs in progress ({_of(len(page.runs), page.runs_total)})</h2>
{runs}
<h2 id=failures>Last failures ({_of(len(page.failures), page.failures_total)})</h2>
{failures}
<h2 id=automation>Next automation firings</h2>
{firings}
<h2 id=credentials>Credentials needing attention</h2>
{creds}
</body></html>
"""


# -- the server ---------------------------------------------------------------------------------

PLAIN = "text/plain; charset=utf-8"
HOST_REFUSED = (
    b"Host not allowed: on a loopback address leapd answers requests for an IP address or "
    b"localhost only (a reverse proxy must send Host: 127.0.0.1:PORT)\n"
)

# The page holds every user's recording titles and has no login: no script may run in it
# even if an escape were missed, nothing may frame it, and nothing it links leaks its URL.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


class StatusServer:
    """The HTTP side of one leapd: bound at start (a taken port stops leapd, naming it),
    served by a daemon thread, closed at leapd's stop."""

    def __init__(self, runtime: Runtime, queue_size: Callable[[], int], httpd: _Server) -> None:
        self.runtime = runtime
        self.queue_size = queue_size
        self.httpd = httpd
        # Whether this leapd holds the scheduler lock; main sets it once it knows.
        self.scheduler_running = False
        self.local_only = is_loopback(runtime.settings.metrics.host)
        self.registry = CollectorRegistry()
        self.registry.register(DatabaseCollector(runtime))
        # This process's CPU, memory and file descriptors (process_*): per leapd, unlike the
        # install-wide leap_* figures.
        ProcessCollector(registry=self.registry)
        self._thread: threading.Thread | None = None

    @classmethod
    def start(cls, runtime: Runtime, queue_size: Callable[[], int]) -> StatusServer:
        cfg = runtime.settings.metrics
        httpd = bind(cfg)
        server = cls(runtime, queue_size, httpd)
        httpd.app = server  # before the first request is served
        if not server.local_only:
            log.warning(
                "metrics.host %s is not a loopback address: /healthz, /metrics and the status "
                "page have no login and show every user's recording titles to whoever reaches "
                "port %d; put them behind a reverse proxy with authentication",
                cfg.host,
                server.port,
            )
        server._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL_S},
            name="leapd-http",
            daemon=True,
        )
        server._thread.start()
        log.info(
            "status page, /metrics and /healthz on %s/",
            status_report.base_url(cfg.host, server.port),
        )
        return server

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def stop(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.httpd.server_close()

    def health(self) -> tuple[int, dict[str, Any]]:
        data: dict[str, Any] = {
            "database": "ok",
            "queue": "ok",
            "scheduler": "running" if self.scheduler_running else "absent",
            "heartbeat_age_s": None,
        }
        try:
            with open_context(self.runtime, Scope.system_scope()) as ctx:
                age = status_report.heartbeat_age(ctx)
            data["heartbeat_age_s"] = None if age is None else round(age, 3)
        except Exception as exc:
            data["database"] = "error"
            log.warning("healthz: database: %s", _one_line(exc))
        try:
            self.queue_size()
        except Exception as exc:
            data["queue"] = "error"
            log.warning("healthz: queue: %s", _one_line(exc))
        ok = data["database"] == "ok" and data["queue"] == "ok"
        return (200 if ok else 503), data

    def metrics(self) -> bytes:
        return generate_latest(self.registry)

    def page(self) -> str:
        _, health = self.health()
        with open_context(self.runtime, Scope.system_scope()) as ctx:
            page = status_report.status_page(ctx)
        return render_page(page, health, f"served by leapd {socket.gethostname()}:{os.getpid()}")


def _one_line(exc: BaseException) -> str:
    message = exc.message if isinstance(exc, LeapError) else f"{type(exc).__name__}: {exc}"
    return " ".join(message.split())


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a request in flight never holds leapd's exit
    app: StatusServer  # what the handlers answer with


class _Server6(_Server):
    address_family = socket.AF_INET6


def bind(cfg: MetricsSettings) -> _Server:
    """Listen on metrics.host:metrics.port, or a one-line ConfigError naming the setting."""
    if not cfg.host.strip():
        # "" would listen on every interface without anyone having written so.
        raise ConfigError(
            "metrics.host is empty; name the address to listen on (127.0.0.1, or 0.0.0.0 for "
            "every interface)"
        )
    try:
        family = socket.getaddrinfo(cfg.host, cfg.port, type=socket.SOCK_STREAM)[0][0]
    except OSError as exc:
        raise ConfigError(f"metrics.host {cfg.host!r} is not an address here: {exc}") from None
    server_class = _Server6 if family == socket.AF_INET6 else _Server
    try:
        return server_class((cfg.host, cfg.port), _Handler)
    except OSError as exc:
        raise ConfigError(
            f"metrics.port {cfg.port}: cannot listen on {cfg.host}:{cfg.port}: "
            f"{exc.strerror or exc} (another process has it? set [metrics] port)"
        ) from None


def _host_name(header: str) -> str:
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class _Handler(BaseHTTPRequestHandler):
    timeout = REQUEST_TIMEOUT_S

    def version_string(self) -> str:
        return "leapd"  # not the Python version: nothing a visitor needs

    server: _Server

    @property
    def app(self) -> StatusServer:
        return self.server.app

    def do_GET(self) -> None:
        self._serve(head_only=False)

    def do_HEAD(self) -> None:
        self._serve(head_only=True)

    def _serve(self, *, head_only: bool) -> None:
        # A client that went away needs no answer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._route(head_only)

    def _route(self, head_only: bool) -> None:
        if not self._host_allowed():
            self._send(403, HOST_REFUSED, PLAIN, head_only)
            return
        path = urlsplit(self.path).path
        try:
            if path == "/healthz":
                code, data = self.app.health()
                body = (json.dumps(data) + "\n").encode()
                self._send(code, body, "application/json", head_only)
            elif path == "/metrics":
                self._send(200, self.app.metrics(), CONTENT_TYPE_LATEST, head_only)
            elif path == "/":
                page = self.app.page().encode("utf-8", "replace")
                self._send(200, page, "text/html; charset=utf-8", head_only, PAGE_HEADERS)
            else:
                self._send(404, b"Not found: try /, /metrics or /healthz\n", PLAIN, head_only)
        except (BrokenPipeError, ConnectionResetError):
            raise
        except Exception as exc:  # the database is down, say: answer, and keep serving
            why = _one_line(exc)
            log.warning("%s: %s", path, why)
            self._send(503, f"unavailable: {why}\n".encode(), PLAIN, head_only)

    def _host_allowed(self) -> bool:
        """On a loopback address, only requests for an IP address or localhost: a web page
        elsewhere could otherwise point a DNS name at 127.0.0.1 and read the status page
        from the browser of someone on this machine (DNS rebinding)."""
        if not self.app.local_only:
            return True
        header = self.headers.get("Host")
        if not header:
            return True  # HTTP/1.0 clients; a browser always sends Host
        name = _host_name(header.strip())
        if name.lower() == "localhost":
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True

    def _send(
        self,
        code: int,
        body: bytes,
        content_type: str,
        head_only: bool,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if not head_only:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        # A scrape every 15 s would otherwise print a line to stderr each time.
        log.debug("%s %s", self.address_string(), format % args)
