"""Run one engine worker in the foreground (``tradeguard worker``)."""

from __future__ import annotations

import faust

from tradeguard.runtime.logs import logging_config
from tradeguard.runtime.settings import Settings

__all__ = ["run_worker"]


def run_worker(settings: Settings) -> int:
    """Start the Faust worker; returns when it stops (SIGTERM/SIGINT stop it gracefully)."""
    from agents.app import build_app

    app, _ = build_app(settings)
    worker = faust.Worker(app, loglevel=settings.log_level.upper(), quiet=True,
                          override_logging=True, logging_config=logging_config(settings))
    worker.execute_from_commandline()  # mode's Worker exits the process with its status
    return 0
