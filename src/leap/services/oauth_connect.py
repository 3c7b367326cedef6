"""`leap oauth`: connect a YouTube, VK or Zoom account from a terminal (docs/platforms.md,
"Connecting accounts"). The browser side ends on a loopback redirect on 127.0.0.1, or in a
pasted redirect URL when the browser runs on another machine; the code is exchanged, the
account looked up, and only then is anything stored: a failure at any step stores nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx

from leap.context import Runtime, open_context
from leap.db.scope import Scope
from leap.domain import CredentialKind
from leap.errors import AuthorizationFailed, Conflict, LeapError, UsageError
from leap.providers import google_oauth, vk, zoom_auth
from leap.providers.google_oauth import DeviceCode
from leap.providers.http import CredentialRejected
from leap.providers.loopback import LoopbackReceiver
from leap.providers.oauth import Pkce, Redirect, new_state, parse_pasted, read_redirect
from leap.providers.vk import VKAuth, VKClient, VKTokens, parse_implicit_redirect
from leap.providers.youtube import YouTubeAuth, YouTubeClient
from leap.providers.zoom import ZoomClient
from leap.services import credentials
from leap.services.credentials import NAME_RE
from leap.views import credential_view


class Interaction(Protocol):
    """The terminal side of a consent, supplied by the CLI."""

    def open_browser(self, url: str) -> bool:
        """Open `url`; False when there is no browser to open."""
        ...

    def show_url(self, url: str, *, opened: bool, paste: bool) -> None: ...

    def paste(self) -> str:
        """One pasted line (blocks); EOFError when there is nothing to read."""
        ...

    def show_device_code(self, code: DeviceCode) -> None: ...


@dataclass(frozen=True)
class FlowOptions:
    port: int
    timeout: float
    browser: bool  # False: --no-browser (print the URL, take a paste)
    can_paste: bool  # a paste is read from stdin


def _authorize(
    provider: str,
    build_url: Callable[[str], str],
    state: str,
    opts: FlowOptions,
    ui: Interaction,
) -> tuple[Redirect, str]:
    """Run the browser side; the redirect and the redirect URI it was sent to."""
    with LoopbackReceiver(opts.port) as receiver:
        url = build_url(receiver.redirect_uri)
        opened = opts.browser and ui.open_browser(url)
        paste = opts.can_paste and (not opened or not opts.browser)
        ui.show_url(url, opened=opened, paste=paste)
        kind, value = receiver.wait(opts.timeout, ui.paste if paste else None)
        redirect_uri = receiver.redirect_uri
    if kind == "redirect":
        return read_redirect(value, state, provider), redirect_uri
    return parse_pasted(value, state, provider), redirect_uri


def _code_flow(
    provider: str,
    client_id: str,
    url_for: Callable[[str, str, str], str],
    opts: FlowOptions,
    ui: Interaction,
) -> tuple[Redirect, str, Pkce]:
    """The authorization-code flow with PKCE S256 that VK ID and Zoom share: `url_for`
    (redirect URI, state, challenge) is the consent URL."""
    if not client_id.strip():
        raise UsageError("--client-id: empty")
    state, pkce = new_state(), Pkce.new()
    redirect, redirect_uri = _authorize(
        provider, lambda uri: url_for(uri, state, pkce.challenge), state, opts, ui
    )
    return redirect, redirect_uri, pkce


def _check_name(runtime: Runtime, scope: Scope, name: str, kind: CredentialKind) -> None:
    """Refuse before the browser opens, not after the user consented."""
    if not NAME_RE.fullmatch(name):
        raise UsageError(f"invalid credential name '{name}': letters, digits, '.', '_', '-'")
    with open_context(runtime, scope) as ctx:
        existing = ctx.repos.credentials.by_name(name)
        if existing is not None and existing.kind != kind.value:
            raise Conflict(f"credential '{name}' is a {existing.kind} credential, not {kind.value}")


def _save(
    runtime: Runtime,
    scope: Scope,
    name: str,
    kind: CredentialKind,
    payload: dict[str, Any],
    facts: dict[str, Any],
) -> tuple[dict[str, Any], bool]:
    facts = {**facts, "authorized_at": datetime.now(UTC).isoformat(timespec="seconds")}
    with open_context(runtime, scope) as ctx:
        # Re-running with the same name re-authenticates in place: sources and presets that
        # use the credential keep working.
        cred, replaced = credentials.save_credential(
            ctx, name, kind, payload, replace=True, facts=facts
        )
        return credential_view(cred), replaced


def _uses_captions(runtime: Runtime, scope: Scope) -> bool:
    """Whether any of the user's YouTube presets or templates turns captions on."""
    with open_context(runtime, scope) as ctx:
        presets = ctx.repos.presets.list(platform="youtube")
        if any(p.meta.get("captions") is True for p in presets):
            return True
        return any(_captions_in(t.meta) for t in ctx.repos.templates.list())


