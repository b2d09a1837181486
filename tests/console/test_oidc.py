"""OpenID Connect login against a small but real provider run by the test (aiohttp + joserfc).

The provider signs RS256 ID tokens with a key it publishes as JWKS, checks the
client secret, the redirect URI and the PKCE verifier, like a real one. The
console must accept a good login, map groups to a role, and refuse a forged
state, a wrong nonce, a token for another client and a user without a role.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import threading
import time
import uuid
from urllib.parse import parse_qs, urlencode, urlparse

import pytest

pytest.importorskip("joserfc", reason="the oidc extra (joserfc) is in the test extra")
from aiohttp import web  # noqa: E402
from joserfc import jwt  # noqa: E402
from joserfc.jwk import KeySet, RSAKey  # noqa: E402

from tradeguard.broker.clients import TopicReader  # noqa: E402
from tradeguard.broker.embedded import free_port  # noqa: E402
from tradeguard.console.config import ConsoleSettings  # noqa: E402
from tradeguard.console.server import ConsoleServer  # noqa: E402
from tests.console.client import Client, _OPENER  # noqa: E402

pytestmark = pytest.mark.broker
SECRET = "console-client-secret"


class Provider:
    """An identity provider with one client and users given by the test."""

    def __init__(self) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"})
        self.codes: dict[str, dict] = {}
        self.user = {"sub": "u-1", "preferred_username": "olga", "groups": ["fraud-analysts"]}
        self.tamper: dict = {}  # claims to override in the next ID token

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self.metadata)
        app.router.add_get("/authorize", self.authorize)
        app.router.add_post("/token", self.token)
        app.router.add_get("/jwks", self.jwks)
        return app

    async def metadata(self, request):
        return web.json_response({
            "issuer": self.issuer, "authorization_endpoint": self.issuer + "/authorize",
            "token_endpoint": self.issuer + "/token", "jwks_uri": self.issuer + "/jwks",
            "response_types_supported": ["code"], "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"]})

    async def jwks(self, request):
        return web.json_response(KeySet([self.key]).as_dict(private=False))

    async def authorize(self, request):
        q = request.query
        assert q["client_id"] == "console" and q["response_type"] == "code"
        assert q["code_challenge_method"] == "S256" and "openid" in q["scope"].split()
        code = uuid.uuid4().hex
        self.codes[code] = dict(q)
        raise web.HTTPFound(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}")

    async def token(self, request):
        form = await request.post()
        basic = base64.b64decode(request.headers["Authorization"].split()[1]).decode()
        grant = self.codes.pop(form["code"], None)
        if basic != f"console:{SECRET}" or grant is None:
            return web.json_response({"error": "invalid_grant"}, status=400)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(
            form["code_verifier"].encode()).digest()).rstrip(b"=").decode()
        if challenge != grant["code_challenge"] or form["redirect_uri"] != grant["redirect_uri"]:
            return web.json_response({"error": "invalid_grant"}, status=400)
        now = int(time.time())
        claims = {**self.user, "iss": self.issuer, "aud": "console", "iat": now,
                  "exp": now + 300, "nonce": grant["nonce"], **self.tamper}
        token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, self.key)
        return web.json_response({"access_token": "a", "token_type": "Bearer", "id_token": token})


@pytest.fixture
def provider():
    p = Provider()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(p.app())
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", p.port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield p
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.run_until_complete(runner.cleanup())
    loop.close()


@pytest.fixture
def oidc_console(engine_settings, provider, users, tmp_path):
    port = free_port()
    secret = tmp_path / "client-secret"
    secret.write_text(SECRET + "\n")
    cfg = ConsoleSettings.from_env({
        "TRADEGUARD_CONSOLE_OIDC_ISSUER": provider.issuer,
        "TRADEGUARD_CONSOLE_OIDC_CLIENT_ID": "console",
        "TRADEGUARD_CONSOLE_OIDC_CLIENT_SECRET_FILE": str(secret),
        "TRADEGUARD_CONSOLE_OIDC_REDIRECT_URL": f"http://127.0.0.1:{port}/oidc/callback",
        "TRADEGUARD_CONSOLE_OIDC_ROLE_MAP": "fraud-analysts=analyst,fraud-leads=supervisor",
    }, port=port, users_file=users.path)
    with ConsoleServer(engine_settings, cfg, users) as server:
        yield server


def _sign_in(console, tamper_state: bool = False) -> tuple[int, str, Client]:
    """Browser-like walk: console -> provider -> console callback, cookies by hand."""
    c = Client(console.url)
    status, headers, _ = c.get("/oidc/login?next=/audit")
    assert status == 302
    state_cookie = re.search(r"__Host-tradeguard-oidc=([^;]+)", c.set_cookies[-1]).group(1)
    assert "SameSite=Lax" in c.set_cookies[-1] and "HttpOnly" in c.set_cookies[-1]
    try:
        at_provider = _OPENER.open(headers["Location"], timeout=10)
    except Exception as exc:  # the no-redirect opener raises on the 302 back to us
        at_provider = exc
    back = urlparse(at_provider.headers["Location"])
    query = parse_qs(back.query)
    if tamper_state:
        query["state"] = ["forged"]
    c.oidc_cookie = state_cookie
    import urllib.request

    req = urllib.request.Request(f"{console.url}/oidc/callback?"
                                 f"{urlencode({k: v[0] for k, v in query.items()})}")
    req.add_header("Cookie", f"__Host-tradeguard-oidc={state_cookie}")
    try:
        resp = _OPENER.open(req, timeout=30)
    except Exception as exc:
        resp = exc
    body = resp.read().decode()
    for header in resp.headers.get_all("Set-Cookie") or []:
        if header.startswith("__Host-tradeguard-session="):
            c.sid = header.split("=", 1)[1].split(";", 1)[0]
    return resp.status, body, c


def test_oidc_login_maps_groups_to_roles_and_refuses_what_it_must(
        oidc_console, provider, engine_settings):
    status, body, olga = _sign_in(oidc_console)
    assert status == 200 and 'url=/audit"' in body  # a same-site hop, for the Strict cookie
    status, _, page = olga.get("/")
    assert status == 200 and 'id="whoami">olga<' in page and ">analyst<" in page

    provider.user = {**provider.user, "groups": ["fraud-leads", "fraud-analysts"]}
    assert 'role">supervisor<' in _sign_in(oidc_console)[2].get("/")[2]

    refusals = []
    status, body, _ = _sign_in(oidc_console, tamper_state=True)
    refusals.append((status, "state mismatch" in body))
    provider.tamper = {"nonce": "replayed"}
    status, body, _ = _sign_in(oidc_console)
    refusals.append((status, "nonce" in body))
    provider.tamper = {"aud": "another-app"}
    status, body, _ = _sign_in(oidc_console)
    refusals.append((status, "aud" in body))
    provider.tamper = {"groups": ["marketing"]}
    status, body, _ = _sign_in(oidc_console)
    refusals.append((status, "has no console role" in body))
    assert refusals == [(401, True)] * 4

    with TopicReader(engine_settings, "audit") as reader:
        records = [r for _, r in reader.read_until(lambda rs: len(rs) >= 6, 15)]
    assert sorted((r["action"], r["auth"]) for r in records) == (
        [("login", "oidc")] * 2 + [("login_failed", "oidc")] * 4)
    assert {r["actor_role"] for r in records if r["action"] == "login"} == {"analyst",
                                                                            "supervisor"}
