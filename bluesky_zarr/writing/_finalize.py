"""``finalize``: a run whose writer stopped before the run's end becomes a finished, readable output.

A writer killed (SIGKILL, a crash, the machine lost), or stopped by a full disk, leaves its
output readable but unfinished: a Zarr store that says ``running`` with unconsolidated metadata,
a Parquet stream still in parts, an Arrow stream with no end. Each format finishes its own
(:meth:`~bluesky_zarr.sinks.Format.finalize`); this finds which formats are there and makes sure
that no writer is still writing them: a live writer holds a lock on its output, which the kernel
releases when the process ends, however it ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._errors import OutputBusyError, RunNotFoundError
from ..sinks import Finalized, Format
from ..storage import Target, open_storage

__all__ = ["finalize"]


def finalize(
    output: Target, *, storage_options: Mapping[str, Any] | None = None, force: bool = False
) -> list[Finalized]:
    """Finish a run's output whose writer stopped before the run's end; idempotent.

    The output becomes consistent and readable by every stock reader, marked ``incomplete``
    (the status the writer recorded, if it got as far as the stop document), with ``finalized``
    saying when. Zarr: every 1-D stream's arrays one length, the metadata consolidated, the
    ``written`` mask as the writer left it (it only vouches for what is on disk). Parquet: every
    stream's parts merged into ``<stream>.parquet``. Arrow IPC: every stream file ended after its
    last whole batch. HDF5: the file's "open for writing" mark cleared and every 1-D stream cut to
    the events its ``seq_num`` vouches for. CSV: a last row cut short dropped. An output finished
    already is left as it is.

    Parameters
    ----------
    output
        A run's Zarr store (``<directory>/<prefix>.zarr``), its HDF5 file (``<prefix>.h5``) or
        its directory of tables (``<directory>/<prefix>``), as a path, ``file://`` or ``s3://`` URL.
    storage_options
        For an ``s3://`` output (see :class:`~bluesky_zarr.Writer`).
    force
        Finish an output in object storage, where no lock can tell whether a writer still
        writes it: make sure none does first.

    Returns
    -------
    list of Finalized
        One per output found (a store, a stream's file): its path, format, status now, whether
        it was changed, and notes on what was repaired.

    Raises
    ------
    OutputBusyError
        A writer is still writing it (named in the message); nothing was changed.
    RunNotFoundError
        ``output`` holds no run output of any format.
    """
    storage = open_storage(output, storage_options)
    if not storage.exists():
        raise RunNotFoundError(
            f"{storage.location} does not exist; give a run's <prefix>.zarr store or its directory"
        )
    if not storage.knows_writers and not force:
        raise OutputBusyError(
            f"{storage.location}: object storage cannot tell whether a writer is still writing it; make sure "
            "none is, then finalize with force=True (bluesky-zarr finalize --force)"
        )
    done: list[Finalized] = []
    for kind in Format.registry.values():
        fmt = kind()
        if not fmt.found_at(storage):
            continue
        holder = storage.lock_holder(fmt.label)
        if holder is not None:
            raise OutputBusyError(
                f"{storage.location} is being written by {holder}; nothing was changed. Finalize it once "
                "that writer has stopped"
            )
        lock = storage.lock(fmt.label)  # and no writer starts on it meanwhile
        try:
            done += fmt.finalize(storage)
        finally:
            lock.release()
    if not done:
        raise RunNotFoundError(
            f"{storage.location} holds no run output: give a run's Zarr store (<prefix>.zarr), its HDF5 "
            "file (<prefix>.h5) or its directory of <stream>.parquet, <stream>.parquet.parts, "
            "<stream>.arrows or <stream>.csv files"
        )
    return done
