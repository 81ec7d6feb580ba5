"""The run-sink base: what writing one run means in every format, written once.

A :class:`RunSink` takes the documents of one run (already routed to it and filled by the
writing layer) and owns what every format shares: the start and stop documents, the run's
``status`` and ``errors``, the data-key selection, one :class:`~bluesky_zarr.layout.StreamSchema`
per stream (computed from all its descriptors so far), the events of a descriptor that could not
be laid out (counted, not each raised), the check that external data was filled, and the
refusal of what no format can store yet. A format implements only what differs: how a stream is
opened and widened, how a page of events is written, how it is made visible and how it ends.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

import event_model

from .._documents import Event, EventDescriptor, EventPage, RunStart, RunStop
from .._errors import DocumentError
from ..layout import StreamSchema, anchor_grid, grid_from_start, stream_schema
from ..storage import Storage
from ._selection import EventT, Selection, narrow_descriptor, narrow_events, unmatched_names

__all__ = ["RunSink"]

StreamT = TypeVar("StreamT")


def check_filled(schema: StreamSchema, doc: Event | EventPage) -> None:
    """External keys of ``doc`` must hold their data, not datum ids (the writer fills them)."""
    filled: dict[str, Any] = dict(doc.get("filled") or {})
    for key, external in schema.external.items():
        if key in doc["data"]:
            flags = filled.get(key)
            if not (all(flags) if isinstance(flags, list) else bool(flags)):
                raise DocumentError(
                    f"{schema.where}: data key {key!r} is external ({external}, Resource/Datum) and the "
                    "event holds only a datum id; pass handler_registry={spec: handler} to the writer so "
                    "it can load the data"
                )


class RunSink(ABC, Generic[StreamT]):
    """One run in one format; subclasses say how a stream of ``StreamT`` is written.

    Parameters
    ----------
    start
        The run's start document.
    storage
        Where the run's output goes; synced when the run finishes.
    label
        The format's name, for messages.
    selection
        Which data keys the format writes.
    """

    def __init__(self, start: RunStart, storage: Storage, *, label: str, selection: Selection) -> None:
        self.uid = str(start.get("uid"))
        self.start_doc = start
        self.stop_doc: RunStop | None = None
        self.storage = storage
        self.label = label
        self.status = "running"
        self.errors: list[str] = []
        self.grid = grid_from_start(start)
        self.streams: dict[str, StreamT] = {}
        self.schemas: dict[str, StreamSchema] = {}
        """stream name -> its schema, from every descriptor of the stream so far"""
        self._selection = selection
        self._stream_of: dict[str, str] = {}
        """descriptor uid -> stream name"""
        self._keys: dict[str, frozenset[str] | None] = {}
        """descriptor uid -> the selected keys, ``None`` when every key is selected"""
        self._descriptors: dict[str, EventDescriptor] = {}
        """descriptor uid -> the descriptor as it came (every key: where a relative grid's motors are)"""
        self._skipped: set[str] = set()
        """descriptors with no selected key: their events go nowhere"""
        self._refused: dict[str, int] = {}
        """descriptor uid -> events not written because the descriptor could not be laid out"""
        self._seen: set[str] = set()
        self._finished = False

    # --- what each format does --------------------------------------------------------------------

    @abstractmethod
    def open_stream(self, schema: StreamSchema) -> StreamT:
        """The first descriptor of a stream came: create what holds it."""

    @abstractmethod
    def update_stream(self, stream: StreamT, schema: StreamSchema) -> None:
        """Another descriptor of the stream came (``schema`` holds every key so far)."""

    @abstractmethod
    def write_page(self, stream: StreamT, page: EventPage) -> None:
        """Write a page of events of the stream (only selected keys, external data filled)."""

    def write_event(self, stream: StreamT, event: Event) -> None:
        """Write one event; by default as a page of one."""
        self.write_page(stream, event_model.pack_event_page(event))

    @abstractmethod
    def flush(self, *, final: bool = False) -> None:
        """Make everything received so far visible; ``final``: the run is ending, hold nothing back."""

    @abstractmethod
    def close(self) -> None:
        """Write what ends the run (its ``status``, ``stop_doc`` and ``errors`` are set)."""

    # --- documents --------------------------------------------------------------------------------

    def __call__(self, name: str, doc: Any) -> None:
        if name == "event_page":
            self.event_page(doc)
        elif name == "event":
            self.event(doc)
        elif name == "descriptor":
            self.descriptor(doc)
        elif name == "stop":
            self.stop(doc)
        elif name == "stream_resource":
            raise DocumentError(
                f"run {self.uid}: stream_resource {doc.get('uid')} points at data in {doc.get('uri')!r}, "
                "which this writer cannot copy yet; write such runs with a writer that keeps the "
                "detector's own files"
            )
        # start opened this sink; resource and datum documents are for the writer's Filler

    def descriptor(self, doc: EventDescriptor) -> None:
        uid = doc["uid"]
        self._descriptors[uid] = doc
        self._seen.update(doc.get("data_keys") or {})
        narrowed, keys = narrow_descriptor(self._selection, doc)
        if narrowed is None:
            self._skipped.add(uid)
            return
        name = str(doc.get("name", "primary"))
        earlier = self.schemas[name].descriptors if name in self.schemas else ()
        grid = self.grid if self.grid is not None and name in self.grid.streams else None
        try:
            schema = stream_schema(self.start_doc, [*earlier, narrowed], grid)
            if name in self.streams:
                self.update_stream(self.streams[name], schema)
            else:
                self.streams[name] = self.open_stream(schema)
        except Exception:
            self._refused[uid] = 0
            raise
        self.schemas[name] = schema
        self._stream_of[uid] = name
        self._keys[uid] = keys

    def _prepared(self, doc: EventT, n: int) -> tuple[StreamT, EventT] | None:
        """The stream of ``n`` events of a descriptor, and the events with only the selected keys,
        their external data checked; ``None`` for events that go nowhere."""
        descriptor = doc["descriptor"]
        if descriptor in self._skipped:
            return None
        if descriptor in self._refused:  # its descriptor's error says why; count, do not repeat
            self._refused[descriptor] += n
            return None
        name = self._stream_of.get(descriptor)
        if name is None:
            raise DocumentError(f"run {self.uid}: an event refers to unknown descriptor {descriptor}")
        keys = self._keys[descriptor]
        events = narrow_events(doc, keys) if keys is not None else doc
        schema = self.schemas[name]
        if schema.external:
            check_filled(schema, events)
        return self.streams[name], events

    def event_page(self, doc: EventPage) -> None:
        prepared = self._prepared(doc, len(doc["seq_num"]))
        if prepared is not None:
            self._anchor(doc["descriptor"], doc["seq_num"], doc["data"])
            self.write_page(*prepared)

    def event(self, doc: Event) -> None:
        prepared = self._prepared(doc, 1)
        if prepared is not None:
            self._anchor(doc["descriptor"], [doc["seq_num"]], {k: [v] for k, v in doc["data"].items()})
            self.write_event(*prepared)

    def _anchor(self, descriptor: str, seq_nums: Sequence[int], data: Mapping[str, Sequence[Any]]) -> None:
        """Before the first events of a stream on a relative grid are written, place the grid where
        they say its motors started (once; with every key, whatever the selection) and lay out
        every stream on it again, so that its setpoints are absolute positions from the start."""
        grid = self.grid
        if grid is None or grid.anchored or not grid.relative:
            return
        doc = self._descriptors[descriptor]
        if str(doc.get("name", "primary")) not in grid.streams:
            return
        self.grid = anchor_grid(grid, [doc], seq_nums, data)
        for name, schema in self.schemas.items():
            if schema.grid is not None:
                schema = stream_schema(self.start_doc, schema.descriptors, self.grid)
                self.update_stream(self.streams[name], schema)
                self.schemas[name] = schema

    def stop(self, doc: RunStop) -> None:
        self.stop_doc = doc
        self.finish(str(doc.get("exit_status", "unknown")))
        unmatched = unmatched_names(self._selection, self._seen, self.uid, self.label)
        if unmatched is not None:
            raise unmatched

    # --- the writer's calls -----------------------------------------------------------------------

    def note_error(self, err: BaseException) -> None:
        """Remember that writing this run failed, so that its status says so when it finishes."""
        self.errors.append(str(err))

    def finish(self, status: str) -> None:
        """Write what is left, record ``status`` and make the run durable; once.

        A run whose writing failed anywhere is marked ``"fail"`` whatever the RunEngine said, so
        that its status never promises more than the output holds; ``errors`` says what failed.
        """
        if self._finished:
            return
        self._finished = True
        first: BaseException | None = None
        try:  # the data durable first, so the final status never vouches for what is not on disk
            self.flush(final=True)
            self.storage.sync()
        except Exception as err:
            first = err
            self.errors.append(str(err))
        for descriptor, count in self._refused.items():
            self.errors.append(f"{count} event(s) of descriptor {descriptor} were not written: see above")
        self.status = "fail" if self.errors else status
        for step in (self.close, self.storage.sync):
            try:
                step()
            except Exception as err:
                first = first or err
        if first is not None:
            raise first
