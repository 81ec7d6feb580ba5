"""What the Parquet and Arrow IPC formats share: one table per stream, built from event pages.

A stream's table has the columns ``time`` (float64 seconds since the epoch, the event's own
``time``, exactly as in the document and the Zarr store), ``seq_num`` (int64), then for grid
streams the grid index of each event per dimension (``<dim>_index``, int64, null for events off
the grid) and its planned setpoint (``<dim>_grid``, float64, when the plan says its setpoints),
then one column per data key with the dtype its descriptor declares (``dtype_numpy`` when given):
scalars as Arrow numbers, booleans and strings, array readings (camera frames, spectra) as Arrow
``fixed_shape_tensor`` columns that carry the reading's shape, dtype and dimension names.

The schema metadata holds, each value strict JSON text (:func:`bluesky_zarr._encoding.dumps`): ``start``,
``descriptors`` (every descriptor of the stream so far), ``stream``, ``columns`` (data key ->
column name), ``grid`` (dims, shape, snaking, setpoints, units and the index/setpoint column
names), ``status`` and, once they come, ``stop`` and ``errors``.

Rows are gathered as plain Python lists (a scalar event costs a few list appends) and turned
into an Arrow record batch with one vectorised conversion per column when a batch is written.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import pyarrow as pa

from ._encoding import dumps, to_json
from ._errors import ConfigurationError, DocumentError
from ._layout import Grid, grid_from_start, reading_dtype
from ._naming import store_path
from ._writer import Format, RunSink

__all__ = [
    "Column",
    "TableFormat",
    "TableLayout",
    "TableOutput",
    "TableRun",
    "stream_file_name",
    "table_layout",
]

TIME, SEQ_NUM = "time", "seq_num"
FORMAT_VERSION = 1
_STRING_NBYTES = 32
"""What a text reading is guessed to weigh, for the bytes bound of a batch."""


# --- the layout of a table (pure) -----------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One data key's column."""

    name: str
    data_key: str
    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    dims: tuple[str, ...]
    arrow_type: pa.DataType
    description: Mapping[str, Any] = field(compare=False, default_factory=dict)

    @property
    def nbytes(self) -> int:
        """About how many bytes one reading takes."""
        itemsize = _STRING_NBYTES if self.dtype.kind in "SUO" else self.dtype.itemsize
        return max(1, itemsize * math.prod(self.shape))

    def field(self) -> pa.Field:
        metadata = {"data_key": dumps({"name": self.data_key, **self.description})}
        if self.shape and not isinstance(self.arrow_type, pa.FixedShapeTensorType):
            # booleans and text have no Arrow tensor type: flat fixed-size lists, shape kept here
            metadata["shape"] = json.dumps(list(self.shape))
            metadata["dims"] = json.dumps(list(self.dims))
            metadata["numpy_dtype"] = "bool" if self.dtype.kind == "b" else "str"
        return pa.field(self.name, self.arrow_type, metadata=metadata)


@dataclass(frozen=True)
class GridColumns:
    """The grid a stream lies on, and the names of its index and setpoint columns."""

    grid: Grid
    index: tuple[str, ...]
    setpoint: tuple[str | None, ...]

    def metadata(self) -> dict[str, Any]:
        return {
            "dims": list(self.grid.dims),
            "shape": list(self.grid.shape),
            "snaking": list(self.grid.snaking),
            "setpoints": {a.dim: list(a.setpoints) for a in self.grid.axes if a.setpoints is not None},
            "units": {a.dim: a.units for a in self.grid.axes if a.units},
            "relative": any(a.relative for a in self.grid.axes),
            "index_columns": dict(zip(self.grid.dims, self.index, strict=True)),
            "setpoint_columns": {
                d: c for d, c in zip(self.grid.dims, self.setpoint, strict=True) if c is not None
            },
        }


