"""Wiring and running the console: reader, view, operations and web app on one port.

:class:`ConsoleServer` runs in the foreground (``tradeguard console``) or on a
background thread of the calling process (``tradeguard demo --console``, the
tests), and stops its reader and its web server either way.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading

from aiohttp import web

from tradeguard.kafka.admin import wait_reachable
from tradeguard.console.app import AccessLog, Console, build_app
from tradeguard.console.config import ConsoleSettings
from tradeguard.console.feed import ConsoleFeed
from tradeguard.console.operations import Operations
from tradeguard.console.sessions import LoginThrottle, SessionStore
from tradeguard.console.users import UserStore
from tradeguard.console.view import ConsoleView
from tradeguard.runtime.settings import Settings

__all__ = ["ConsoleServer"]

log = logging.getLogger("tradeguard.console")


class ConsoleServer:
    """The console for one Kafka cluster (``settings``) with its own ``cfg``."""

    def __init__(self, settings: Settings, cfg: ConsoleSettings,
                 users: UserStore | None = None) -> None:
        self.settings, self.cfg = settings, cfg
        users = users if users is not None else UserStore(cfg.users_file)
        view = ConsoleView(bucket_ms=int(cfg.chart_bucket_s * 1000))
        lock = threading.Lock()
        oidc = None
        if cfg.oidc.enabled:
            from tradeguard.console.oidc import OidcClient

            oidc = OidcClient(cfg.oidc)
        self.console = Console(
            cfg=cfg, users=users, view=view, lock=lock,
            operations=Operations(settings, view, lock),
            feed=ConsoleFeed(settings, view, lock, lookback_s=cfg.lookback_s,
                             audit_lookback_s=cfg.audit_lookback_s),
            sessions=SessionStore(cfg.session_idle_s, cfg.session_max_s),
            throttle=LoginThrottle(), oidc=oidc)
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = self.cfg.host if ":" not in self.cfg.host else f"[{self.cfg.host}]"
        return f"{self.cfg.scheme}://{host}:{self.port}"

    def _ssl(self) -> ssl.SSLContext | None:
        if not self.cfg.tls_cert:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cfg.tls_cert, self.cfg.tls_key)
        return context

    async def _start_web(self) -> None:
        self._runner = web.AppRunner(build_app(self.console), access_log_class=AccessLog)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.cfg.host, self.cfg.port, ssl_context=self._ssl())
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def _stop_web(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _start_feed(self) -> None:
        wait_reachable(self.settings)
        if self.console.oidc is not None:
            self.console.oidc.discover()
        self.console.feed.start()

    def start(self, wait_caught_up_s: float = 30.0) -> "ConsoleServer":
        """Serve on a background thread; return once it listens and has read the topics."""
        self._start_feed()
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(self._start_web())
            except BaseException as exc:  # reported to the caller of start()
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._stop_web())
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="console-web", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self.console.feed.stop()
            raise failure[0]
        self.console.feed.caught_up.wait(wait_caught_up_s)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self.console.feed.stop()
        self.console.operations.close()

    def run(self, on_listening=None) -> None:
        """Serve in the foreground until interrupted."""
        self._start_feed()

        async def main() -> None:
            await self._start_web()
            if on_listening is not None:
                on_listening(self)
            try:
                await asyncio.Event().wait()
            finally:
                await self._stop_web()

        try:
            asyncio.run(main())
        finally:
            self.console.feed.stop()
            self.console.operations.close()

    def __enter__(self) -> "ConsoleServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
