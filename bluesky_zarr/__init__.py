"""bluesky-zarr: bluesky document streams onto disk as xarray-ready Zarr v3 stores."""

from ._encoding import to_json
from ._errors import BlueskyZarrError, DocumentError, StoreExistsError, UnsafePathError, WriteError
from ._reader import open_run
from ._zarr_writer import ZarrWriter, export

__all__ = [
    "BlueskyZarrError",
    "DocumentError",
    "StoreExistsError",
    "UnsafePathError",
    "WriteError",
    "ZarrWriter",
    "export",
    "open_run",
    "to_json",
]