def _captions_in(value: object) -> bool:
    if isinstance(value, dict):
        return value.get("captions") is True or any(_captions_in(v) for v in value.values())
    if isinstance(value, list):
        return any(_captions_in(v) for v in value)
    return False


# -- YouTube ---------------------------------------------------------------------------------


def connect_youtube(
    runtime: Runtime,
    scope: Scope,
    name: str,
    client_secrets: Path,
    *,
    captions: bool | None,
    device: bool,
    opts: FlowOptions,
    ui: Interaction,
    http: httpx.Client,
) -> dict[str, Any]:
    s = runtime.settings.youtube
    client = google_oauth.load_client_secrets(
        client_secrets, token_uri=s.token_uri, auth_uri=s.auth_uri
    )
    _check_name(runtime, scope, name, CredentialKind.YOUTUBE)
    wants_captions = _uses_captions(runtime, scope) if captions is None else captions
    if device and wants_captions:
        raise UsageError(
            "--device: Google's device flow cannot grant youtube.force-ssl, which captions "
            "need; use --no-browser (paste the redirect), or --no-captions"
        )
    scopes = google_oauth.scopes_for(captions=wants_captions, device=device)
    if device:
        data = google_oauth.device_flow(
            http, s.device_auth_uri, client, scopes, ui.show_device_code
        )
    else:
        state = new_state()
        verifier: list[str] = []

        def build(redirect_uri: str) -> str:
            url, code_verifier = google_oauth.authorization_url(client, scopes, redirect_uri, state)
            verifier.append(code_verifier)
            return url

        redirect, redirect_uri = _authorize("google", build, state, opts, ui)
        data = google_oauth.exchange_code(http, client, redirect.code, redirect_uri, verifier[0])
    granted = str(data.get("scope") or " ".join(scopes)).split()
    missing = google_oauth.missing_scopes(set(granted), captions=wants_captions, playlists=True)
    if missing:
        raise AuthorizationFailed(
            f"google granted {' '.join(granted) or 'no scope'} but not {', '.join(missing)}; "
            "run the command again and allow every permission; nothing saved"
        )
    lifetime = data.get("expires_in")
    expires_at = datetime.now(UTC).timestamp() + (
        float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else 3599.0
    )
    auth = YouTubeAuth(
        http,
        token_uri=client.token_uri,
        client_id=client.client_id,
        client_secret=client.client_secret,
        refresh_token=str(data["refresh_token"]),
        access_token=str(data["access_token"]),
        expires_at=expires_at,
    )
    api = YouTubeClient(http, auth, api_base_url=s.api_base_url, upload_base_url=s.upload_base_url)
    channel = api.my_channel()
    if channel is None:
        raise AuthorizationFailed(
            "this Google account has no YouTube channel: create one on youtube.com (or pick "
            "the brand account that owns it at consent), then run the command again; "
            "nothing saved"
        )
    payload = {
        "client_id": client.client_id,
        "client_secret": client.client_secret,
        "refresh_token": data["refresh_token"],
        "token_uri": client.token_uri,
        "scopes": granted,
        "token": data["access_token"],
        "expiry": datetime.fromtimestamp(expires_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    facts = {"channel_id": channel[0], "channel": channel[1], "scopes": granted}
    view, replaced = _save(runtime, scope, name, CredentialKind.YOUTUBE, payload, facts)
    return {**view, "replaced": replaced, "channel": channel[1], "channel_id": channel[0]}


# -- VK ---------------------------------------------------------------------------------------


def connect_vk(
    runtime: Runtime,
    scope: Scope,
    name: str,
    client_id: str,
    *,
    opts: FlowOptions,
    ui: Interaction,
    http: httpx.Client,
) -> dict[str, Any]:
    s = runtime.settings.vk
    _check_name(runtime, scope, name, CredentialKind.VK)
    redirect, redirect_uri, pkce = _code_flow(
        "vk",
        client_id,
        lambda uri, state, challenge: vk.authorize_url(
            s.id_base_url, client_id, uri, state, challenge, s.oauth_scope
        ),
        opts,
        ui,
    )
    device_id = redirect.params.get("device_id")
    if not device_id:
        raise AuthorizationFailed(
            "vk: the redirect carries no device_id (paste the whole redirect URL, not only "
            "the code); nothing saved"
        )
    try:
        grant = vk.exchange_code(
            http, s.id_base_url, client_id, redirect.code, pkce.verifier, device_id, redirect_uri
        )
    except CredentialRejected as exc:
        raise AuthorizationFailed(
            f"{exc.message}: the code was used already, expired, or belongs to another "
            "request; run the command again"
        ) from None
    user = _vk_user(runtime, http, grant.tokens)
    payload = {
        "access_token": grant.tokens.access_token,
        "refresh_token": grant.tokens.refresh_token,
        "device_id": grant.tokens.device_id,
        "client_id": client_id,
        "user_id": grant.user_id or user.get("id"),
        "expires_at": grant.tokens.expires_at,
    }
    facts = {"account": _vk_name(user), "scopes": (grant.scope or s.oauth_scope).split()}
    view, replaced = _save(runtime, scope, name, CredentialKind.VK, payload, facts)
    return {**view, "replaced": replaced, "account": _vk_name(user)}


def connect_vk_token(
    runtime: Runtime, scope: Scope, name: str, pasted: str, *, http: httpx.Client
) -> dict[str, Any]:
    """The reference system's fallback: a pasted implicit-flow redirect URL or a bare token
    (which cannot be renewed: `leap doctor` warns before it lapses)."""
    _check_name(runtime, scope, name, CredentialKind.VK)
    text = pasted.strip()
    if not text:
        raise UsageError("--token: nothing was pasted")
    if "access_token=" in text or "#" in text:
        tokens = parse_implicit_redirect(text)
    elif " " in text or len(text) > 1024:
        raise UsageError("--token: that is neither a VK token nor the blank.html redirect URL")
    else:
        tokens = VKTokens(text)
    user = _vk_user(runtime, http, tokens)
    payload = {
        "access_token": tokens.access_token,
        "user_id": user.get("id"),
        "expires_at": tokens.expires_at,
    }
    view, replaced = _save(
        runtime, scope, name, CredentialKind.VK, payload, {"account": _vk_name(user)}
    )
    return {**view, "replaced": replaced, "account": _vk_name(user)}


def _vk_user(runtime: Runtime, http: httpx.Client, tokens: VKTokens) -> dict[str, Any]:
    s = runtime.settings.vk
    auth = VKAuth(http, id_base_url=s.id_base_url, tokens=tokens)
    client = VKClient(http, api_base_url=s.api_base_url, api_version=s.api_version, auth=auth)
    try:
        users = client.call("users.get", {})
    except CredentialRejected as exc:
        raise AuthorizationFailed(f"{exc.message}; nothing saved") from None
    if isinstance(users, list) and users and isinstance(users[0], dict):
        return users[0]
    return {}


def _vk_name(user: dict[str, Any]) -> str:
    full = f"{user.get('first_name', '')} {user.get('last_name', '')}".strip()
    return full or str(user.get("id", ""))


# -- Zoom -------------------------------------------------------------------------------------


def connect_zoom(
    runtime: Runtime,
    scope: Scope,
    name: str,
    client_id: str,
    client_secret: str,
    *,
    opts: FlowOptions,
    ui: Interaction,
    http: httpx.Client,
) -> dict[str, Any]:
    z = runtime.settings.zoom
    _check_name(runtime, scope, name, CredentialKind.ZOOM_OAUTH)
    redirect, redirect_uri, pkce = _code_flow(
        "zoom",
        client_id,
        lambda uri, state, challenge: zoom_auth.authorize_url(
            z.oauth_base_url, client_id, uri, state, challenge
        ),
        opts,
        ui,
    )
    try:
        tokens = zoom_auth.exchange_authorization_code(
            http,
            z.oauth_base_url,
            client_id,
            client_secret,
            redirect.code,
            redirect_uri,
            code_verifier=pkce.verifier,
        )
    except CredentialRejected as exc:
        raise AuthorizationFailed(f"{exc.message}; nothing saved") from None
    auth = zoom_auth.UserOAuth(http, z.oauth_base_url, client_id, client_secret, tokens)
    try:
        user = ZoomClient(http, z.api_base_url, auth).get_user("me")
        account = str(user.get("email") or user.get("id") or "")
    except LeapError:
        account = ""  # the user:read scope is optional: sync works without it
    # The lookup may have refreshed (and so rotated) the pair: store what the client holds.
    tokens = auth.tokens
    payload = {
        "client_id": client_id,
        "client_secret": client_secret,
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "expires_at": tokens.expires_at,
    }
    view, replaced = _save(
        runtime, scope, name, CredentialKind.ZOOM_OAUTH, payload, {"account": account}
    )
    return {**view, "replaced": replaced, "account": account}
