"""Gateways fail safe (issue 21): no control key, no start, unless told to trust unsigned controls."""

from __future__ import annotations

import pytest

from tradeguard.gateway.client import GatewayClient
from tradeguard.runtime.settings import Settings, SettingsError


def test_a_gateway_without_a_key_refuses_to_start_and_says_how_to_fix_it():
    with pytest.raises(ValueError, match="TRADEGUARD_CONTROL_KEY_FILE.*"
                                         "TRADEGUARD_TRUST_UNSIGNED_CONTROLS"):
        GatewayClient(Settings.from_env(env={}), mode="fail_closed")


def test_trusting_unsigned_controls_is_an_explicit_named_setting(tmp_path):
    trusting = Settings.from_env(env={"TRADEGUARD_TRUST_UNSIGNED_CONTROLS": "1"})
    assert trusting.trust_unsigned_controls is True
    GatewayClient(trusting, mode="fail_closed")  # constructs: it was told
    assert Settings.from_env(env={"TRADEGUARD_TRUST_UNSIGNED_CONTROLS": "0"}
                             ).trust_unsigned_controls is False
    with pytest.raises(SettingsError, match="TRADEGUARD_TRUST_UNSIGNED_CONTROLS='maybe'"):
        Settings.from_env(env={"TRADEGUARD_TRUST_UNSIGNED_CONTROLS": "maybe"})
    key = tmp_path / "control.key"
    key.write_text("k" * 32 + "\n")
    GatewayClient(Settings.from_env(env={"TRADEGUARD_CONTROL_KEY_FILE": str(key)}),
                  mode="fail_open")  # a keyed gateway needs no trust
