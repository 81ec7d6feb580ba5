"""Whether an event or event page holds what writing it needs, checked one document at a time.

A document that does not (no ``seq_num``, no ``time``, a page whose lists differ in length) is
refused on its own: the documents it was batched with are written, and its readings are kept in
its stream's quarantine with the reason (:meth:`~bluesky_zarr.sinks.RunSink.refuse`). What no
format stores (an event's ``uid``, its per-key ``timestamps``) is not required: an event without
them is written, with them empty.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any, cast

from .._documents import Event, EventPage

__all__ = ["well_formed_event", "well_formed_page"]


def well_formed_event(doc: Any) -> tuple[Event | None, str]:
    """``(event, "")``, with an empty ``uid`` or ``timestamps`` added if missing; or ``(None, why)``."""
    seq_num, time, data = doc.get("seq_num"), doc.get("time"), doc.get("data")
    if (
        isinstance(seq_num, numbers.Integral)
        and isinstance(time, numbers.Real)
        and isinstance(data, Mapping)
        and "uid" in doc
        and isinstance(doc.get("timestamps"), Mapping)
    ):
        return cast(Event, doc), ""  # the common case: five look-ups
    why = (
        _not_a(doc, "seq_num", numbers.Integral, "an integer")
        or _not_a(doc, "time", numbers.Real, "a number")
        or _not_a(doc, "data", Mapping, "a mapping of data key -> reading")
    )
    if why:
        return None, why
    timestamps = doc.get("timestamps")
    return cast(Event, {**doc, "uid": doc.get("uid", ""),
                        "timestamps": timestamps if isinstance(timestamps, Mapping) else {}}), ""  # fmt: skip


def well_formed_page(doc: Any) -> tuple[EventPage | None, str]:
    """``(page, "")``, with empty ``uid`` or ``timestamps`` added if missing; or ``(None, why)``."""
    seq_nums, times, data = doc.get("seq_num"), doc.get("time"), doc.get("data")
    if not _is_list(seq_nums) or not all(isinstance(s, numbers.Integral) for s in seq_nums):
        return None, "has no 'seq_num' list of integers"
    n = len(seq_nums)
    if not _is_list(times) or len(times) != n or not all(isinstance(t, numbers.Real) for t in times):
        return None, "has no 'time' list of numbers, one per seq_num"
    if not isinstance(data, Mapping):
        return None, "has no 'data' (a mapping of data key -> list of readings)"
    for key, readings in data.items():
        if not _is_list(readings) or len(readings) != n:
            return None, f"has not one reading of data key {key!r} per seq_num"
    uids, timestamps = doc.get("uid"), doc.get("timestamps")
    if _is_list(uids) and len(uids) == n and isinstance(timestamps, Mapping):
        return cast(EventPage, doc), ""
    uids = uids if _is_list(uids) and len(uids) == n else [""] * n
    timestamps = timestamps if isinstance(timestamps, Mapping) else {}
    return cast(EventPage, {**doc, "uid": uids, "timestamps": timestamps}), ""


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _not_a(doc: Mapping[str, Any], field: str, kind: type, what: str) -> str:
    """Why ``doc[field]`` is not a ``kind``; ``""`` if it is."""
    if field not in doc:
        return f"has no {field!r}"
    value = doc[field]
    return "" if isinstance(value, kind) else f"has {field!r} {value!r:.40}, not {what}"
