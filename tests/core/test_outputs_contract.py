"""Every record the core produces, encoded as the worker encodes it, validates against the JSON
Schema file gateways read (streams/jsonschema/): decisions, flow, controls, profiles."""

import itertools
import json
import time
from pathlib import Path

import jsonschema
import orjson

from streams.codec import encode_value
from streams.wire import encode_decisions, encode_flows
from tradeguard.core import InProcessEngine, typed

SCHEMAS = Path(__file__).resolve().parents[2] / "streams" / "jsonschema"


def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads((SCHEMAS / f"{name}.schema.json").read_text()))


def test_every_output_record_validates_against_its_schema(short_session):
    engine = InProcessEngine()
    checks = {"decision": _validator("decision"), "ticker_flow": _validator("ticker_flow"),
              "account_control": _validator("account_control"),
              "ticker_control": _validator("ticker_control"),
              "ticker_profile": _validator("ticker_profile")}
    seen = dict.fromkeys(checks, 0)
    now = int(time.time() * 1000)
    records = [(n, typed(n, r)) for n, r in short_session.records]
    for out in engine.run(records, itertools.repeat(500)):
        encoded = {"decision": encode_decisions(out.decisions, now),
                   "ticker_flow": encode_flows(out.flows),
                   "account_control": [encode_value(r) for r in out.account_controls],
                   "ticker_control": [encode_value(r) for r in out.ticker_controls],
                   "ticker_profile": [encode_value(r) for r in out.profiles]}
        for name, values in encoded.items():
            for value in values:
                checks[name].validate(orjson.loads(value))
                seen[name] += 1
    # Each kind was produced at all, so the checks above checked something.
    assert all(seen.values()), seen
