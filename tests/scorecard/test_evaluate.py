"""``evaluate`` end to end: the short scenario through a real worker on the embedded broker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tradeguard.scorecard.run import evaluate

SHORT = Path(__file__).resolve().parents[2] / "scenarios" / "short.toml"


@pytest.mark.broker
@pytest.mark.timeout(150)
def test_evaluate_writes_the_report_on_the_short_scenario(tmp_path, capsys):
    evaluate(SHORT, tmp_path / "out")
    out = tmp_path / "out"
    report = json.loads((out / "report.json").read_text())

    orders = report["orders"]
    for key in ("fraudulent", "legitimate", "fraud_stopped", "fraud_stopped_share",
                "fraud_yen_attempted", "fraud_yen_stopped", "fraud_yen_stopped_share",
                "legit_held_per_10k", "legit_blocked_per_10k"):
        assert key in orders
    assert orders["fraudulent"] > 0 and orders["undecided"] == 0
    (ticker,) = report["tickers"]["targeted"].values()
    assert {"seconds_to_halt", "fraud_buys_to_halt"} <= set(ticker)
    assert "false_halts" in report["tickers"]
    for key in ("stopped_before_first_fraud_buy", "stopped_before_first_fraud_buy_share",
                "false_account_actions"):
        assert key in report["accounts"]
    assert report["latency"]["orders"] == report["scenario"]["session_orders"]
    assert report["latency"]["p50"] is not None and report["latency"]["p99"] is not None
    assert set(report["baselines"]) == {"no_engine", "static_rules_2025", "river_anomaly"}
    for baseline in report["baselines"].values():
        assert {"orders", "tickers", "accounts"} <= set(baseline)

    text = (out / "report.md").read_text()
    assert "## Orders" in text and "static_rules_2025" in text
    # matplotlib is in the test extra: plots are drawn, never skipped.
    assert "plots_skipped" not in report and len(report["plots"]) == 3, report.get("plots_skipped")
    for name in report["plots"]:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    # Through the broker, paced at 20x: looser than the in-process bounds in
    # test_key_figures.py, but an engine that stops nothing fails here too.
    assert orders["fraud_yen_stopped_share"] >= 0.8, orders
    assert ticker["halt_ts"] is not None and ticker["fraud_buys_to_halt"] <= 5, ticker
    assert report["accounts"]["stopped_before_first_fraud_buy"] >= 3, report["accounts"]
    assert "decided" in capsys.readouterr().err  # the progress bar
