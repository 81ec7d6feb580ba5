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

import math
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from ..._documents import EventDescriptor
from ..._encoding import JSONValue
from ...layout import (
    EVENT_DIM,
    FRAME_BYTES,
    Grid,
    StreamSchema,
    Variable,
    event_chunks,
    resolve_chunks,
    safe_name,
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

OVERFLOW_GROUP = "overflow"
TIME, SEQ_NUM, WRITTEN = "time", "seq_num", "written"
NETCDF_DIMENSION = "This is a netCDF dimension but not a netCDF variable."
"""The scale name netCDF-4 gives a dimension with no coordinate (h5netcdf reads it so)."""

DatasetRole = Literal["data", "readback", "setpoint", "time", "seq_num", "written", "dimension"]


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


def _fill_value(dtype: np.dtype[Any]) -> Any:
    if dtype.kind == "f":
        return float("nan")
    if dtype.kind == "b":
        return False
    return "" if dtype.kind in "SUO" else 0


def _nbytes(dtype: np.dtype[Any], shape: tuple[int, ...]) -> int:
    return max(1, (16 if dtype.kind in "SUO" else dtype.itemsize) * math.prod(shape))


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
    reading_nbytes = _nbytes(dtype, reading_shape)
    chunks = tuple(max(1, c) for c in event_chunks(event_shape, reading_nbytes) + reading_shape)
    filters: dict[str, Any] = {}
    if variable is not None:
        where = f"{where}, data key {variable.key!r}"
        options = options or HDF5Options()
        chunks = resolve_chunks(options.chunks.get(variable.key), dims, shape, chunks, where=where)
        default = "gzip" if reading_nbytes >= FRAME_BYTES and dtype.kind in "biuf" else "none"
        filters = compression_filters(options.compression.get(variable.key, default), where=where)
    return DatasetSpec(
        name=name,
        role=role,
        dims=dims,
        shape=shape,
        chunks=tuple(max(1, c) for c in chunks),
        dtype=dtype,
        fill_value=_fill_value(dtype),
        attrs=attrs,
        reading_shape=reading_shape,
        data_key=variable.key if variable is not None else None,
        filters=filters,
    )


def _coordinate(name: str, dim: str, values: tuple[float, ...], attrs: dict[str, JSONValue]) -> DatasetSpec:
    return DatasetSpec(
        name=name, role="setpoint", dims=(dim,), shape=(len(values),), chunks=None,
        dtype=np.dtype("float64"), fill_value=float("nan"), attrs=attrs,
        values=np.asarray(values, dtype="float64"),
    )  # fmt: skip


def _setpoints(grid: Grid) -> list[DatasetSpec]:
    """Each grid dimension's setpoint coordinate (absolute once a relative grid is anchored), and a
    relative one's ``<dim>_offset``: the attributes of the Zarr store's coordinates."""
    datasets = []
    for axis in grid.axes:
        if axis.setpoints is None:
            continue
        units: dict[str, JSONValue] = {"units": axis.units} if axis.units else {}
        attrs: dict[str, JSONValue] = {"long_name": f"{axis.dim} setpoint", "relative": axis.relative}
        if axis.origin is not None:
            attrs["origin"] = axis.origin
        elif axis.offsets is not None:
            known = "unknown" if grid.anchored else "not known yet"
            attrs["long_name"] = f"{axis.dim} setpoint offset (origin {known})"
            if grid.anchored:
                attrs["origin_unknown"] = True
        datasets.append(_coordinate(axis.dim, axis.dim, axis.setpoints, {**attrs, **units}))
        if axis.offsets is not None:
            offset_attrs: dict[str, JSONValue] = {"long_name": f"{axis.dim} setpoint offset from its origin"}
            datasets.append(
                _coordinate(
                    safe_name(f"{axis.dim}_offset"), axis.dim, axis.offsets, {**offset_attrs, **units}
                )
            )
    return datasets


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

    Names follow the Zarr store's: a data key named like a grid dimension becomes
    ``<key>_readback``; a name taken already gets ``_data`` appended.
    """
    event_dims, event_shape, grid = schema.event_dims, schema.event_shape, schema.grid
    specs = [
        _dataset(TIME, "time", event_dims, event_shape, np.dtype("float64"),
                 {"long_name": "event time", "units": "seconds since 1970-01-01"}),
        _dataset(SEQ_NUM, "seq_num", event_dims, event_shape, np.dtype("int64"),
                 {"long_name": "event sequence number (0: no event)"}),
    ]  # fmt: skip
    if grid is not None:
        specs.append(
            _dataset(WRITTEN, "written", event_dims, event_shape, np.dtype("bool"),
                     {"long_name": "true where the grid point holds a complete event"})
        )  # fmt: skip
        specs += _setpoints(grid)
    datasets = {spec.name: spec for spec in specs}
    keys: dict[str, str] = {}
    for key, variable in schema.variables.items():
        name = safe_name(f"{key}_readback" if key in event_dims else key)
        while name in datasets:
            name += "_data"
        attrs: dict[str, JSONValue] = {"data_key": {"name": key, **variable.description}}
        if variable.units:
            attrs["units"] = variable.units
        if variable.widening is not None:
            attrs["dtype_widened"] = variable.widening.to_json()
        if variable.files:
            attrs["detector_files"] = list(variable.files)
        role: DatasetRole = "readback" if variable.role == "readback" else "data"
        datasets[name] = _dataset(
            name, role, event_dims, event_shape, variable.dtype, attrs, variable, options, schema.where
        )
        keys[key] = name
    offsets = [safe_name(f"{a.dim}_offset") for a in grid.axes if a.offsets is not None] if grid else []
    coordinates = " ".join([*offsets, *(d.name for d in datasets.values() if d.role == "readback")])
    if coordinates:  # the CF attribute that makes xarray take readbacks as coordinates, as from Zarr
        datasets = {
            n: replace(d, attrs={**d.attrs, "coordinates": coordinates}) if d.role == "data" else d
            for n, d in datasets.items()
        }
    return _group(schema.name, grid, datasets, keys, schema.descriptors)


def overflow_layout(layout: GroupLayout) -> GroupLayout:
    """The 1-D group of the events of a grid stream that do not fit its grid (or were superseded)."""
    datasets: dict[str, DatasetSpec] = {}
    for spec in layout.datasets.values():
        if spec.role in {"setpoint", "written", "dimension"}:
            continue
        reading = spec.dims[spec.event_ndim :]
        chunks = event_chunks((0,), _nbytes(spec.dtype, spec.reading_shape)) + spec.reading_shape
        datasets[spec.name] = replace(
            spec,
            dims=(EVENT_DIM, *reading),
            shape=(0, *spec.reading_shape),
            chunks=tuple(max(1, c) for c in chunks),
        )
    return _group(OVERFLOW_GROUP, None, datasets, dict(layout.keys), layout.descriptors)
