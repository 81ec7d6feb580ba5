"""The HDF5 mapping of a stream schema: the datasets of one stream group (pure, no I/O).

A stream group holds what a Zarr stream group holds, under the same names: ``time`` and
``seq_num``, on a grid the ``written`` mask and the setpoint coordinates (``<dim>_offset`` too for
a relative plan), and one dataset per data key. Every dimension has an HDF5 dimension scale: a
grid dimension its setpoint coordinate, a growing stream's ``time`` the ``time`` dataset, and any
other dimension (a camera's ``y`` and ``x``) an empty dataset of its own name, marked the way
netCDF-4 marks a dimension that has no coordinate, so that h5netcdf (and xarray) name it.

The group is a NeXus ``NXdata``: its ``signal`` is the data key with the most dimensions (the
first such), its ``axes`` name the scale of each of the signal's dimensions (``.`` where a
dimension has none), and ``<axis>_indices`` say which dimension each axis is.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from ..._documents import EventDescriptor
from ..._encoding import JSONValue
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
    stream_arrays,
)
from ._options import HDF5Options, compression_filters

__all__ = [
    "NETCDF_DIMENSION",
    "OVERFLOW_GROUP",
    "SEQ_NUM",
    "TIME",
    "WRITTEN",
    "DatasetSpec",
    "GroupLayout",
    "hdf5_layout",
    "overflow_layout",
]

OVERFLOW_GROUP = OVERFLOW
NETCDF_DIMENSION = "This is a netCDF dimension but not a netCDF variable."
"""The scale name netCDF-4 gives a dimension with no coordinate (h5netcdf reads it so)."""

DatasetRole = ArrayRole | Literal["dimension"]


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset of a stream group: everything needed to create it."""

    name: str
    role: DatasetRole
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    """``0`` along a growing ``time`` (created resizable, ``maxshape`` ``None`` there)."""
    chunks: tuple[int, ...] | None
    dtype: np.dtype[Any]
    fill_value: Any
    attrs: dict[str, JSONValue]
    reading_shape: tuple[int, ...] = ()
    data_key: str | None = None
    filters: dict[str, Any] = field(default_factory=dict, compare=False)
    """``create_dataset`` keywords of its compression."""
    values: np.ndarray | None = field(default=None, compare=False)
    """Values known from the documents alone (setpoint coordinates), written when created."""

    @property
    def event_ndim(self) -> int:
        return len(self.dims) - len(self.reading_shape)

    @property
    def growing(self) -> bool:
        return self.shape[:1] == (0,) and self.role != "dimension"

    @property
    def maxshape(self) -> tuple[int | None, ...]:
        return (None, *self.shape[1:]) if self.growing else self.shape


@dataclass(frozen=True)
class GroupLayout:
    """The datasets of one stream group; ``grid`` is ``None`` for a stream that grows along ``time``."""

    name: str
    grid: Grid | None
    datasets: dict[str, DatasetSpec]
    keys: dict[str, str]
    """data key -> dataset name"""
    scales: dict[str, str]
    """dimension -> the dataset that is its scale"""
    nexus: dict[str, JSONValue]
    """The group's NeXus ``NXdata`` attributes."""
    descriptors: tuple[EventDescriptor, ...] = ()


GROWING_CHUNK_BYTES = 64 * 1024
"""About the bytes of one chunk of a growing (1-D) dataset of small readings. HDF5 stores a chunk
whole from its first reading (uncompressed by default), unlike a Zarr chunk whose fill compresses
to nothing: with Zarr's chunks of 131072 rows a run of five events cost 1 MiB per scalar key."""


