"""The Parquet format: one table per stream, ``<directory>/<prefix>/<stream>.parquet``, crash safe.

A Parquet file is readable only once its footer is written, so a single file written as the
scan goes would lose every row if the process died. Instead, while a run goes on, each batch of
rows (every ``batch_rows`` rows, and at least every ``flush_interval``) becomes one small, whole
Parquet file, a *part*, written beside its final name and renamed into place::

    <prefix>/primary.parquet.parts/part-000000.parquet     the schema, no rows (at the descriptor)
    <prefix>/primary.parquet.parts/part-000001.parquet     the first batch of rows
    ...

So a reader sees every flushed row while the scan runs (the parts that
:func:`~bluesky_zarr.live_parquet_parts` lists), and a crash, a full disk or a killed process
loses only the rows not yet flushed. At ``stop`` (or when the writer closes, for runs without
one) the parts are merged into ``<prefix>/primary.parquet``, whose schema metadata holds the
start, descriptor(s) and stop documents, and the parts are deleted. A run left behind by a
killed process is finished with :func:`~bluesky_zarr.finalize` (or :func:`finalize_parquet`).

The documents are large (a start document with a sample's notes is tens of kilobytes, and
pyarrow writes schema metadata twice in a footer), so only the *schema parts*, those without
rows written at each descriptor, hold them; a data part's metadata holds what changes as the run
goes (``status``, ``errors``, ...) and ``schema_part``, the name of the schema part whose
documents it goes with.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..._errors import ConfigurationError, RunNotFoundError, WriteError
from ..._naming import SCHEMA_PART, live_part_names
from ...storage import LocalStorage, Storage
from .._format import Finalized, finalized_by
from ._layout import SEQ_NUM, TableLayout
from ._run import TableFormat, TableOutput, TableRun

__all__ = ["Parquet", "finalize_parquet"]

PARTS = ".parts"
"""The suffix of the folder of a stream's parts: ``primary.parquet.parts``."""
FINISH = "_finish.json"
"""Written into the parts folder before the merge: status, stop document, errors and gaps."""
COMBINE_EVERY = 64
"""Small parts are combined into one every this many."""
COMBINE_BYTES = 64 * 1024**2
"""... unless they hold this many bytes already (then they are big enough as they are)."""
_CHANGING = ("bluesky_zarr", "stream", "status", "stop", "errors", "quarantined", "gaps", "superseded")
"""The schema metadata a data part holds (with ``schema_part``): what changes while the run goes on."""
SUPERSEDED = "superseded"
"""The column of the merged file that marks rows a later row took again (pause/resume)."""
ROW_GROUP_ROWS = 128 * 1024
ROW_GROUP_BYTES = 128 * 1024**2
_COMPRESSIONS = ("zstd", "snappy", "gzip", "brotli", "lz4", "none")


@dataclass(frozen=True)
class Parquet(TableFormat):
    """Each stream of a run as one Parquet file, ``<directory>/<prefix>/<stream>.parquet``.

    Crash safe: rows are flushed as small whole Parquet parts while the run goes on and merged
    into the final file at ``stop``; :func:`finalize_parquet` finishes a run whose writer died.

    Parameters
    ----------
    data_keys
        ``"all"``, ``"arrays"``, ``"scalars"`` or a list of data key names.
    compression
        ``"zstd"`` (default), ``"snappy"``, ``"none"`` (or ``"gzip"``, ``"brotli"``, ``"lz4"``).
    compression_level
        The codec's level (``None``: its default).
    batch_rows, batch_bytes
        A part is written once this many rows (or about this many bytes) of a stream wait, and
        at least every ``flush_interval`` of the writer.
    """

    label: ClassVar[str] = "parquet"
    suffix: ClassVar[str] = ".parquet"

    compression: str | None = "zstd"
    compression_level: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        compression = "none" if self.compression is None else str(self.compression).lower()
        if compression not in _COMPRESSIONS or (
            compression != "none" and not pa.Codec.is_available(compression)
        ):
            raise ConfigurationError(
                f"Parquet: compression={self.compression!r} is not one of {', '.join(_COMPRESSIONS)} "
                "(or not built into this pyarrow); zstd is the default, snappy is faster, none stores raw"
            )
        object.__setattr__(self, "compression", compression)

    def owns(self, name: str) -> bool:
        return name.endswith((self.suffix, self.suffix + PARTS))

    def output(
        self, run: TableRun, file_name: str, layout: TableLayout, metadata: dict[str, str]
    ) -> TableOutput:
        final = f"{file_name}{self.suffix}"
        output = _Parts(run.storage, final, self.write_options(), layout, metadata)
        run.artifacts.append(run.artifact(final))
        return output

    def finalize(self, output: Storage) -> list[Finalized]:
        done = []
        names = output.list()
        for name in names:
            if name.endswith(f"{self.suffix}{PARTS}"):
                done.append(_finalize_parts(output, name, self.write_options()))
            elif name.endswith(self.suffix) and f"{name}{PARTS}" not in names:
                done.append(Finalized(str(output.artifact(name)), "parquet", _status(output, name), False))
        for stray in output.list():
            if stray.startswith(".") and stray.endswith(f"{self.suffix}.partial"):
                output.delete(stray)
        return done

    def write_options(self) -> dict[str, Any]:
        """The options of ``pyarrow.parquet`` writers for this format."""
        return {"compression": self.compression, "compression_level": self.compression_level}


