"""The public Zarr writer: one Zarr v3 store per run."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ._writer import RunSink, RunWriter, feed
from ._zarr_run import ZarrRun

__all__ = ["ZarrWriter", "export"]


class ZarrWriter(RunWriter):
    """A bluesky callback that writes each run into a Zarr v3 store, ``<directory>/<prefix>.zarr``.

    Subscribe it to a RunEngine (``RE.subscribe(ZarrWriter("data/"))``), a
    ``RemoteDispatcher``, or call it with ``(name, doc)`` pairs. The RunEngine never waits on
    disk: documents go through a bounded buffer to a writer thread. Grid scans (``shape`` in the
    start document) are stored on their grid; other streams grow along ``time``.

    Parameters
    ----------
    directory
        Where the stores go; created if missing.
    file_prefix
        ``str.format`` template filled from the start document, e.g. ``"{start[scan_id]}-"``.
        A value from the metadata that would leave ``directory`` is refused.
    overwrite
        Replace an existing store of the same name. By default an existing store is an error
        (:class:`~bluesky_zarr.StoreExistsError`) and nothing is written.
    handler_registry
        ``{spec: handler}`` for external data (legacy Resource/Datum), filled with
        :class:`event_model.Filler` in the writer thread.
    buffer_bytes
        How many bytes of readings may wait for the disk before the RunEngine blocks.
    flush_interval
        Seconds between making partial chunks and grown arrays visible to readers.
    """

    suffix = ".zarr"
    artifact_label = "zarr"

    def _open_run(self, path: Path, start: Mapping[str, Any]) -> RunSink:
        return ZarrRun(path, start, overwrite=self.overwrite)

    def __repr__(self) -> str:
        return f"ZarrWriter({str(self.directory)!r}, file_prefix={self.file_prefix!r})"


def export(
    documents: Iterable[tuple[str, Any]],
    directory: str | Path,
    file_prefix: str = "{start[uid]}",
    *,
    overwrite: bool = False,
    handler_registry: Mapping[str, Callable[..., Any]] | None = None,
) -> dict[str, list[Path]]:
    """Write existing ``(name, doc)`` pairs (a databroker run, a document file) to Zarr stores.

    The suitcase convention: returns the artifacts, ``{"zarr": [path, ...]}``, one store per run.
    """
    with ZarrWriter(
        directory, file_prefix=file_prefix, overwrite=overwrite, handler_registry=handler_registry
    ) as writer:
        feed(writer, documents)
    return writer.artifacts
