"""``tradeguard console``: serve the analyst console; ``console add-user``: manage its users."""

from __future__ import annotations

import argparse
import getpass
import sys

__all__ = ["add_console_parser"]


def cmd_console(args: argparse.Namespace) -> int:
    from tradeguard.console.config import ConsoleSettings
    from tradeguard.console.server import ConsoleServer
    from tradeguard.console.users import UserStore, UserStoreError
    from tradeguard.runtime.settings import Settings

    settings = Settings.from_env(broker=args.broker)
    cfg = ConsoleSettings.from_env(host=args.host, port=args.port, users_file=args.users_file)
    try:
        users = UserStore(cfg.users_file)
    except UserStoreError as exc:
        print(f"tradeguard: error: {exc}", file=sys.stderr)
        return 2
    if not len(users) and not cfg.oidc.enabled:
        print(f"tradeguard: error: no users in {cfg.users_file} and OIDC is off: add one with "
              "`tradeguard console add-user NAME --role supervisor`", file=sys.stderr)
        return 2
    server = ConsoleServer(settings, cfg, users)
    server.run(on_listening=lambda s: print(
        f"console on {s.url} (broker {settings.bootstrap_servers}, {len(users)} local users"
        f"{', OIDC ' + cfg.oidc.issuer if cfg.oidc.enabled else ''}); Ctrl-C stops it",
        flush=True))
    return 0


def cmd_add_user(args: argparse.Namespace) -> int:
    from tradeguard.console.config import ConsoleSettings
    from tradeguard.console.users import UserStore, UserStoreError

    path = args.users_file or ConsoleSettings.from_env().users_file
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            print("tradeguard: error: the passwords differ", file=sys.stderr)
            return 2
    if len(password) < 12:
        print("tradeguard: error: use a password of 12 characters or more", file=sys.stderr)
        return 2
    try:
        user = UserStore(path).add(args.name, args.role, password, update=args.update)
    except UserStoreError as exc:
        print(f"tradeguard: error: {exc}", file=sys.stderr)
        return 2
    print(f"{'updated' if args.update else 'added'} {user.name} ({user.role}) in {path}")
    return 0


def add_console_parser(sub, with_broker) -> None:
    """The ``console`` subcommand and its ``add-user`` action, on the main parser."""
    from tradeguard.console.users import ROLES

    p = with_broker(sub.add_parser("console", help="the analyst console (web)"))
    p.add_argument("--host", help="bind address (default $TRADEGUARD_CONSOLE_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default $TRADEGUARD_CONSOLE_PORT or 8080)")
    p.add_argument("--users-file", help="local user store (default "
                   "$TRADEGUARD_CONSOLE_USERS_FILE or ./var/tradeguard/console-users)")
    p.set_defaults(func=cmd_console)
    actions = p.add_subparsers(dest="console_action", metavar="ACTION")
    a = actions.add_parser("add-user", help="add an operator to the local user store")
    a.add_argument("name")
    a.add_argument("--role", required=True, choices=ROLES)
    a.add_argument("--users-file", help="default $TRADEGUARD_CONSOLE_USERS_FILE or "
                   "./var/tradeguard/console-users")
    a.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of standard input")
    a.add_argument("--update", action="store_true", help="replace an existing user's role and "
                   "password")
    a.set_defaults(func=cmd_add_user)
