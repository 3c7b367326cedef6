"""`leap credentials test`: one cheap call that proves a credential works."""

from __future__ import annotations

from typing import Any

from leap.context import Runtime, open_context
from leap.db.scope import Scope
from leap.domain import CredentialKind
from leap.errors import CredentialDead, UsageError
from leap.providers.http import make_http_client
from leap.providers.zoom import ZoomScopeMissing
from leap.services import clients, credentials
from leap.services.sources import ZOOM_KINDS


def test_credential(runtime: Runtime, scope: Scope, name: str) -> dict[str, Any]:
    with open_context(runtime, scope) as ctx:
        cred = credentials.get(ctx, name)
        cred_id, kind = cred.id, cred.kind
        # The test proves the stored secrets, not a token cached from them up to an hour ago.
        credentials.forget_token(ctx, cred_id)
    if kind not in ZOOM_KINDS:
        raise UsageError(f"testing {kind} credentials comes with their provider")
    with make_http_client() as http:
        client = clients.make_zoom_client(runtime, scope, cred_id, http)
        try:
            if kind == CredentialKind.ZOOM_S2S.value:
                # An account-level token names no user ("me" is meaningless): the token is
                # the proof.
                client.auth.token()
                user: dict[str, Any] = {"id": "account token issued"}
            else:
                try:
                    user = client.get_user("me")
                except ZoomScopeMissing:
                    # A token was issued and Zoom understood it; only the optional user
                    # lookup is outside the app's scopes, which sync does without.
                    user = {"id": "token works (no user:read scope; host e-mails stay empty)"}
        except CredentialDead as exc:
            with open_context(runtime, scope) as ctx:
                credentials.mark_dead(ctx, ctx.repos.credentials.require(cred_id), exc.message)
            raise
    with open_context(runtime, scope) as ctx:
        credentials.mark_ok(ctx, ctx.repos.credentials.require(cred_id))
    return {
        "name": name,
        "kind": kind,
        "ok": True,
        "detail": f"Zoom user {user.get('email') or user.get('id')}",
    }
