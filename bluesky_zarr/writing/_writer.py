"""The writer: a ``cb(name, doc)`` callable that never makes the RunEngine wait on disk.

The RunEngine's thread does the little that must fail before anything is written (each output's
name, whether it exists), hands each document to a bounded buffer and returns. One writer thread
routes the documents to the run they belong to, fills external data, and fans each document out
to every format of the writer (Zarr, Parquet, Arrow IPC): one pass over the documents, however
many formats. When the buffer is full, the RunEngine blocks until there is room: documents are
never dropped. An error in the writer thread is raised in the RunEngine's thread at the next
document, and at ``stop`` the RunEngine waits until the run is on disk, so a run that ends
without an error is complete.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import pickle
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, Literal, TypedDict

from .._documents import RunStart
from .._errors import (
    BlueskyZarrError,
    ConfigurationError,
    DocumentError,
    StoreExistsError,
    WriteError,
    said_by,
)
from .._naming import check_template, render_file_prefix
from ..sinks import Format, OnError, RunSink, resolve_formats
from ..storage import Storage, Target, open_storage
from ._buffer import DocumentBuffer, document_nbytes
from ._detector_files import AreaDetectorHDF5Handler
from ._paging import PAGE_BYTES, PAGE_EVENTS, PAGE_PAGES
from ._process import CLAIMS, Overflow, ProcessWorker
from ._progress import ProgressDisplay
from ._router import Router, RunFanOut
from ._signals import finish_on_sigterm
from ._space import LowSpace, SpaceCheck

__all__ = ["Worker", "Writer", "WriterOptions"]

Worker = Literal["thread", "process"]

_FLUSH, _CLOSE = "__flush__", "__close__"

logger = logging.getLogger("bluesky_zarr")


class WriterOptions(TypedDict, total=False):
    """The keywords every writer takes besides its formats' (see :class:`Writer`)."""

    file_prefix: str
    overwrite: bool
    handler_registry: Mapping[str, Callable[..., Any]] | None
    buffer_bytes: int
    flush_interval: float
    on_error: OnError
    frame_timeout: float
    storage_options: Mapping[str, Any] | None
    progress: bool | IO[str]
    low_space: LowSpace
    worker: Worker
    ring_bytes: int
    overflow: Overflow


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
        Where the outputs go: a local directory (created if missing), a ``file://`` URL, or an
        object-store prefix, ``s3://bucket/prefix/`` (the bucket must exist), or a writable zarr
        ``Store`` object (the runs go below its root, written through zarr's ``Store`` API). Any
        other URL scheme is a :class:`~bluesky_zarr.ConfigurationError`, raised here.
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
        :class:`event_model.Filler` in the writer thread. The areaDetector HDF5 specs
        (``AD_HDF5``, ``AD_HDF5_SWMR``) are read without one. Frames that ophyd-async detectors
        write to their own files (StreamResource/StreamDatum) need no handler either.
    buffer_bytes
        How many bytes of readings may wait for the disk before the RunEngine blocks.
    flush_interval
        Seconds between making what was received visible to readers (partial chunks, Parquet
        parts, Arrow batches).
    on_error
        What a reading costs that cannot be stored even in a wider dtype (text where numbers are
        declared, another shape): ``"quarantine"`` (the default) keeps it in the stream's
        quarantine (``<stream>_quarantine``), logs it once per data key, goes on, and ends the run
        ``partial``; ``"raise"`` raises it in the scan at the next document, like a write error.
        Readings that fit a wider dtype are never an error: the data key is widened.
    frame_timeout
        Seconds to wait for a detector's file to hold the frames an event points at (a file still
        being written). A frame not there by then is kept in the quarantine as unread, and the
        error names the file, the dataset and the frame.
    storage_options
        For an ``s3://`` target: ``endpoint_url``, ``region``, the retry bounds and timeouts (see
        :class:`~bluesky_zarr.storage.S3Storage`). Credentials are best left to the environment
        (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``); given here, they are held in memory
        only, never written, logged, shown or pickled.
    progress
        ``True`` (or a text file to draw on): a progress bar per run, drawn with tqdm on stderr (a
        widget in Jupyter): points of the primary stream taken of the start document's
        ``num_points``, the rate, the time left, and how many events the writer is behind the
        RunEngine. It costs the scan an integer addition per event; a thread of its own draws it.
        With ``worker="process"`` it counts the events handed to the writer process.
    worker
        ``"thread"`` (the default): a writer thread in this process does the writing.
        ``"process"``: a writer process does it all (decoding, routing, encoding, I/O); the
        caller's thread only copies each document into a shared-memory ring buffer
        (``/dev/shm``) and returns, so the writing never competes with the RunEngine for the
        interpreter. The outputs' names are still decided, and refused (an existing output, a bad
        ``file_prefix``), here at ``start``. If the writer process dies, the next document raises
        :class:`~bluesky_zarr.WriterProcessError`; if this process dies, the writer process writes
        what the ring holds, ends the run ``incomplete`` and exits. See
        ``docs/how-to/write-in-a-separate-process.md``.
    ring_bytes
        ``worker="process"``: the size of the ring buffer, in bytes: the data rate times the
        seconds the disk may fall behind (the default, 1 GiB, holds 5 s of a 2048x2048 uint16
        camera at 25 fps). ``/dev/shm`` must have that much free. A document larger than the ring
        is refused with a :class:`~bluesky_zarr.ConfigurationError` naming its largest data key.
    overflow
        ``worker="process"``: what a full ring does: ``"block"`` (the default) makes the RunEngine
        wait for room, nothing is lost; ``"discard_oldest"`` drops the oldest events waiting (never
        a start, descriptor or stop), counts them, warns at ``stop`` and records them in the run's
        ``errors``; the run ends ``partial``.
    low_space
        What a run does whose first descriptor, times the start document's ``num_points``, needs
        more bytes (uncompressed) than its file system has free: ``"warn"`` (the default: a warning
        on the ``bluesky_zarr`` logger, and the scan goes on, since compression may make it fit)
        or ``"refuse"`` (a :class:`~bluesky_zarr.WriteError`, ``ENOSPC``, stops the run before its
        first event is written).

    Attributes
    ----------
    artifacts : dict[str, list[pathlib.Path | str]]
        The files and stores written, by format label (the suitcase convention). Table formats
        list their per-stream files, Zarr its stores: local paths, or ``s3://`` URLs.
    target : Storage
        Where the outputs go.
    errors : list[BaseException]
        Every error this writer met, in order (each is also logged at ERROR on the ``bluesky_zarr``
        logger, and raised in the caller at the next document, at ``flush`` or at ``close``).
    failed : bool
        Whether ``errors`` holds any.
    left_out : dict[str, int]
        Runs whose start document this writer never received (it was subscribed, or a service
        started, after they began) -> how many of their documents it left out. Each is reported
        once, as a warning on the ``bluesky_zarr`` logger, and never stops a scan.

    Notes
    -----
    A pickled writer is its configuration: unpickled, it is a new writer with the same target,
    formats and options, no runs, and credentials taken from the environment.
    """

    def __init__(
        self,
        directory: Target,
        *formats: Format | str,
        file_prefix: str = "{start[uid]}",
        overwrite: bool = False,
        handler_registry: Mapping[str, Callable[..., Any]] | None = None,
        buffer_bytes: int = 512 * 1024**2,
        flush_interval: float = 1.0,
        on_error: OnError = "quarantine",
        frame_timeout: float = 10.0,
        storage_options: Mapping[str, Any] | None = None,
        progress: bool | IO[str] = False,
        worker: Worker = "thread",
        ring_bytes: int = 2**30,
        overflow: Overflow = "block",
        low_space: LowSpace = "warn",
    ) -> None:
        if buffer_bytes <= 0 or flush_interval <= 0 or frame_timeout < 0 or ring_bytes <= 0:
            raise ConfigurationError(
                "buffer_bytes, ring_bytes and flush_interval must be positive, and frame_timeout not negative"
            )
        if worker not in ("thread", "process"):
            raise ConfigurationError(f"worker must be 'thread' or 'process', not {worker!r}")
        if overflow not in ("block", "discard_oldest"):
            raise ConfigurationError(f"overflow must be 'block' or 'discard_oldest', not {overflow!r}")
        if on_error not in ("quarantine", "raise"):
            raise ConfigurationError(f"on_error must be 'quarantine' or 'raise', not {on_error!r}")
        check_template(file_prefix)
        self.formats = resolve_formats(formats)
        self.target = open_storage(directory, storage_options)
        self.directory = self.target.artifact()
        self._config: dict[str, Any] = {
            "file_prefix": file_prefix, "overwrite": overwrite, "handler_registry": handler_registry,
            "buffer_bytes": buffer_bytes, "flush_interval": flush_interval, "on_error": on_error,
            "frame_timeout": frame_timeout, "progress": progress is True, "worker": worker,
            "ring_bytes": ring_bytes, "overflow": overflow, "low_space": low_space,
        }  # fmt: skip
        self._space = SpaceCheck(low_space)
        self.file_prefix = file_prefix
        self.overwrite = overwrite
        self.handler_registry: dict[str, Callable[..., Any]] = {
            **dict.fromkeys(AreaDetectorHDF5Handler.specs, AreaDetectorHDF5Handler),
            **(handler_registry or {}),
        }
        self.frame_timeout = frame_timeout
        self.flush_interval = flush_interval
        self.on_error: OnError = on_error
        self._errors: list[BaseException] = []
        """errors not raised yet"""
        self.errors: list[BaseException] = []
        self._raised_in_scan: list[BaseException] = []
        """errors raised only at a document: a RunEngine with ``ignore_callback_exceptions`` drops them"""
        self._run_raised_from = 0
        """where the errors raised in the latest run begin in ``_raised_in_scan``"""
        self._in_writer_process = False
        """set in the writer process of ``worker="process"``, whose errors reach the caller's writer"""
        self._errors_lock = threading.Lock()
        self._closed = False
        self._claimed: dict[str, dict[str, Storage]] = {}
        """run uid -> {format label: output}, decided in the caller's thread at ``start``"""
        self._taken: set[tuple[str, str]] = set()
        self._refused: set[str] = set()
        self._open: set[str] = set()
        """runs started and not stopped"""
        self._refused_descriptors: set[str] = set()
        self._array_keys: dict[str, tuple[str, ...]] = {}
        """descriptor uid -> its data keys with array readings, for the buffer's bound"""
        self._router = Router(self)
        self._progress = (
            None if progress is False else ProgressDisplay(None if progress is True else progress)
        )
        self.artifacts: dict[str, list[Path | str]] = {f.label: [] for f in self.formats}
        self._buffer: DocumentBuffer | ProcessWorker
        self._process: ProcessWorker | None = None
        if worker == "process":
            self._buffer = self._process = ProcessWorker(
                self._child_state(), ring_bytes, overflow, self._keep_error, self._open_outputs
            )
            self._end_worker: Callable[[], None] = self._process.close
        else:
            self._buffer = buffer = DocumentBuffer(buffer_bytes)
            self._thread = threading.Thread(  # it holds the writer only while it writes a batch
                target=_write_in_thread, args=(weakref.ref(self), buffer, flush_interval),
                name=f"{type(self).__name__}", daemon=True,
            )  # fmt: skip
            self._thread.start()
            self._end_worker = self._thread.join
        atexit.register(_close_at_exit, weakref.ref(self))
        finish_on_sigterm(self)

    @property
    def left_out(self) -> dict[str, int]:
        return dict(self._router.unknown)

    def __repr__(self) -> str:
        formats = ", ".join(repr(f) for f in self.formats)
        return f"Writer({self.target.location!r}, {formats}, file_prefix={self.file_prefix!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.target, self.formats, self._config))

    def _child_state(self) -> bytes:
        """What the writer process rebuilds: this configuration with the thread worker."""
        config = {**self._config, "worker": "thread", "progress": False}
        try:
            return pickle.dumps((type(self), self.target, self.formats, config))
        except Exception as err:
            raise ConfigurationError(
                f'worker="process" sends the writer\'s configuration to the writer process, and it does not '
                f"pickle: {err!r}. Handlers and targets must be importable (not defined in __main__ or a "
                'lambda), or use worker="thread"'
            ) from err

    @property
    def failed(self) -> bool:
        """Whether writing failed anywhere since this writer was made (``errors`` says what)."""
        return bool(self.errors)

    def _keep_error(self, err: BaseException) -> None:
        """Remember an error, to raise in the caller; logged at ERROR on the ``bluesky_zarr`` logger."""
        logger.error("%s", err)
        with self._errors_lock:
            self._errors.append(err)
            self.errors.append(err)

    def _open_outputs(self) -> list[str]:
        """The outputs of the runs started and not stopped, for an error that says where they are."""
        return [out.location for uid in self._open for out in self._claimed.get(uid, {}).values()]

    # --- the caller's thread ----------------------------------------------------------------------

    def __call__(self, name: str, doc: Any) -> tuple[str, Any]:
        """Take one document; then raise an error that the writer thread met since the last call.

        The document is taken even so: the formats that work go on writing it.
        """
        try:
            return self._take(name, doc)
        except BlueskyZarrError as err:
            said_by(err, type(self).__name__)
            raise

    def _take(self, name: str, doc: Any) -> tuple[str, Any]:
        if self._closed:
            raise BlueskyZarrError(f"{self!r} is closed; create a new writer for more runs")
        if not isinstance(doc, Mapping):
            raise DocumentError(f"a {name!r} document must be a mapping (a dict), not {type(doc).__name__}")
        if name == "start":
            uid = doc.get("uid")
            if not isinstance(uid, str) or not uid:
                raise DocumentError(
                    f"a start document without a 'uid' (it has {uid!r:.40}): nothing of its run can be named "
                    "or written. Fix the document's source"
                )
            if uid in self._open:  # a source that sent it twice: the run goes on
                logger.warning(
                    "run %s: its start document came a second time; the copy is ignored and the run goes on",
                    uid,
                )
                return name, doc
            try:
                claims = self._claim(doc)
            except BlueskyZarrError:
                self._refused.add(uid)
                raise
            if not claims:  # another writer of this process writes every output of the run
                self._refused.add(uid)
                return name, doc
            if self._open:
                logger.warning(
                    "run %s starts while run(s) %s have had no stop document (a callback subscribed before "
                    "this writer that raised at the stop keeps it from the writer); their outputs say "
                    "'incomplete' from now on, and they end so when the writer closes. Runs that overlap on "
                    "purpose (a plan that opens a run inside another) say 'running' again at their next "
                    "document and end as their stop says",
                    uid, ", ".join(sorted(self._open)),
                )  # fmt: skip
            self._open.add(uid)
            self._space.start(uid, doc, list(claims.values()))
            self._run_raised_from = len(self._raised_in_scan)
            if self._process is not None:  # the writer process writes where this process decided
                self._process.put(CLAIMS, (uid, claims), 0)
        elif self._refused and self._is_refused(name, doc):
            return name, doc
        elif name == "descriptor":
            taken = self._accept(name, doc)
            self._space.descriptor(doc)  # with low_space="refuse", a run too large stops here
            return taken
        return self._accept(name, doc)

    def _accept(self, name: str, doc: Any) -> tuple[str, Any]:
        """Hand a document (its outputs claimed, if a start) to the worker; raise a pending error."""
        if self._process is not None:
            self._process.put(name, doc, 0)
            if name == "stop":
                self._process.join()
                self._stopped(doc)
            if self._progress is not None:
                if name == "event":
                    self._progress.wrote(name, [doc])
                self._progress.document(name, doc)
            if self._errors:
                self._raise_pending(in_scan=not (name == "stop" and doc.get("exit_status") == "fail"))
            return name, doc
        if name == "event" and (arrays := self._array_keys.get(doc.get("descriptor"))) is not None:
            # the common case costs a dict look-up: a descriptor says which keys hold arrays
            data = doc.get("data")
            nbytes = (
                1024 + sum(getattr(data.get(k), "nbytes", 0) for k in arrays)
                if arrays and isinstance(data, Mapping)
                else 1024
            )
        else:
            nbytes = document_nbytes(doc)
            if name == "descriptor":
                self._array_keys[str(doc.get("uid"))] = tuple(
                    k
                    for k, v in (doc.get("data_keys") or {}).items()
                    if isinstance(v, Mapping) and v.get("shape")
                )
        self._buffer.put(name, doc, nbytes)
        if name == "stop":
            self._buffer.join()
            self._stopped(doc)
        if self._progress is not None:
            self._progress.document(name, doc)
        if self._errors:
            self._raise_pending(in_scan=not (name == "stop" and doc.get("exit_status") == "fail"))
        return name, doc

    def _stopped(self, doc: Any) -> None:
        """A run's stop was written: the run is no longer open (one without ``run_start`` is the one
        open run's, as the router takes it)."""
        if doc.get("exit_status") == "fail":  # the RunEngine ended the run for what it raised: seen
            del self._raised_in_scan[self._run_raised_from :]
        uid = doc.get("run_start")
        if uid is None and len(self._open) == 1:
            uid = next(iter(self._open))
        self._open.discard(str(uid))
        self._space.stop(str(uid))
        with _WRITING_HERE_LOCK:
            for label, output in self._claimed.get(str(uid), {}).items():
                if _WRITING_HERE.get((label, output.location), (None, ""))[1] == uid:
                    del _WRITING_HERE[label, output.location]

    def _is_refused(self, name: str, doc: Any) -> bool:
        if name == "descriptor" and doc.get("run_start") in self._refused:
            self._refused_descriptors.add(str(doc.get("uid")))
            return True
        if name in {"event", "event_page"}:
            return doc.get("descriptor") in self._refused_descriptors
        return doc.get("run_start") in self._refused

    def _claim(self, start: Mapping[str, Any]) -> dict[str, Storage]:
        """Decide where each format writes the run, in the caller's thread: a name taken, an
        output that exists or cannot be written is an error before anything is written. An output
        that another writer of this process writes for the same run (a writer subscribed twice) is
        left to it, warned."""
        uid = str(start.get("uid"))
        prefix = render_file_prefix(self.file_prefix, start)
        claims: dict[str, Storage] = {}
        for fmt in self.formats:
            try:
                output = self._claim_one(fmt, uid, prefix)
            except BlueskyZarrError as err:
                said_by(err, f"{type(self).__name__} ({fmt.label})")
                raise
            if output is not None:
                claims[fmt.label] = output
        for label, output in claims.items():
            try:
                output.check_writable()
            except BlueskyZarrError as err:
                said_by(err, f"{type(self).__name__} ({label})")
                err.add_note(f"run {uid}: nothing was written; choose a directory this process can write to")
                raise
        with _WRITING_HERE_LOCK:
            for label, output in claims.items():
                _WRITING_HERE[label, output.location] = (weakref.ref(self), uid)
        self._claimed[uid] = claims
        self._taken.update((label, output.location) for label, output in claims.items())
        return claims

    def _claim_one(self, fmt: Format, uid: str, prefix: str) -> Storage | None:
        """Where ``fmt`` writes run ``uid``; ``None`` if another writer of this process writes it."""
        output = fmt.output_path(self.target, prefix)
        other = _writing_here(fmt.label, output.location, uid, self)
        if other is not None:
            logger.warning(
                "run %s: %s writes the run's %s output %s already (a writer subscribed twice, or two "
                "with the same directory and format?); this %s leaves it to that writer",
                uid, type(other).__name__, fmt.label, output.location, type(self).__name__,
            )  # fmt: skip
            return None
        taken = (fmt.label, output.location) in self._taken
        existing = output.location if taken else (None if self.overwrite else fmt.existing_output(output))
        if existing is not None and uid in self._claimed:
            raise StoreExistsError(
                f"run {uid}: its start document came again after its stop; this writer wrote the run "
                f"already, to {existing}, and leaves this copy of it out"
            )
        if existing is not None:
            how = " (written by this writer for another run)" if taken else ""
            raise StoreExistsError(
                f"run {uid}: {existing} exists already{how}; "
                "nothing was written. Choose a file_prefix that differs between runs (the default "
                "'{start[uid]}' does), or pass overwrite=True to replace it"
            )
        return output

    def take_claims(self, uid: str, claims: dict[str, Storage]) -> None:
        """Write run ``uid`` where another writer of this configuration (the acquisition side of
        ``worker="process"``) claimed its outputs: its ``start`` is not claimed again."""
        self._claimed[uid] = claims
        self._taken.update((label, output.location) for label, output in claims.items())

    def flush(self) -> None:
        """Wait until every document taken so far is written and visible; raise any write error not
        raised yet."""
        if not self._closed:
            self._buffer.put(_FLUSH, None, 0)
            self._buffer.join()
        self._raise_pending()

    def close(self) -> None:
        """Write everything, finish runs that got no stop document, and end the writer thread.

        Runs that got no stop document keep what they have, with status ``"incomplete"``.
        Raises an error not raised yet; and if errors were raised in the scan but the run did not
        fail for them, a :class:`~bluesky_zarr.BlueskyZarrError` that says so (a RunEngine with
        ``ignore_callback_exceptions=True`` drops them). Calling ``close`` again does nothing.
        """
        if self._closed:
            return
        # the writer thread may know this writer only from here (the writer process has its own)
        self._buffer.put(_CLOSE, None if self._process else self, 0)
        self._end_worker()
        self._closed = True
        if self._progress is not None:
            self._progress.close()
        self._raise_pending()
        if self._raised_in_scan and not self._in_writer_process:
            first = self._raised_in_scan[0]
            raise BlueskyZarrError(
                f"{self!r}: {len(self._raised_in_scan)} error(s) were raised in the scan while writing (the "
                f"first: {first}); each output's status says which runs failed, and writer.errors lists them"
            ) from first

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:  # do not hide the error in flight
            with contextlib.suppress(BlueskyZarrError):
                self.close()

    def _raise_pending(self, in_scan: bool = False) -> None:
        """Raise the errors not raised yet. ``in_scan``: at a document, where a RunEngine with
        ``ignore_callback_exceptions`` drops what it raises (the stop of a run that ends ``fail``
        says the RunEngine saw it)."""
        with self._errors_lock:
            errors, self._errors = self._errors, []
        if in_scan:
            self._raised_in_scan.extend(errors)
        if errors:
            first = errors[0]
            if len(errors) > 1:
                first.add_note(f"{len(errors) - 1} more error(s) followed; the first is shown")
            raise first

    # --- the writer thread ------------------------------------------------------------------------

    def _handle(self, items: list[tuple[str, Any, int]]) -> bool:
        """Write one batch the writer thread took; whether it holds ``close``."""
        closing = False
        i, n = 0, len(items)
        while i < n:
            name, doc, _ = items[i]
            if name == "event" or name == "event_page":
                j = i + 1
                descriptor = doc.get("descriptor")
                most = PAGE_EVENTS if name == "event" else PAGE_PAGES
                size = items[i][2]
                while (
                    j < n and j - i < most and items[j][0] == name
                    and items[j][1].get("descriptor") == descriptor and size + items[j][2] <= PAGE_BYTES
                ):  # fmt: skip
                    size += items[j][2]
                    j += 1
                docs = [item[1] for item in items[i:j]]
                try:
                    self._router.events(name, docs)
                except Exception as err:  # the router itself: events of no known descriptor
                    self.record(err, self._router.run_named_by(doc), name)
                if self._progress is not None:
                    self._progress.wrote(name, docs)
                i = j
                continue
            i += 1
            if name == _CLOSE:
                closing = True
            elif name == _FLUSH:
                self._flush_runs()
            else:
                try:
                    self._router(name, doc)
                except Exception as err:  # the router itself: a document of no known run
                    self.record(err, self._router.run_named_by(doc), name)
        if closing:
            self._flush_runs()
            for run in list(self._router.runs.values()):
                run.call("close", lambda sink: sink.finish("incomplete"))
                run.close()
                self._router.forget(run.uid)
        return closing

    def __del__(self) -> None:
        """A writer dropped unclosed (no reference left to it) is closed in a thread of its own."""
        if getattr(self, "_closed", True) or not hasattr(self, "_end_worker") or sys.is_finalizing():
            return
        # the thread holds this writer again until it is closed: its open runs end "incomplete"
        threading.Thread(target=_close_dropped, args=(self,), name="bluesky-zarr close", daemon=True).start()

    def open_run(self, uid: str, start: RunStart) -> RunFanOut:
        """The sinks of a new run, at the paths claimed for it at ``start``; a failing format is left out."""
        sinks: list[tuple[str, RunSink[Any]]] = []
        claims = self._claimed.get(uid, {})
        for fmt in self.formats:
            output = claims.get(fmt.label)
            if output is None:
                continue
            try:
                sink = fmt.open(
                    output, start, overwrite=self.overwrite, artifacts=self.artifacts[fmt.label],
                    on_error=self.on_error,
                )  # fmt: skip
            except Exception as err:
                self.record(err, uid, "start", fmt.label)
                continue
            sinks.append((fmt.label, sink))
        return RunFanOut(self, uid, sinks)

    def record(self, err: BaseException, uid: str, name: str, label: str = "") -> None:
        who = f"{type(self).__name__} ({label})" if label else type(self).__name__
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
        said_by(err, who)
        self._keep_error(err)

    def _flush_runs(self) -> None:
        for run in list(self._router.runs.values()):
            run.call("flush", lambda sink: sink.flush())


