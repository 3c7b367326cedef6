"""`leap usage [NAME] [--period P] [--by metric|template|day]`: what a user used in one of
their quota periods (docs/usage.md)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from leap.cli._run import state_of
from leap.db.base import utcnow
from leap.services import usage_report


def amount(value: float) -> str:
    """A total for people: whole numbers with thousands separators, else two decimals."""
    return f"{int(value):,}" if value == int(value) else f"{value:,.2f}"


def usage(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="A user (admin only); default: yourself.")
    ] = None,
    period: Annotated[
        str | None,
        typer.Option("--period", help="YYYY-MM (the period that starts then), current, previous."),
    ] = None,
    by: Annotated[str, typer.Option("--by", help="metric, template or day.")] = "metric",
) -> None:
    """What you used in a quota period: per metered kind, per template or per day."""
    state = state_of(ctx)
    with state.context() as c:
        data = usage_report.report(c, name, period, by, utcnow())
    if state.as_json:
        state.output.json(data)
        return
    title = (
        f"{data['user']}: usage {data['period_start'][:10]} to {data['period_end'][:10]} "
        f"({data['timezone']})"
    )
    if data["by"] == "metric":
        rows = [
            {
                "kind": r["kind"],
                "amount": amount(r["amount"]),
                "events": r["events"],
                "counts toward": ", ".join(r["counts_toward"]) or "(free, not limited)",
            }
            for r in data["rows"]
        ]
        state.output.table(rows, ["kind", "amount", "events", "counts toward"], title=title)
        return
    key = "template" if data["by"] == "template" else "date"
    kinds = list(dict.fromkeys(r["kind"] for r in data["rows"]))
    table: dict[str, dict[str, Any]] = {}
    for r in data["rows"]:
        table.setdefault(r[key], {key: r[key]})[r["kind"]] = amount(r["amount"])
    if not table:
        state.output.message(f"{title}: nothing used")
        return
    state.output.table(list(table.values()), [key, *kinds], title=title)
