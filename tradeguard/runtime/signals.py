"""Stopping cleanly: SIGTERM and SIGINT unwind the stack, so every ``finally`` stops its children.

Python dies on SIGTERM without running ``finally`` blocks or context managers,
which is how ``kill PID``, systemd and Kubernetes ask a process to stop: a
``tradeguard broker`` or ``demo`` stopped that way used to leave its Tansu and
worker children running. Within :func:`stop_on_signals` SIGTERM behaves like
Ctrl-C (it raises :class:`Terminated`, a ``KeyboardInterrupt``), so the code
that already stops children on Ctrl-C stops them on SIGTERM too.

>>> import os
>>> with stop_on_signals():
...     try:
...         os.kill(os.getpid(), signal.SIGTERM)
...     except Terminated as exc:
...         print(exc.signum == signal.SIGTERM, exc.exit_status)
True 143

:func:`die_with_parent` is the second line: a child started with it as
``preexec_fn`` gets SIGTERM from the kernel when the process that started it
dies for any reason, SIGKILL included (Linux ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

__all__ = ["Terminated", "die_with_parent", "stop_on_signals"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """The process was asked to stop by ``signum``; raised once, where the main thread is."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


@contextmanager
def stop_on_signals(on_signal: Callable[[int], None] | None = None) -> Iterator[bool]:
    """Within the block, SIGTERM, SIGINT and SIGHUP raise :class:`Terminated` in the main thread.

    The first signal raises; later ones are reported to ``on_signal`` (if given)
    and otherwise ignored, so a second Ctrl-C cannot cut the clean-up short.
    Every clean-up step is bounded by its own timeout (SIGKILL after it), so a
    stop never hangs. The previous handlers come back when the block ends.
    Yields False, changing nothing, outside the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    raised = False

    def handler(signum: int, _frame) -> None:
        nonlocal raised
        if on_signal is not None:
            on_signal(signum)
        if not raised:
            raised = True
            raise Terminated(signum)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield True
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


_PR_SET_PDEATHSIG = 1
_prctl = None
if sys.platform.startswith("linux"):  # looked up here: a forked child must not load libraries
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    _prctl = _libc.prctl
    _prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                       ctypes.c_ulong]


def die_with_parent(parent_pid: int | None = None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel send SIGTERM to the child when its parent dies.

    The kernel watches the *thread* that started the child: start children from
    the main thread (every caller here does), or one that outlives them. Returns
    None where the platform has no such mechanism (then only :func:`stop_on_signals`
    protects against orphans).
    """
    if _prctl is None:
        return None
    parent = os.getpid() if parent_pid is None else parent_pid

    def preexec() -> None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died between fork and prctl
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec
