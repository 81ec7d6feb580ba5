"""Codec chains chosen by a short name or a full Zarr v3 codec list, encoded synchronously.

:func:`resolve_codecs` turns what a user wrote (``"blosc-zstd"``, ``"bitround-12+blosc-zstd"``, or
a list of Zarr v3 codec dicts and zarr-python codec objects) into a :class:`CodecChain`: the
array's ``zarr.json`` codec list, and an encoder/decoder that makes exactly the chunk bytes
zarr-python and tensorstore read for that list. The codecs it knows are encoded by direct calls
to numcodecs, c-blosc and google-crc32c, one chunk at a time on the calling thread, with none of
zarr's asyncio machinery; any other codec registered with zarr-python by zarr-python's own codec
object (:mod:`._steps`). Every check of the choice against the data type happens in
:func:`resolve_codecs`, before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

import numcodecs
import numpy as np
from numcodecs.bitround import max_bits
from zarr.abc.codec import ArrayArrayCodec, ArrayBytesCodec, BytesBytesCodec, Codec
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, TransposeCodec, VLenUTF8Codec

from .._errors import CorruptDataError
from .._zarr_adapter import ArraySpec, blosc_cname, chunk_spec, native_dtype, validate_codec
from . import _blosc
from ._errors import CodecError
from ._parsing import IMAGE_DEFAULT, PRESETS, SMALL_DEFAULT, is_text, parse_choice
from ._steps import BITROUND, VLEN_UTF8, ArrayStep, Bytes, SyncArrayCodec, array_step, bytes_steps

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


def _spec(dtype: np.dtype[Any], ndim: int) -> ArraySpec:
    return chunk_spec(str if is_text(dtype) else dtype, ndim)


def _kind(codec: Codec) -> int:
    if isinstance(codec, ArrayArrayCodec):
        return 0
    if isinstance(codec, ArrayBytesCodec):
        return 1
    return 2


def _name(codec: Codec) -> str:
    return str(cast(dict[str, Any], codec.to_dict()).get("name", type(codec).__name__))


def _arrange(codecs: list[Codec], dtype: np.dtype[Any], where: str) -> list[Codec]:
    """The codecs in Zarr v3 order, with the serializer added when missing; misfits are errors."""
    for codec in codecs:
        if isinstance(codec, ArrayBytesCodec) and not isinstance(codec, BytesCodec | VLenUTF8Codec):
            sharding = type(codec).__name__ == "ShardingCodec"
            raise CodecError(
                f"{where}: the writer cannot encode with the serializer {type(codec).__name__}: it stores "
                "chunks with 'bytes' (or 'vlen-utf8' for text); a codec of your own goes before it "
                "(array->array) or after it (bytes->bytes)"
                + (" (sharding is the writer's `shards` option)" if sharding else "")
            )
    kinds = [_kind(c) for c in codecs]
    if kinds != sorted(kinds) or kinds.count(1) > 1:
        names = [type(c).__name__ for c in codecs]
        raise CodecError(
            f"{where}: codecs {names} are out of order: Zarr v3 wants array->array filters (e.g. "
            "AnscombeCodec, transpose, bitround), then one serializer (bytes or vlen-utf8), then "
            "bytes->bytes codecs (compressors, crc32c)"
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
            "encodes integer counts), bitround or transpose; give only bytes->bytes codecs for text"
        )
    if any(isinstance(c, Crc32cCodec) for c in codecs[:-1]):
        raise CodecError(f"{where}: crc32c must come last, so it checks the bytes as stored")
    return codecs


def _place_transposes(
    codecs: list[Codec], reading_dims: Sequence[str] | None, leading_ndim: int, where: str
) -> list[Codec]:
    """Each transpose's order, given over a reading's own axes, over the whole array: the
    ``leading_ndim`` axes in front of a reading (the scan's) stay first, in place."""
    placed: list[Codec] = []
    for codec in codecs:
        if isinstance(codec, TransposeCodec):
            order = tuple(int(i) for i in codec.order)
            if reading_dims is not None and len(order) != len(reading_dims):
                axes = f"{len(reading_dims)} ({', '.join(reading_dims)})" if reading_dims else "none"
                raise CodecError(
                    f"{where}: the transpose order {list(order)} names {len(order)} axes, but a reading "
                    f"has {axes}: give the order over a reading's own axes (e.g. [1, 0] stores a frame's "
                    "(y, x) as (x, y)); the scan's axes in front stay first, in place"
                    if reading_dims
                    else f"{where}: a transpose needs readings with axes of their own; these are "
                    "scalars: leave it out"
                )
            if sorted(order) != list(range(len(order))):
                raise CodecError(
                    f"{where}: the transpose order {list(order)} is not a permutation of "
                    f"0..{len(order) - 1}: name each axis of a reading once"
                )
            codec = TransposeCodec(order=(*range(leading_ndim), *(leading_ndim + i for i in order)))
        placed.append(codec)
    return placed


def _check_bitround(codec: Codec, dtype: np.dtype[Any], where: str) -> None:
    keepbits = cast(dict[str, Any], codec.to_dict())["configuration"]["keepbits"]
    if dtype.kind != "f" or dtype.name not in max_bits:
        raise CodecError(
            f"{where}: bitround rounds the mantissas of floats, and {dtype} is not a float (16, 32 or 64 "
            "bits): leave it out for this data key (for photon counts, the Anscombe codec bounds the loss "
            "instead)"
        )
    if not 0 <= keepbits <= max_bits[dtype.name]:
        raise CodecError(
            f"{where}: bitround keepbits must be 0-{max_bits[dtype.name]} for {dtype.name} (the bits of "
            f"its mantissa), not {keepbits}"
        )


def _evolve(codecs: list[Codec], dtype: np.dtype[Any], ndim: int, where: str) -> tuple[Codec, ...]:
    """Each codec with what it can infer filled in (blosc's typesize, the bytes endian), from the
    data type *at its place in the chain*: after an Anscombe filter blosc sees 1- or 2-byte codes."""
    spec = _spec(dtype, ndim)
    evolved: list[Codec] = []
    for codec in codecs:
        if _name(codec) == BITROUND:
            _check_bitround(codec, native_dtype(spec), where)
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
    reading_dims: Sequence[str] | None = None,
    leading_ndim: int = 0,
) -> CodecChain:
    """The codec chain for an array of ``dtype``, from a preset name or a Zarr v3 codec list.

    Parameters
    ----------
    choice
        ``None`` or ``"none"`` for no compression; a short name ``[bitround-<keepbits>+]<preset>
        [+crc32c]`` with a preset from :data:`PRESETS` (``"blosc-zstd"``,
        ``"bitround-12+blosc-zstd"``); or a list of Zarr v3 codec dicts (``{"name": "blosc",
        "configuration": {...}}``) and zarr-python codec objects. The writer encodes ``transpose``,
        ``numcodecs.bitround``, :class:`~bluesky_zarr.codecs.AnscombeCodec`,
        :class:`~bluesky_zarr.codecs.PredictionCodec`, ``bytes``, ``blosc``,
        ``zstd``, ``gzip`` and ``crc32c`` itself, and any other array->array or bytes->bytes
        codec registered with zarr-python (``zarr.registry.register_codec``, or the ``zarr.codecs``
        entry point) through zarr-python's codec object. A list without a serializer gets
        ``bytes`` (little-endian), or ``vlen-utf8`` for text.
    dtype
        The array's data type; text (``str``, ``bytes`` or ``object``) is stored as Zarr v3
        ``string``.
    where
        What the array is, to begin error messages (e.g. ``"run 1234, data key 'camera_image'"``).
    blosc_threads
        Threads blosc uses for each chunk (at most one per MiB of chunk); by default
        ``BLOSC_NTHREADS``, or one fewer than the available CPUs, between 1 and 8.
    reading_dims
        The dimensions of one reading (``("y", "x")`` for a frame), when the chain is for a
        writer's array: a transpose order must then name exactly these axes.
    leading_ndim
        How many axes come before a reading's own in each chunk (the scan's grid, or the one
        event axis). A transpose order is given over a reading's axes; these leading axes stay
        first, in place: ``[1, 0]`` on a ``(wavelength, position, y, x)`` array is stored as
        ``[0, 1, 3, 2]``.

    Returns
    -------
    CodecChain

    Raises
    ------
    CodecError
        The name is unknown, a dict is malformed, or a codec does not fit the data type.
    """
    dtype = np.dtype(dtype)
    if leading_ndim < 0:
        raise CodecError(f"{where}: leading_ndim must be 0 or more, not {leading_ndim}")
    codecs = _arrange(parse_choice(choice, dtype, where), dtype, where)
    codecs = _place_transposes(codecs, reading_dims, leading_ndim, where)
    threads = _blosc.default_threads() if blosc_threads is None else int(blosc_threads)
    if threads < 1:
        raise CodecError(f"{where}: blosc_threads must be at least 1, not {blosc_threads}")
    orders = [len(c.order) for c in codecs if isinstance(c, TransposeCodec)]
    ndim = leading_ndim + len(reading_dims) if reading_dims is not None else max(orders, default=1)
    return CodecChain(
        dtype=dtype, codecs=_evolve(codecs, dtype, ndim, where), where=where, blosc_threads=threads,
        leading_ndim=leading_ndim,
    )  # fmt: skip


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
    leading_ndim
        The axes in front of a reading's own, which every transpose keeps in place.
    """

    dtype: np.dtype[Any]
    codecs: tuple[Codec, ...]
    where: str = ""
    blosc_threads: int = 1
    leading_ndim: int = 0
    _steps: tuple[Any, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # what each codec does and the dtype it leaves, worked out once rather than per chunk
        filters: list[ArrayStep] = []
        dtype = self.dtype
        ndim = max((len(c.order) for c in self.codecs if isinstance(c, TransposeCodec)), default=1)
        for codec in self.filters:
            filters.append(array_step(codec, dtype, ndim, self.where))
            dtype = filters[-1].after
        spec = _spec(dtype, 1)
        byte_steps = tuple(bytes_steps(c, self.blosc_threads, self.where, spec) for c in self.compressors)
        object.__setattr__(self, "_steps", (tuple(filters), byte_steps))

    def __hash__(self) -> int:
        # zarr-python's BloscCodec holds a set, so the codecs are hashed by their JSON
        return hash((self.dtype, repr(self.to_json()), self.where, self.blosc_threads, self.leading_ndim))

    def __reduce__(self) -> tuple[Any, ...]:
        # the encoders are closures: a copy in another process is made anew from the codecs
        return (type(self), (self.dtype, self.codecs, self.where, self.blosc_threads, self.leading_ndim))

    def with_leading_ndim(self, leading_ndim: int) -> CodecChain:
        """The same chain for arrays with ``leading_ndim`` axes before a reading's own (the 1-D
        overflow of a grid stream): each transpose still reorders only a reading's axes."""
        if leading_ndim == self.leading_ndim:
            return self
        old = self.leading_ndim
        codecs = tuple(
            TransposeCodec(
                order=(*range(leading_ndim), *(leading_ndim + int(i) - old for i in c.order[old:]))
            )
            if isinstance(c, TransposeCodec)
            else c
            for c in self.codecs
        )
        return replace(self, codecs=codecs, leading_ndim=leading_ndim)

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
            data: Bytes = bytes(VLEN_UTF8.encode(np.asarray(array, dtype=object).ravel()))
        else:
            if array.dtype != self.dtype:
                array = array.astype(self.dtype)
            for step in filters:
                array = step.encode(array)
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
        shapes = [tuple(shape)]  # the chunk's shape before each filter, and as stored
        for step in filters:
            shapes.append(step.stored_shape(shapes[-1]))
        encoded = filters[-1].after if filters else dtype
        size = -1 if self.text else int(np.prod(shapes[-1])) * encoded.itemsize
        buffer: Bytes | np.ndarray = data
        for index in range(len(byte_steps) - 1, -1, -1):
            buffer = byte_steps[index][1](buffer, size if index == 0 else -1)
        if self.text:
            return np.asarray(VLEN_UTF8.decode(buffer), dtype=object).reshape(shapes[0])
        owned = isinstance(buffer, np.ndarray)  # a fresh array a decompressor made, not the caller's
        raw = buffer if isinstance(buffer, np.ndarray) else np.frombuffer(buffer, dtype=np.uint8)
        if raw.nbytes != size:
            raise CorruptDataError(
                f"{self.where}: a chunk holds {raw.nbytes} bytes where shape {shapes[0]} needs {size}"
            )
        stored = encoded.newbyteorder("<") if encoded.itemsize > 1 else encoded
        array = raw.view(stored).reshape(shapes[-1])
        for index in range(len(filters) - 1, -1, -1):
            array = filters[index].decode(array, shapes[index])
            owned = owned or filters[index].fresh
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
    parse_choice(choice, np.dtype(dtype), where)
