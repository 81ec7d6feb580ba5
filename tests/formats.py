"""One adapter per output format, so that the behaviour tests (``tests/conformance``) are format-neutral.

An adapter makes the format's writer, says where a run's output is, and reads it back with stock
readers only: a Zarr store with xarray (tensorstore must agree), Parquet and Arrow IPC tables with
pyarrow, polars and pandas (all three must agree). What it reads back is :class:`Readings`, one
:class:`Reading` per event the output holds, filed under the grid point the output gives it; so one
check (:func:`assert_holds`) compares any format with the documents.

What differs between the formats is said here and only here: a Zarr store keeps the newest reading
of a grid point on the grid and the older ones (and events off the grid) in its overflow group; a
table keeps every event as a row, in the order they came. Parquet flushes rows as parts that are
merged at the end; Arrow IPC writes one stream whose last batch carries the status.
"""

from __future__ import annotations

import functools
import json
import math
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import xarray as xr
from stock import (
    assert_tensorstore_agrees,
    assert_unwritten_points_hold_fill_values,
    has_group,
    hdf5_has_group,
    hdf5_root_attrs,
    open_hdf5_stream,
    open_stream,
    root_attrs,
    variables_by_data_key,
)
from tables import (
    Views,
    read_arrows,
    read_cut_stream,
    read_parquet,
    read_parts,
    stream_metadata,
    whole_batches,
)

from bluesky_zarr import (
    CSV,
    ArrowWriter,
    HDF5Writer,
    ParquetWriter,
    Writer,
    ZarrWriter,
    finalize,
    live_parquet_parts,
    open_run,
)


@dataclass(frozen=True)
class Reading:
    """One event as an output holds it."""

    seq_num: int
    time: float
    index: tuple[int, ...] | None
    """The grid point it is filed under; ``None`` off the grid (or in a stream without one)."""
    setpoints: dict[str, float]
    """The planned setpoint of its grid point, per dimension that has setpoints (absolute positions)."""
    offsets: dict[str, float]
    """A relative plan's offset of its grid point from where the motor started, per relative dimension."""
    data: dict[str, Any]
    """Data key -> reading."""


@dataclass(frozen=True)
class Readings:
    """Every event one stream of an output holds."""

    rows: list[Reading]
    in_event_order: bool
    """Whether the rows come in the order the events came (tables), or by grid point (Zarr)."""

    def seq_nums(self) -> list[int]:
        return [r.seq_num for r in self.rows]

    def points(self) -> dict[tuple[int, ...], Reading]:
        """The newest reading filed under each grid point."""
        newest: dict[tuple[int, ...], Reading] = {}
        for row in self.rows:
            if row.index is not None:
                newest[row.index] = row
        return newest

    def older(self) -> list[Reading]:
        """The readings that are not the newest of a grid point (measured again later, or off the grid)."""
        newest = {id(r) for r in self.points().values()}
        return [r for r in self.rows if id(r) not in newest]


@dataclass(frozen=True)
class RunInfo:
    """What an output says about its run."""

    status: str
    start: dict[str, Any]
    stop: dict[str, Any] | None
    errors: list[str]
    quarantined: list[str]
    """One line per data key whose readings could not be stored and are in the quarantine stream."""


