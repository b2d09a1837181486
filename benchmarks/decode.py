"""Typed decoding measured: msgspec (validates as it parses) against orjson + our validator.

    python -m benchmarks.decode

Both decode the same valid orders (the benchmark workload) and the same mix of bad ones; the
figures are µs per record, best of five runs. ``streams/wire.py`` is the msgspec path the
worker uses; ``streams/schema.py`` ``RecordSchema.decode`` is the orjson path it replaced. Errors
are checked to name the same field both ways.
"""

from __future__ import annotations

import time

import orjson

from benchmarks.workload import Workload, order_id
from streams.records import ORDER
from streams.schema import RecordError
from streams.wire import BatchDecoder

__all__ = ["run_decode"]

BAD = [b"{", b"[1]", b'{"order_id": "x"}', orjson.dumps({"qty": True}), b"\xff"]


def _best(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def run_decode(n: int = 20_000, log=print) -> dict:
    w = Workload.build(accounts=2_000, orders=n)
    now = int(time.time() * 1000)
    values = [orjson.dumps({**o, "order_id": order_id("d", i), "ts": now}) for i, o in
              enumerate(w.orders[:n])]
    decoder = BatchDecoder(ORDER)

    def with_msgspec():
        decoder.decode_many(values)

    def with_orjson():
        for v in values:
            ORDER.decode(v)

    out = {"records": len(values),
           "msgspec_us_per_record": round(_best(with_msgspec) / len(values) * 1e6, 3),
           "orjson_validator_us_per_record": round(_best(with_orjson) / len(values) * 1e6, 3)}
    same_fields = 0
    for raw in BAD:
        _, bad = decoder.decode_many([raw])
        try:
            ORDER.decode(raw)
        except RecordError as exc:
            same_fields += bad[0][1].field == exc.field
    out["bad_records_named_alike"] = f"{same_fields}/{len(BAD)}"
    out["speedup"] = round(out["orjson_validator_us_per_record"] / out["msgspec_us_per_record"], 2)
    log(f"  decode: msgspec {out['msgspec_us_per_record']} µs/record, orjson + validator "
        f"{out['orjson_validator_us_per_record']} µs/record ({out['speedup']}x); bad records "
        f"naming the same field: {out['bad_records_named_alike']}")
    return out


if __name__ == "__main__":
    run_decode()
