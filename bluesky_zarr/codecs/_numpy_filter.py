"""The zarr-python side of an array->array codec whose work is two numpy functions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from zarr.abc.codec import ArrayArrayCodec

from .._zarr_adapter import native_dtype

if TYPE_CHECKING:
    from .._zarr_adapter import ArraySpec, NDBuffer

__all__ = ["NumpyFilter"]


class NumpyFilter(ArrayArrayCodec):
    """An array->array codec defined by :meth:`encode_array` and :meth:`decode_array` on numpy
    chunks: this base gives zarr-python's hooks, synchronous and asynchronous, in their terms (the
    writer's codec chain calls the two methods itself)."""

    def encode_array(self, chunk: np.ndarray) -> np.ndarray:
        """The encoded chunk (same shape)."""
        raise NotImplementedError

    def decode_array(self, chunk: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
        """The decoded chunk, of ``dtype`` (the chunk's dtype before encoding), a fresh array."""
        raise NotImplementedError

    def _encode_sync(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> NDBuffer:
        encoded = self.encode_array(chunk_array.as_numpy_array())
        return chunk_spec.prototype.nd_buffer.from_numpy_array(encoded)

    def _decode_sync(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> NDBuffer:
        decoded = self.decode_array(chunk_array.as_numpy_array(), native_dtype(chunk_spec))
        return chunk_spec.prototype.nd_buffer.from_numpy_array(decoded)

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> NDBuffer:
        return self._encode_sync(chunk_array, chunk_spec)

    async def _decode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> NDBuffer:
        return self._decode_sync(chunk_array, chunk_spec)
