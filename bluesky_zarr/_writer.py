"""What every writer shares: a ``cb(name, doc)`` callable that never makes the RunEngine wait on disk.

The RunEngine's thread does the little that must fail before anything is written (the store's
name, whether it exists), hands each document to a bounded buffer and returns. One writer thread
routes the documents to the run they belong to, fills external data, and writes. When the buffer
is full, the RunEngine blocks until there is room: documents are never dropped. An error in the
writer thread is raised in the RunEngine's thread at the next document, and at ``stop`` the
RunEngine waits until the run is on disk, so a run that ends without an error is complete.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import event_model
import numpy as np

from ._errors import BlueskyZarrError, StoreExistsError, WriteError
from ._naming import render_file_prefix, store_path

__all__ = ["RunSink", "RunWriter"]


class RunSink(Protocol):
    """The part of a writer that writes one run in one format."""

    def __call__(self, name: str, doc: Any) -> Any: ...

    def flush(self) -> None:
        """Make everything received so far visible to readers."""

    def finish(self, status: str) -> None:
        """Write what is left and record ``status``; called at ``stop`` or when the writer closes."""

    def note_error(self, err: BaseException) -> None:
        """Remember that writing this run failed, so that its status says so when it finishes."""


class _Buffer:
    """A FIFO bounded by the bytes of the readings it holds; ``put`` blocks when it is full."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: deque[tuple[str, Any, int]] = deque()
        self._bytes = 0
        self._unfinished = 0
        self._cond = threading.Condition()

    def put(self, name: str, doc: Any, nbytes: int) -> None:
        with self._cond:
            while self._unfinished and self._bytes + nbytes > self.max_bytes:
                self._cond.wait()
            self._items.append((name, doc, nbytes))
            self._bytes += nbytes
            self._unfinished += 1
            self._cond.notify_all()

    def get(self, timeout: float) -> tuple[str, Any, int] | None:
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            return self._items.popleft() if self._items else None

    def done(self, nbytes: int) -> None:
        with self._cond:
            self._bytes -= nbytes
            self._unfinished -= 1
            self._cond.notify_all()

    def join(self) -> None:
        with self._cond:
            while self._unfinished:
                self._cond.wait()


def _nbytes(doc: Any) -> int:
    """About how much memory a document holds (its array readings), for the buffer's bound."""
    total = 1024
    data = doc.get("data") if isinstance(doc, Mapping) else None
    if isinstance(data, Mapping):
        for value in data.values():
            if isinstance(value, np.ndarray):
                total += value.nbytes
            elif isinstance(value, list):
                total += sum(v.nbytes for v in value if isinstance(v, np.ndarray))
    return total


_FLUSH, _CLOSE = "__flush__", "__close__"


class _GuardedRun:
    """One run's sink inside the RunRouter; its errors are recorded, never raised into the router."""

    def __init__(self, writer: RunWriter, uid: str, sink: RunSink) -> None:
        self.writer = writer
        self.uid = uid
        self.sink = sink

    def __call__(self, name: str, doc: Any) -> None:
        self.guard(name, lambda: self.sink(name, doc))
        if name == "stop":
            self.writer._runs.pop(self.uid, None)

    def guard(self, name: str, action: Callable[[], object]) -> None:
        try:
            action()
        except Exception as err:
            self.writer._record(err, self.uid, name)
            with contextlib.suppress(Exception):
                self.sink.note_error(err)


