"""Codec chains chosen by a short name or a full Zarr v3 codec list, encoded synchronously.

:func:`resolve_codecs` turns what a user wrote (``"blosc-zstd"``, ``"zstd+crc32c"``, or a list of
Zarr v3 codec dicts and zarr-python codec objects) into a :class:`CodecChain`: the array's
``zarr.json`` codec list, and an encoder/decoder that makes exactly the chunk bytes zarr-python and
tensorstore read for that list. Encoding calls numcodecs, c-blosc and google-crc32c directly, one
chunk at a time on the calling thread, with none of zarr's asyncio machinery; every check of the
choice against the data type happens in :func:`resolve_codecs`, before anything is written.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, cast, runtime_checkable

import google_crc32c
import numcodecs
import numpy as np
from numcodecs.gzip import GZip
from numcodecs.zstd import Zstd
from zarr.abc.codec import ArrayArrayCodec, ArrayBytesCodec, BytesBytesCodec, Codec
from zarr.codecs import (
    BloscCodec,
    BytesCodec,
    Crc32cCodec,
    GzipCodec,
    TransposeCodec,
    VLenUTF8Codec,
    ZstdCodec,
)

from .._errors import CorruptDataError
from .._zarr_adapter import (
    ArraySpec,
    blosc_cname,
    blosc_shuffle,
    chunk_spec,
    codec_class,
    native_dtype,
    validate_codec,
)
from . import _blosc
from ._anscombe import CODEC_NAME, AnscombeCodec
from ._errors import CodecError
from ._prediction import PREDICTION_NAME, PredictionCodec

__all__ = [
    "IMAGE_DEFAULT",
    "PRESETS",
    "SMALL_DEFAULT",
    "CodecChain",
    "SyncArrayCodec",
    "check_codecs",
    "is_text",
    "resolve_codecs",
]

IMAGE_DEFAULT: Final = "blosc-lz4"
"""The preset the writer uses for image-like readings: blosc lz4 with bitshuffle."""
SMALL_DEFAULT: Final = "zstd"
"""The preset for everything else the writer gathers into chunks (scalars, small readings, ``time``,
``seq_num``, ``written``): a chunk of a short run is mostly fill value, which zstd makes nearly
nothing, so a 2-row baseline costs kilobytes, not its chunks' full size."""

PRESETS: Final[Mapping[str, str]] = {
    "none": "no compression: the raw little-endian bytes (or vlen-utf8 for text)",
    "blosc-lz4": "blosc lz4, level 5, bitshuffle: fast, the default for images",
    "blosc-zstd": "blosc zstd, level 3, bitshuffle: 7-10% smaller than blosc-lz4, a third of its speed",
    "blosc-zlib": "blosc zlib, level 3, bitshuffle: for readers without zstd or lz4",
    "zstd": "zstd level 3 on the plain bytes, no shuffle (good for text and Anscombe codes)",
    "gzip": "gzip level 1: the most widely readable, and the slowest",
    "crc32c": "no compression, a crc32c checksum (4 bytes) after each chunk",
}
"""Short name -> what it does. Any name may end in ``+crc32c`` to add a checksum after compression."""

_LEVELS: Final[dict[str, int]] = {"blosc-lz4": 5, "blosc-zstd": 3, "blosc-zlib": 3, "zstd": 3, "gzip": 1}
_SUPPORTED: Final = (
    "transpose",
    CODEC_NAME,
    PREDICTION_NAME,
    "bytes",
    "vlen-utf8",
    "blosc",
    "zstd",
    "gzip",
    "crc32c",
)


