"""The Parquet format: one table per stream, ``<directory>/<prefix>/<stream>.parquet``, crash safe.

A Parquet file is readable only once its footer is written, so a single file written as the
scan goes would lose every row if the process died. Instead, while a run goes on, each batch of
rows (every ``batch_rows`` rows, and at least every ``flush_interval``) becomes one small, whole
Parquet file, a *part*, written beside its final name and renamed into place::

    <prefix>/primary.parquet.parts/part-000000.parquet     the schema, no rows (at the descriptor)
    <prefix>/primary.parquet.parts/part-000001.parquet     the first batch of rows
    ...

So a reader sees every flushed row while the scan runs (``pl.scan_parquet(".../*.parquet")``),
and a crash, a full disk or a killed process loses only the rows not yet flushed. At ``stop``
(or when the writer closes, for runs without one) the parts are merged into
``<prefix>/primary.parquet``, whose schema metadata holds the start, descriptor(s) and stop
documents, and the parts are deleted. A run left behind by a killed process is finished with
:func:`finalize_parquet`.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.parquet as pq

from ._errors import ConfigurationError, WriteError
from ._tables import TableFormat, TableLayout, TableOutput, TableRun
from ._writer import Writer

__all__ = ["Parquet", "ParquetWriter", "finalize_parquet"]

PARTS = ".parts"
"""The suffix of the folder of a stream's parts: ``primary.parquet.parts``."""
FINISH = "_finish.json"
"""Written into the parts folder before the merge: status, stop document and errors."""
COMBINE_EVERY = 64
"""Small parts are combined into one every this many."""
COMBINE_BYTES = 64 * 1024**2
"""... unless they hold this many bytes already (then they are big enough as they are)."""
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
        final = run.root / f"{file_name}{self.suffix}"
        output = _Parts(final, self._write_options(), layout, metadata)
        run.artifacts.append(final)
        return output

    def _write_options(self) -> dict[str, Any]:
        return {"compression": self.compression, "compression_level": self.compression_level}


class _Parts:
    """The parts of one stream while the run goes on, merged into the final file at the end.

    Every ``COMBINE_EVERY`` small parts (a slow scan flushes a few rows a second) are combined
    into one, ``part-<first>-<last>.parquet``, so a long run does not leave tens of thousands of
    files to merge at its stop. The combined part is written under a hidden name, the parts it
    holds are deleted, and then it is renamed into place: a reader never sees a row twice (it may
    miss those rows for that moment), and after a crash :func:`live_parts` tells which to use.
    """

    retry_failed_batches = True

    def __init__(
        self, final: Path, options: dict[str, Any], layout: TableLayout, metadata: dict[str, str]
    ) -> None:
        self.final = final
        self.folder = parts_folder(final)
        self.options = options
        self.count = 0
        self.uncombined: list[Path] = []
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise WriteError(err.errno, f"cannot create {self.folder}: {err.strerror or err}") from err
        self._write(layout.schema().empty_table(), metadata)  # part 0: the schema, no rows

    def layout_changed(self, layout: TableLayout, metadata: dict[str, str]) -> None:
        if self.count == 1:  # nothing but the schema so far: let the next part carry the new one
            self.count = 0
        self._write(layout.schema().empty_table(), metadata)

    def write(self, batch: pa.RecordBatch, metadata: dict[str, str]) -> None:
        self.uncombined.append(self._write(pa.Table.from_batches([batch]), metadata))
        if len(self.uncombined) >= COMBINE_EVERY:
            parts, self.uncombined = self.uncombined, []
            # an optimisation only: if it fails (a full disk), the parts stay as they are, and the
            # batch, written already, must not be reported as failed (it would be written twice)
            with contextlib.suppress(Exception):
                if sum(p.stat().st_size for p in parts) < COMBINE_BYTES:
                    combine_parts(self.folder, parts, metadata, self.options)

    def _write(self, table: pa.Table, metadata: Mapping[str, str]) -> Path:
        path = self.folder / f"part-{self.count:06d}.parquet"
        try:
            write_atomically(path, lambda tmp: pq.write_table(
                table.replace_schema_metadata(metadata), tmp, **_with_statistics(table.schema, self.options)
            ))  # fmt: skip
        except WriteError as err:
            err.add_note(self._what_to_do())
            raise
        self.count += 1
        return path

    def close(self, metadata: dict[str, str]) -> None:
        finish = {k: json.loads(metadata[k]) for k in ("status", "stop", "errors") if k in metadata}
        try:
            write_atomically(self.folder / FINISH, lambda tmp: Path(tmp).write_text(json.dumps(finish)))
            merge_parts(self.folder, self.final, metadata, self.options)
        except WriteError as err:
            err.add_note(self._what_to_do())
            raise

    def _what_to_do(self) -> str:
        return (
            f"every part written before is whole in {self.folder}; once the disk has room again, "
            f"bluesky_zarr.finalize_parquet({str(self.final.parent)!r}) makes {self.final.name} of them"
        )


