"""The account core's cheap notional check equals numpy's nan_to_num bit for bit."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tradeguard.core.accounts import _finite_notional


@given(arrays(np.float64, st.integers(0, 12),
              elements=st.floats(allow_nan=True, allow_infinity=True, width=64)))
def test_finite_notional_is_nan_to_num_with_nan_and_posinf_zeroed(x):
    expected = np.nan_to_num(x, nan=0.0, posinf=0.0)
    got = _finite_notional(x.copy())
    assert got.tobytes() == expected.tobytes()  # -0.0 and the float64 minimum included
