"""The local user store: operators, their roles and scrypt password hashes, in one text file.

One operator per line, ``name:role:hash``; blank lines and ``#`` comments are
ignored. The hash names its own parameters, so they can be raised later
without invalidating stored passwords::

    # tradeguard console users (tradeguard console add-user)
    alice:supervisor:scrypt$n=32768,r=8,p=3$<salt, base64>$<key, base64>

>>> h = hash_password("correct horse", params=ScryptParams(n=16, r=1, p=1))
>>> h.startswith("scrypt$n=16,r=1,p=1$"), verify_password("correct horse", h)
(True, True)
>>> verify_password("wrong", h)
False
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ROLES", "ScryptParams", "User", "UserStore", "UserStoreError", "hash_password",
           "verify_password"]

log = logging.getLogger("tradeguard.console")

#: Roles from least to most trusted; each may do what the ones before it may.
ROLES = ("viewer", "analyst", "supervisor")
_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")


class UserStoreError(ValueError):
    """The users file or a user entry is unusable; the message names the line or field."""


@dataclass(frozen=True)
class ScryptParams:
    """scrypt cost: n (CPU/memory, a power of two), r (block size), p (parallelism).

    The default, n=2**15 r=8 p=3, is one of the settings OWASP's Password Storage
    Cheat Sheet lists as equivalent to its recommended minimum (n=2**17 r=8 p=1):
    32 MiB and about 0.2 s per hash on one core of this project's CI machine.
    """

    n: int = 2**15
    r: int = 8
    p: int = 3

    def check(self) -> None:
        if self.n < 2 or self.n & (self.n - 1):
            raise UserStoreError(f"scrypt n must be a power of two >= 2, got {self.n}")
        if not (1 <= self.r <= 64 and 1 <= self.p <= 16):
            raise UserStoreError(f"scrypt r must be 1..64 and p 1..16, got r={self.r} p={self.p}")

    def derive(self, password: str, salt: bytes) -> bytes:
        return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=self.n, r=self.r, p=self.p,
                              dklen=32, maxmem=256 * self.n * self.r + (1 << 20))


DEFAULT_PARAMS = ScryptParams()


def hash_password(password: str, params: ScryptParams = DEFAULT_PARAMS) -> str:
    """A self-describing scrypt hash of ``password`` with a fresh 16-byte salt."""
    if not password:
        raise UserStoreError("password must not be empty")
    params.check()
    salt = secrets.token_bytes(16)
    key = params.derive(password, salt)
    return (f"scrypt$n={params.n},r={params.r},p={params.p}$"
            f"{base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}")


def _parse_hash(encoded: str) -> tuple[ScryptParams, bytes, bytes]:
    try:
        scheme, cost, salt, key = encoded.split("$")
        if scheme != "scrypt":
            raise ValueError(f"unknown scheme {scheme!r}")
        values = dict(kv.split("=", 1) for kv in cost.split(","))
        params = ScryptParams(n=int(values["n"]), r=int(values["r"]), p=int(values["p"]))
        params.check()
        return params, base64.b64decode(salt, validate=True), base64.b64decode(key, validate=True)
    except (ValueError, KeyError) as exc:
        raise UserStoreError(f"not a scrypt$n=..,r=..,p=..$salt$key hash: {exc}") from None


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches ``encoded``, compared in constant time."""
    params, salt, key = _parse_hash(encoded)
    return hmac.compare_digest(params.derive(password, salt), key)


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password_hash: str

    def line(self) -> str:
        return f"{self.name}:{self.role}:{self.password_hash}"


def _check_name_and_role(name: str, role: str) -> None:
    if not _NAME.match(name):
        raise UserStoreError(f"user name {name!r} must be 1-64 of A-Z a-z 0-9 . _ @ -")
    if role not in ROLES:
        raise UserStoreError(f"role must be one of {list(ROLES)}, got {role!r}")


class UserStore:
    """The operators in one users file, read at start and re-read when the file changes."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._users: dict[str, User] = {}
        self._mtime: float | None = None
        # Verifying against this for unknown names makes a wrong name cost as much as a
        # wrong password, so response times do not tell which names exist.
        self._decoy = hash_password(secrets.token_urlsafe(16))
        self.reload()

    def reload(self) -> None:
        if not self.path.exists():
            self._users, self._mtime = {}, None
            return
        st = self.path.stat()
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise UserStoreError(f"{self.path} is writable by group or others: chmod 600 it")
        if st.st_mode & (stat.S_IRGRP | stat.S_IROTH):
            log.warning("%s is readable by group or others; chmod 600 it", self.path)
        users = {}
        for no, raw in enumerate(self.path.read_text().splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(":")
            if len(parts) != 3:
                raise UserStoreError(f"{self.path}:{no}: expected name:role:hash")
            name, role, encoded = parts
            try:
                _check_name_and_role(name, role)
                _parse_hash(encoded)
            except UserStoreError as exc:
                raise UserStoreError(f"{self.path}:{no}: {exc}") from None
            if name in users:
                raise UserStoreError(f"{self.path}:{no}: user {name!r} listed twice")
            users[name] = User(name, role, encoded)
        self._users, self._mtime = users, st.st_mtime

    def _fresh(self) -> None:
        mtime = self.path.stat().st_mtime if self.path.exists() else None
        if mtime != self._mtime:
            self.reload()

    def __len__(self) -> int:
        return len(self._users)

    def get(self, name: str) -> User | None:
        self._fresh()
        return self._users.get(name)

    def authenticate(self, name: str, password: str) -> User | None:
        """The user when ``password`` is theirs, else None (same cost either way)."""
        user = self.get(name)
        ok = verify_password(password, user.password_hash if user else self._decoy)
        return user if user and ok else None

    def add(self, name: str, role: str, password: str, *, update: bool = False,
            params: ScryptParams = DEFAULT_PARAMS) -> User:
        """Add (or with ``update``, replace) a user and rewrite the file, mode 0600."""
        _check_name_and_role(name, role)
        self._fresh()
        if name in self._users and not update:
            raise UserStoreError(f"user {name!r} exists; pass --update to change it")
        user = User(name, role, hash_password(password, params))
        self._users[name] = user
        self._write()
        return user

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = "# tradeguard console users: name:role:scrypt hash (tradeguard console add-user)\n"
        text += "".join(u.line() + "\n" for u in self._users.values())
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, self.path)
        self._mtime = self.path.stat().st_mtime
