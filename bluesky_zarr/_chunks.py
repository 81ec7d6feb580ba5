"""Chunks assembled from events and written once, each with one put.

An :class:`ArrayWriter` owns one array of a stream. A reading lands in the chunk that holds its
event index; a chunk is encoded and written as soon as every point of it has arrived, so a frame
of a camera (one reading per chunk) goes to disk at once. Chunks that gather many small readings
stay in memory until they are complete and are written whole on each :meth:`ArrayWriter.flush`,
so a running scan is readable a moment after each event.
"""

from __future__ import annotations

from typing import Any

import numcodecs
import numpy as np
from zarr.core.buffer import default_buffer_prototype
from zarr.core.dtype import parse_data_type
from zarr.core.metadata.v3 import ArrayV3Metadata

from ._layout import ArraySpec
from ._storage import LocalStorage

__all__ = ["ArrayWriter", "array_metadata"]

_CHUNK_KEY_ENCODING = {"name": "default", "configuration": {"separator": "."}}
"""Chunk keys ``c.0.1.0.0``: all of an array's chunks in one directory, so writing a chunk never
has to create directories (with ``/`` every frame of a grid scan made one or more)."""
_VLEN_UTF8 = numcodecs.VLenUTF8()


def _is_text(dtype: np.dtype[Any]) -> bool:
    return dtype.kind in "SUO"


def array_metadata(spec: ArraySpec, shape: tuple[int, ...]) -> bytes:
    """The ``zarr.json`` of an array, made by zarr-python itself so it is valid Zarr v3."""
    text = _is_text(spec.dtype)
    # the dimension names twice: Zarr v3's own field, and the attribute xarray's Zarr v2 path reads
    attrs: dict[str, Any] = {**spec.attrs, "_ARRAY_DIMENSIONS": list(spec.dims)}
    metadata = ArrayV3Metadata(
        shape=shape,
        data_type=parse_data_type(str if text else spec.dtype, zarr_format=3),
        chunk_grid={"name": "regular", "configuration": {"chunk_shape": spec.chunks}},
        chunk_key_encoding=_CHUNK_KEY_ENCODING,  # type: ignore[arg-type]
        fill_value=spec.fill_value,
        codecs=[{"name": "vlen-utf8"}]
        if text
        else [{"name": "bytes", "configuration": {"endian": "little"}}],
        attributes=attrs,
        dimension_names=spec.dims,
    )
    return metadata.to_buffer_dict(default_buffer_prototype())["zarr.json"].to_bytes()


class _OpenChunk:
    __slots__ = ("count", "data", "dirty", "filled", "needed")

    def __init__(self, data: np.ndarray, filled: np.ndarray, needed: int) -> None:
        self.data = data
        self.filled = filled
        self.count = int(filled.sum())
        """how many points of ``filled`` are set: the chunk is complete at ``needed``"""
        self.needed = needed
        self.dirty = False

    @property
    def complete(self) -> bool:
        return self.count >= self.needed


