"""Consecutive events (or event pages) of one descriptor as one event page.

Events that wait in the buffer one after the other for the same descriptor are handed to the
formats as one page: the cost of a scalar event is then a few list appends, not a trip through
every layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from .._documents import Event, EventPage

__all__ = ["PAGE_BYTES", "PAGE_EVENTS", "PAGE_PAGES", "merge_pages", "page_of"]

PAGE_EVENTS = 4096
"""At most this many waiting events of one descriptor become one page."""
PAGE_PAGES = 64
"""At most this many waiting event pages of one descriptor become one page."""
PAGE_BYTES = 32 * 1024**2
"""At most this many bytes of readings (or one document's, if more) become one page: a page's
readings are gathered into one array per data key, a copy, so this bounds what the writer holds
beyond its buffer however far behind it is (eight 2048 x 2048 frames, 512 of 256 x 256)."""


def page_of(events: Sequence[Event]) -> EventPage | None:
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
    return cast(EventPage, page)


def merge_pages(pages: Sequence[EventPage]) -> EventPage | None:
    """Consecutive event pages of one descriptor as one, or ``None`` if their keys differ."""
    first = pages[0]
    keys = first["data"].keys()
    if any(p["data"].keys() != keys for p in pages):
        return None
    filled_keys = {k for p in pages for k in p.get("filled") or ()}
    merged: dict[str, Any] = {
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
    return cast(EventPage, merged)
