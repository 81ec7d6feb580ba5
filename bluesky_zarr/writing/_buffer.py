"""A FIFO of documents bounded by the bytes of the readings it holds: the RunEngine blocks, never drops."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from typing import Any

__all__ = ["DocumentBuffer", "document_nbytes"]


class DocumentBuffer:
    """A FIFO bounded by the bytes of the readings it holds; ``put`` blocks when it is full.

    The writer thread takes what is waiting in one go (:meth:`take`), so it pays for the lock
    once per batch, not once per document; each side notifies the other only when it waits.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: deque[tuple[str, Any, int]] = deque()
        self._bytes = 0
        self._unfinished = 0
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._taker_waits = False
        self._putters_wait = 0

    def put(self, name: str, doc: Any, nbytes: int) -> None:
        with self._lock:
            if self._unfinished and self._bytes + nbytes > self.max_bytes:
                self._putters_wait += 1
                try:
                    while self._unfinished and self._bytes + nbytes > self.max_bytes:
                        self._cond.wait()
                finally:
                    self._putters_wait -= 1
            self._items.append((name, doc, nbytes))
            self._bytes += nbytes
            self._unfinished += 1
            if self._taker_waits:  # once: the taker takes everything when it wakes
                self._taker_waits = False
                self._cond.notify()

    def take(self, timeout: float, limit: int) -> list[tuple[str, Any, int]]:
        """Up to ``limit`` waiting items, oldest first; waits up to ``timeout`` for the first."""
        with self._lock:
            if not self._items:
                self._taker_waits = True
                try:
                    self._cond.wait(timeout)
                finally:
                    self._taker_waits = False
            items = self._items
            if len(items) <= limit:
                taken = list(items)
                items.clear()
            else:
                taken = [items.popleft() for _ in range(limit)]
            return taken

    def done(self, nbytes: int, count: int) -> None:
        with self._lock:
            self._bytes -= nbytes
            self._unfinished -= count
            if self._putters_wait:
                self._cond.notify_all()

    def join(self) -> None:
        with self._lock:
            self._putters_wait += 1
            try:
                while self._unfinished:
                    self._cond.wait()
            finally:
                self._putters_wait -= 1


def document_nbytes(doc: Any) -> int:
    """About how much memory a document holds (its array readings), for the buffer's bound."""
    total = 1024
    data = doc.get("data") if isinstance(doc, Mapping) else None
    if isinstance(data, Mapping):
        for value in data.values():
            nbytes = getattr(value, "nbytes", None)
            if nbytes is not None:
                total += nbytes
            elif isinstance(value, list):
                total += sum(getattr(v, "nbytes", 0) for v in value)
    return total