class ArrayWriter:
    """Writes the chunks of one array below ``path`` (the array's key prefix in ``storage``)."""

    def __init__(self, storage: LocalStorage, path: str, spec: ArraySpec, *, defer: bool = False) -> None:
        self.storage = storage
        self.path = path
        self.spec = spec
        self.defer = defer
        """Write complete chunks only on flush (the ``written`` mask goes after the data)."""
        self.event_ndim = spec.event_ndim
        self.event_chunks = np.asarray(spec.chunks[: self.event_ndim], dtype=np.int64)
        self.reading_shape = spec.reading_shape
        self.growing = spec.shape[: self.event_ndim] == (0,)
        self._chunk_list: list[int] = self.event_chunks.tolist()
        self._one_point = (1,) * self.event_ndim + self.reading_shape
        self.points_per_chunk = int(np.prod(self.event_chunks))
        self._dtype = np.dtype(object) if _is_text(spec.dtype) else spec.dtype.newbyteorder("<")
        self._open: dict[tuple[int, ...], _OpenChunk] = {}
        self._stored: set[tuple[int, ...]] = set()

    # --- encoding ---------------------------------------------------------------------------------

    def _key(self, coords: tuple[int, ...]) -> str:
        return f"{self.path}/c." + ".".join(map(str, coords + (0,) * len(self.reading_shape)))

    def _encode(self, chunk: np.ndarray) -> bytes | memoryview:
        if self._dtype.kind == "O":
            return bytes(_VLEN_UTF8.encode(chunk.ravel()))
        return np.ascontiguousarray(chunk, dtype=self._dtype).data.cast("B")

    def _decode(self, data: bytes) -> np.ndarray:
        shape = tuple(int(c) for c in self.event_chunks) + self.reading_shape
        if self._dtype.kind == "O":
            return np.asarray(_VLEN_UTF8.decode(data), dtype=object).reshape(shape)
        return np.frombuffer(data, dtype=self._dtype).reshape(shape).copy()

    def _put(self, coords: tuple[int, ...], chunk: np.ndarray) -> None:
        self.storage.put(self._key(coords), self._encode(chunk))
        self._stored.add(coords)

    # --- chunks -----------------------------------------------------------------------------------

    def _needed(self, coords: tuple[int, ...]) -> int:
        if self.growing:
            return self.points_per_chunk
        first = np.asarray(coords) * self.event_chunks
        shape = np.asarray(self.spec.shape[: self.event_ndim])
        return int(np.prod(np.minimum(self.event_chunks, shape - first)))

    def _chunk(self, coords: tuple[int, ...]) -> _OpenChunk:
        chunk = self._open.get(coords)
        if chunk is None:
            event_chunk = tuple(int(c) for c in self.event_chunks)
            stored = self.storage.get(self._key(coords)) if coords in self._stored else None
            if stored is not None:  # a point of a written chunk comes again (pause/resume)
                data = self._decode(stored)
                filled = np.ones(event_chunk, dtype=bool)
            else:
                data = np.full(event_chunk + self.reading_shape, self.spec.fill_value, dtype=self._dtype)
                filled = np.zeros(event_chunk, dtype=bool)
            chunk = self._open[coords] = _OpenChunk(data, filled, self._needed(coords))
        return chunk

    def write(self, index: np.ndarray, values: np.ndarray) -> None:
        """Put ``values[i]`` at event index ``index[i]`` (an ``(n, event_ndim)`` integer array)."""
        if self.points_per_chunk == 1 and not self.defer:
            for row, value in zip(index.tolist(), values, strict=True):
                self._put(tuple(row), value.reshape(self._one_point))
            return
        if len(index) == 1:  # the common case, one event at a time: plain integer arithmetic
            point = index[0].tolist()
            coords = tuple(p // c for p, c in zip(point, self._chunk_list, strict=True))
            local = tuple(p % c for p, c in zip(point, self._chunk_list, strict=True))
            chunk = self._chunk(coords)
            chunk.data[local] = values[0]
            if not chunk.filled[local]:
                chunk.filled[local] = True
                chunk.count += 1
            self._changed(coords, chunk)
            return
        coords_all = index // self.event_chunks
        local_all = index - coords_all * self.event_chunks
        unique, inverse = np.unique(coords_all, axis=0, return_inverse=True)
        for group, found in enumerate(unique.tolist()):
            rows = inverse.ravel() == group
            chunk = self._chunk(tuple(found))
            local = tuple(local_all[rows].T)
            chunk.data[local] = values[rows]
            chunk.filled[local] = True
            chunk.count = int(chunk.filled.sum())
            self._changed(tuple(found), chunk)

    def _changed(self, coords: tuple[int, ...], chunk: _OpenChunk) -> None:
        chunk.dirty = True
        if chunk.complete and not self.defer:
            self._put(coords, chunk.data)
            del self._open[coords]

    def read(self, index: tuple[int, ...]) -> np.ndarray:
        """The reading stored at one event index (from memory, or read back from the store)."""
        coords = tuple(int(i) // int(c) for i, c in zip(index, self.event_chunks, strict=True))
        local = tuple(int(i) % int(c) for i, c in zip(index, self.event_chunks, strict=True))
        chunk = self._open.get(coords)
        if chunk is not None:
            return np.asarray(chunk.data[local])
        stored = self.storage.get(self._key(coords)) if coords in self._stored else None
        if stored is None:
            return np.full(self.reading_shape, self.spec.fill_value, dtype=self._dtype)
        return np.asarray(self._decode(stored)[local])

    def flush(self) -> None:
        """Write every chunk that changed since it was last written; complete ones leave memory."""
        for coords, chunk in list(self._open.items()):
            if chunk.dirty:
                self._put(coords, chunk.data)
                chunk.dirty = False
            if chunk.complete:
                del self._open[coords]

    @property
    def open_chunks(self) -> int:
        return len(self._open)
