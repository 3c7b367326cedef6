"""`leap credentials ...`: add (secrets from a file or an env var, never an argument), list,
show, test, remove. Secrets are never printed back."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from leap.cli import _files
from leap.cli._run import state_of
from leap.errors import CredentialDead, LeapError, UsageError
from leap.services import credential_health, credentials
from leap.views import credential_view

app = typer.Typer(help="Credentials for Zoom, YouTube, VK and API keys.", no_args_is_help=True)

COLUMNS = ["name", "kind", "status", "status_reason", "public", "expires_at"]


# Token lifetimes become datetimes (fromtimestamp), which overflow past year 9999; a token
# saved from an exchange never lives longer than a few years.
_TIMES = {"expires_in": 10**9, "expires_at": 10**10}


def read_secret_file(path: Path) -> dict[str, Any]:
    data = _files.read_document(path, fmt="toml" if path.suffix == ".toml" else "json")
    for key, limit in _TIMES.items():
        if key in data:
            value = data[key]
            try:
                number = float(value) if not isinstance(value, bool) else math.nan
            except (TypeError, ValueError, OverflowError):
                number = math.nan
            if not 0 <= number <= limit:  # also false for nan
                raise UsageError(f"{path}: {key}: expected seconds from 0 to {limit}")
    return data


def from_env(var: str, option: str) -> str:
    value = os.environ.get(var)
    if not value:
        raise UsageError(f"{option} {var}: that environment variable is empty or not set")
    return value


@app.command("add")
def add(
    ctx: typer.Context,
    kind: Annotated[
        str, typer.Argument(help="zoom-s2s|zoom-oauth|youtube|vk|fireworks|openai|llm")
    ],
    name: str,
    from_file: Annotated[
        Path | None, typer.Option("--from-file", help="JSON (or .toml) with the fields.")
    ] = None,
    account_id: Annotated[str | None, typer.Option(help="Zoom S2S account id.")] = None,
    client_id: Annotated[str | None, typer.Option(help="OAuth client id.")] = None,
    client_secret_env: Annotated[
        str | None, typer.Option(help="Name of the env var holding the client secret.")
    ] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="Name of the env var holding the API key.")
    ] = None,
    replace: Annotated[
        bool,
        typer.Option("--replace", help="New secrets for an existing credential (re-authenticate)."),
    ] = False,
) -> None:
    """Store a credential, encrypted. Secrets come from --from-file or --*-env only."""
    state = state_of(ctx)
    k = credentials.parse_kind(kind)
    raw: dict[str, Any] = read_secret_file(from_file) if from_file else {}
    if account_id:
        raw["account_id"] = account_id
    if client_id:
        raw["client_id"] = client_id
    if client_secret_env:
        raw["client_secret"] = from_env(client_secret_env, "--client-secret-env")
    if api_key_env:
        raw["api_key"] = from_env(api_key_env, "--api-key-env")
    with state.context() as c:
        cred, replaced = credentials.save_credential(c, name, k, raw, replace=replace)
        view = credential_view(cred)
    # Say what happened: --replace on a name not yet used adds it.
    verb = "replaced" if replaced else "added"
    state.output.done(view, f"{verb} {k.value} credential '{name}' (encrypted)")


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """List credentials and whether they need re-authentication."""
    state = state_of(ctx)
    with state.context() as c:
        rows = [credential_view(x) for x in credentials.list_credentials(c)]
    state.output.table(rows, COLUMNS, title="Credentials")


@app.command("show")
def show(ctx: typer.Context, name: str) -> None:
    """Show a credential's non-secret facts."""
    state = state_of(ctx)
    with state.context() as c:
        view = credential_view(credentials.get(c, name))
    state.output.record(view)


@app.command("test")
def test(ctx: typer.Context, name: str) -> None:
    """Check a credential with one cheap call to its service (exit 5: dead; 1: attention)."""
    # Zoom: a token and the user; YouTube: the channel and the scopes its presets need; VK:
    # users.get. API keys have no free call: they are reported unchecked.
    state = state_of(ctx)
    view = credential_health.check(state.runtime(), state.scope(), name)
    out = state.output
    if out.as_json:
        out.json(view)
    line = f"credential '{name}': {view['detail']}"
    if view["state"] == credential_health.DEAD:
        raise CredentialDead(line)
    if view["state"] == credential_health.ERROR:
        raise LeapError(line)
    if view["attention"]:
        out.warning(line)
        raise typer.Exit(1)
    if not out.as_json:
        works = view["state"] == credential_health.OK
        out.message(f"credential '{name}' works: {view['detail']}" if works else line)


@app.command("remove")
def remove(ctx: typer.Context, name: str) -> None:
    """Revoke a credential at its platform, then delete it (refused while something uses it)."""
    state = state_of(ctx)
    done = credential_health.remove(state.runtime(), state.scope(), name)
    if done.warning:
        state.output.warning(done.warning)
    revoked = " (revoked at the platform)" if done.revoked else ""
    state.output.done(
        {"removed": name, "revoked": done.revoked}, f"removed credential '{name}'{revoked}"
    )
