"""What the RunEngine sees: the writer callback, its buffer and router, and ``export``.

A document's path: :class:`Writer` (the caller's thread: claim the outputs at ``start``, put
the document in the :class:`DocumentBuffer`) -> the writer thread (consecutive events become one
page) -> :class:`Router` (the run, external data filled) -> :class:`RunFanOut` (every format's
:class:`~bluesky_zarr.sinks.RunSink`, guarded) -> the format -> its storage.
"""

from ._buffer import DocumentBuffer
from ._catalog import catalog_runs, is_catalog, open_catalog
from ._document_files import document_files, read_document_file
from ._export import export, feed
from ._finalize import finalize
from ._router import Router, RunFanOut
from ._serve import ServeConfig, Service, read_config, serve
from ._writer import Writer, WriterOptions
from ._writers import ArrowWriter, CSVWriter, HDF5Writer, ParquetWriter, ZarrWriter

__all__ = [
    "ArrowWriter",
    "CSVWriter",
    "DocumentBuffer",
    "HDF5Writer",
    "ParquetWriter",
    "Router",
    "RunFanOut",
    "ServeConfig",
    "Service",
    "Writer",
    "WriterOptions",
    "ZarrWriter",
    "catalog_runs",
    "document_files",
    "export",
    "feed",
    "finalize",
    "is_catalog",
    "open_catalog",
    "read_config",
    "read_document_file",
    "serve",
]
