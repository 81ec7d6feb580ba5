"""The storage interface: the only way bytes of an output reach a store.

An output (a Zarr store, a run directory of tables) is a :class:`Storage`: a root and objects
below it under ``/``-separated keys. The interface is shaped for immutable objects, so that an
object-store implementation fits it as well as a file system:

- :meth:`Storage.put` writes a whole object at once; a reader sees the old object or the new
  one, never a part.
- :meth:`Storage.writer` streams a whole object that appears, whole, when the block ends.
- :meth:`Storage.grow` opens an object that is filled in place (a shard, a live Arrow stream);
  :meth:`GrowingObject.publish` makes what it holds so far visible (a file system may show
  appends sooner; an object store uploads the whole object at each publish, and only then).
- :meth:`Storage.lock` marks an output as owned by the writer writing it, until the run ends;
  :meth:`Storage.lock_holder` says whether a live writer holds it (a file system can tell; an
  object store cannot, and says so with :attr:`Storage.knows_writers`).
- :meth:`Storage.local_file` is the root as a local file, for a library that must write a file
  itself (h5py); only local storage has one.
- :meth:`Storage.check_writable` and :meth:`Storage.free_bytes` say at a run's start whether it
  can be written there, and how much fits.
- :meth:`Storage.sync` makes everything written so far durable. ``put(..., durable=True)`` and
  :meth:`Storage.writer` objects are durable when they return; the rest at the next ``sync``
  (every run syncs at its ``stop``).

Every ``OSError`` becomes one :class:`~bluesky_zarr.WriteError` that names the path and keeps the
``errno``, here and nowhere else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["GrowingObject", "Storage", "WriterLock"]

Bytes = bytes | bytearray | memoryview


class GrowingObject(ABC):
    """One object filled in place: appended to, patched at an offset, read back, published."""

    key: str
    size: int
    """The bytes written so far (the offset of the next append)."""

    @abstractmethod
    def append(self, data: Bytes) -> int:
        """Write ``data`` at the end; returns the offset it was written at."""

    @abstractmethod
    def write_at(self, offset: int, data: Bytes) -> None:
        """Overwrite bytes at ``offset`` (within what was written)."""

    @abstractmethod
    def read_at(self, offset: int, nbytes: int) -> bytes:
        """Bytes written earlier."""

    @abstractmethod
    def publish(self) -> None:
        """Make everything written so far visible to readers (a hidden object appears at its key)."""

    @abstractmethod
    def close(self) -> None:
        """Publish and release the object; calling it again does nothing."""


class WriterLock:
    """A writer's hold on one output while it writes it; :meth:`release` ends it (once).

    This base holds nothing: it is what a store that cannot lock (an object store) gives.
    """

    def release(self) -> None:
        """End the hold; calling it again does nothing."""


class Storage(ABC):
    """A root and the objects below it, keyed by ``/``-separated keys relative to the root."""

    knows_writers: bool = False
    """Whether :meth:`lock_holder` can tell a live writer (a local file system: yes)."""

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the root is (a path, a URL), for messages and ``artifacts``."""

    @abstractmethod
    def describe(self, key: str) -> str:
        """Where ``key`` is, for messages."""

    @abstractmethod
    def child(self, name: str) -> Storage:
        """The storage rooted at ``name`` below this root (one run's output below a writer's target).

        ``name`` is relative and stays below the root; one that would leave it is an
        :class:`~bluesky_zarr.UnsafePathError`.
        """

    @abstractmethod
    def artifact(self, key: str = "") -> Path | str:
        """What ``artifacts`` lists for ``key``: a local path, or the URL of an object."""

    def local_file(self) -> Path | None:
        """The root as one local file, for a library that writes a file itself (h5py), or ``None``
        where there is no such file (object storage). Its folder is made; :meth:`sync` makes the
        file durable. Bytes written there are the library's: its errors are its own to wrap."""
        return None

    def zarr_store(self) -> Any:
        """What a stock Zarr reader opens this root with (a path, or a zarr ``Store``)."""
        return self.location

    # --- the root ---------------------------------------------------------------------------------

    @abstractmethod
    def create(self, *, overwrite: bool = False, exist_ok: bool = False) -> None:
        """Create the root. An existing one is a :class:`~bluesky_zarr.StoreExistsError` (a
        ``FileExistsError``) unless ``exist_ok``; with ``overwrite`` it is removed first."""

    @abstractmethod
    def exists(self, key: str = "") -> bool:
        """Whether an object (or, for ``""``, the root) is there."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """The names directly below ``prefix`` (objects and folders), sorted."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove an object, or everything below a prefix; nothing there is not an error."""

    # --- whole objects ----------------------------------------------------------------------------

    @abstractmethod
    def put(self, key: str, data: Bytes, *, durable: bool = False) -> None:
        """Write a whole object atomically; with ``durable`` it is on disk when this returns."""

    @abstractmethod
    def size(self, key: str) -> int:
        """The size of an object in bytes (0 if it is not there)."""

    @abstractmethod
    def get(self, key: str) -> bytes | None:
        """A whole object, or ``None`` if it is not there."""

    @abstractmethod
    def writer(self, key: str) -> AbstractContextManager[BinaryIO]:
        """A file to stream one whole object into; it appears at ``key``, durable, when the block
        ends without an error, and not at all otherwise."""

    @abstractmethod
    def reader(self, key: str) -> AbstractContextManager[BinaryIO]:
        """A file to read one object from."""

    @abstractmethod
    def rename(self, key: str, new_key: str) -> None:
        """Move an object to another key in one step (replacing what is there), or every object
        below a prefix to another prefix (where nothing is; one step where the store allows)."""

    # --- growing objects and durability -----------------------------------------------------------

    @abstractmethod
    def grow(self, key: str, *, hidden: bool = True, reopen: bool = False) -> GrowingObject:
        """An object to fill in place. ``hidden``: invisible until first published (else there,
        empty, at once); ``reopen``: continue an object published and closed before."""

    def lock(self, name: str) -> WriterLock:
        """Hold the output for this process under ``name`` (a format's name) until released.

        A live holder of the same ``name`` is an :class:`~bluesky_zarr.OutputBusyError`. The
        base holds nothing (an object store cannot tell whether a writer is alive).
        """
        return WriterLock()

    def lock_holder(self, name: str) -> str | None:
        """Which live writer holds the output under ``name`` (for messages), or ``None``."""
        return None

    def check_writable(self) -> None:
        """Raise a :class:`~bluesky_zarr.WriteError` that names the root if nothing can be written
        there now (a read-only file system, no permission), before a run writes anything. The base
        checks nothing (an object store answers at the first put)."""
        return None

    def free_bytes(self) -> int | None:
        """The bytes free where the root is, or ``None`` where that is unbounded or unknown."""
        return None

    @abstractmethod
    def sync(self) -> None:
        """Make everything written so far durable: objects and the folders that name them."""
