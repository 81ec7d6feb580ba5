"""The Arrow mapping of a stream schema: the columns of one stream's table (pure, no I/O).

A stream's table has the columns ``time`` (float64 seconds since the epoch, the event's own
``time``, exactly as in the document and the Zarr store), ``seq_num`` (int64), then for grid
streams the grid index of each event per dimension (``<dim>_index``, int64, null for events off
the grid), its planned setpoint (``<dim>_grid``, float64, when the plan says its setpoints: for a
relative plan the absolute position, once the first event says where the motor started) and,
for a relative plan, the plan's offset (``<dim>_offset``, float64),
then one column per data key with the dtype of its schema: scalars as Arrow numbers, booleans
and strings, array readings (camera frames, spectra) as Arrow ``fixed_shape_tensor`` columns
that carry the reading's shape, dtype and dimension names (booleans and text, which have no
tensor type, as flat fixed-size lists with the shape in the field's metadata).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from ..._documents import EventDescriptor
from ..._encoding import dumps
from ...layout import Grid, StreamSchema, Variable

__all__ = ["SEQ_NUM", "TIME", "Column", "GridColumns", "TableLayout", "stream_file_name", "table_layout"]

TIME, SEQ_NUM = "time", "seq_num"


@dataclass(frozen=True)
class Column:
    """One data key's column."""

    name: str
    variable: Variable
    arrow_type: pa.DataType

    @property
    def data_key(self) -> str:
        return self.variable.key

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.variable.dtype

    @property
    def shape(self) -> tuple[int, ...]:
        return self.variable.shape

    @property
    def dims(self) -> tuple[str, ...]:
        return self.variable.dims

    @property
    def nbytes(self) -> int:
        """About how many bytes one reading takes."""
        return self.variable.nbytes

    def field(self) -> pa.Field:
        metadata = {"data_key": dumps({"name": self.data_key, **self.variable.description})}
        if self.variable.widening is not None:
            metadata["dtype_widened"] = dumps(self.variable.widening.to_json())
        if self.shape and not isinstance(self.arrow_type, pa.FixedShapeTensorType):
            # booleans and text have no Arrow tensor type: flat fixed-size lists, shape kept here
            metadata["shape"] = json.dumps(list(self.shape))
            metadata["dims"] = json.dumps(list(self.dims))
            metadata["numpy_dtype"] = "bool" if self.dtype.kind == "b" else "str"
        return pa.field(self.name, self.arrow_type, metadata=metadata)


@dataclass(frozen=True)
class GridColumns:
    """The grid a stream lies on, and the names of its index, setpoint and offset columns."""

    grid: Grid
    index: tuple[str, ...]
    setpoint: tuple[str | None, ...]
    offset: tuple[str | None, ...]
    """per dimension: the column of a relative one's offsets, else ``None``"""

    def metadata(self) -> dict[str, Any]:
        axes = self.grid.axes
        return {
            "dims": list(self.grid.dims),
            "shape": list(self.grid.shape),
            "snaking": list(self.grid.snaking),
            "setpoints": {a.dim: list(a.setpoints) for a in axes if a.setpoints is not None},
            "units": {a.dim: a.units for a in axes if a.units},
            "relative": any(a.relative for a in axes),
            "origin": {a.dim: a.origin for a in axes if a.offsets is not None},
            "offsets": {a.dim: list(a.offsets) for a in axes if a.offsets is not None},
            "index_columns": dict(zip(self.grid.dims, self.index, strict=True)),
            "setpoint_columns": {
                d: c for d, c in zip(self.grid.dims, self.setpoint, strict=True) if c is not None
            },
            "offset_columns": {
                d: c for d, c in zip(self.grid.dims, self.offset, strict=True) if c is not None
            },
        }


@dataclass(frozen=True)
class TableLayout:
    """The table of one stream: its columns, its grid (if any), and the descriptors it came from."""

    stream: str
    columns: tuple[Column, ...]
    grid: GridColumns | None
    descriptors: tuple[EventDescriptor, ...]

    @property
    def by_key(self) -> dict[str, Column]:
        return {c.data_key: c for c in self.columns}

    @property
    def row_nbytes(self) -> int:
        return 16 + 16 * (len(self.grid.index) if self.grid else 0) + sum(c.nbytes for c in self.columns)

    def fields(self) -> list[pa.Field]:
        fields = [pa.field(TIME, pa.float64()), pa.field(SEQ_NUM, pa.int64())]
        if self.grid is not None:
            fields += [pa.field(name, pa.int64()) for name in self.grid.index]
            fields += [pa.field(name, pa.float64()) for name in self.grid.setpoint if name is not None]
            fields += [pa.field(name, pa.float64()) for name in self.grid.offset if name is not None]
        fields += [c.field() for c in self.columns]
        return fields

    def schema(self, metadata: Mapping[str, str] | None = None) -> pa.Schema:
        return pa.schema(self.fields(), metadata=metadata)


def _arrow_type(dtype: np.dtype[Any], shape: tuple[int, ...], dims: tuple[str, ...]) -> pa.DataType:
    if dtype.kind in "SUO":
        value: pa.DataType = pa.string()
    elif dtype.kind == "b":
        value = pa.bool_()
    else:
        value = pa.from_numpy_dtype(dtype.newbyteorder("="))
    if not shape:
        return value
    if dtype.kind in "SUOb":
        return pa.list_(value, math.prod(shape))
    return pa.fixed_shape_tensor(value, list(shape), dim_names=list(dims))


def _free(name: str, taken: set[str], suffix: str) -> str:
    while name in taken:
        name += suffix
    taken.add(name)
    return name


def table_layout(schema: StreamSchema) -> TableLayout:
    """The table of one stream from its schema.

    Column names are the data keys. A data key named like a column that was there first
    (``time``, ``seq_num``, a grid column) gets ``_data`` appended; grid columns are named after
    the first descriptor's keys and get ``_`` appended while they would clash with one.
    """
    taken = {TIME, SEQ_NUM}
    grid_columns: GridColumns | None = None
    grid = schema.grid
    if grid is not None:
        first_keys = set(schema.descriptors[0].get("data_keys") or ())
        avoid = taken | first_keys
        index = tuple(_free(f"{d}_index", avoid, "_") for d in grid.dims)
        setpoint = tuple(
            _free(f"{a.dim}_grid", avoid, "_") if a.setpoints is not None else None for a in grid.axes
        )
        offset = tuple(
            _free(f"{a.dim}_offset", avoid, "_") if a.offsets is not None else None for a in grid.axes
        )
        grid_columns = GridColumns(grid, index, setpoint, offset)
        taken |= {c for c in (*index, *setpoint, *offset) if c is not None}
    columns = tuple(
        Column(
            _free(key, taken, "_data"), variable, _arrow_type(variable.dtype, variable.shape, variable.dims)
        )
        for key, variable in schema.variables.items()
    )
    return TableLayout(schema.name, columns, grid_columns, schema.descriptors)


def stream_file_name(stream: str) -> str:
    """A stream's name as a file name: separators replaced, hidden and special names avoided."""
    name = stream.replace("/", "_").replace("\\", "_").replace("\0", "_")
    if name in {"", ".", ".."} or name.startswith((".", "__")):
        name = f"stream_{name}"
    return name