def assert_holds(readings: Readings, evs: list[dict[str, Any]], keys: list[str]) -> None:
    """The output holds each event exactly once: its time, seq_num and readings, numbers of the same kind.

    Rows in event order are compared in that order; rows filed by grid point are matched by
    ``(seq_num, time)``.
    """
    rows = readings.rows
    assert len(rows) == len(evs), f"{len(rows)} readings for {len(evs)} events"
    if readings.in_event_order:
        pairs = list(zip(rows, evs, strict=True))
    else:
        by_event = {(r.seq_num, r.time): r for r in rows}
        assert len(by_event) == len(rows), "an event is held twice"
        pairs = [(by_event[(e["seq_num"], e["time"])], e) for e in evs]
    # a key whose readings are of several kinds (a motor at 0, then at 0.5) is stored as the kind
    # that holds them all (widened): a float
    kinds = {
        key: np.result_type(*[np.asarray(e["data"][key]).dtype for e in evs]).kind
        for key in keys
        if evs and all(np.asarray(e["data"][key]).dtype.kind in "biuf" for e in evs)
    }
    for row, event in pairs:
        assert (row.seq_num, row.time) == (event["seq_num"], event["time"])
        for key in keys:
            expected, got = np.asarray(event["data"][key]), np.asarray(row.data[key])
            np.testing.assert_array_equal(got, expected, err_msg=f"{key} of seq_num {row.seq_num}")
            if expected.dtype.kind in "iuf":
                assert got.dtype.kind == kinds.get(key, expected.dtype.kind), (key, row.seq_num, got.dtype)


def assert_on_their_grid(
    readings: Readings,
    motors: list[str],
    setpoints: list[list[float]],
    origins: list[float] | None = None,
) -> None:
    """Every reading filed under a grid point is at the point its own motor readbacks point to, and
    carries that point's planned setpoints as absolute positions. A relative plan's ``setpoints``
    are offsets from ``origins`` (where the motors started): the reading carries them as offsets."""
    relative = origins is not None
    origins = origins if origins is not None else [0.0] * len(motors)
    for row in readings.rows:
        if row.index is None:
            continue
        expected = tuple(
            int(np.argmin(np.abs(np.asarray(values) + origin - row.data[m])))
            for values, origin, m in zip(setpoints, origins, motors, strict=True)
        )
        assert row.index == expected, (row.seq_num, row.index, expected)
        for d, motor in enumerate(motors):
            np.testing.assert_allclose(row.setpoints[motor], setpoints[d][expected[d]] + origins[d])
        if relative:
            assert row.offsets == {m: setpoints[d][expected[d]] for d, m in enumerate(motors)}, row
        else:
            assert row.offsets == {}, row


# --- the adapters ---------------------------------------------------------------------------------


class OutputFormat(ABC):
    """How the behaviour tests make, find and read one format's output."""

    name: str
    """The format's name for ``Writer(directory, name)`` and ``export(..., format=name)``."""
    writer_class: type[Writer]

    def __repr__(self) -> str:
        return self.name

    def writer(self, directory: Path, **options: Any) -> Writer:
        return self.writer_class(directory, **options)

    @abstractmethod
    def output(self, directory: Path, prefix: str) -> Path:
        """Where the run with file prefix ``prefix`` goes (a store, or a directory of stream files)."""

    @abstractmethod
    def existing(self, prefix: str) -> str:
        """The file a writer names when it finds an earlier run's output there, relative to the directory."""

    @abstractmethod
    def info(self, directory: Path, prefix: str) -> RunInfo:
        """Status, start, stop and errors, as the finished output says them."""

    @abstractmethod
    def readings(self, directory: Path, prefix: str, stream: str = "primary") -> Readings:
        """The events of a stream of a finished (or closed) run."""

    @abstractmethod
    def origins(self, directory: Path, prefix: str, stream: str = "primary") -> dict[str, float | None]:
        """Where each relative grid dimension's motor started, as the finished output says it."""

    @abstractmethod
    def at(
        self, directory: Path, prefix: str, point: dict[str, float], stream: str = "primary"
    ) -> dict[str, Any]:
        """The readings (data key -> value) at the grid point with these setpoints, selected by value
        the way a user of the format's stock readers would."""

    @abstractmethod
    def live_readings(self, directory: Path, prefix: str, stream: str = "primary") -> Readings:
        """The events of a stream that a reader sees while the writer is still writing it."""

    def live_status(self, directory: Path, prefix: str) -> str:
        """The status a reader finds while the writer is still writing the run."""
        return self.info(directory, prefix).status

    def unfinished_readings(self, directory: Path, prefix: str, stream: str = "primary") -> Readings:
        """The events a reader finds in a run whose writer stopped, before it is finalized."""
        return self.live_readings(directory, prefix, stream)

    def killed(self, directory: Path, prefix: str) -> tuple[RunInfo, Readings]:
        """What a reader gets from a run whose writer process was killed, once it is finalized."""
        finalize(self.output(directory, prefix))
        return self.info(directory, prefix), self.readings(directory, prefix)

    def replaced_output_error(self, output: Path) -> str:
        """What the error says (a regular expression) when the output was replaced by a plain file
        after the start document: a directory output cannot hold the stream's files."""
        return rf"{re.escape(str(output))}/primary\S*: .*Not a directory"

    def leftovers(self, directory: Path, prefix: str) -> list[Path]:
        """Working files that a finished run must not leave behind."""
        return sorted(self.output(directory, prefix).rglob(".*.partial"))


