"""The console's web application (aiohttp): log in, look, act; every action audited.

Sessions live server-side (:mod:`tradeguard.console.sessions`); the browser
holds an id in a ``__Host-`` cookie that is HttpOnly, Secure and
SameSite=Strict. Every POST carries the session's CSRF token. Pages and JSON
are sent with a strict Content-Security-Policy (scripts and styles from this
origin only) and ``Cache-Control: no-store``. The access log leaves query
strings out, so nothing secret (an OIDC code, say) is written to it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from confluent_kafka import KafkaException

from tradeguard.console.config import ConsoleSettings
from tradeguard.console.feed import ConsoleFeed
from tradeguard.console.access import ACTIONS
from tradeguard.console.operations import (TARGET_KIND, ActionError, Operations, Operator,
                                           Request, audit_record, plan)
from tradeguard.console.pages import (BODIES, FRAGMENTS, Ctx, esc, layout, login_page,
                                      message_page)
from tradeguard.console.sessions import LoginThrottle, Session, SessionStore, check_csrf
from tradeguard.console.users import UserStore
from tradeguard.console.view import ConsoleView

__all__ = ["COOKIE", "Console", "build_app"]

log = logging.getLogger("tradeguard.console")
COOKIE = "__Host-tradeguard-session"
STATIC = Path(__file__).with_name("static")
PUBLIC = ("/login", "/static/", "/healthz", "/readyz", "/oidc/login", "/oidc/callback")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
PAGES = {"tickers": "ticker", "accounts": "account", "orders": "order"}


@dataclass
class Console:
    """The console's collaborators, wired once by :mod:`tradeguard.console.server`."""

    cfg: ConsoleSettings
    users: UserStore
    view: ConsoleView
    lock: threading.Lock
    operations: Operations
    feed: ConsoleFeed | None
    sessions: SessionStore
    throttle: LoginThrottle
    oidc: Any = None  # tradeguard.console.oidc.OidcClient when configured

    @property
    def proposal_ttl_ms(self) -> int:
        return int(self.cfg.proposal_ttl_s * 1000)


CONSOLE = web.AppKey("console", Console)
SESSION = web.RequestKey("session", object)  # Session | None


