"""What the parts of one worker share, as named, typed collaborators.

The engine service, the replicated control reader and the web views are given
this one object; each field is one service, not a bag of loose state.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import faust

from tradeguard.core import Shared
from tradeguard.policy.config import PolicyFile
from tradeguard.runtime.metrics import EngineMetrics
from tradeguard.runtime.settings import Settings

__all__ = ["WorkerContext"]


@dataclass
class WorkerContext:
    settings: Settings
    app: faust.App
    policy: PolicyFile
    #: control board, ticker profiles and login index, replicated to every worker
    shared: Shared = field(default_factory=Shared)
    metrics: EngineMetrics = field(default_factory=EngineMetrics)
    #: set once the replicated control topics have been read to their end
    board_ready: asyncio.Event = field(default_factory=asyncio.Event)
    engine: object | None = None  # agents.engine.EngineService, once built