class ZarrOutput(OutputFormat):
    name = "zarr"
    writer_class = ZarrWriter

    def output(self, directory: Path, prefix: str) -> Path:
        return Path(directory) / f"{prefix}.zarr"

    def existing(self, prefix: str) -> str:
        return f"{prefix}.zarr"

    def info(self, directory: Path, prefix: str) -> RunInfo:
        return _run_info(root_attrs(self.output(directory, prefix)))

    def readings(self, directory: Path, prefix: str, stream: str = "primary") -> Readings:
        store = self.output(directory, prefix)
        assert_tensorstore_agrees(store)
        return zarr_readings(store, stream)

    def live_readings(self, directory: Path, prefix: str, stream: str = "primary") -> Readings:
        return zarr_readings(self.output(directory, prefix), stream)

    def origins(self, directory: Path, prefix: str, stream: str = "primary") -> dict[str, float | None]:
        ds = open_stream(self.output(directory, prefix), stream)
        dims = ds.attrs["grid"]["dims"]
        return {d: ds[d].attrs.get("origin") for d in dims if d in ds.variables and ds[d].attrs["relative"]}

    def at(
        self, directory: Path, prefix: str, point: dict[str, float], stream: str = "primary"
    ) -> dict[str, Any]:
        """By ``.sel`` of xarray's ``open_zarr``, and the same from ``open_datatree`` and ``open_run``."""
        store = self.output(directory, prefix)
        ds = xr.open_zarr(store, group=stream, zarr_format=3).sel(point)
        tree = xr.open_datatree(store, engine="zarr", zarr_format=3)[stream].to_dataset().sel(point)
        run = open_run(store)[stream].to_dataset().sel(point)
        xr.testing.assert_identical(tree.load(), ds.load())
        for variable in tree.variables.values():  # open_run leaves out this Zarr v2 attribute
            variable.attrs.pop("_ARRAY_DIMENSIONS")
        xr.testing.assert_identical(run.load(), tree)
        return {key: ds[name].values for key, name in variables_by_data_key(ds).items()}


def zarr_readings(store: Path, stream: str) -> Readings:
    overflow = f"{stream}/overflow"
    return gridded_readings(
        open_stream(store, stream), open_stream(store, overflow) if has_group(store, overflow) else None
    )


def gridded_readings(ds: xr.Dataset, overflow: xr.Dataset | None) -> Readings:
    """A stream's events: the grid points the ``written`` mask vouches for (by seq_num), then its
    overflow group; or, with no grid, the events along ``time``."""
    grid = ds.attrs.get("grid")
    if grid is None:
        return Readings(_rows(ds, ds.sizes.get("time", 0), None), in_event_order=True)
    dims = list(grid["dims"])
    assert_unwritten_points_hold_fill_values(ds, dims)
    seq_num = ds["seq_num"].values
    points = sorted(
        (tuple(int(i) for i in p) for p in np.argwhere(ds["written"].values)), key=seq_num.__getitem__
    )
    setpoints = {d: (axis, ds[d].values) for axis, d in enumerate(dims) if d in ds.variables}
    offsets = {
        d: (axis, ds[f"{d}_offset"].values) for axis, d in enumerate(dims) if f"{d}_offset" in ds.variables
    }
    rows = _rows(ds, points, setpoints, offsets)
    if overflow is not None:
        rows += _rows(overflow, overflow.sizes["time"], None)
    return Readings(rows, in_event_order=False)