@dataclass(frozen=True)
class TableLayout:
    """The table of one stream: its columns, its grid (if any), and the descriptors it came from."""

    stream: str
    columns: tuple[Column, ...]
    grid: GridColumns | None
    descriptors: tuple[Mapping[str, Any], ...]
    external: Mapping[str, str] = field(default_factory=dict)

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


def _reading_dims(key: str, data_key: Mapping[str, Any], shape: tuple[int, ...]) -> tuple[str, ...]:
    declared = data_key.get("dims")
    if isinstance(declared, list | tuple) and len(declared) == len(shape) and all(declared):
        return tuple(str(d) for d in declared)
    return tuple(f"{key}_dim_{i}" for i in range(len(shape)))


def _free(name: str, taken: set[str], suffix: str) -> str:
    while name in taken:
        name += suffix
    taken.add(name)
    return name


def table_layout(
    start: Mapping[str, Any], descriptors: Sequence[Mapping[str, Any]], grid: Grid | None, stream: str
) -> TableLayout:
    """The table of one stream from its start document and all its descriptors so far (no I/O).

    Column names are the data keys. A data key named like a column that was there first
    (``time``, ``seq_num``, a grid column) gets ``_data`` appended; grid columns are named after
    the first descriptor's keys and get ``_`` appended while they would clash with one.
    """
    uid = start.get("uid", "<no uid>")
    taken = {TIME, SEQ_NUM}
    grid_columns: GridColumns | None = None
    if grid is not None:
        first_keys = set((descriptors[0].get("data_keys") or {}) if descriptors else ())
        avoid = taken | first_keys
        index = tuple(_free(f"{d}_index", avoid, "_") for d in grid.dims)
        setpoint = tuple(
            _free(f"{a.dim}_grid", avoid, "_") if a.setpoints is not None else None for a in grid.axes
        )
        grid_columns = GridColumns(grid, index, setpoint)
        taken |= set(index) | {s for s in setpoint if s is not None}
    columns: dict[str, Column] = {}
    external: dict[str, str] = {}
    for descriptor in descriptors:
        for key, data_key in (descriptor.get("data_keys") or {}).items():
            dtype = reading_dtype(key, data_key, stream)
            shape = tuple(int(n) for n in data_key.get("shape") or ())
            if key in columns:
                known = columns[key]
                if dtype != known.dtype or shape != known.shape:
                    raise DocumentError(
                        f"run {uid}, stream {stream!r}: a new descriptor declares data key {key!r} as "
                        f"{dtype} {list(shape)}, but it was {known.dtype} {list(known.shape)}; a key keeps "
                        "its dtype and shape within a stream: read the changed device into a stream of "
                        "another name"
                    )
                continue
            if any(n < 0 for n in shape):
                raise DocumentError(
                    f"data key {key!r} of stream {stream!r} in run {uid} has shape {list(shape)}; "
                    "describe() must give the full shape of one reading"
                )
            dims = _reading_dims(key, data_key, shape)
            name = _free(key, taken, "_data")
            description = {k: to_json(v) for k, v in data_key.items()}
            columns[key] = Column(name, key, dtype, shape, dims, _arrow_type(dtype, shape, dims), description)
            if data_key.get("external"):
                external[key] = str(data_key["external"])
    return TableLayout(stream, tuple(columns.values()), grid_columns, tuple(descriptors), external)


def stream_file_name(stream: str) -> str:
    """A stream's name as a file name: separators replaced, hidden and special names avoided."""
    name = stream.replace("/", "_").replace("\\", "_").replace("\0", "_")
    if name in {"", ".", ".."} or name.startswith((".", "__")):
        name = f"stream_{name}"
    return name


# --- rows to record batches -----------------------------------------------------------------------


_MISSING = object()