class RunWriter:
    """Base of the writers: one output per run, written in a thread of its own.

    Subclasses set ``suffix`` and implement :meth:`_open_run`.
    """

    suffix = ""
    artifact_label = ""

    def __init__(
        self,
        directory: str | Path,
        *,
        file_prefix: str = "{start[uid]}",
        overwrite: bool = False,
        handler_registry: Mapping[str, Callable[..., Any]] | None = None,
        buffer_bytes: int = 512 * 1024**2,
        flush_interval: float = 1.0,
    ) -> None:
        if buffer_bytes <= 0 or flush_interval <= 0:
            raise ValueError("buffer_bytes and flush_interval must be positive")
        self.directory = Path(directory)
        self.file_prefix = file_prefix
        self.overwrite = overwrite
        self.handler_registry = dict(handler_registry) if handler_registry is not None else None
        self.flush_interval = flush_interval
        self._buffer = _Buffer(buffer_bytes)
        self._errors: list[BaseException] = []
        self._errors_lock = threading.Lock()
        self._closed = False
        self._claimed: dict[str, Path] = {}
        """run uid -> output path, decided in the caller's thread at ``start``"""
        self._refused: set[str] = set()
        self._refused_descriptors: set[str] = set()
        self._runs: dict[str, _GuardedRun] = {}
        """runs open in the writer thread, by uid"""
        self.artifacts: dict[str, list[Path]] = {self.artifact_label: []}
        self._thread = threading.Thread(target=self._work, name=f"{type(self).__name__}", daemon=True)
        self._thread.start()
        atexit.register(_close_at_exit, weakref.ref(self))

    # --- to implement -----------------------------------------------------------------------------

    def _open_run(self, path: Path, start: Mapping[str, Any]) -> RunSink:
        raise NotImplementedError

    # --- the caller's thread ----------------------------------------------------------------------

    def __call__(self, name: str, doc: Any) -> tuple[str, Any]:
        """Take one document; raises an error that the writer thread met since the last call."""
        if self._closed:
            raise BlueskyZarrError(f"{self!r} is closed; create a new writer for more runs")
        self._raise_pending()
        if name == "start":
            try:
                self._claim(doc)
            except BlueskyZarrError:
                self._refused.add(str(doc.get("uid")))
                raise
        elif self._refused and self._is_refused(name, doc):
            return name, doc
        self._buffer.put(name, doc, _nbytes(doc))
        if name == "stop":
            self._buffer.join()
            self._raise_pending()
        return name, doc

    def _is_refused(self, name: str, doc: Any) -> bool:
        if name == "descriptor" and doc.get("run_start") in self._refused:
            self._refused_descriptors.add(doc["uid"])
            return True
        if name in {"event", "event_page"}:
            return doc.get("descriptor") in self._refused_descriptors
        return doc.get("run_start") in self._refused

    def _claim(self, start: Mapping[str, Any]) -> None:
        uid = str(start.get("uid"))
        prefix = render_file_prefix(self.file_prefix, start)
        path = store_path(self.directory, prefix, self.suffix)
        taken = path in self._claimed.values()
        if taken or (not self.overwrite and path.exists()):
            how = " (written by this writer for another run)" if taken else ""
            raise StoreExistsError(
                f"run {uid}: {path} exists already{how}; "
                "nothing was written. Choose a file_prefix that differs between runs (the default "
                "'{start[uid]}' does), or pass overwrite=True to replace it"
            )
        self._claimed[uid] = path
        self.artifacts[self.artifact_label].append(path)

    def flush(self) -> None:
        """Wait until every document taken so far is written and visible; raise any write error."""
        if not self._closed:
            self._buffer.put(_FLUSH, None, 0)
            self._buffer.join()
        self._raise_pending()

    def close(self) -> None:
        """Write everything, finish runs that got no stop document, and end the writer thread.

        Runs that got no stop document keep what they have, with status ``"incomplete"``.
        Calling ``close`` again does nothing.
        """
        if self._closed:
            return
        self._buffer.put(_CLOSE, None, 0)
        self._thread.join()
        self._closed = True
        self._raise_pending()

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:  # do not hide the error in flight
            with contextlib.suppress(BlueskyZarrError):
                self.close()

    def _raise_pending(self) -> None:
        with self._errors_lock:
            errors, self._errors = self._errors, []
        if errors:
            first = errors[0]
            if len(errors) > 1:
                first.add_note(f"{len(errors) - 1} more error(s) followed; the first is shown")
            raise first

    # --- the writer thread ------------------------------------------------------------------------

    def _work(self) -> None:
        router = event_model.RunRouter([self._factory], handler_registry=self.handler_registry)
        last_flush = time.monotonic()
        while True:
            item = self._buffer.get(self.flush_interval)
            if item is None:
                self._flush_runs()
                last_flush = time.monotonic()
                continue
            name, doc, nbytes = item
            try:
                if name == _CLOSE:
                    self._flush_runs()
                    for run in list(self._runs.values()):
                        run.guard("close", functools.partial(run.sink.finish, "incomplete"))
                    self._runs.clear()
                    return
                if name == _FLUSH:
                    self._flush_runs()
                    last_flush = time.monotonic()
                    continue
                try:
                    router(name, doc)
                except Exception as err:  # the router itself: a document of no known run, a filler error
                    self._record(err, str(doc.get("run_start", doc.get("uid", "?"))), name)
            finally:
                self._buffer.done(nbytes)
            if time.monotonic() - last_flush >= self.flush_interval:
                self._flush_runs()
                last_flush = time.monotonic()

    def _factory(self, name: str, start: Any) -> tuple[list[Callable[[str, Any], None]], list[Any]]:
        """RunRouter factory: open the run's sink at the path claimed for it at ``start``."""
        uid = str(start["uid"])
        try:
            sink = self._open_run(self._claimed[uid], start)
        except Exception as err:
            self._record(err, uid, name)
            return [], []
        run = self._runs[uid] = _GuardedRun(self, uid, sink)
        return [run], []

    def _record(self, err: BaseException, uid: str, name: str) -> None:
        if not isinstance(err, BlueskyZarrError):
            wrapped: BaseException
            if isinstance(err, OSError):
                wrapped = WriteError(err.errno, f"run {uid}: writing the {name} document failed: {err}")
            else:
                wrapped = BlueskyZarrError(f"run {uid}: writing the {name} document failed: {err!r}")
            wrapped.__cause__ = err
            err = wrapped
        elif uid not in str(err):
            err.add_note(f"while writing the {name} document of run {uid}")
        with self._errors_lock:
            self._errors.append(err)

    def _flush_runs(self) -> None:
        for run in list(self._runs.values()):
            run.guard("flush", run.sink.flush)


def _close_at_exit(ref: weakref.ref[RunWriter]) -> None:
    writer = ref()
    if writer is not None:
        with contextlib.suppress(BlueskyZarrError):
            writer.close()


def feed(writer: RunWriter, documents: Iterable[tuple[str, Any]]) -> None:
    """Give every ``(name, doc)`` pair to ``writer`` in order."""
    for name, doc in documents:
        writer(name, doc)
