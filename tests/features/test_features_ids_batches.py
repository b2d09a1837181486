"""Dense ids, stable hashes, array growth and batch validation."""

import subprocess
import sys

import numpy as np
import pytest

from tradeguard.features import DenseIds, OrderBatch, TradeBatch, stable_hash64
from tradeguard.features.ids import grown

pytestmark = pytest.mark.quick  # pure and fast: `python -m pytest -m quick`


def test_stable_hash_is_the_same_in_another_process():
    here = int(stable_hash64("203.0.113.7"))
    there = subprocess.run([sys.executable, "-c", "from tradeguard.features import stable_hash64; "
                            "print(int(stable_hash64('203.0.113.7')))"], capture_output=True, text=True,
                           check=True).stdout.strip()
    assert here == int(there) != 0
    assert stable_hash64(None) == 0 and stable_hash64("") == 0
    assert stable_hash64("a").dtype == np.uint64


def test_dense_ids_are_dense_and_survive_a_snapshot():
    ids = DenseIds()
    assert [ids.get_or_add(k) for k in "abcab"] == [0, 1, 2, 0, 1]
    again = DenseIds.from_bytes(ids.to_bytes())
    assert again.keys() == ["a", "b", "c"] and again.get("c") == 2 and again.get("z") == -1
    assert again.get_or_add("z") == 3 and len(again) == 4


def test_growth_doubles_and_keeps_rows():
    a = np.arange(3.0)
    b = grown(a, 7, np.nan)
    assert b.shape == (12,) and b[:3].tolist() == [0, 1, 2] and np.isnan(b[3:]).all()
    assert grown(a, 2, 0.0) is a


def test_batches_convert_dtypes_and_name_bad_columns():
    b = TradeBatch.from_columns(ticker=[1], price=[2], qty=[3], ts_ms=[4])
    assert (b.price.dtype, b.ts_ms.dtype, len(b)) == (np.float64, np.int64, 1)
    with pytest.raises(ValueError, match=r"TradeBatch.qty: has 2 values but ticker has 1"):
        TradeBatch.from_columns(ticker=[1], price=[2], qty=[3, 4], ts_ms=[4])
    with pytest.raises(ValueError, match=r"missing columns \['ts_ms'\], unknown columns \['when'\]"):
        TradeBatch.from_columns(ticker=[1], price=[2], qty=[3], when=[4])
    with pytest.raises(ValueError, match=r"OrderBatch.session: cannot convert to uint64"):
        OrderBatch.from_columns(**{**{f: [0] for f in OrderBatch.__dataclass_fields__}, "session": ["abc"]})