class _Rows:
    """The rows of one stream not yet written, column by column, as Python lists."""

    def __init__(self, layout: TableLayout) -> None:
        self.time: list[Any] = []
        self.seq_num: list[Any] = []
        self.data: dict[str, list[Any]] = {c.data_key: [] for c in layout.columns}
        self.missing: set[str] = set()
        """keys with rows that lack them (events of another descriptor of the stream)"""
        self.n = 0

    def add_keys(self, layout: TableLayout) -> None:
        for column in layout.columns:
            if column.data_key not in self.data:
                self.data[column.data_key] = [None] * self.n
                if self.n:
                    self.missing.add(column.data_key)

    def add_event(self, event: Mapping[str, Any], where: str) -> None:
        data = event["data"]
        columns = self.data
        if data.keys() != columns.keys():
            self._check_keys(data, where)
            for key, values in columns.items():
                value = data.get(key, _MISSING)
                if value is _MISSING:
                    self.missing.add(key)
                    value = None
                values.append(value)
        else:
            for key, values in columns.items():
                values.append(data[key])
        self.time.append(event["time"])
        self.seq_num.append(event["seq_num"])
        self.n += 1

    def add_page(self, page: Mapping[str, Any], where: str) -> None:
        n = len(page["seq_num"])
        data = page["data"]
        if len(page["time"]) != n or any(len(values) != n for values in data.values()):
            raise DocumentError(
                f"{where}: an event page whose fields hold different numbers of events; fix its producer"
            )
        if data.keys() != self.data.keys():
            self._check_keys(data, where)
        for key, column in self.data.items():
            values = data.get(key, _MISSING)
            if values is _MISSING:
                self.missing.add(key)
                column.extend([None] * n)
            elif isinstance(values, np.ndarray):
                column.extend(values.tolist() if values.ndim == 1 else list(values))
            else:
                column.extend(values)
        self.time.extend(_plain(page["time"]))
        self.seq_num.extend(_plain(page["seq_num"]))
        self.n += n

    def _check_keys(self, data: Mapping[str, Any], where: str) -> None:
        unknown = [k for k in data if k not in self.data]
        if unknown:
            raise DocumentError(
                f"{where}: event has data key {unknown[0]!r} that no descriptor of the stream declares"
            )

    def take(self) -> tuple[list[Any], list[Any], dict[str, list[Any]], set[str]]:
        taken = self.time, self.seq_num, self.data, self.missing
        self.time, self.seq_num, self.missing = [], [], set()
        self.data = {k: [] for k in taken[2]}
        self.n = 0
        return taken


def _plain(values: Any) -> Any:
    return values.tolist() if isinstance(values, np.ndarray) else values


def _lossless(values: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray | None:
    """``values`` as ``dtype`` if nothing is lost (floats may round to a narrower float), else None."""
    if values.dtype == dtype:
        return values
    if dtype.kind == "f" and values.dtype.kind in "biuf":
        return values.astype(dtype)
    if values.dtype.kind not in "biuf":
        return None
    with np.errstate(all="ignore"):
        cast = values.astype(dtype, casting="unsafe")
        same = np.array_equal(cast.astype(values.dtype), values, equal_nan=values.dtype.kind == "f")
    return cast if same else None


def _mask(values: list[Any]) -> np.ndarray:
    return np.fromiter((v is None for v in values), dtype=bool, count=len(values))


def _scalar_array(values: list[Any], column: Column, where: str) -> pa.Array:
    target = column.arrow_type
    if column.dtype.kind in "SUO":
        try:
            return pa.array(values, type=target)
        except (pa.ArrowException, TypeError, ValueError):
            return pa.array([None if v is None else str(v) for v in values], type=target)
    try:
        inferred = pa.array(values, from_pandas=False)
        if inferred.type == target:
            return inferred
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        pass
    mask = _mask(values)
    present = [v for v, m in zip(values, mask, strict=True) if not m] if mask.any() else values
    try:
        raw = np.asarray(present)
    except (TypeError, ValueError) as err:
        raise _bad_values(column, where, f"values that are not {column.dtype} numbers") from err
    if raw.ndim != 1:
        raise _bad_values(column, where, f"readings of shape {list(raw.shape[1:])}")
    converted = _lossless(raw, column.dtype)
    if converted is None:
        raise _bad_values(column, where, f"{raw.dtype} values that do not fit")
    if mask.any():
        full = np.zeros(len(values), dtype=converted.dtype)
        full[~mask] = converted
        return pa.array(full, type=target, mask=mask)
    return pa.array(converted, type=target)


def _bad_values(column: Column, where: str, what: str) -> DocumentError:
    if what.startswith("readings of shape"):
        return DocumentError(
            f"{where}: data key {column.data_key!r} has {what}, but its descriptor declares "
            f"{list(column.shape)}; fix the device's describe() or its reading"
        )
    return DocumentError(
        f"{where}: data key {column.data_key!r} holds {what} its declared dtype {column.dtype}; declare "
        "dtype_numpy in describe() to match the readings"
    )


def _tensor_array(values: list[Any], column: Column, where: str) -> pa.Array:
    n = len(values)
    mask = _mask(values) if any(v is None for v in values) else None
    present = values if mask is None else [v for v, m in zip(values, mask, strict=True) if not m]
    try:
        raw = np.asarray(present)
    except (TypeError, ValueError) as err:  # readings of different shapes
        shapes = sorted({str(list(np.shape(v))) for v in present})
        raise _bad_values(column, where, f"readings of shape {', '.join(shapes)}") from err
    if raw.shape[1:] != column.shape or raw.dtype == object:
        raise _bad_values(column, where, f"readings of shape {list(raw.shape[1:])}")
    size = math.prod(column.shape)
    if column.dtype.kind in "SUO":
        flat_values: list[Any] = [str(v) for v in raw.reshape(-1).tolist()]
        if mask is not None:
            flat_values = _spread(flat_values, mask, size, "")
        return pa.FixedSizeListArray.from_arrays(
            pa.array(flat_values, pa.string()), size, mask=_pa_mask(mask)
        )
    converted = _lossless(raw, column.dtype)
    if converted is None:
        raise _bad_values(column, where, f"{raw.dtype} values that do not fit")
    if mask is not None:
        full = np.zeros((n, *column.shape), dtype=converted.dtype)
        full[~mask] = converted
        converted = full
    flat = np.ascontiguousarray(converted, dtype=converted.dtype.newbyteorder("=")).reshape(-1)
    if column.dtype.kind == "b":
        return pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.bool_()), size, mask=_pa_mask(mask))
    storage = pa.FixedSizeListArray.from_arrays(pa.array(flat), size, mask=_pa_mask(mask))
    return pa.ExtensionArray.from_storage(column.arrow_type, storage)


def _spread(flat: list[Any], mask: np.ndarray, size: int, fill: Any) -> list[Any]:
    out: list[Any] = []
    it = iter(range(0, len(flat), size))
    for missing in mask:
        if missing:
            out.extend([fill] * size)
        else:
            i = next(it)
            out.extend(flat[i : i + size])
    return out


def _pa_mask(mask: np.ndarray | None) -> pa.Array | None:
    return None if mask is None else pa.array(mask, pa.bool_())


def _column_array(values: list[Any], column: Column, where: str) -> pa.Array:
    if column.shape:
        return _tensor_array(values, column, where)
    return _scalar_array(values, column, where)


def record_batch(
    layout: TableLayout,
    time: list[Any],
    seq_num: list[Any],
    data: Mapping[str, list[Any]],
    where: str,
) -> tuple[pa.RecordBatch, list[DocumentError]]:
    """The rows as one record batch of the layout's schema, and the errors of rows left out.

    When a column does not convert as a whole, the rows are converted one by one: a bad
    reading costs its own row (and an error naming its ``seq_num`` and data key), not its batch.
    """
    try:
        return _batch(layout, time, seq_num, data, where), []
    except DocumentError:
        pass
    good: list[int] = []
    errors: list[DocumentError] = []
    for i in range(len(seq_num)):
        try:
            _batch(
                layout, time[i : i + 1], seq_num[i : i + 1], {k: v[i : i + 1] for k, v in data.items()}, where
            )
            good.append(i)
        except DocumentError as err:
            err.add_note(f"the event with seq_num {seq_num[i]} was left out of the table")
            errors.append(err)

    def pick(values: list[Any]) -> list[Any]:
        return [values[i] for i in good]

    batch = _batch(layout, pick(time), pick(seq_num), {k: pick(v) for k, v in data.items()}, where)
    return batch, errors


def _batch(
    layout: TableLayout, time: list[Any], seq_num: list[Any], data: Mapping[str, list[Any]], where: str
) -> pa.RecordBatch:
    try:
        arrays: list[pa.Array] = [pa.array(time, pa.float64()), pa.array(seq_num, pa.int64())]
    except (pa.ArrowException, TypeError, ValueError, OverflowError) as err:
        raise DocumentError(f"{where}: an event's time or seq_num is not a number: {err}") from err
    if layout.grid is not None:
        arrays += _grid_arrays(layout.grid, seq_num)
    for column in layout.columns:
        arrays.append(_column_array(data[column.data_key], column, where))
    return pa.RecordBatch.from_arrays(arrays, schema=layout.schema())


def _grid_arrays(grid: GridColumns, seq_num: list[Any]) -> list[pa.Array]:
    n = len(seq_num)
    inside, index = grid.grid.indices(np.asarray(seq_num, dtype=np.int64).reshape(n))
    full = np.zeros((n, len(grid.index)), dtype=np.int64)
    full[inside] = index
    outside = ~inside
    mask = outside if outside.any() else None
    arrays = [pa.array(full[:, d], pa.int64(), mask=mask) for d in range(len(grid.index))]
    for d, (axis, name) in enumerate(zip(grid.grid.axes, grid.setpoint, strict=True)):
        if name is not None and axis.setpoints is not None:
            values = np.asarray(axis.setpoints, dtype=np.float64)[full[:, d]]
            arrays.append(pa.array(values, pa.float64(), mask=mask))
    return arrays


# --- one run in a table format --------------------------------------------------------------------


class TableOutput(Protocol):
    """Where the batches of one stream go (a Parquet part directory, an Arrow IPC stream file)."""

    retry_failed_batches: bool
    """Whether a batch whose write failed is kept and written again with the next one."""

    def layout_changed(self, layout: TableLayout, metadata: dict[str, str]) -> None:
        """A descriptor of the stream came; ``metadata`` is the schema metadata now."""

    def write(self, batch: pa.RecordBatch, metadata: dict[str, str]) -> None:
        """Write one batch of rows so that readers see it."""

    def close(self, metadata: dict[str, str]) -> None:
        """Write what ends the stream; ``metadata`` holds ``status``, ``stop`` and ``errors``."""


@dataclass(frozen=True)
class TableFormat(Format):
    """What the Parquet and Arrow IPC formats share: rows gathered into batches.

    Parameters
    ----------
    batch_rows
        A batch is written once this many rows of a stream wait (and, whatever their number,
        every ``flush_interval`` of the writer).
    batch_bytes
        ... or once the waiting rows hold about this many bytes (camera frames).
    """

    batch_rows: int = 65_536
    batch_bytes: int = 64 * 1024**2
    suffix: ClassVar[str] = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("batch_rows", "batch_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(
                    f"{type(self).__name__}: {name} must be a positive integer, not {value!r}"
                )

    def output_path(self, directory: Path, prefix: str) -> Path:
        return store_path(directory, prefix, "")

    def existing_output(self, path: Path) -> Path | None:
        if path.exists() and not path.is_dir():
            return path
        return next(iter(sorted(self.outputs_in(path))), None)

    def outputs_in(self, run_directory: Path) -> list[Path]:
        """The files (and folders) of this format in a run directory."""
        if not run_directory.is_dir():
            return []
        return sorted(p for p in run_directory.iterdir() if self.owns(p.name))

    def owns(self, name: str) -> bool:
        return name.endswith(self.suffix)

    def open(
        self, path: Path, start: Mapping[str, Any], *, overwrite: bool, artifacts: list[Path]
    ) -> RunSink:
        return TableRun(self, path, start, overwrite=overwrite, artifacts=artifacts)

    def output(
        self, run: TableRun, file_name: str, layout: TableLayout, metadata: dict[str, str]
    ) -> TableOutput:
        """The output of one stream, ``<run directory>/<file_name><suffix>``."""
        raise NotImplementedError