_PART = re.compile(r"^(?:part|\.combined)-(\d+)(?:-(\d+))?\.parquet$")


def live_parts(folder: Path) -> list[Path]:
    """The parts that hold a stream's rows, in order: combined parts replace the parts they hold.

    A crash while parts were being combined can leave the combined part under its hidden name
    (``.combined-<first>-<last>.parquet``) and some of the parts it holds: it is used, they are not.
    """
    singles: list[tuple[int, Path]] = []
    combined: list[tuple[int, int, Path]] = []
    for path in folder.iterdir():
        found = _PART.match(path.name)
        if found is None:
            continue
        if found.group(2) is None:
            singles.append((int(found.group(1)), path))
        else:
            combined.append((int(found.group(1)), int(found.group(2)), path))
    kept = [(n, n, p) for n, p in singles if not any(lo <= n <= hi for lo, hi, _ in combined)]
    return [p for _, _, p in sorted(kept + combined, key=lambda r: r[:2])]


def combine_parts(
    folder: Path, parts: list[Path], metadata: Mapping[str, str], options: Mapping[str, Any]
) -> Path:
    """Combine consecutive parts into one, ``part-<first>-<last>.parquet`` (see :class:`_Parts`)."""
    first, last = (_PART.match(parts[i].name) for i in (0, -1))
    assert first is not None and last is not None  # the parts of _Parts.write
    name = f"{first.group(1)}-{last.group(1)}"
    hidden = folder / f".combined-{name}.parquet"
    _write_merged(parts, hidden, metadata, options)
    for part in parts:
        part.unlink(missing_ok=True)
    visible = folder / f"part-{name}.parquet"
    try:
        os.replace(hidden, visible)
    except OSError as err:
        raise WriteError(err.errno, f"cannot write {visible}: {err.strerror or err}") from err
    return visible


def _with_statistics(schema: pa.Schema, options: Mapping[str, Any]) -> dict[str, Any]:
    """Statistics (min/max, for filters that skip row groups) for the scalar columns only.

    Those of a tensor column would be one min and max over every pixel: of no use, and they
    cost more time than the compression.
    """
    scalars = [
        f.name for f in schema if not pa.types.is_nested(f.type) and not isinstance(f.type, pa.ExtensionType)
    ]
    return {**options, "write_statistics": scalars}


def parts_folder(final: Path) -> Path:
    return final.with_name(final.name + PARTS)


