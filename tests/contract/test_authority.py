"""Authority, not just signatures (issue 21), without a broker.

Control records are applied in ``seq`` order, so a captured genuine record
re-sent at any later point changes nothing; a label changes an account only
when the edge found it signed and it is newer than the account's last control;
the audit trail's chains show a gap, an insertion, an alteration and a replay.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.signing import Attested, ControlKeys, attest, attest_answers, sign
from tradeguard.console.audit import AuditChain, verify
from tradeguard.core import PartitionCore, Shared
from tradeguard.core.board import APPLIED, DUPLICATE, REPLAYED, UNSEQUENCED, ControlBoard
from tradeguard.policy.config import PolicyConfig

KEYS = ControlKeys.development()
T0 = 1_760_000_000_000
ACTIONS = {"ticker": ("halt_buys", "release"), "account": ("step_up", "freeze", "release")}


def _issue(board: ControlBoard, kind: str, target: str, action: str, ts: int) -> dict:
    """A control as the engine's core issues it: the board gives it its seq."""
    if kind == "ticker":
        record = {"ticker": target, "action": action, "reason": "r", "evidence": None,
                  "expires_at": None if action == "release" else ts + 600_000,
                  "source": "engine", "ts": ts}
        board.apply_ticker(record)
    else:
        record = {"account_id": target, "action": action, "reason": "r", "evidence": None,
                  "source": "engine", "ts": ts}
        board.apply_account(record)
    return copy.deepcopy(record)


def _state(board: ControlBoard) -> bytes:
    return orjson.dumps(sorted((r.get("ticker", ""), r.get("account_id", ""), r["seq"],
                                r["action"]) for r in board.last_records("ticker")
                               + board.last_records("account"))
                        + sorted(repr(sorted(r.items())) for r in
                                 board.ticker_controls() + board.account_controls()))


def _accept(board: ControlBoard, record: dict) -> str:
    return (board.accept_ticker if "ticker" in record else board.accept_account)(
        copy.deepcopy(record))


ops = st.lists(st.tuples(st.sampled_from(["ticker", "account"]), st.sampled_from(["A", "B"]),
                         st.integers(0, 2)), min_size=1, max_size=25)


@settings(max_examples=300, deadline=None)
@given(ops, st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)), max_size=15))
def test_a_captured_record_replayed_at_any_later_point_changes_nothing(issued, replays):
    """Every record a writer issued goes out in order; any of them is re-sent (byte for
    byte) at any point after it first went out. The reader's board does not change at a
    replay, and ends where the writer's is."""
    writer, reader = ControlBoard(), ControlBoard()
    records = []
    for i, (kind, target, a) in enumerate(issued):
        action = ACTIONS[kind][a % len(ACTIONS[kind])]
        records.append(_issue(writer, kind, target, action, T0 + i))
    inserts: dict[int, list[int]] = {}  # position after which -> indexes of records re-sent
    for which, where in replays:
        i = which % len(records)
        inserts.setdefault(i + where % (len(records) - i), []).append(i)
    for position, record in enumerate(records):
        assert _accept(reader, record) == APPLIED
        for i in inserts.get(position, []):
            before = _state(reader)
            assert _accept(reader, records[i]) in (REPLAYED, DUPLICATE)
            assert _state(reader) == before
    assert _state(reader) == _state(writer)


def test_two_writers_at_one_seq_settle_alike_whatever_arrives_first():
    """The ticker's worker and a console issue seq 2 at once: every board keeps the same."""
    board = ControlBoard()
    halt = _issue(board, "ticker", "T", "halt_buys", T0)
    engine = {**halt, "action": "release", "expires_at": None, "ts": T0 + 5, "seq": 2}
    console = {**engine, "source": "console:sue", "ts": T0 + 6}
    finals = set()
    for first, second in ((engine, console), (console, engine)):
        b = ControlBoard()
        assert _accept(b, halt) == APPLIED and _accept(b, first) == APPLIED
        _accept(b, second)
        finals.add(b.last_record("ticker", "T")["source"])
    assert len(finals) == 1


def test_a_record_from_the_wire_without_seq_is_refused_not_issued():
    board = ControlBoard()
    record = {"account_id": "a", "action": "release", "reason": "r", "ts": T0}
    assert board.accept_account(record) == UNSEQUENCED and "seq" not in record
    assert board.last_record("account", "a") is None
    assert board.refused[("account", UNSEQUENCED)] == 1


# --- labels: only signed, only newer than the control they judge ----------------------------------

def _frozen_core() -> PartitionCore:
    core = PartitionCore(Shared(), "JP", 250)
    core.shared.board.apply_account({"account_id": "acct-1", "action": "freeze",
                                     "reason": "r", "evidence": {}, "source": "engine",
                                     "ts": T0})
    return core


def _label(verdict: str, ts: int) -> SimpleNamespace:
    return SimpleNamespace(account_id="acct-1", order_id=None, label=verdict,
                           source="console:sue", ts=ts)