class _Stream:
    """One stream of a run: its layout, its waiting rows and its output."""

    def __init__(self, run: TableRun, layout: TableLayout, file_name: str) -> None:
        self.run = run
        self.file_name = file_name
        self.layout = layout
        self.rows = _Rows(layout)
        self.where = f"run {run.uid}, stream {layout.stream!r}"
        self.flush_rows = self._flush_rows()
        self.failed: list[pa.RecordBatch] = []
        """batches to write: the new ones, and those whose write failed (when the output retries)"""
        self.output = run.format.output(run, file_name, layout, run.metadata(layout))

    def _flush_rows(self) -> int:
        fmt = self.run.format
        return max(1, min(fmt.batch_rows, fmt.batch_bytes // self.layout.row_nbytes))

    def relayout(self, layout: TableLayout) -> None:
        self.write()  # rows gathered under the earlier descriptors keep their schema
        self.layout = layout
        self.rows.add_keys(layout)
        self.flush_rows = self._flush_rows()
        self.output.layout_changed(layout, self.run.metadata(layout))

    def check_filled(self, doc: Mapping[str, Any]) -> None:
        filled = doc.get("filled") or {}
        for key, external in self.layout.external.items():
            if key in doc["data"]:
                flags = filled.get(key)
                if not (all(flags) if isinstance(flags, list) else bool(flags)):
                    raise DocumentError(
                        f"{self.where}: data key {key!r} is external ({external}, Resource/Datum) and the "
                        "event holds only a datum id; pass handler_registry={spec: handler} to the writer "
                        "so it can load the data"
                    )

    def write(self) -> None:
        """Turn the waiting rows into a batch and write it; rows that do not convert are reported."""
        errors: list[DocumentError] = []
        if self.rows.n:
            time, seq_num, data, _ = self.rows.take()
            batch, errors = record_batch(self.layout, time, seq_num, data, self.where)
            step = self.flush_rows  # a page of many events still makes batches of at most this
            self.failed += [batch.slice(i, step) for i in range(0, batch.num_rows, step)]
        if self.failed:
            metadata = self.run.metadata(self.layout)
            batches, self.failed = self.failed, []
            for i, batch in enumerate(batches):
                try:
                    self.output.write(batch, metadata)
                except Exception as err:
                    if self.output.retry_failed_batches:
                        self.failed = batches[i:]
                    if errors:
                        err.add_note(f"and {len(errors)} event(s) did not convert: {errors[0]}")
                    raise
        if errors:
            if len(errors) > 1:
                errors[0].add_note(f"{len(errors) - 1} more event(s) of this batch were left out")
            raise errors[0]


class TableRun:
    """Writes the documents of one run as one table per stream, in a :class:`TableFormat`."""

    def __init__(
        self,
        fmt: TableFormat,
        root: Path,
        start: Mapping[str, Any],
        *,
        overwrite: bool,
        artifacts: list[Path],
    ) -> None:
        self.format = fmt
        self.root = root
        self.uid = str(start.get("uid"))
        self.start_doc = start
        self.artifacts = artifacts
        self.stop_doc: Mapping[str, Any] | None = None
        self.status = "running"
        self.errors: list[str] = []
        self.grid = grid_from_start(start)
        self.streams: dict[str, _Stream] = {}
        self._stream_of: dict[str, _Stream] = {}
        self._start_json = dumps(start)
        self._files: set[str] = set()
        root.mkdir(parents=True, exist_ok=True)
        if overwrite:
            for path in fmt.outputs_in(root):
                _remove(path)

    # --- documents --------------------------------------------------------------------------------

    def __call__(self, name: str, doc: Any) -> None:
        if name in ("event", "event_page"):
            stream = self._stream(doc)
            if stream.layout.external:
                stream.check_filled(doc)
            if name == "event":
                stream.rows.add_event(doc, stream.where)
            else:
                stream.rows.add_page(doc, stream.where)
            if stream.rows.n >= stream.flush_rows:
                stream.write()
        elif name == "descriptor":
            self.descriptor(doc)
        elif name == "stop":
            self.stop_doc = doc
            self.finish(str(doc.get("exit_status", "unknown")))
        elif name == "stream_resource":
            raise DocumentError(
                f"run {self.uid}: stream_resource {doc.get('uid')} points at data in {doc.get('uri')!r}, "
                "which this writer cannot copy yet; write such runs with a writer that keeps the "
                "detector's own files"
            )

    def _stream(self, doc: Mapping[str, Any]) -> _Stream:
        stream = self._stream_of.get(doc["descriptor"])
        if stream is None:
            raise DocumentError(f"run {self.uid}: event refers to unknown descriptor {doc['descriptor']}")
        return stream

    def descriptor(self, doc: Mapping[str, Any]) -> None:
        name = str(doc.get("name", "primary"))
        stream = self.streams.get(name)
        earlier = stream.layout.descriptors if stream is not None else ()
        grid = self.grid if self.grid is not None and name in self.grid.streams else None
        layout = table_layout(self.start_doc, [*earlier, doc], grid, name)
        if stream is None:
            file_name = stream_file_name(name)
            while file_name in self._files:  # two stream names that map to one file name
                file_name += "_"
            self._files.add(file_name)
            stream = self.streams[name] = _Stream(self, layout, file_name)
        else:
            stream.relayout(layout)
        self._stream_of[doc["uid"]] = stream

    # --- metadata ---------------------------------------------------------------------------------

    def metadata(self, layout: TableLayout) -> dict[str, str]:
        metadata = {
            "bluesky_zarr": json.dumps({"format": FORMAT_VERSION, "kind": self.format.label}),
            "start": self._start_json,
            "stream": json.dumps(layout.stream),
            "descriptors": dumps(list(layout.descriptors)),
            "columns": json.dumps({c.data_key: c.name for c in layout.columns}),
            "status": json.dumps(self.status),
        }
        if layout.grid is not None:
            metadata["grid"] = dumps(layout.grid.metadata())
        if self.stop_doc is not None:
            metadata["stop"] = dumps(self.stop_doc)
        if self.errors:
            metadata["errors"] = dumps(self.errors)
        return metadata

    # --- the writer's calls -----------------------------------------------------------------------

    def flush(self) -> None:
        first: BaseException | None = None
        for stream in self.streams.values():
            try:
                stream.write()
            except Exception as err:
                first = first or err
        if first is not None:
            raise first

    def note_error(self, err: BaseException) -> None:
        self.errors.append(str(err))

    def finish(self, status: str) -> None:
        """Write every waiting row and end each stream's table with ``status``.

        A run whose writing failed anywhere is marked ``"fail"`` whatever the RunEngine said.
        """
        first: BaseException | None = None
        for stream in self.streams.values():
            try:
                stream.write()
            except Exception as err:
                first = first or err
                self.errors.append(str(err))
        self.status = "fail" if self.errors else status
        for stream in self.streams.values():
            try:
                stream.output.close(self.metadata(stream.layout))
            except Exception as err:
                first = first or err
        if first is not None:
            raise first


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