class _Parts:
    """The parts of one stream while the run goes on, merged into the final file at the end.

    Every ``COMBINE_EVERY`` small parts (a slow scan flushes a few rows a second) are combined
    into one, ``part-<first>-<last>.parquet``, so a long run does not leave tens of thousands of
    files to merge at its stop (see :func:`combine_parts`). Schema parts are never combined: the
    parts of a combination all come after the last schema part.
    """

    retry_failed_batches = True

    def __init__(
        self,
        storage: Storage,
        final: str,
        options: dict[str, Any],
        layout: TableLayout,
        metadata: dict[str, str],
    ) -> None:
        self.storage = storage
        self.final = final
        self.folder = final + PARTS
        self.options = options
        self.count = 0
        self.uncombined: list[str] = []
        self._deferred: WriteError | None = None
        self.schema_part: str | None = None
        """the part that holds the documents of the parts of rows after it"""
        self._write_schema(layout, metadata)  # part 0: the schema, no rows

    def _write_schema(self, layout: TableLayout, metadata: dict[str, str]) -> None:
        """A part with the schema and the documents, and no rows, so that readers see the columns
        at once.

        If it cannot be written (an ``EIO`` at its fsync), no row is lost with it: the next part of
        rows holds the documents in its place, and the error is raised once that batch is written
        (the error says so: ``batch_written``), so that the run fails and its stream goes on."""
        try:
            self.schema_part = self._write(layout.schema().empty_table(), metadata)
        except WriteError as err:
            self.schema_part = None
            self._deferred = self._deferred or err

    def layout_changed(self, layout: TableLayout, metadata: dict[str, str]) -> None:
        if self.count == 1:  # nothing but the schema so far: let the next part carry the new one
            self.count = 0
        self.uncombined = []  # a combination never holds a schema part (its range would hide it)
        self._write_schema(layout, metadata)

    def status_changed(self, layout: TableLayout, metadata: dict[str, str]) -> None:
        """A part of no rows whose metadata says the status (a reader takes the newest part's)."""
        self.write(pa.RecordBatch.from_pylist([], schema=layout.schema()), metadata)

    def write(self, batch: pa.RecordBatch, metadata: dict[str, str]) -> None:
        table = pa.Table.from_batches([batch])
        if self.schema_part is None:  # its schema part was lost: this one holds the documents
            self.schema_part = self._write(table, metadata)
            self.uncombined = []
        else:
            small = {k: metadata[k] for k in _CHANGING if k in metadata}
            small[SCHEMA_PART] = json.dumps(self.schema_part.rsplit("/", 1)[-1])
            self.uncombined.append(self._write(table, small))
            if len(self.uncombined) >= COMBINE_EVERY:
                parts, self.uncombined = self.uncombined, []
                # an optimisation only: if it fails (a full disk), the parts stay as they are, and the
                # batch, written already, must not be reported as failed (it would be written twice)
                with contextlib.suppress(Exception):
                    if sum(self.storage.size(p) for p in parts) < COMBINE_BYTES:
                        combine_parts(self.storage, self.folder, parts, small, self.options)
        if self._deferred is not None:
            err, self._deferred = self._deferred, None
            err.batch_written = True  # type: ignore[attr-defined]
            raise err

    def _write(self, table: pa.Table, metadata: Mapping[str, str]) -> str:
        key = f"{self.folder}/part-{self.count:06d}.parquet"
        try:
            with self.storage.writer(key) as file:
                pq.write_table(
                    table.replace_schema_metadata(metadata),
                    file,
                    **_with_statistics(table.schema, self.options),
                )
        except WriteError as err:
            err.add_note(self._what_to_do())
            raise
        self.count += 1
        return key

    def close(self, metadata: dict[str, str]) -> None:
        finish = {k: json.loads(metadata[k]) for k in ("status", "stop", "errors", "gaps") if k in metadata}
        try:
            self.storage.put(f"{self.folder}/{FINISH}", json.dumps(finish).encode(), durable=True)
            merge_parts(self.storage, self.folder, self.final, metadata, self.options)
        except WriteError as err:
            err.add_note(self._what_to_do())
            raise

    def _what_to_do(self) -> str:
        return (
            f"every part written before is whole in {self.storage.describe(self.folder)}; once the disk has "
            f"room again, bluesky_zarr.finalize_parquet({self.storage.location!r}) makes {self.final} of them"
        )


