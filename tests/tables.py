"""Read tables back with stock readers only (pyarrow, polars, pandas): never with our own code.

Each reader's view of a table is turned into plain numpy per column, so one check compares all
three with the documents: values, dtypes and, for tensor columns, shapes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq


@dataclass
class Views:
    """One table as the three readers give it."""

    arrow: pa.Table
    polars: pl.DataFrame
    pandas: pd.DataFrame

    @property
    def num_rows(self) -> int:
        assert self.arrow.num_rows == self.polars.height == len(self.pandas)
        return self.arrow.num_rows

    def columns(self, name: str) -> dict[str, np.ndarray]:
        """A column as numpy, by reader; tensor columns come back as ``(rows, *shape)``."""
        field = self.arrow.schema.field(name)
        columns = {
            "pyarrow": arrow_column(self.arrow, name),
            "polars": polars_column(self.polars, name, field.type),
            "pandas": pandas_column(self.pandas, name, field.type),
        }
        if field.metadata and b"shape" in field.metadata:  # booleans, text: flat lists, shape in the field
            shape = json.loads(field.metadata[b"shape"])
            columns = {
                r: np.stack(list(v)).reshape(len(v), *shape) if len(v) else np.reshape(v, (0, *shape))
                for r, v in columns.items()
            }
        return columns

    def metadata(self) -> dict[str, Any]:
        return schema_metadata(self.arrow.schema)


def read_parquet(path: Path) -> Views:
    return Views(pq.read_table(path), pl.read_parquet(path), pd.read_parquet(path))


def read_arrows(path: Path) -> Views:
    """An Arrow IPC stream file: pyarrow, polars' own IPC stream reader, and pandas via pyarrow."""
    with pa.ipc.open_stream(path) as reader:
        table = reader.read_all()
    with pa.ipc.open_stream(path) as reader:
        frame = reader.read_pandas()
    return Views(table, pl.read_ipc_stream(path), frame)


def read_any(path: Path) -> Views:
    return read_parquet(path) if path.suffix == ".parquet" else read_arrows(path)


def read_parts(folder: Path) -> Views:
    """The parts of a Parquet stream that is still written (or whose writer died), as each reader
    reads a folder of files: pyarrow's and pandas' datasets, polars' own glob."""
    return Views(
        pq.read_table(folder), pl.scan_parquet(folder / "*.parquet").collect(), pd.read_parquet(folder)
    )


def whole_batches(path: Path) -> list[tuple[pa.RecordBatch, dict[str, Any]]]:
    """The whole batches of an Arrow IPC stream file that may be cut short (a killed writer), each
    with its custom metadata: read one by one up to the end, or up to the first half-written message."""
    out = []
    with pa.ipc.open_stream(path) as reader:
        while True:
            try:
                batch, custom = reader.read_next_batch_with_custom_metadata()
            except (StopIteration, pa.ArrowInvalid):
                break
            out.append((batch, _decoded(custom)))
    return out


def stream_metadata(path: Path) -> dict[str, Any]:
    """The schema metadata of an Arrow IPC stream file (what was known when the stream began)."""
    with pa.ipc.open_stream(path) as reader:
        return schema_metadata(reader.schema)


def read_cut_stream(path: Path) -> Views:
    """An Arrow IPC stream file cut short: pyarrow reads its whole batches; polars and pandas take
    them from pyarrow (their own readers refuse a file that ends inside a message)."""
    with pa.ipc.open_stream(path) as reader:
        schema = reader.schema
    table = pa.Table.from_batches([b for b, _ in whole_batches(path)], schema=schema)
    return Views(table, pl.from_arrow(table), table.to_pandas())


def schema_metadata(schema: pa.Schema) -> dict[str, Any]:
    """Schema metadata, every value parsed as strict JSON (pyarrow's own ``ARROW:schema`` left out)."""
    return {
        key.decode(): json.loads(raw, parse_constant=_no_constants)
        for key, raw in (schema.metadata or {}).items()
        if not key.startswith(b"ARROW:")
    }


def _no_constants(name: str) -> None:
    raise ValueError(f"metadata holds the non-JSON constant {name}")


def batches_with_metadata(path: Path) -> list[tuple[pa.RecordBatch, dict[str, Any]]]:
    """Every batch of an Arrow IPC stream file with its custom metadata, JSON values parsed."""
    out = []
    with pa.ipc.open_stream(path) as reader:
        while True:
            try:
                batch, custom = reader.read_next_batch_with_custom_metadata()
            except StopIteration:
                break
            out.append((batch, _decoded(custom)))
    return out


def _decoded(custom: dict[bytes, bytes] | None) -> dict[str, Any]:
    return {k.decode(): json.loads(v, parse_constant=_no_constants) for k, v in (custom or {}).items()}


def with_nulls(rows: list[Any], dtype: Any, shape: list[int]) -> np.ndarray:
    """Tensor readings of a column with null rows, as an object array: ``None`` or one ndarray a row."""
    out = np.empty(len(rows), dtype=object)
    for i, row in enumerate(rows):
        out[i] = None if row is None else np.asarray(row, dtype=dtype).reshape(shape)
    return out


def arrow_column(table: pa.Table, name: str) -> np.ndarray:
    column = table.column(name).combine_chunks()
    if isinstance(column.type, pa.FixedShapeTensorType):
        if column.null_count:  # to_numpy_ndarray() refuses nulls: one row at a time
            dtype = column.type.value_type.to_pandas_dtype()
            return with_nulls(column.storage.to_pylist(), dtype, column.type.shape)
        return column.to_numpy_ndarray()
    return column.to_numpy(zero_copy_only=False)


def polars_column(frame: pl.DataFrame, name: str, arrow_type: pa.DataType) -> np.ndarray:
    series = frame[name]
    if isinstance(series.dtype, pl.Extension):
        shape = json.loads(series.dtype.ext_metadata())["shape"]
        storage = series.ext.storage()
        if storage.null_count():
            dtype = arrow_type.value_type.to_pandas_dtype()
            return with_nulls(storage.to_list(), dtype, shape)
        flat = storage.to_numpy()
        return flat.reshape(len(series), *shape)
    return series.to_numpy()


def pandas_column(frame: pd.DataFrame, name: str, arrow_type: pa.DataType) -> np.ndarray:
    series = frame[name]
    if isinstance(arrow_type, pa.FixedShapeTensorType):
        # pandas gets one flat numpy array per row; the shape is the column type's
        dtype = arrow_type.value_type.to_pandas_dtype()
        if not len(series):
            return np.zeros((0, *arrow_type.shape), dtype=dtype)
        rows = [
            None if row is None or (np.ndim(row) == 0 and pd.isna(row)) else row for row in series.to_list()
        ]
        if any(row is None for row in rows):
            return with_nulls(rows, dtype, arrow_type.shape)
        return np.stack(rows).reshape(len(series), *arrow_type.shape)
    return series.to_numpy()