def test_an_unsigned_label_changes_no_account_and_a_signed_one_does():
    core = _frozen_core()
    board = core.shared.board
    assert core.accounts.learn_feedback([Attested(_label("legit", T0 + 1), False)], board) == []
    assert board.account_control("acct-1")["action"] == "freeze"
    (release,) = core.accounts.learn_feedback([Attested(_label("legit", T0 + 2), True)], board)
    assert (release["action"], release["seq"]) == ("release", 2)
    assert board.account_control("acct-1") is None
    # The same signed verdict re-sent after a newer freeze judges nothing.
    board.apply_account({"account_id": "acct-1", "action": "freeze", "reason": "again",
                         "evidence": {}, "source": "engine", "ts": T0 + 3})
    assert core.accounts.learn_feedback([Attested(_label("legit", T0 + 2), True)], board) == []
    assert board.account_control("acct-1")["action"] == "freeze"


def test_the_edge_marks_only_validly_signed_labels_authoritative():
    label = {"account_id": "a", "order_id": None, "label": "legit", "source": "console:sue",
             "ts": T0}
    values = [orjson.dumps(label), orjson.dumps(sign(label, KEYS)),
              orjson.dumps(sign(label, ControlKeys((b"x" * 32,)))),
              orjson.dumps({**sign(label, KEYS), "label": "fraud"}), b"not json"]
    marked = attest([SimpleNamespace(**label)] * len(values), values, KEYS)
    assert [m.authoritative for m in marked] == [False, True, False, False, False]
    assert marked[1].label == "legit" and marked[1].ts == T0  # reads as the record


def test_an_unsigned_answer_to_a_step_up_neither_releases_nor_freezes():
    """auth.events answers change an account too: only the identity system's signed ones count."""
    for verdict in ("mfa_challenge_passed", "mfa_challenge_failed"):
        core = PartitionCore(Shared(), "JP", 250)
        board = core.shared.board
        board.apply_account({"account_id": "acct-1", "action": "step_up", "reason": "r",
                             "evidence": {}, "source": "engine", "ts": T0})
        core.accounts._challenges["acct-1"] = (T0, T0 + 600_000)  # the core raised it
        answer = SimpleNamespace(account_id="acct-1", event=verdict, session_id="s",
                                 device_id="d", ts=T0 + 1)
        cfg = PolicyConfig.defaults()
        assert core.accounts.answer_challenge(Attested(answer, False), board, cfg) == []
        assert board.account_control("acct-1")["action"] == "step_up"
        (done,) = core.accounts.answer_challenge(Attested(answer, True), board, cfg)
        assert done["action"] == ("release" if verdict.endswith("passed") else "freeze")
    raw = {"account_id": "a", "event": "mfa_challenge_passed", "ts": T0}
    login = {**raw, "event": "login_success"}
    out = attest_answers([SimpleNamespace(**login), SimpleNamespace(**raw),
                          SimpleNamespace(**raw)],
                         [orjson.dumps(login), orjson.dumps(raw), orjson.dumps(sign(raw, KEYS))],
                         KEYS)
    assert not isinstance(out[0], Attested)  # logins pass untouched (the hot path)
    assert [o.authoritative for o in out[1:]] == [False, True]


# --- the audit trail -----------------------------------------------------------------------------

def _chain(n: int, writer: str = "console-a") -> list[dict]:
    chain = AuditChain(writer, KEYS)
    out = []
    for i in range(n):
        out.append(chain.seal({"audit_id": f"{writer}-{i}", "action": "login", "ts": T0 + i}))
        chain.advance(out[-1])
    return out


def test_audit_verify_finds_a_gap_an_insertion_an_alteration_and_a_replay():
    a, b = _chain(5), _chain(3, "console-b")
    assert verify(a + b, KEYS).ok and verify(list(reversed(a + b)), KEYS).writers == 2

    def kinds(records):
        return sorted(p.kind for p in verify(records, KEYS).problems)

    assert kinds(a[:2] + a[3:]) == ["gap"]  # one deleted
    forged = {**a[2], "audit_id": "planted"}  # altered under its signature
    assert kinds(a[:2] + [forged] + a[3:]) == ["forged", "gap"]
    unsigned = {k: v for k, v in a[2].items() if k != "signature"}
    assert kinds(a + [unsigned]) == ["forged"]  # a plain client's record
    assert kinds(a + [a[1]]) == ["duplicate"]  # a genuine one re-sent
    # A validly signed record put in #3's place: it does not follow #2, and #4 does not
    # follow it.
    other = AuditChain("console-a", KEYS)
    other.seq, other.prev_hash = 2, "0" * 64
    assert kinds(a[:2] + [other.seal({"audit_id": "x", "action": "login"})] + a[3:]) == [
        "insertion", "insertion"]
    assert kinds(a[1:]) == ["gap"] and verify(a[1:], KEYS, partial_start=True).ok


def test_the_simulator_signs_what_the_identity_and_case_systems_would():
    """`tradeguard simulate` stands in for keyed tools: answers and labels signed, logins not."""
    from tradeguard.simulator.replay import _SigningProducer

    sent = []
    producer = _SigningProducer(SimpleNamespace(send=lambda n, r: sent.append((n, r)),
                                                flush=lambda: None), KEYS)
    producer.send("auth.events", {"account_id": "a", "event": "login_success", "ts": T0})
    producer.send("auth.events", {"account_id": "a", "event": "mfa_challenge_passed", "ts": T0})
    producer.send("feedback", {"account_id": "a", "order_id": None, "label": "fraud",
                               "source": "sim", "ts": T0})
    assert ["signature" in r for _, r in sent] == [False, True, True]
