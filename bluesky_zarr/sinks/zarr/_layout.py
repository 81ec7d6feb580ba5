"""The Zarr mapping of a stream schema: the arrays of one stream group (pure, no I/O).

From a :class:`~bluesky_zarr.layout.StreamSchema` and the user's :class:`ZarrOptions` comes a
:class:`StreamLayout`: every array of the group with its name, dimensions, shape, chunks, dtype,
codecs, shards and attributes. The provenance arrays (``time``, ``seq_num``, and on a grid the
``written`` mask) and the setpoint coordinates come first; then one array per data key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from ..._documents import EventDescriptor
from ..._encoding import JSONValue
from ...codecs import IMAGE_DEFAULT, SMALL_DEFAULT, CodecChain, resolve_codecs
from ...layout import (
    EVENT_DIM,
    FRAME_BYTES,
    Grid,
    StreamSchema,
    Variable,
    event_chunks,
    resolve_chunks,
    resolve_shards,
    safe_name,
)
from ._options import ZarrOptions

__all__ = [
    "OVERFLOW_GROUP",
    "SEQ_NUM",
    "TIME",
    "WRITTEN",
    "ArraySpec",
    "StreamLayout",
    "overflow_layout",
    "zarr_layout",
]

OVERFLOW_GROUP = "overflow"
TIME, SEQ_NUM, WRITTEN = "time", "seq_num", "written"

ArrayRole = Literal["data", "readback", "setpoint", "time", "seq_num", "written"]


@dataclass(frozen=True)
class ArraySpec:
    """One array of a stream group: everything needed to create it, nothing about writing it."""

    name: str
    role: ArrayRole
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: np.dtype[Any]
    fill_value: Any
    attrs: dict[str, JSONValue]
    codecs: CodecChain
    """How each chunk is encoded (arrays the user has no say in: stored plain)."""
    reading_shape: tuple[int, ...] = ()
    """The shape of one reading: the trailing part of ``shape``."""
    data_key: str | None = None
    values: np.ndarray | None = field(default=None, compare=False)
    """Values known from the documents alone (setpoint coordinates), written when created."""
    shards: tuple[int, ...] | None = None
    """The shape of one shard (a multiple of ``chunks``), or ``None`` when chunks are objects."""

    @property
    def event_ndim(self) -> int:
        """How many leading dimensions index events (the grid's, or the one event dimension)."""
        return len(self.dims) - len(self.reading_shape)


@dataclass(frozen=True)
class StreamLayout:
    """The arrays of one stream group; ``grid`` is ``None`` for streams that grow along ``time``."""

    name: str
    grid: Grid | None
    arrays: dict[str, ArraySpec]
    keys: dict[str, str]
    """data key -> array name"""
    descriptors: tuple[EventDescriptor, ...]


def _fill_value(dtype: np.dtype[Any]) -> Any:
    if dtype.kind == "f":
        return float("nan")
    if dtype.kind == "b":
        return False
    if dtype.kind in "SUO":
        return ""
    return 0


def _reading_nbytes(dtype: np.dtype[Any], shape: tuple[int, ...]) -> int:
    itemsize = dtype.itemsize if dtype.kind not in "SUO" else 16
    return max(1, itemsize * math.prod(shape))


def _array(
    name: str,
    role: ArrayRole,
    event_dims: tuple[str, ...],
    event_shape: tuple[int, ...],
    dtype: np.dtype[Any],
    attrs: dict[str, JSONValue],
    variable: Variable | None = None,
    options: ZarrOptions | None = None,
    where: str = "",
) -> ArraySpec:
    """One array; for a data key (``variable``), ``options`` may change its codecs, chunks and shards."""
    reading_dims = variable.dims if variable is not None else ()
    reading_shape = variable.shape if variable is not None else ()
    dims, shape = event_dims + reading_dims, event_shape + reading_shape
    reading_nbytes = _reading_nbytes(dtype, reading_shape)
    chunks = tuple(max(1, c) for c in event_chunks(event_shape, reading_nbytes) + reading_shape)
    codecs, shards = resolve_codecs(SMALL_DEFAULT, dtype, where=f"array {name!r}"), None
    if variable is not None:
        key = variable.key
        where = f"{where}, data key {key!r}"
        options = options or ZarrOptions()
        chunks = resolve_chunks(options.chunks.get(key), dims, shape, chunks, where=where)
        chunk_nbytes = _reading_nbytes(dtype, chunks[len(event_shape) :]) * math.prod(
            chunks[: len(event_shape)]
        )
        shards = resolve_shards(
            options.shards.get(key), dims, shape, chunks, chunk_nbytes, len(reading_shape), where=where
        )
        default = IMAGE_DEFAULT if reading_nbytes >= FRAME_BYTES and dtype.kind in "biuf" else SMALL_DEFAULT
        codecs = resolve_codecs(options.codecs.get(key, default), dtype, where=where)
    return ArraySpec(
        name=name,
        role=role,
        dims=dims,
        shape=shape,
        chunks=chunks,
        dtype=dtype,
        fill_value=_fill_value(dtype),
        attrs=attrs,
        reading_shape=reading_shape,
        data_key=variable.key if variable is not None else None,
        codecs=codecs,
        shards=shards,
    )


def _provenance(event_dims: tuple[str, ...], event_shape: tuple[int, ...], grid: bool) -> list[ArraySpec]:
    arrays = [
        _array(TIME, "time", event_dims, event_shape, np.dtype("float64"),
               {"long_name": "event time", "units": "seconds since 1970-01-01",
                "calendar": "proleptic_gregorian"}),
        _array(SEQ_NUM, "seq_num", event_dims, event_shape, np.dtype("int64"),
               {"long_name": "event sequence number (0: no event)"}),
    ]  # fmt: skip
    if grid:
        arrays.append(
            _array(WRITTEN, "written", event_dims, event_shape, np.dtype("bool"),
                   {"long_name": "true where the grid point holds a complete event"})
        )  # fmt: skip
    return arrays


def _coordinate(name: str, dim: str, values: tuple[float, ...], attrs: dict[str, JSONValue]) -> ArraySpec:
    """A 1-D coordinate along a grid dimension whose values the documents say (one small chunk)."""
    return ArraySpec(
        name=name,
        role="setpoint",
        dims=(dim,),
        shape=(len(values),),
        chunks=(len(values),),
        dtype=np.dtype("float64"),
        fill_value=float("nan"),
        attrs=attrs,
        codecs=resolve_codecs(None, np.dtype("float64"), where=f"array {name!r}"),
        values=np.asarray(values, dtype="float64"),
    )


def _offset_name(dim: str) -> str:
    """The coordinate that holds the offsets of a relative grid dimension."""
    return safe_name(f"{dim}_offset")


def _setpoints(grid: Grid) -> list[ArraySpec]:
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
            name = _offset_name(axis.dim)
            offset_attrs: dict[str, JSONValue] = {"long_name": f"{axis.dim} setpoint offset from its origin"}
            arrays.append(_coordinate(name, axis.dim, axis.offsets, {**offset_attrs, **units}))
    return arrays


def zarr_layout(schema: StreamSchema, options: ZarrOptions | None = None) -> StreamLayout:
    """The arrays of one stream group, from its schema and the user's codecs, chunks and shards.

    A data key is an array of its own name, except a readback named like a grid dimension (whose
    name is its setpoint coordinate's): it becomes ``<key>_readback``. A name taken already gets
    ``_data`` appended.

    Raises
    ------
    ConfigurationError
        A chunk or shard request does not fit its array, or a codec does not fit its dtype.
    """
    event_dims, event_shape = schema.event_dims, schema.event_shape
    grid = schema.grid
    specs = _provenance(event_dims, event_shape, grid is not None) + (_setpoints(grid) if grid else [])
    arrays = {spec.name: spec for spec in specs}
    keys: dict[str, str] = {}
    for key, variable in schema.variables.items():
        name = safe_name(f"{key}_readback" if key in event_dims else key)
        while name in arrays:
            name += "_data"
        attrs: dict[str, JSONValue] = {"data_key": {"name": key, **variable.description}}
        if variable.units:
            attrs["units"] = variable.units
        if variable.widening is not None:
            attrs["dtype_widened"] = variable.widening.to_json()
        if variable.files:
            attrs["detector_files"] = list(variable.files)
        role: ArrayRole = "readback" if variable.role == "readback" else "data"
        arrays[name] = _array(
            name, role, event_dims, event_shape, variable.dtype, attrs, variable, options, schema.where
        )
        keys[key] = name
    offsets = [_offset_name(a.dim) for a in grid.axes if a.offsets is not None] if grid else []
    coordinates = " ".join([*offsets, *(a.name for a in arrays.values() if a.role == "readback")])
    if coordinates:
        arrays = {
            n: replace(a, attrs={**a.attrs, "coordinates": coordinates}) if a.role == "data" else a
            for n, a in arrays.items()
        }
    return StreamLayout(name=schema.name, grid=grid, arrays=arrays, keys=keys, descriptors=schema.descriptors)


def overflow_layout(layout: StreamLayout) -> StreamLayout:
    """The 1-D layout of the events of a grid stream that do not fit its grid (or were superseded).

    Each array keeps its dimensions, attributes and codecs; chunks are the defaults along
    ``time``, without shards.
    """
    arrays: dict[str, ArraySpec] = {}
    for spec in layout.arrays.values():
        if spec.role in {"setpoint", "written"}:
            continue
        dims = (EVENT_DIM, *spec.dims[spec.event_ndim :])
        chunks = (*event_chunks((0,), _reading_nbytes(spec.dtype, spec.reading_shape)), *spec.reading_shape)
        arrays[spec.name] = replace(
            spec, dims=dims, shape=(0, *spec.reading_shape), chunks=tuple(max(1, c) for c in chunks),
            shards=None,
        )  # fmt: skip
    return StreamLayout(
        name=OVERFLOW_GROUP, grid=None, arrays=arrays, keys=dict(layout.keys), descriptors=layout.descriptors
    )
