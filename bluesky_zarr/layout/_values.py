"""Readings against their data key's dtype and shape: kept as they are, widened, or refused.

One rule for every format. A reading is stored as the dtype its descriptor declares when no value
changes (:func:`lossless_cast`). When it does not fit, the data key is *widened* to the smallest
dtype that holds both (:func:`widened_dtype`: an ``ophyd`` motor that declared ``int64`` from its
first reading and then reads ``0.5`` becomes ``float64``); only a reading that no number dtype
can hold with its declared shape (text into a number, a changed shape, ``None``) is refused, and
refused alone (:func:`check_readings` says which events).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._errors import DocumentError

__all__ = ["ReadingsCheck", "check_readings", "lossless_cast", "readings_array", "widened_dtype"]

_NUMBERS = "biuf"


def lossless_cast(values: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray | None:
    """``values`` as ``dtype`` if no value changes, else ``None``.

    Any number becomes a float of the declared width (a float may round to a narrower float: the
    device declared that precision). A float never becomes an integer (``2.0`` read by a motor
    declared ``int64`` from its first position says the key holds floats). Otherwise the cast
    must give back every value exactly: an integer that overflows the declared width is refused
    (``None``), never stored wrong.
    """
    if values.dtype == dtype:
        return values
    if values.dtype.kind not in _NUMBERS:
        return None
    if dtype.kind == "f":
        return values.astype(dtype)
    if values.dtype.kind == "f":  # a float reading, even a whole one, makes its key a float key
        return None
    if values.size:
        low, high = (0, 1) if dtype.kind == "b" else (np.iinfo(dtype).min, np.iinfo(dtype).max)
        if values.min() < low or values.max() > high:  # numpy compares across signedness exactly
            return None
    with np.errstate(all="ignore"):
        cast = values.astype(dtype, casting="unsafe")
        same = np.array_equal(cast.astype(values.dtype), values)
    return cast if same else None


def widened_dtype(declared: np.dtype[Any], values: np.ndarray) -> np.dtype[Any] | None:
    """The smallest dtype that holds both ``declared`` and every one of ``values``, or ``None``.

    Booleans, integers and floats widen by numpy's promotion (``int32`` and ``int64``: ``int64``;
    an integer and a float: a float wide enough for both; ``uint64`` and ``int64``: ``float64``);
    an integer that needs more bits than it was declared with, by its own values. Text, objects
    and anything but numbers do not widen.
    """
    if declared.kind not in _NUMBERS or values.dtype.kind not in _NUMBERS:
        return None
    found = values.dtype
    if found.kind in "iu" and values.size:  # integers by their values: -1 needs int8, not int64
        found = np.result_type(np.min_scalar_type(values.min()), np.min_scalar_type(values.max()))
    promoted = np.result_type(declared, found)
    if declared.kind != "f" and found.kind != "f" and promoted.kind == "f":
        promoted = np.dtype("int64")  # uint64 and int8 promote to a float; try the widest integer
    for candidate in (promoted, np.dtype("float64")):
        if np.can_cast(declared, candidate, "safe") and lossless_cast(values, candidate) is not None:
            return np.dtype(candidate)
    return None


def _as_array(raw: Any) -> np.ndarray | None:
    try:
        values = np.asarray(raw)
    except (TypeError, ValueError):  # readings of different shapes
        return None
    return values


@dataclass
class ReadingsCheck:
    """What :func:`check_readings` found for the readings of one data key."""

    dtype: np.dtype[Any]
    """The dtype that holds every reading kept: the declared one, or a wider one."""
    values: np.ndarray | None = None
    """All readings as one array of ``dtype`` when every one is kept (``None`` otherwise)."""
    refused: dict[int, str] = field(default_factory=dict)
    """Position of a refused reading -> why it cannot be stored (``"holds ..."``)."""


def check_readings(raw: Any, dtype: np.dtype[Any], shape: tuple[int, ...], n: int | None) -> ReadingsCheck:
    """Check the readings of one data key against its ``dtype`` and ``shape``.

    ``raw`` is one reading (``n`` is ``None``) or the ``n`` readings of an event page. Text keys
    take anything (stored as its text). Each reading that fits no number dtype, or has another
    shape, is refused by position; the others decide whether the key must widen.
    """
    if dtype.kind in "SUO":
        return ReadingsCheck(dtype)
    expected = shape if n is None else (n, *shape)
    values = _as_array(raw)
    if values is not None and values.shape == expected and values.dtype.kind in _NUMBERS:
        cast = lossless_cast(values, dtype)
        if cast is not None:
            return ReadingsCheck(dtype, cast)
        wider = widened_dtype(dtype, values)
        if wider is not None:
            return ReadingsCheck(wider, values.astype(wider))
    readings = [raw] if n is None else list(raw)
    refused: dict[int, str] = {}
    kept: list[np.ndarray] = []
    for i, reading in enumerate(readings):
        one = _as_array(reading)
        if one is None or one.dtype.kind not in _NUMBERS:
            kind = "readings of different lengths" if one is None else f"{type(reading).__name__} value"
            refused[i] = f"holds a {kind} where {dtype} numbers are declared"
        elif one.shape != shape:
            refused[i] = (
                f"holds a reading of shape {list(one.shape)} where the descriptor declares {list(shape)}"
            )
        else:
            kept.append(one)
    wide = dtype
    for one in kept:
        if lossless_cast(one, wide) is None:
            wide = widened_dtype(wide, one) or wide  # numbers always widen: never ``None`` here
    return ReadingsCheck(wide, None, refused)


def readings_array(
    key: str | None, dtype: np.dtype[Any], reading_shape: tuple[int, ...], raw: Any, n: int, where: str
) -> np.ndarray:
    """The ``n`` readings of one data key in an event page as an ``(n, *reading_shape)`` array of
    ``dtype`` (text as an object array of ``str``), for a format to store.

    Raises
    ------
    DocumentError
        The readings have another shape than declared, or values that ``dtype`` does not hold.
    """
    if dtype.kind in "SUO":
        text = np.empty(n, dtype=object)
        text[:] = [str(v) for v in raw]
        return text
    try:
        values = np.asarray(raw)
    except (TypeError, ValueError):  # readings of different shapes
        values = np.asarray(raw, dtype=object)
    if values.shape != (n, *reading_shape):
        raise DocumentError(
            f"{where}: data key {key!r} has readings of shape {list(values.shape[1:])}, but its "
            f"descriptor declares {list(reading_shape)}; fix the device's describe() or its reading"
        )
    cast = lossless_cast(values, dtype)
    if cast is None:
        raise DocumentError(
            f"{where}: data key {key!r} holds {values.dtype} values that do not fit its declared "
            f"dtype {dtype}; declare dtype_numpy in describe() to match the readings"
        )
    return cast