def _rows(
    ds: Any,
    places: int | list[tuple[int, ...]],
    setpoints: dict[str, tuple[int, np.ndarray]] | None,
    offsets: dict[str, tuple[int, np.ndarray]] | None = None,
) -> list[Reading]:
    """The readings at grid points, with their setpoints and offsets (dim -> its axis and
    coordinate); or, given a number, the first ones along time."""
    values = {key: ds[name].values for key, name in variables_by_data_key(ds).items()}
    time, seq_num = ds["time"].values, ds["seq_num"].values
    if isinstance(places, int):
        places = [(i,) for i in range(places)]
    return [
        Reading(
            seq_num=int(seq_num[place]),
            time=float(time[place]),
            index=place if setpoints is not None else None,
            setpoints={d: float(v[place[axis]]) for d, (axis, v) in (setpoints or {}).items()},
            offsets={d: float(v[place[axis]]) for d, (axis, v) in (offsets or {}).items()},
            data={key: v[place] for key, v in values.items()},
        )
        for place in places
    ]


class HDF5Output(OutputFormat):
    """One NeXus HDF5 file per run, ``<directory>/<prefix>.h5``: the Zarr store's datasets, read with
    xarray (h5netcdf) and h5py as a SWMR reader (which also opens the file of a killed writer)."""

    name = "hdf5"
    writer_class = HDF5Writer

    def output(self, directory: Path, prefix: str) -> Path:
        return Path(directory) / f"{prefix}.h5"

    def existing(self, prefix: str) -> str:
        return f"{prefix}.h5"

    def info(self, directory: Path, prefix: str) -> RunInfo:
        return _run_info(hdf5_root_attrs(self.output(directory, prefix)))

    def readings(self, directory: Path, prefix: str, stream: str = "primary") -> Readings:
        path = self.output(directory, prefix)
        overflow = f"{stream}/overflow"
        has_overflow = hdf5_has_group(path, f"entry/{overflow}")
        return gridded_readings(
            open_hdf5_stream(path, stream), open_hdf5_stream(path, overflow) if has_overflow else None
        )

    def live_readings(self, directory: Path, prefix: str, stream: str = "primary") -> Readings:
        return self.readings(directory, prefix, stream)

    def origins(self, directory: Path, prefix: str, stream: str = "primary") -> dict[str, float | None]:
        ds = open_hdf5_stream(self.output(directory, prefix), stream)
        dims = ds.attrs["grid"]["dims"]
        return {d: ds[d].attrs.get("origin") for d in dims if d in ds.variables and ds[d].attrs["relative"]}

    def at(
        self, directory: Path, prefix: str, point: dict[str, float], stream: str = "primary"
    ) -> dict[str, Any]:
        """By ``.sel`` of xarray's h5netcdf engine."""
        ds = open_hdf5_stream(self.output(directory, prefix), stream).sel(point)
        return {key: ds[name].values for key, name in variables_by_data_key(ds).items()}

    def replaced_output_error(self, output: Path) -> str:
        """The file, not an HDF5 file any more, cannot be opened again to add the stream's group."""
        return rf"{re.escape(str(output))}: .*file signature not found"

    def leftovers(self, directory: Path, prefix: str) -> list[Path]:
        return sorted(Path(directory).rglob(".*.partial"))


