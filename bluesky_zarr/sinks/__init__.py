"""The output formats: one run-sink base, the data-key selection, and each format's package.

Every format is a :class:`Format` (a frozen value a writer is given) that opens one
:class:`RunSink` per run. The base owns the documents, the run's status and errors and the
stream schemas; ``zarr``, ``hdf5`` and ``tables`` write only what differs, and never import each other.
"""

from ._format import Finalized, Format, resolve_formats
from ._run import QUARANTINE_SUFFIX, OnError, RunSink
from ._selection import DataKeys, Selection, normalize_data_keys
from .hdf5 import HDF5, HDF5Options
from .tables import CSV, ArrowIPC, Parquet, TableFormat, finalize_parquet
from .zarr import Zarr, ZarrOptions

__all__ = [
    "CSV",
    "HDF5",
    "QUARANTINE_SUFFIX",
    "ArrowIPC",
    "DataKeys",
    "Finalized",
    "Format",
    "HDF5Options",
    "OnError",
    "Parquet",
    "RunSink",
    "Selection",
    "TableFormat",
    "Zarr",
    "ZarrOptions",
    "finalize_parquet",
    "normalize_data_keys",
    "resolve_formats",
]
