"""Credential health (`leap credentials test`, `leap doctor`): one real, cheap call per
credential, turned into a verdict a person or a script can act on, and the removal that
revokes a credential at its platform before deleting it.

Every verdict is a dict: name, kind, state, attention, detail (one line, never a secret),
days_left (float or None) and, for YouTube, channel when known. States:
  ok             the call worked
  expiring       it works, but is known to lapse within settings.oauth.warn_days
  dead           the platform refused it for good (the credential is marked needs_reauth)
  missing_scope  it works, but lacks a scope one of its presets needs
  error          the check itself failed (outage, quota, no channel): says nothing for sure
  unchecked      no cheap call exists (API keys): the next real use tells

Units of work are short and never span a network call: the facts are read in one, each
outcome (mark_dead, mark_ok) is committed in its own, so a later failure never undoes it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from leap.context import Context, Runtime, open_context
from leap.db.models import Credential
from leap.db.scope import Scope
from leap.domain import CredentialKind, CredentialStatus
from leap.errors import CredentialDead, LeapError
from leap.logs import redact
from leap.providers import google_oauth
from leap.providers.http import make_http_client
from leap.services import credentials, provider_check
from leap.services.sources import ZOOM_KINDS

OK, EXPIRING, DEAD, MISSING_SCOPE, ERROR, UNCHECKED = (
    "ok",
    "expiring",
    "dead",
    "missing_scope",
    "error",
    "unchecked",
)
STATES = (OK, EXPIRING, DEAD, MISSING_SCOPE, ERROR, UNCHECKED)
NEEDS_ATTENTION = frozenset({EXPIRING, DEAD, MISSING_SCOPE, ERROR})
API_KEY_KINDS = frozenset(
    {CredentialKind.FIREWORKS.value, CredentialKind.OPENAI.value, CredentialKind.LLM.value}
)
# What each scope is needed for, to say why a missing one matters.
_SCOPE_USE = {
    google_oauth.UPLOAD: "uploads",
    google_oauth.YOUTUBE: "playlists",
    google_oauth.FORCE_SSL: "captions",
}
DAY_S = 86400.0


def reauth_command(kind: str, name: str) -> str:
    """The command that gives the credential new secrets."""
    if kind == CredentialKind.YOUTUBE.value:
        return f"leap oauth youtube {name}"
    if kind == CredentialKind.VK.value:
        return f"leap oauth vk {name}"
    if kind == CredentialKind.ZOOM_OAUTH.value:
        return f"leap oauth zoom {name}"
    # Zoom S2S apps and API keys have no consent page: their secrets are typed in again.
    return f"leap credentials add {kind} {name} --replace"


@dataclass(frozen=True)
class _Facts:
    """What the check needs from the database, read in one short unit of work."""

    id: int
    name: str
    kind: str
    status: str
    status_reason: str | None
    channel: str | None  # the channel named when the credential was connected
    testing_days_left: float | None  # a Testing-mode Google app's refresh-token deadline
    captions: bool  # a preset using it uploads captions (needs youtube.force-ssl)
    playlists: bool  # a preset using it adds to a playlist (needs youtube or force-ssl)
    vk_expires_at: float | None  # epoch seconds the VK access token lapses
    vk_renewable: bool  # the VK token can be refreshed (so its expiry does not matter)
    unreadable: str | None  # why the secret could not be decrypted, if it could not


def _facts(ctx: Context, cred: Credential) -> _Facts:
    presets = ctx.repos.presets.list(credential_id=cred.id)
    channel = cred.public.get("channel")
    expires_at: float | None = None
    renewable = False
    unreadable: str | None = None
    if cred.kind in ZOOM_KINDS:
        # The check proves the stored secrets, not a token cached from them up to an hour
        # ago (committed with this unit of work, before the call).
        credentials.forget_token(ctx, cred.id)
    if cred.kind == CredentialKind.VK.value:
        try:
            secret = credentials.secret_of(ctx, cred)
        except LeapError as exc:
            unreadable = exc.message
        else:
            raw = secret.get("expires_at")
            if isinstance(raw, int | float) and not isinstance(raw, bool) and raw:
                expires_at = float(raw)
            # What VKAuth.can_refresh asks: a refresh needs all three.
            renewable = bool(
                secret.get("refresh_token") and secret.get("device_id") and secret.get("client_id")
            )
    return _Facts(
        id=cred.id,
        name=cred.name,
        kind=cred.kind,
        status=cred.status,
        status_reason=cred.status_reason,
        channel=channel if isinstance(channel, str) and channel else None,
        testing_days_left=credentials.testing_mode_days_left(cred),
        captions=any(p.meta.get("captions") is True for p in presets),
        playlists=any(bool(p.meta.get("playlist_id")) for p in presets),
        vk_expires_at=expires_at,
        vk_renewable=renewable,
        unreadable=unreadable,
    )


def _view(
    facts: _Facts,
    state: str,
    detail: str,
    *,
    days_left: float | None = None,
    channel: str | None = None,
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "name": facts.name,
        "kind": facts.kind,
        "state": state,
        "attention": state in NEEDS_ATTENTION,
        # One line, and redacted: the detail quotes provider answers.
        "detail": " ".join(redact(detail).split()),
        "days_left": days_left,
    }
    if facts.kind == CredentialKind.YOUTUBE.value and (channel or facts.channel):
        view["channel"] = channel or facts.channel
    return view


def check(runtime: Runtime, scope: Scope, name: str) -> dict[str, Any]:
    """The health of credential `name` of the acting user (NotFound if there is none)."""
    with open_context(runtime, scope) as ctx:
        facts = _facts(ctx, credentials.get(ctx, name))
    with make_http_client() as http:
        return _testing_mode_hint(runtime, scope, _check(runtime, scope, facts, http))


def check_all(runtime: Runtime, scope: Scope) -> list[dict[str, Any]]:
    """The health of every credential of the acting user, by name."""
    with open_context(runtime, scope) as ctx:
        all_facts = [_facts(ctx, c) for c in credentials.list_credentials(ctx)]
    if not all_facts:
        return []
    with make_http_client() as http:
        return [
            _testing_mode_hint(runtime, scope, _check(runtime, scope, facts, http))
            for facts in all_facts
        ]


TESTING_MODE_HINT = (
    "Google app in Testing mode: refresh tokens die 7 days after consent; set the consent "
    "screen to In production"
)


def _testing_mode_hint(runtime: Runtime, scope: Scope, view: dict[str, Any]) -> dict[str, Any]:
    """A dead Google credential whose death matched the Testing-mode pattern (mark_dead
    records it, possibly during this very check) says so: re-authenticating alone would buy
    only another 7 days."""
    if view["state"] != DEAD or view["kind"] != CredentialKind.YOUTUBE.value:
        return view
    with open_context(runtime, scope) as ctx:
        cred = ctx.repos.credentials.by_name(view["name"])
        testing = cred is not None and bool(cred.public.get("testing_mode"))
    if testing:
        view = {**view, "detail": f"{view['detail']} ({TESTING_MODE_HINT})"}
    return view


def _dead(facts: _Facts, reason: str) -> dict[str, Any]:
    # Provider messages end in a generic hint ("; re-authenticate the YouTube credential");
    # the exact command replaces it rather than following it.
    cause = reason.split("; re-authenticate")[0].rstrip("; ") or reason
    return _view(facts, DEAD, f"{cause}; re-authenticate: {reauth_command(facts.kind, facts.name)}")


def _mark_dead(runtime: Runtime, scope: Scope, cred_id: int, reason: str) -> None:
    # Its own unit of work; a refresh refusal was already marked by the token store, an API
    # refusal (a refused access token, a VK error 5 that no refresh can cure) is marked here.
    # A credential removed meanwhile has nothing left to mark.
    with open_context(runtime, scope) as ctx:
        cred = ctx.repos.credentials.get(cred_id)
        if cred is not None:
            credentials.mark_dead(ctx, cred, reason)


def _mark_ok(runtime: Runtime, scope: Scope, cred_id: int) -> None:
    with open_context(runtime, scope) as ctx:
        cred = ctx.repos.credentials.get(cred_id)
        if cred is not None:
            credentials.mark_ok(ctx, cred)


def _check(runtime: Runtime, scope: Scope, facts: _Facts, http: httpx.Client) -> dict[str, Any]:
    if facts.status == CredentialStatus.NEEDS_REAUTH.value:
        # Already refused for good: asking again would only spend a call (and a refresh
        # token that rotates). New secrets are the way back.
        return _dead(facts, facts.status_reason or "marked as needing re-authentication")
    if facts.unreadable is not None:
        return _view(facts, ERROR, facts.unreadable)
    if facts.kind in API_KEY_KINDS:
        # Fireworks, OpenAI and LLM endpoints have no free call that proves a key without
        # spending on a transcription or a completion.
        return _view(facts, UNCHECKED, "API key stored; checked by the next transcription/LLM call")
    if facts.kind == CredentialKind.VK.value and not facts.vk_renewable:
        left = _seconds_left(facts.vk_expires_at)
        if left is not None and left <= 0:
            when = datetime.fromtimestamp(facts.vk_expires_at or 0, UTC).strftime("%Y-%m-%d")
            reason = f"the VK token expired on {when} and cannot be renewed (no refresh token)"
            _mark_dead(runtime, scope, facts.id, reason)
            return _dead(facts, reason)
    try:
        view = _probe(runtime, scope, facts, http)
    except CredentialDead as exc:
        _mark_dead(runtime, scope, facts.id, exc.message)
        return _dead(facts, exc.message)
    except LeapError as exc:
        return _view(facts, ERROR, exc.message)
    except httpx.HTTPError as exc:  # a transport failure the retries did not absorb
        return _view(facts, ERROR, f"{type(exc).__name__}: {exc}")
    _mark_ok(runtime, scope, facts.id)
    return view


def _probe(runtime: Runtime, scope: Scope, facts: _Facts, http: httpx.Client) -> dict[str, Any]:
    """The one call for the credential's kind and what its answer says."""
    if facts.kind in ZOOM_KINDS:
        return _view(
            facts, OK, provider_check.probe_zoom(runtime, scope, facts.id, facts.kind, http)
        )
    if facts.kind == CredentialKind.YOUTUBE.value:
        return _youtube(runtime, scope, facts, http)
    if facts.kind == CredentialKind.VK.value:
        return _vk(runtime, scope, facts, http)
    return _view(facts, ERROR, f"no health check for {facts.kind} credentials")