class TableOutput(OutputFormat):
    """Parquet and Arrow IPC: ``<directory>/<prefix>/<stream><suffix>``, one row per event."""

    suffix: str

    def output(self, directory: Path, prefix: str) -> Path:
        return Path(directory) / prefix

    def existing(self, prefix: str) -> str:
        return f"{prefix}/primary{self.suffix}"

    def stream_file(self, directory: Path, prefix: str, stream: str = "primary") -> Path:
        return self.output(directory, prefix) / f"{stream}{self.suffix}"

    def any_stream(self, directory: Path, prefix: str) -> str:
        """A stream of the run, for what every stream's table says alike (status, start, stop):
        ``primary``, or the first one of a run without it (a fly scan's)."""
        found = sorted(
            p.name.removesuffix(self.suffix) for p in self.output(directory, prefix).glob(f"*{self.suffix}")
        )
        return "primary" if "primary" in found or not found else found[0]

    def grid(self, directory: Path, prefix: str, stream: str = "primary") -> dict[str, Any]:
        """The ``grid`` of the finished table's metadata."""
        return self.readings_views(directory, prefix, stream).metadata()["grid"]  # type: ignore[no-any-return]

    def origins(self, directory: Path, prefix: str, stream: str = "primary") -> dict[str, float | None]:
        return dict(self.grid(directory, prefix, stream)["origin"])

    def at(
        self, directory: Path, prefix: str, point: dict[str, float], stream: str = "primary"
    ) -> dict[str, Any]:
        """The newest row whose setpoint columns hold ``point``: filtered by polars, and by pyarrow."""
        views = self.readings_views(directory, prefix, stream)
        metadata = views.metadata()
        columns = metadata["grid"]["setpoint_columns"]
        by_polars = views.polars.filter(*(pl.col(columns[d]) == v for d, v in point.items()))
        mask = functools.reduce(
            pc.and_, (pc.equal(views.arrow.column(columns[d]), v) for d, v in point.items())
        )
        by_arrow = views.arrow.filter(mask)
        assert by_polars.height == by_arrow.num_rows >= 1, point
        return {key: by_arrow.column(name)[-1].as_py() for key, name in metadata["columns"].items()}

    @abstractmethod
    def readings_views(self, directory: Path, prefix: str, stream: str = "primary") -> Views:
        """The finished table as the stock readers read it."""


class ParquetOutput(TableOutput):
    name = "parquet"
    writer_class = ParquetWriter
    suffix = ".parquet"

    def info(self, directory: Path, prefix: str) -> RunInfo:
        stream = self.any_stream(directory, prefix)
        return _run_info(read_parquet(self.stream_file(directory, prefix, stream)).metadata())

    def readings(self, directory: Path, prefix: str, stream: str = "primary") -> Readings:
        return table_readings(self.readings_views(directory, prefix, stream))

    def readings_views(self, directory: Path, prefix: str, stream: str = "primary") -> Views:
        return read_parquet(self.stream_file(directory, prefix, stream))

    def live_readings(self, directory: Path, prefix: str, stream: str = "primary") -> Readings:
        parts = self.stream_file(directory, prefix, stream).with_suffix(".parquet.parts")
        return table_readings(read_parts(parts))

    def live_status(self, directory: Path, prefix: str) -> str:
        """The newest part's (each part says the status when it was written)."""
        newest = live_parquet_parts(Path(directory) / prefix, "primary")[-1]
        return json.loads(pq.read_schema(newest).metadata[b"status"])  # type: ignore[no-any-return]

    def leftovers(self, directory: Path, prefix: str) -> list[Path]:
        run = self.output(directory, prefix)
        return sorted([*run.rglob("*.parquet.parts"), *super().leftovers(directory, prefix)])


