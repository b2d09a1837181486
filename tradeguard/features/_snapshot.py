"""Snapshot format shared by the feature state classes: one .npz, no pickle.

Params travel as JSON (so a snapshot is readable without this code), dense
ids as their key list, state arrays as themselves.
"""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np

from .ids import DenseIds

# 2: account baselines and cold-start flags; 3: idle accounts' cold tier; 4: the thin-buy
# baseline sums buys' shares of a ticker's day (habit_thin_x), not capped counts.
FORMAT_VERSION = 4


def pack(params, arrays: dict[str, np.ndarray], ids: DenseIds | None = None) -> bytes:
    """Serialise a params dataclass, named state arrays and optional ids."""
    header = {"version": FORMAT_VERSION, "params": dataclasses.asdict(params)}
    extra = {"__header__": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)}
    if ids is not None:
        extra["__ids__"] = np.frombuffer(ids.to_bytes(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **extra, **arrays)
    return buffer.getvalue()


def unpack(data: bytes, params_type):
    """The (params, arrays, ids) that `pack` wrote; ids is None if none were packed."""
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        contents = {name: npz[name] for name in npz.files}
    header = json.loads(contents.pop("__header__").tobytes().decode())
    if header.get("version") != FORMAT_VERSION:
        raise ValueError(f"snapshot version {header.get('version')!r}, expected {FORMAT_VERSION}")
    ids_bytes = contents.pop("__ids__", None)
    ids = DenseIds.from_bytes(ids_bytes.tobytes()) if ids_bytes is not None else None
    return params_type(**header["params"]), contents, ids
