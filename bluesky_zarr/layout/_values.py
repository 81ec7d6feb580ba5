"""Readings as the dtype their descriptor declares, when nothing is lost: one rule for every format."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["lossless_cast"]


def lossless_cast(values: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray | None:
    """``values`` as ``dtype`` if no value changes, else ``None``.

    Any number becomes a float of the declared width (a float may round to a narrower float: the
    device declared that precision). Otherwise the cast must give back every value exactly: an
    ``ophyd`` motor that declared ``int64`` from its first reading and then reads ``0.5``, or an
    integer that overflows the declared width, is refused (``None``), never stored wrong.
    """
    if values.dtype == dtype:
        return values
    if values.dtype.kind not in "biuf":
        return None
    if dtype.kind == "f":
        return values.astype(dtype)
    with np.errstate(all="ignore"):
        cast = values.astype(dtype, casting="unsafe")
        same = np.array_equal(cast.astype(values.dtype), values, equal_nan=values.dtype.kind == "f")
    return cast if same else None
