"""Every name a module exports in ``__all__`` exists: ``from module import *`` and the docs'
API lists never meet a name that is not there (``features/reference.py`` listed ``observe``,
which no longer exists, for months)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import agents
import streams
import tradeguard

pytestmark = pytest.mark.quick


def _modules():
    for package in (tradeguard, streams, agents):
        yield package.__name__
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            yield info.name


@pytest.mark.parametrize("name", sorted(_modules()))
def test_every_name_in_all_exists(name):
    module = importlib.import_module(name)
    missing = [n for n in getattr(module, "__all__", ()) if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"
