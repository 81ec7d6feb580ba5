"""A writer service: documents published through bluesky's 0MQ proxy, written by one :class:`Writer`.

``serve(address, directory, *formats, **options)`` subscribes a ``Writer`` to a
``bluesky.callbacks.zmq.RemoteDispatcher`` at ``address`` (the proxy's output) and runs until it is
told to stop: SIGTERM (what systemd sends) or SIGINT, or :meth:`Service.stop` from another thread.
Then every document received is written, the runs still open end ``incomplete`` (never
``running``) and it returns. One log line per run at its start (uid, plan, outputs) and at its
stop (status, events, seconds). A document the writer cannot take (an output that exists already,
a full disk) is logged and the service goes on with the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Unpack

from .._errors import BlueskyZarrError, ConfigurationError
from .._naming import render_file_prefix
from ..sinks import Format
from ..storage import Target
from ._writer import Writer, WriterOptions

__all__ = ["Service", "serve"]

logger = logging.getLogger("bluesky_zarr.serve")

READY = "serving"
"""The first word of the line the service logs once it is subscribed."""


@dataclass
class _Run:
    """What the service logs of one run."""

    uid: str
    time: float
    events: int = 0
    descriptors: set[str] = field(default_factory=set)


class Service:
    """A :class:`Writer` fed by a ``RemoteDispatcher``; :meth:`run` it, :meth:`stop` it.

    Parameters
    ----------
    address
        The 0MQ proxy's output (where subscribers connect), e.g. ``"127.0.0.1:5578"`` or
        ``"tcp://host:5578"``.
    directory, *formats, **options
        As for :class:`Writer`: where the outputs go, the formats (objects or names), and the
        writer's options (``file_prefix``, ``flush_interval``, ...).
    prefix
        Only documents that a ``Publisher`` sent with this prefix (bytes); ``b""`` takes all.

    Attributes
    ----------
    writer : Writer
        The writer the documents go to.
    """

    def __init__(
        self,
        address: str | tuple[str, int],
        directory: Target,
        *formats: Format | str,
        prefix: bytes = b"",
        **options: Unpack[WriterOptions],
    ) -> None:
        try:
            import zmq  # noqa: F401
        except ImportError:
            raise ConfigurationError(
                "serve needs pyzmq, which bluesky's RemoteDispatcher uses: pip install 'bluesky-zarr[serve]'"
            ) from None
        self.address = address
        self.prefix = prefix
        self.writer = Writer(directory, *(formats or ("zarr",)), **options)
        self._loop: asyncio.AbstractEventLoop | None = None
        """the dispatcher's, made by :meth:`run`"""
        self._asked = threading.Lock()
        self._stop_asked = False
        self._stopping: str | None = None
        self._runs: dict[str, _Run] = {}
        self._run_of: dict[str, _Run] = {}
        """descriptor uid -> its run"""
        self._left_out: set[str] = set()
        """runs whose start the writer refused"""
        self._seen_late: set[str] = set()
        """runs whose stop came with no start: logged once each"""

    def __repr__(self) -> str:
        return f"Service({self.address!r}, {self.writer!r})"

    # --- the dispatcher's thread ------------------------------------------------------------------

    def __call__(self, name: str, doc: Any) -> None:
        """Take one document from the dispatcher: log what starts or ends a run, hand it to the writer."""
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("received %s %s", name, _which(name, doc))
        if name == "start":
            self._started(doc)
        elif name == "descriptor" and (run := self._runs.get(str(doc.get("run_start")))) is not None:
            self._run_of[str(doc.get("uid"))] = run
        elif name in {"event", "event_page"} and (run := self._run_of.get(str(doc.get("descriptor")))):
            run.events += 1 if name == "event" else len(doc.get("seq_num") or ())
        try:
            self.writer(name, doc)
        except BlueskyZarrError as err:  # the writer says what failed; the service goes on
            logger.error("%s", err)
            if name == "start":  # refused (its output exists already, ...): nothing of it is written
                self._left_out.add(str(doc.get("uid")))
                self._runs.pop(str(doc.get("uid")), None)
        if name == "stop":
            self._stopped(doc)

    def _started(self, doc: Mapping[str, Any]) -> None:
        uid = str(doc.get("uid"))
        self._runs[uid] = _Run(uid, float(doc.get("time", 0.0)))
        try:
            prefix = render_file_prefix(self.writer.file_prefix, doc)
            outputs = ", ".join(
                fmt.output_path(self.writer.target, prefix).location for fmt in self.writer.formats
            )
        except BlueskyZarrError as err:  # the writer refuses it too, and says why
            outputs = f"none ({err})"
        logger.info("run %s start: plan %s, outputs %s", uid, doc.get("plan_name", "?"), outputs)

    def _stopped(self, doc: Mapping[str, Any]) -> None:
        uid = str(doc.get("run_start"))
        run = self._runs.pop(uid, None)
        if run is None:  # the writer warned already: its start came before the service subscribed
            if uid in self._left_out:
                logger.info("run %s stop: not written (see the error at its start)", uid)
            elif uid not in self._seen_late:
                self._seen_late.add(uid)
                logger.info("run %s stop: not written, its start document came before this service", uid)
            return
        self._forget(run)
        seconds = float(doc.get("time", run.time)) - run.time
        expected = sum((doc.get("num_events") or {}).values())
        of = f" of {expected}" if expected != run.events else ""
        logger.info(
            "run %s stop: status %s, %d%s events, %.1f s",
            uid, doc.get("exit_status", "unknown"), run.events, of, seconds,
        )  # fmt: skip

    def _forget(self, run: _Run) -> None:
        self._run_of = {k: v for k, v in self._run_of.items() if v is not run}

    # --- running and stopping ---------------------------------------------------------------------

    def run(self) -> None:
        """Write what comes until :meth:`stop`, SIGTERM or SIGINT; then finish and return.

        Everything received is written; runs with no stop document yet end ``incomplete``.
        Signals are handled when this runs in the main thread.

        Raises
        ------
        BlueskyZarrError
            A write error met while finishing the open runs (each was logged as it came too).
        """
        from bluesky.callbacks.zmq import RemoteDispatcher

        with self._asked:
            loop = self._loop = asyncio.new_event_loop()
            if self._stop_asked:  # before it ran
                loop.call_soon(self._end, "stop()")
        dispatcher = RemoteDispatcher(self.address, prefix=self.prefix, loop=loop)
        dispatcher.subscribe(self)  # type: ignore[no-untyped-call]
        handled: dict[signal.Signals, Any] = {}
        """signal -> the handler it had before, put back at the end"""
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                handled[signum] = signal.getsignal(signum)
                loop.add_signal_handler(signum, self._end, signum.name)
        loop.call_soon(self._ready)
        try:
            dispatcher.start()  # type: ignore[no-untyped-call]
        except asyncio.CancelledError:
            if self._stopping is None:
                raise
        finally:
            for signum in handled:  # a second signal while finishing is ignored: the writes go on
                signal.signal(signum, signal.SIG_IGN)
            try:
                self._finish()
            finally:
                for signum, before in handled.items():
                    signal.signal(signum, before)

    def stop(self) -> None:
        """Stop :meth:`run` from another thread, as SIGTERM does; safe to call more than once."""
        with self._asked:
            self._stop_asked = True
            loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile: it is stopping already
                loop.call_soon_threadsafe(self._end, "stop()")

    def _ready(self) -> None:
        formats = ", ".join(f.label for f in self.writer.formats)
        logger.info("%s %s: documents from %s written as %s", READY, self.writer.target.location,
                    self.address, formats)  # fmt: skip

    def _end(self, why: str) -> None:
        """In the loop, after the documents received before it: stop taking more."""
        if self._stopping is not None:
            return
        self._stopping = why
        logger.info("%s: stopping; the documents received are written, open runs end incomplete", why)
        for task in asyncio.all_tasks(self._loop):  # the dispatcher's poll: it ends after what came
            task.cancel()

    def _finish(self) -> None:
        try:
            self.writer.close()
        finally:
            for run in self._runs.values():
                logger.info(
                    "run %s stop: status incomplete (no stop document came before %s), %d events",
                    run.uid, self._stopping or "the end", run.events,
                )  # fmt: skip
            self._runs.clear()
            self._run_of.clear()