def live_parts(storage: Storage, folder: str) -> list[str]:
    """The parts that hold a stream's rows, in order: combined parts replace the parts they hold
    (:func:`~bluesky_zarr._naming.live_part_names`)."""
    return [f"{folder}/{name}" for name in live_part_names(storage.list(folder))]


def combine_parts(
    storage: Storage, folder: str, parts: list[str], metadata: Mapping[str, str], options: Mapping[str, Any]
) -> str:
    """Combine consecutive parts into one, ``part-<first>-<last>.parquet``, and delete them.

    The combined part is written under a temporary name that no ``*.parquet`` glob matches
    (``.part-<first>-<last>.parquet.partial``) and renamed into place whole; only then are the
    parts it holds deleted. Every listing of the folder, at any moment and after a crash at any
    point, holds every row in the parts that :func:`live_parts` picks from it. A plain glob over
    the folder does not: between the rename and the last delete (and after a crash there) it
    holds the combined rows twice.
    """
    first, last = (
        parts[i].rsplit("/", 1)[-1].removeprefix("part-").removesuffix(".parquet") for i in (0, -1)
    )
    combined = f"{folder}/part-{first}-{last}.parquet"
    _write_merged(storage, parts, combined, metadata, options)
    storage.sync()  # the combined part is named durably before the parts it holds go
    for part in parts:
        storage.delete(part)
    return combined


