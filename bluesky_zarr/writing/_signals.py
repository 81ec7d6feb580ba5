"""SIGTERM finishes the runs a process's writers have open as ``incomplete`` before it ends.

SIGTERM is what ``kill``, systemd, a batch system and a container runtime send to ask a process to
stop. Python's default is to end at once, with no ``atexit``: every open run would say
``running`` for ever. The first writer made in the main thread puts a handler in front of the
one it finds (chained, never replacing it):

- the process's own (a Python function, e.g. one that logs and exits): the writers are finished
  in a thread of their own while that handler runs; the interpreter waits for it before it exits;
- the default: the writers are finished, then the process ends by the same SIGTERM, as it would
  have without us (its exit status says so); a second SIGTERM meanwhile ends it at once;
- ignored (``SIG_IGN``): left alone, as the process asked.

SIGINT is left to Python and the RunEngine: a Ctrl-C pauses a scan, and must not end its runs.
A SIGINT that ends the process ends it by ``KeyboardInterrupt``, after which ``atexit`` closes every
writer (the runs end ``incomplete``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._writer import Writer

__all__ = ["finish_on_sigterm"]

logger = logging.getLogger("bluesky_zarr")

_writers: weakref.WeakSet[Writer] = weakref.WeakSet()
_before: list[Any] = []
"""The SIGTERM handler found when ours was put in front of it (one item, once ours is in place)."""


def finish_on_sigterm(writer: Writer) -> None:
    """Finish ``writer``'s open runs as ``incomplete`` when the process gets SIGTERM."""
    _writers.add(writer)
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set handlers; a writer made elsewhere relies on one made there
    found = signal.getsignal(signal.SIGTERM)
    if found is _on_sigterm or found in (signal.SIG_IGN, None):  # None: set outside Python, leave it
        return
    _before[:] = [found]
    signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, frame: Any) -> None:
    before: Any = _before[0] if _before else signal.SIG_DFL
    writers = list(_writers)
    logger.warning("SIGTERM: finishing the open runs of %d writer(s) as incomplete", len(writers))
    then_end = not callable(before)
    if then_end:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    # not in this thread: the signal may have come while it held a lock the writers need
    threading.Thread(
        target=_finish, args=(writers, signum if then_end else None), name="bluesky-zarr SIGTERM"
    ).start()
    if not then_end:
        before(signum, frame)


def _finish(writers: list[Writer], signum: int | None) -> None:
    for writer in writers:
        try:
            writer.close()
        except Exception as err:  # logged: the runs are finished all the same, as far as they can be
            logger.error("SIGTERM: while finishing %r: %s", writer, err)
    if signum is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(os.getpid(), signum)  # the default action now: the process ends by SIGTERM