@runtime_checkable
class SyncArrayCodec(Protocol):
    """An array->array codec that can also encode and decode a numpy chunk synchronously.

    :class:`~bluesky_zarr.codecs.AnscombeCodec` is one; a chain accepts any array->array codec
    with these two methods.
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


def is_text(dtype: np.dtype[Any]) -> bool:
    """Whether the writer stores ``dtype`` as Zarr v3 ``string`` (vlen-utf8)."""
    return dtype.kind in "SUO"


def _spec(dtype: np.dtype[Any], ndim: int) -> ArraySpec:
    return chunk_spec(str if is_text(dtype) else dtype, ndim)


# --- parsing ----------------------------------------------------------------------------------------


def _preset(name: str, dtype: np.dtype[Any], where: str) -> list[Codec]:
    parts = [part.strip() for part in name.strip().lower().split("+")]
    base, extras = parts[0], parts[1:]
    if base not in PRESETS or any(extra != "crc32c" for extra in extras) or len(extras) > 1:
        names = ", ".join(f"{n!r}" for n in PRESETS)
        raise CodecError(
            f"{where}: unknown codec preset {name!r}; choose one of {names} (any of them may end in "
            "'+crc32c'), or give a list of Zarr v3 codecs such as [{'name': 'zstd', 'configuration': "
            "{'level': 3}}]"
        )
    if base == "crc32c" and extras:
        raise CodecError(f"{where}: {name!r} asks for the crc32c checksum twice; write 'crc32c'")
    codecs: list[Codec] = []
    if base.startswith("blosc-"):
        # bytes of text have no structure for a shuffle to find; numbers and codes do
        shuffle = "noshuffle" if is_text(dtype) else "bitshuffle"
        codecs.append(BloscCodec(cname=base.removeprefix("blosc-"), clevel=_LEVELS[base], shuffle=shuffle))  # type: ignore[arg-type]
    elif base == "zstd":
        codecs.append(ZstdCodec(level=_LEVELS[base]))
    elif base == "gzip":
        codecs.append(GzipCodec(level=_LEVELS[base]))
    if base == "crc32c" or extras:
        codecs.append(Crc32cCodec())
    return codecs


def _from_dict(item: Mapping[str, Any] | str, where: str) -> Codec:
    data: dict[str, Any] = {"name": item} if isinstance(item, str) else dict(item)
    name = data.get("name")
    if not isinstance(name, str) or set(data) - {"name", "configuration"}:
        raise CodecError(
            f"{where}: {item!r} is not a Zarr v3 codec: write {{'name': ..., 'configuration': {{...}}}} "
            "with no other keys"
        )
    if "configuration" in data and not isinstance(data["configuration"], Mapping):
        raise CodecError(
            f"{where}: the configuration of codec {name!r} must be a mapping, not {data['configuration']!r}"
        )
    if name not in _SUPPORTED:
        raise CodecError(
            f"{where}: codec {name!r} is not one the writer can encode; use one of {', '.join(_SUPPORTED)}"
            + (
                " (sharding is the writer's `shards` option, not a codec)"
                if name == "sharding_indexed"
                else ""
            )
        )
    data.setdefault("configuration", {})  # zarr-python wants one for some codecs, even if empty
    # ours by class, so that a package not installed (no entry point) still finds it
    ours: dict[str, type[Codec]] = {CODEC_NAME: AnscombeCodec, PREDICTION_NAME: PredictionCodec}
    cls = ours.get(name) or codec_class(name)
    try:
        return cls.from_dict(data)
    except CodecError as error:
        raise CodecError(f"{where}: {error}") from error
    except (TypeError, ValueError, KeyError) as error:
        raise CodecError(f"{where}: codec {item!r} is malformed: {error}") from error


def _parse(choice: object, dtype: np.dtype[Any], where: str) -> list[Codec]:
    if choice is None:
        return []
    if isinstance(choice, str):
        return _preset(choice, dtype, where)
    if isinstance(choice, Codec | Mapping):
        choice = [choice]
    if not isinstance(choice, Sequence) or isinstance(choice, bytes):
        raise CodecError(
            f"{where}: codecs must be a preset name, a list of Zarr v3 codecs or None, not {choice!r}"
        )
    codecs: list[Codec] = []
    for item in choice:
        if isinstance(item, Codec):
            codecs.append(item)
        elif isinstance(item, Mapping | str):
            codecs.append(_from_dict(item, where))
        else:
            raise CodecError(f"{where}: {item!r} is neither a Zarr v3 codec dict nor a zarr codec object")
    return codecs


def _kind(codec: Codec) -> int:
    if isinstance(codec, ArrayArrayCodec):
        return 0
    if isinstance(codec, ArrayBytesCodec):
        return 1
    return 2


def _check_supported(codec: Codec, where: str) -> None:
    known = (BloscCodec, ZstdCodec, GzipCodec, Crc32cCodec, BytesCodec, VLenUTF8Codec, TransposeCodec)
    if isinstance(codec, known) or (isinstance(codec, ArrayArrayCodec) and isinstance(codec, SyncArrayCodec)):
        return
    sharding = type(codec).__name__ == "ShardingCodec"
    raise CodecError(
        f"{where}: the writer cannot encode with {type(codec).__name__}; use codecs named "
        f"{', '.join(_SUPPORTED)}" + (" (sharding is the writer's `shards` option)" if sharding else "")
    )


def _arrange(codecs: list[Codec], dtype: np.dtype[Any], where: str) -> list[Codec]:
    """The codecs in Zarr v3 order, with the serializer added when missing; misfits are errors."""
    for codec in codecs:
        _check_supported(codec, where)
    kinds = [_kind(c) for c in codecs]
    if kinds != sorted(kinds) or kinds.count(1) > 1:
        names = [type(c).__name__ for c in codecs]
        raise CodecError(
            f"{where}: codecs {names} are out of order: Zarr v3 wants array->array filters (e.g. "
            "AnscombeCodec, transpose), then one serializer (bytes or vlen-utf8), then bytes->bytes "
            "codecs (compressors, crc32c)"
        )
    text = is_text(dtype)
    if 1 not in kinds:
        serializer: Codec = VLenUTF8Codec() if text else BytesCodec(endian="little")
        codecs.insert(kinds.count(0), serializer)
    serializer = next(c for c in codecs if _kind(c) == 1)
    if text and not isinstance(serializer, VLenUTF8Codec):
        raise CodecError(
            f"{where}: text ({dtype}) is stored as Zarr v3 'string' and needs the 'vlen-utf8' serializer, "
            f"not {type(serializer).__name__}; leave the serializer out and it is chosen for you"
        )
    if not text and isinstance(serializer, VLenUTF8Codec):
        raise CodecError(f"{where}: 'vlen-utf8' is a serializer for text, not for {dtype}; use 'bytes'")
    if text and any(_kind(c) == 0 for c in codecs):
        raise CodecError(
            f"{where}: text ({dtype}) takes no array->array filters such as the Anscombe codec (it "
            "encodes integer counts) or transpose; give only bytes->bytes codecs for text"
        )
    if any(isinstance(c, Crc32cCodec) for c in codecs[:-1]):
        raise CodecError(f"{where}: crc32c must come last, so it checks the bytes as stored")
    return codecs


def _evolve(codecs: list[Codec], dtype: np.dtype[Any], where: str) -> tuple[Codec, ...]:
    """Each codec with what it can infer filled in (blosc's typesize, the bytes endian), from the
    data type *at its place in the chain*: after an Anscombe filter blosc sees 1- or 2-byte codes."""
    ndim = next((len(c.order) for c in codecs if isinstance(c, TransposeCodec)), 1)
    spec = _spec(dtype, ndim)
    evolved: list[Codec] = []
    for codec in codecs:
        try:
            codec = codec.evolve_from_array_spec(spec)
            validate_codec(codec, spec)
            spec = codec.resolve_metadata(spec)
        except CodecError as error:
            raise CodecError(f"{where}: {error}") from error
        except (TypeError, ValueError) as error:
            raise CodecError(f"{where}: codec {codec.to_dict()!r} does not fit {dtype}: {error}") from error
        if isinstance(codec, BloscCodec):
            if blosc_cname(codec) not in numcodecs.blosc.list_compressors():
                raise CodecError(
                    f"{where}: blosc has no compressor {blosc_cname(codec)!r} here; use one of "
                    f"{', '.join(numcodecs.blosc.list_compressors())}"
                )
            if not 0 <= codec.clevel <= 9:
                raise CodecError(f"{where}: blosc clevel must be 0-9, not {codec.clevel}")
        evolved.append(codec)
    return tuple(evolved)


def resolve_codecs(
    choice: str | Sequence[Mapping[str, Any] | Codec] | None,
    dtype: np.dtype[Any],
    *,
    where: str,
    blosc_threads: int | None = None,
) -> CodecChain:
    """The codec chain for an array of ``dtype``, from a preset name or a Zarr v3 codec list.

    Parameters
    ----------
    choice
        ``None`` or ``"none"`` for no compression; a preset name from :data:`PRESETS`, optionally
        ending in ``+crc32c``; or a list of Zarr v3 codec dicts (``{"name": "blosc",
        "configuration": {...}}``) and zarr-python codec objects (``BloscCodec``, ``ZstdCodec``,
        ``GzipCodec``, ``Crc32cCodec``, ``BytesCodec``, ``TransposeCodec``,
        :class:`~bluesky_zarr.codecs.AnscombeCodec`). A list without a serializer gets ``bytes``
        (little-endian), or ``vlen-utf8`` for text.
    dtype
        The array's data type; text (``str``, ``bytes`` or ``object``) is stored as Zarr v3
        ``string``.
    where
        What the array is, to begin error messages (e.g. ``"run 1234, data key 'camera_image'"``).
    blosc_threads
        Threads blosc uses for each chunk (at most one per MiB of chunk); by default
        ``BLOSC_NTHREADS``, or one fewer than the available CPUs, between 1 and 8.

    Returns
    -------
    CodecChain

    Raises
    ------
    CodecError
        The name is unknown, a dict is malformed, or a codec does not fit the data type.
    """
    dtype = np.dtype(dtype)
    codecs = _arrange(_parse(choice, dtype, where), dtype, where)
    threads = _blosc.default_threads() if blosc_threads is None else int(blosc_threads)
    if threads < 1:
        raise CodecError(f"{where}: blosc_threads must be at least 1, not {blosc_threads}")
    return CodecChain(dtype=dtype, codecs=_evolve(codecs, dtype, where), where=where, blosc_threads=threads)


# --- encoding -------------------------------------------------------------------------------------

_Bytes = bytes | memoryview
_VLEN_UTF8: Final = numcodecs.VLenUTF8()


def _crc32c_encode(data: _Bytes) -> _Bytes:
    view = memoryview(data).cast("B")
    return b"".join((view, struct.pack("<I", google_crc32c.value(np.frombuffer(view, dtype=np.uint8)))))


_Encode = Callable[[_Bytes], _Bytes]
_Decode = Callable[[_Bytes, int], "_Bytes | np.ndarray"]


def _bytes_steps(codec: Codec, threads: int, where: str) -> tuple[_Encode, _Decode]:
    """Encode and decode functions for one bytes->bytes codec. ``decode(data, n)``: ``n`` is the
    decoded size where known (-1 otherwise); a decoder returns a fresh ``ndarray`` when it made one."""
    if isinstance(codec, BloscCodec):
        cname, clevel, shuffle = blosc_cname(codec), codec.clevel, blosc_shuffle(codec)
        typesize, blocksize = codec.typesize, codec.blocksize

        def blosc_encode(data: _Bytes) -> _Bytes:
            return _blosc.compress(
                data, cname=cname, clevel=clevel, shuffle=shuffle, typesize=typesize, blocksize=blocksize,
                threads=threads,
            )  # fmt: skip

        def blosc_decode(data: _Bytes, size: int) -> _Bytes | np.ndarray:
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

        def encode(data: _Bytes) -> _Bytes:
            return cast(bytes, compressor.encode(data))

        def decode(data: _Bytes, size: int) -> _Bytes | np.ndarray:
            if size < 0:
                return cast(bytes, compressor.decode(data))
            out = np.empty(size, dtype=np.uint8)  # straight into a fresh array the caller may keep
            compressor.decode(data, out=out)
            return out

        return encode, decode

    def crc32c_decode(data: _Bytes, _: int) -> _Bytes | np.ndarray:
        view = memoryview(data).cast("B")
        if len(view) < 4 or struct.pack(
            "<I", google_crc32c.value(np.frombuffer(view[:-4], dtype=np.uint8))
        ) != bytes(view[-4:]):
            raise CorruptDataError(
                f"{where}: a chunk fails its crc32c checksum: it was damaged after it was written"
            )
        return view[:-4]

    return _crc32c_encode, crc32c_decode


@dataclass(frozen=True)
class CodecChain:
    """A Zarr v3 codec list for one array, with a fast synchronous encoder for its chunks.

    Made by :func:`resolve_codecs`. :meth:`encode` gives exactly the bytes zarr-python and
    tensorstore expect at a chunk key of an array whose ``zarr.json`` lists :meth:`to_json`.

    Attributes
    ----------
    dtype
        The array's data type.
    codecs
        The zarr-python codec objects, in order: filters, serializer, bytes->bytes codecs.
    where
        What the array is, for error messages.
    blosc_threads
        Threads blosc uses per chunk, from whichever thread calls :meth:`encode`.
    """

    dtype: np.dtype[Any]
    codecs: tuple[Codec, ...]
    where: str = ""
    blosc_threads: int = 1
    _steps: tuple[Any, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # what each filter does and the dtype it leaves, worked out once rather than per chunk
        filters: list[tuple[bool, Any, np.dtype[Any], np.dtype[Any]]] = []
        dtype = self.dtype
        for codec in (c for c in self.codecs if _kind(c) == 0):
            synchronous = isinstance(codec, SyncArrayCodec)
            encoded = dtype
            if synchronous:
                encoded = native_dtype(codec.resolve_metadata(_spec(dtype, 1)))
            filters.append((synchronous, codec, dtype, encoded))
            dtype = encoded
        compressors = tuple(c for c in self.codecs if _kind(c) == 2)
        byte_steps = tuple(_bytes_steps(c, self.blosc_threads, self.where) for c in compressors)
        object.__setattr__(self, "_steps", (tuple(filters), byte_steps))

    def __hash__(self) -> int:
        # zarr-python's BloscCodec holds a set, so the codecs are hashed by their JSON
        return hash((self.dtype, repr(self.to_json()), self.where, self.blosc_threads))

    def __reduce__(self) -> tuple[Any, ...]:
        # the encoders are closures: a copy in another process is made anew from the codecs
        return (type(self), (self.dtype, self.codecs, self.where, self.blosc_threads))

    @property
    def filters(self) -> tuple[ArrayArrayCodec, ...]:
        """The array->array codecs (zarr-python's ``filters=``)."""
        return tuple(c for c in self.codecs if isinstance(c, ArrayArrayCodec))

    @property
    def serializer(self) -> ArrayBytesCodec:
        """The array->bytes codec (zarr-python's ``serializer=``)."""
        return next(c for c in self.codecs if isinstance(c, ArrayBytesCodec))

    @property
    def compressors(self) -> tuple[BytesBytesCodec, ...]:
        """The bytes->bytes codecs (zarr-python's ``compressors=``)."""
        return tuple(c for c in self.codecs if isinstance(c, BytesBytesCodec))

    @property
    def text(self) -> bool:
        """Whether the array is text (Zarr v3 ``string``, vlen-utf8)."""
        return is_text(self.dtype)

    def to_json(self) -> list[dict[str, Any]]:
        """The ``codecs`` list of the array's ``zarr.json``."""
        return [cast(dict[str, Any], c.to_dict()) for c in self.codecs]

    def encode(self, chunk: np.ndarray) -> bytes | memoryview:
        """The stored bytes of one chunk.

        Parameters
        ----------
        chunk
            The whole chunk, of the array's data type and full chunk shape; text as a ``str`` or
            ``object`` array. Without compression the result may share memory with ``chunk``:
            write it before changing the chunk.
        """
        filters, byte_steps = self._steps
        array = np.asarray(chunk)
        if self.text:
            data: _Bytes = bytes(_VLEN_UTF8.encode(np.asarray(array, dtype=object).ravel()))
        else:
            if array.dtype != self.dtype:
                array = array.astype(self.dtype)
            for synchronous, codec, _, _ in filters:
                array = codec.encode_array(array) if synchronous else array.transpose(codec.order)
            little = array.dtype.newbyteorder("<") if array.dtype.itemsize > 1 else array.dtype
            data = np.ascontiguousarray(array, dtype=little).reshape(-1).view(np.uint8).data
        for encode, _ in byte_steps:
            data = encode(data)
        return data

    def decode(self, data: bytes | memoryview, shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
        """The chunk that :meth:`encode` turned into ``data``, as a fresh writable array.

        Parameters
        ----------
        data
            The stored bytes of one chunk.
        shape
            The chunk shape.
        dtype
            The array's data type (text comes back as an ``object`` array of ``str``).
        """
        filters, byte_steps = self._steps
        dtype = np.dtype(dtype)
        shape = tuple(shape)
        stored_shape = shape
        for synchronous, codec, _, _ in filters:
            if not synchronous:
                stored_shape = tuple(stored_shape[i] for i in codec.order)
        encoded = filters[-1][3] if filters else dtype
        size = -1 if self.text else int(np.prod(stored_shape)) * encoded.itemsize
        buffer: _Bytes | np.ndarray = data
        for index in range(len(byte_steps) - 1, -1, -1):
            buffer = byte_steps[index][1](buffer, size if index == 0 else -1)
        if self.text:
            return np.asarray(_VLEN_UTF8.decode(buffer), dtype=object).reshape(shape)
        owned = isinstance(buffer, np.ndarray)  # a fresh array a decompressor made, not the caller's
        raw = buffer if isinstance(buffer, np.ndarray) else np.frombuffer(buffer, dtype=np.uint8)
        if raw.nbytes != size:
            raise CorruptDataError(
                f"{self.where}: a chunk holds {raw.nbytes} bytes where shape {shape} needs {size}"
            )
        stored = encoded.newbyteorder("<") if encoded.itemsize > 1 else encoded
        array = raw.view(stored).reshape(stored_shape)
        for synchronous, codec, before, _ in reversed(filters):
            if synchronous:
                array = codec.decode_array(array, before)
                owned = True
            else:
                array = array.transpose(np.argsort(codec.order))
        if owned and array.dtype == dtype and array.flags.writeable:
            return np.ascontiguousarray(array)
        return np.array(array, dtype=dtype, order="C")


def check_codecs(choice: object, dtype: np.dtype[Any], *, where: str) -> None:
    """Check the form of a codec choice (names, dicts, order of kinds) without resolving it.

    Writers check each choice when they are made; its fit to the data type of an array is checked
    by :func:`resolve_codecs` when the array's stream starts.

    Raises
    ------
    CodecError
        The name is unknown or a dict is malformed.
    """
    _parse(choice, np.dtype(dtype), where)
