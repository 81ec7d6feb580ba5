"""What every writer shares: a ``cb(name, doc)`` callable that never makes the RunEngine wait on disk.

The RunEngine's thread does the little that must fail before anything is written (each output's
name, whether it exists), hands each document to a bounded buffer and returns. One writer thread
routes the documents to the run they belong to, fills external data, and fans each document out
to every format of the writer (Zarr, Parquet, Arrow IPC): one pass over the documents, however
many formats. When the buffer is full, the RunEngine blocks until there is room: documents are
never dropped. An error in the writer thread is raised in the RunEngine's thread at the next
document, and at ``stop`` the RunEngine waits until the run is on disk, so a run that ends
without an error is complete.

Events that wait in the buffer one after the other for the same descriptor are handed to the
formats as one event page: the cost of a scalar event is then a few list appends, not a trip
through every layer.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import event_model

from ._errors import BlueskyZarrError, ConfigurationError, DocumentError, StoreExistsError, WriteError
from ._naming import render_file_prefix
from ._selection import DataKeys, SelectedSink, Selection, normalize_data_keys

__all__ = ["Format", "RunSink", "Writer", "export", "feed", "resolve_formats"]


class RunSink(Protocol):
    """The part of a format that writes one run."""

    def __call__(self, name: str, doc: Any) -> Any: ...

    def flush(self) -> None:
        """Make everything received so far visible to readers."""

    def finish(self, status: str) -> None:
        """Write what is left and record ``status``; called at ``stop`` or when the writer closes."""

    def note_error(self, err: BaseException) -> None:
        """Remember that writing this run failed, so that its status says so when it finishes."""


@dataclass(frozen=True)
class Format:
    """Base of the output formats: what a writer writes for each run, and which data keys.

    Subclasses are small frozen dataclasses (:class:`~bluesky_zarr.Zarr`,
    :class:`~bluesky_zarr.Parquet`, :class:`~bluesky_zarr.ArrowIPC`); give one or more to
    :class:`~bluesky_zarr.Writer` or :func:`~bluesky_zarr.export`.

    Parameters
    ----------
    data_keys
        Which data keys this format writes: ``"all"``, ``"arrays"`` (readings with a non-empty
        shape), ``"scalars"`` (the rest), or a list of data key names. ``time``, ``seq_num`` and
        grid indices always come along.
    """

    label: ClassVar[str] = ""
    """The format's name in ``artifacts`` and in ``format=...``."""
    registry: ClassVar[dict[str, type[Format]]] = {}

    data_keys: DataKeys = "all"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.label:
            Format.registry[cls.label] = cls

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_keys", normalize_data_keys(self.data_keys, type(self).__name__))

    @property
    def selection(self) -> Selection:
        return self.data_keys  # type: ignore[return-value]  # checked in __post_init__

    def output_path(self, directory: Path, prefix: str) -> Path:
        """Where a run with this file prefix goes (a store, or a directory of per-stream files)."""
        raise NotImplementedError

    def existing_output(self, path: Path) -> Path | None:
        """An output of this format already at ``path`` (that a new run would replace), or ``None``."""
        return path if path.exists() else None

    def open(
        self, path: Path, start: Mapping[str, Any], *, overwrite: bool, artifacts: list[Path]
    ) -> RunSink:
        """The sink that writes one run at ``path``; appends the files it makes to ``artifacts``."""
        raise NotImplementedError


def resolve_formats(formats: Iterable[Format | str]) -> tuple[Format, ...]:
    """Format objects from objects or names (``"zarr"``, ``"parquet"``, ``"arrow"``)."""
    resolved: list[Format] = []
    for item in formats:
        if isinstance(item, Format):
            resolved.append(item)
        elif isinstance(item, str) and item.lower() in Format.registry:
            resolved.append(Format.registry[item.lower()]())
        else:
            names = ", ".join(repr(n) for n in sorted(Format.registry))
            raise ConfigurationError(
                f"unknown format {item!r}: give one of {names}, or a format object such as "
                "Parquet(compression='snappy')"
            )
    if not resolved:
        raise ConfigurationError("give at least one format, e.g. Writer('data/', Zarr(), Parquet())")
    labels = [f.label for f in resolved]
    doubled = sorted({label for label in labels if labels.count(label) > 1})
    if doubled:
        raise ConfigurationError(
            f"{doubled[0]!r} is given twice; two formats of one kind would write the same files. Use one "
            "per writer, or two writers with different file_prefix"
        )
    return tuple(resolved)


