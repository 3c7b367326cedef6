"""`leap user ...`: manage the install's users (admin only where it touches others)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from leap.cli._filters import day_start, parse_date
from leap.cli._run import state_of
from leap.domain import Role
from leap.errors import UsageError
from leap.services import quotas, users
from leap.views import user_view

app = typer.Typer(help="Manage users.", no_args_is_help=True)

COLUMNS = ["id", "name", "role", "plan", "timezone", "disabled", "email"]


@app.command("add")
def add(
    ctx: typer.Context,
    name: str,
    admin: Annotated[bool, typer.Option("--admin", help="Give the admin role.")] = False,
    timezone: Annotated[str | None, typer.Option(help="IANA timezone.")] = None,
    plan: Annotated[str, typer.Option(help="free | plus | pro | enterprise")] = "free",
    email: Annotated[str | None, typer.Option(help="Contact e-mail.")] = None,
) -> None:
    """Create a user (admin only)."""
    state = state_of(ctx)
    with state.context() as c:
        role = Role.ADMIN if admin else Role.USER
        user = users.create_user(c, name, role=role, timezone=timezone, plan=plan, email=email)
        view = user_view(user)
    state.output.done(view, f"created user '{name}' (id {view['id']})")


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """List users (admin only)."""
    state = state_of(ctx)
    with state.context() as c:
        rows = [user_view(u) for u in users.list_users(c)]
    state.output.table(rows, COLUMNS, title="Users")


@app.command("show")
def show(ctx: typer.Context, name: str) -> None:
    """Show a user (yourself, or anyone for an admin)."""
    state = state_of(ctx)
    with state.context() as c:
        view = user_view(users.show_user(c, name))
    state.output.record(view)


@app.command("enable")
def enable(ctx: typer.Context, name: str) -> None:
    """Enable a disabled user (admin only); runs cancelled by disabling stay cancelled."""
    from leap.services import user_lifecycle

    state = state_of(ctx)
    with state.context() as c:
        view = user_view(user_lifecycle.enable(c, name))
    state.output.done(
        view,
        f"user '{name}' enabled; runs cancelled when they were disabled stay cancelled "
        "('leap retry' or 'leap process' starts them again)",
    )


@app.command("disable")
def disable(ctx: typer.Context, name: str) -> None:
    """Disable a user: they can no longer act, their queued and running work is cancelled,
    leapd fires none of their automation jobs; their data stays (admin only)."""
    from leap.services import user_lifecycle

    state = state_of(ctx)
    with state.context() as c:
        user, stopped = user_lifecycle.disable(c, name)
        view = {
            **user_view(user),
            "runs_cancelled": stopped.runs,
            "firings_cancelled": stopped.firings,
        }
    state.output.done(
        view,
        f"user '{name}' disabled; {len(stopped.runs)} run(s) and {stopped.firings} "
        "automation firing(s) cancelled",
    )


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be removed; change nothing.")
    ] = False,
) -> None:
    """Delete a user and everything they own: runs in progress are cancelled, then their
    rows and their folders on disk go (admin only). Asks for the name on a terminal;
    elsewhere needs --yes (docs/users.md)."""
    from leap.services import user_lifecycle
    from leap.specs import user_lifecycle as spec

    state = state_of(ctx)
    with state.context() as c:
        inv = user_lifecycle.inventory(c, name)
    how = spec.confirmation(yes=yes, dry_run=dry_run, interactive=_interactive())
    if how == spec.DRY_RUN:
        if state.as_json:
            state.output.json(inv.as_dict())
        state.output.message(f"deleting user '{name}' would remove:")
        for line in inv.lines():
            state.output.message(f"  {line}")
        return
    state.output.message(f"deleting user '{name}' removes:")
    for line in inv.lines():
        state.output.message(f"  {line}")
    if how == spec.REFUSE:
        raise UsageError(
            f"deleting '{name}' removes all their data and cannot be undone: "
            "repeat with --yes (no terminal to confirm on); nothing was changed"
        )
    if how == spec.ASK:
        typed = typer.prompt(
            f"type the user name ({name}) to delete it", default="", show_default=False, err=True
        )
        if not spec.confirmed(typed, name):
            raise UsageError(f"not confirmed: user '{name}' was not deleted")
    with state.context() as c:
        gone = user_lifecycle.delete(c, name)
    # Files only once the rows are gone for good: a failed commit never loses media.
    removed = user_lifecycle.remove_files(state.settings, gone.inventory.user_id)
    data = {
        **gone.inventory.as_dict(),
        "deleted": name,
        "runs_cancelled": gone.stopped.runs,
        "bytes_removed": removed.freed,
        "file_errors": removed.errors,
    }
    state.output.done(
        data,
        f"deleted user '{name}' ({len(gone.stopped.runs)} run(s) cancelled, "
        f"{spec.human_bytes(removed.freed)} removed from disk)",
    )
    if removed.errors:
        from leap.errors import PartialFailure

        for err in removed.errors:
            state.output.warning(f"not removed: {err}")
        raise PartialFailure(f"user '{name}' was deleted, but some of their files were not removed")


def _interactive() -> bool:
    """A person can answer: stdin is a terminal."""
    return sys.stdin.isatty()


@app.command("set-plan")
def set_plan(ctx: typer.Context, name: str, plan: str) -> None:
    """Put a user on a plan (admin only)."""
    state = state_of(ctx)
    with state.context() as c:
        view = user_view(users.set_plan(c, name, plan))
    state.output.done(view, f"user '{name}' is on plan '{plan}'")


@app.command("set-quota")
def set_quota(
    ctx: typer.Context,
    name: str,
    items: Annotated[list[str], typer.Argument(metavar="KEY=VALUE... | KEY...")],
    until: Annotated[
        str | None, typer.Option("--until", help="Custom limit until this date (YYYY-MM-DD).")
    ] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Back to the plan's limit.")] = False,
) -> None:
    """Give one user a custom limit, for good or --until a date, or --reset it (admin only)."""
    state = state_of(ctx)
    if reset and until is not None:
        raise UsageError("--reset and --until exclude each other")
    end = day_start(parse_date(until, option="--until")) if until is not None else None
    with state.context() as c:
        if reset:
            quotas.set_quota(c, name, [], items, None)
        else:
            quotas.set_quota(c, name, items, [], end)
    state.output.done(
        {"user": name, "reset" if reset else "set": items, "until": until},
        f"user '{name}': "
        + ("back to the plan for " if reset else "custom ")
        + ", ".join(items)
        + (f" until {until}" if until else ""),
    )


@app.command("set-timezone")
def set_timezone(ctx: typer.Context, name: str, timezone: str) -> None:
    """Set a user's timezone (yourself, or anyone for an admin)."""
    state = state_of(ctx)
    with state.context() as c:
        view = user_view(users.set_timezone(c, name, timezone))
    state.output.done(view, f"user '{name}' timezone is {timezone}")


@app.command("set-roots")
def set_roots(
    ctx: typer.Context,
    name: str,
    paths: Annotated[list[str] | None, typer.Argument(help="Absolute folders.")] = None,
    reset: Annotated[
        bool, typer.Option("--reset", help="Back to the install-wide [paths] roots.")
    ] = False,
) -> None:
    """Folders a user may read local sources from and export into (admin only)."""
    state = state_of(ctx)
    if bool(paths) == reset:
        from leap.errors import UsageError

        raise UsageError("give the folders, or --reset (not both)")
    with state.context() as c:
        user = users.set_roots(c, name, list(paths or []), reset=reset)
        policy = users.path_policy(c, user)
        view: dict[str, Any] = {
            "name": user.name,
            "roots": None if policy.roots is None else [str(p) for p in policy.roots],
            "own": [str(p) for p in policy.own],
        }
    roots, own = view["roots"], view["own"][0]
    shown = "any folder outside LEAP's own" if roots is None else ", ".join(roots)
    state.output.done(view, f"user '{name}' may use {shown} (and their own {own})")
