"""The storage interface on a zarr ``Store`` object (``MemoryStore``, ``FsspecStore``, ``ObjectStore``, ...).

Whatever the store keeps its keys in, a writer given one writes through zarr-python's own
``Store`` API: each object is set whole (``Store.set``), a growing one is filled in a local spool
file and set whole at each publish, and durability is the store's own. A rename is a copy and a
delete per key. The runs go below the store's root as below a directory (``<prefix>.zarr/...``).
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import io
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import PurePosixPath
from typing import Any, BinaryIO, TypeVar

from zarr.abc.store import Store

from .._errors import BlueskyZarrError, ConfigurationError, StoreExistsError, UnsafePathError, WriteError
from .._zarr_adapter import default_buffer_prototype
from .._zarr_adapter import run_sync as sync
from ._base import Bytes, GrowingObject, Storage
from ._spooled import SpooledGrowing

__all__ = ["ZarrStoreStorage"]

T = TypeVar("T")


async def _collect(items: AsyncIterator[T]) -> builtins.list[T]:
    return [item async for item in items]


class ZarrStoreStorage(Storage):
    """Objects below ``prefix`` of the zarr store ``store`` (which must be writable)."""

    def __init__(self, store: Store, prefix: str = "") -> None:
        if store.read_only:
            raise ConfigurationError(
                f"{store!r} is read-only; nothing was written. Give a writable store "
                "(e.g. zarr.storage.MemoryStore(), or FsspecStore.from_url(..., read_only=False))"
            )
        self.store = store
        self.prefix = prefix.strip("/")

    def __repr__(self) -> str:
        return f"ZarrStoreStorage({self.store!r}, prefix={self.prefix!r})"

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__

    def _key(self, key: str) -> str:
        return "/".join(p for p in (self.prefix, key.strip("/")) if p)

    @contextlib.contextmanager
    def _wrapped(self, key: str, action: str = "write") -> Iterator[None]:
        try:
            yield
        except BlueskyZarrError:
            raise
        except Exception as err:
            raise WriteError(errno.EIO, f"cannot {action} {self.describe(key)}: {err}") from err

    @property
    def location(self) -> str:
        return f"{self.store}/{self.prefix}" if self.prefix else str(self.store)

    def describe(self, key: str) -> str:
        return f"{self.store}/{self._key(key)}"

    def child(self, name: str) -> ZarrStoreStorage:
        if not name or name.startswith("/") or ".." in PurePosixPath(name).parts or "\\" in name:
            raise UnsafePathError(f"{name!r} is not a name below {self.location}; choose a relative name")
        return ZarrStoreStorage(self.store, self._key(name))

    def artifact(self, key: str = "") -> str:
        return self.describe(key) if key else self.location

    def zarr_store(self) -> Any:
        if self.prefix:
            from zarr.storage import StorePath

            return StorePath(self.store, self.prefix)
        return self.store

    # --- the root ---------------------------------------------------------------------------------

    def _below(self, key: str) -> builtins.list[str]:
        full = self._key(key)
        with self._wrapped(key, "list"):
            found: builtins.list[str] = sync(_collect(self.store.list_prefix(f"{full}/" if full else "")))
            if full and sync(self.store.exists(full)):
                found.append(full)
        return found

    def create(self, *, overwrite: bool = False, exist_ok: bool = False) -> None:
        there = bool(self._below(""))
        if there and overwrite:
            self.delete("")
        elif there and not exist_ok:
            raise StoreExistsError(
                f"{self.location} exists already (another writer made it meanwhile?); nothing was written "
                "to it: choose another file_prefix, or pass overwrite=True to replace it"
            )

    def exists(self, key: str = "") -> bool:
        return bool(self._below(key))

    def list(self, prefix: str = "") -> builtins.list[str]:
        full = self._key(prefix)
        with self._wrapped(prefix, "list"):
            names = sync(_collect(self.store.list_dir(full)))
        return sorted({name.rstrip("/") for name in names})

    def delete(self, key: str) -> None:
        with self._wrapped(key, "remove"):
            for full in self._below(key):
                sync(self.store.delete(full))

    # --- whole objects ----------------------------------------------------------------------------

    def put(self, key: str, data: Bytes, *, durable: bool = False) -> None:
        buffer = default_buffer_prototype().buffer.from_bytes(bytes(memoryview(data).cast("B")))
        with self._wrapped(key):
            sync(self.store.set(self._key(key), buffer))

    def upload(self, key: str, file: BinaryIO) -> None:
        file.seek(0)
        self.put(key, file.read())

    def size(self, key: str) -> int:
        data = self.get(key)
        return len(data) if data is not None else 0

    def get(self, key: str) -> bytes | None:
        with self._wrapped(key, "read"):
            buffer = sync(self.store.get(self._key(key), default_buffer_prototype()))
        return None if buffer is None else buffer.to_bytes()

    def spool_file(self) -> BinaryIO:
        return tempfile.TemporaryFile(prefix="bluesky-zarr-")

    @contextlib.contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        with self.spool_file() as file:
            yield file
            self.upload(key, file)

    @contextlib.contextmanager
    def reader(self, key: str) -> Iterator[BinaryIO]:
        data = self.get(key)
        if data is None:
            raise WriteError(errno.ENOENT, f"cannot read {self.describe(key)}: no such object")
        yield io.BytesIO(data)

    def rename(self, key: str, new_key: str) -> None:
        full, new = self._key(key), self._key(new_key)
        for old in self._below(key):
            data = self.get(old[len(self.prefix) + 1 :] if self.prefix else old)
            if data is None:
                continue
            target = new + old[len(full) :]
            with self._wrapped(key, f"move to {self.describe(new_key)}:"):
                sync(self.store.set(target, default_buffer_prototype().buffer.from_bytes(data)))
                sync(self.store.delete(old))

    # --- growing objects and durability -----------------------------------------------------------

    def grow(self, key: str, *, hidden: bool = True, reopen: bool = False) -> GrowingObject:
        return SpooledGrowing(self, key, hidden=hidden, reopen=reopen)

    def sync(self) -> None:
        """Nothing to do here: durability is the store's own."""
