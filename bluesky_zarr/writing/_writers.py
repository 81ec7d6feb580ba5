"""One writer per format, for the common case of one format: ``ZarrWriter("data/")``.

Each is :class:`~bluesky_zarr.Writer` with one format object made from its keywords: the format's
options are documented on the format (:class:`~bluesky_zarr.Zarr`,
:class:`~bluesky_zarr.Parquet`, :class:`~bluesky_zarr.ArrowIPC`, :class:`~bluesky_zarr.HDF5`,
:class:`~bluesky_zarr.CSV`), the writer's on
:class:`~bluesky_zarr.Writer`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Unpack

from ..sinks import CSV, HDF5, ArrowIPC, DataKeys, Parquet, Zarr
from ..storage import Target
from ._writer import Writer, WriterOptions

__all__ = ["ArrowWriter", "CSVWriter", "HDF5Writer", "ParquetWriter", "ZarrWriter"]


class _OneFormatWriter(Writer):
    """A :class:`Writer` of one format; its ``repr`` names the format's writer."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.target.location!r}, file_prefix={self.file_prefix!r})"


class ZarrWriter(_OneFormatWriter):
    """A bluesky callback that writes each run into a Zarr v3 store, ``<directory>/<prefix>.zarr``.

    Subscribe it to a RunEngine (``RE.subscribe(ZarrWriter("data/"))``), a ``RemoteDispatcher``,
    or call it with ``(name, doc)`` pairs. Grid scans (``shape`` in the start document) are
    stored on their grid; other streams grow along ``time``.

    ``ZarrWriter(directory, codecs=..., ...)`` is ``Writer(directory, Zarr(codecs=..., ...), ...)``.

    Parameters
    ----------
    directory
        Where the stores go: a local directory (created if missing), a ``file://`` URL, or
        ``s3://bucket/prefix/`` (with ``storage_options``).
    data_keys, codecs, chunks, shards
        The options of :class:`~bluesky_zarr.Zarr`.
    **common
        ``file_prefix``, ``overwrite``, ``handler_registry``, ``buffer_bytes``,
        ``flush_interval``, ``on_error``, ``frame_timeout``, ``storage_options``, ``progress``,
        ``worker``, ``ring_bytes``,
        ``overflow``: the options of
        :class:`~bluesky_zarr.Writer` (:class:`WriterOptions`).
    """

    def __init__(
        self,
        directory: Target,
        *,
        data_keys: DataKeys = "all",
        codecs: Mapping[str, Any] | None = None,
        chunks: Mapping[str, Any] | None = None,
        shards: Mapping[str, Any] | None = None,
        **common: Unpack[WriterOptions],
    ) -> None:
        super().__init__(
            directory, Zarr(data_keys=data_keys, codecs=codecs, chunks=chunks, shards=shards), **common
        )


class ParquetWriter(_OneFormatWriter):
    """A bluesky callback that writes each stream of each run as a Parquet file.

    One file per stream, ``<directory>/<prefix>/<stream>.parquet``, with the columns ``time``,
    ``seq_num``, the grid indices of grid scans, and every data key (array readings as Arrow
    tensor columns). Rows are flushed as small Parquet parts while the run goes on (readable at
    once, and safe from a crash) and merged into the final file at ``stop``.

    ``ParquetWriter(directory, compression=..., ...)`` is
    ``Writer(directory, Parquet(compression=..., ...), ...)``.

    Parameters
    ----------
    directory
        Where the runs go: a local directory (created if missing), a ``file://`` URL, or
        ``s3://bucket/prefix/`` (with ``storage_options``).
    data_keys, compression, compression_level, batch_rows, batch_bytes
        The options of :class:`~bluesky_zarr.Parquet`.
    **common
        ``file_prefix``, ``overwrite``, ``handler_registry``, ``buffer_bytes``,
        ``flush_interval``, ``on_error``, ``frame_timeout``, ``storage_options``, ``progress``,
        ``worker``, ``ring_bytes``,
        ``overflow``: the options of
        :class:`~bluesky_zarr.Writer` (:class:`WriterOptions`).
    """

    def __init__(
        self,
        directory: Target,
        *,
        data_keys: DataKeys = "all",
        compression: str | None = "zstd",
        compression_level: int | None = None,
        batch_rows: int = 65_536,
        batch_bytes: int = 64 * 1024**2,
        **common: Unpack[WriterOptions],
    ) -> None:
        fmt = Parquet(
            data_keys=data_keys,
            compression=compression,
            compression_level=compression_level,
            batch_rows=batch_rows,
            batch_bytes=batch_bytes,
        )
        super().__init__(directory, fmt, **common)