def write_atomically(path: Path, write: Callable[[str], object]) -> None:
    """Write ``path`` through a hidden temporary file beside it, synced, then renamed into place.

    A reader (or a crash) sees the old file or the new one whole, never a part of it. An
    ``OSError`` (a full disk, a read-only folder) becomes a :class:`WriteError` naming ``path``;
    the temporary file is removed and whatever was at ``path`` stays as it was.
    """
    tmp = path.with_name(f".{path.name}.partial")
    try:
        write(str(tmp))
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise WriteError(err.errno, f"cannot write {path}: {err.strerror or err}") from err
    except Exception:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with the columns of ``schema``, in its order; columns it lacks are nulls."""
    arrays = []
    for field in schema:
        index = table.schema.get_field_index(field.name)
        if index < 0:
            arrays.append(pa.nulls(table.num_rows, type=field.type))
        else:
            arrays.append(table.column(index).cast(field.type) if table.schema.field(index).type != field.type
                          else table.column(index))  # fmt: skip
    return pa.Table.from_arrays(arrays, schema=schema)


def merge_parts(folder: Path, final: Path, metadata: Mapping[str, str], options: Mapping[str, Any]) -> int:
    """Merge the parts in ``folder`` into ``final`` (atomically) with ``metadata``; delete the parts.

    Schemas of parts written under different descriptors are unified: a column a part lacks is
    null in its rows. Returns the number of rows.
    """
    rows = _write_merged(live_parts(folder), final, metadata, options)
    _sync_folder(final.parent)
    shutil.rmtree(folder, ignore_errors=True)
    return rows


def _write_merged(
    parts: list[Path], dest: Path, metadata: Mapping[str, str], options: Mapping[str, Any]
) -> int:
    """Write the rows of ``parts``, in order, into ``dest`` (atomically), row groups of a good size."""
    try:
        schemas = [pq.read_schema(p).remove_metadata() for p in parts]
        schema = pa.unify_schemas(schemas, promote_options="default") if schemas else pa.schema([])
    except OSError as err:
        raise WriteError(err.errno, f"cannot read the parts in {dest.parent}: {err}") from err
    schema = schema.with_metadata(dict(metadata))
    rows = 0

    def write(tmp: str) -> None:
        nonlocal rows
        with pq.ParquetWriter(tmp, schema, **_with_statistics(schema, options)) as writer:
            pending: list[pa.Table] = []
            pending_rows = pending_bytes = 0
            for part in parts:
                table = _conform(pq.read_table(part), schema)
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

    write_atomically(dest, write)
    return rows


def _sync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def finalize_parquet(
    run_directory: str | Path, *, compression: str = "zstd", compression_level: int | None = None
) -> list[Path]:
    """Finish the Parquet files of a run whose writer died (a killed process, a crash, a full disk).

    Every stream whose parts are still in ``<stream>.parquet.parts/`` is merged into
    ``<stream>.parquet``: every row that was flushed before the writer stopped, with the start
    document and descriptors in the schema metadata. ``status`` is what the writer recorded if it
    got as far as the stop document, else ``"incomplete"``; ``finalized`` says when and how the
    file was made. Streams already merged are left alone (leftover parts of a merge that had
    finished are removed). Run it only when no writer is writing the run any more.

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
    """
    root = Path(run_directory)
    if not root.is_dir():
        raise FileNotFoundError(
            f"{root} is not a directory; give the run's directory, <directory>/<file_prefix>, that holds "
            "<stream>.parquet.parts folders"
        )
    options = Parquet(compression=compression, compression_level=compression_level)._write_options()
    finished = []
    for folder in sorted(root.glob(f"*.parquet{PARTS}")):
        final = folder.with_name(folder.name[: -len(PARTS)])
        for stray in folder.glob(".*.partial"):
            stray.unlink(missing_ok=True)
        if final.exists():  # the merge had finished; only removing the parts had not
            shutil.rmtree(folder, ignore_errors=True)
            continue
        parts = live_parts(folder)
        metadata: dict[str, str] = {}
        if parts:
            metadata = {k.decode(): v.decode() for k, v in (pq.read_schema(parts[-1]).metadata or {}).items()}
        recorded = {}
        with contextlib.suppress(OSError, ValueError):
            recorded = json.loads((folder / FINISH).read_text())
        metadata["status"] = json.dumps(str(recorded.get("status") or "incomplete"))
        if recorded.get("stop") is not None:
            metadata["stop"] = json.dumps(recorded["stop"])
        if recorded.get("errors"):
            metadata["errors"] = json.dumps(recorded["errors"])
        metadata["finalized"] = json.dumps(
            {"by": "bluesky_zarr.finalize_parquet", "at": datetime.datetime.now(datetime.UTC).isoformat()}
        )
        merge_parts(folder, final, metadata, options)
        finished.append(final)
    for stray in root.glob(".*.parquet.partial"):
        stray.unlink(missing_ok=True)
    return finished


class ParquetWriter(Writer):
    """A bluesky callback that writes each stream of each run as a Parquet file.

    ``ParquetWriter(directory, ...)`` is ``Writer(directory, Parquet(...), ...)``: one file per
    stream, ``<directory>/<prefix>/<stream>.parquet``, columns ``time``, ``seq_num``, the grid
    indices of grid scans, and every data key (array readings as Arrow tensor columns). Rows are
    flushed as small Parquet parts while the run goes on (readable at once, and safe from a
    crash) and merged into the final file at ``stop``.

    Parameters
    ----------
    directory
        Where the runs go; created if missing.
    compression
        ``"zstd"`` (default), ``"snappy"`` or ``"none"``.
    data_keys
        Which data keys to write: ``"all"``, ``"arrays"``, ``"scalars"`` or a list of names.
    batch_rows
        Rows per part at most (a part is also written every ``flush_interval``).
    **common
        ``file_prefix``, ``overwrite``, ``handler_registry``, ``buffer_bytes``,
        ``flush_interval``: as for :class:`~bluesky_zarr.Writer`.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        compression: str | None = "zstd",
        data_keys: Any = "all",
        batch_rows: int = 65_536,
        **common: Any,
    ) -> None:
        super().__init__(
            directory, Parquet(data_keys=data_keys, compression=compression, batch_rows=batch_rows), **common
        )

    def __repr__(self) -> str:
        return f"ParquetWriter({str(self.directory)!r}, file_prefix={self.file_prefix!r})"
