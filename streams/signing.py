"""Signed control records: HMAC-SHA256 over the record's canonical JSON (RFC 8785).

A halt, a release, a step-up or a freeze changes what every gateway and every
worker does, so the engine enforces a control record only when it carries a
``signature`` made with a key the writers share (the engine itself,
``tradeguard controls``, the analyst console; docs/security.md has the trust
model). A record written by anyone else who can reach the topic is ignored
and counted.

The signature covers every field but ``signature`` itself, serialised by the
JSON Canonicalization Scheme (RFC 8785: keys sorted, no whitespace, numbers
as ECMAScript prints them), so any language can re-serialise a record and
check it. Its form is ``v1:<key id>:<hex HMAC-SHA256>``; the key id (the first
8 hex digits of the key's SHA-256) picks the key, so keys rotate without a
flag day.

A signature says who wrote a record, not when it may apply: a genuine record
can be captured and re-sent. Control records therefore carry ``seq`` inside
the signed payload, and the boards apply one only if it follows the record in
force (tradeguard/core/board.py; a refused one is a :class:`ReplayError`).
The same key signs labels that may change an account (``feedback``) and the
console's audit records.

>>> keys = ControlKeys.development()
>>> halt = {"ticker": "7203", "action": "halt_buys", "reason": "coordinated buying",
...         "evidence": {"accounts": 3}, "expires_at": 1744761900000, "source": "engine",
...         "ts": 1744761600000}
>>> signed = sign(halt, keys)
>>> check(signed, keys)
>>> check({**signed, "action": "release"}, keys)
Traceback (most recent call last):
...
streams.signing.SignatureError: signature: does not match the record (forged or altered)
>>> check(halt, keys)
Traceback (most recent call last):
...
streams.signing.SignatureError: signature: missing: only the engine, the CLI and the console sign control records
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import orjson
import rfc8785

from streams.schema import RecordError
from streams.topics import CONTROLS_ACCOUNTS, CONTROLS_TICKERS

__all__ = ["CONTROL_TOPICS", "ControlKeys", "ReplayError", "SignatureError", "canonical", "check",
           "ANSWERS", "Attested", "attest", "attest_answers", "is_signed", "sign", "unsigned_or_forged"]

#: The topics whose records must be signed.
CONTROL_TOPICS = (CONTROLS_TICKERS, CONTROLS_ACCOUNTS)
SIGNATURE = "signature"
VERSION = "v1"
#: Public on purpose: the embedded demo and the tests sign with it. It protects nothing.
DEVELOPMENT_KEY = b"tradeguard development control key: public, protects nothing"


class SignatureError(RecordError):
    """A control record without a valid signature; ``field`` is ``signature``."""

    label = "bad_signature"

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message, SIGNATURE)
        self.kind = kind  # missing, malformed, unknown_key, mismatch, tombstone, not_canonical


class ReplayError(RecordError):
    """A validly signed control record that does not follow the one in force (``seq``).

    ``kind`` is ``replayed`` (an older or losing record: captured and re-sent, or
    out of order) or ``unsequenced`` (no ``seq``: nothing to order it by).
    """

    label = "replayed"

    def __init__(self, kind: str) -> None:
        why = ("does not follow the control in force: a replayed or out-of-order record"
               if kind == "replayed" else "carries no seq, so it cannot be ordered")
        super().__init__(why, "seq")
        self.kind = kind


def key_id(key: bytes) -> str:
    """Which key signed: 8 hex digits of its SHA-256 (says nothing usable about the key)."""
    return hashlib.sha256(key).hexdigest()[:8]


@dataclass(frozen=True)
class ControlKeys:
    """The keys in force: the first signs, every one verifies (rotation)."""

    keys: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("at least one control key is needed")
        short = [i for i, k in enumerate(self.keys) if len(k) < 16]
        if short:
            raise ValueError(f"control key #{short[0] + 1} is shorter than 16 bytes: "
                             "use a random secret, e.g. `openssl rand -hex 32`")

    @classmethod
    def development(cls) -> "ControlKeys":
        return cls((DEVELOPMENT_KEY,))

    @classmethod
    def from_text(cls, text: str) -> "ControlKeys":
        """One key per line; blank lines and ``#`` comments are skipped."""
        lines = [line.strip() for line in text.splitlines()]
        return cls(tuple(line.encode() for line in lines if line and not line.startswith("#")))

    @classmethod
    def from_file(cls, path: str | Path) -> "ControlKeys":
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ValueError(f"cannot read the control key file {path}: {exc.strerror}") from None
        try:
            return cls.from_text(text)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None

    @classmethod
    def from_settings(cls, settings: Any) -> "ControlKeys":
        """``TRADEGUARD_CONTROL_KEY_FILE``, or the development key when it is unset."""
        path = getattr(settings, "control_key_file", "")
        return cls.from_file(path) if path else cls.development()

    @property
    def is_development(self) -> bool:
        return self.keys[0] == DEVELOPMENT_KEY

    @property
    def signing_id(self) -> str:
        return key_id(self.keys[0])

    def by_id(self, kid: str) -> bytes | None:
        for k in self.keys:
            if key_id(k) == kid:
                return k
        return None


