"""Where the bytes of every output go: one small interface, and its implementations.

:class:`Storage` is the interface every format writes through (whole objects put atomically,
objects filled in place, durability at ``sync``, errors wrapped once); :class:`LocalStorage`
implements it on a local file system, :class:`S3Storage` on an S3-compatible object store;
:func:`open_storage` makes the one a target (a path, ``file://``, ``s3://``) names. Storage of a
user's own plugs in by URL scheme: :func:`register_storage`, or an entry point in the group
``bluesky_zarr.storage``; or a :class:`Storage` object is itself a writer's target.
"""

from ._base import GrowingObject, Storage, WriterLock
from ._local import LocalStorage
from ._s3 import S3Storage
from ._spool import finalize_spool
from ._target import (
    ENTRY_POINT_GROUP,
    SCHEMES,
    StorageFactory,
    Target,
    abort_incomplete_uploads,
    open_storage,
    register_storage,
    storage_schemes,
)
from ._zarr_store import ZarrStoreStorage

__all__ = [
    "ENTRY_POINT_GROUP",
    "SCHEMES",
    "GrowingObject",
    "LocalStorage",
    "S3Storage",
    "Storage",
    "StorageFactory",
    "Target",
    "WriterLock",
    "ZarrStoreStorage",
    "abort_incomplete_uploads",
    "finalize_spool",
    "open_storage",
    "register_storage",
    "storage_schemes",
]