def _chunks(
    event_shape: tuple[int, ...], dtype: np.dtype[Any], reading_shape: tuple[int, ...]
) -> tuple[int, ...]:
    """The default chunks of a dataset: the stream's (:func:`default_chunks`), with a growing
    dataset's rows capped to :data:`GROWING_CHUNK_BYTES` (whole readings: a frame per chunk)."""
    chunks = default_chunks(event_shape, dtype, reading_shape)
    if event_shape == (0,):
        rows = max(1, GROWING_CHUNK_BYTES // reading_nbytes(dtype, reading_shape))
        chunks = (min(chunks[0], rows), *chunks[1:])
    return chunks


def _dataset(
    name: str,
    role: DatasetRole,
    event_dims: tuple[str, ...],
    event_shape: tuple[int, ...],
    dtype: np.dtype[Any],
    attrs: dict[str, JSONValue],
    variable: Variable | None = None,
    options: HDF5Options | None = None,
    where: str = "",
) -> DatasetSpec:
    """One dataset along the event dimensions; for a data key, ``options`` say its chunks and compression."""
    reading_dims = variable.dims if variable is not None else ()
    reading_shape = variable.shape if variable is not None else ()
    dims, shape = event_dims + reading_dims, event_shape + reading_shape
    chunks = _chunks(event_shape, dtype, reading_shape)
    filters: dict[str, Any] = {}
    if variable is not None:
        where = f"{where}, data key {variable.key!r}"
        options = options or HDF5Options()
        chunks = resolve_chunks(options.chunks.get(variable.key), dims, shape, chunks, where=where)
        default = (
            "gzip" if reading_nbytes(dtype, reading_shape) >= FRAME_BYTES and dtype.kind in "biuf" else "none"
        )
        filters = compression_filters(options.compression.get(variable.key, default), where=where)
    return DatasetSpec(
        name=name,
        role=role,
        dims=dims,
        shape=shape,
        chunks=tuple(max(1, c) for c in chunks),
        dtype=dtype,
        fill_value=fill_value(dtype),
        attrs=attrs,
        reading_shape=reading_shape,
        data_key=variable.key if variable is not None else None,
        filters=filters,
    )


def _coordinate(planned: StreamArray) -> DatasetSpec:
    assert planned.values is not None and planned.dim is not None
    return DatasetSpec(
        name=planned.name, role="setpoint", dims=(planned.dim,), shape=(len(planned.values),), chunks=None,
        dtype=planned.dtype, fill_value=float("nan"), attrs=planned.attrs, values=planned.values,
    )  # fmt: skip


def _dimension(name: str, size: int) -> DatasetSpec:
    return DatasetSpec(
        name=name, role="dimension", dims=(name,), shape=(size,), chunks=None,
        dtype=np.dtype("float32"), fill_value=float("nan"), attrs={},
    )  # fmt: skip


def _with_scales(datasets: dict[str, DatasetSpec]) -> tuple[dict[str, DatasetSpec], dict[str, str]]:
    """Every dimension's scale: a 1-D dataset along it of its own name, else a new empty one."""
    scales: dict[str, str] = {}
    for spec in list(datasets.values()):
        for dim, size in zip(spec.dims, spec.shape, strict=True):
            if dim in scales:
                continue
            own = datasets.get(dim)
            if own is not None and own.dims == (dim,):
                scales[dim] = dim
                continue
            name = dim
            while name in datasets:
                name += "_dim"
            datasets[name] = _dimension(name, size)
            scales[dim] = name
    return datasets, scales


def _nexus(datasets: dict[str, DatasetSpec], scales: dict[str, str]) -> dict[str, JSONValue]:
    data = [s for s in datasets.values() if s.role == "data"] or [
        s for s in datasets.values() if s.role in ("readback", "seq_num")
    ]
    signal = max(data, key=lambda s: len(s.dims))  # the first of the most dimensions
    axes: list[JSONValue] = [
        scales[d] if datasets[scales[d]].role != "dimension" else "." for d in signal.dims
    ]
    attrs: dict[str, JSONValue] = {"NX_class": "NXdata", "signal": signal.name, "axes": axes}
    for i, axis in enumerate(axes):
        if axis != ".":
            attrs[f"{axis}_indices"] = i
    return attrs


def _group(
    name: str,
    grid: Grid | None,
    datasets: dict[str, DatasetSpec],
    keys: dict[str, str],
    descriptors: tuple[EventDescriptor, ...],
) -> GroupLayout:
    datasets, scales = _with_scales(datasets)
    return GroupLayout(name, grid, datasets, keys, scales, _nexus(datasets, scales), descriptors)


def hdf5_layout(schema: StreamSchema, options: HDF5Options | None = None) -> GroupLayout:
    """The datasets of one stream group, from its schema and the user's compression and chunks.

    The datasets and their names are the stream's (:func:`~bluesky_zarr.layout.stream_arrays`),
    as in the Zarr store; this adds their chunks and filters, and the dimension scales.
    """
    event_dims, event_shape = schema.event_dims, schema.event_shape
    planned, keys = stream_arrays(schema)
    datasets = {
        a.name: _coordinate(a)
        if a.role == "setpoint"
        else _dataset(
            a.name, a.role, event_dims, event_shape, a.dtype, a.attrs, a.variable, options, schema.where
        )
        for a in planned
    }
    return _group(schema.name, schema.grid, datasets, keys, schema.descriptors)


def overflow_layout(layout: GroupLayout) -> GroupLayout:
    """The 1-D group of the events of a grid stream that do not fit its grid (or were superseded)."""
    datasets: dict[str, DatasetSpec] = {}
    for spec in layout.datasets.values():
        if spec.role in {"setpoint", "written", "dimension"}:
            continue
        reading = spec.dims[spec.event_ndim :]
        chunks = _chunks((0,), spec.dtype, spec.reading_shape)
        datasets[spec.name] = replace(
            spec,
            dims=(EVENT_DIM, *reading),
            shape=(0, *spec.reading_shape),
            chunks=tuple(max(1, c) for c in chunks),
        )
    return _group(OVERFLOW_GROUP, None, datasets, dict(layout.keys), layout.descriptors)
