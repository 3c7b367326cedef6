"""`leap plan list | show | edit`: the plans and their limits (docs/quotas.md)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from leap.cli._run import AppState, state_of
from leap.errors import UsageError
from leap.services import plans

app = typer.Typer(help="Plans and their limits.", no_args_is_help=True)


def _limit(value: Any) -> str:
    return (
        "unlimited" if value is None else f"{value:,}" if isinstance(value, int) else f"{value:g}"
    )


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Every plan with its limits (an admin also sees how many users are on each)."""
    state = state_of(ctx)
    with state.context() as c:
        rows = plans.list_plans(c)
    if state.as_json:
        state.output.json(rows)
        return
    keys = ["recordings_per_month", "transcription_minutes_per_month", "uploads_per_month"]
    table = [
        {"name": r["name"], "title": r["title"]}
        | {k.removesuffix("_per_month"): _limit(r["limits"][k]) for k in keys}
        | ({"users": r["users"]} if "users" in r else {})
        for r in rows
    ]
    columns = list(table[0]) if table else ["name", "title"]
    state.output.table(table, columns, title="Plans (leap plan show NAME: every limit)")


@app.command("show")
def show(ctx: typer.Context, name: str) -> None:
    """One plan: every limit (unlimited where the plan sets none)."""
    state = state_of(ctx)
    with state.context() as c:
        data = plans.show(c, name)
    _print(state, data)


@app.command("edit")
def edit(
    ctx: typer.Context,
    name: str,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="KEY=VALUE (a number, or 'unlimited'); repeatable."),
    ] = None,
    unset: Annotated[
        list[str] | None, typer.Option("--unset", help="KEY: make it unlimited; repeatable.")
    ] = None,
    title: Annotated[str | None, typer.Option("--title", help="The plan's display name.")] = None,
) -> None:
    """(admin) Change a plan's limits; every user on it is held to them at once."""
    state = state_of(ctx)
    if not (set_ or unset or title is not None):
        raise UsageError("nothing to change: give --set KEY=VALUE, --unset KEY or --title")
    with state.context() as c:
        data = plans.edit(c, name, set_ or [], unset or [], title)
    _print(state, data)


def _print(state: AppState, data: dict[str, Any]) -> None:
    if state.as_json:
        state.output.json(data)
        return
    rows = [{"limit": k, "value": _limit(v)} for k, v in data["limits"].items()]
    state.output.table(rows, ["limit", "value"], title=f"{data['name']} ({data['title']})")
