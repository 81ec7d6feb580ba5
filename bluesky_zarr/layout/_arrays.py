"""The arrays of one stream, by name, role and attributes: one plan for every format that stores a
stream as named N-D arrays on its grid (the Zarr store, the HDF5 file). Pure, no I/O.

The provenance arrays come first (``time``, ``seq_num`` and, on a grid, the ``written`` mask),
then each grid dimension's setpoint coordinate (for a relative one also ``<dim>_offset``), then
one array per data key: named as the key, except a readback named like a grid dimension (whose
name is its setpoint coordinate's), which becomes ``<key>_readback``; a name taken already gets
``_data`` appended. Data arrays name the readbacks and offsets in a CF ``coordinates``
attribute, so that xarray takes them as coordinates. Each format adds only its storage (chunks,
codecs, shards, filters).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from .._encoding import JSONValue
from ._chunking import event_chunks
from ._grid import Grid
from ._schema import StreamSchema, Variable, safe_name

__all__ = [
    "OVERFLOW",
    "RESERVED",
    "SEQ_NUM",
    "TIME",
    "WRITTEN",
    "ArrayRole",
    "StreamArray",
    "default_chunks",
    "fill_value",
    "offset_name",
    "reading_nbytes",
    "stream_arrays",
]

TIME, SEQ_NUM, WRITTEN = "time", "seq_num", "written"
OVERFLOW = "overflow"
"""The group of a grid stream's events that do not fit its grid (or were superseded)."""
RESERVED = frozenset({TIME, SEQ_NUM, WRITTEN, OVERFLOW})
"""Names no data key's array takes, in any stream (a data key ``written`` is stored as ``written_data``)."""

ArrayRole = Literal["data", "readback", "setpoint", "time", "seq_num", "written"]


@dataclass(frozen=True)
class StreamArray:
    """One array of a stream: along the event dimensions (and a data key's reading dimensions), or,
    for a setpoint coordinate, along its one grid dimension with values the documents say."""

    name: str
    role: ArrayRole
    dtype: np.dtype[Any]
    attrs: dict[str, JSONValue]
    variable: Variable | None = None
    """The data key it stores (``data`` and ``readback`` arrays)."""
    dim: str | None = None
    """A setpoint coordinate's dimension."""
    values: np.ndarray | None = field(default=None, compare=False)
    """A setpoint coordinate's values."""


def fill_value(dtype: np.dtype[Any]) -> Any:
    """What an array holds where no reading came: NaN, ``False``, ``""`` or ``0``."""
    if dtype.kind == "f":
        return float("nan")
    if dtype.kind == "b":
        return False
    return "" if dtype.kind in "SUO" else 0


def reading_nbytes(dtype: np.dtype[Any], shape: tuple[int, ...]) -> int:
    """About how many bytes one reading of ``shape`` takes (text: 16 bytes a value)."""
    return max(1, (16 if dtype.kind in "SUO" else dtype.itemsize) * math.prod(shape))


def default_chunks(
    event_shape: tuple[int, ...], dtype: np.dtype[Any], shape: tuple[int, ...]
) -> tuple[int, ...]:
    """The default chunk of an array of readings of ``shape``: whole readings, one big one per
    chunk or small ones gathered (:func:`~bluesky_zarr.layout.event_chunks`)."""
    return tuple(max(1, c) for c in event_chunks(event_shape, reading_nbytes(dtype, shape)) + shape)


def _provenance(grid: bool) -> list[StreamArray]:
    arrays = [
        StreamArray(TIME, "time", np.dtype("float64"),
                    {"long_name": "event time", "units": "seconds since 1970-01-01",
                     "calendar": "proleptic_gregorian"}),
        StreamArray(SEQ_NUM, "seq_num", np.dtype("int64"),
                    {"long_name": "event sequence number (0: no event)"}),
    ]  # fmt: skip
    if grid:
        arrays.append(
            StreamArray(WRITTEN, "written", np.dtype("bool"),
                        {"long_name": "true where the grid point holds a complete event"})
        )  # fmt: skip
    return arrays


def offset_name(dim: str) -> str:
    """The coordinate that holds the offsets of a relative grid dimension."""
    return safe_name(f"{dim}_offset")


def _coordinate(name: str, dim: str, values: tuple[float, ...], attrs: dict[str, JSONValue]) -> StreamArray:
    return StreamArray(
        name, "setpoint", np.dtype("float64"), attrs, dim=dim, values=np.asarray(values, "float64")
    )


def _setpoints(grid: Grid) -> list[StreamArray]:
    """The setpoint coordinate of each grid dimension; for a relative one also ``<dim>_offset``.

    A relative dimension's coordinate holds absolute positions once the grid is anchored and its
    origin known (``origin`` attribute); until then, or when no event says the origin, the offsets.
    """
    arrays = []
    for axis in grid.axes:
        if axis.setpoints is None:
            continue
        units: dict[str, JSONValue] = {"units": axis.units} if axis.units else {}
        attrs: dict[str, JSONValue] = {"long_name": f"{axis.dim} setpoint", "relative": axis.relative}
        if axis.origin is not None:
            attrs["origin"] = axis.origin
        elif axis.offsets is not None:
            attrs["long_name"] = f"{axis.dim} setpoint offset (origin not known yet)"
            if grid.anchored:
                attrs["long_name"] = f"{axis.dim} setpoint offset (origin unknown)"
                attrs["origin_unknown"] = True
                attrs["comment"] = (
                    f"no event of the stream read where {axis.dim} was, so these are the plan's offsets, "
                    "not absolute positions"
                )
        arrays.append(_coordinate(axis.dim, axis.dim, axis.setpoints, {**attrs, **units}))
        if axis.offsets is not None:
            offset_attrs: dict[str, JSONValue] = {"long_name": f"{axis.dim} setpoint offset from its origin"}
            arrays.append(
                _coordinate(offset_name(axis.dim), axis.dim, axis.offsets, {**offset_attrs, **units})
            )
    return arrays


def stream_arrays(schema: StreamSchema) -> tuple[list[StreamArray], dict[str, str]]:
    """The arrays of one stream, in order, and data key -> array name."""
    grid = schema.grid
    arrays = {a.name: a for a in _provenance(grid is not None) + (_setpoints(grid) if grid else [])}
    keys: dict[str, str] = {}
    for key, variable in schema.variables.items():
        name = safe_name(f"{key}_readback" if key in schema.event_dims else key)
        while name in arrays or name in RESERVED:
            name += "_data"
        attrs: dict[str, JSONValue] = {"data_key": {"name": key, **variable.description}}
        if variable.units:
            attrs["units"] = variable.units
        if variable.widening is not None:
            attrs["dtype_widened"] = variable.widening.to_json()
        if variable.files:
            attrs["detector_files"] = list(variable.files)
        role: ArrayRole = "readback" if variable.role == "readback" else "data"
        arrays[name] = StreamArray(name, role, variable.dtype, attrs, variable)
        keys[key] = name
    offsets = [offset_name(a.dim) for a in grid.axes if a.offsets is not None] if grid else []
    coordinates = " ".join([*offsets, *(a.name for a in arrays.values() if a.role == "readback")])
    planned = [
        replace(a, attrs={**a.attrs, "coordinates": coordinates}) if coordinates and a.role == "data" else a
        for a in arrays.values()
    ]
    return planned, keys
