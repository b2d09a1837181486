"""A secured Apache Kafka for the security tests: SCRAM-SHA-512 over TLS, ACLs enforced.

One broker for the package (whatever ``TRADEGUARD_TEST_BROKER`` says: security is only
testable on Apache Kafka), with three listeners and none of them PLAINTEXT:

- ``CLIENT`` (SASL_SSL, SCRAM-SHA-512): every TradeGuard client, authenticated by its
  SCRAM user, authorised by the ACLs of ``streams/principals.py``;
- ``INTERNAL`` and ``CONTROLLER`` (SSL with client certificates required): the broker
  itself, principal ``User:CN=broker``. The fixture bootstraps through ``INTERNAL`` with
  the broker's certificate only to create the first SCRAM user (``tradeguard-admin``, a
  super user); everything after that (topics, users, ACLs) goes through ``CLIENT`` with
  ``Settings``, as an operator would.

The CA and the certificates are made here with ``openssl`` (a JDK reads the PKCS12
keystore; the truststore is the CA's PEM).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialUpsertion)

from streams.principals import PRINCIPALS
from tradeguard.broker.apache_kafka import ApacheKafkaBroker
from tradeguard.broker.embedded import free_port
from tradeguard.kafka.acls import upsert_scram_users
from tradeguard.kafka.admin import create_topics
from tradeguard.runtime.settings import Settings

ADMIN = "tradeguard-admin"
STORE_PASSWORD = "test-keystore-password"


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, f"openssl {' '.join(args)} failed: {done.stderr}"


def make_ca(directory: Path, name: str) -> Path:
    """A self-signed CA (``<name>.pem`` and ``<name>.key``); returns the certificate."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", f"/CN=TradeGuard test CA {name}", "-keyout", f"{name}.key",
             "-out", f"{name}.pem", cwd=directory)
    return directory / f"{name}.pem"


def issue(directory: Path, ca: str, cn: str) -> tuple[Path, Path]:
    """A certificate for ``cn`` signed by ``ca``, valid for 127.0.0.1 and localhost (client
    and server use: the broker presents it and also connects to itself with it)."""
    (directory / f"{cn}.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
             "-keyout", f"{cn}.key", "-out", f"{cn}.csr", cwd=directory)
    _openssl("x509", "-req", "-in", f"{cn}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-days", "2", "-extfile", f"{cn}.ext", "-out", f"{cn}.crt",
             cwd=directory)
    return directory / f"{cn}.crt", directory / f"{cn}.key"


@dataclass
class SecuredKafka(ApacheKafkaBroker):
    """ApacheKafkaBroker with the listeners above; ``port`` is INTERNAL (what the base class
    waits on and warms up through), ``client_port`` the SASL_SSL listener clients use."""

    pki: Path = field(default=Path("."))
    client_port: int = field(default=0, init=False)

    def start(self) -> "SecuredKafka":
        self.client_port = free_port(self.host)
        return super().start()

    @property
    def client_bootstrap(self) -> str:
        return f"{self.host}:{self.client_port}"

    def server_properties(self) -> dict[str, str]:
        props = super().server_properties()
        h = self.host
        props.update({
            "listeners": f"CLIENT://{h}:{self.client_port},INTERNAL://{h}:{self.port},"
                         f"CONTROLLER://{h}:{self.controller_port}",
            "advertised.listeners": f"CLIENT://{h}:{self.client_port},INTERNAL://{h}:{self.port}",
            "listener.security.protocol.map": "CLIENT:SASL_SSL,INTERNAL:SSL,CONTROLLER:SSL",
            "inter.broker.listener.name": "INTERNAL",
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(self.pki / "broker.p12"),
            "ssl.keystore.password": STORE_PASSWORD,
            "ssl.key.password": STORE_PASSWORD,
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.pki / "ca.pem"),
            # The broker's own connections prove themselves with its certificate.
            "listener.name.internal.ssl.client.auth": "required",
            "listener.name.controller.ssl.client.auth": "required",
            "listener.name.client.sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "listener.name.client.scram-sha-512.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": f"User:CN=broker;User:{ADMIN}",
            "allow.everyone.if.no.acl.found": "false",
            **self.properties,
        })
        return props

    def _client_security(self) -> dict[str, str]:
        return {"security.protocol": "SSL", "ssl.ca.location": str(self.pki / "ca.pem"),
                "ssl.certificate.location": str(self.pki / "broker.crt"),
                "ssl.key.location": str(self.pki / "broker.key")}


