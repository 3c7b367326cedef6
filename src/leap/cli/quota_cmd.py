"""`leap quota show`: limits, use and what remains this period; `leap quota youtube`: today's
use of each Google project's YouTube quota, and what waits."""

from __future__ import annotations

from typing import Annotated

import typer

from leap.cli._run import state_of
from leap.db.base import utcnow
from leap.domain import CredentialKind, TargetStatus
from leap.services import quotas, youtube_quota
from leap.views import iso

app = typer.Typer(help="Quotas.", no_args_is_help=True)


@app.command("show")
def show(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="A user (admin only); default: yourself.")
    ] = None,
) -> None:
    """Your limits, what you used this period, what remains and when it resets."""
    state = state_of(ctx)
    with state.context() as c:
        data = quotas.show(c, name, utcnow())
    if state.as_json:
        state.output.json(data)
        return
    rows = [
        {
            "limit": r["limit"],
            "value": "unlimited" if r["value"] is None else f"{r['value']:g}",
            "used": "-" if r["used"] is None else f"{r['used']:g}",
            "remaining": "" if r["remaining"] is None else f"{r['remaining']:g}",
            "origin": r["origin"],
        }
        for r in data["limits"]
    ]
    title = f"{data['user']}: plan {data['plan']}, period {data['period_start'][:10]} to " + (
        f"{data['period_end'][:10]} (resets {data['period_end']})"
    )
    state.output.table(rows, ["limit", "value", "used", "remaining", "origin"], title=title)


@app.command("youtube")
def youtube(ctx: typer.Context) -> None:
    """Today's YouTube quota use per Google project (Pacific day) and deferred uploads."""
    state = state_of(ctx)
    with state.context() as c:
        projects = sorted(
            {
                str(c.vault.decrypt(cr.secret).get("client_id"))
                for cr in c.repos.credentials.list(kind=CredentialKind.YOUTUBE.value)
            }
        )
        rows = []
        for project in projects:
            led = youtube_quota.ledger(c, project)
            rows.append(
                {
                    "project": project,
                    "day": led.day.isoformat(),
                    "units": f"{led.units}/{led.units_limit}",
                    "uploads": f"{led.uploads}/{led.uploads_limit}",
                    "resets_at": iso(led.resets_at),
                }
            )
        # YouTube uploads that wait, with why: Google's quota, or the user's own LEAP
        # quota (docs/quotas.md), which resets on its own date.
        waiting = [
            {"recording_id": t.recording_id, "until": iso(t.deferred_until), "reason": t.error}
            for t in c.repos.targets.list(status=TargetStatus.DEFERRED.value, platform="youtube")
        ]
    if state.as_json:
        state.output.json({"projects": rows, "deferred": waiting})
        return
    state.output.table(
        rows,
        ["project", "day", "units", "uploads", "resets_at"],
        title="YouTube quota (per Google project)",
    )
    state.output.message(f"{len(waiting)} upload(s) wait for the reset")
