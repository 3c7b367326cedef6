"""`leap admin stats overview | users | quotas` (admin): install-wide statistics
(docs/usage.md, "Admin statistics")."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from leap.cli._run import state_of
from leap.cli.usage_cmd import amount
from leap.db.base import utcnow
from leap.services import admin_stats
from leap.services.usage import KINDS

app = typer.Typer(help="Administration: install-wide statistics.", no_args_is_help=True)
stats_app = typer.Typer(help="Statistics over every user (admin).", no_args_is_help=True)
app.add_typer(stats_app, name="stats")

# Short column names for the metered kinds in tables.
SHORT = {
    "recordings": "recordings",
    "transcription_minutes": "paid min",
    "local_transcription_minutes": "local min",
    "llm_tokens": "llm tokens",
    "youtube_uploads": "youtube",
    "vk_uploads": "vk",
}


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.0f} %"


@stats_app.command("overview")
def overview(ctx: typer.Context) -> None:
    """(admin) Users by plan and activity, recordings, stage failures, monthly use, near limits."""
    state = state_of(ctx)
    with state.context() as c:
        data = admin_stats.overview(c, utcnow())
    if state.as_json:
        state.output.json(data)
        return
    out = state.output
    u = data["users"]
    out.table(
        [{"plan": plan, "users": n} for plan, n in u["by_plan"].items()],
        ["plan", "users"],
        title=(
            f"{u['total']} users: {u['active']} active in {u['active_days']} days, "
            f"{u['inactive']} not, {u['disabled']} disabled, {u['admins']} admin(s)"
        ),
    )
    out.table(
        [{"status": s, "recordings": n} for s, n in data["recordings"].items()],
        ["status", "recordings"],
        title="Recordings by status",
    )
    out.table(
        [s | {"failure_rate": _pct(100 * s["failure_rate"])} for s in data["stages"]],
        ["stage", "finished", "failed", "failure_rate"],
        title="Stages (finished: done or failed for good)",
    )
    out.table(
        data["failure_reasons"],
        ["stage", "exit_code", "reason", "failed"],
        title="Why stages failed",
    )
    out.table(
        [{"month": m["month"]} | {SHORT[k]: amount(m[k]) for k in KINDS} for m in data["months"]],
        ["month", *SHORT.values()],
        title="Use per calendar month (UTC)",
    )
    near = data["near_limits"]
    out.table(
        [_quota_row(r) for r in near["limits"]],
        ["user", "limit", "used", "value", "percent"],
        title=f"{near['users']} user(s) at or past {near['threshold']:.0f} % of a limit",
    )


def _quota_row(r: dict[str, Any]) -> dict[str, Any]:
    return r | {
        "used": amount(r["used"]),
        "value": amount(r["value"]),
        "percent": _pct(r["percent"]),
    }


@stats_app.command("users")
def users(ctx: typer.Context) -> None:
    """(admin) One row per user: plan, this period's use, runs in progress, last activity."""
    state = state_of(ctx)
    with state.context() as c:
        rows = admin_stats.users(c, utcnow())
    if state.as_json:
        state.output.json(rows)
        return
    table = [
        {
            "user": r["user"],
            "plan": r["plan"] or "",
            "disabled": "yes" if r["disabled"] else "",
            **{SHORT[k]: amount(v) for k, v in r["use"].items()},
            "runs": r["runs_active"],
            "last activity": (r["last_activity"] or "")[:16],
        }
        for r in rows
    ]
    state.output.table(
        table,
        ["user", "plan", "disabled", *SHORT.values(), "runs", "last activity"],
        title="Users (use in each user's current period)",
    )


@stats_app.command("quotas")
def quotas(
    ctx: typer.Context,
    near: Annotated[
        float, typer.Option("--near", help="Only limits used at least this percent.")
    ] = 0.0,
) -> None:
    """(admin) Each user's period limits: use, limit, percent, reset; the fullest first."""
    state = state_of(ctx)
    with state.context() as c:
        rows = admin_stats.quotas(c, utcnow(), near)
    if state.as_json:
        state.output.json(rows)
        return
    state.output.table(
        [_quota_row(r) | {"resets_at": r["resets_at"][:16]} for r in rows],
        ["user", "plan", "limit", "used", "value", "percent", "origin", "resets_at"],
        title=f"Period limits used at least {near:g} %",
    )
