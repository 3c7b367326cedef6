"""`leap oauth youtube|vk|zoom NAME`: connect an account with the platform's consent page, on
a laptop (a browser opens, the redirect lands on 127.0.0.1) or on a server over SSH
(--no-browser: open the printed URL anywhere, paste back the address it ends on)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from leap.cli._output import Output
from leap.cli._run import AppState, state_of
from leap.cli.credentials_cmd import from_env
from leap.errors import UsageError
from leap.providers.google_oauth import DeviceCode
from leap.providers.http import make_http_client
from leap.services import oauth_connect
from leap.services.oauth_connect import FlowOptions

app = typer.Typer(
    help="Connect a YouTube, VK or Zoom account through its consent page.", no_args_is_help=True
)

NoBrowser = Annotated[
    bool,
    typer.Option(
        "--no-browser",
        help="Print the URL instead of opening a browser; paste back the address it ends on.",
    ),
]
Port = Annotated[
    int | None,
    typer.Option(help="Loopback port for the redirect (default oauth.redirect_port; 0: free)."),
]
Timeout = Annotated[
    float | None,
    typer.Option(help="Seconds to wait for consent (default oauth.timeout_seconds)."),
]


def _has_browser() -> bool:
    # On a server without a display, webbrowser would start a text browser (lynx, w3m) in
    # the terminal; the printed URL and a paste serve that user better.
    if os.environ.get("BROWSER"):
        return True
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class _Terminal:
    """oauth_connect.Interaction on this terminal: messages on stderr, pastes from stdin."""

    def __init__(self, output: Output) -> None:
        self._out = output

    def open_browser(self, url: str) -> bool:
        if not _has_browser():
            return False
        import webbrowser

        try:
            return webbrowser.open(url, new=1)
        except webbrowser.Error:
            return False

    def show_url(self, url: str, *, opened: bool, paste: bool) -> None:
        if opened:
            self._out.message("A browser window opened to authorise LEAP; if none did, open:")
        else:
            self._out.message("Open this URL in a browser (on any machine) and allow access:")
        # The URL alone on its line, unwrapped, so that it copies whole.
        sys.stderr.write(url + "\n")
        sys.stderr.flush()
        if paste:
            self._out.message(
                "Then paste the address the browser ends on (the page may fail to load: "
                "that is expected) and press Enter:"
            )

    def paste(self) -> str:
        line = sys.stdin.readline()
        if not line:
            raise EOFError
        return line

    def show_device_code(self, code: DeviceCode) -> None:
        self._out.message(
            f"On any device, open {code.verification_url} and enter the code {code.user_code} "
            f"(valid {code.expires_in / 60:.0f} minutes)."
        )


def _options(
    state: AppState, port: int | None, timeout: float | None, no_browser: bool
) -> FlowOptions:
    s = state.settings.oauth
    return FlowOptions(
        port=s.redirect_port if port is None else port,
        timeout=s.timeout_seconds if timeout is None else timeout,
        browser=not no_browser,
        can_paste=no_browser or sys.stdin.isatty(),
    )


def _done(state: AppState, view: dict[str, object], text: str) -> None:
    verb = "re-authenticated" if view.get("replaced") else "connected"
    state.output.done(view, f"{verb} {text} (encrypted)")


@app.command("youtube")
def youtube(
    ctx: typer.Context,
    name: str,
    client_secrets: Annotated[
        Path,
        typer.Option(
            "--client-secrets", help="client_secret_*.json of a Desktop-app OAuth client."
        ),
    ],
    captions: Annotated[
        bool | None,
        typer.Option(
            "--captions/--no-captions",
            help="Ask for youtube.force-ssl (captions). Default: if a preset uploads captions.",
        ),
    ] = None,
    device: Annotated[
        bool,
        typer.Option("--device", help="Google's device flow: type a code on another device."),
    ] = False,
    no_browser: NoBrowser = False,
    port: Port = None,
    timeout: Timeout = None,
) -> None:
    """Connect a YouTube channel (offline access, PKCE); the same NAME re-authenticates."""
    state = state_of(ctx)
    with make_http_client() as http:
        view = oauth_connect.connect_youtube(
            state.runtime(),
            state.scope(),
            name,
            client_secrets,
            captions=captions,
            device=device,
            opts=_options(state, port, timeout, no_browser),
            ui=_Terminal(state.output),
            http=http,
        )
    _done(state, view, f"youtube credential '{name}' to channel '{view['channel']}'")


@app.command("vk")
def vk(
    ctx: typer.Context,
    name: str,
    client_id: Annotated[
        str | None, typer.Option("--client-id", help="The VK ID app's id.")
    ] = None,
    token: Annotated[
        bool,
        typer.Option(
            "--token",
            help="Paste a token (or the blank.html redirect URL) on stdin instead: it cannot "
            "be renewed.",
        ),
    ] = False,
    no_browser: NoBrowser = False,
    port: Port = None,
    timeout: Timeout = None,
) -> None:
    """Connect a VK account with VK ID (OAuth 2.1, PKCE, device_id, rotating refresh)."""
    state = state_of(ctx)
    with make_http_client() as http:
        if token:
            if client_id:
                raise UsageError("--token and --client-id do not go together")
            pasted = _read_token(state)
            view = oauth_connect.connect_vk_token(
                state.runtime(), state.scope(), name, pasted, http=http
            )
        else:
            if not client_id:
                raise UsageError("give --client-id ID (or --token to paste a token)")
            view = oauth_connect.connect_vk(
                state.runtime(),
                state.scope(),
                name,
                client_id,
                opts=_options(state, port, timeout, no_browser),
                ui=_Terminal(state.output),
                http=http,
            )
    _done(state, view, f"vk credential '{name}' to {view['account'] or 'the account'}")


def _read_token(state: AppState) -> str:
    # Never an argument: it would land in shell history and in `ps`.
    if sys.stdin.isatty():
        return str(typer.prompt("VK token or redirect URL", hide_input=True, err=True))
    state.output.message("reading the VK token from stdin")
    return sys.stdin.readline()


@app.command("zoom")
def zoom(
    ctx: typer.Context,
    name: str,
    client_id: Annotated[str, typer.Option("--client-id", help="The Zoom OAuth app's client id.")],
    client_secret_env: Annotated[
        str,
        typer.Option(
            "--client-secret-env", help="Name of the env var holding the app's client secret."
        ),
    ],
    no_browser: NoBrowser = False,
    port: Port = None,
    timeout: Timeout = None,
) -> None:
    """Connect a Zoom user with user-level OAuth (PKCE, rotating refresh)."""
    state = state_of(ctx)
    secret = from_env(client_secret_env, "--client-secret-env")
    with make_http_client() as http:
        view = oauth_connect.connect_zoom(
            state.runtime(),
            state.scope(),
            name,
            client_id,
            secret,
            opts=_options(state, port, timeout, no_browser),
            ui=_Terminal(state.output),
            http=http,
        )
    _done(state, view, f"zoom credential '{name}' to {view['account'] or 'the Zoom user'}")
