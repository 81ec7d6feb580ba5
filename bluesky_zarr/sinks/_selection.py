"""Which data keys a format writes: one filter in front of every format's sink.

A format's ``data_keys`` is ``"all"`` (the default), ``"arrays"`` (readings with a non-empty
``shape``: camera frames, spectra), ``"scalars"`` (the rest) or an explicit list of data key
names. ``time``, ``seq_num`` and a grid's indices always come along: they are not data keys.

The run-sink base drops the keys a format does not select from each descriptor and from each
event page before the format sees them. A stream with no selected key at all is left out of
that format. A name in an explicit list that no stream of the run declares is reported at the
run's stop, after everything else is written, so a typo is not silent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar, cast

from .._documents import Event, EventDescriptor, EventPage
from .._errors import ConfigurationError, DocumentError

__all__ = [
    "DataKeys",
    "EventT",
    "Selection",
    "narrow_descriptor",
    "narrow_events",
    "normalize_data_keys",
    "selected",
    "unmatched_names",
]

EventT = TypeVar("EventT", Event, EventPage)
"""An event or an event page: what a selection narrows."""

DataKeys = Literal["all", "arrays", "scalars"] | Sequence[str]
"""What a format writes: ``"all"``, ``"arrays"``, ``"scalars"`` or a list of data key names."""

Selection = Literal["all", "arrays", "scalars"] | tuple[str, ...]
"""A checked :data:`DataKeys`: an explicit list becomes a tuple (formats are frozen values)."""

_KINDS = ("all", "arrays", "scalars")


def normalize_data_keys(value: Any, label: str) -> Selection:
    """Check a ``data_keys`` choice and return it as a :data:`Selection`."""
    if isinstance(value, str):
        if value in _KINDS:
            return value  # type: ignore[return-value]
        raise ConfigurationError(
            f"{label}: data_keys={value!r} is not one of {', '.join(map(repr, _KINDS))}; to write one "
            f"data key, pass a list: data_keys=[{value!r}]"
        )
    if isinstance(value, Sequence | set | frozenset) and not isinstance(value, bytes):
        names = tuple(value)
        bad = [n for n in names if not isinstance(n, str) or not n]
        if not names or bad:
            raise ConfigurationError(
                f"{label}: data_keys must be 'all', 'arrays', 'scalars' or a non-empty list of data key "
                f"names, not {value!r}"
            )
        return tuple(dict.fromkeys(names))
    raise ConfigurationError(
        f"{label}: data_keys must be 'all', 'arrays', 'scalars' or a list of data key names, not {value!r}"
    )


def selected(selection: Selection, key: str, data_key: Mapping[str, Any]) -> bool:
    """Whether ``selection`` takes the data key ``key`` described by ``data_key``."""
    if selection == "all":
        return True
    if selection == "arrays":
        return bool(data_key.get("shape"))
    if selection == "scalars":
        return not data_key.get("shape")
    return key in selection


def narrow_descriptor(
    selection: Selection, doc: EventDescriptor
) -> tuple[EventDescriptor | None, frozenset[str] | None]:
    """The descriptor with only the selected data keys, and those keys (``None``: every key).

    The descriptor is ``None`` when it has no selected key: its stream is left out.
    """
    data_keys = doc.get("data_keys") or {}
    keys = [k for k, v in data_keys.items() if selected(selection, k, v)]
    if not keys:
        return None, None
    if len(keys) == len(data_keys):
        return doc, None
    chosen = frozenset(keys)
    narrowed = cast(EventDescriptor, dict(doc))
    narrowed["data_keys"] = {k: data_keys[k] for k in keys}
    object_keys = doc.get("object_keys")
    if isinstance(object_keys, Mapping):
        narrowed["object_keys"] = {
            obj: [k for k in fields if k in chosen]
            for obj, fields in object_keys.items()
            if any(k in chosen for k in fields)
        }
    return narrowed, chosen


def unmatched_names(selection: Selection, seen: set[str], run: str, label: str) -> DocumentError | None:
    """The error for names of an explicit list that no stream of the run declared, if any."""
    if not isinstance(selection, tuple):
        return None
    missing = [k for k in selection if k not in seen]
    if not missing:
        return None
    return DocumentError(
        f"run {run}: data_keys {missing} of the {label} output match no data key of any stream (the run "
        f"has {sorted(seen)}); nothing of them was written: check the names"
    )


def narrow_events(doc: EventT, keys: frozenset[str]) -> EventT:
    """An event or event page with only ``keys`` in its per-key fields."""
    narrowed: dict[str, Any] = dict(doc)
    for field in ("data", "timestamps", "filled"):
        values = doc.get(field)
        if isinstance(values, Mapping):
            narrowed[field] = {k: v for k, v in values.items() if k in keys}
    return cast(EventT, narrowed)
