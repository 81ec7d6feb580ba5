"""A growing object for a store whose objects are written whole only (a bucket, a zarr ``Store``).

The object is filled in a local temporary file; each :meth:`~SpooledGrowing.publish` uploads it
whole under its key, so a reader sees the previous upload or the new one, never a part.
"""

from __future__ import annotations

import errno
from typing import BinaryIO, Protocol

from .._errors import WriteError
from ._base import Bytes, GrowingObject

__all__ = ["SpooledGrowing", "WholeObjects"]


class WholeObjects(Protocol):
    """What :class:`SpooledGrowing` needs of its storage."""

    def spool_file(self) -> BinaryIO: ...
    def upload(self, key: str, file: BinaryIO) -> None: ...
    def put(self, key: str, data: Bytes, *, durable: bool = False) -> None: ...
    def get(self, key: str) -> bytes | None: ...
    def describe(self, key: str) -> str: ...


class SpooledGrowing(GrowingObject):
    """An object filled in a local spool file and uploaded whole at each publish."""

    def __init__(self, storage: WholeObjects, key: str, *, hidden: bool, reopen: bool) -> None:
        self.storage = storage
        self.key = key
        self._file: BinaryIO | None = storage.spool_file()
        self._dirty = hidden and not reopen  # a hidden object appears at its first publish, even empty
        self.size = 0
        if reopen:
            data = storage.get(key)
            if data is None:
                raise WriteError(errno.ENOENT, f"cannot reopen {storage.describe(key)}: no such object")
            self._file.write(data)
            self.size = len(data)
        elif not hidden:
            storage.put(key, b"")  # visible from the start, empty

    def _open_file(self) -> BinaryIO:
        if self._file is None:
            raise WriteError(f"{self.storage.describe(self.key)} was closed; it takes no more writes")
        return self._file

    def append(self, data: Bytes) -> int:
        offset = self.size
        file = self._open_file()
        file.seek(offset)
        file.write(data)
        self.size += memoryview(data).nbytes
        self._dirty = True
        return offset

    def write_at(self, offset: int, data: Bytes) -> None:
        file = self._open_file()
        file.seek(offset)
        file.write(data)
        self._dirty = True

    def read_at(self, offset: int, nbytes: int) -> bytes:
        file = self._open_file()
        file.seek(offset)
        return file.read(nbytes)

    def publish(self) -> None:
        if self._dirty:
            self.storage.upload(self.key, self._open_file())
            self._dirty = False

    def close(self) -> None:
        if self._file is None:
            return
        self.publish()
        file, self._file = self._file, None
        file.close()