@dataclass
class Secured:
    """What a test needs: the broker, the CA, and Settings per principal (password files)."""

    broker: SecuredKafka
    pki: Path
    prefix: str
    passwords: dict[str, str]

    def settings(self, user: str, password: str | None = None, **changes) -> Settings:
        """Settings as a deployment gives them: credentials in a 0600 file, the CA by path."""
        secret = self.pki / f"{user}.password"
        if password is not None:  # a deliberately wrong one gets its own file
            secret = self.pki / f"{user}.wrong-{secrets.token_hex(4)}.password"
            secret.write_text(password)
        values = dict(broker=f"kafka://{self.broker.client_bootstrap}", broker_profile="kafka",
                      topic_prefix=self.prefix, partitions=2, security_protocol="SASL_SSL",
                      sasl_mechanism="SCRAM-SHA-512", sasl_username=user,
                      sasl_password_file=str(secret), ssl_cafile=str(self.pki / "ca.pem"))
        values.update(changes)
        return Settings.from_env(env={}, **values)

    def env(self, user: str) -> dict[str, str]:
        """The same as environment variables (what a worker process reads)."""
        return {"TRADEGUARD_SECURITY_PROTOCOL": "SASL_SSL",
                "TRADEGUARD_SASL_MECHANISM": "SCRAM-SHA-512",
                "TRADEGUARD_SASL_USERNAME": user,
                "TRADEGUARD_SASL_PASSWORD_FILE": str(self.pki / f"{user}.password"),
                "TRADEGUARD_SSL_CAFILE": str(self.pki / "ca.pem")}


@pytest.fixture(scope="session")
def secured(tmp_path_factory) -> Secured:
    missing = [t for t in ("openssl", "java", "mvn") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not on PATH: the secured Apache Kafka needs a JDK, "
                    "Maven (to resolve its jars) and openssl (to make its CA)")
    pki = tmp_path_factory.mktemp("pki")
    make_ca(pki, "ca")
    make_ca(pki, "impostor")  # a CA no one trusts: its broker would be refused
    issue(pki, "ca", "broker")
    _openssl("pkcs12", "-export", "-in", "broker.crt", "-inkey", "broker.key",
             "-certfile", "ca.pem", "-name", "broker", "-out", "broker.p12",
             "-passout", f"pass:{STORE_PASSWORD}", cwd=pki)
    log = tmp_path_factory.mktemp("secured-broker") / "kafka.log"
    broker = SecuredKafka(log_path=log, pki=pki)
    with broker:
        # The first user, as the broker itself (mTLS on INTERNAL): a super user.
        passwords = {p.name: secrets.token_urlsafe(18) for p in PRINCIPALS}
        passwords[ADMIN] = secrets.token_urlsafe(18)
        for user, password in passwords.items():
            path = pki / f"{user}.password"
            path.write_text(password + "\n")
            path.chmod(0o600)
        bootstrap = AdminClient({"bootstrap.servers": broker.bootstrap, "log_level": 0,
                                 **broker._client_security()})
        bootstrap.alter_user_scram_credentials([UserScramCredentialUpsertion(
            ADMIN, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192),
            passwords[ADMIN].encode())])[ADMIN].result(30)
        secured = Secured(broker, pki, "sec.", passwords)
        admin = secured.settings(ADMIN)
        # From here on, as an operator: SCRAM over TLS, through Settings.
        upsert_scram_users(admin, {p.name: passwords[p.name] for p in PRINCIPALS})
        create_topics(admin, timeout_s=30)
        # The CLI, as an operator runs it: credentials from the environment and a file only.
        env = {**os.environ, **secured.env(ADMIN), "TRADEGUARD_TOPIC_PREFIX": secured.prefix,
               "TRADEGUARD_BROKER": f"kafka://{broker.client_bootstrap}"}
        done = subprocess.run([sys.executable, "-m", "tradeguard.cli.main", "acls", "apply"],
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"tradeguard acls apply failed:\n{done.stdout}{done.stderr}"
        yield secured