def _youtube(runtime: Runtime, scope: Scope, facts: _Facts, http: httpx.Client) -> dict[str, Any]:
    probe = provider_check.probe_youtube(runtime, scope, facts.id, http)
    channel = probe.channel or facts.channel
    days = facts.testing_days_left
    cmd = reauth_command(facts.kind, facts.name)
    if not probe.has_channel:
        return _view(
            facts,
            ERROR,
            "this Google account has no YouTube channel to publish to: create one on "
            f"youtube.com (or pick the brand account that owns it), then re-run {cmd}",
            days_left=days,
        )
    # Unknown scopes (a secret saved before any refresh said) are not reported missing.
    missing = (
        google_oauth.missing_scopes(
            set(probe.scopes), captions=facts.captions, playlists=facts.playlists
        )
        if probe.scopes
        else []
    )
    if missing:
        listed = ", ".join(f"{s} ({_SCOPE_USE.get(s, 'publishing')})" for s in missing)
        flag = " --captions" if google_oauth.FORCE_SSL in missing else ""
        noun = "scope" if len(missing) == 1 else "scopes"
        return _view(
            facts,
            MISSING_SCOPE,
            f"missing {noun} {listed}: re-run {cmd}{flag}",
            days_left=days,
            channel=channel,
        )
    if days is not None:
        # An earlier refresh token of this credential died 7 days after consent: the app is
        # in Testing mode, and this one will die the same way.
        state = EXPIRING if days <= runtime.settings.oauth.warn_days else OK
        return _view(
            facts,
            state,
            "Google app in Testing mode: refresh tokens die after 7 days; expires in "
            f"{max(days, 0.0):.1f} days — publish the app (In production) or re-run {cmd}",
            days_left=days,
            channel=channel,
        )
    if probe.channel is None:
        detail = "token works (its scopes do not let it read the channel's name)"
        if channel:
            detail = f"YouTube channel {channel} (token works; it may not read the channel)"
        return _view(facts, OK, detail, channel=channel)
    return _view(facts, OK, f"YouTube channel {probe.channel}", channel=channel)