class ArrowOutput(TableOutput):
    name = "arrow"
    writer_class = ArrowWriter
    suffix = ".arrows"

    def pieces(self, directory: Path, prefix: str, stream: str = "primary") -> list[Path]:
        """The files of a stream: a descriptor that changed its columns, or a key widened to a wider
        dtype, starts a new one, named in the last batch of the one before (``continued_in``)."""
        paths = [self.stream_file(directory, prefix, stream)]
        while True:
            batches = whole_batches(paths[-1])
            following = batches[-1][1].get("continued_in") if batches else None
            if following is None:
                return paths
            paths.append(paths[-1].with_name(following))

    def info(self, directory: Path, prefix: str) -> RunInfo:
        """The last batch's custom metadata once the stream ended, else the schema's."""
        path = self.pieces(directory, prefix, self.any_stream(directory, prefix))[-1]
        batches = whole_batches(path)
        end = batches[-1][1] if batches and "status" in batches[-1][1] else {}
        schema = stream_metadata(path)
        return RunInfo(
            end.get("status", schema["status"]),
            schema["start"],
            end.get("stop"),
            end.get("errors", []),
            end.get("quarantined", []),
        )

    def readings(self, directory: Path, prefix: str, stream: str = "primary") -> Readings:
        pieces = [table_readings(read_arrows(p)) for p in self.pieces(directory, prefix, stream)]
        return Readings([row for piece in pieces for row in piece.rows], in_event_order=True)

    def readings_views(self, directory: Path, prefix: str, stream: str = "primary") -> Views:
        """The last file of the stream (the one with its newest columns)."""
        return read_arrows(self.pieces(directory, prefix, stream)[-1])

    def grid(self, directory: Path, prefix: str, stream: str = "primary") -> dict[str, Any]:
        """The last batch's ``grid``: the schema's says only what was known before the first event."""
        _, custom = whole_batches(self.pieces(directory, prefix, stream)[-1])[-1]
        return custom["grid"]  # type: ignore[no-any-return]

    def live_readings(self, directory: Path, prefix: str, stream: str = "primary") -> Readings:
        return self.readings(directory, prefix, stream)  # every batch is whole once flushed

    def unfinished_readings(self, directory: Path, prefix: str, stream: str = "primary") -> Readings:
        return table_readings(read_cut_stream(self.stream_file(directory, prefix, stream)))


class CSVOutput:
    """CSV, ``<directory>/<prefix>/<stream>.csv``: one row per event of the scalar data keys, read with
    pandas, pyarrow and polars (all three must agree). CSV holds no run metadata (status, documents)
    and no arrays, so it runs the behaviour tests about readings only (``conformance/test_csv.py``)."""

    name = "csv"

    def __repr__(self) -> str:
        return self.name

    def writer(self, directory: Path, **options: Any) -> Writer:
        return Writer(directory, CSV(data_keys="scalars"), **options)

    def stream_file(self, directory: Path, prefix: str, stream: str = "primary") -> Path:
        return Path(directory) / prefix / f"{stream}.csv"

    def readings(self, directory: Path, prefix: str, stream: str = "primary") -> Readings:
        """The rows, after checking that pandas, pyarrow and polars read the same values. A column is
        named by its header up to `` [units]``; ``<dim>_index``, ``<dim>_grid`` and ``<dim>_offset``
        are the grid's, in the order of its dimensions."""
        path = self.stream_file(directory, prefix, stream)
        by_pandas = pd.read_csv(path)
        by_arrow = pacsv.read_csv(path).to_pandas()
        by_polars = pl.read_csv(path).to_pandas()
        for other in (by_arrow, by_polars):
            pd.testing.assert_frame_equal(other, by_pandas, check_dtype=False)
        table = by_pandas.rename(columns=lambda label: label.split(" [")[0])
        dims = [c.removesuffix("_index") for c in table.columns if c.endswith("_index")]
        grid_columns = {f"{d}_{what}" for d in dims for what in ("index", "grid", "offset")}
        keys = [c for c in table.columns if c not in {"time", "seq_num", *grid_columns}]
        rows = []
        for row in table.to_dict("records"):  # each column keeps its own type
            on_grid = bool(dims) and not pd.isna(row[f"{dims[0]}_index"])
            rows.append(
                Reading(
                    seq_num=int(row["seq_num"]),
                    time=float(row["time"]),
                    index=tuple(int(row[f"{d}_index"]) for d in dims) if on_grid else None,
                    setpoints={d: row[f"{d}_grid"] for d in dims if on_grid and f"{d}_grid" in table},
                    offsets={d: row[f"{d}_offset"] for d in dims if on_grid and f"{d}_offset" in table},
                    data={key: row[key] for key in keys},
                )
            )
        return Readings(rows, in_event_order=True)


