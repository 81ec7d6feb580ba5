"""Which data keys a format writes: one filter in front of every format's sink.

A format's ``data_keys`` is ``"all"`` (the default), ``"arrays"`` (readings with a non-empty
``shape``: camera frames, spectra), ``"scalars"`` (the rest) or an explicit list of data key
names. ``time``, ``seq_num`` and a grid's indices always come along: they are not data keys.

The filter drops the keys a format does not select from each descriptor and from each event
page before the format's sink sees them. A stream with no selected key at all is left out of
that format. A name in an explicit list that no stream of the run declares is reported at the
run's stop, after everything else is written, so a typo is not silent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

from ._errors import ConfigurationError, DocumentError

__all__ = ["DataKeys", "SelectedSink", "Selection", "normalize_data_keys"]

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


class _Sink(Protocol):
    def __call__(self, name: str, doc: Any) -> Any: ...
    def flush(self) -> None: ...
    def finish(self, status: str) -> None: ...
    def note_error(self, err: BaseException) -> None: ...


class SelectedSink:
    """A run sink that sees only the selected data keys; everything else passes through."""

    def __init__(self, sink: _Sink, selection: Selection, label: str, run: str) -> None:
        self.sink = sink
        self.selection = selection
        self.label = label
        self.run = run
        self._keys: dict[str, frozenset[str] | None] = {}
        """descriptor uid -> the selected keys, ``None`` when every key is selected"""
        self._skipped: set[str] = set()
        """descriptors with no selected key: their events go nowhere"""
        self._seen: set[str] = set()

    def __call__(self, name: str, doc: Any) -> Any:
        if name == "descriptor":
            return self._descriptor(doc)
        if name in {"event", "event_page"}:
            descriptor = doc["descriptor"]
            if descriptor in self._skipped:
                return None
            keys = self._keys.get(descriptor)
            if keys is not None:
                doc = _only(doc, keys)
            return self.sink(name, doc)
        if name == "stop":
            result = self.sink(name, doc)
            self._check_names()
            return result
        return self.sink(name, doc)

    def _descriptor(self, doc: Any) -> Any:
        data_keys = doc.get("data_keys") or {}
        self._seen.update(data_keys)
        keys = [k for k, v in data_keys.items() if selected(self.selection, k, v)]
        if not keys:
            self._skipped.add(doc["uid"])
            return None
        if len(keys) == len(data_keys):
            self._keys[doc["uid"]] = None
            return self.sink("descriptor", doc)
        chosen = frozenset(keys)
        self._keys[doc["uid"]] = chosen
        narrowed = dict(doc)
        narrowed["data_keys"] = {k: data_keys[k] for k in keys}
        object_keys = doc.get("object_keys")
        if isinstance(object_keys, Mapping):
            narrowed["object_keys"] = {
                obj: [k for k in fields if k in chosen]
                for obj, fields in object_keys.items()
                if any(k in chosen for k in fields)
            }
        return self.sink("descriptor", narrowed)

    def _check_names(self) -> None:
        if isinstance(self.selection, tuple):
            missing = [k for k in self.selection if k not in self._seen]
            if missing:
                raise DocumentError(
                    f"run {self.run}: data_keys {missing} of the {self.label} output match no data key of "
                    f"any stream (the run has {sorted(self._seen)}); nothing of them was written: check "
                    "the names"
                )

    def flush(self) -> None:
        self.sink.flush()

    def finish(self, status: str) -> None:
        self.sink.finish(status)

    def note_error(self, err: BaseException) -> None:
        self.sink.note_error(err)


def _only(doc: Mapping[str, Any], keys: frozenset[str]) -> dict[str, Any]:
    """An event or event page with only ``keys`` in its per-key fields."""
    narrowed = dict(doc)
    for field in ("data", "timestamps", "filled"):
        values = doc.get(field)
        if isinstance(values, Mapping):
            narrowed[field] = {k: v for k, v in values.items() if k in keys}
    return narrowed
