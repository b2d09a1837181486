from pathlib import Path

import pytest

from tradeguard.runtime.settings import Settings, SettingsError

pytestmark = pytest.mark.quick  # pure and fast: `python -m pytest -m quick`


def test_defaults_and_environment():
    s = Settings.from_env(env={})
    assert s.broker == "kafka://127.0.0.1:9092" and s.bootstrap_servers == "127.0.0.1:9092"
    assert s.idle_horizon_s == 30 * 86400
    assert Settings.from_env(env={"TRADEGUARD_IDLE_HORIZON_S": "0"}).idle_horizon_s == 0
    s = Settings.from_env(env={"TRADEGUARD_BROKER": "kafka://k1:9092;kafka://k2:9093",
                               "TRADEGUARD_PARTITIONS": "12", "TRADEGUARD_TOPIC_PREFIX": "prod.",
                               "TRADEGUARD_STATE_DIR": "/var/lib/tg"})
    assert s.bootstrap_servers == "k1:9092,k2:9093" and s.partitions == 12
    assert s.topic("orders") == "prod.orders" and s.state_dir == Path("/var/lib/tg")


def test_overrides_beat_environment_and_none_means_unset():
    s = Settings.from_env(env={"TRADEGUARD_BROKER": "kafka://a:1"}, broker=None)
    assert s.broker == "kafka://a:1"
    assert Settings.from_env(env={"TRADEGUARD_BROKER": "kafka://a:1"},
                             broker="kafka://b:2").broker == "kafka://b:2"


@pytest.mark.parametrize("env, message", [
    ({"TRADEGUARD_PARTITIONS": "many"}, "TRADEGUARD_PARTITIONS='many' is not a valid int"),
    ({"TRADEGUARD_PARTITIONS": "0"}, "TRADEGUARD_PARTITIONS must be >= 1"),
    ({"TRADEGUARD_ALIGN_WAIT_MS": "-1"}, "TRADEGUARD_ALIGN_WAIT_MS must be >= 0"),
    ({"TRADEGUARD_IDLE_HORIZON_S": "-1"}, "TRADEGUARD_IDLE_HORIZON_S must be >= 0"),
    ({"TRADEGUARD_WEB_PORT": "70000"}, "TRADEGUARD_WEB_PORT must be 0..65535"),
    ({"TRADEGUARD_BROKER": "localhost:9092"}, "is not a URL"),
    ({"TRADEGUARD_SECURITY_PROTOCOL": "TLS"}, "TRADEGUARD_SECURITY_PROTOCOL must be"),
])
def test_bad_settings_name_the_variable(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env=env)


def test_sasl_password_from_file_and_not_in_repr(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    s = Settings.from_env(env={"TRADEGUARD_SECURITY_PROTOCOL": "SASL_SSL",
                               "TRADEGUARD_SASL_USERNAME": "tg",
                               "TRADEGUARD_SASL_PASSWORD_FILE": str(secret),
                               "TRADEGUARD_SSL_CAFILE": "/etc/ca.pem"})
    conf = s.kafka_client_config()
    assert conf["sasl.password"] == "s3cret" and conf["ssl.ca.location"] == "/etc/ca.pem"
    assert "s3cret" not in repr(s)