class AccessLog(AbstractAccessLogger):
    """Method, path without its query string, status, duration: nothing secret."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("%s %s %s %d %.1fms", request.remote, request.method, request.path,
                         response.status, time * 1000)


def _now_ms() -> int:
    return int(time.time() * 1000)


#: A local path: "/" then printable ASCII without a backslash, and never "//" or "/\\" at the
#: start. Browsers drop tabs and newlines from a Location and read "\\" as "/", so anything
#: else ("/\t/host", "//host", "/\\host", "https://x") could leave this site.
_LOCAL_PATH = re.compile(r"/(?![/\\])[!-\[\]-~]*")


def _safe_next(url: str | None) -> str:
    """Only local paths: never an open redirect to another site.

    Checked as sent and once percent-decoded (a proxy or a browser may decode it once
    more): "//" or a dot segment anywhere in the path could normalise to "//host".
    """
    if not url:
        return "/"
    for form in (url, unquote(url)):
        path = form.split("?", 1)[0]
        if not _LOCAL_PATH.fullmatch(form) or "//" in path or "/." in path:
            return "/"
    return url


def set_session_cookie(response: web.StreamResponse, sid: str) -> None:
    response.set_cookie(COOKIE, sid, path="/", secure=True, httponly=True, samesite="Strict")


def _user(session: Session) -> dict[str, str]:
    return {"user": session.user, "role": session.role, "auth": session.auth}


def build_app(console: Console) -> web.Application:
    app = web.Application(middlewares=[_headers, _authenticate], client_max_size=64 * 1024)
    app[CONSOLE] = console
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login_submit)
    app.router.add_post("/logout", logout)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/", page)
    app.router.add_get("/audit", page)
    app.router.add_get("/{kind:tickers|accounts|orders}/{key}", page)
    app.router.add_get("/api/fragments/{page}", fragments)
    app.router.add_get("/api/summary", summary)
    app.router.add_post("/act", act)
    app.router.add_static("/static/", STATIC, append_version=False)
    if console.oidc is not None:
        console.oidc.register(app)
    return app


@web.middleware
async def _headers(request: web.Request, handler):
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if not request.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
    if isinstance(response, web.HTTPException):
        raise response
    return response


@web.middleware
async def _authenticate(request: web.Request, handler):
    console: Console = request.app[CONSOLE]
    session = console.sessions.get(request.cookies.get(COOKIE), time.monotonic())
    if session is not None and session.user and session.auth == "local":
        user = console.users.get(session.user)  # a removed or changed user loses the session
        if user is None or user.role != session.role:
            console.sessions.close(session.sid)
            session = None
    request[SESSION] = session
    if request.method == "POST" and not check_csrf(session, (await request.post()).get("csrf")):
        # No valid session or a forged form: nothing is done, and the attempt is audited. A
        # fresh login page gets a new token.
        await _audit_refusal(request, session, "CSRF check failed: token absent, empty or wrong")
        return web.Response(status=403, content_type="text/html", text=message_page(
            "Request refused", "This form has expired or did not come from this console "
            "(CSRF check failed). Reload the page and try again.", back="/"))
    if request.path.startswith(PUBLIC) or request.path == "/favicon.ico":
        return await handler(request)
    if session is None or not session.user:
        if request.path.startswith("/api/"):
            return web.json_response({"error": "log in first"}, status=401)
        raise web.HTTPSeeOther(f"/login?next={request.path_qs}" if request.path != "/"
                               else "/login")
    return await handler(request)


# --- logging in and out --------------------------------------------------------------------------

async def login_form(request: web.Request) -> web.Response:
    console: Console = request.app[CONSOLE]
    session = request[SESSION]
    if session is not None and session.user:
        raise web.HTTPSeeOther("/")
    if session is None:
        session = console.sessions.open(None, None, None, time.monotonic())
    response = web.Response(content_type="text/html", text=login_page(
        session.csrf, next_url=_safe_next(request.query.get("next")),
        oidc=console.oidc is not None))
    set_session_cookie(response, session.sid)
    return response


async def _audit(console: Console, record: dict) -> None:
    await asyncio.get_running_loop().run_in_executor(None, console.operations.record, record)


async def _audit_refusal(request: web.Request, session: Session | None, why: str) -> None:
    """Audit a POST refused before it could be planned (CSRF, a malformed or unknown action).

    Best effort: the request is refused whether or not the record can be written.
    """
    console: Console = request.app[CONSOLE]
    form = await request.post()
    action = str(form.get("action", ""))
    if request.path == "/login":
        action, kind = "login_failed", "operator"
    elif action in ACTIONS:
        kind = TARGET_KIND[action]
    else:
        action, kind = "unknown_action", "operator"
    user = session.user if session is not None and session.user else None
    target = (str(form.get("target", "")) or str(form.get("username", "")) or "(none)")[:256]
    try:
        await _audit(console, audit_record(
            actor=user or str(form.get("username", "")) or "(anonymous)",
            role=session.role if user else None, auth=session.auth if user else None,
            action=action, target_kind=kind, target=target,
            reason=str(form.get("reason", ""))[:2000], outcome="denied",
            detail=f"{request.path}: {why}"[:2000], remote_addr=_remote(request),
            now_ms=_now_ms()))
    except (KafkaException, ValueError) as exc:
        log.error("console: could not audit a refused %s: %s", request.path, exc)


def _remote(request: web.Request) -> str | None:
    return request.remote


async def start_session(request: web.Request, user: str, role: str, auth: str) -> Session:
    """Log ``user`` in: a new session id (never the pre-login one), audited."""
    console: Console = request.app[CONSOLE]
    console.sessions.close(request.cookies.get(COOKIE))
    session = console.sessions.open(user, role, auth, time.monotonic())
    await _audit(console, audit_record(
        actor=user, role=role, auth=auth, action="login", target_kind="operator", target=user,
        reason=f"{auth} login", outcome="done", remote_addr=_remote(request), now_ms=_now_ms()))
    return session


async def refuse_login(request: web.Request, name: str, auth: str, why: str,
                       next_url: str = "/") -> web.Response:
    """Audit a refused login and show the login form again with the reason."""
    console: Console = request.app[CONSOLE]
    await _audit(console, audit_record(
        actor=name or "(empty)", role=None, auth=auth, action="login_failed",
        target_kind="operator", target=name or "(empty)", reason=f"{auth} login",
        outcome="denied", detail=why, remote_addr=_remote(request), now_ms=_now_ms()))
    session = request[SESSION]
    if session is None or session.user:
        session = console.sessions.open(None, None, None, time.monotonic())
    response = web.Response(status=401, content_type="text/html", text=login_page(
        session.csrf, error=why, next_url=next_url, oidc=console.oidc is not None,
        name=name if auth == "local" else ""))
    set_session_cookie(response, session.sid)
    return response


async def login_submit(request: web.Request) -> web.Response:
    console: Console = request.app[CONSOLE]
    form = await request.post()
    name = str(form.get("username", "")).strip()[:128]
    password = str(form.get("password", ""))
    next_url = _safe_next(str(form.get("next", "/")))
    now, source = time.monotonic(), _remote(request)
    # Counted before the password is checked (no await in between): concurrent attempts
    # cannot all slip under the limit while the first ones are being checked.
    error = console.throttle.begin(name, source, now,
                                   logged_in=console.sessions.logged_in(name, now))
    if error is None:
        user = None
        try:
            user = await asyncio.get_running_loop().run_in_executor(
                None, console.users.authenticate, name, password)
        finally:
            if user is None:  # wrong, or the check itself failed: the attempt stays counted
                console.throttle.failed(name, source)
        if user is not None:
            console.throttle.succeeded(name, source)
            session = await start_session(request, user.name, user.role, "local")
            response = web.HTTPSeeOther(next_url)
            set_session_cookie(response, session.sid)
            raise response
        error = "Wrong user name or password."
    return await refuse_login(request, name, "local", error, next_url)


async def logout(request: web.Request) -> web.Response:
    console: Console = request.app[CONSOLE]
    session: Session = request[SESSION]
    if session.user:
        await _audit(console, audit_record(
            actor=session.user, role=session.role, auth=session.auth, action="logout",
            target_kind="operator", target=session.user, reason="logout", outcome="done",
            remote_addr=_remote(request), now_ms=_now_ms()))
    console.sessions.close(session.sid)
    response = web.HTTPSeeOther("/login")
    response.del_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
    raise response


# --- probes ------------------------------------------------------------------------------------

async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def readyz(request: web.Request) -> web.Response:
    feed = request.app[CONSOLE].feed
    ready = feed is not None and feed.caught_up.is_set() and feed.alive
    return web.json_response({"ready": ready, "error": feed and feed.error},
                             status=200 if ready else 503)


# --- pages --------------------------------------------------------------------------------------

def _page_of(request: web.Request) -> tuple[str, str]:
    if request.path == "/":
        return "dashboard", ""
    if request.path == "/audit":
        return "audit", ""
    return PAGES[request.match_info["kind"]], request.match_info["key"]


def _ctx(request: web.Request, page: str, key: str) -> Ctx:
    console: Console = request.app[CONSOLE]
    session: Session = request[SESSION]
    query = dict(request.query)
    if page == "audit":
        query["all"] = "1"
    return Ctx(console.view, _now_ms(), _user(session), session.csrf, query,
               console.cfg.two_person, console.proposal_ttl_ms, key)


_TITLES = {"dashboard": "Overview", "audit": "Audit trail", "ticker": "Ticker {}",
           "account": "Account {}", "order": "Order {}"}


async def page(request: web.Request) -> web.Response:
    console: Console = request.app[CONSOLE]
    session: Session = request[SESSION]
    name, key = _page_of(request)
    ctx = _ctx(request, name, key)
    with console.lock:
        body = BODIES[name](ctx)
    qs = request.query_string
    params = "&".join(p for p in (f"key={quote(key, safe='')}" if key else "", qs) if p)
    url = f"/api/fragments/{name}?{params}"
    return web.Response(content_type="text/html", text=layout(
        _TITLES[name].format(key), body, user=ctx.user, csrf=session.csrf, fragments_url=url,
        refresh_ms=console.cfg.refresh_ms, flashes=session.take_flashes()))


async def fragments(request: web.Request) -> web.Response:
    console: Console = request.app[CONSOLE]
    name = request.match_info["page"]
    if name not in FRAGMENTS:
        return web.json_response({"error": f"unknown page {name!r}"}, status=404)
    ctx = _ctx(request, name, request.query.get("key", ""))
    with console.lock:
        out = {frag: render(ctx) for frag, render in FRAGMENTS[name].items()}
    return web.json_response({"at": ctx.now_ms, "fragments": out})


async def summary(request: web.Request) -> web.Response:
    console: Console = request.app[CONSOLE]
    now = _now_ms()
    with console.lock:
        data = console.view.summary(now)
        data["halts_in_force"] = console.view.halts(now)
    return web.json_response(data)


# --- acting -------------------------------------------------------------------------------------

async def act(request: web.Request) -> web.Response:
    console: Console = request.app[CONSOLE]
    session: Session = request[SESSION]
    form = await request.post()
    back = _safe_next(str(form.get("next", "/")))
    user = _user(session)
    minutes = str(form.get("minutes", "")).strip()
    try:
        req = Request(action=str(form.get("action", "")), target=str(form.get("target", "")),
                      reason=str(form.get("reason", "")), mode=str(form.get("mode", "now")),
                      proposal_id=str(form.get("proposal_id", "")) or None,
                      label=str(form.get("label", "")) or None,
                      minutes=int(minutes) if minutes.isdigit() else None)
        op = Operator(session.user, session.role, session.auth, _remote(request))
        with console.lock:
            the_plan = plan(console.view, op, req, _now_ms(), two_person=console.cfg.two_person,
                            proposal_ttl_ms=console.proposal_ttl_ms)
    except ActionError as exc:
        await _audit_refusal(request, session, f"malformed request: {exc}")
        return web.Response(status=400, content_type="text/html", text=message_page(
            "Not done: the form is incomplete", str(exc), back=back, user=user,
            csrf=session.csrf))
    try:
        done = await asyncio.get_running_loop().run_in_executor(
            None, console.operations.execute, the_plan)
    except KafkaException as exc:
        log.error("console: could not write the audit record: %s", exc)
        return web.Response(status=502, content_type="text/html", text=message_page(
            "Audit trail unavailable", f"The audit record could not be written to Kafka ({exc}). "
            "Check the control's state before acting again.", back=back, user=user,
            csrf=session.csrf))
    a = done.audit
    if a["outcome"] in ("done", "proposed", "withdrawn"):
        session.flash("ok", f"{a['action']} {a['target']}: {a['outcome']}"
                            f"{' — ' + a['detail'] if a['detail'] else ''} (audit {a['audit_id']})")
        raise web.HTTPSeeOther(back)
    title = "Not permitted" if a["outcome"] == "denied" else "Not done"
    return web.Response(status=done.status, content_type="text/html", text=message_page(
        title, f"{a['action']} {a['target']}: {a['detail']} (audit {a['audit_id']})", back=back,
        user=user, csrf=session.csrf))
