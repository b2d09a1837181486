"""SASL/SCRAM as far as the embedded broker lets us exercise it (docs/security.md has the gap).

Tansu with ``--authentication`` offers SCRAM only and cannot be given a first user
(user creation needs an authenticated connection), so no login can succeed. What
this does show: our one client configuration (``Settings.kafka_client_config``,
password from a file) speaks SCRAM-SHA-512 to the broker far enough for it to look
the user up, and a client without SASL is refused.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer

from tradeguard.broker.embedded import EmbeddedBroker
from tradeguard.runtime.settings import Settings

pytestmark = pytest.mark.broker


def _errors(settings: Settings, seconds: float = 4.0) -> list[str]:
    errors: list[str] = []
    producer = Producer({**settings.kafka_client_config(), "log_level": 0,
                         "error_cb": lambda err: errors.append(err.str())})
    producer.produce("probe", b"x")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not errors:
        producer.poll(0.2)
    producer.purge()
    producer.flush(1)
    return errors


def test_scram_reaches_the_broker_s_credential_check(tmp_path):
    password = tmp_path / "password"
    password.write_text("not-the-real-one\n")
    with EmbeddedBroker(log_path=tmp_path / "tansu.log", authentication=True) as broker:
        scram = Settings.from_env(env={}, broker=broker.url, broker_profile=broker.profile, security_protocol="SASL_PLAINTEXT",
                                  sasl_mechanism="SCRAM-SHA-512", sasl_username="tradeguard",
                                  sasl_password_file=str(password))
        assert scram.kafka_client_config()["sasl.password"] == "not-the-real-one"
        errors = _errors(scram)
        assert any("SASL SCRAM authentication failed" in e and "unknown-user" in e
                   for e in errors), errors
        plain = Settings.from_env(env={}, broker=broker.url, broker_profile=broker.profile)
        errors = _errors(plain)
        assert errors and not any("SASL" in e for e in errors), errors
