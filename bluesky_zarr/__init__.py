"""bluesky-zarr: bluesky document streams onto disk as xarray-ready Zarr v3 stores, Parquet and Arrow IPC."""

from ._arrow import ArrowIPC, ArrowWriter
from ._chunking import propose_chunks
from ._encoding import to_json
from ._errors import (
    BlueskyZarrError,
    ConfigurationError,
    DocumentError,
    StoreExistsError,
    UnsafePathError,
    WriteError,
)
from ._parquet import Parquet, ParquetWriter, finalize_parquet
from ._reader import open_run
from ._writer import Format, Writer, export
from ._zarr_writer import Zarr, ZarrWriter

__all__ = [
    "ArrowIPC",
    "ArrowWriter",
    "BlueskyZarrError",
    "ConfigurationError",
    "DocumentError",
    "Format",
    "Parquet",
    "ParquetWriter",
    "StoreExistsError",
    "UnsafePathError",
    "WriteError",
    "Writer",
    "Zarr",
    "ZarrWriter",
    "export",
    "finalize_parquet",
    "open_run",
    "propose_chunks",
    "to_json",
]
