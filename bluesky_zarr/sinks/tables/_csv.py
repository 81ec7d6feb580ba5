"""The CSV format: one CSV file per scalar stream, ``<directory>/<prefix>/<stream>.csv``.

The columns are those of the Parquet and Arrow tables (``time``, ``seq_num``, on a grid each
event's ``<dim>_index`` and ``<dim>_grid`` setpoint, then one column per data key), each headed
``name [units]`` when the data key (or the grid dimension) has units: ``pandas.read_csv(path)``
reads it as it is, with numbers as numbers (floats always written with their decimal point, so
that a float key reads as floats even when its values are whole) and booleans as booleans. Rows
are appended as the scan goes (every ``batch_rows`` rows and every ``flush_interval`` of the
writer), so the file is readable at every moment; a crash leaves every row written before it.

CSV holds one value per cell: a data key with array readings (a camera frame) is refused, with
an error that names it; give ``CSV(data_keys="scalars")`` to write the rest, and write the
arrays with Zarr, HDF5 or Parquet. CSV has no place for metadata: the start and stop documents
and the run's status are in the other formats of the writer.

A descriptor that changes the columns of a stream continues it in a new file,
``<stream>.1.csv`` (then ``.2``), with the new header.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from ..._errors import ConfigurationError, WriteError
from ...storage import GrowingObject, Storage
from .._format import Finalized
from ._layout import TableLayout
from ._run import TableFormat, TableOutput, TableRun

__all__ = ["CSV", "csv_header"]


def csv_header(layout: TableLayout) -> list[str]:
    """The header of a stream's CSV file: each column's name, with ``[units]`` where it has units."""
    units: dict[str, str] = {c.name: c.variable.units for c in layout.columns if c.variable.units}
    if layout.grid is not None:
        for axis, setpoint, offset in zip(
            layout.grid.grid.axes, layout.grid.setpoint, layout.grid.offset, strict=True
        ):
            for column in (setpoint, offset):
                if column is not None and axis.units:
                    units[column] = axis.units
    units["time"] = "s"
    return [f"{f.name} [{units[f.name]}]" if f.name in units else f.name for f in layout.fields()]


def _refuse_arrays(layout: TableLayout, where: str) -> None:
    arrays = [c for c in layout.columns if c.shape]
    if arrays:
        column = arrays[0]
        raise ConfigurationError(
            f"{where}: CSV holds one value per cell, and data key {column.data_key!r} holds arrays of shape "
            f"{list(column.shape)}; write it with Zarr, HDF5 or Parquet, and give CSV(data_keys='scalars') "
            "to write the other data keys as CSV"
        )


def _cells(column: pa.Array) -> pa.Array:
    """Floats as Python writes them (``700.0``, not Arrow's ``700``), so that a reader takes a float
    key for floats even when its values are whole; the rest as Arrow writes them."""
    if not pa.types.is_floating(column.type):
        return column
    text = column.to_numpy(zero_copy_only=False).astype(str)
    return pa.array(np.where(column.is_null().to_numpy(zero_copy_only=False), "", text))


@dataclass(frozen=True)
class CSV(TableFormat):
    """Each scalar stream of a run as one CSV file, ``<directory>/<prefix>/<stream>.csv``.

    Parameters
    ----------
    data_keys
        ``"all"`` (an array data key is then an error that names it), ``"scalars"``, or a list of
        data key names.
    batch_rows
        Rows are appended once this many wait, and at every flush of the writer whatever their number.
    batch_bytes
        ... or once the waiting rows hold about this many bytes.
    """

    label: ClassVar[str] = "csv"
    suffix: ClassVar[str] = ".csv"

    batch_rows: int = 10_000

    def output(
        self, run: TableRun, file_name: str, layout: TableLayout, metadata: dict[str, str]
    ) -> TableOutput:
        return _CSVFile(run, file_name, layout)

    def finalize(self, output: Storage) -> list[Finalized]:
        return [_drop_torn_row(output, name) for name in output.list() if name.endswith(self.suffix)]


def _drop_torn_row(storage: Storage, key: str) -> Finalized:
    """A CSV file holds no status to finish: only a last row that a stopped writer left cut short
    (no line end) is dropped, so that every row read is one the writer wrote whole."""
    path = str(storage.artifact(key))
    with storage.reader(key) as file:
        text = file.read()
    whole = text.rfind(b"\n") + 1
    if whole == len(text):
        return Finalized(path, "csv", "unknown", changed=False, notes=(f"{key}: every row is whole",))
    storage.put(key, text[:whole], durable=True)
    note = f"{key}: a last row cut short ({len(text) - whole} byte(s)) left out; CSV holds no status"
    return Finalized(path, "csv", "unknown", changed=True, notes=(note,))


class _CSVFile:
    """One stream's ``.csv`` file; new columns continue it in ``<stream>.<n>.csv``."""

    retry_failed_batches = False  # rows once appended stay: a failed append ends the file there

    def __init__(self, run: TableRun, file_name: str, layout: TableLayout) -> None:
        self.run = run
        self.file_name = file_name
        self.pieces = 0
        self.where = f"run {run.uid}, stream {layout.stream!r}"
        self.broken: str | None = None
        _refuse_arrays(layout, self.where)
        self._open(layout)

    def _open(self, layout: TableLayout) -> None:
        name = self.file_name if not self.pieces else f"{self.file_name}.{self.pieces}"
        key = f"{name}{CSV.suffix}"
        self.path = self.run.artifact(key)
        self.names = [f.name for f in layout.fields()]
        self.header = csv_header(layout)
        self.target: GrowingObject = self.run.storage.grow(key, hidden=False)
        self.run.artifacts.append(self.path)
        self._append(pa.RecordBatch.from_pylist([], schema=layout.schema()), header=True)

    def _append(self, batch: pa.RecordBatch, *, header: bool = False) -> None:
        buffer = io.BytesIO()
        renamed = pa.RecordBatch.from_arrays([_cells(c) for c in batch.columns], names=self.header)
        pacsv.write_csv(renamed, buffer, pacsv.WriteOptions(include_header=header))
        try:
            self.target.append(buffer.getbuffer())
            self.target.publish()  # an object store shows the rows only now
        except WriteError as err:
            self.broken = str(err)
            raise

    def status_changed(self, layout: TableLayout, metadata: dict[str, str]) -> None:
        """Nothing: a CSV file has no place for a status."""

    def layout_changed(self, layout: TableLayout, metadata: dict[str, str]) -> None:
        _refuse_arrays(layout, self.where)
        if [f.name for f in layout.fields()] == self.names:
            return
        self.target.close()
        self.pieces += 1
        self._open(layout)

    def write(self, batch: pa.RecordBatch, metadata: dict[str, str]) -> None:
        if self.broken is not None:
            raise WriteError(
                f"{self.path} is cut short after an earlier write error ({self.broken}); every row before "
                "it is whole, later rows of the stream were not written"
            )
        self._append(batch)

    def close(self, metadata: dict[str, str]) -> None:
        self.target.close()
