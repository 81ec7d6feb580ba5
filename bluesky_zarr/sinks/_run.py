"""The run-sink base: what writing one run means in every format, written once.

A :class:`RunSink` takes the documents of one run (already routed to it and filled by the
writing layer) and owns what every format shares: the start and stop documents, the run's
``status`` and ``errors``, the data-key selection, one :class:`~bluesky_zarr.layout.StreamSchema`
per stream (computed from all its descriptors so far), the events of a descriptor that could not
be laid out (counted, not each raised), the check that external data was filled, and the
refusal of what no format can store yet. A format implements only what differs: how a stream is
opened and widened, how a page of events is written, how it is made visible and how it ends.

Every reading is checked against its data key before a format sees it
(:func:`~bluesky_zarr.layout.check_readings`): a key whose readings do not fit its dtype is
widened (a new schema, handed to the format's ``update_stream``); a reading that no dtype holds
costs only itself. It goes to the stream's quarantine, ``<stream>_quarantine``, an ordinary
stream of the run (``seq_num``, ``time``, ``data_key``, ``value`` as JSON text, ``reason``) that
every format writes like any other; the error is logged once per data key, and the run ends
``partial``. With ``on_error="raise"`` such a reading is an error instead, as any other.
"""

from __future__ import annotations

import logging
import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Generic, Literal, TypeVar

import event_model
import numpy as np

from .._documents import (
    Event,
    EventDescriptor,
    EventPage,
    RunStart,
    RunStop,
    StreamDatum,
    StreamResource,
    UnreadReading,
)
from .._encoding import JSONValue, dumps, to_json
from .._errors import ConfigurationError, DocumentError
from ..layout import StreamSchema, Widening, anchor_grid, check_readings, grid_from_start, stream_schema
from ..storage import Storage, WriterLock
from ._selection import EventT, Selection, narrow_descriptor, narrow_events, unmatched_names

__all__ = ["QUARANTINE_SUFFIX", "OnError", "Retakes", "RunSink"]

logger = logging.getLogger("bluesky_zarr")

OnError = Literal["quarantine", "raise"]
"""What a reading that cannot be stored costs: only itself (``"quarantine"``), or the scan."""

QUARANTINE_SUFFIX = "_quarantine"
"""The quarantine of stream ``primary`` is the stream ``primary_quarantine``."""

_QUARANTINE_KEYS = {
    "data_key": "the data key of the reading",
    "value": "the reading as JSON text",
    "reason": "why it could not be stored with its data key",
}

StreamT = TypeVar("StreamT")


