"""A shard being filled: chunks stream into one open file, never rewriting what is there.

Zarr v3 ``sharding_indexed`` stores a block of chunks as one object with an index of
``(offset, nbytes)`` per chunk. Here the index sits at the start of the file (``index_location:
"start"``, a fixed size) and chunks are appended after it as they complete, so a frame costs one
append, however large the shard has grown. :meth:`ShardFile.publish` writes the index in place;
until a shard is first published it lives under a hidden temporary name, and publishing it the
first time renames it into place. From then on the file only grows, and the index at its start
always describes chunks that are already whole in the store, so a reader sees every chunk published
so far. The index carries a crc32c checksum: a reader that races an index update gets a checksum
error (and reads again), never a wrong chunk.

A chunk that comes again (a grid point measured twice, a partial chunk written at each flush) is
appended anew and the index points at the new copy; when a shard is complete and more than half
of it is such dead space, it is written once more, compacted.
"""

from __future__ import annotations

import google_crc32c
import numpy as np

from ...storage import GrowingObject, Storage

__all__ = ["ShardFile", "index_codecs"]

_MISSING = np.uint64(2**64 - 1)


def index_codecs() -> list[dict[str, object]]:
    """The ``index_codecs`` of every shard written here: little-endian uint64 pairs and crc32c."""
    return [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}]


class ShardFile:
    """One shard, the object ``key`` of ``storage``, holding a grid of ``chunks_per_shard`` chunks.

    ``expected`` is how many of those chunks lie inside the array: the shard is complete when
    that many have been added.
    """

    def __init__(self, storage: Storage, key: str, chunks_per_shard: tuple[int, ...], expected: int) -> None:
        self.storage = storage
        self.key = key
        self.expected = expected
        self.index = np.full((*chunks_per_shard, 2), _MISSING, dtype="<u8")
        self.index_nbytes = self.index.nbytes + 4
        self._object: GrowingObject | None = None
        self._dead = 0
        self._changed = False
        self.added: set[tuple[int, ...]] = set()

    @classmethod
    def reopen(
        cls, storage: Storage, key: str, chunks_per_shard: tuple[int, ...], expected: int
    ) -> ShardFile:
        """A shard closed earlier, opened again to take more chunks (a point measured again)."""
        shard = cls(storage, key, chunks_per_shard, expected)
        shard._object = storage.grow(key, reopen=True)
        raw = shard._object.read_at(0, shard.index.nbytes)
        shard.index[...] = np.frombuffer(raw, dtype="<u8").reshape(shard.index.shape)
        present = shard.index[..., 0] != _MISSING
        shard.added = {local for local in np.ndindex(shard.index.shape[:-1]) if present[local]}
        shard._dead = shard._object.size - shard.index_nbytes - int(shard.index[..., 1][present].sum())
        return shard

    @property
    def complete(self) -> bool:
        return len(self.added) >= self.expected

    def _open(self) -> GrowingObject:
        if self._object is None:
            self._object = self.storage.grow(self.key, hidden=True)
            self._object.append(bytes(self.index_nbytes))  # the index's place, written at publish
        return self._object

    def add(self, local: tuple[int, ...], data: bytes | memoryview) -> None:
        """Append one encoded chunk at its place ``local`` within the shard."""
        nbytes = memoryview(data).nbytes
        offset = self._open().append(data)
        old = self.index[local]
        if old[0] != _MISSING:
            self._dead += int(old[1])
        self.index[local] = (offset, nbytes)
        self.added.add(local)
        self._changed = True

    def read(self, local: tuple[int, ...]) -> bytes | None:
        """The encoded chunk at ``local``, or ``None`` if it was never added."""
        offset, nbytes = (int(v) for v in self.index[local])
        if offset == int(_MISSING) or self._object is None:
            return None
        return self._object.read_at(offset, nbytes)

    def publish(self) -> None:
        """Make every chunk added so far visible: write the index, and put the object in place."""
        if not self._changed:
            return
        shard = self._open()
        raw = self.index.tobytes()
        shard.write_at(0, raw + google_crc32c.value(raw).to_bytes(4, "little"))
        shard.publish()
        self._changed = False

    def close(self) -> None:
        """Publish, compact if more than half the object is superseded copies, and close it."""
        if self._object is None:
            return
        if self._dead > self._object.size - self.index_nbytes - self._dead:
            self._compact()
        self.publish()
        assert self._object is not None
        self._object.close()
        self._object = None

    def _compact(self) -> None:
        chunks = {local: self.read(local) for local in np.ndindex(self.index.shape[:-1])}
        old = self._object
        assert old is not None
        self._object, self._dead = None, 0
        self.index[...] = _MISSING
        for local, data in chunks.items():
            if data is not None:
                self.add(local, data)
        old.close()