def _which(name: str, doc: Any) -> str:
    """A document in a debug line: its uid, or an event's descriptor and seq_num."""
    if name == "event":
        return f"seq_num {doc.get('seq_num')} of descriptor {doc.get('descriptor')}"
    if name == "event_page":
        seq_nums = doc.get("seq_num") or [None]
        return f"seq_num {seq_nums[0]} to {seq_nums[-1]} of descriptor {doc.get('descriptor')}"
    return str(doc.get("uid"))


def serve(
    address: str | tuple[str, int],
    directory: Target,
    *formats: Format | str,
    prefix: bytes = b"",
    **options: Unpack[WriterOptions],
) -> None:
    """Write every run published to a bluesky 0MQ proxy, until SIGTERM or SIGINT.

    ``serve("127.0.0.1:5578", "/data", "zarr", "parquet", file_prefix="{start[scan_id]}")`` is the
    Python face of ``bluesky-zarr serve``: a :class:`Writer` subscribed to a
    ``bluesky.callbacks.zmq.RemoteDispatcher``. On SIGTERM or SIGINT every document received is
    written, runs still open end ``incomplete``, and it returns.

    Parameters
    ----------
    address
        The proxy's output, where subscribers connect (``"host:port"``).
    directory, *formats, **options
        As for :class:`Writer` (formats default to Zarr).
    prefix
        Only documents a ``Publisher`` sent with this prefix; ``b""`` takes all.
    """
    Service(address, directory, *formats, prefix=prefix, **options).run()


