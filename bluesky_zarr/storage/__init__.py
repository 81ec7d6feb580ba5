"""Where the bytes of every output go: one small interface, and its implementations.

:class:`Storage` is the interface every format writes through (whole objects put atomically,
objects filled in place, durability at ``sync``, errors wrapped once); :class:`LocalStorage`
implements it on a local file system.
"""

from ._base import GrowingObject, Storage
from ._local import LocalStorage

__all__ = ["GrowingObject", "LocalStorage", "Storage"]