def _run_info(metadata: dict[str, Any]) -> RunInfo:
    """What a Zarr store's root attributes, or a table's schema metadata, say about the run."""
    return RunInfo(
        metadata["status"],
        metadata["start"],
        metadata.get("stop"),
        metadata.get("errors", []),
        metadata.get("quarantined", []),
    )


def table_readings(views: Views) -> Readings:
    """The rows of a table, after checking that pyarrow, polars and pandas read the same values with
    numbers of the same kind, and the same grid indices and setpoints (null off the grid)."""
    metadata = views.metadata()
    n = views.num_rows
    columns: dict[tuple[str, str], np.ndarray] = {}
    """(``"data"`` or ``"provenance"``, data key or column) -> values: a data key may be named ``time``"""
    for key, name in [(("provenance", "time"), "time"), (("provenance", "seq_num"), "seq_num"),
                      *((("data", k), c) for k, c in metadata["columns"].items())]:  # fmt: skip
        by_reader = views.columns(name)
        reference = by_reader["pyarrow"]
        for reader, values in by_reader.items():
            if reference.dtype == object and any(isinstance(v, np.ndarray) for v in reference):
                assert [v is None for v in values] == [v is None for v in reference], (name, reader)
                for got, ref in zip(values, reference, strict=True):
                    if ref is not None:
                        np.testing.assert_array_equal(got, ref, err_msg=f"{name} by {reader}")
                        assert got.dtype == ref.dtype, (name, reader, got.dtype)
                continue
            np.testing.assert_array_equal(values, reference, err_msg=f"{name} by {reader}")
            if reference.dtype.kind in "iuf":
                assert values.dtype.kind == reference.dtype.kind, (name, reader, values.dtype)
        columns[key] = reference
    grid = metadata.get("grid")
    index: list[list[Any]] = []
    setpoints: dict[str, list[Any]] = {}
    offsets: dict[str, list[Any]] = {}
    if grid is not None:
        index = [_nullable(views, grid["index_columns"][d]) for d in grid["dims"]]
        setpoints = {d: _nullable(views, c) for d, c in grid["setpoint_columns"].items()}
        offsets = {d: _nullable(views, c) for d, c in grid["offset_columns"].items()}
    data_keys = list(metadata["columns"])
    rows = []
    for i in range(n):
        point = tuple(int(column[i]) for column in index) if index and index[0][i] is not None else None
        rows.append(
            Reading(
                seq_num=int(columns["provenance", "seq_num"][i]),
                time=float(columns["provenance", "time"][i]),
                index=point,
                setpoints={d: v[i] for d, v in setpoints.items() if v[i] is not None},
                offsets={d: v[i] for d, v in offsets.items() if v[i] is not None},
                data={key: columns["data", key][i] for key in data_keys},
            )
        )
    return Readings(rows, in_event_order=True)


def _nullable(views: Views, column: str) -> list[Any]:
    """A column with nulls (grid indices off the grid) as a list with ``None``, the same by every reader."""
    by_arrow = views.arrow.column(column).to_pylist()
    by_polars = views.polars[column].to_list()
    by_pandas = [None if pd.isna(v) else v for v in views.pandas[column].tolist()]
    assert by_polars == by_arrow, (column, "polars")
    assert [None if v is None else float(v) for v in by_pandas] == [
        None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in by_arrow
    ], (column, "pandas")
    return by_arrow


ZARR, PARQUET, ARROW, HDF5 = ZarrOutput(), ParquetOutput(), ArrowOutput(), HDF5Output()
FORMATS: list[OutputFormat] = [ZARR, PARQUET, ARROW, HDF5]
CSV_OUTPUT = CSVOutput()
