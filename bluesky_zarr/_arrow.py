"""The Arrow IPC format: one live stream file per stream, ``<directory>/<prefix>/<stream>.arrows``.

The file is an Arrow IPC *stream* (not the random-access IPC file format, whose footer comes
last): the schema first, then record batches one after the other, each written whole to the
operating system as soon as it is made. Another process can follow a running scan and read every
complete batch while the file grows (``examples/follow_arrow_stream.py``).

A batch is written once ``batch_rows`` rows wait, and at every flush of the writer (every
``flush_interval``, 1 s by default). The schema metadata holds the start document and the
descriptor(s) known when the stream began; the schema cannot change afterwards, so what comes
later travels in the *custom metadata* of record batches:

- a batch written after a new descriptor of the stream carries ``descriptors`` (all of them);
- the last batch, with no rows, carries ``status``, ``descriptors``, ``errors`` and ``stop``
  (the stop document), and the stream's end-of-stream marker follows it.

A reader gets them with ``RecordBatchStreamReader.read_next_batch_with_custom_metadata()``. A
stream file with no end marker was cut short (a crash): every batch before the cut is whole.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from ._errors import ConfigurationError, WriteError
from ._tables import TableFormat, TableLayout, TableOutput, TableRun
from ._writer import Writer

__all__ = ["ArrowIPC", "ArrowWriter"]

_COMPRESSIONS = ("none", "lz4", "zstd")


@dataclass(frozen=True)
class ArrowIPC(TableFormat):
    """Each stream of a run as one live Arrow IPC stream file, ``<directory>/<prefix>/<stream>.arrows``.

    Parameters
    ----------
    data_keys
        ``"all"``, ``"arrays"``, ``"scalars"`` or a list of data key names.
    batch_rows
        A record batch is written once this many rows of a stream wait, and at every flush of
        the writer (every ``flush_interval``) whatever their number.
    batch_bytes
        ... or once the waiting rows hold about this many bytes (camera frames).
    compression
        Buffer compression inside the stream: ``"none"`` (default: followers read at once),
        ``"lz4"`` or ``"zstd"``.
    """

    label: ClassVar[str] = "arrow"
    suffix: ClassVar[str] = ".arrows"

    batch_rows: int = 10_000
    compression: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        compression = "none" if self.compression is None else str(self.compression).lower()
        if compression not in _COMPRESSIONS:
            raise ConfigurationError(
                f"ArrowIPC: compression={self.compression!r} is not one of {', '.join(_COMPRESSIONS)}"
            )
        object.__setattr__(self, "compression", compression)

    def output(
        self, run: TableRun, file_name: str, layout: TableLayout, metadata: dict[str, str]
    ) -> TableOutput:
        return _StreamFile(run, file_name, self, layout, metadata)

    def ipc_options(self) -> pa.ipc.IpcWriteOptions:
        return pa.ipc.IpcWriteOptions(compression=None if self.compression == "none" else self.compression)


class _StreamFile:
    """One stream's ``.arrows`` file; a schema that must change continues in ``<stream>.<n>.arrows``."""

    retry_failed_batches = False  # a half-written message cannot be taken back: the file ends there

    def __init__(
        self, run: TableRun, file_name: str, fmt: ArrowIPC, layout: TableLayout, metadata: dict[str, str]
    ) -> None:
        self.run = run
        self.file_name = file_name
        self.format = fmt
        self.pieces = 0
        self.broken: str | None = None
        self.pending: dict[str, str] = {}
        """custom metadata for the next batch"""
        self._open(layout, metadata)

    def _open(self, layout: TableLayout, metadata: dict[str, str]) -> None:
        name = self.file_name if not self.pieces else f"{self.file_name}.{self.pieces}"
        self.path = self.run.root / f"{name}{self.format.suffix}"
        self.schema = layout.schema(metadata)
        try:
            self.sink = pa.OSFile(str(self.path), "wb")
            self.writer = pa.ipc.new_stream(self.sink, self.schema, options=self.format.ipc_options())
            self.sink.flush()
        except OSError as err:
            raise WriteError(err.errno, f"cannot write {self.path}: {err.strerror or err}") from err
        self.run.artifacts.append(self.path)

    def layout_changed(self, layout: TableLayout, metadata: dict[str, str]) -> None:
        if layout.schema().equals(self.schema.remove_metadata()):
            self.pending["descriptors"] = metadata["descriptors"]
            return
        self.pieces += 1
        following = f"{self.file_name}.{self.pieces}{self.format.suffix}"
        self._end(
            {
                **self._end_metadata(metadata),
                "status": json.dumps("continued"),
                "continued_in": json.dumps(following),
            }
        )
        self._open(layout, metadata)

    def write(self, batch: pa.RecordBatch, metadata: dict[str, str]) -> None:
        if self.broken is not None:
            raise WriteError(
                f"{self.path} is cut short after an earlier write error ({self.broken}); every batch "
                "before it is whole, later rows of the stream were not written"
            )
        custom, self.pending = self.pending or None, {}
        try:
            self.writer.write_batch(batch, custom_metadata=custom)
            self.sink.flush()
        except OSError as err:
            self.broken = str(err)
            raise WriteError(err.errno, f"cannot write {self.path}: {err.strerror or err}") from err

    @staticmethod
    def _end_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
        return {k: metadata[k] for k in ("status", "descriptors", "stop", "errors") if k in metadata}

    def _end(self, custom: dict[str, str]) -> None:
        try:
            if self.broken is None:
                empty = pa.RecordBatch.from_pylist([], schema=self.schema)
                self.writer.write_batch(empty, custom_metadata=custom)
                self.writer.close()
            self.sink.close()
        except OSError as err:
            raise WriteError(err.errno, f"cannot write {self.path}: {err.strerror or err}") from err

    def close(self, metadata: dict[str, str]) -> None:
        self._end(self._end_metadata(metadata))


class ArrowWriter(Writer):
    """A bluesky callback that writes each stream of each run as a live Arrow IPC stream file.

    ``ArrowWriter(directory, ...)`` is ``Writer(directory, ArrowIPC(...), ...)``: one file per
    stream, ``<directory>/<prefix>/<stream>.arrows``, with the columns of the Parquet writer.
    Batches are written as the scan goes (every ``batch_rows`` rows and every
    ``flush_interval``), so another process can follow the scan; the stop document comes in the
    custom metadata of the last batch.

    Parameters
    ----------
    directory
        Where the runs go; created if missing.
    batch_rows
        Rows per record batch at most.
    data_keys
        Which data keys to write: ``"all"``, ``"arrays"``, ``"scalars"`` or a list of names.
    compression
        ``None`` (default), ``"lz4"`` or ``"zstd"``.
    **common
        ``file_prefix``, ``overwrite``, ``handler_registry``, ``buffer_bytes``,
        ``flush_interval``: as for :class:`~bluesky_zarr.Writer`.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        batch_rows: int = 10_000,
        data_keys: Any = "all",
        compression: str | None = None,
        **common: Any,
    ) -> None:
        super().__init__(
            directory, ArrowIPC(data_keys=data_keys, batch_rows=batch_rows, compression=compression), **common
        )

    def __repr__(self) -> str:
        return f"ArrowWriter({str(self.directory)!r}, file_prefix={self.file_prefix!r})"