_WRITING_HERE: dict[tuple[str, str], tuple[weakref.ref[Writer], str]] = {}
"""(format label, output location) -> the writer of this process that claimed it last, and for
which run: so that a second writer subscribed to the same RunEngine leaves the output to it"""
_WRITING_HERE_LOCK = threading.Lock()


def _writing_here(label: str, location: str, uid: str, asking: Writer) -> Writer | None:
    """Another open writer of this process that writes run ``uid`` to this output, or ``None``."""
    with _WRITING_HERE_LOCK:
        ref, run = _WRITING_HERE.get((label, location), (None, None))
    other = ref() if ref is not None else None
    if other is None or other is asking or other._closed or run != uid or uid not in other._open:
        return None
    return other


def _rebuild(
    cls: type[Writer], target: Storage, formats: tuple[Format, ...], config: dict[str, Any]
) -> Writer:
    """A writer unpickled: a new one of the same configuration."""
    writer = cls.__new__(cls)
    Writer.__init__(writer, target, *formats, **config)
    return writer


def _close_at_exit(ref: weakref.ref[Writer]) -> None:
    writer = ref()
    if writer is not None:
        with contextlib.suppress(BlueskyZarrError):
            writer.close()


def _write_in_thread(ref: weakref.ref[Writer], buffer: DocumentBuffer, flush_interval: float) -> None:
    """The writer thread. It holds its writer only while it writes a batch, so a writer nobody
    holds any more is collected, and its ``__del__`` closes it: ``close`` comes with the writer."""
    last_flush = time.monotonic()
    while True:
        items = buffer.take(flush_interval, 8 * PAGE_EVENTS)
        writer = ref()
        while writer is None:  # collected in a cycle (its weak references go first): close is on its way
            writer = next((doc for name, doc, _ in items if name == _CLOSE), None)
            if writer is None:
                items += buffer.take(flush_interval, 8 * PAGE_EVENTS)
        closing = writer._handle(items)
        if any(name == _FLUSH for name, _, _ in items):
            last_flush = time.monotonic()
        elif not closing and time.monotonic() - last_flush >= flush_interval:
            writer._flush_runs()
            last_flush = time.monotonic()
        del writer
        buffer.done(sum(item[2] for item in items), len(items))
        if closing:
            return


def _close_dropped(writer: Writer) -> None:
    if writer._open:
        logger.warning("%r was dropped without close(): its open runs end 'incomplete'", writer)
    try:
        writer.close()
    except Exception as err:
        logger.error("closing the dropped %r: %s", writer, err)
