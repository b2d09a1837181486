"""OpenID Connect login (authorization-code flow with PKCE) for the console.

The console is a confidential client of the company's identity provider:

1. ``/oidc/login`` remembers a fresh ``state``, ``nonce`` and PKCE verifier
   server-side, binds the browser to them with a short-lived cookie
   (SameSite=Lax, so it survives the provider's redirect back), and sends the
   browser to the provider's authorization endpoint.
2. ``/oidc/callback`` checks ``state`` against that cookie, exchanges the code
   at the token endpoint (client secret plus the PKCE verifier), and verifies
   the ID token: signature against the provider's JWKS (refetched once for an
   unknown key id), ``iss``, ``aud`` (and ``azp`` when there are several
   audiences), ``exp``, ``iat`` and ``nonce`` (joserfc does the JOSE).
3. The operator is named by ``user_claim`` (else ``sub``) and gets the most
   trusted console role any of their groups (``roles_claim``) maps to; with
   none, the login is refused. Logins and refusals go to the audit trail.

Not done here: RP-initiated logout at the provider (logging out ends the
console's session only), and refresh tokens (a session ends when the
console's own session limit says so, ``TRADEGUARD_CONSOLE_SESSION_MAX_S``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tradeguard.console.access import rank
from tradeguard.console.config import OidcSettings
from tradeguard.runtime.settings import SettingsError

__all__ = ["OidcClient", "OidcError"]

STATE_COOKIE = "__Host-tradeguard-oidc"
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
              "EdDSA")


class OidcError(Exception):
    """A login through the provider that cannot be accepted; the message says why."""


@dataclass
class _Pending:
    nonce: str
    verifier: str
    next_url: str
    created: float


def pkce_challenge(verifier: str) -> str:
    """S256 code challenge (RFC 7636).

    >>> pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
    'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'
    """
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def role_from_claims(claims: dict[str, Any], claim: str, role_map: dict[str, str]) -> str | None:
    """The most trusted role any of the operator's groups maps to.

    >>> role_from_claims({"groups": ["x", "ops-analysts"]}, "groups",
    ...                  {"ops-analysts": "analyst", "ops-viewers": "viewer"})
    'analyst'
    >>> role_from_claims({"groups": "ops-viewers"}, "groups", {"ops-viewers": "viewer"})
    'viewer'
    >>> role_from_claims({}, "groups", {"ops-viewers": "viewer"}) is None
    True
    """
    groups = claims.get(claim) or []
    groups = [groups] if isinstance(groups, str) else groups
    roles = [role_map[g] for g in groups if isinstance(g, str) and g in role_map]
    return max(roles, key=rank) if roles else None


class OidcClient:
    """The console's side of the flow; :meth:`discover` once at start, then :meth:`register`."""

    def __init__(self, cfg: OidcSettings, timeout_s: float = 10.0, max_pending: int = 1_000) -> None:
        self.cfg, self.timeout_s, self.max_pending = cfg, timeout_s, max_pending
        self.metadata: dict[str, Any] = {}
        self._keys = None
        self._pending: OrderedDict[str, _Pending] = OrderedDict()

    # --- provider metadata and keys ---------------------------------------------------------

    def _get_json(self, url: str) -> dict[str, Any]:
        with urllib.request.urlopen(url, timeout=self.timeout_s) as resp:
            return json.loads(resp.read())

    def discover(self) -> None:
        """Read the provider's metadata and keys; a provider we cannot use stops the start."""
        url = self.cfg.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            meta = self._get_json(url)
        except (OSError, ValueError) as exc:
            raise SettingsError(f"TRADEGUARD_CONSOLE_OIDC_ISSUER: cannot read {url}: {exc}") from None
        if meta.get("issuer") != self.cfg.issuer:
            raise SettingsError(f"TRADEGUARD_CONSOLE_OIDC_ISSUER is {self.cfg.issuer!r} but the "
                                f"provider says its issuer is {meta.get('issuer')!r}")
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not meta.get(key):
                raise SettingsError(f"the OIDC provider's metadata at {url} has no {key}")
        if "code" not in meta.get("response_types_supported", ["code"]):
            raise SettingsError(f"the OIDC provider at {url} does not offer the code flow")
        if "S256" not in meta.get("code_challenge_methods_supported", ["S256"]):
            raise SettingsError(f"the OIDC provider at {url} does not support PKCE S256")
        self.metadata = meta
        self._refresh_keys()

    def _refresh_keys(self) -> None:
        from joserfc.jwk import KeySet

        self._keys = KeySet.import_key_set(self._get_json(self.metadata["jwks_uri"]))

    # --- the flow ------------------------------------------------------------------------------

    def begin(self, next_url: str) -> tuple[str, str]:
        """(state, the provider URL to send the browser to)."""
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        self._pending[state] = _Pending(nonce, verifier, next_url, time.monotonic())
        while len(self._pending) > self.max_pending:
            self._pending.popitem(last=False)
        query = urllib.parse.urlencode({
            "response_type": "code", "client_id": self.cfg.client_id,
            "redirect_uri": self.cfg.redirect_url, "scope": self.cfg.scopes, "state": state,
            "nonce": nonce, "code_challenge": pkce_challenge(verifier),
            "code_challenge_method": "S256"})
        endpoint = self.metadata["authorization_endpoint"]
        return state, f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    def finish(self, state: str, cookie_state: str | None, code: str) -> tuple[dict, str]:
        """Check the callback, redeem the code, verify the ID token: (claims, next URL)."""
        if not cookie_state or not secrets.compare_digest(state, cookie_state):
            raise OidcError("the login did not start in this browser (state mismatch)")
        pending = self._pending.pop(state, None)
        if pending is None or time.monotonic() - pending.created > 600:
            raise OidcError("the login took too long or was already used; start again")
        tokens = self._redeem(code, pending.verifier)
        if "id_token" not in tokens:
            raise OidcError("the provider returned no ID token")
        return self._verify(tokens["id_token"], pending.nonce), pending.next_url

    def _redeem(self, code: str, verifier: str) -> dict[str, Any]:
        form = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": self.cfg.redirect_url, "code_verifier": verifier}
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "Accept": "application/json"}
        methods = self.metadata.get("token_endpoint_auth_methods_supported",
                                    ["client_secret_basic"])
        secret = self.cfg.secret()
        if "client_secret_basic" in methods:
            pair = (f"{urllib.parse.quote(self.cfg.client_id, safe='')}:"
                    f"{urllib.parse.quote(secret, safe='')}")
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form.update(client_id=self.cfg.client_id, client_secret=secret)
        req = urllib.request.Request(self.metadata["token_endpoint"],
                                     data=urllib.parse.urlencode(form).encode(), headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            # The provider's error code only: its body may echo what we sent.
            try:
                error = json.loads(exc.read()).get("error", exc.code)
            except ValueError:
                error = exc.code
            raise OidcError(f"the provider refused the code ({error})") from None
        except (OSError, ValueError) as exc:
            raise OidcError(f"cannot reach the provider's token endpoint: {exc}") from None

    def _verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        from joserfc import jwt
        from joserfc.errors import JoseError

        allowed = [a for a in self.metadata.get("id_token_signing_alg_values_supported",
                                                ALGORITHMS) if a in ALGORITHMS]
        try:
            try:
                token = jwt.decode(id_token, self._keys, algorithms=allowed)
            except JoseError:
                self._refresh_keys()  # the provider may have rotated its keys
                token = jwt.decode(id_token, self._keys, algorithms=allowed)
            claims = token.claims
            jwt.JWTClaimsRegistry(
                leeway=60, iss={"essential": True, "value": self.cfg.issuer},
                aud={"essential": True, "value": self.cfg.client_id},
                exp={"essential": True}, iat={"essential": True},
                nonce={"essential": True, "value": nonce}).validate(claims)
        except (JoseError, ValueError) as exc:
            raise OidcError(f"the ID token is not valid: {exc}") from None
        aud = claims["aud"]
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != self.cfg.client_id:
            raise OidcError("the ID token has several audiences and azp is not this console")
        return claims

    def operator(self, claims: dict[str, Any]) -> tuple[str, str]:
        """(user name, role) for verified claims; OidcError when no role maps."""
        user = str(claims.get(self.cfg.user_claim) or claims["sub"])[:64]
        role = role_from_claims(claims, self.cfg.roles_claim, self.cfg.roles())
        if role is None:
            raise OidcError(f"{user} has no console role: none of their {self.cfg.roles_claim} "
                            "is in TRADEGUARD_CONSOLE_OIDC_ROLE_MAP")
        return user, role

    # --- routes --------------------------------------------------------------------------------

    def register(self, app: web.Application) -> None:
        app.router.add_get("/oidc/login", self._login)
        app.router.add_get("/oidc/callback", self._callback)

    async def _login(self, request: web.Request) -> web.Response:
        from tradeguard.console.app import _safe_next

        state, url = self.begin(_safe_next(request.query.get("next")))
        response = web.HTTPFound(url)
        response.set_cookie(STATE_COOKIE, state, path="/", secure=True, httponly=True,
                            samesite="Lax", max_age=600)
        raise response

    async def _callback(self, request: web.Request) -> web.Response:
        from tradeguard.console import app as console_app

        loop = asyncio.get_running_loop()
        try:
            if "error" in request.query:
                raise OidcError(f"the provider said {request.query['error'][:100]!r}")
            claims, next_url = await loop.run_in_executor(
                None, self.finish, request.query.get("state", ""),
                request.cookies.get(STATE_COOKIE), request.query.get("code", ""))
            user, role = self.operator(claims)
        except OidcError as exc:
            return await console_app.refuse_login(request, "(oidc)", "oidc", str(exc))
        session = await console_app.start_session(request, user, role, "oidc")
        # A page of our own, not a redirect: the browser arrived from the provider's site,
        # and a SameSite=Strict cookie is sent only on a navigation that starts here.
        response = web.Response(content_type="text/html", text=(
            "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" "
            f"content=\"0;url={console_app.esc(next_url)}\"><title>Logged in</title></head>"
            f"<body><p>Logged in as {console_app.esc(user)}. <a href=\"{console_app.esc(next_url)}"
            "\">Continue</a></p></body></html>"))
        console_app.set_session_cookie(response, session.sid)
        response.del_cookie(STATE_COOKIE, path="/", secure=True, httponly=True, samesite="Lax")
        return response
