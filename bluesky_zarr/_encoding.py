"""Metadata encoding: any document value to strict JSON.

Bluesky documents are plain Python in principle, but start documents in practice carry numpy
scalars and arrays, NaN, bytes, datetimes, tuples and sets. Zarr attributes must be strict JSON
(RFC 8259: no NaN literal), so every value goes through :func:`to_json` before it is stored:

=====================  ==============================================================
Python value           stored as
=====================  ==============================================================
numpy scalar           the matching Python ``int`` / ``float`` / ``bool`` / ``str``
numpy array            nested lists (its dtype is not kept)
NaN, +Inf, -Inf        the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``
                       (the same spelling Zarr v3 uses for fill values)
bytes, bytearray       ``{"base64": "<standard base64 text>"}``
datetime, date, time   ISO 8601 text (``datetime.isoformat()``)
tuple, list            list
set, frozenset         list, sorted when the members can be sorted
dict keys              text (``str(key)``); a key that is not text and whose text another
                       key of the mapping has already (``1`` beside ``"1"``) gets its type
                       added, ``"1 (int)"``, so that neither value is lost
text                   as it is; a lone surrogate (which UTF-8 cannot encode, and strict
                       JSON readers refuse) becomes U+FFFD
deeper than 64 levels  the JSON text of the rest, as one string (JSON readers of other
                       languages limit nesting; Python's recursion is limited too)
anything else          ``repr(value)``
=====================  ==============================================================

The encoding never raises: one odd value in a start document costs that value its type, never
the run its metadata.

Attributes (of Zarr nodes, HDF5 objects) also go through :func:`attribute`, so that every store
exports to NetCDF as it is (``ds.to_netcdf()``): NetCDF attributes hold only text, numbers and
flat lists of either. A value that is text, a number or a non-empty list of texts or of numbers
is stored as it is; ``True``/``False`` as ``1``/``0``; anything else (a document, a mapping,
``None``, a list of mappings) as its strict JSON text, which :func:`decode_attributes` (or
``json.loads``) turns back. Which attributes hold JSON text is fixed: :data:`JSON_ATTRIBUTES`.
"""

from __future__ import annotations

import base64
import datetime
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["JSON_ATTRIBUTES", "attribute", "decode_attributes", "dumps", "to_json"]

JSONValue = None | bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"]


def _float(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


MAX_DEPTH = 64
"""Values nested deeper than this are kept as one JSON text (see the module docstring)."""


def _text(value: str) -> str:
    """``value`` with a lone surrogate replaced by U+FFFD (a valid pair becomes its character)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


def _keys(mapping: Mapping[Any, Any]) -> list[str]:
    """The keys of ``mapping`` as distinct texts: one that is not text and whose text another key
    has already gets its type added (``1`` beside ``"1"`` is ``"1 (int)"``)."""
    taken = {_text(k) for k in mapping if isinstance(k, str)}
    names = []
    for key in mapping:
        if isinstance(key, str):
            names.append(_text(key))
            continue
        name = _text(str(key))
        if name in taken:
            name = f"{name} ({type(key).__name__})"
            while name in taken:
                name += "'"
        taken.add(name)
        names.append(name)
    return names


def _deep_text(value: Any) -> str:
    """The JSON text of a value nested too deep to convert item by item (``repr`` for what JSON
    has no spelling for, a cycle or a nesting beyond Python's recursion limit)."""
    try:
        return _text(json.dumps(value, default=repr))
    except (ValueError, TypeError, RecursionError):
        try:
            return _text(repr(value))
        except Exception:  # a nesting beyond the recursion limit, a broken __repr__
            return f"<{type(value).__name__} nested too deep to store>"


def to_json(value: Any, _depth: int = 0) -> JSONValue:
    """Return ``value`` as strict-JSON-safe Python (see the module docstring for the rules)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, np.generic):
        return to_json(value.item())
    if isinstance(value, np.ndarray):
        return to_json(value.tolist(), _depth)
    if isinstance(value, Mapping | list | tuple | set | frozenset) and _depth >= MAX_DEPTH:
        return _deep_text(value)
    if isinstance(value, Mapping):
        return {
            name: to_json(item, _depth + 1) for name, item in zip(_keys(value), value.values(), strict=True)
        }
    if isinstance(value, list | tuple):
        return [to_json(item, _depth + 1) for item in value]
    if isinstance(value, set | frozenset):
        members = list(value)
        try:
            members.sort()
        except TypeError:
            members.sort(key=repr)
        return [to_json(item, _depth + 1) for item in members]
    if isinstance(value, bytes | bytearray | memoryview):
        return {"base64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, complex):
        return [_float(value.real), _float(value.imag)]
    try:
        return repr(value)
    except Exception:  # a broken __repr__ must not break the run's metadata
        return f"<unrepresentable {type(value).__name__}>"


def dumps(value: Any) -> str:
    """Encode ``value`` with :func:`to_json` and serialize it as strict JSON text."""
    return json.dumps(to_json(value), allow_nan=False)


JSON_ATTRIBUTES = frozenset(
    {"start", "stop", "bluesky_zarr", "descriptors", "grid", "overflow", "data_key", "dtype_widened",
     "detector_files", "finalized", "gaps"}
)  # fmt: skip
"""The attributes of a store that may hold JSON text (documents and other nested values)."""


def _flat(value: JSONValue) -> bool:
    """Whether NetCDF holds ``value`` as an attribute: text, a number, or a list of only one of them."""
    if isinstance(value, bool):
        return False
    if isinstance(value, str | int | float):
        return True
    if isinstance(value, list) and value:
        return all(isinstance(v, str) for v in value) or all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in value
        )
    return False


def attribute(value: Any) -> JSONValue:
    """``value`` as an attribute NetCDF can hold (see the module docstring); strict JSON too."""
    encoded = to_json(value)
    if isinstance(encoded, bool):
        return int(encoded)
    return encoded if _flat(encoded) else json.dumps(encoded, allow_nan=False)


def decode_attributes(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """A node's attributes with the JSON text of :data:`JSON_ATTRIBUTES` turned back into values."""
    return {
        key: json.loads(value) if key in JSON_ATTRIBUTES and isinstance(value, str) else value
        for key, value in attrs.items()
    }
