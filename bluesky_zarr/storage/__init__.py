"""Where the bytes of every output go: one small interface, and its implementations.

:class:`Storage` is the interface every format writes through (whole objects put atomically,
objects filled in place, durability at ``sync``, errors wrapped once); :class:`LocalStorage`
implements it on a local file system, :class:`S3Storage` on an S3-compatible object store;
:func:`open_storage` makes the one a target (a path, ``file://``, ``s3://``) names.
"""

from ._base import GrowingObject, Storage, WriterLock
from ._local import LocalStorage
from ._s3 import S3Storage
from ._spool import finalize_spool
from ._target import SCHEMES, Target, abort_incomplete_uploads, open_storage
from ._zarr_store import ZarrStoreStorage

__all__ = [
    "SCHEMES",
    "GrowingObject",
    "LocalStorage",
    "S3Storage",
    "Storage",
    "Target",
    "WriterLock",
    "ZarrStoreStorage",
    "abort_incomplete_uploads",
    "finalize_spool",
    "open_storage",
]
