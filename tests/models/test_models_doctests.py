"""The examples in the models' docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

import tradeguard.models

pytestmark = pytest.mark.quick  # pure and fast: `python -m pytest -m quick`

# The modules whose docstrings carry examples (base and hst_numba have none).
MODULES = ["tradeguard.models." + m for m in ("anomaly", "classifier", "squash")]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0, result


def test_public_api_is_declared():
    assert all(hasattr(tradeguard.models, name) for name in tradeguard.models.__all__)
    assert {"OrderScorer", "AccountAnomaly", "FraudClassifier"} <= set(tradeguard.models.__all__)
