"""Scorecard key figures at seeds nobody tuned on, decided in process: python -m benchmarks.scorecard_seeds SCENARIO..."""
import dataclasses, json, sys
sys.path.insert(0, "tests/scorecard")
from test_key_figures import in_process_records
from tradeguard.scorecard.engine import engine_outcome
from tradeguard.scorecard.outcome import session_orders
from tradeguard.scorecard.score import score
from tradeguard.simulator import generate, load_scenario
for path in sys.argv[1:]:
    base = load_scenario(path)
    for seed in (101, 202):
        sc = dataclasses.replace(base, seed=seed)
        s = generate(sc)
        d, t, a = in_process_records(s)
        r = score(session_orders(s.records, s.open_ms), s.truth, engine_outcome(d, t, a))
        o = r["orders"]; tk = r["tickers"]
        halted = {t: v.get("halt_ts") is not None for t, v in tk["targeted"].items()}
        print(f"| {path} | {seed} | {o['fraud_yen_stopped_share']:.1%} | {o['legit_held_per_10k']} / {o['legit_blocked_per_10k']} | {sum(halted.values())}/{len(halted)} | {json.dumps({k: v for k, v in tk.items() if k != 'targeted'}, default=str)[:120]} |", flush=True)
