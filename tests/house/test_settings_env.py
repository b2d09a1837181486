"""A worker started as a child process runs with exactly the settings it was given.

``WorkerProcess`` passes its settings through the environment (``Settings.to_env``), and
the child reads them back (``Settings.from_env``). A field left off that path makes the
child run with its default, silently: static membership once did, and the fault
benchmark's "static" worker joined the group as a dynamic member.
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import pytest

from tradeguard.broker.worker_process import WorkerProcess
from tradeguard.runtime.settings import Settings

pytestmark = pytest.mark.quick

#: Values of the right kind, none a default, that every check in ``Settings`` accepts.
CHANGED = {
    "broker": "kafka://10.1.2.3:9093", "broker_profile": "kafka", "log_level": "debug",
    "log_format": "json", "processing_guarantee": "exactly_once",
    "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
    "group_protocol": "consumer", "idle_horizon_s": 2 * 86400.0,
}


def _changed(f, default):
    if f.name in CHANGED:
        return CHANGED[f.name]
    if isinstance(default, bool):
        return not default
    if isinstance(default, int):
        return default + 7
    if isinstance(default, float):
        return default * 2 + 1.5
    if isinstance(default, Path):
        return Path("/srv/tradeguard-state-x")
    return f"x-{f.name}"


def test_every_setting_reaches_the_child(tmp_path):
    base = Settings()
    values = {f.name: _changed(f, getattr(base, f.name)) for f in fields(Settings)
              if f.name not in ("sasl_password", "control_key_file", "sasl_password_file")}
    given = replace(base, **values)
    env = WorkerProcess(given, tmp_path / "unused.log").env()
    read_back = Settings.from_env(env=env)
    for f in fields(Settings):
        if f.name == "sasl_password":
            continue
        assert getattr(read_back, f.name) == getattr(given, f.name), f.name


def test_the_password_stays_out_of_the_environment(tmp_path):
    given = Settings(sasl_password="hunter2-secret")
    env = WorkerProcess(given, tmp_path / "unused.log").env()
    assert "TRADEGUARD_SASL_PASSWORD" not in env
    assert "hunter2-secret" not in "".join(env.values())
    assert env["TRADEGUARD_GROUP_INSTANCE_ID"] == ""  # and the rest is there
