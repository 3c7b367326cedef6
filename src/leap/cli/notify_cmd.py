"""`leap notify ...`: notification targets (webhooks, e-mail): add, list, remove, and a test
message sent now. A webhook URL is never printed back whole: it may hold a token."""

from __future__ import annotations

from typing import Annotated

import typer

from leap.cli._run import state_of
from leap.errors import LeapError
from leap.services import notify

app = typer.Typer(help="Notification targets: webhooks and e-mail.", no_args_is_help=True)

COLUMNS = ["name", "kind", "style", "to", "events", "last_status", "last_error"]


@app.command("add")
def add(
    ctx: typer.Context,
    name: str,
    webhook: Annotated[
        str | None, typer.Option("--webhook", help="POST each message to this http(s) URL.")
    ] = None,
    email: Annotated[
        str | None, typer.Option("--email", help="Send each message to this address (SMTP).")
    ] = None,
    style: Annotated[
        str | None,
        typer.Option(
            "--style",
            help="Webhook body: json (default), slack, discord or ntfy.",
            show_default=False,
        ),
    ] = None,
    events: Annotated[
        str | None,
        typer.Option(
            "--events",
            help="Comma-separated, from: " + ", ".join(notify.EVENTS) + " (default: all).",
        ),
    ] = None,
) -> None:
    """Add a notification target: a webhook (--webhook URL [--style S]) or --email ADDRESS."""
    state = state_of(ctx)
    chosen = notify.parse_events(events)
    with state.context() as c:
        target = notify.add_target(
            c, name, webhook=webhook, email=email, style=style, events=chosen
        )
        view = notify.target_view(c, target)
    heard = ", ".join(chosen) if chosen else "every event"
    state.output.done(view, f"added {target.kind} target '{name}' ({view['to']}): {heard}")


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """List notification targets and the outcome of each one's last message."""
    state = state_of(ctx)
    with state.context() as c:
        rows = [notify.target_view(c, t) for t in notify.list_targets(c)]
    state.output.table(rows, COLUMNS, title="Notification targets", shorten="last_error")


@app.command("remove")
def remove(ctx: typer.Context, name: str) -> None:
    """Delete a notification target and its messages."""
    state = state_of(ctx)
    with state.context() as c:
        notify.remove_target(c, name)
    state.output.done({"removed": name}, f"removed notification target '{name}'")


@app.command("test")
def test(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="One target (default: every one).")] = None,
) -> None:
    """Send a test message now, from this process (no leapd needed); exit 1 if one fails."""
    state = state_of(ctx)
    results = notify.send_test(state.runtime(), state.scope(), name)
    out = state.output
    if out.as_json:
        out.json(results)
    failed = [r for r in results if not r["ok"]]
    if not out.as_json:
        for r in results:
            if r["ok"]:
                out.message(f"target '{r['name']}': sent to {r['to']}")
            elif len(results) > 1:
                out.warning(f"target '{r['name']}': {r['error']}")
    if len(failed) == 1 and len(results) == 1:
        raise LeapError(f"target '{failed[0]['name']}': {failed[0]['error']}")
    if failed:
        raise LeapError(f"{len(failed)} of {len(results)} target(s) failed the test")
