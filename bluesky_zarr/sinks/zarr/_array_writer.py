"""One array of a stream, written as readings arrive: chunks assembled in memory, then encoded once.

An :class:`ArrayWriter` gathers readings into *blocks*: the part of the array that shares one
chunk index along the event dimensions, across the whole reading (a block is one chunk, or the
row of chunks a tiled reading spans). A block is encoded and written as soon as every point of it
has arrived, so a camera frame (one reading per chunk) goes to disk at once. A block still being
filled is written at each :meth:`ArrayWriter.flush` while it is small (the scalars of a running
scan stay readable a moment after each event); a larger one waits until it is complete, the run
stops, or the run fails, and :meth:`ArrayWriter.unwritten` tells the stream which points those
are, so the ``written`` mask never vouches for them.

Without shards each chunk is one object, put atomically. With shards each chunk is appended to
the open :class:`ShardFile` of its shard.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ...storage import Storage
from ._layout import ArraySpec
from ._shards import ShardFile

__all__ = ["REWRITE_PARTIAL_BYTES", "ArrayWriter"]

REWRITE_PARTIAL_BYTES = 4 * 1024**2
"""A block still being filled is rewritten at each flush only up to this size."""


def _is_text(dtype: np.dtype[Any]) -> bool:
    return dtype.kind in "SUO"


def _tiles(reading_shape: tuple[int, ...], tile: tuple[int, ...]) -> list[tuple[tuple[int, ...], Any, Any]]:
    """Every chunk index along the reading's dimensions, the part of a reading that chunk holds, and
    the same part counted from the chunk's corner (an edge chunk is larger than its part)."""
    tiles = []
    for coords in itertools.product(
        *(range(math.ceil(n / t)) for n, t in zip(reading_shape, tile, strict=True))
    ):
        part = [
            slice(c * t, min((c + 1) * t, n)) for c, t, n in zip(coords, tile, reading_shape, strict=True)
        ]
        tiles.append((coords, (Ellipsis, *part), (Ellipsis, *(slice(0, p.stop - p.start) for p in part))))
    return tiles


class _Block:
    """Readings of one block being gathered: their values, and which points have come."""

    __slots__ = ("count", "data", "dirty", "filled", "needed")

    def __init__(self, data: np.ndarray, filled: np.ndarray, needed: int) -> None:
        self.data = data
        self.filled = filled
        self.count = int(filled.sum())
        """how many points of ``filled`` are set: the block is complete at ``needed``"""
        self.needed = needed
        self.dirty = False

    @property
    def complete(self) -> bool:
        return self.count >= self.needed


