"""The Zarr mapping of a stream schema: the arrays of one stream group (pure, no I/O).

From a :class:`~bluesky_zarr.layout.StreamSchema` and the user's :class:`ZarrOptions` comes a
:class:`StreamLayout`: every array of the group with its name, dimensions, shape, chunks, dtype,
codecs, shards and attributes. The provenance arrays (``time``, ``seq_num``, and on a grid the
``written`` mask) and the setpoint coordinates come first; then one array per data key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..._documents import EventDescriptor
from ..._encoding import JSONValue
from ...codecs import IMAGE_DEFAULT, SMALL_DEFAULT, CodecChain, resolve_codecs
from ...layout import (
    EVENT_DIM,
    FRAME_BYTES,
    OVERFLOW,
    SEQ_NUM,
    TIME,
    WRITTEN,
    ArrayRole,
    Grid,
    StreamArray,
    StreamSchema,
    Variable,
    default_chunks,
    fill_value,
    reading_nbytes,
    resolve_chunks,
    resolve_shards,
    stream_arrays,
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

OVERFLOW_GROUP = OVERFLOW


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
    nbytes = reading_nbytes(dtype, reading_shape)
    chunks = default_chunks(event_shape, dtype, reading_shape)
    codecs, shards = resolve_codecs(SMALL_DEFAULT, dtype, where=f"array {name!r}"), None
    if variable is not None:
        key = variable.key
        where = f"{where}, data key {key!r}"
        options = options or ZarrOptions()
        chunks = resolve_chunks(options.chunks.get(key), dims, shape, chunks, where=where)
        chunk_nbytes = reading_nbytes(dtype, chunks[len(event_shape) :]) * math.prod(
            chunks[: len(event_shape)]
        )
        shards = resolve_shards(
            options.shards.get(key), dims, shape, chunks, chunk_nbytes, len(reading_shape), where=where
        )
        default = IMAGE_DEFAULT if nbytes >= FRAME_BYTES and dtype.kind in "biuf" else SMALL_DEFAULT
        # a transpose is given over a reading's own axes; the event axes stay first, in place
        codecs = resolve_codecs(
            options.codecs.get(key, default), dtype, where=where, reading_dims=reading_dims,
            leading_ndim=len(event_shape),
        )  # fmt: skip
    return ArraySpec(
        name=name,
        role=role,
        dims=dims,
        shape=shape,
        chunks=chunks,
        dtype=dtype,
        fill_value=fill_value(dtype),
        attrs=attrs,
        reading_shape=reading_shape,
        data_key=variable.key if variable is not None else None,
        codecs=codecs,
        shards=shards,
    )


def _coordinate(planned: StreamArray) -> ArraySpec:
    """A 1-D coordinate along a grid dimension whose values the documents say (one small chunk)."""
    assert planned.values is not None and planned.dim is not None
    n = len(planned.values)
    return ArraySpec(
        name=planned.name,
        role="setpoint",
        dims=(planned.dim,),
        shape=(n,),
        chunks=(n,),
        dtype=planned.dtype,
        fill_value=float("nan"),
        attrs=planned.attrs,
        codecs=resolve_codecs(None, planned.dtype, where=f"array {planned.name!r}"),
        values=planned.values,
    )


def zarr_layout(schema: StreamSchema, options: ZarrOptions | None = None) -> StreamLayout:
    """The arrays of one stream group, from its schema and the user's codecs, chunks and shards.

    The arrays and their names are the stream's (:func:`~bluesky_zarr.layout.stream_arrays`);
    this adds their chunks, codecs and shards.

    Raises
    ------
    ConfigurationError
        A chunk or shard request does not fit its array, or a codec does not fit its dtype.
    """
    event_dims, event_shape = schema.event_dims, schema.event_shape
    planned, keys = stream_arrays(schema)
    arrays = {
        a.name: _coordinate(a)
        if a.role == "setpoint"
        else _array(
            a.name, a.role, event_dims, event_shape, a.dtype, a.attrs, a.variable, options, schema.where
        )
        for a in planned
    }
    return StreamLayout(
        name=schema.name, grid=schema.grid, arrays=arrays, keys=keys, descriptors=schema.descriptors
    )


def overflow_layout(layout: StreamLayout) -> StreamLayout:
    """The 1-D layout of the events of a grid stream that do not fit its grid (or were superseded).

    Each array keeps its dimensions, attributes and codecs (a transpose still reorders only a
    reading's own axes); chunks are the defaults along ``time``, without shards.
    """
    arrays: dict[str, ArraySpec] = {}
    for spec in layout.arrays.values():
        if spec.role in {"setpoint", "written"}:
            continue
        dims = (EVENT_DIM, *spec.dims[spec.event_ndim :])
        chunks = default_chunks((0,), spec.dtype, spec.reading_shape)
        arrays[spec.name] = replace(
            spec, dims=dims, shape=(0, *spec.reading_shape), chunks=tuple(max(1, c) for c in chunks),
            shards=None, codecs=spec.codecs.with_leading_ndim(1),
        )  # fmt: skip
    return StreamLayout(
        name=OVERFLOW_GROUP, grid=None, arrays=arrays, keys=dict(layout.keys), descriptors=layout.descriptors
    )