def _with_statistics(schema: pa.Schema, options: Mapping[str, Any]) -> dict[str, Any]:
    """Statistics (min/max, for filters that skip row groups) for the scalar columns only.

    Those of a tensor column would be one min and max over every pixel: of no use, and they
    cost more time than the compression.
    """
    scalars = [
        f.name for f in schema if not pa.types.is_nested(f.type) and not isinstance(f.type, pa.ExtensionType)
    ]
    return {**options, "write_statistics": scalars}


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with the columns of ``schema``, in its order; columns it lacks are nulls."""
    arrays = []
    for field in schema:
        index = table.schema.get_field_index(field.name)
        if index < 0:
            arrays.append(pa.nulls(table.num_rows, type=field.type))
        else:
            arrays.append(_cast(table.column(index), field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def _cast(column: pa.ChunkedArray, to: pa.DataType) -> pa.ChunkedArray:
    """A column in a wider type; a tensor column through its storage (Arrow casts no extension type)."""
    if column.type == to:
        return column
    if isinstance(to, pa.ExtensionType):
        chunks = [
            pa.ExtensionArray.from_storage(to, chunk.storage.cast(to.storage_type)) for chunk in column.chunks
        ]
        return pa.chunked_array(chunks, type=to)
    return column.cast(to)


def merge_parts(
    storage: Storage, folder: str, final: str, metadata: Mapping[str, str], options: Mapping[str, Any]
) -> int:
    """Merge the parts in ``folder`` into ``final`` (atomically) with ``metadata``; delete the parts.

    Schemas of parts written under different descriptors are unified: a column a part lacks is
    null in its rows. When the metadata lists ``superseded`` seq_nums (a plan rewound by a
    pause/resume took them again), a boolean column ``superseded`` is added, true for every row
    with one of them but the last. Returns the number of rows.
    """
    superseded = set(json.loads(metadata.get("superseded", "[]")))
    rows = _write_merged(storage, live_parts(storage, folder), final, metadata, options, superseded)
    storage.sync()  # the merged file is named durably before the parts that hold its rows go
    storage.delete(folder)
    return rows


def _read(storage: Storage, key: str) -> pa.Table:
    with storage.reader(key) as file:
        return pq.read_table(file)


def _superseded_masks(storage: Storage, parts: list[str], superseded: set[int]) -> list[np.ndarray]:
    """Per part, which rows a later row with the same seq_num superseded (seq_nums in ``superseded``)."""
    seq_nums = []
    for part in parts:
        with storage.reader(part) as file:
            seq_nums.append(pq.read_table(file, columns=[SEQ_NUM])[SEQ_NUM].to_numpy(zero_copy_only=False))
    every = np.concatenate(seq_nums) if seq_nums else np.zeros(0, dtype=np.int64)
    mask = np.zeros(len(every), dtype=bool)
    for seq_num in superseded:
        rows = np.flatnonzero(every == seq_num)
        mask[rows[:-1]] = True
    return np.split(mask, np.cumsum([len(s) for s in seq_nums])[:-1])


def _write_merged(
    storage: Storage,
    parts: list[str],
    dest: str,
    metadata: Mapping[str, str],
    options: Mapping[str, Any],
    superseded: set[int] | None = None,
) -> int:
    """Write the rows of ``parts``, in order, into ``dest`` (atomically), row groups of a good size;
    with a ``superseded`` column when rows were superseded (see :func:`merge_parts`)."""
    schemas = []
    for part in parts:
        with storage.reader(part) as file:
            schemas.append(pq.read_schema(file).remove_metadata())
    # the newest part's schema first: it has every column, each field's newest metadata (a key widened
    # to a wider dtype says so), and the widest dtypes; older parts' columns are cast to it
    schema = pa.unify_schemas(schemas[::-1], promote_options="permissive") if schemas else pa.schema([])
    masks = _superseded_masks(storage, parts, superseded) if superseded else None
    marks = SUPERSEDED
    while marks in schema.names:  # a data key of that name
        marks += "_"
    if masks is not None:
        schema = schema.append(pa.field(marks, pa.bool_()))
    schema = schema.with_metadata(dict(metadata))
    rows = 0
    with (
        storage.writer(dest) as file,
        pq.ParquetWriter(file, schema, **_with_statistics(schema, options)) as writer,
    ):
        pending: list[pa.Table] = []
        pending_rows = pending_bytes = 0
        for i, part in enumerate(parts):
            table = _read(storage, part)
            if masks is not None:
                table = table.append_column(marks, pa.array(masks[i], pa.bool_()))
            table = _conform(table, schema)
            if not table.num_rows:
                continue
            pending.append(table)
            pending_rows += table.num_rows
            pending_bytes += table.nbytes
            if pending_rows >= ROW_GROUP_ROWS or pending_bytes >= ROW_GROUP_BYTES:
                writer.write_table(pa.concat_tables(pending), row_group_size=max(pending_rows, 1))
                rows += pending_rows
                pending, pending_rows, pending_bytes = [], 0, 0
        if pending:
            writer.write_table(pa.concat_tables(pending), row_group_size=max(pending_rows, 1))
            rows += pending_rows
    return rows


def finalize_parquet(
    run_directory: str | Path, *, compression: str = "zstd", compression_level: int | None = None
) -> list[Path]:
    """Finish the Parquet files of a run whose writer died (a killed process, a crash, a full disk).

    Every stream whose parts are still in ``<stream>.parquet.parts/`` is merged into
    ``<stream>.parquet``: every row that was flushed before the writer stopped, with the start
    document and descriptors in the schema metadata. ``status`` is what the writer recorded if it
    got as far as the stop document, else ``"incomplete"``; ``finalized`` says when and how the
    file was made. Streams already merged are left alone (leftover parts of a merge that had
    finished are removed). :func:`~bluesky_zarr.finalize` does the same for every format.

    Parameters
    ----------
    run_directory
        The run's directory, ``<directory>/<prefix>``.
    compression, compression_level
        For the merged files.

    Returns
    -------
    list of pathlib.Path
        The Parquet files finished.

    Raises
    ------
    RunNotFoundError
        ``run_directory`` is not a directory (also a ``FileNotFoundError``).
    OutputBusyError
        A writer is still writing the run's Parquet files.
    """
    root = Path(run_directory)
    if not root.is_dir():
        raise RunNotFoundError(
            f"{root} is not a directory; give the run's directory, <directory>/<file_prefix>, that holds "
            "<stream>.parquet.parts folders"
        )
    storage = LocalStorage(root)
    fmt = Parquet(compression=compression, compression_level=compression_level)
    lock = storage.lock(fmt.label)
    try:
        return [Path(done.path) for done in fmt.finalize(storage) if done.changed]
    finally:
        lock.release()


def _finalize_parts(storage: Storage, folder: str, options: dict[str, Any]) -> Finalized:
    """Merge the parts of one stream, ``<stream>.parquet.parts``, into ``<stream>.parquet``."""
    final = folder[: -len(PARTS)]
    if storage.exists(final):  # the merge had finished; only removing the parts had not
        storage.delete(folder)
        return Finalized(str(storage.artifact(final)), "parquet", _status(storage, final), changed=False,
                         notes=(f"{folder}: left over from a finished merge, removed",))  # fmt: skip
    rescued = _rescue_whole_partials(storage, folder)
    parts = live_parts(storage, folder)
    if not parts:  # killed before even the schema part was whole: nothing says what the stream held
        storage.delete(folder)
        stream = final[: -len(Parquet.suffix)]
        note = (
            f"{folder}: no part of stream {stream!r} was whole (the writer stopped before it wrote the "
            f"stream's schema), so no {final} was made; the folder was removed"
        )
        return Finalized(str(storage.artifact(folder)), "parquet", "empty", changed=False, notes=(note,))
    metadata = _stream_metadata(storage, parts[-1])
    recorded = {}
    with contextlib.suppress(ValueError, TypeError):
        recorded = json.loads(storage.get(f"{folder}/{FINISH}") or b"{}")
    status = str(recorded.get("status") or "incomplete")
    metadata["status"] = json.dumps(status)
    if recorded.get("stop") is not None:
        metadata["stop"] = json.dumps(recorded["stop"])
    for key in ("errors", "gaps"):
        if recorded.get(key):
            metadata[key] = json.dumps(recorded[key])
    metadata["finalized"] = json.dumps(finalized_by())
    rows = merge_parts(storage, folder, final, metadata, options)
    notes = [f"{final}: {rows} row(s) from {len(parts)} part(s)"]
    if rescued:
        notes.append(f"{folder}: {', '.join(rescued)} written whole but not yet renamed, used")
    return Finalized(str(storage.artifact(final)), "parquet", status, changed=True, notes=tuple(notes))


def _rescue_whole_partials(storage: Storage, folder: str) -> list[str]:
    """Rename into place the parts a writer killed between writing and renaming them left whole
    (their footer reads: their rows are kept); delete the temporary files cut short. Returns the
    names of the parts rescued."""
    rescued = []
    for stray in storage.list(folder):
        if not (stray.startswith(".") and stray.endswith(".partial")):
            continue
        key, name = f"{folder}/{stray}", stray[1 : -len(".partial")]
        whole = False
        if live_part_names([name]) and not storage.exists(f"{folder}/{name}"):
            with contextlib.suppress(Exception), storage.reader(key) as file:
                whole = pq.read_metadata(file) is not None
        if whole:
            storage.rename(key, f"{folder}/{name}")
            rescued.append(name)
        else:
            storage.delete(key)
    return rescued


def _schema_metadata(storage: Storage, key: str) -> dict[str, str]:
    with storage.reader(key) as file:
        raw = pq.read_schema(file).metadata or {}
    return {k.decode(): v.decode() for k, v in raw.items()}


def _stream_metadata(storage: Storage, last: str) -> dict[str, str]:
    """The schema metadata of a stream's parts: the documents of the schema part that the last part
    names (a part of an older writer holds them itself), updated with what the last part says."""
    metadata = _schema_metadata(storage, last)
    schema_part = metadata.pop(SCHEMA_PART, None)
    if schema_part is None:
        return metadata
    folder = last.rsplit("/", 1)[0]
    return {**_schema_metadata(storage, f"{folder}/{json.loads(schema_part)}"), **metadata}


def _status(storage: Storage, key: str) -> str:
    with storage.reader(key) as file:
        metadata = pq.read_schema(file).metadata or {}
    return str(json.loads(metadata.get(b"status", b'"unknown"')))
