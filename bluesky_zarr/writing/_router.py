"""Documents to the run they belong to, and each run's documents to every format, in the writer thread.

A lean stand-in for :class:`event_model.RunRouter` with its :class:`event_model.Filler`: the same
routing by run, descriptor and resource, with the Filler called only for descriptors that declare
external data keys (legacy Resource/Datum), and :class:`DetectorFiles` for those whose frames are
in a detector's own files (StreamResource/StreamDatum). Each run's :class:`RunFanOut` hands every
document to each format's sink, guarded, so one failing format stops no other; a page made of
several documents that a sink refuses is handed to it again one document at a time, so a bad
reading costs only its own. An event or page that lacks what writing it needs (no ``seq_num``, no
``time``) is refused on its own (:mod:`._well_formed`): the events it came with are written.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import event_model

from .._documents import (
    Datum,
    DatumPage,
    Event,
    EventDescriptor,
    EventPage,
    Resource,
    RunStart,
    RunStop,
    StreamDatum,
    StreamResource,
    UnreadReading,
)
from .._encoding import dumps
from .._errors import DocumentError
from .._units import size_text
from ..sinks import OnError, RunSink
from ._detector_files import DetectorFiles
from ._paging import merge_pages, page_of
from ._well_formed import well_formed_event, well_formed_page

__all__ = ["Router", "RouterOwner", "RunFanOut"]

logger = logging.getLogger("bluesky_zarr")


class RouterOwner(Protocol):
    """What the router needs of the writer that owns it."""

    handler_registry: dict[str, Callable[..., Any]]
    frame_timeout: float
    on_error: OnError

    def open_run(self, uid: str, start: RunStart) -> RunFanOut:
        """The sinks of a new run."""
        ...

    def record(self, err: BaseException, uid: str, name: str, label: str = "") -> None:
        """Remember an error, to be raised in the caller's thread at its next document."""
        ...


