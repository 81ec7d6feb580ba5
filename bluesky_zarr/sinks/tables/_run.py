"""What the Parquet and Arrow IPC formats share: one table per stream, built from event pages.

The schema metadata of every table holds, each value strict JSON text
(:func:`bluesky_zarr.to_json`): ``start``, ``descriptors`` (every descriptor of the stream so
far), ``stream``, ``columns`` (data key -> column name), ``grid`` (dims, shape, snaking,
setpoints, units, the index/setpoint column names, and for a relative scan each dimension's
``origin``, ``offsets`` and offset column), ``status`` and, once they come, ``stop`` and
``errors``, and ``superseded``.

A paused and resumed plan (``RE.request_pause``/``RE.resume``, a suspender, ``Msg("pause")``) is
rewound by the RunEngine to its last checkpoint: the readings after it are taken again, and
bluesky gives the new events the *same* ``seq_num`` as those they replace (it rewinds its event
counters too). Every row is kept; ``superseded`` lists the ``seq_num`` values that a later row
of the stream took again, so that a reader keeps, of the rows with one of those ``seq_num``, only
the last. (Not in a quarantine stream, whose rows share the ``seq_num`` of their event.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

import pyarrow as pa

from ..._documents import Event, EventPage, RunStart
from ..._encoding import dumps
from ..._errors import ConfigurationError, DocumentError
from ...layout import StreamSchema
from ...storage import LocalStorage, Storage
from .._format import Format
from .._run import OnError, Retakes, RunSink
from ._batches import Rows, record_batch
from ._layout import TableLayout, stream_file_name, table_layout

__all__ = ["TableFormat", "TableOutput", "TableRun", "TableStream"]

FORMAT_VERSION = 1


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

    def status_changed(self, layout: TableLayout, metadata: dict[str, str]) -> None:
        """The run's ``status`` changed while it runs: show it where a reader looks, if the
        format has such a place (a Parquet part, an Arrow IPC batch; a CSV file has none)."""


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

    def output_path(self, directory: Storage, prefix: str) -> Storage:
        return directory.child(prefix)

    def existing_output(self, output: Storage) -> str | None:
        if isinstance(output, LocalStorage) and output.root.exists() and not output.root.is_dir():
            return output.location  # a file where the run's folder would be
        owned = [name for name in output.list() if self.owns(name)]
        return output.describe(owned[0]) if owned else None

    def owns(self, name: str) -> bool:
        """Whether a file (or folder) of a run directory belongs to this format."""
        return name.endswith(self.suffix)

    def open(
        self,
        output: Storage,
        start: RunStart,
        *,
        overwrite: bool,
        artifacts: list[Path | str],
        on_error: OnError,
    ) -> TableRun:
        return TableRun(self, output, start, overwrite=overwrite, artifacts=artifacts, on_error=on_error)

    def output(
        self, run: TableRun, file_name: str, layout: TableLayout, metadata: dict[str, str]
    ) -> TableOutput:
        """The output of one stream, ``<run directory>/<file_name><suffix>``."""
        raise NotImplementedError


class TableStream:
    """One stream of a run: its layout, its waiting rows and its output."""

    def __init__(self, run: TableRun, layout: TableLayout, file_name: str, where: str) -> None:
        self.run = run
        self.file_name = file_name
        self.layout = layout
        self.rows = Rows(layout)
        self.where = where
        self.flush_rows = self._flush_rows()
        self.failed: list[pa.RecordBatch] = []
        """batches to write: the new ones, and those whose write failed (when the output retries)"""
        self.retakes = Retakes(layout.stream)
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
                    if self.output.retry_failed_batches:  # the batch is written when the error says so
                        self.failed = (
                            batches[i + 1 :] if getattr(err, "batch_written", False) else batches[i:]
                        )
                    if errors:
                        err.add_note(f"and {len(errors)} event(s) did not convert: {errors[0]}")
                    raise
        if errors:
            if len(errors) > 1:
                errors[0].add_note(f"{len(errors) - 1} more event(s) of this batch were left out")
            raise errors[0]


class TableRun(RunSink[TableStream]):
    """Writes the documents of one run as one table per stream, in a :class:`TableFormat`."""

    def __init__(
        self,
        fmt: TableFormat,
        storage: Storage,
        start: RunStart,
        *,
        overwrite: bool,
        artifacts: list[Path | str],
        on_error: OnError = "quarantine",
    ) -> None:
        super().__init__(start, storage, label=fmt.label, selection=fmt.selection, on_error=on_error)
        self.format = fmt
        self.artifacts = artifacts
        self._start_json = dumps(start)
        self._files: set[str] = set()
        storage.create(exist_ok=True)
        self.hold_output()
        if overwrite:
            for name in storage.list():
                if fmt.owns(name):
                    storage.delete(name)

    def artifact(self, key: str) -> Path | str:
        """The path (or URL) of one of the run's files, as ``artifacts`` lists it."""
        return self.storage.artifact(key)

    # --- streams ----------------------------------------------------------------------------------

    def open_stream(self, schema: StreamSchema) -> TableStream:
        file_name = stream_file_name(schema.name)
        while file_name in self._files:  # two stream names that map to one file name
            file_name += "_"
        self._files.add(file_name)
        return TableStream(self, table_layout(schema), file_name, schema.where)

    def update_stream(self, stream: TableStream, schema: StreamSchema) -> None:
        stream.relayout(table_layout(schema))

    def write_page(self, stream: TableStream, page: EventPage) -> None:
        stream.rows.add_page(page, stream.where)
        stream.retakes.took(int(s) for s in page["seq_num"])
        if stream.rows.n >= stream.flush_rows:
            stream.write()

    def write_event(self, stream: TableStream, event: Event) -> None:
        stream.rows.add_event(event, stream.where)
        stream.retakes.took([int(event["seq_num"])])
        if stream.rows.n >= stream.flush_rows:
            stream.write()

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
        files = {c.data_key: list(c.variable.files) for c in layout.columns if c.variable.files}
        if files:
            metadata["detector_files"] = dumps(files)
        if self.stop_doc is not None:
            metadata["stop"] = dumps(self.stop_doc)
        if self.errors:
            metadata["errors"] = dumps(self.errors)
        if self.quarantined or self.malformed:
            metadata["quarantined"] = dumps(self.quarantine_summary())
        if self.gaps:
            metadata["gaps"] = dumps(self.gaps)
        stream = self.streams.get(layout.stream)
        if stream is not None and stream.retakes.seq_nums:
            metadata["superseded"] = json.dumps(sorted(stream.retakes.seq_nums))
        return metadata

    # --- visible, and the end ---------------------------------------------------------------------

    def flush(self, *, final: bool = False) -> None:
        first: BaseException | None = None
        for stream in self.streams.values():
            try:
                stream.write()
            except Exception as err:
                if first is not None and final:
                    self.errors.append(str(err))  # the base records the first
                first = first or err
        if first is not None:
            raise first

    def publish_status(self) -> None:
        self.flush()
        for stream in self.streams.values():
            stream.output.status_changed(stream.layout, self.metadata(stream.layout))

    def close(self) -> None:
        first: BaseException | None = None
        for stream in self.streams.values():
            try:
                stream.output.close(self.metadata(stream.layout))
            except Exception as err:
                first = first or err
        if first is not None:
            raise first
