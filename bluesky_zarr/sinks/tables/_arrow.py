"""The Arrow IPC format: one live stream file per stream, ``<directory>/<prefix>/<stream>.arrows``.

The file is an Arrow IPC *stream* (not the random-access IPC file format, whose footer comes
last): the schema first, then record batches one after the other, each written whole to the
operating system as soon as it is made. Another process can follow a running scan and read every
complete batch while the file grows (``examples/follow_arrow_stream.py``).

A batch is written once ``batch_rows`` rows wait, and at every flush of the writer (every
``flush_interval``, 1 s by default). The schema metadata holds the start document and the
descriptor(s) known when the stream began; the schema cannot change afterwards, so what comes
later travels in the *custom metadata* of record batches:

- a batch written after a new descriptor of the stream carries ``descriptors`` (all of them),
  ``grid`` (the first batch of a relative scan: its ``origin`` and absolute setpoints) and, once
  the writer read frames from a detector file, ``detector_files``;
- the last batch, with no rows, carries ``status``, ``descriptors``, ``grid``,
  ``detector_files``, ``errors``, ``quarantined``, ``gaps``, ``superseded`` (the seq_nums that a
  later row took again after a pause/resume: of the rows with one, the last is the one to keep)
  and ``stop`` (the stop document), and the
  stream's end-of-stream marker follows it;
- when a new descriptor changes the columns, or a data key is widened to a wider dtype, the
  stream continues in a new file, ``<stream>.1.arrows``, named by ``continued_in`` in the last
  batch of the one before (whose ``status`` is ``continued``).

A reader gets them with ``RecordBatchStreamReader.read_next_batch_with_custom_metadata()``. A
stream file with no end marker was cut short (a crash): every batch before the cut is whole, and
:func:`~bluesky_zarr.finalize` ends it: the whole messages kept byte for byte, a torn one after
them left out, and the last batch (``status`` ``incomplete``, ``finalized``) and end marker added.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import pyarrow as pa

from ..._errors import ConfigurationError, WriteError
from ...storage import GrowingObject, Storage
from .._format import Finalized, finalized_by
from ._layout import TableLayout
from ._run import TableFormat, TableOutput, TableRun

__all__ = ["ArrowIPC"]

_COMPRESSIONS = ("none", "lz4", "zstd")


_UPDATED = ("descriptors", "grid", "detector_files")
"""Schema metadata that a later descriptor or document changes: carried by the next batch."""


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

    def finalize(self, output: Storage) -> list[Finalized]:
        return [_end_cut_stream(output, name) for name in output.list() if name.endswith(self.suffix)]

    def ipc_options(self) -> pa.ipc.IpcWriteOptions:
        return pa.ipc.IpcWriteOptions(compression=None if self.compression == "none" else self.compression)


class _Appending(io.RawIOBase):
    """A growing object as the file pyarrow writes a stream into: every write goes out at once."""

    def __init__(self, target: GrowingObject) -> None:
        super().__init__()
        self.target = target

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        view = memoryview(data)  # type: ignore[arg-type]
        self.target.append(view)
        return view.nbytes

    def close(self) -> None:
        if not self.closed:
            self.target.close()
        super().close()


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
        key = f"{name}{self.format.suffix}"
        self.path = self.run.artifact(key)
        self.schema = layout.schema(metadata)
        self.sink = _Appending(self.run.storage.grow(key, hidden=False))
        self.writer = pa.ipc.new_stream(self.sink, self.schema, options=self.format.ipc_options())
        self.run.artifacts.append(self.path)

    def status_changed(self, layout: TableLayout, metadata: dict[str, str]) -> None:
        """A batch of no rows whose custom metadata says the status (a follower takes the newest)."""
        self.pending["status"] = metadata["status"]
        self.write(pa.RecordBatch.from_pylist([], schema=self.schema), metadata)

    def layout_changed(self, layout: TableLayout, metadata: dict[str, str]) -> None:
        if layout.schema().equals(self.schema.remove_metadata()):
            self.pending.update({k: metadata[k] for k in _UPDATED if k in metadata})
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
            self.sink.target.publish()  # an object store shows the batch only now
        except WriteError as err:
            self.broken = str(err)
            raise

    @staticmethod
    def _end_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
        return {
            k: metadata[k]
            for k in ("status", *_UPDATED, "stop", "errors", "quarantined", "gaps", "superseded")
            if k in metadata
        }

    def _end(self, custom: dict[str, str]) -> None:
        try:
            if self.broken is None:
                empty = pa.RecordBatch.from_pylist([], schema=self.schema)
                self.writer.write_batch(empty, custom_metadata=custom)
                self.writer.close()
        finally:
            self.sink.close()

    def close(self, metadata: dict[str, str]) -> None:
        self._end(self._end_metadata(metadata))


def _end_cut_stream(storage: Storage, key: str) -> Finalized:
    """End a stream file that a stopped writer left without its last batch and end marker."""
    path = str(storage.artifact(key))
    whole, schema, metadata, batches = _whole_messages(storage, key)
    if schema is None:
        return Finalized(path, "arrow", "unknown", changed=False, notes=(f"{key}: holds no schema",))
    if batches and metadata.get("status", '"running"') != json.dumps("running"):
        return Finalized(path, "arrow", json.loads(metadata["status"]), changed=False)
    end = {**_StreamFile._end_metadata(metadata), "status": json.dumps("incomplete")}
    end["finalized"] = json.dumps(finalized_by())
    # a stream of the same schema with only the last batch: its messages follow the schema's
    tail = io.BytesIO()
    with pa.ipc.new_stream(tail, schema) as writer:
        writer.write_batch(pa.RecordBatch.from_pylist([], schema=schema), custom_metadata=end)
    ending = pa.BufferReader(tail.getvalue())
    pa.ipc.MessageReader.open_stream(ending).read_next_message()
    torn = storage.size(key) - whole
    with storage.reader(key) as source, storage.writer(key) as file:
        left = whole
        while left:
            block = source.read(min(left, 16 * 1024**2))
            file.write(block)
            left -= len(block)
        file.write(tail.getvalue()[ending.tell() :])
    notes = f"{key}: {batches} whole batch(es) kept, the last batch and end marker added"
    if torn:
        notes += f"; {torn} byte(s) of a batch cut short left out"
    return Finalized(path, "arrow", "incomplete", changed=True, notes=(notes,))


def _whole_messages(storage: Storage, key: str) -> tuple[int, pa.Schema | None, dict[str, str], int]:
    """The bytes of the whole messages at the start of a stream file, its schema, the metadata of
    the schema updated by every batch's custom metadata, and the number of whole batches."""
    whole = 0
    with storage.reader(key) as file:
        source = pa.PythonFile(file, mode="r")
        messages = pa.ipc.MessageReader.open_stream(source)
        with contextlib.suppress(StopIteration, OSError, pa.ArrowInvalid):
            while True:
                messages.read_next_message()
                whole = source.tell()
    if not whole:
        return 0, None, {}, 0
    with storage.reader(key) as file:
        reader = pa.ipc.open_stream(pa.PythonFile(file, mode="r"))
        metadata = {k.decode(): v.decode() for k, v in (reader.schema.metadata or {}).items()}
        batches = 0
        with contextlib.suppress(StopIteration, OSError, pa.ArrowInvalid):
            while True:
                _, custom = reader.read_next_batch_with_custom_metadata()
                batches += 1
                metadata.update({k.decode(): v.decode() for k, v in (custom or {}).items()})
        return whole, reader.schema, metadata, batches
