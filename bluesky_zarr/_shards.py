"""A shard being filled: chunks stream into one open file, never rewriting what is there.

Zarr v3 ``sharding_indexed`` stores a block of chunks as one object with an index of
``(offset, nbytes)`` per chunk. Here the index sits at the start of the file (``index_location:
"start"``, a fixed size) and chunks are appended after it as they complete, so a frame costs one
append, however large the shard has grown. :meth:`ShardFile.publish` writes the index in place;
until a shard is first published it lives under a hidden temporary name, and publishing it the
first time renames it into place. From then on the file only grows, and the index at its start
always describes chunks that are already whole on disk, so a reader sees every chunk published
so far. The index carries a crc32c checksum: a reader that races an index update gets a checksum
error (and reads again), never a wrong chunk.

A chunk that comes again (a grid point measured twice, a partial chunk written at each flush) is
appended anew and the index points at the new copy; when a shard is complete and more than half
of it is such dead space, it is written once more, compacted.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import google_crc32c
import numpy as np

from ._errors import WriteError

__all__ = ["ShardFile", "index_codecs"]

_MISSING = np.uint64(2**64 - 1)


def index_codecs() -> list[dict[str, object]]:
    """The ``index_codecs`` of every shard written here: little-endian uint64 pairs and crc32c."""
    return [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}]


class ShardFile:
    """One shard file at ``path``, holding a grid of ``chunks_per_shard`` chunks.

    ``expected`` is how many of those chunks lie inside the array: the shard is complete when
    that many have been added.
    """

    def __init__(self, path: Path, chunks_per_shard: tuple[int, ...], expected: int) -> None:
        self.path = path
        self.expected = expected
        self.index = np.full((*chunks_per_shard, 2), _MISSING, dtype="<u8")
        self.index_nbytes = self.index.nbytes + 4
        self._temp = path.parent / f".{path.name}.partial"
        self._fd: int | None = None
        self._end = self.index_nbytes
        self._dead = 0
        self._published = False
        self._changed = False
        self.added: set[tuple[int, ...]] = set()

    @classmethod
    def reopen(cls, path: Path, chunks_per_shard: tuple[int, ...], expected: int) -> ShardFile:
        """A shard closed earlier, opened again to take more chunks (a point measured again)."""
        shard = cls(path, chunks_per_shard, expected)
        with shard._writing():
            fd = os.open(path, os.O_RDWR)
            raw = os.pread(fd, shard.index.nbytes, 0)
            shard._end = os.fstat(fd).st_size
        shard._fd = fd
        shard.index[...] = np.frombuffer(raw, dtype="<u8").reshape(shard.index.shape)
        shard.added = {
            local for local in np.ndindex(shard.index.shape[:-1]) if shard.index[local][0] != _MISSING
        }
        shard._dead = (
            shard._end - shard.index_nbytes - int(shard.index[..., 1][shard.index[..., 0] != _MISSING].sum())
        )
        shard._published = True
        return shard

    @property
    def complete(self) -> bool:
        return len(self.added) >= self.expected

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        try:
            yield
        except OSError as err:
            raise WriteError(err.errno, f"cannot write shard {self.path}: {err.strerror or err}") from err

    def _open(self) -> int:
        if self._fd is None:
            with self._writing():
                self._fd = os.open(self._temp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        return self._fd

    def add(self, local: tuple[int, ...], data: bytes | memoryview) -> None:
        """Append one encoded chunk at its place ``local`` within the shard."""
        fd = self._open()
        view = memoryview(data).cast("B")
        offset, written = self._end, 0
        with self._writing():
            while written < len(view):
                written += os.pwrite(fd, view[written:], offset + written)
        old = self.index[local]
        if old[0] != _MISSING:
            self._dead += int(old[1])
        self.index[local] = (offset, len(view))
        self._end += len(view)
        self.added.add(local)
        self._changed = True

    def read(self, local: tuple[int, ...]) -> bytes | None:
        """The encoded chunk at ``local``, or ``None`` if it was never added."""
        offset, nbytes = (int(v) for v in self.index[local])
        if offset == int(_MISSING) or self._fd is None:
            return None
        with self._writing():
            return os.pread(self._fd, nbytes, offset)

    def publish(self) -> None:
        """Make every chunk added so far visible: write the index, and put the file in place."""
        if not self._changed:
            return
        fd = self._open()
        raw = self.index.tobytes()
        with self._writing():
            os.pwrite(fd, raw + google_crc32c.value(raw).to_bytes(4, "little"), 0)
            if not self._published:
                os.replace(self._temp, self.path)
                self._published = True
        self._changed = False

    def close(self) -> None:
        """Publish, compact if more than half the file is superseded copies, and close the file."""
        if self._fd is None:
            return
        if self._dead > self._end - self.index_nbytes - self._dead:
            self._compact()
        self.publish()
        with self._writing():
            os.close(self._fd)
        self._fd = None

    def _compact(self) -> None:
        chunks = {local: self.read(local) for local in np.ndindex(self.index.shape[:-1])}
        old_fd = self._fd
        assert old_fd is not None
        self._fd, self._end, self._dead = None, self.index_nbytes, 0
        self.index[...] = _MISSING
        self._published = False
        for local, data in chunks.items():
            if data is not None:
                self.add(local, data)
        os.close(old_fd)