class RunFanOut:
    """One run's sinks, one per format; each is guarded, so one failing format stops no other."""

    __slots__ = (
        "detector_files", "external", "filler", "in_files", "left_out", "next_seq_num", "refused_descriptors",
        "sinks", "stream_names", "streamless", "uid", "unended", "unhandled", "unhandled_datums", "writer",
    )  # fmt: skip

    def __init__(self, writer: RouterOwner, uid: str, sinks: list[tuple[str, RunSink[Any]]]) -> None:
        self.writer = writer
        self.uid = uid
        self.sinks = sinks
        self.filler = event_model.Filler(writer.handler_registry, inplace=False)
        self.detector_files = DetectorFiles(writer.frame_timeout)
        self.external: dict[str, frozenset[str]] = {}
        """descriptor uid -> its data keys whose events may hold datum ids to fill (Resource/Datum)"""
        self.unhandled: dict[str, Resource] = {}
        """uid -> a resource whose spec no handler reads"""
        self.unhandled_datums: dict[str, str] = {}
        """datum id -> the uid of its resource, for the datums of :attr:`unhandled` resources"""
        self.in_files: dict[str, bool] = {}
        """descriptor uid -> whether some of its readings are in detector files (StreamResource)"""
        self.stream_names: dict[str, str] = {}
        """descriptor uid -> its stream's name"""
        self.next_seq_num: dict[str, int] = {}
        """stream name -> the seq_num its next event should have (the RunEngine counts per stream)"""
        self.refused_descriptors = 0
        """descriptors that had no uid or no data keys (:meth:`refuse_descriptor`)"""
        self.left_out = 0
        """events that name a descriptor the run never declared, after it refused one"""
        self.streamless: set[int] = set()
        """the seq_nums of events refused for naming no descriptor: no gap in any stream"""
        self.unended = False
        """another run started while this one had had no stop: its outputs say ``incomplete``
        until a document of it comes again (:meth:`RunSink.mark_unended`)"""

    def send(self, name: str, doc: Any) -> None:
        for label, sink in self.sinks:
            try:
                sink(name, doc)
            except Exception as err:
                self.fail(err, name, label, sink)

    def fail(self, err: BaseException, name: str, label: str, sink: RunSink[Any]) -> None:
        self.writer.record(err, self.uid, name, label)
        with contextlib.suppress(Exception):
            sink.note_error(err)

    def call(self, what: str, action: Callable[[RunSink[Any]], object]) -> None:
        for label, sink in self.sinks:
            try:
                action(sink)
            except Exception as err:
                self.fail(err, what, label, sink)

    def descriptor(self, doc: EventDescriptor) -> None:
        self.stream_names[doc["uid"]] = str(doc.get("name", "primary"))
        self.in_files[doc["uid"]] = self.detector_files.descriptor(doc)
        self.external[doc["uid"]] = frozenset(
            k
            for k, v in (doc.get("data_keys") or {}).items()
            if isinstance(v, Mapping) and v.get("external") and not str(v["external"]).startswith("STREAM:")
        )
        self.filler.descriptor(doc)
        self.send("descriptor", doc)

    def refuse_descriptor(self, doc: EventDescriptor) -> None:
        """A descriptor without a uid or data keys: no event can be matched to it. Raised in the scan,
        and recorded in each format, where the run ends ``partial``."""
        self.refused_descriptors += 1
        message = (
            f"run {self.uid}: the descriptor of stream {doc.get('name', 'primary')!r} has no 'uid' or no "
            "'data_keys', so no event can be matched to it and its events are left out. Fix the document's "
            "source, or export() the run from a saved copy with the descriptor repaired"
        )
        self.writer.record(DocumentError(message), self.uid, "descriptor")
        self.call("descriptor", lambda sink: sink.note_lost(message))

    def resource(self, doc: Resource) -> None:
        """Remember a resource; one whose spec no handler reads is reported here, once.

        Its readings are kept as datum ids in the quarantine (``on_error="raise"``: the scan stops).
        """
        self.filler.resource(doc)
        spec = doc.get("spec")
        if spec in self.writer.handler_registry:
            return
        self.unhandled[doc["uid"]] = doc
        message = (
            f"run {self.uid}: resource {doc['uid']} ({doc.get('root', '')}/{doc.get('resource_path', '')}) "
            f"has spec {spec!r}, which no handler reads; pass handler_registry={{{spec!r}: handler}} to the "
            "writer. "
        )
        if self.writer.on_error == "raise":
            self.writer.record(
                DocumentError(message + "on_error='raise': the run stops here"), self.uid, "resource"
            )
        else:
            logger.warning(
                "%sIts readings are kept as datum ids in each stream's quarantine, the run ends 'partial', "
                "and export() of the run with that handler stores them later",
                message,
            )

    def datum_page(self, doc: DatumPage) -> None:
        self.filler.datum_page(doc)
        if doc.get("resource") in self.unhandled:
            self.unhandled_datums.update(dict.fromkeys(doc["datum_id"], doc["resource"]))

    def stream_resource(self, doc: StreamResource) -> None:
        self.detector_files.stream_resource(doc)
        self.send("stream_resource", doc)

    def stream_datum(self, doc: StreamDatum) -> None:
        self.detector_files.stream_datum(doc)
        self.send("stream_datum", doc)

    def events(self, events: Sequence[Event]) -> None:
        """Consecutive events of one descriptor, as one page when they share their keys."""
        self.sequence(events[0]["descriptor"], [e.get("seq_num") for e in events])
        kept: list[Event] = []
        for doc in events:
            event, why = well_formed_event(doc)
            if event is None:
                self.refuse("event", doc, why)
            else:
                kept.append(event)
        if not kept:
            return
        events = kept
        descriptor = events[0]["descriptor"]
        if self.external.get(descriptor) or self.in_files.get(descriptor):
            self.send("event_page", self.fill(event_model.pack_event_page(*events)))
            return
        page = page_of(events) if len(events) > 1 else None
        if page is None:
            for event in events:
                self.send("event", event)
        else:
            self.send_merged(page, "event", events)

    def event_pages(self, pages: Sequence[EventPage]) -> None:
        """Consecutive event pages of one descriptor, as one page when they share their keys."""
        self.sequence(pages[0]["descriptor"], [s for p in pages for s in _listed(p.get("seq_num"))])
        kept: list[EventPage] = []
        for doc in pages:
            page, why = well_formed_page(doc)
            if page is None:
                self.refuse("event_page", doc, why)
            else:
                kept.append(page)
        if not kept:
            return
        pages = kept
        descriptor = pages[0]["descriptor"]
        if self.external.get(descriptor) or self.in_files.get(descriptor):
            for doc in pages:
                self.send("event_page", self.fill(doc))
            return
        page = merge_pages(pages) if len(pages) > 1 else None
        if page is None:
            for doc in pages:
                self.send("event_page", doc)
        else:
            self.send_merged(page, "event_page", pages)

    def refuse(self, name: str, doc: Any, why: str) -> None:
        """An event or page that cannot be written: each format keeps its readings in the quarantine."""
        self.call(name, lambda sink: sink.refuse(name, doc, why))

    def refuse_streamless(self, name: str, doc: Any) -> None:
        """An event or page that names no descriptor: refused, and its seq_nums are no gap (it came)."""
        ref = doc.get("descriptor")
        seq_nums = _listed(doc.get("seq_num")) if name == "event_page" else [doc.get("seq_num")]
        self.streamless.update(int(s) for s in seq_nums if isinstance(s, numbers.Integral))
        self.refuse(name, doc, "has no 'descriptor'" if ref is None else f"has 'descriptor' {ref!r:.40}")

    def sequence(self, descriptor: str, seq_nums: Sequence[Any]) -> None:
        """Find events lost before they reached the writer: a gap in their stream's ``seq_num``.

        bluesky's 0MQ publisher drops documents for a subscriber too slow to take them
        (bluesky#1177). A gap is warned and handed to every format, which records it in the run's
        ``gaps`` (the run ends ``partial``). A ``seq_num`` taken again (a scan resumed after a
        pause redoes its points) is no gap.
        """
        stream = self.stream_names.get(descriptor)
        if stream is None:
            return
        expected = self.next_seq_num.get(stream, 1)
        missing: list[tuple[int, int]] = []
        for value in seq_nums:
            if not isinstance(value, numbers.Integral):  # refused on its own: most likely the next one
                expected += 1
                continue
            seq_num = int(value)
            if seq_num > expected:
                missing.extend(self._unexcused(expected, seq_num - 1))
            expected = max(expected, seq_num + 1)
        self.next_seq_num[stream] = expected
        if missing:
            self.gap(stream, missing)

    def _unexcused(self, first: int, last: int) -> list[tuple[int, int]]:
        """The seq_nums ``first`` to ``last`` as ranges, without those of :attr:`streamless` events."""
        excused = sorted(n for n in self.streamless if first <= n <= last)
        ranges = []
        for n in [*excused, last + 1]:
            if n > first:
                ranges.append((first, n - 1))
            first = n + 1
        return ranges

    def gap(self, stream: str, missing: list[tuple[int, int]]) -> None:
        count = sum(last - first + 1 for first, last in missing)
        where = ", ".join(str(a) if a == b else f"{a} to {b}" for a, b in missing)
        logger.warning(
            "run %s: stream %r misses %d event(s), seq_num %s: they never reached the writer (bluesky's "
            "0MQ publisher drops documents for a subscriber too slow to take them); recorded as 'gaps' "
            "in the run's metadata, and the run ends 'partial'",
            self.uid, stream, count, where,
        )  # fmt: skip
        self.call("gaps", lambda sink: sink.note_gaps(stream, missing))

    def stop(self, doc: RunStop) -> None:
        """End the run; events its stop document counts that never came are gaps too."""
        if self.left_out:
            message = (
                f"run {self.uid}: {self.left_out} event(s) named a descriptor the run never declared (the "
                "one refused for having no uid, most likely) and were left out"
            )
            self.call("stop", lambda sink: sink.note_lost(message))
        counted: Any = doc.get("num_events") or {}
        for stream, expected in self.next_seq_num.items():  # streams with events: a stream of
            total = counted.get(stream)  # detector files only counts frames, not events
            if isinstance(total, int) and total >= expected and (missing := self._unexcused(expected, total)):
                self.gap(stream, missing)
        self.send("stop", doc)

    def send_merged(self, page: EventPage, name: str, parts: Sequence[Event] | Sequence[EventPage]) -> None:
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

    def fill(self, page: EventPage) -> EventPage:
        """Load external data: Resource/Datum through the handlers, detector files (StreamResource)
        through :class:`DetectorFiles`.

        A reading that cannot be loaded (no handler for its spec, an unknown datum, a handler
        that fails) becomes an :class:`~bluesky_zarr._documents.UnreadReading`, which the sinks
        keep in the quarantine: it costs only itself.
        """
        if self.external.get(page["descriptor"]):
            try:
                page = self.filler.event_page(page)
            except Exception:  # find what cannot be loaded, event by event and key by key
                page = event_model.pack_event_page(
                    *map(self._fill_event, event_model.unpack_event_page(page))
                )
        return self.detector_files.fill(page)

    def _fill_event(self, event: Event) -> Event:
        with contextlib.suppress(Exception):
            return self.filler.fill_event(event, inplace=False)  # type: ignore[no-any-return]
        event = copy.deepcopy(event)
        filled = event.setdefault("filled", {})
        for key in self.external[event["descriptor"]]:
            if key not in event["data"] or filled.get(key, False) is not False:
                continue
            try:
                loaded = self.filler.fill_event(event, include=[key], inplace=False)["data"][key]
            except Exception as err:
                loaded = UnreadReading(self._unloadable(event["data"][key], err), held=event["data"][key])
            event["data"][key] = loaded
            filled[key] = True
        return event

    def _unloadable(self, datum_id: Any, err: Exception) -> str:
        """Why the reading of datum ``datum_id`` could not be loaded."""
        resource = self.unhandled.get(self.unhandled_datums.get(datum_id, ""))
        if resource is not None:
            spec = resource.get("spec")
            return (
                f"could not be loaded: datum {datum_id!r} is in resource {resource['uid']} of spec {spec!r}, "
                f"which no handler reads (the datum id is kept; export the run with "
                f"handler_registry={{{spec!r}: handler}} to store the data)"
            )
        return f"could not be loaded from datum {datum_id!r} ({type(err).__name__}: {err})"

    def close(self) -> None:
        """Close the files the run's frames were read from."""
        with contextlib.suppress(Exception):
            self.filler.close()
        with contextlib.suppress(Exception):
            self.detector_files.close()


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


