"""What LEAP asks a platform about one credential: the one cheap call that proves it works
(`probe_*`, read by services.credential_health, which turns the answers into a verdict) and
the revocation that ends its grant before `leap credentials remove` deletes it. No unit of
work is held open across any of these calls: each runs between the caller's short ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from leap.config import Settings
from leap.context import Runtime
from leap.db.scope import Scope
from leap.domain import CredentialKind
from leap.errors import UsageError
from leap.providers import google_oauth, vk, zoom_auth
from leap.providers.http import PermanentError
from leap.providers.zoom import ZoomScopeMissing
from leap.services import clients

# -- probes -------------------------------------------------------------------------------------


def probe_zoom(runtime: Runtime, scope: Scope, cred_id: int, kind: str, http: httpx.Client) -> str:
    """Who the Zoom credential acts as; raises CredentialDead when Zoom refuses it."""
    client = clients.make_zoom_client(runtime, scope, cred_id, http)
    if kind == CredentialKind.ZOOM_S2S.value:
        # An account-level token names no user ("me" is meaningless): the token is the proof.
        client.auth.token()
        return "Zoom user account token issued"
    if kind != CredentialKind.ZOOM_OAUTH.value:
        raise UsageError(f"a {kind} credential is not a Zoom credential")
    try:
        user = client.get_user("me")
    except ZoomScopeMissing:
        # A token was issued and Zoom understood it; only the optional user lookup is
        # outside the app's scopes, which sync does without.
        return "Zoom user token works (no user:read scope; host e-mails stay empty)"
    return f"Zoom user {user.get('email') or user.get('id')}"


@dataclass(frozen=True)
class YouTubeProbe:
    channel: str | None  # the channel's title; None when the token may not read it
    has_channel: bool  # False: the account has no YouTube channel to publish to
    scopes: list[str]  # granted, as Google's last token answer said (empty: not known)


def probe_youtube(runtime: Runtime, scope: Scope, cred_id: int, http: httpx.Client) -> YouTubeProbe:
    """channels.list mine=true (1 quota unit): the refresh token still gives access tokens
    and the channel it publishes to. Raises CredentialDead when Google refuses it."""
    client, _ = clients.youtube_client(runtime, scope, cred_id, http)
    try:
        found = client.my_channel()
        readable = True
    except PermanentError as exc:
        # channels.list takes youtube, youtube.readonly, force-ssl or youtubepartner, not
        # youtube.upload: a 403 "insufficient authentication scopes" means the token was
        # accepted and may upload, it just cannot read the channel.
        if exc.status != 403 or "insufficient" not in exc.message.lower():
            raise
        found, readable = None, False
    # Read after the call: a refresh stores the scopes Google's answer granted.
    scopes = clients.secret_of(runtime, scope, cred_id).get("scopes")
    granted = [str(s) for s in scopes] if isinstance(scopes, list) else []
    return YouTubeProbe(
        channel=found[1] if found else None,
        has_channel=found is not None or not readable,
        scopes=granted,
    )


def probe_vk(runtime: Runtime, scope: Scope, cred_id: int, http: httpx.Client) -> str:
    """users.get (the token's own user): who the VK credential acts as; raises
    CredentialDead when VK refuses the token and it cannot be refreshed."""
    users = clients.vk_client(runtime, scope, cred_id, http).call("users.get", {})
    user: dict[str, Any] = users[0] if isinstance(users, list) and users else {}
    if not isinstance(user, dict):
        user = {}
    name = f"{user.get('first_name', '')} {user.get('last_name', '')}".strip()
    ident = user.get("id")
    if name and ident is not None:
        return f"VK user {name} (id {ident})"
    return f"VK user {name or ident or 'of this token'}"


# -- revocation ---------------------------------------------------------------------------------


def revoke_platform(kind: str, secret: dict[str, Any]) -> str | None:
    """The platform where this credential's grant can be revoked, or None when it has no
    revoke (API keys, Zoom S2S apps, a VK token without the app's client id)."""
    if kind == CredentialKind.YOUTUBE.value:
        return "youtube"
    if kind == CredentialKind.ZOOM_OAUTH.value:
        return "zoom"
    if kind == CredentialKind.VK.value and secret.get("client_id"):
        return "vk"
    return None


def revoke(settings: Settings, http: httpx.Client, kind: str, secret: dict[str, Any]) -> bool:
    """End the credential's grant at its platform; False when the platform has no revoke.
    A refusal raises (LeapError, or httpx.HTTPError for a transport failure)."""
    if kind == CredentialKind.YOUTUBE.value:
        # Revoking the refresh token takes every access token issued from it along.
        google_oauth.revoke(http, settings.youtube.revoke_uri, str(secret["refresh_token"]))
        return True
    if kind == CredentialKind.ZOOM_OAUTH.value:
        zoom_auth.revoke(
            http,
            settings.zoom.oauth_base_url,
            str(secret["client_id"]),
            str(secret["client_secret"]),
            str(secret["refresh_token"]),
        )
        return True
    if kind == CredentialKind.VK.value and secret.get("client_id"):
        # VK ID's logout ends the access token and the refresh token issued with it.
        vk.logout(
            http, settings.vk.id_base_url, str(secret["client_id"]), str(secret["access_token"])
        )
        return True
    return False
