"""The principals' ACLs and SCRAM users, applied to a Kafka cluster through the admin API.

``streams/principals.py`` declares who may read and write what, once; it renders the
Strimzi ``KafkaUser`` resources in deploy/users, and :func:`bindings` turns the very same
entries (``streams.principals.acls``) into confluent-kafka ``AclBinding`` objects, so a
cluster without the Strimzi operator (the security tests' broker, a managed Kafka) gets the
same permissions, not a hand-copied variant. ``tradeguard acls apply`` runs
:func:`apply_acls` with the credentials of ``Settings`` (a principal allowed to alter
ACLs: a super user or one with ``Alter`` on the cluster).

>>> [(b.restype.name, b.name, b.operation.name) for b in bindings(PRINCIPALS[2])]
... # doctest: +NORMALIZE_WHITESPACE
[('TOPIC', 'market.trades', 'WRITE'), ('TOPIC', 'market.trades', 'DESCRIBE'),
 ('TOPIC', 'reference.tickers', 'WRITE'), ('TOPIC', 'reference.tickers', 'DESCRIBE')]
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Iterable, Mapping

from confluent_kafka import KafkaException
from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType,
                                   ResourcePatternType, ResourceType, ScramMechanism,
                                   ScramCredentialInfo, UserScramCredentialUpsertion)

from streams.principals import PRINCIPALS, Principal, acls
from tradeguard.kafka.clients import admin as _admin
from tradeguard.kafka.errors import BrokerError
from tradeguard.runtime.settings import Settings

__all__ = ["apply_acls", "bindings", "upsert_scram_users"]

_RESOURCE = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP,
             "cluster": ResourceType.BROKER, "transactionalId": ResourceType.TRANSACTIONAL_ID}
_PATTERN = {"literal": ResourcePatternType.LITERAL, "prefix": ResourcePatternType.PREFIXED}
_OPERATION = {"Read": AclOperation.READ, "Write": AclOperation.WRITE,
              "Describe": AclOperation.DESCRIBE, "IdempotentWrite": AclOperation.IDEMPOTENT_WRITE}


def bindings(p: Principal, prefix: str = "", host: str = "*") -> list[AclBinding]:
    """``p``'s Strimzi ACL entries as ALLOW bindings for ``User:<name>``; nothing else is allowed
    once the cluster runs with ``allow.everyone.if.no.acl.found=false``."""
    out = []
    for entry in acls(p, prefix):
        res = entry["resource"]
        try:
            restype = _RESOURCE[res["type"]]
            # The cluster resource is named kafka-cluster, always literal.
            name = res.get("name", "kafka-cluster")
            pattern = _PATTERN[res.get("patternType", "literal")]
            ops = [_OPERATION[op] for op in entry["operations"]]
        except KeyError as exc:
            raise ValueError(f"principal {p.name}: ACL entry {entry} has an unknown "
                             f"{exc.args[0]!r} (resource type, pattern or operation)") from None
        out.extend(AclBinding(restype, name, pattern, f"User:{p.name}", host, op,
                              AclPermissionType.ALLOW) for op in ops)
    return out


def apply_acls(settings: Settings, principals: Iterable[Principal] = PRINCIPALS,
               prefix: str | None = None, timeout_s: float = 15.0) -> int:
    """Create every principal's bindings (topic names prefixed as ``settings`` prefixes them);
    return how many. Creating a binding that exists is a no-op, so this is safe to re-run.
    It only adds: a binding removed from the table is not revoked here (``kafka-acls
    --remove``, or Strimzi, which reconciles)."""
    prefix = settings.topic_prefix if prefix is None else prefix
    wanted = [b for p in principals for b in bindings(p, prefix)]
    client = _admin(settings)  # held until every future is answered: its end fails them
    _answered(client.create_acls(wanted, request_timeout=timeout_s), timeout_s,
              "could not create ACL {}")
    return len(wanted)


def upsert_scram_users(settings: Settings, passwords: Mapping[str, str],
                       mechanism: str = "SCRAM-SHA-512", iterations: int = 8192,
                       timeout_s: float = 15.0) -> None:
    """Create or reset SCRAM credentials ``{user: password}`` (a cluster without Strimzi's
    user operator; the security tests). Passwords come from the caller, never argv."""
    mech = {"SCRAM-SHA-256": ScramMechanism.SCRAM_SHA_256,
            "SCRAM-SHA-512": ScramMechanism.SCRAM_SHA_512}.get(mechanism)
    if mech is None:
        raise ValueError(f"mechanism must be SCRAM-SHA-256 or SCRAM-SHA-512, got {mechanism!r}")
    upserts = [UserScramCredentialUpsertion(user, ScramCredentialInfo(mech, iterations),
                                            password.encode())
               for user, password in passwords.items()]
    client = _admin(settings)  # held until every future is answered: its end fails them
    _answered(client.alter_user_scram_credentials(upserts, request_timeout=timeout_s),
              timeout_s, "could not set SCRAM credentials of {}")


def _answered(futures: Mapping[object, Future], timeout_s: float, failed: str) -> None:
    """Wait for each of an admin call's futures; the first that failed raises ``BrokerError``,
    ``failed`` naming what it was for (``{}``: the future's key) before the broker's words."""
    for what, future in futures.items():
        try:
            future.result(timeout_s)
        except KafkaException as exc:
            raise BrokerError(f"{failed.format(what)}: {exc.args[0].str()}") from None
