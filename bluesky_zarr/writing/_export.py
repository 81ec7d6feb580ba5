"""Writing runs that already exist: a list of documents, a databroker run, a document file."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._errors import DocumentError
from ..sinks import Format, OnError
from ..storage import Target
from ._writer import Writer

__all__ = ["export", "feed"]


def feed(writer: Writer, documents: Iterable[tuple[str, Any]]) -> None:
    """Give every ``(name, doc)`` pair to ``writer`` in order."""
    for name, doc in documents:
        writer(name, doc)


def export(
    documents: Iterable[tuple[str, Any]],
    directory: Target,
    file_prefix: str = "{start[uid]}",
    *,
    format: Format | str | Sequence[Format | str] = "zarr",
    overwrite: bool = False,
    handler_registry: Mapping[str, Callable[..., Any]] | None = None,
    on_error: OnError = "quarantine",
    frame_timeout: float = 10.0,
    storage_options: Mapping[str, Any] | None = None,
) -> dict[str, list[Path | str]]:
    """Write existing ``(name, doc)`` pairs (a databroker run, a document file) in one or more formats.

    The suitcase convention: returns the artifacts, ``{label: [path, ...]}``, e.g.
    ``{"zarr": [store, ...]}`` or ``{"parquet": [<run>/primary.parquet, ...]}``.

    Parameters
    ----------
    documents
        ``(name, doc)`` pairs; may hold many runs, each written on its own.
    directory
        Where the outputs go: a local directory (created if missing), a ``file://`` URL, or
        ``s3://bucket/prefix/`` (then ``artifacts`` holds ``s3://`` URLs).
    file_prefix
        ``str.format`` template filled from each start document.
    format
        A format name (``"zarr"``, ``"parquet"``, ``"arrow"``, ``"hdf5"``, ``"csv"``), a format object
        (``Parquet(compression="snappy")``), or a list of those: all are written in one pass.
    overwrite
        Replace existing outputs of the same name instead of raising
        :class:`~bluesky_zarr.StoreExistsError`.
    handler_registry
        ``{spec: handler}`` for external data (legacy Resource/Datum).
    on_error, frame_timeout
        What a reading that cannot be stored costs, and how long to wait for a detector's file to
        hold a frame: see :class:`~bluesky_zarr.Writer`.
    storage_options
        For an ``s3://`` target: ``endpoint_url``, ``region``, ... (see :class:`~bluesky_zarr.Writer`).

    Raises
    ------
    DocumentError
        Some documents belong to a run whose start document is not among them (after every
        other run is written).
    """
    formats = [format] if isinstance(format, Format | str) else list(format)
    with Writer(
        directory,
        *formats,
        file_prefix=file_prefix,
        overwrite=overwrite,
        handler_registry=handler_registry,
        on_error=on_error,
        frame_timeout=frame_timeout,
        storage_options=storage_options,
    ) as writer:
        feed(writer, documents)
    if writer.left_out:
        runs = ", ".join(f"{uid} ({n} documents)" for uid, n in writer.left_out.items())
        raise DocumentError(
            f"the documents hold no start document of run(s) {runs}, so those were not written; the "
            f"other runs were ({writer.artifacts}). Give export() every document of a run, from its start"
        )
    return writer.artifacts