class Router:
    """Documents to the :class:`RunFanOut` of the run they belong to, by run, descriptor and resource."""

    def __init__(self, writer: RouterOwner) -> None:
        self.writer = writer
        self.runs: dict[str, RunFanOut] = {}
        self.by_descriptor: dict[str, RunFanOut] = {}
        self.by_resource: dict[str, RunFanOut] = {}
        self.by_stream_resource: dict[str, RunFanOut] = {}
        self.unknown: dict[str, int] = {}
        """a run this writer never saw start (it joined late) -> its documents left out so far"""
        self._parents: dict[str, str] = {}
        """descriptor or stream_resource uid of such a run -> how the run is named"""
        self._orphans: set[str] = set()
        """names of such runs known only by a descriptor or stream_resource so far (from their events
        or stream_datums): the next document that names an unknown run names theirs"""

    def __call__(self, name: str, doc: Any) -> None:
        handler = getattr(self, f"_{name}", None)
        if handler is None:
            raise DocumentError(f"a document named {name!r} is not a bluesky document this writer knows")
        handler(doc)

    def _start(self, doc: RunStart) -> None:
        uid = str(doc["uid"])
        if uid in self.runs:
            raise DocumentError(f"run {uid}: a second start document with the same uid; it was ignored")
        large = _large_metadata(doc)
        if large:
            logger.warning(
                "run %s: its start document holds %s; it is stored with the run's metadata in every format "
                "(and read by every reader that opens the run): keep large data in a stream, not in metadata",
                uid, large,
            )  # fmt: skip
        for other in self.runs.values():  # its stop may never come (the writer warned)
            if not other.unended:
                other.unended = True
                other.call("start", lambda sink: sink.mark_unended(True))
        run = self.runs[uid] = self.writer.open_run(uid, doc)
        run.send("start", doc)

    def _run_of(
        self, doc: Any, key: str, table: dict[str, RunFanOut], what: str, count: int = 1
    ) -> RunFanOut | None:
        """The run ``doc`` belongs to; ``None`` for a run whose start this writer never saw.

        Such a run (a service that joined late, a writer subscribed mid-scan) is reported once, as
        a warning at its first document, never raised: the scan goes on, and the writer writes the
        runs whose start it sees. Its documents are counted in :attr:`unknown`.
        """
        ref = doc.get(key)
        run = table.get(ref) if isinstance(ref, str) else None
        if run is not None:
            if run.unended:  # it goes on after all: it overlaps the run that started
                run.unended = False
                run.call(what, lambda sink: sink.mark_unended(False))
            return run
        if key == "run_start" and ref is None and len(self.runs) == 1:
            (run,) = self.runs.values()
            logger.warning(
                "run %s: a %s document without 'run_start' came while this run was the only one open; it is "
                "taken as this run's",
                run.uid, what,
            )  # fmt: skip
            return run
        if key == "run_start":
            name = str(ref)
            if name not in self.unknown and self._orphans:  # the run their documents belong to, at last
                self.unknown[name] = sum(self.unknown.pop(orphan) for orphan in self._orphans)
                self._parents = {k: name if v in self._orphans else v for k, v in self._parents.items()}
                self._orphans.clear()
        elif (
            key == "descriptor" and len(self.runs) == 1 and next(iter(self.runs.values())).refused_descriptors
        ):
            # the events of the descriptor the one open run refused (it had no uid): counted there
            next(iter(self.runs.values())).left_out += count
            return None
        else:  # an event names its descriptor, a stream_datum its stream_resource: not the run
            name = self._parents.get(str(ref), "")
            if not name:
                name = f"of {key} {ref}"
                self._orphans.add(name)
        if what in ("descriptor", "stream_resource"):
            self._parents[str(doc.get("uid"))] = name
        if name not in self.unknown:
            logger.warning(
                "run %s: %s %s document of a run whose start document this writer never received (was it "
                "subscribed after the run began?); nothing of this run is written, and its later documents "
                "are left out without another warning. The next run whose start it receives is written; "
                "export() writes a saved run whole",
                name, "an" if what[0] in "aeiou" else "a", what,
            )  # fmt: skip
        self.unknown[name] = self.unknown.get(name, 0) + count
        return None

    def _descriptor(self, doc: EventDescriptor) -> None:
        run = self._run_of(doc, "run_start", self.runs, "descriptor")
        if run is None:
            return
        if not isinstance(doc.get("uid"), str) or not isinstance(doc.get("data_keys"), Mapping):
            run.refuse_descriptor(doc)
            return
        self.by_descriptor[doc["uid"]] = run
        run.descriptor(doc)

    def events(self, name: str, docs: Sequence[Any]) -> None:
        """Consecutive events, or event pages, of one descriptor."""
        if not isinstance(docs[0].get("descriptor"), str) and len(self.runs) == 1:
            (only,) = self.runs.values()  # no descriptor: no stream, but the run is the one open
            for doc in docs:
                only.refuse_streamless(name, doc)
            return
        run = self._run_of(docs[0], "descriptor", self.by_descriptor, name, len(docs))
        if run is None:
            return
        if name == "event":
            run.events(docs)
        else:
            run.event_pages(docs)

    def _event(self, doc: Event) -> None:
        self.events("event", [doc])

    def _event_page(self, doc: EventPage) -> None:
        self.events("event_page", [doc])

    def _stop(self, doc: RunStop) -> None:
        run = self._run_of(doc, "run_start", self.runs, "stop")
        if run is None:
            return
        run.stop(doc)
        run.close()
        self.forget(run.uid)

    def _resource(self, doc: Resource) -> None:
        ref = doc.get("run_start")
        runs = [self.runs[ref]] if ref in self.runs else list(self.runs.values())
        for run in runs:
            self.by_resource[doc["uid"]] = run
            run.resource(doc)

    def _datum(self, doc: Datum) -> None:
        self._datum_page(event_model.pack_datum_page(doc))

    def _datum_page(self, doc: DatumPage) -> None:
        run = self.by_resource.get(doc.get("resource"))
        for each in [run] if run is not None else list(self.runs.values()):
            each.datum_page(doc)

    def _stream_resource(self, doc: StreamResource) -> None:
        run = self._run_of(doc, "run_start", self.runs, "stream_resource")
        if run is not None:
            self.by_stream_resource[doc["uid"]] = run
            run.stream_resource(doc)

    def _stream_datum(self, doc: StreamDatum) -> None:
        run = self._run_of(doc, "stream_resource", self.by_stream_resource, "stream_datum")
        if run is not None:
            run.stream_datum(doc)

    def _bulk_events(self, doc: Any) -> None:
        for page in event_model.bulk_events_to_event_pages(doc):
            self._event_page(page)

    def run_named_by(self, doc: Any) -> str:
        """The uid of the run a document belongs to, for an error; what it names if none is known."""
        if not isinstance(doc, Mapping):
            return "?"
        for key, table in (("run_start", self.runs), ("descriptor", self.by_descriptor),
                           ("stream_resource", self.by_stream_resource)):  # fmt: skip
            ref = doc.get(key)
            if isinstance(ref, str):
                run = table.get(ref)
                return run.uid if run is not None else self._parents.get(ref, f"of {key} {ref}")
        return str(doc.get("uid", "?"))

    def forget(self, uid: str) -> None:
        """Drop a finished run and everything that points to it."""
        run = self.runs.pop(uid, None)
        for table in (self.by_descriptor, self.by_resource, self.by_stream_resource):
            for key in [k for k, v in table.items() if v is run]:
                del table[key]


LARGE_START = 1_000_000
"""A start document larger than this (as JSON) is warned of: metadata is read whole by every reader."""


def _large_metadata(doc: Mapping[str, Any]) -> str:
    """What makes a start document larger than :data:`LARGE_START`, or ``""``."""
    sizes = {key: len(dumps(value)) for key, value in doc.items()}
    total = sum(sizes.values())
    if total <= LARGE_START:
        return ""
    key, size = max(sizes.items(), key=lambda item: item[1])
    return f"{size_text(total)} of JSON ({size_text(size)} of it in {key!r})"
