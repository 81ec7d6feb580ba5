"""RunEngines for tests. Each RunEngine makes an event loop and runs it on a thread of its own;
left open, every one keeps its thread and three descriptors until the process ends (past a
thousand descriptors, ``select`` fails in code under test), so these close it when done."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from bluesky import RunEngine


@contextlib.contextmanager
def run_engine() -> Iterator[RunEngine]:
    """A fresh RunEngine, halted if a test left it running, and its event loop closed."""
    engine = RunEngine({}, call_returns_result=False)
    try:
        yield engine
    finally:
        if engine.state != "idle":
            engine.halt()
        loop = engine.loop
        loop.call_soon_threadsafe(loop.stop)
        engine._th.join(timeout=10)
        if not loop.is_running():
            loop.close()
