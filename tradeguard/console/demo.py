"""The console beside ``tradeguard demo --console``: demo operators, the address, a clean stop."""

from __future__ import annotations

import secrets
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tradeguard.broker.embedded import free_port
from tradeguard.console.config import ConsoleSettings
from tradeguard.console.server import ConsoleServer
from tradeguard.console.users import UserStore
from tradeguard.runtime.settings import Settings

__all__ = ["demo_console", "wait_for_operator"]

DEMO_USERS = (("viewer", "viewer"), ("analyst", "analyst"), ("analyst2", "analyst"),
              ("supervisor", "supervisor"))


@contextmanager
def demo_console(settings: Settings, workdir: Path, out=sys.stdout) -> Iterator[ConsoleServer]:
    """Serve the console for the demo's broker on a free loopback port until the block ends.

    The operators get fresh random passwords, printed once on the demo's terminal
    (they live only in this run's temporary users file).
    """
    users = UserStore(workdir / "console-users")
    passwords = {name: secrets.token_urlsafe(9) for name, _ in DEMO_USERS}
    for name, role in DEMO_USERS:
        users.add(name, role, passwords[name])
    cfg = ConsoleSettings.from_env(env={}, port=free_port(), users_file=users.path)
    server = ConsoleServer(settings, cfg, users).start()
    try:
        logins = ", ".join(f"{name} / {passwords[name]}" for name, _ in DEMO_USERS)
        print(f"console: {server.url}  (log in as {logins})", file=out, flush=True)
        yield server
    finally:
        server.stop()


def wait_for_operator(server: ConsoleServer, out=sys.stdout) -> None:
    """On a terminal, keep the console up after the demo until Enter (or Ctrl-C)."""
    if not sys.stdin.isatty():
        return
    print(f"the console stays up at {server.url} with the worker running; press Enter to stop",
          file=out, flush=True)
    try:
        sys.stdin.readline()
    except KeyboardInterrupt:
        pass
