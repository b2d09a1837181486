from tradeguard.core.board import ControlBoard
import pytest

pytestmark = pytest.mark.quick  # pure and fast: `python -m pytest -m quick`


def halt(ticker, expires_at, ts=0):
    return {"ticker": ticker, "action": "halt_buys", "reason": "r", "evidence": None,
            "expires_at": expires_at, "ts": ts}


def test_latest_record_per_ticker_wins_and_release_clears():
    board = ControlBoard()
    board.apply_ticker(halt("A", 100))
    board.apply_ticker(halt("A", 500))
    assert board.ticker_halt("A", 200)["expires_at"] == 500
    board.apply_ticker({"ticker": "A", "action": "release", "reason": "r", "evidence": None,
                        "expires_at": None, "ts": 1})
    assert board.ticker_halt("A", 200) is None and board.active_halts(200) == []


def test_expiry_is_judged_at_read_time_and_reported_for_release():
    board = ControlBoard()
    board.apply_ticker(halt("A", 100))
    board.apply_ticker(halt("B", None))  # no expiry: until released
    assert [h["ticker"] for h in board.active_halts(99)] == ["A", "B"]
    assert [h["ticker"] for h in board.active_halts(100)] == ["B"]
    assert [h["ticker"] for h in board.expired_halts(100)] == ["A"]


def test_account_controls():
    board = ControlBoard()
    board.apply_account({"account_id": "x", "action": "step_up", "reason": "r", "ts": 1})
    board.apply_account({"account_id": "x", "action": "freeze", "reason": "r", "ts": 2})
    assert board.account_control("x")["action"] == "freeze"
    board.apply_account({"account_id": "x", "action": "release", "reason": "r", "ts": 3})
    assert board.account_control("x") is None and board.account_controls() == []
