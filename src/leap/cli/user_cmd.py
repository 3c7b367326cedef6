"""`leap user ...`: manage the install's users (admin only where it touches others)."""

from __future__ import annotations

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
    """Enable a disabled user (admin only)."""
    _set_disabled(ctx, name, False)


@app.command("disable")
def disable(ctx: typer.Context, name: str) -> None:
    """Disable a user: they can no longer act, their data stays (admin only)."""
    _set_disabled(ctx, name, True)


def _set_disabled(ctx: typer.Context, name: str, disabled: bool) -> None:
    state = state_of(ctx)
    with state.context() as c:
        view = user_view(users.set_disabled(c, name, disabled))
    state.output.done(view, f"user '{name}' {'disabled' if disabled else 'enabled'}")


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Confirm deletion.")] = False,
) -> None:
    """Delete a user and everything they own (admin only; needs --yes)."""
    state = state_of(ctx)
    if not yes:
        from leap.errors import UsageError

        raise UsageError(f"deleting '{name}' removes all their data: repeat with --yes")
    with state.context() as c:
        users.delete_user(c, name)
    state.output.done({"deleted": name}, f"deleted user '{name}'")


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
