"""What each codec of a chain does to one chunk, both ways, synchronously.

A :class:`~bluesky_zarr.codecs.CodecChain` is a list of steps made once per chain: array steps
(transpose, bit rounding, the Anscombe codec, any other registered array->array codec) and bytes
steps (blosc, zstd, gzip, crc32c, any other registered bytes->bytes codec). The codecs the
writer knows are encoded by our own calls to numcodecs, c-blosc and google-crc32c; any other
registered zarr v3 codec by zarr-python's own codec object, through
:func:`~bluesky_zarr._zarr_adapter.run_codec`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol, cast, runtime_checkable

import google_crc32c
import numcodecs
import numpy as np
from numcodecs.bitround import BitRound
from numcodecs.gzip import GZip
from numcodecs.zstd import Zstd
from zarr.abc.codec import ArrayArrayCodec, Codec
from zarr.codecs import BloscCodec, Crc32cCodec, GzipCodec, TransposeCodec, ZstdCodec

from .._errors import CorruptDataError
from .._zarr_adapter import ArraySpec, blosc_cname, blosc_shuffle, native_dtype, run_codec, sized_spec
from . import _blosc
from ._errors import CodecError

__all__ = [
    "BITROUND",
    "VLEN_UTF8",
    "ArrayStep",
    "Decode",
    "Encode",
    "SyncArrayCodec",
    "array_step",
    "bytes_steps",
]

BITROUND: Final = "numcodecs.bitround"
"""The Zarr v3 name of numcodecs' bit-rounding filter (configuration ``{"keepbits": n}``)."""
VLEN_UTF8: Final = numcodecs.VLenUTF8()

Bytes = bytes | memoryview
Encode = Callable[[Bytes], Bytes]
Decode = Callable[[Bytes, int], "Bytes | np.ndarray"]