class ArrowWriter(_OneFormatWriter):
    """A bluesky callback that writes each stream of each run as a live Arrow IPC stream file.

    One file per stream, ``<directory>/<prefix>/<stream>.arrows``, with the columns of the
    Parquet writer. Batches are written as the scan goes (every ``batch_rows`` rows and every
    ``flush_interval``), so another process can follow the scan; the stop document comes in the
    custom metadata of the last batch.

    ``ArrowWriter(directory, batch_rows=..., ...)`` is
    ``Writer(directory, ArrowIPC(batch_rows=..., ...), ...)``.

    Parameters
    ----------
    directory
        Where the runs go: a local directory (created if missing), a ``file://`` URL, or
        ``s3://bucket/prefix/`` (with ``storage_options``).
    data_keys, compression, batch_rows, batch_bytes
        The options of :class:`~bluesky_zarr.ArrowIPC`.
    **common
        ``file_prefix``, ``overwrite``, ``handler_registry``, ``buffer_bytes``,
        ``flush_interval``, ``on_error``, ``frame_timeout``, ``storage_options``, ``progress``,
        ``worker``, ``ring_bytes``,
        ``overflow``: the options of
        :class:`~bluesky_zarr.Writer` (:class:`WriterOptions`).
    """

    def __init__(
        self,
        directory: Target,
        *,
        data_keys: DataKeys = "all",
        compression: str | None = None,
        batch_rows: int = 10_000,
        batch_bytes: int = 64 * 1024**2,
        **common: Unpack[WriterOptions],
    ) -> None:
        fmt = ArrowIPC(
            data_keys=data_keys, compression=compression, batch_rows=batch_rows, batch_bytes=batch_bytes
        )
        super().__init__(directory, fmt, **common)


class HDF5Writer(_OneFormatWriter):
    """A bluesky callback that writes each run into one NeXus HDF5 file, ``<directory>/<prefix>.h5``.

    The file holds the datasets of the Zarr store, on the scan's grid, with dimension scales and
    NeXus ``NXentry``/``NXdata`` attributes, and is written as a SWMR writer: readers open it with
    ``h5py.File(path, "r", swmr=True)`` during the scan and after a crash.

    ``HDF5Writer(directory, compression=..., ...)`` is ``Writer(directory, HDF5(compression=..., ...), ...)``.

    Parameters
    ----------
    directory
        A local directory (created if missing) or a ``file://`` URL.
    data_keys, compression, chunks, suffix
        The options of :class:`~bluesky_zarr.HDF5`.
    **common
        ``file_prefix``, ``overwrite``, ``handler_registry``, ``buffer_bytes``,
        ``flush_interval``, ``on_error``, ``frame_timeout``, ``worker``, ``ring_bytes``,
        ``overflow``: the options of
        :class:`~bluesky_zarr.Writer` (:class:`WriterOptions`).
    """

    def __init__(
        self,
        directory: Target,
        *,
        data_keys: DataKeys = "all",
        compression: Mapping[str, Any] | None = None,
        chunks: Mapping[str, Any] | None = None,
        suffix: str = ".h5",
        **common: Unpack[WriterOptions],
    ) -> None:
        fmt = HDF5(data_keys=data_keys, compression=compression, chunks=chunks, suffix=suffix)
        super().__init__(directory, fmt, **common)


class CSVWriter(_OneFormatWriter):
    """A bluesky callback that writes each scalar stream of each run as a CSV file.

    One file per stream, ``<directory>/<prefix>/<stream>.csv``, with the columns ``time``,
    ``seq_num``, the grid indices and setpoints of grid scans, and every scalar data key, headed
    ``name [units]``; ``pandas.read_csv(path)`` reads it. Array data keys are refused unless
    ``data_keys="scalars"``.

    ``CSVWriter(directory, data_keys="scalars")`` is ``Writer(directory, CSV(data_keys="scalars"))``.

    Parameters
    ----------
    directory
        Where the runs go: a local directory (created if missing), a ``file://`` URL, or
        ``s3://bucket/prefix/`` (with ``storage_options``).
    data_keys, batch_rows, batch_bytes
        The options of :class:`~bluesky_zarr.CSV`.
    **common
        The options of :class:`~bluesky_zarr.Writer` (:class:`WriterOptions`).
    """

    def __init__(
        self,
        directory: Target,
        *,
        data_keys: DataKeys = "all",
        batch_rows: int = 10_000,
        batch_bytes: int = 64 * 1024**2,
        **common: Unpack[WriterOptions],
    ) -> None:
        fmt = CSV(data_keys=data_keys, batch_rows=batch_rows, batch_bytes=batch_bytes)
        super().__init__(directory, fmt, **common)
