"""The principals' ACL entries (the ones deploy/users renders) as admin-API bindings: pure."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AclOperation, ResourcePatternType, ResourceType

from streams.principals import PRINCIPALS, Principal, acls
from tradeguard.kafka.acls import bindings


@pytest.mark.parametrize("p", PRINCIPALS, ids=lambda p: p.name)
def test_every_entry_becomes_one_allow_binding_per_operation(p):
    got = {(b.restype, b.name, b.resource_pattern_type, b.operation) for b in bindings(p, "x.")}
    assert all(b.principal == f"User:{p.name}" and b.host == "*" for b in bindings(p, "x."))
    want = set()
    for entry in acls(p, "x."):
        kind = entry["resource"]["type"]
        for op in entry["operations"]:
            want.add(({"topic": ResourceType.TOPIC, "group": ResourceType.GROUP,
                       "cluster": ResourceType.BROKER,
                       "transactionalId": ResourceType.TRANSACTIONAL_ID}[kind],
                      entry["resource"].get("name", "kafka-cluster"),
                      ResourcePatternType.PREFIXED if kind in ("group", "transactionalId")
                      else ResourcePatternType.LITERAL,
                      getattr(AclOperation, op.upper().replace("IDEMPOTENTWRITE",
                                                               "IDEMPOTENT_WRITE"))))
    assert got == want
    # topics by their full (prefixed) literal name, and nothing wider than a group prefix
    assert {b.name for b in bindings(p, "x.") if b.restype == ResourceType.TOPIC} == {
        f"x.{t}" for t in set(p.reads) | set(p.writes)}


def test_an_unknown_operation_is_named(monkeypatch):
    import tradeguard.kafka.acls as mod

    monkeypatch.setattr(mod, "acls", lambda p, prefix="": [
        {"resource": {"type": "topic", "name": "orders", "patternType": "literal"},
         "operations": ["All"]}])
    with pytest.raises(ValueError, match="'All'"):
        bindings(Principal("x", "test", reads=("orders",)))