@runtime_checkable
class SyncArrayCodec(Protocol):
    """An array->array codec that can also encode and decode a numpy chunk synchronously.

    :class:`~bluesky_zarr.codecs.AnscombeCodec` is one; a chain calls these two methods of any
    array->array codec that has them instead of zarr-python's asynchronous ones.
    """

    def encode_array(self, chunk: np.ndarray) -> np.ndarray:
        """The encoded chunk (same shape, the codec's encoded dtype)."""
        ...

    def decode_array(self, chunk: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
        """The decoded chunk of ``dtype`` (the dtype the codec was given on encode)."""
        ...

    def resolve_metadata(self, chunk_spec: ArraySpec) -> ArraySpec:
        """The spec of the encoded chunk (zarr-python's method: the encoded dtype)."""
        ...


# --- array -> array -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArrayStep:
    """One array->array codec of a chain: ``before`` is the dtype it takes, ``after`` the one it
    gives. :meth:`decode` gets the encoded chunk and the shape the chunk had before encoding."""

    codec: Codec
    before: np.dtype[Any]
    after: np.dtype[Any]

    def encode(self, array: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def decode(self, array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        raise NotImplementedError

    def stored_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of the encoded chunk."""
        return shape

    fresh: bool = False
    """Whether :meth:`decode` gives an array of its own (not a view of its input)."""


@dataclass(frozen=True)
class _Transpose(ArrayStep):
    def encode(self, array: np.ndarray) -> np.ndarray:
        return array.transpose(cast(TransposeCodec, self.codec).order)

    def decode(self, array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        return array.transpose(np.argsort(cast(TransposeCodec, self.codec).order))

    def stored_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(shape[i] for i in cast(TransposeCodec, self.codec).order)


@dataclass(frozen=True)
class _Synchronous(ArrayStep):
    fresh: bool = True

    def encode(self, array: np.ndarray) -> np.ndarray:
        return cast(SyncArrayCodec, self.codec).encode_array(array)

    def decode(self, array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        return cast(SyncArrayCodec, self.codec).decode_array(array, self.before)


@dataclass(frozen=True)
class _BitRound(ArrayStep):
    """numcodecs' rounding of float mantissas to ``keepbits`` bits; decoding is the identity."""

    keepbits: int = 0

    def encode(self, array: np.ndarray) -> np.ndarray:
        native = array.astype(array.dtype.newbyteorder("="), copy=False)  # numcodecs knows native floats
        return cast(np.ndarray, BitRound(self.keepbits).encode(native)).view(native.dtype)

    def decode(self, array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        return array


@dataclass(frozen=True)
class _Zarr(ArrayStep):
    """Any other registered array->array codec, through zarr-python's own codec object."""

    where: str = ""
    fresh: bool = True

    def encode(self, array: np.ndarray) -> np.ndarray:
        out = run_codec(self.codec, array, sized_spec(self.before, array.shape), encode=True)
        if out is None:
            raise CodecError(f"{self.where}: codec {self.codec.to_dict()!r} gave nothing for a chunk")
        return out

    def decode(self, array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        out = run_codec(self.codec, array, sized_spec(self.before, shape), encode=False)
        if out is None:
            raise CorruptDataError(f"{self.where}: codec {self.codec.to_dict()!r} decoded a chunk to nothing")
        return out

    def stored_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(self.codec.resolve_metadata(sized_spec(self.before, shape)).shape)


def array_step(codec: ArrayArrayCodec, dtype: np.dtype[Any], ndim: int, where: str) -> ArrayStep:
    """The step of ``codec`` for ``ndim``-dimensional chunks of ``dtype`` (the dtype the codec sees
    in its chain)."""
    if isinstance(codec, TransposeCodec):
        return _Transpose(codec, dtype, dtype)
    after = native_dtype(codec.resolve_metadata(sized_spec(dtype, (1,) * ndim)))
    if isinstance(codec, SyncArrayCodec):
        return _Synchronous(codec, dtype, after)
    description = cast(dict[str, Any], codec.to_dict())
    if description.get("name") == BITROUND:
        return _BitRound(codec, dtype, dtype, keepbits=int(description["configuration"]["keepbits"]))
    return _Zarr(codec, dtype, after, where=where)


# --- bytes -> bytes -------------------------------------------------------------------------------


def _crc32c_encode(data: Bytes) -> Bytes:
    view = memoryview(data).cast("B")
    return b"".join((view, struct.pack("<I", google_crc32c.value(np.frombuffer(view, dtype=np.uint8)))))


def bytes_steps(codec: Codec, threads: int, where: str, spec: ArraySpec) -> tuple[Encode, Decode]:
    """Encode and decode functions for one bytes->bytes codec. ``decode(data, n)``: ``n`` is the
    decoded size where known (-1 otherwise); a decoder returns a fresh ``ndarray`` when it made one.
    ``spec`` is the chunk spec a codec zarr-python runs for us is handed (the dtype it sees)."""
    if isinstance(codec, BloscCodec):
        cname, clevel, shuffle = blosc_cname(codec), codec.clevel, blosc_shuffle(codec)
        typesize, blocksize = codec.typesize, codec.blocksize

        def blosc_encode(data: Bytes) -> Bytes:
            return _blosc.compress(
                data, cname=cname, clevel=clevel, shuffle=shuffle, typesize=typesize, blocksize=blocksize,
                threads=threads,
            )  # fmt: skip

        def blosc_decode(data: Bytes, size: int) -> Bytes | np.ndarray:
            if size < 0:
                return bytes(numcodecs.blosc.decompress(data))
            return _blosc.decompress(data, expected=size, threads=threads)

        return blosc_encode, blosc_decode
    if isinstance(codec, ZstdCodec | GzipCodec):
        compressor = (
            Zstd(level=codec.level, checksum=codec.checksum)
            if isinstance(codec, ZstdCodec)
            else GZip(codec.level)
        )

        def encode(data: Bytes) -> Bytes:
            return cast(bytes, compressor.encode(data))

        def decode(data: Bytes, size: int) -> Bytes | np.ndarray:
            if size < 0:
                return cast(bytes, compressor.decode(data))
            out = np.empty(size, dtype=np.uint8)  # straight into a fresh array the caller may keep
            compressor.decode(data, out=out)
            return out

        return encode, decode
    if isinstance(codec, Crc32cCodec):

        def crc32c_decode(data: Bytes, _: int) -> Bytes | np.ndarray:
            view = memoryview(data).cast("B")
            if len(view) < 4 or struct.pack(
                "<I", google_crc32c.value(np.frombuffer(view[:-4], dtype=np.uint8))
            ) != bytes(view[-4:]):
                raise CorruptDataError(
                    f"{where}: a chunk fails its crc32c checksum: it was damaged after it was written"
                )
            return view[:-4]

        return _crc32c_encode, crc32c_decode

    def zarr_encode(data: Bytes) -> Bytes:
        out = run_codec(codec, data, spec, encode=True)
        if out is None:
            raise CodecError(f"{where}: codec {codec.to_dict()!r} gave nothing for a chunk")
        return out.data

    def zarr_decode(data: Bytes, _: int) -> Bytes | np.ndarray:
        out = run_codec(codec, data, spec, encode=False)
        if out is None:
            raise CorruptDataError(f"{where}: codec {codec.to_dict()!r} decoded a chunk to nothing")
        return out

    return zarr_encode, zarr_decode
