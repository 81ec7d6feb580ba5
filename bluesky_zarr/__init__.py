"""bluesky-zarr: bluesky document streams onto disk as xarray-ready Zarr v3 stores, Parquet, Arrow IPC,
NeXus HDF5 and CSV.

The package's layers, top to bottom (``docs/explanations/decisions/0002-package-layers.md``):
``writing`` (the callback) -> ``readers`` | ``sinks`` (the formats) -> ``layout`` (pure) |
``storage`` (bytes) | ``codecs`` -> the base modules (documents, errors, encoding, naming).
"""

from ._encoding import to_json
from ._errors import (
    BlueskyZarrError,
    ConfigurationError,
    CorruptDataError,
    DocumentError,
    OutputBusyError,
    RunNotFoundError,
    StoreExistsError,
    UnsafePathError,
    WriteError,
    WriterProcessError,
)
from .layout import propose_chunks
from .readers import inspect_run, live_parquet_parts, open_run, quick_look
from .sinks import CSV, HDF5, ArrowIPC, Finalized, Format, Parquet, Zarr, finalize_parquet
from .storage import abort_incomplete_uploads, finalize_spool
from .writing import (
    ArrowWriter,
    CSVWriter,
    HDF5Writer,
    ParquetWriter,
    Service,
    Writer,
    ZarrWriter,
    export,
    finalize,
    serve,
)

__all__ = [
    "CSV",
    "HDF5",
    "ArrowIPC",
    "ArrowWriter",
    "BlueskyZarrError",
    "CSVWriter",
    "ConfigurationError",
    "CorruptDataError",
    "DocumentError",
    "Finalized",
    "Format",
    "HDF5Writer",
    "OutputBusyError",
    "Parquet",
    "ParquetWriter",
    "RunNotFoundError",
    "Service",
    "StoreExistsError",
    "UnsafePathError",
    "WriteError",
    "Writer",
    "WriterProcessError",
    "Zarr",
    "ZarrWriter",
    "abort_incomplete_uploads",
    "export",
    "finalize",
    "finalize_parquet",
    "finalize_spool",
    "inspect_run",
    "live_parquet_parts",
    "open_run",
    "propose_chunks",
    "quick_look",
    "serve",
    "to_json",
]
