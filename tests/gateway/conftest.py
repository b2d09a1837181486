"""One warmed-up engine shared by the gateway tests that need it."""

from __future__ import annotations

import pytest

from gateway_helpers import isolated_settings, wait_for_engine
from tradeguard.broker.worker_process import WorkerProcess


@pytest.fixture(scope="package")
def engine(broker, tmp_path_factory):
    """A worker on its own topics, for every test here that needs the engine up."""
    tmp = tmp_path_factory.mktemp("gateway-engine")
    settings = isolated_settings(broker, tmp, "gw")
    worker = WorkerProcess(settings, tmp / "worker.log").start()
    try:
        wait_for_engine(settings, worker)
        yield settings, worker
    finally:
        worker.stop()
