"""The bluesky documents the writers take, typed with event-model's own TypedDicts.

Documents are plain dicts at run time; these names let mypy check that each layer reads the
fields a document declares. Keys a plan adds beyond event-model's schema (a start document's
``shape``, ``grid``, ``motors``, ``plan_pattern_args``) are read through ``Mapping[str, Any]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from event_model.documents import (
    DataKey,
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
)

__all__ = [
    "DataKey",
    "Datum",
    "DatumPage",
    "Document",
    "DocumentName",
    "Event",
    "EventDescriptor",
    "EventPage",
    "Resource",
    "RunStart",
    "RunStop",
    "StreamDatum",
    "StreamResource",
    "UnreadReading",
]

DocumentName: TypeAlias = Literal[
    "start",
    "descriptor",
    "event",
    "event_page",
    "stop",
    "resource",
    "datum",
    "datum_page",
    "stream_resource",
    "stream_datum",
]

Document: TypeAlias = (
    RunStart
    | EventDescriptor
    | Event
    | EventPage
    | RunStop
    | Resource
    | Datum
    | DatumPage
    | StreamResource
    | StreamDatum
)


@dataclass(frozen=True)
class UnreadReading:
    """In an event's data, in place of a reading the writer could not load (from a detector's file,
    or through a Resource/Datum handler).

    The run sink keeps it in the stream's quarantine (``value`` what the event held instead: a
    datum id, or null; ``reason`` this reason), so a reading that cannot be loaded costs only itself.
    """

    reason: str
    held: Any = None
    """what the event's data held in its place (a datum id), kept so the reading can be loaded later"""