def canonical(record: Mapping[str, Any]) -> bytes:
    """RFC 8785 bytes of ``record`` without its signature: what the HMAC covers."""
    body = {k: v for k, v in record.items() if k != SIGNATURE}
    try:
        return rfc8785.dumps(body)
    except rfc8785.CanonicalizationError as exc:  # NaN, an integer beyond 2^53, ...
        raise SignatureError(f"record has no canonical JSON form: {exc}",
                             "not_canonical") from None


def _mac(key: bytes, record: Mapping[str, Any]) -> str:
    return hmac.new(key, canonical(record), hashlib.sha256).hexdigest()


def sign(record: Mapping[str, Any], keys: ControlKeys) -> dict[str, Any]:
    """A copy of ``record`` with its ``signature`` (any old one replaced)."""
    key = keys.keys[0]
    return {**record, SIGNATURE: f"{VERSION}:{key_id(key)}:{_mac(key, record)}"}


def check(record: Mapping[str, Any], keys: ControlKeys) -> None:
    """Return if ``record`` is signed by one of ``keys``; else SignatureError saying why."""
    sig = record.get(SIGNATURE)
    if sig is None:
        raise SignatureError("missing: only the engine, the CLI and the console sign control "
                             "records", "missing")
    if not isinstance(sig, str) or sig.count(":") != 2:
        raise SignatureError(f"expected '{VERSION}:<key id>:<hex HMAC-SHA256>'", "malformed")
    version, kid, mac = sig.split(":")
    if version != VERSION:
        raise SignatureError(f"unknown version {version[:16]!r}; this engine knows {VERSION}",
                             "malformed")
    key = keys.by_id(kid)
    if key is None:
        raise SignatureError(f"made with key {kid[:16]!r}, which this engine does not hold",
                             "unknown_key")
    if not hmac.compare_digest(mac.encode(), _mac(key, record).encode()):
        raise SignatureError("does not match the record (forged or altered)", "mismatch")


def is_signed(record: Mapping[str, Any], keys: ControlKeys) -> bool:
    """Whether ``record`` carries a valid signature by one of ``keys`` (no reason given)."""
    try:
        check(record, keys)
    except SignatureError:
        return False
    return True


class Attested:
    """A decoded record and whether the edge found it validly signed; reads as the record.

    The Kafka edge wraps every ``feedback`` label in one, so the pure core can
    tell an operator's signed verdict (``authoritative``: may release or freeze)
    from a label anyone could write (trains the models only) without holding a key.
    """

    __slots__ = ("record", "authoritative")

    def __init__(self, record: Any, authoritative: bool) -> None:
        self.record, self.authoritative = record, authoritative

    def __getattr__(self, name: str) -> Any:
        if name in Attested.__slots__:  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.record, name)

    def __repr__(self) -> str:
        return f"Attested({self.record!r}, authoritative={self.authoritative})"


def attest(records: Sequence[Any], values: Sequence[bytes | None],
           keys: ControlKeys) -> list[Attested]:
    """Each decoded record of ``values`` wrapped with whether its raw value is signed."""
    out = []
    for record, value in zip(records, values):
        try:
            raw = orjson.loads(value) if value is not None else None
        except orjson.JSONDecodeError:
            raw = None
        out.append(Attested(record, isinstance(raw, dict) and is_signed(raw, keys)))
    return out


#: Login events that change an account's state: a step-up's answer releases or freezes it.
ANSWERS = ("mfa_challenge_passed", "mfa_challenge_failed")


def attest_answers(records: Sequence[Any], values: Sequence[bytes | None],
                   keys: ControlKeys) -> list[Any]:
    """``records`` with each step-up answer wrapped as :func:`attest` does; logins as they
    are (the hot path: only the rare answers are parsed again)."""
    at = [i for i, r in enumerate(records) if r.event in ANSWERS]
    if not at:
        return list(records)
    out = list(records)
    for i, wrapped in zip(at, attest([records[i] for i in at], [values[i] for i in at], keys)):
        out[i] = wrapped
    return out


def unsigned_or_forged(values: Sequence[bytes | None], keys: ControlKeys
                       ) -> list[tuple[int, RecordError]]:
    """(index, why) for each raw control value that is not validly signed.

    Values that are not JSON objects are left to the schema decoder, which
    names what is wrong with them; a tombstone (no value) cannot be signed and
    is refused here, or anyone could end a control by deleting its key.
    """
    out: list[tuple[int, RecordError]] = []
    for i, value in enumerate(values):
        if value is None:
            out.append((i, SignatureError("a tombstone cannot be signed: end a control with "
                                          "a signed release", "tombstone")))
            continue
        try:
            record = orjson.loads(value)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(record, dict):
            continue
        try:
            check(record, keys)
        except SignatureError as exc:
            out.append((i, exc))
    return out
