"""`leap quota youtube`: today's use of each Google project's YouTube quota, and what waits."""

from __future__ import annotations

import typer

from leap.cli._run import state_of
from leap.domain import CredentialKind, TargetStatus
from leap.services import youtube_quota
from leap.views import iso

app = typer.Typer(help="Quotas.", no_args_is_help=True)


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
        waiting = [
            {"recording_id": t.recording_id, "until": iso(t.deferred_until)}
            for t in c.repos.targets.list(status=TargetStatus.DEFERRED.value)
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