_OPTIONS = ("file_prefix", "overwrite", "buffer_bytes", "flush_interval", "on_error", "frame_timeout",
            "storage_options")  # fmt: skip
"""The writer's options a configuration file may set (beside address, directory, prefix, formats)."""


@dataclass(frozen=True)
class ServeConfig:
    """What a ``bluesky-zarr serve`` configuration file says; see :func:`read_config`."""

    address: str | None = None
    directory: str | None = None
    prefix: str = ""
    formats: tuple[Format, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)


def read_config(text: str, source: str = "the configuration") -> ServeConfig:
    """A ``serve`` configuration from TOML text.

    Top-level keys: ``address``, ``directory``, ``prefix``, ``formats`` (a list of names), and the
    writer's options (``file_prefix``, ``overwrite``, ``buffer_bytes``, ``flush_interval``,
    ``on_error``, ``frame_timeout``, ``storage_options``). A table per format holds that format's
    options, e.g. ``[zarr]`` with ``data_keys = "arrays"`` and ``codecs = {camera_image =
    "blosc-zstd"}``; a format with a table is written even if ``formats`` does not name it.

    Raises
    ------
    ConfigurationError
        The text is not TOML, or a key or an option is not one serve knows; the message names it.
    """
    import tomllib

    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigurationError(f"{source} is not TOML: {err}") from None
    names = table.pop("formats", [])
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    formats: dict[str, Format] = {}
    for name in [*names, *(k for k, v in table.items() if isinstance(v, dict) and k != "storage_options")]:
        label = str(name).lower()
        if label in formats:
            continue
        cls = Format.registry.get(label)
        if cls is None:
            known = ", ".join(sorted(Format.registry))
            raise ConfigurationError(f"{source}: unknown format {name!r}; give one of {known}")
        settings = table.pop(name, {})
        try:
            formats[label] = cls(**settings)
        except TypeError as err:
            raise ConfigurationError(f"{source}: [{name}] {err}") from None
    address, directory, prefix = (
        table.pop("address", None),
        table.pop("directory", None),
        table.pop("prefix", ""),
    )
    unknown = sorted(set(table) - set(_OPTIONS))
    if unknown:
        raise ConfigurationError(
            f"{source}: unknown key(s) {', '.join(unknown)}; give address, directory, prefix, formats, "
            f"{', '.join(_OPTIONS)}, or a table per format ([zarr], [parquet], ...)"
        )
    return ServeConfig(
        None if address is None else str(address),
        None if directory is None else str(directory),
        str(prefix),
        tuple(formats.values()),
        table,
    )