# --- the buffer -----------------------------------------------------------------------------------


class _Buffer:
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


def _nbytes(doc: Any) -> int:
    """About how much memory a document holds (its array readings), for the buffer's bound."""
    total = 1024
    data = doc.get("data") if isinstance(doc, Mapping) else None
    if data:
        for value in data.values():
            nbytes = getattr(value, "nbytes", None)
            if nbytes is not None:
                total += nbytes
            elif isinstance(value, list):
                total += sum(getattr(v, "nbytes", 0) for v in value)
    return total


_FLUSH, _CLOSE = "__flush__", "__close__"
_PAGE_EVENTS = 4096
"""At most this many waiting events of one descriptor become one page."""
_PAGE_PAGES = 64
"""At most this many waiting event pages of one descriptor become one page."""


def _page(events: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Consecutive events of one descriptor as one event page, or ``None`` if their keys differ.

    Only the fields the formats read are gathered (``data``, ``time``, ``seq_num``, ``uid``,
    ``filled``); per-key timestamps are not stored by any format, so they are not copied.
    """
    first = events[0]
    keys = list(first["data"])
    n_keys = len(keys)
    try:
        for event in events:
            if len(event["data"]) != n_keys:
                return None
        data = {k: [e["data"][k] for e in events] for k in keys}
    except KeyError:
        return None
    page: dict[str, Any] = {
        "descriptor": first["descriptor"],
        "uid": [e["uid"] for e in events],
        "time": [e["time"] for e in events],
        "seq_num": [e["seq_num"] for e in events],
        "data": data,
        "timestamps": {},
    }
    filled_keys = {k for e in events for k in e.get("filled") or ()}
    if filled_keys:
        page["filled"] = {k: [(e.get("filled") or {}).get(k, False) for e in events] for k in filled_keys}
    else:
        page["filled"] = {}
    return page


def _merge_pages(pages: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Consecutive event pages of one descriptor as one, or ``None`` if their keys differ."""
    first = pages[0]
    keys = first["data"].keys()
    if any(p["data"].keys() != keys for p in pages):
        return None
    filled_keys = {k for p in pages for k in p.get("filled") or ()}
    return {
        "descriptor": first["descriptor"],
        "uid": [u for p in pages for u in p["uid"]],
        "time": [t for p in pages for t in p["time"]],
        "seq_num": [s for p in pages for s in p["seq_num"]],
        "data": {k: [v for p in pages for v in p["data"][k]] for k in keys},
        "timestamps": {},
        "filled": {
            k: [f for p in pages for f in (p.get("filled") or {}).get(k, [False] * len(p["seq_num"]))]
            for k in filled_keys
        },
    }


# --- one run, all formats -------------------------------------------------------------------------


class _Run:
    """One run's sinks, one per format; each is guarded, so one failing format stops no other."""

    __slots__ = ("external", "filler", "sinks", "uid", "writer")

    def __init__(self, writer: Writer, uid: str, sinks: list[tuple[str, RunSink]]) -> None:
        self.writer = writer
        self.uid = uid
        self.sinks = sinks
        self.filler = event_model.Filler(writer.handler_registry or {}, inplace=False)
        self.external: dict[str, bool] = {}
        """descriptor uid -> whether its events may hold datum ids to fill"""

    def send(self, name: str, doc: Any) -> None:
        for label, sink in self.sinks:
            try:
                sink(name, doc)
            except Exception as err:
                self.fail(err, name, label, sink)

    def fail(self, err: BaseException, name: str, label: str, sink: RunSink) -> None:
        self.writer._record(err, self.uid, name, label)
        with contextlib.suppress(Exception):
            sink.note_error(err)

    def call(self, what: str, action: Callable[[RunSink], object]) -> None:
        for label, sink in self.sinks:
            try:
                action(sink)
            except Exception as err:
                self.fail(err, what, label, sink)

    def descriptor(self, doc: Any) -> None:
        self.external[doc["uid"]] = any(
            isinstance(v, Mapping) and v.get("external") for v in (doc.get("data_keys") or {}).values()
        )
        self.filler.descriptor(doc)
        self.send("descriptor", doc)

    def events(self, events: Sequence[Any]) -> None:
        """Consecutive events of one descriptor, as one page when they share their keys."""
        if self.external.get(events[0]["descriptor"]):
            page = self.fill(event_model.pack_event_page(*events))
            if page is not None:
                self.send("event_page", page)
            return
        page = _page(events) if len(events) > 1 else None
        if page is None:
            for event in events:
                self.send("event", event)
        else:
            self.send_merged(page, "event", events)

    def event_pages(self, pages: Sequence[Any]) -> None:
        """Consecutive event pages of one descriptor, as one page when they share their keys."""
        if self.external.get(pages[0]["descriptor"]):
            for doc in pages:
                filled = self.fill(doc)
                if filled is not None:
                    self.send("event_page", filled)
            return
        page = _merge_pages(pages) if len(pages) > 1 else None
        if page is None:
            for doc in pages:
                self.send("event_page", doc)
        else:
            self.send_merged(page, "event_page", pages)

    def send_merged(self, page: Any, name: str, parts: Sequence[Any]) -> None:
        """Send a page made of several documents; a sink it fails in gets them one by one.

        So a bad reading costs only its own document, and the error names it.
        """
        for label, sink in self.sinks:
            try:
                sink("event_page", page)
            except Exception:
                for doc in parts:
                    try:
                        sink(name, doc)
                    except Exception as err:
                        self.fail(err, name, label, sink)

    def fill(self, page: Any) -> Any:
        """Load external data; a spec without a handler passes through unfilled (the sinks say so)."""
        try:
            return self.filler.event_page(page)
        except event_model.UndefinedAssetSpecification:
            return page
        except Exception as err:
            self.writer._record(err, self.uid, "event_page", "filling external data")
            return None


class _Router:
    """Documents to the run they belong to, in the writer thread.

    A lean stand-in for :class:`event_model.RunRouter` with its :class:`event_model.Filler`:
    the same routing by run, descriptor and resource, with the Filler called only for
    descriptors that declare external data keys.
    """

    def __init__(self, writer: Writer) -> None:
        self.writer = writer
        self.runs: dict[str, _Run] = {}
        self.by_descriptor: dict[str, _Run] = {}
        self.by_resource: dict[str, _Run] = {}
        self.by_stream_resource: dict[str, _Run] = {}

    def __call__(self, name: str, doc: Any) -> None:
        handler = getattr(self, f"_{name}", None)
        if handler is None:
            raise DocumentError(f"a document named {name!r} is not a bluesky document this writer knows")
        handler(doc)

    def _start(self, doc: Any) -> None:
        uid = str(doc["uid"])
        if uid in self.runs:
            raise DocumentError(f"run {uid}: a second start document with the same uid; it was ignored")
        run = self.runs[uid] = self.writer._open_run(uid, doc)
        run.send("start", doc)

    def _run_of(self, doc: Any, key: str, table: dict[str, _Run], what: str) -> _Run:
        ref = doc.get(key)
        run = table.get(ref) if isinstance(ref, str) else None
        if run is None:
            raise DocumentError(
                f"a {what} document refers to {key} {ref!r}, which no start or descriptor this writer "
                "received declares; give the writer every document of a run, from its start"
            )
        return run

    def _descriptor(self, doc: Any) -> None:
        run = self._run_of(doc, "run_start", self.runs, "descriptor")
        self.by_descriptor[doc["uid"]] = run
        run.descriptor(doc)

    def events(self, name: str, docs: Sequence[Any]) -> None:
        """Consecutive events, or event pages, of one descriptor."""
        run = self._run_of(docs[0], "descriptor", self.by_descriptor, name)
        if name == "event":
            run.events(docs)
        else:
            run.event_pages(docs)

    def _event(self, doc: Any) -> None:
        self.events("event", [doc])

    def _event_page(self, doc: Any) -> None:
        self.events("event_page", [doc])

    def _stop(self, doc: Any) -> None:
        run = self._run_of(doc, "run_start", self.runs, "stop")
        run.send("stop", doc)
        with contextlib.suppress(Exception):
            run.filler.close()
        self.writer._finished(run.uid)

    def _resource(self, doc: Any) -> None:
        ref = doc.get("run_start")
        runs = [self.runs[ref]] if ref in self.runs else list(self.runs.values())
        for run in runs:
            self.by_resource[doc["uid"]] = run
            run.filler.resource(doc)

    def _datum(self, doc: Any) -> None:
        self._datum_page(event_model.pack_datum_page(doc))

    def _datum_page(self, doc: Any) -> None:
        run = self.by_resource.get(doc.get("resource"))
        for each in [run] if run is not None else list(self.runs.values()):
            each.filler.datum_page(doc)

    def _stream_resource(self, doc: Any) -> None:
        run = self._run_of(doc, "run_start", self.runs, "stream_resource")
        self.by_stream_resource[doc["uid"]] = run
        run.send("stream_resource", doc)

    def _stream_datum(self, doc: Any) -> None:
        self._run_of(doc, "stream_resource", self.by_stream_resource, "stream_datum").send(
            "stream_datum", doc
        )

    def _bulk_events(self, doc: Any) -> None:
        for page in event_model.bulk_events_to_event_pages(doc):
            self._event_page(page)

    def forget(self, uid: str) -> None:
        """Drop a finished run and everything that points to it."""
        run = self.runs.pop(uid, None)
        for table in (self.by_descriptor, self.by_resource, self.by_stream_resource):
            for key in [k for k, v in table.items() if v is run]:
                del table[key]


# --- the writer -----------------------------------------------------------------------------------


class Writer:
    """A bluesky callback that writes each run in one or more formats, from one pass over the documents.

    Subscribe it to a RunEngine (``RE.subscribe(Writer("data/", Zarr(data_keys="arrays"),
    Parquet(data_keys="scalars")))``), a ``RemoteDispatcher``, or call it with ``(name, doc)``
    pairs. The RunEngine never waits on disk: documents go through a bounded buffer to a writer
    thread, which hands each document to every format. A format that fails records the error
    (raised in the caller at the next document, naming the run, the format and the path) and the
    other formats go on writing.

    Parameters
    ----------
    directory
        Where the outputs go; created if missing.
    *formats
        Format objects (:class:`~bluesky_zarr.Zarr`, :class:`~bluesky_zarr.Parquet`,
        :class:`~bluesky_zarr.ArrowIPC`) or their names (``"zarr"``, ``"parquet"``, ``"arrow"``).
        At most one of each kind.
    file_prefix
        ``str.format`` template filled from the start document, e.g. ``"{start[scan_id]}-"``.
        A value from the metadata that would leave ``directory`` is refused.
    overwrite
        Replace existing outputs of the same name. By default an existing output of any of the
        formats is an error (:class:`~bluesky_zarr.StoreExistsError`) raised at ``start``, and
        nothing of the run is written.
    handler_registry
        ``{spec: handler}`` for external data (legacy Resource/Datum), filled with
        :class:`event_model.Filler` in the writer thread.
    buffer_bytes
        How many bytes of readings may wait for the disk before the RunEngine blocks.
    flush_interval
        Seconds between making what was received visible to readers (partial chunks, Parquet
        parts, Arrow batches).

    Attributes
    ----------
    artifacts : dict[str, list[pathlib.Path]]
        The files and stores written, by format label (the suitcase convention). Table formats
        list their per-stream files, Zarr its stores.
    """

    def __init__(
        self,
        directory: str | Path,
        *formats: Format | str,
        file_prefix: str = "{start[uid]}",
        overwrite: bool = False,
        handler_registry: Mapping[str, Callable[..., Any]] | None = None,
        buffer_bytes: int = 512 * 1024**2,
        flush_interval: float = 1.0,
    ) -> None:
        if buffer_bytes <= 0 or flush_interval <= 0:
            raise ConfigurationError("buffer_bytes and flush_interval must be positive")
        self.formats = resolve_formats(formats)
        self.directory = Path(directory)
        self.file_prefix = file_prefix
        self.overwrite = overwrite
        self.handler_registry = dict(handler_registry) if handler_registry is not None else None
        self.flush_interval = flush_interval
        self._buffer = _Buffer(buffer_bytes)
        self._errors: list[BaseException] = []
        self._errors_lock = threading.Lock()
        self._closed = False
        self._claimed: dict[str, dict[str, Path]] = {}
        """run uid -> {format label: output path}, decided in the caller's thread at ``start``"""
        self._taken: set[tuple[str, Path]] = set()
        self._refused: set[str] = set()
        self._refused_descriptors: set[str] = set()
        self._array_keys: dict[str, tuple[str, ...]] = {}
        """descriptor uid -> its data keys with array readings, for the buffer's bound"""
        self._router = _Router(self)
        self.artifacts: dict[str, list[Path]] = {f.label: [] for f in self.formats}
        self._thread = threading.Thread(target=self._work, name=f"{type(self).__name__}", daemon=True)
        self._thread.start()
        atexit.register(_close_at_exit, weakref.ref(self))

    def __repr__(self) -> str:
        formats = ", ".join(repr(f) for f in self.formats)
        return f"Writer({str(self.directory)!r}, {formats}, file_prefix={self.file_prefix!r})"

    # --- the caller's thread ----------------------------------------------------------------------

    def __call__(self, name: str, doc: Any) -> tuple[str, Any]:
        """Take one document; then raise an error that the writer thread met since the last call.

        The document is taken even so: the formats that work go on writing it.
        """
        if self._closed:
            raise BlueskyZarrError(f"{self!r} is closed; create a new writer for more runs")
        if name == "start":
            try:
                self._claim(doc)
            except BlueskyZarrError:
                self._refused.add(str(doc.get("uid")))
                raise
        elif self._refused and self._is_refused(name, doc):
            return name, doc
        if name == "event" and (arrays := self._array_keys.get(doc["descriptor"])) is not None:
            # the common case costs a dict look-up: a descriptor says which keys hold arrays
            nbytes = 1024 + sum(getattr(doc["data"].get(k), "nbytes", 0) for k in arrays) if arrays else 1024
        else:
            nbytes = _nbytes(doc)
            if name == "descriptor":
                self._array_keys[doc["uid"]] = tuple(
                    k
                    for k, v in (doc.get("data_keys") or {}).items()
                    if isinstance(v, Mapping) and v.get("shape")
                )
        self._buffer.put(name, doc, nbytes)
        if name == "stop":
            self._buffer.join()
        if self._errors:
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
        claims: dict[str, Path] = {}
        for fmt in self.formats:
            path = fmt.output_path(self.directory, prefix)
            taken = (fmt.label, path) in self._taken
            existing = path if taken else (None if self.overwrite else fmt.existing_output(path))
            if existing is not None:
                how = " (written by this writer for another run)" if taken else ""
                raise StoreExistsError(
                    f"run {uid}: {existing} exists already{how}; "
                    "nothing was written. Choose a file_prefix that differs between runs (the default "
                    "'{start[uid]}' does), or pass overwrite=True to replace it"
                )
            claims[fmt.label] = path
        self._claimed[uid] = claims
        self._taken.update(claims.items())

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

    def __enter__(self) -> Writer:
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
        last_flush = time.monotonic()
        while True:
            items = self._buffer.take(self.flush_interval, 8 * _PAGE_EVENTS)
            closing = False
            i, n = 0, len(items)
            while i < n:
                name, doc, _ = items[i]
                if name == "event" or name == "event_page":
                    j = i + 1
                    descriptor = doc.get("descriptor")
                    most = _PAGE_EVENTS if name == "event" else _PAGE_PAGES
                    while (
                        j < n and j - i < most and items[j][0] == name
                        and items[j][1].get("descriptor") == descriptor
                    ):  # fmt: skip
                        j += 1
                    try:
                        self._router.events(name, [item[1] for item in items[i:j]])
                    except Exception as err:  # the router itself: events of no known descriptor
                        self._record(err, _reference(doc), name)
                    i = j
                    continue
                i += 1
                if name == _CLOSE:
                    closing = True
                elif name == _FLUSH:
                    self._flush_runs()
                    last_flush = time.monotonic()
                else:
                    try:
                        self._router(name, doc)
                    except Exception as err:  # the router itself: a document of no known run
                        self._record(err, _reference(doc), name)
            if closing:
                self._flush_runs()
                for run in list(self._router.runs.values()):
                    run.call("close", lambda sink: sink.finish("incomplete"))
                    self._router.forget(run.uid)
            self._buffer.done(sum(item[2] for item in items), n)
            if closing:
                return
            if time.monotonic() - last_flush >= self.flush_interval:
                self._flush_runs()
                last_flush = time.monotonic()

    def _open_run(self, uid: str, start: Mapping[str, Any]) -> _Run:
        """The sinks of a new run, at the paths claimed for it at ``start``; a failing format is left out."""
        sinks: list[tuple[str, RunSink]] = []
        claims = self._claimed.get(uid, {})
        for fmt in self.formats:
            path = claims.get(fmt.label)
            if path is None:
                continue
            try:
                sink: RunSink = fmt.open(
                    path, start, overwrite=self.overwrite, artifacts=self.artifacts[fmt.label]
                )
            except Exception as err:
                self._record(err, uid, "start", fmt.label)
                continue
            if fmt.selection != "all":
                sink = SelectedSink(sink, fmt.selection, fmt.label, uid)
            sinks.append((fmt.label, sink))
        return _Run(self, uid, sinks)

    def _finished(self, uid: str) -> None:
        self._router.forget(uid)

    def _record(self, err: BaseException, uid: str, name: str, label: str = "") -> None:
        to = f" to {label}" if label else ""
        if not isinstance(err, BlueskyZarrError):
            wrapped: BaseException
            if isinstance(err, OSError):
                wrapped = WriteError(err.errno, f"run {uid}: writing the {name} document{to} failed: {err}")
            else:
                wrapped = BlueskyZarrError(f"run {uid}: writing the {name} document{to} failed: {err!r}")
            wrapped.__cause__ = err
            err = wrapped
        elif uid not in str(err):
            err.add_note(f"while writing the {name} document of run {uid}{to}")
        with self._errors_lock:
            self._errors.append(err)

    def _flush_runs(self) -> None:
        for run in list(self._router.runs.values()):
            run.call("flush", lambda sink: sink.flush())


def _reference(doc: Any) -> str:
    """What names a document's run in an error: its run_start, its descriptor, or its own uid."""
    if not isinstance(doc, Mapping):
        return "?"
    return str(doc.get("run_start", doc.get("descriptor", doc.get("uid", "?"))))


def _close_at_exit(ref: weakref.ref[Writer]) -> None:
    writer = ref()
    if writer is not None:
        with contextlib.suppress(BlueskyZarrError):
            writer.close()


def feed(writer: Writer, documents: Iterable[tuple[str, Any]]) -> None:
    """Give every ``(name, doc)`` pair to ``writer`` in order."""
    for name, doc in documents:
        writer(name, doc)


def export(
    documents: Iterable[tuple[str, Any]],
    directory: str | Path,
    file_prefix: str = "{start[uid]}",
    *,
    format: Format | str | Sequence[Format | str] = "zarr",
    overwrite: bool = False,
    handler_registry: Mapping[str, Callable[..., Any]] | None = None,
) -> dict[str, list[Path]]:
    """Write existing ``(name, doc)`` pairs (a databroker run, a document file) in one or more formats.

    The suitcase convention: returns the artifacts, ``{label: [path, ...]}``, e.g.
    ``{"zarr": [store, ...]}`` or ``{"parquet": [<run>/primary.parquet, ...]}``.

    Parameters
    ----------
    documents
        ``(name, doc)`` pairs; may hold many runs, each written on its own.
    directory
        Where the outputs go; created if missing.
    file_prefix
        ``str.format`` template filled from each start document.
    format
        A format name (``"zarr"``, ``"parquet"``, ``"arrow"``), a format object
        (``Parquet(compression="snappy")``), or a list of those: all are written in one pass.
    overwrite
        Replace existing outputs of the same name instead of raising
        :class:`~bluesky_zarr.StoreExistsError`.
    handler_registry
        ``{spec: handler}`` for external data (legacy Resource/Datum).
    """
    formats = [format] if isinstance(format, Format | str) else list(format)
    with Writer(
        directory, *formats, file_prefix=file_prefix, overwrite=overwrite, handler_registry=handler_registry
    ) as writer:
        feed(writer, documents)
    return writer.artifacts
