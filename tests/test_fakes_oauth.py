"""The fakes' OAuth endpoints behave like Google's, VK ID's and Zoom's: the code flow with PKCE,
single-use codes, refusals, Google's device flow, revocation and logout. Driven directly through
MockTransport with a fake clock (and once over real sockets, for tests/fakes/oauth_browser.py)."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.fakes.oauth_browser import redirect_target, visit
from tests.fakes.server import Handler, mock_transport, serve
from tests.fakes.vk import FakeVK
from tests.fakes.youtube import FORCE_SSL, SCOPE_PREFIX, FakeYouTube, s256
from tests.fakes.zoom import FakeZoom

REDIRECT = "http://127.0.0.1:8765/cb"
YT_UPLOAD = SCOPE_PREFIX + "youtube.upload"
READONLY = SCOPE_PREFIX + "youtube.readonly"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def client(handler: Handler) -> httpx.Client:
    return httpx.Client(transport=mock_transport(handler), base_url="http://fake")


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, s256(verifier)


def query(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def yt_authorize(http: httpx.Client, challenge: str, **extra: str) -> httpx.Response:
    params = dict(client_id="yt-client-id", redirect_uri=REDIRECT, response_type="code")
    params |= dict(scope=f"{FORCE_SSL} openid", state="st/1 =", access_type="offline")
    params |= dict(code_challenge=challenge, code_challenge_method="S256")
    return http.get("/o/oauth2/auth", params=params | extra)


def yt_token(http: httpx.Client, **form: str) -> httpx.Response:
    creds = {"client_id": "yt-client-id", "client_secret": "yt-client-secret"}
    return http.post("/token", data=creds | form)


def yt_refresh(http: httpx.Client, refresh_token: str) -> httpx.Response:
    return yt_token(http, grant_type="refresh_token", refresh_token=refresh_token)


def test_youtube_code_flow_with_pkce_single_use_codes_and_refusals() -> None:
    fake = FakeYouTube(clock=(clock := Clock()))
    fake.channel_title = "Lectures"
    verifier, challenge = pkce()
    with client(fake.handler) as http:

        def exchange(got: dict[str, str] | None = None, **form: str) -> httpx.Response:
            code = (got or query(yt_authorize(http, challenge)))["code"]
            base = dict(grant_type="authorization_code", code=code, redirect_uri=REDIRECT)
            return yt_token(http, **base | dict(code_verifier=verifier) | form)

        got = query(yt_authorize(http, challenge))
        assert got["state"] == "st/1 =" and got["scope"] == f"{FORCE_SSL} openid"
        assert fake.last_authorize["access_type"] == "offline"
        tokens = exchange(got).json()
        assert tokens["scope"] == f"{FORCE_SSL} openid" and tokens["token_type"] == "Bearer"
        assert exchange(got).json()["error"] == "invalid_grant"  # single use
        auth = {"Authorization": "Bearer " + tokens["access_token"]}
        channels = http.get("/youtube/v3/channels", params={"mine": "true"}, headers=auth)
        assert channels.json()["items"][0]["snippet"]["title"] == "Lectures"
        fresh = yt_refresh(http, tokens["refresh_token"])
        assert fresh.json()["scope"] == tokens["scope"] and fake.refreshes == 1
        online = query(yt_authorize(http, challenge, access_type="online"))
        assert "refresh_token" not in exchange(online).json()
        missing = {"error": "invalid_grant", "error_description": "Missing code verifier."}
        assert exchange(code_verifier="").json() == missing
        wrong = exchange(code_verifier="x" * 50).json()
        assert wrong["error_description"] == "Invalid code verifier."
        other = exchange(redirect_uri="http://127.0.0.1:1/").json()
        assert other["error"] == "redirect_uri_mismatch"
        got = query(yt_authorize(http, challenge))
        clock.now += 601
        assert exchange(got).json()["error_description"] == "Bad Request"  # expired


def test_youtube_authorize_pages_redirected_errors_and_granular_consent() -> None:
    fake = FakeYouTube()
    _, challenge = pkce()
    with client(fake.handler) as http:
        bad_client = yt_authorize(http, challenge, client_id="nope")
        assert bad_client.status_code == 401 and "invalid_client" in bad_client.text
        remote = yt_authorize(http, challenge, redirect_uri="https://example.com/cb")
        assert remote.status_code == 400 and "redirect_uri_mismatch" in remote.text
        no_pkce = yt_authorize(http, "")
        assert no_pkce.status_code == 400 and "invalid_request" in no_pkce.text
        assert query(yt_authorize(http, challenge, scope="drive"))["error"] == "invalid_scope"
        fake.grant_only = {READONLY}
        narrowed = yt_authorize(http, challenge, scope=f"{YT_UPLOAD} {READONLY}")
        assert query(narrowed)["scope"] == READONLY
        refresh = fake.issue_refresh_token(READONLY)
        auth = {"Authorization": "Bearer " + yt_refresh(http, refresh).json()["access_token"]}
        upload = http.post("/upload/youtube/v3/videos?uploadType=resumable", headers=auth)
        assert upload.json()["error"]["errors"][0]["reason"] == "insufficientPermissions"
        fake.consent = "deny"
        assert query(yt_authorize(http, challenge)) == {"error": "access_denied", "state": "st/1 ="}


def test_youtube_device_flow() -> None:
    fake = FakeYouTube(clock=(clock := Clock()))
    with client(fake.handler) as http:

        def start(scope: str = SCOPE_PREFIX + "youtube") -> dict[str, Any]:
            form = {"client_id": "yt-client-id", "scope": scope}
            return dict(http.post("/device/code", data=form).json())

        refused = start(YT_UPLOAD)
        assert refused["error_description"] == f"Invalid device flow scope: {YT_UPLOAD}"

        def poll(grant: dict[str, Any]) -> httpx.Response:
            return yt_token(http, grant_type=DEVICE_GRANT, device_code=grant["device_code"])

        grant = start()
        assert grant["verification_url"] == "http://fake/device" and grant["interval"] == 5
        assert poll(grant).status_code == 428
        fake.approve_device(grant["user_code"])
        tokens = poll(grant).json()
        assert tokens["refresh_token"] and tokens["scope"] == SCOPE_PREFIX + "youtube"
        assert poll(grant).json()["error"] == "invalid_grant"  # single use
        denied = start()
        fake.deny_device(denied["user_code"])
        assert poll(denied).json() == {"error": "access_denied", "error_description": "Forbidden"}
        fake.auto_approve_after_polls, fake.enforce_interval = 1, True
        auto = start()
        assert poll(auto).status_code == 428
        assert poll(auto).json()["error"] == "slow_down"  # the clock did not move
        clock.now += 10  # 5 s + the 5 s slow_down adds
        assert poll(auto).status_code == 200
        late = start()
        clock.now += 1800
        assert poll(late).json()["error"] == "expired_token"


def test_youtube_revoke_and_testing_mode() -> None:
    fake = FakeYouTube(clock=(clock := Clock()))
    with client(fake.handler) as http:
        access = yt_refresh(http, fake.refresh_token).json()["access_token"]
        auth = {"Authorization": "Bearer " + access}
        assert http.post("/revoke", data={"token": fake.refresh_token}).json() == {}
        assert http.get("/youtube/v3/channels", headers=auth).status_code == 401
        assert yt_refresh(http, fake.refresh_token).json()["error"] == "invalid_grant"
        unknown = http.post("/revoke", params={"token": fake.refresh_token})
        assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_token"
        refresh = fake.issue_refresh_token()
        token = yt_refresh(http, refresh).json()
        assert http.post("/revoke", params={"token": token["access_token"]}).status_code == 200
        assert yt_refresh(http, refresh).status_code == 400  # it took its refresh token along
        assert fake.revoked == [fake.refresh_token, token["access_token"]]
        fake.testing_mode_days = 7
        weekly = fake.issue_refresh_token()
        clock.now += 7 * 86400 - 1
        assert yt_refresh(http, weekly).status_code == 200
        clock.now += 1
        dead = yt_refresh(http, weekly).json()
        assert dead["error_description"] == "Token has been expired or revoked."


def test_vk_id_code_flow_refresh_and_logout() -> None:
    fake = FakeVK(clock=Clock())
    verifier, challenge = pkce()
    with client(fake.handler) as http:
        params = dict(response_type="code", client_id="vk-app-id", redirect_uri=REDIRECT)
        params |= dict(state="s1", scope="vkid.personal_info video")
        assert http.get("/authorize", params=params).status_code == 400  # PKCE is mandatory
        plain = http.get("/authorize", params=params | {"code_challenge": challenge})
        assert "invalid_request" in plain.text
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
        assert "invalid_client" in http.get("/authorize", params=params | {"client_id": "x"}).text

        def exchange(got: dict[str, str] | None = None, **form: str) -> httpx.Response:
            got = got or query(http.get("/authorize", params=params))
            # VK's web SDK sends most parameters in the query string: split them.
            q = dict(grant_type="authorization_code", code=got["code"], state="s2")
            body = dict(client_id="vk-app-id", code_verifier=verifier, redirect_uri=REDIRECT)
            body |= {"device_id": got["device_id"], **form}
            return http.post("/oauth2/auth", params=q, data=body)

        assert exchange(code_verifier="short").json()["error"] == "invalid_grant"
        assert exchange(device_id="dev-x").json()["error"] == "invalid_request"
        assert exchange(redirect_uri=REDIRECT + "/").json()["error"] == "invalid_request"
        got = query(http.get("/authorize", params=params))
        assert (got["type"], got["state"], got["expires_in"]) == ("code_v2", "s1", "600")
        tokens = exchange(got).json()
        assert tokens["state"] == "s2" and tokens["scope"] == "vkid.personal_info video"
        reused = exchange(got).json()
        assert (reused["error"], reused["state"]) == ("invalid_grant", "s2")
        refresh = dict(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
        refresh |= dict(client_id="vk-app-id", device_id=got["device_id"], state="s3")
        rotated = http.post("/oauth2/auth", data=refresh).json()
        assert rotated["state"] == "s3" and fake.refreshes == 1
        assert http.post("/oauth2/auth", data=refresh).json()["error"] == "invalid_grant"
        api = {"access_token": rotated["access_token"], "v": "5.199"}
        assert http.post("/method/users.get", data=api).json()["response"][0]["id"] == fake.owner_id
        out = {"client_id": "vk-app-id", "access_token": rotated["access_token"]}
        assert http.post("/oauth2/logout", data=out).json() == {"response": 1}
        assert http.post("/method/users.get", data=api).json()["error"]["error_code"] == 5
        refresh["refresh_token"] = rotated["refresh_token"]
        assert http.post("/oauth2/auth", data=refresh).json()["error"] == "invalid_grant"
        again = http.post("/oauth2/logout", data=out)
        assert again.status_code == 200 and again.json()["error"] == "invalid_token"
        assert fake.logouts == 1
        fake.consent = "deny"
        assert query(http.get("/authorize", params=params))["error"] == "access_denied"


def test_zoom_code_flow_pkce_and_revoke() -> None:
    fake = FakeZoom(clock=Clock())
    verifier, challenge = pkce()
    auth = httpx.BasicAuth("zoom-client-id", "zoom-client-secret")
    with client(fake.handler) as http:
        params = dict(response_type="code", client_id="zoom-client-id", state="z")
        params |= dict(redirect_uri=REDIRECT, code_challenge=challenge)
        params["code_challenge_method"] = "S256"  # RFC 7636: "plain" when left out
        bad = http.get("/oauth/authorize", params=params | {"client_id": "nope"})
        assert bad.status_code == 400 and "Invalid client_id" in bad.text

        def exchange(**form: str) -> httpx.Response:
            code = query(http.get("/oauth/authorize", params=params))["code"]
            body = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
            return http.post("/oauth/token", data=body | form, auth=auth)

        assert exchange().json()["error"] == "invalid_grant"  # no verifier for a challenge
        tokens = exchange(code_verifier=verifier).json()
        refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        rotated = http.post("/oauth/token", data=refresh, auth=auth).json()
        assert fake.refreshes == 1 and fake.last_authorize["state"] == "z"
        revoke = "/oauth/revoke?token=" + rotated["refresh_token"]
        assert http.post(revoke, auth=httpx.BasicAuth("x", "y")).status_code == 401
        assert http.post(revoke, auth=auth).json() == {"status": "success"}
        bearer = {"Authorization": "Bearer " + rotated["access_token"]}
        assert http.get("/v2/users/me", headers=bearer).status_code == 401  # the pair died
        unknown = http.post(revoke, auth=auth)
        assert unknown.json() == {"reason": "Invalid Token!", "error": "invalid_request"}
        assert fake.revoked == [rotated["refresh_token"]]
        fake.consent = "deny"
        assert query(http.get("/oauth/authorize", params=params))["error"] == "access_denied"


def test_oauth_browser_follows_the_redirect_to_the_loopback() -> None:
    landed: list[str] = []

    def loopback(request: httpx.Request) -> httpx.Response:
        landed.append(str(request.url.params.get("code")))
        return httpx.Response(200, text="done")

    fake = FakeYouTube()
    _, challenge = pkce()
    with serve(fake.handler) as base, serve(loopback) as redirect:
        params = dict(client_id="yt-client-id", redirect_uri=redirect + "/", scope=FORCE_SSL)
        params |= dict(response_type="code", code_challenge=challenge)
        url = str(httpx.URL(base + "/o/oauth2/auth", params=params))
        assert visit(url).text == "done" and len(landed) == 1
        assert redirect_target(url).startswith(redirect + "/?code=") and len(landed) == 1
        script = str(Path(__file__).parent / "fakes" / "oauth_browser.py")
        run = subprocess.run([sys.executable, script, url], timeout=30, check=False)
        assert (run.returncode, len(landed)) == (0, 2)
        assert visit(url.replace("yt-client-id", "nope")).status_code == 401  # no redirect
