"""Sync benchmark: N meetings from the fake Zoom over real HTTP on 127.0.0.1.

Reports, for a first sync and for a re-sync with no changes: wall time, meetings/s, SQL
statements per page (and how many of them write), each as a ratio to a baseline measured in
the same run: fetching the same pages with the same Zoom client and no database at all.

    .venv/bin/python -m benchmarks.bench_sync [--meetings 10000] [--db sqlite|postgres]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import create_engine, event, text
from tests.fakes.server import serve
from tests.fakes.zoom import FakeZoom

from leap.config import load_settings
from leap.context import Runtime, open_context
from leap.db.migrate import upgrade
from leap.db.scope import Scope
from leap.domain import CredentialKind, Role
from leap.providers.http import RetryPolicy, make_http_client
from leap.providers.zoom import S2SAuth, ZoomClient
from leap.services import credentials, sources, users
from leap.services.sync import Syncer, SyncRequest

START, END = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 12, 31, tzinfo=UTC)
FROM, TO = date(2025, 1, 1), date(2025, 12, 31)


class StatementCounter:
    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_a: Any) -> None:
        self.kinds[statement.lstrip().split(None, 1)[0].upper()] += 1

    @property
    def total(self) -> int:
        return sum(v for k, v in self.kinds.items() if k not in ("BEGIN", "PRAGMA"))

    @property
    def writes(self) -> int:
        return sum(self.kinds[k] for k in ("INSERT", "UPDATE", "DELETE"))


def baseline(base: str, n_expected: int) -> tuple[float, int]:
    with make_http_client() as http:
        auth = S2SAuth(http, base, "zoom-account-id", "zoom-client-id", "zoom-client-secret")
        client = ZoomClient(http, f"{base}/v2", auth, RetryPolicy(rng=random.Random(0)))
        t0 = time.perf_counter()
        pages = 0
        seen = 0
        for page in client.iter_recording_pages("teacher@uni.example", FROM, TO):
            pages += 1
            seen += len(page)
        elapsed = time.perf_counter() - t0
    assert seen == n_expected, (seen, n_expected)
    return elapsed, pages


PG_ADMIN = os.environ.get("LEAP_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
SCRATCH = f"leap_bench_{os.getpid()}"


def _pg_admin() -> Any:
    return create_engine(
        PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )


def scratch_pg() -> str:
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{SCRATCH}"'))
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{SCRATCH}"


def drop_scratch_pg() -> None:
    admin = _pg_admin()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)'))
    admin.dispose()


def make_install(workdir: Path, db: str, base: str) -> Runtime:
    os.environ.update(
        {
            "LEAP_DATA_DIR": str(workdir),
            "LEAP_CONFIG": str(workdir / "none.toml"),
            "LEAP_SECRET_KEY": Fernet.generate_key().decode(),
            "LEAP_ZOOM__API_BASE_URL": f"{base}/v2",
            "LEAP_ZOOM__OAUTH_BASE_URL": base,
        }
    )
    if db == "postgres":
        os.environ["LEAP_DATABASE__URL"] = scratch_pg()
    else:
        os.environ["LEAP_DATABASE__URL"] = f"sqlite:///{workdir / 'leap.db'}"
    rt = Runtime.from_settings(load_settings())
    upgrade(rt.engine)
    with open_context(rt, Scope.system_scope()) as ctx:
        user = users.create_user(ctx, "bench", role=Role.ADMIN)
    scope = Scope.for_user(user.id, is_admin=True)
    with open_context(rt, scope) as ctx:
        credentials.add_credential(
            ctx,
            "z",
            CredentialKind.ZOOM_S2S,
            {
                "account_id": "zoom-account-id",
                "client_id": "zoom-client-id",
                "client_secret": "zoom-client-secret",
            },
        )
        sources.add_zoom(ctx, "uni", "z", "teacher@uni.example")
    rt.bench_scope = scope  # type: ignore[attr-defined]
    return rt


def run_sync(rt: Runtime) -> tuple[float, dict[str, Any], StatementCounter]:
    counter = StatementCounter()
    event.listen(rt.engine, "before_cursor_execute", counter)
    try:
        with make_http_client() as http:
            t0 = time.perf_counter()
            [result] = Syncer(rt, rt.bench_scope, http).run(  # type: ignore[attr-defined]
                SyncRequest(date_from=FROM, date_to=TO)
            )
            elapsed = time.perf_counter() - t0
    finally:
        event.remove(rt.engine, "before_cursor_execute", counter)
    return elapsed, result.as_dict(), counter


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--meetings", type=int, default=10_000)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    args = ap.parse_args()

    fake = FakeZoom(user_email="teacher@uni.example")
    fake.generate_meetings(args.meetings, START, END, seed=42, user_email="teacher@uni.example")
    workdir = Path(tempfile.mkdtemp(prefix="leap-bench-"))
    try:
        with serve(fake.handler) as base:
            base_s, pages = baseline(base, args.meetings)
            rt = make_install(workdir, args.db, base)
            first_s, first, c1 = run_sync(rt)
            again_s, again, c2 = run_sync(rt)
            rt.dispose()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if args.db == "postgres":
            drop_scratch_pg()

    print(f"sync benchmark: {args.meetings} meetings, {pages} pages, database {args.db}")
    print(
        f"baseline (Zoom client, no database): {base_s:.2f} s, "
        f"{args.meetings / base_s:,.0f} meetings/s"
    )
    for label, secs, res, c in (
        ("first sync", first_s, first, c1),
        ("re-sync", again_s, again, c2),
    ):
        print(
            f"{label}: {secs:.2f} s = {secs / base_s:.2f}x baseline, "
            f"{args.meetings / secs:,.0f} meetings/s; new={res['new']} updated={res['updated']} "
            f"unchanged={res['unchanged']}; SQL statements {c.total} "
            f"({c.total / max(res['pages'], 1):.1f}/page), writes {c.writes} "
            f"({dict(c.kinds)})"
        )


if __name__ == "__main__":
    main()