def _vk(runtime: Runtime, scope: Scope, facts: _Facts, http: httpx.Client) -> dict[str, Any]:
    who = provider_check.probe_vk(runtime, scope, facts.id, http)
    left = None if facts.vk_renewable else _seconds_left(facts.vk_expires_at)
    if left is None:
        return _view(facts, OK, who)
    days = left / DAY_S
    if days <= runtime.settings.oauth.warn_days:
        return _view(
            facts,
            EXPIRING,
            f"{who}; the token expires in {max(days, 0.0):.1f} days and cannot be renewed "
            f"(no refresh token): re-run {reauth_command(facts.kind, facts.name)}",
            days_left=days,
        )
    return _view(facts, OK, who, days_left=days)


def _seconds_left(expires_at: float | None) -> float | None:
    return None if expires_at is None else expires_at - time.time()


# -- removal ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Removal:
    name: str
    revoked: bool | None  # None: the platform has no revoke
    warning: str | None  # why the revoke failed (the credential is removed all the same)


def remove(runtime: Runtime, scope: Scope, name: str) -> Removal:
    """Revoke the credential's grant at its platform where it allows, then delete it. A
    credential in use is refused before anything is revoked; a failed revoke is a warning,
    never a reason to keep the secret (the user asked for it to be gone)."""
    with open_context(runtime, scope) as ctx:
        cred = credentials.get(ctx, name)
        credentials.ensure_unused(ctx, cred)
        kind = cred.kind
        secret: dict[str, Any] | None
        try:
            secret = credentials.secret_of(ctx, cred)
            problem = None
        except LeapError as exc:  # encrypted with a retired key, or damaged
            secret, problem = None, exc.message
    platform = provider_check.revoke_platform(kind, secret or {})
    revoked: bool | None = None
    warning: str | None = None
    if platform is not None:
        try:
            if secret is None:
                raise LeapError(f"the secret cannot be read ({problem})")
            with make_http_client() as http:
                revoked = provider_check.revoke(runtime.settings, http, kind, secret)
        except (LeapError, httpx.HTTPError) as exc:
            reason = exc.message if isinstance(exc, LeapError) else f"{type(exc).__name__}: {exc}"
            revoked = False
            warning = " ".join(
                redact(f"could not revoke at {platform}: {reason}; removed anyway").split()
            )
    with open_context(runtime, scope) as ctx:
        credentials.remove(ctx, name)
    return Removal(name, revoked, warning)