class Retakes:
    """The seq_nums of one stream's rows so far, to find those a later row takes again.

    A paused and resumed plan is rewound by the RunEngine to its last checkpoint, and the
    readings taken again get the seq_nums of those they replace (bluesky rewinds its event
    counters too). Every row is kept; :attr:`seq_nums` lists the seq_nums taken again, so that a
    reader keeps, of the rows with one of them, the last. The rows of a quarantine share the
    seq_num of their event by design: for one, nothing is taken again.
    """

    def __init__(self, stream: str) -> None:
        self._seen: set[int] | None = None if stream.endswith(QUARANTINE_SUFFIX) else set()
        self.seq_nums: list[int] = []
        """seq_nums taken again, in the order they were"""

    def took(self, seq_nums: Iterable[int]) -> bool:
        """Note the seq_nums of new rows; whether one of them was taken again (for the first time)."""
        if self._seen is None:
            return False
        again = False
        for seq_num in seq_nums:
            if seq_num not in self._seen:
                self._seen.add(seq_num)
            elif seq_num not in self.seq_nums:
                self.seq_nums.append(seq_num)
                again = True
        return again


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
    on_error
        ``"quarantine"``: a reading that cannot be stored goes to the stream's quarantine and the
        run ends ``partial``; ``"raise"``: it is an error.
    """

    def __init__(
        self,
        start: RunStart,
        storage: Storage,
        *,
        label: str,
        selection: Selection,
        on_error: OnError = "quarantine",
    ) -> None:
        if on_error not in ("quarantine", "raise"):
            raise ConfigurationError(f"on_error must be 'quarantine' or 'raise', not {on_error!r}")
        self.uid = str(start.get("uid"))
        self.start_doc = start
        self.stop_doc: RunStop | None = None
        self.storage = storage
        self.label = label
        self.status = "running"
        self.errors: list[str] = []
        self.lost: list[str] = []
        """what the writer dropped before it reached this sink (a full ring, ``overflow="discard_oldest"``)"""
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
        self.on_error = on_error
        self._widenings: dict[str, dict[str, Widening]] = {}
        """stream name -> data key -> how it was widened for readings that did not fit"""
        self.quarantined: dict[str, dict[str, int]] = {}
        """stream name -> data key -> readings put in quarantine"""
        self.malformed: dict[str, dict[str, int]] = {}
        """stream name -> why -> events or pages refused whole (:meth:`refuse`); their readings are in
        the quarantine"""
        self._reported: set[tuple[str, str]] = set()
        """(stream, data key) whose conflict or quarantine was logged already"""
        self._stream_resources: dict[str, StreamResource] = {}
        self._read_files: dict[str, dict[str, list[dict[str, JSONValue]]]] = {}
        """stream name -> data key -> the detector files its readings were read from"""
        self._lock = WriterLock()
        self.gaps: dict[str, list[list[int]]] = {}
        """stream name -> the seq_nums of its events that never reached the writer, as
        ``[first, last]`` ranges (the writing layer finds them)"""

    def hold_output(self) -> None:
        """Hold the output for this writer until the run finishes (once it is created): a second
        writer, an ``overwrite`` or a ``finalize`` meanwhile is an :class:`OutputBusyError`."""
        self._lock = self.storage.lock(self.label)

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

    def publish_status(self) -> None:
        """Write the run's ``status`` where a reader of the running run finds it; by default
        nothing (a format that writes its status only at the end)."""

    def mark_unended(self, unended: bool) -> None:
        """Another run started while this one had had no stop (a callback before the writer that
        raised at the stop keeps it from the writer): say ``incomplete`` until a document of this
        run comes again (runs that overlap on purpose), then ``running``."""
        if not self._finished:
            self.status = "incomplete" if unended else "running"
            self.publish_status()

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
            self._stream_resources[doc["uid"]] = doc
        elif name == "stream_datum":
            self._read_from(doc)
        # start opened this sink; the writer reads the frames that resource and datum documents
        # point at into the events (its Filler, its DetectorFiles)

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
            schema = stream_schema(
                self.start_doc,
                [*earlier, narrowed],
                grid,
                self._widenings.get(name),
                self._read_files.get(name),
            )
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
        for key, conflict in schema.conflicts.items():
            self._report(name, key, f"{schema.where}: {conflict}; readings that do not fit the first "
                         "declaration are quarantined")  # fmt: skip

    def _prepared(self, doc: EventT, n: int) -> tuple[str, EventT] | None:
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
        return name, events

    def event_page(self, doc: EventPage) -> None:
        n = len(doc["seq_num"])
        prepared = self._prepared(doc, n)
        if prepared is None:
            return
        name, page = prepared
        self._anchor(doc["descriptor"], doc["seq_num"], doc["data"])
        page, refused = self._admitted(name, page, n)
        stream = self.streams[name]
        if not refused:
            self.write_page(stream, page)
            return
        for i, event in enumerate(event_model.unpack_event_page(page)):
            self.write_event(stream, _without(event, refused.get(i, {})))
        self._quarantine(name, page, refused)

    def event(self, doc: Event) -> None:
        prepared = self._prepared(doc, 1)
        if prepared is None:
            return
        name, event = prepared
        self._anchor(doc["descriptor"], [doc["seq_num"]], {k: [v] for k, v in doc["data"].items()})
        event, refused = self._admitted(name, event, None)
        self.write_event(self.streams[name], _without(event, refused.get(0, {})))
        if refused:
            self._quarantine(name, event_model.pack_event_page(event), refused)

    # --- readings that do not fit -----------------------------------------------------------------

    def _admitted(self, name: str, doc: EventT, n: int | None) -> tuple[EventT, dict[int, dict[str, str]]]:
        """Check the readings of an event (``n`` is ``None``) or a page of ``n`` events.

        A data key whose readings need a wider dtype is widened first. Returns the document (a
        page with its checked readings as arrays) and the readings refused: event position ->
        data key -> why.
        """
        schema = self.schemas[name]
        widened: dict[str, Widening] = {}
        refused: dict[int, dict[str, str]] = {}
        converted: dict[str, Any] = {}
        for key, raw in doc["data"].items():
            variable = schema.variables.get(key)
            if variable is None:  # the format reports a key no descriptor declares
                continue
            check = check_readings(raw, variable.dtype, variable.shape, n)
            if variable.external is not None:  # a frame the writer could not read says why
                for i, reading in enumerate([raw] if n is None else raw):
                    if isinstance(reading, UnreadReading):
                        check.refused[i] = reading.reason
                        check.values = None
            if check.dtype != variable.dtype:
                declared = variable.widening.declared if variable.widening else variable.dtype
                widened[key] = Widening(declared, check.dtype, _first_misfit(doc, key, variable.dtype, n))
            if check.values is not None and n is not None:
                converted[key] = check.values
            for i, why in check.refused.items():
                refused.setdefault(i, {})[key] = why
        if widened:
            self._widen(name, widened)
        if refused and self.on_error == "raise":
            i, reasons = next(iter(refused.items()))
            key, why = next(iter(reasons.items()))
            seq_num = doc["seq_num"] if n is None else doc["seq_num"][i]  # type: ignore[index]
            raise DocumentError(
                f"{schema.where}: data key {key!r} of the event with seq_num {seq_num} {why}; "
                "fix the device's describe() or its reading (with on_error='quarantine' such a "
                "reading is kept apart and the scan goes on)"
            )
        if converted:
            doc = {**doc, "data": {**doc["data"], **converted}}
        return doc, refused

    def _relayout(self, name: str) -> None:
        """The schema of a stream again, with what its readings showed (widenings, detector files,
        where a relative grid's motors started)."""
        schema = self.schemas[name]
        schema = stream_schema(
            self.start_doc,
            schema.descriptors,
            self.grid if schema.grid is not None else None,
            self._widenings.get(name),
            self._read_files.get(name),
        )
        self.update_stream(self.streams[name], schema)
        self.schemas[name] = schema

    def _read_from(self, doc: StreamDatum) -> None:
        """Record the detector file that a data key's readings are read from (once per file)."""
        resource = self._stream_resources.get(doc["stream_resource"])
        name = self._stream_of.get(doc["descriptor"])
        if resource is None or name is None or name not in self.streams:
            return
        key = str(resource.get("data_key"))
        if key not in self.schemas[name].variables:  # not selected for this format
            return
        seq_nums, indices = doc["seq_nums"], doc["indices"]
        if int(seq_nums["stop"]) <= int(seq_nums["start"]) and int(indices["stop"]) > int(indices["start"]):
            self.errors.append(
                f"stream {name!r}: frames {indices['start']} to {int(indices['stop']) - 1} of data key "
                f"{key!r} in {resource.get('uri')!r} belong to no event (a fly scan), so they were not "
                "copied; they are only in the detector's file"
            )
            return
        parameters: Any = resource.get("parameters") or {}
        source: dict[str, JSONValue] = {
            "uri": str(resource.get("uri")),
            "dataset": to_json(parameters.get("dataset")),
            "mimetype": str(resource.get("mimetype")),
        }
        files = self._read_files.setdefault(name, {}).setdefault(key, [])
        if source not in files:
            files.append(source)
            self._relayout(name)

    def _widen(self, name: str, widened: dict[str, Widening]) -> None:
        """Store data keys of a stream in wider dtypes from now on (earlier readings included)."""
        schema = self.schemas[name]
        self._widenings.setdefault(name, {}).update(widened)
        self._relayout(name)
        for key, widening in widened.items():
            logger.info(
                "%s: data key %r is stored as %s from now on (declared %s; seq_num %s did not fit)",
                schema.where, key, widening.dtype, widening.declared, widening.seq_num,
            )  # fmt: skip

    def _report(self, name: str, key: str, message: str) -> None:
        if (name, key) not in self._reported:
            self._reported.add((name, key))
            logger.warning(message)

    def _quarantine(self, name: str, page: EventPage, refused: dict[int, dict[str, str]]) -> None:
        """Keep the refused readings of a page in the stream's quarantine."""
        where = self.schemas[name].where
        rows = []
        for i, reasons in sorted(refused.items()):
            for key, why in reasons.items():
                seq_num = int(page["seq_num"][i])
                self._report(
                    name, key,
                    f"{where}: data key {key!r} of the event with seq_num {seq_num} {why}; the reading "
                    f"is kept in stream {name + QUARANTINE_SUFFIX!r} and the scan goes on (later ones are "
                    "counted)",
                )  # fmt: skip
                rows.append((seq_num, float(page["time"][i]), key, page["data"][key][i], why))
                counts = self.quarantined.setdefault(name, {})
                counts[key] = counts.get(key, 0) + 1
        self._keep(name, rows)

    def _keep(self, name: str, rows: list[tuple[int, float, str, Any, str]]) -> None:
        """Write ``(seq_num, time, data key, reading, reason)`` rows to the quarantine of stream ``name``."""
        qname = name + QUARANTINE_SUFFIX
        quid = f"{self.uid}/{qname}"
        if qname not in self.streams:
            descriptor: Any = {
                "uid": quid,
                "run_start": self.uid,
                "name": qname,
                "time": rows[0][1] if math.isfinite(rows[0][1]) else 0.0,
                "data_keys": {
                    k: {"dtype": "string", "shape": [], "source": "bluesky_zarr", "description": d}
                    for k, d in _QUARANTINE_KEYS.items()
                },
                "object_keys": {},
                "configuration": {},
                "hints": {},
            }
            schema = stream_schema(self.start_doc, [descriptor], None)
            self.streams[qname] = self.open_stream(schema)
            self.schemas[qname] = schema
            self._stream_of[quid] = qname
            self._keys[quid] = None
        for seq_num, time, key, reading, why in rows:
            event: Any = {
                "uid": f"{quid}/{seq_num}/{key}",
                "descriptor": quid,
                "seq_num": seq_num,
                "time": time,
                "data": {"data_key": key, "value": _json_text(reading), "reason": why},
                "timestamps": dict.fromkeys(_QUARANTINE_KEYS, time),
                "filled": {},
            }
            self.write_event(self.streams[qname], event)

    def refuse(self, name: str, doc: Any, why: str) -> None:
        """An event or page that lacks what writing it needs (``why`` says what): its readings go to
        its stream's quarantine (``seq_num`` 0 and ``time`` NaN where it has none), it is counted, and
        the run ends ``partial``; with ``on_error="raise"`` it is an error."""
        descriptor = doc.get("descriptor")
        stream = self._stream_of.get(descriptor) if isinstance(descriptor, str) else None
        seq_num, time, data = doc.get("seq_num"), doc.get("time"), doc.get("data")
        reason = f"the {name.replace('_', ' ')} {why}"
        if name == "event":
            reason = (
                f"the event with seq_num {seq_num!r:.40} {why}" if "seq_num" in doc else f"an event {why}"
            )
        where = self.schemas[stream].where if stream is not None else f"run {self.uid}"
        if self.on_error == "raise":
            raise DocumentError(
                f"{where}: {reason}; fix the document's source (with on_error='quarantine' its readings "
                "are kept apart and the scan goes on)"
            )
        if descriptor in self._skipped:  # none of its keys is written by this format
            return
        if stream is None:  # no stream to keep its readings in: the run ends partial, and says why
            lost = f"{where}: {reason}, so it belongs to no stream of the run: it was not written"
            logger.warning("%s; the run ends partial", lost)
            self.note_lost(lost)
            return
        keys = self._keys.get(str(descriptor))
        readings = dict(data) if isinstance(data, Mapping) else {}
        readings = {k: v for k, v in readings.items() if keys is None or k in keys} or {"": None}
        counts = self.malformed.setdefault(stream, {})
        why = f"the {name.replace('_', ' ')} {why}"
        counts[why] = counts.get(why, 0) + 1
        self._report(
            stream, why,
            f"{where}: {reason}; its readings are kept in stream {stream + QUARANTINE_SUFFIX!r} and the "
            "scan goes on (later ones are counted)",
        )  # fmt: skip
        seq = int(seq_num) if isinstance(seq_num, numbers.Integral) else 0
        at = float(time) if isinstance(time, numbers.Real) else float("nan")
        self._keep(stream, [(seq, at, key, reading, reason) for key, reading in readings.items()])

    def quarantine_summary(self) -> list[str]:
        """One line per data key that lost readings to the quarantine."""
        return [
            f"stream {name!r}: {count} reading(s) of data key {key!r} could not be stored and are in "
            f"stream {name + QUARANTINE_SUFFIX!r}"
            for name, counts in self.quarantined.items()
            for key, count in counts.items()
        ] + [
            f"stream {name!r}: {count} document(s) could not be written ({reason}); their readings are in "
            f"stream {name + QUARANTINE_SUFFIX!r}"
            for name, counts in self.malformed.items()
            for reason, count in counts.items()
        ]

    def _anchor(self, descriptor: str, seq_nums: Sequence[int], data: Mapping[str, Sequence[Any]]) -> None:
        """Before the first events of a stream on a relative grid are written, place the grid where
        they say its motors started (once; with every key, whatever the selection) and lay out
        every stream on it again, so that its setpoints are absolute positions from the start."""
        grid = self.grid
        if grid is None or grid.anchored or not grid.relative:
            return
        doc = self._descriptors.get(descriptor)
        if doc is None or str(doc.get("name", "primary")) not in grid.streams:
            return
        self.grid = anchor_grid(grid, [doc], seq_nums, data)
        for name, schema in list(self.schemas.items()):
            if schema.grid is not None:
                self._relayout(name)

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

    def note_gaps(self, stream: str, missing: Sequence[tuple[int, int]]) -> None:
        """Remember events of ``stream`` that never reached the writer (``(first, last)`` seq_nums);
        written as the run's ``gaps``, and a run that would end ``success`` ends ``partial``."""
        self.gaps.setdefault(stream, []).extend([int(first), int(last)] for first, last in missing)

    def note_lost(self, message: str) -> None:
        """Remember that documents of this run were dropped on the way: the run ends ``partial``, and
        ``errors`` says what was lost."""
        self.lost.append(message)

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
        quarantined = self.quarantine_summary()
        if quarantined:
            logger.warning("run %s ends partial: %s", self.uid, "; ".join(quarantined))
        self.status = (
            "fail"
            if self.errors
            else ("partial" if (quarantined or self.gaps or self.lost) and status == "success" else status)
        )
        self.errors.extend(self.lost)
        for step in (self.close, self.storage.sync, self._lock.release):
            try:
                step()
            except Exception as err:
                first = first or err
        if first is not None:
            raise first


def _without(event: Event, keys: dict[str, str]) -> Event:
    """``event`` without the readings of ``keys``."""
    if not keys:
        return event
    return {**event, "data": {k: v for k, v in event["data"].items() if k not in keys}}


def _first_misfit(doc: Any, key: str, dtype: np.dtype[Any], n: int | None) -> int | None:
    """The seq_num of the first reading of ``key`` in ``doc`` that does not fit ``dtype``."""
    if n is None:
        return int(doc["seq_num"])
    for reading, seq_num in zip(doc["data"][key], doc["seq_num"], strict=False):
        if check_readings(reading, dtype, np.shape(reading), None).dtype != dtype:
            return int(seq_num)
    return None


def _json_text(value: Any) -> str:
    if isinstance(value, UnreadReading):
        value = value.held
    try:
        return dumps(value)
    except (TypeError, ValueError):
        return dumps(repr(value))
