"""Kafka principals and ACLs (streams/principals.py): generated, valid, and agreeing with the
topic registry, the engine's settings and the code that writes control records."""

from __future__ import annotations

from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML missing: run .ci/install-deploy-tools")

from streams.principals import PRINCIPALS, acls, manifests  # noqa: E402
from streams.signing import CONTROL_TOPICS  # noqa: E402
from streams.topics import TOPICS  # noqa: E402
from tests.deploy.test_manifests import crd_validator  # noqa: E402

pytestmark = pytest.mark.quick  # pure and fast: `python -m pytest -m quick`

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
BY_NAME = {p.name: p for p in PRINCIPALS}


def test_committed_user_manifests_are_generated_from_the_table():
    assert (DEPLOY / "users" / "users.yaml").read_text() == manifests(), (
        "deploy/users/users.yaml is stale: python -m streams.principals > deploy/users/users.yaml")


def test_users_match_strimzi_s_kafkauser_schema():
    docs = [d for d in yaml.safe_load_all(manifests()) if d]
    assert [d["metadata"]["name"] for d in docs] == [p.name for p in PRINCIPALS]
    validator = crd_validator("kafka.strimzi.io/v1", "KafkaUser")
    for doc in docs:
        errors = [e.message for e in validator.iter_errors(doc)]
        assert not errors, (doc["metadata"]["name"], errors)
        assert doc["spec"]["authentication"]["type"] == "scram-sha-512"


def test_the_schema_check_rejects_a_misspelt_acl():
    doc = next(d for d in yaml.safe_load_all(manifests()) if d)
    doc["spec"]["authorization"]["acls"][0]["operation"] = "Read"  # v1 wants `operations`
    assert list(crd_validator("kafka.strimzi.io/v1", "KafkaUser").iter_errors(doc))


def test_every_topic_has_a_writer_and_a_reader_and_internal_ones_stay_inside():
    for spec in TOPICS:
        writers = {p.name for p in PRINCIPALS if spec.name in p.writes}
        readers = {p.name for p in PRINCIPALS if spec.name in p.reads}
        assert writers, f"nobody may write {spec.name}"
        if spec.internal:
            assert writers == readers == {"tradeguard"}, spec.name
        if "engine" in spec.producer.split(",")[0]:
            assert "tradeguard" in writers, spec.name


def test_least_privilege_where_it_matters():
    engine, gateway = BY_NAME["tradeguard"], BY_NAME["tradeguard-gateway"]
    # Only the engine, the console and the break-glass operator may write controls; all of
    # them hold the control key, and the records are signed on top (docs/security.md).
    for name in CONTROL_TOPICS:
        assert {p.name for p in PRINCIPALS if name in p.writes} == {
            "tradeguard", "tradeguard-console", "tradeguard-operator"}
    # Gateways cannot fake decisions, labels or engine state, nor read other inputs.
    assert set(gateway.writes) == {"orders", "auth.events"}
    assert not set(engine.writes) & {"orders", "auth.events", "market.trades", "feedback",
                                      "audit"}
    assert {p.name for p in PRINCIPALS if "audit" in p.writes} == {"tradeguard-console"}
    # Only the engine joins a consumer group (everyone else reads by manual assignment).
    assert [p.name for p in PRINCIPALS if p.groups] == ["tradeguard"]


def test_acl_entries_name_the_prefixed_topics():
    entries = acls(BY_NAME["tradeguard-gateway"], prefix="prod.")
    names = {e["resource"]["name"] for e in entries}
    assert names == {"prod.orders", "prod.auth.events", "prod.decisions",
                     "prod.controls.tickers", "prod.controls.accounts"}
    by = {e["resource"]["name"]: e["operations"] for e in entries}
    assert by["prod.orders"] == ["Write", "Describe"]
    assert by["prod.decisions"] == ["Read", "Describe"]


def test_the_engine_logs_in_as_its_principal():
    env = yaml.safe_load((DEPLOY / "base" / "kustomization.yaml").read_text())
    (generated,) = [g for g in env["configMapGenerator"] if g["name"] == "tradeguard-env"]
    literals = dict(line.split("=", 1) for line in generated["literals"])
    assert literals["TRADEGUARD_SASL_USERNAME"] in BY_NAME
    assert literals["TRADEGUARD_SASL_USERNAME"] == "tradeguard"
    assert literals["TRADEGUARD_CONTROL_KEY_FILE"]  # production never runs on the public key