class ArrayWriter:
    """Writes the chunks of one array below ``path`` (the array's key prefix in ``storage``)."""

    def __init__(self, storage: Storage, path: str, spec: ArraySpec) -> None:
        self.storage = storage
        self.path = path
        self.spec = spec
        self.event_ndim = spec.event_ndim
        self.reading_shape = spec.reading_shape
        self.growing = spec.shape[: self.event_ndim] == (0,)
        self.block_shape = spec.chunks[: self.event_ndim]
        self._block_array = np.asarray(self.block_shape, dtype=np.int64)
        self._block_list = list(self.block_shape)
        self._one_point = (1,) * self.event_ndim + self.reading_shape
        self.points_per_block = math.prod(self.block_shape)
        self._dtype = np.dtype(object) if _is_text(spec.dtype) else spec.dtype.newbyteorder("<")
        self.codecs = spec.codecs
        tile = spec.chunks[self.event_ndim :]
        self._chunk_shape = self.block_shape + tile
        self._tiles = _tiles(self.reading_shape, tile)
        self._block_nbytes = (
            self.points_per_block * math.prod(self.reading_shape) * max(1, self._dtype.itemsize)
        )
        self._open: dict[tuple[int, ...], _Block] = {}
        self._stored: set[tuple[int, ...]] = set()
        self._shards: dict[tuple[int, ...], ShardFile] = {}
        self._closed_shards: set[tuple[int, ...]] = set()
        self._per_shard = (
            tuple(s // c for s, c in zip(spec.shards, spec.chunks, strict=True)) if spec.shards else None
        )

    # --- chunks on disk -------------------------------------------------------------------------------

    def _chunk_key(self, coords: tuple[int, ...]) -> str:
        return f"{self.path}/c." + ".".join(map(str, coords))

    def _put_block(self, block: tuple[int, ...], data: np.ndarray) -> None:
        """Encode and write every chunk of one block."""
        for tile, part, _ in self._tiles:
            chunk = data[part]
            if chunk.shape != self._chunk_shape:  # an edge tile: pad to the chunk shape
                padded = np.full(self._chunk_shape, self.spec.fill_value, dtype=self._dtype)
                padded[tuple(slice(0, n) for n in chunk.shape)] = chunk
                chunk = padded
            coords = block + tile
            if self._per_shard is None:
                self.storage.put(self._chunk_key(coords), self.codecs.encode(chunk))
            else:
                shard, local = self._in_shard(coords)
                shard.add(local, self.codecs.encode(chunk))
        self._stored.add(block)

    def _get_block(self, block: tuple[int, ...]) -> np.ndarray | None:
        """A block read back from what was written, or ``None`` if nothing of it was."""
        if block not in self._stored:
            return None
        data = np.full(self.block_shape + self.reading_shape, self.spec.fill_value, dtype=self._dtype)
        for tile, part, crop in self._tiles:
            coords = block + tile
            if self._per_shard is None:
                encoded = self.storage.get(self._chunk_key(coords))
            else:
                shard, local = self._in_shard(coords)
                encoded = shard.read(local)
            if encoded is not None:
                chunk = self.codecs.decode(encoded, self._chunk_shape, self._dtype)
                data[part] = chunk[crop]
        return data

    # --- shards -----------------------------------------------------------------------------------

    def _in_shard(self, coords: tuple[int, ...]) -> tuple[ShardFile, tuple[int, ...]]:
        """The shard that holds the chunk at ``coords`` (opened if need be), and its place there."""
        assert self._per_shard is not None
        key = tuple(c // k for c, k in zip(coords, self._per_shard, strict=True))
        local = tuple(c % k for c, k in zip(coords, self._per_shard, strict=True))
        shard = self._shards.get(key)
        if shard is None:
            chunks_along = [
                math.ceil(n / c) if n else None
                for n, c in zip(self.spec.shape, self.spec.chunks, strict=True)
            ]
            expected = math.prod(
                k if n is None else min(k, n - s * k)
                for s, k, n in zip(key, self._per_shard, chunks_along, strict=True)
            )
            shard_key = self._chunk_key(key)
            if key in self._closed_shards:  # a point of a finished shard comes again
                shard = ShardFile.reopen(self.storage, shard_key, self._per_shard, expected)
            else:
                shard = ShardFile(self.storage, shard_key, self._per_shard, expected)
            self._shards[key] = shard
        return shard, local

    def _close_complete_shards(self, everything: bool) -> None:
        for key, shard in list(self._shards.items()):
            if everything or shard.complete:
                shard.close()
                del self._shards[key]
                self._closed_shards.add(key)
            else:
                shard.publish()

    # --- blocks -----------------------------------------------------------------------------------

    def _needed(self, block: tuple[int, ...]) -> int:
        if self.growing:
            return self.points_per_block
        first = np.asarray(block) * self._block_array
        shape = np.asarray(self.spec.shape[: self.event_ndim])
        return int(np.prod(np.minimum(self._block_array, shape - first)))

    def _block(self, coords: tuple[int, ...]) -> _Block:
        block = self._open.get(coords)
        if block is None:
            stored = self._get_block(coords)
            if stored is not None:  # a point of a written block comes again (pause/resume)
                filled = np.ones(self.block_shape, dtype=bool)
                block = _Block(stored, filled, self._needed(coords))
            else:
                data = np.full(self.block_shape + self.reading_shape, self.spec.fill_value, dtype=self._dtype)
                block = _Block(data, np.zeros(self.block_shape, dtype=bool), self._needed(coords))
            self._open[coords] = block
        return block

    def write(self, index: np.ndarray, values: np.ndarray) -> None:
        """Put ``values[i]`` at event index ``index[i]`` (an ``(n, event_ndim)`` integer array)."""
        if self.points_per_block == 1:
            for row, value in zip(index.tolist(), values, strict=True):
                coords = tuple(row)
                self._open.pop(coords, None)
                self._put_block(coords, value.reshape(self._one_point))
            return
        if len(index) == 1:  # the common case, one event at a time: plain integer arithmetic
            point = index[0].tolist()
            coords = tuple(p // c for p, c in zip(point, self._block_list, strict=True))
            local = tuple(p % c for p, c in zip(point, self._block_list, strict=True))
            block = self._block(coords)
            block.data[local] = values[0]
            if not block.filled[local]:
                block.filled[local] = True
                block.count += 1
            self._changed(coords, block)
            return
        coords_all = index // self._block_array
        local_all = index - coords_all * self._block_array
        unique, inverse = np.unique(coords_all, axis=0, return_inverse=True)
        for group, found in enumerate(unique.tolist()):
            rows = inverse.ravel() == group
            block = self._block(tuple(found))
            local = tuple(local_all[rows].T)
            block.data[local] = values[rows]
            block.filled[local] = True
            block.count = int(block.filled.sum())
            self._changed(tuple(found), block)

    def _changed(self, coords: tuple[int, ...], block: _Block) -> None:
        block.dirty = True
        if block.complete:
            self._put_block(coords, block.data)
            del self._open[coords]

    def read(self, index: tuple[int, ...]) -> np.ndarray:
        """The reading stored at one event index (from memory, or read back from the store)."""
        coords = tuple(int(i) // c for i, c in zip(index, self.block_shape, strict=True))
        local = tuple(int(i) % c for i, c in zip(index, self.block_shape, strict=True))
        block = self._open.get(coords)
        data = block.data if block is not None else self._get_block(coords)
        if data is None:
            return np.full(self.reading_shape, self.spec.fill_value, dtype=self._dtype)
        return np.asarray(data[local])

    def flush(self, *, final: bool = False) -> None:
        """Write what changed and make it visible.

        Blocks still being filled are written if they are small, or with ``final`` (the run is
        ending) whatever their size. Complete blocks leave memory; with ``final`` every shard is
        closed.
        """
        for coords, block in list(self._open.items()):
            if block.dirty and (final or self._block_nbytes <= REWRITE_PARTIAL_BYTES):
                self._put_block(coords, block.data)
                block.dirty = False
            if block.complete or final:
                del self._open[coords]
        self._close_complete_shards(everything=final)

    def unwritten(self, mask: np.ndarray) -> None:
        """Clear, in ``mask`` over the event dimensions, the points held back in memory."""
        for coords, block in self._open.items():
            if block.dirty:
                where = tuple(
                    slice(c * n, (c + 1) * n) for c, n in zip(coords, self.block_shape, strict=True)
                )
                view = mask[where]
                view &= ~block.filled[tuple(slice(0, n) for n in view.shape)]

    def widened(
        self, spec: ArraySpec, path: str, holds: Callable[[tuple[int, ...]], np.ndarray]
    ) -> ArrayWriter:
        """A writer of the same array in the wider dtype of ``spec``, at ``path``, holding the same.

        Every block this writer stored is written there, cast; blocks still being filled stay in
        memory, cast. ``holds(block)`` says which points of a stored block hold readings (the
        others get the new fill value, as points that never got one). Every shard is closed, so
        that ``path`` can be moved (see :meth:`move`).
        """
        self._close_complete_shards(everything=True)
        new = ArrayWriter(self.storage, path, spec)
        reading_axes = (np.newaxis,) * len(self.reading_shape)
        for coords in sorted(self._stored | set(self._open)):
            gathering = self._open.get(coords)
            data = gathering.data if gathering is not None else self._get_block(coords)
            assert data is not None
            filled = gathering.filled if gathering is not None else holds(coords)
            wide = np.where(
                filled[(..., *reading_axes)], data.astype(new._dtype), new._dtype.type(spec.fill_value)
            )
            if coords in self._stored:
                new._put_block(coords, wide)
            if gathering is not None:
                new._open[coords] = _Block(wide, gathering.filled.copy(), gathering.needed)
                new._open[coords].dirty = gathering.dirty
        new._close_complete_shards(everything=True)
        return new

    def move(self, path: str) -> None:
        """The array's objects were moved to ``path`` (its shards are closed: nothing is open there)."""
        assert not self._shards
        self.path = path

    def written_length(self) -> int | None:
        """For an array growing along ``time``: how many leading events are on disk (``None``: all)."""
        held = [coords[0] * self.block_shape[0] for coords, block in self._open.items() if block.dirty]
        return min(held) if held else None
