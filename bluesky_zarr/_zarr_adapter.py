"""The one place that touches zarr-python's internals, for every zarr 3.x from 3.1 on.

bluesky-zarr writes chunks and ``zarr.json`` documents itself (plain Zarr v3 JSON, in
``bluesky_zarr.sinks.zarr``), and lets zarr-python describe and check its codecs. What it needs
of zarr-python beyond the public API (``zarr``, ``zarr.abc.codec``, ``zarr.codecs``,
``zarr.errors``) lives in ``zarr.core.*`` and ``zarr.registry``, which change between minor
releases: zarr 3.1 gives blosc's ``cname`` and ``shuffle`` as enums and newer releases as plain
strings, and ``ArrayConfig`` grew fields. Every such import is here, behind small functions that
give the same result on each version; nothing else in the package imports from ``zarr.core`` or
``zarr.registry``.
"""

from __future__ import annotations

import enum
import warnings
from dataclasses import replace
from typing import Any

import numpy as np
from zarr.abc.codec import ArrayArrayCodec, ArrayBytesCodec, Codec
from zarr.codecs import BloscCodec
from zarr.core.array_spec import ArrayConfig, ArraySpec
from zarr.core.buffer import NDBuffer, default_buffer_prototype
from zarr.core.dtype import TBaseDType, TBaseScalar, ZDType, parse_data_type
from zarr.core.sync import sync
from zarr.registry import get_codec_class, register_codec

__all__ = [
    "ArraySpec",
    "NDBuffer",
    "ZarrDType",
    "blosc_cname",
    "blosc_shuffle",
    "chunk_spec",
    "codec_class",
    "codec_from_dict",
    "default_buffer_prototype",
    "native_dtype",
    "register_codec_class",
    "run_codec",
    "run_sync",
    "sized_spec",
    "spec_with_dtype",
    "validate_codec",
    "zarr_dtype",
]

ZarrDType = ZDType[TBaseDType, TBaseScalar]
"""zarr-python's wrapper of a Zarr data type (what a chunk spec holds)."""


def _text(value: object) -> str:
    """An enum member's value (zarr 3.1) or the plain string newer releases hold, as ``str``."""
    return str(value.value if isinstance(value, enum.Enum) else value)


def blosc_cname(codec: BloscCodec) -> str:
    """The compressor a :class:`~zarr.codecs.BloscCodec` names: ``"lz4"``, ``"zstd"``, ..."""
    return _text(codec.cname)


def blosc_shuffle(codec: BloscCodec) -> str:
    """The shuffle of a :class:`~zarr.codecs.BloscCodec`: ``"noshuffle"``, ``"shuffle"`` or
    ``"bitshuffle"``."""
    return _text(codec.shuffle)


def zarr_dtype(dtype: np.dtype[Any] | type[str]) -> ZarrDType:
    """The Zarr v3 data type of a numpy dtype; ``str`` gives Zarr v3 ``string`` (variable length)."""
    return parse_data_type(dtype, zarr_format=3)


def native_dtype(spec: ArraySpec) -> np.dtype[Any]:
    """The numpy dtype of a chunk spec's data type."""
    return np.dtype(spec.dtype.to_native_dtype())


def chunk_spec(dtype: np.dtype[Any] | type[str], ndim: int) -> ArraySpec:
    """A chunk spec of ``ndim`` dimensions (each of length 1) and the data type's default fill value,
    with zarr's default array configuration: what a codec needs to fill in what it infers
    (``evolve_from_array_spec``), check itself (``validate``) and name its output
    (``resolve_metadata``)."""
    zdtype = zarr_dtype(dtype)
    return ArraySpec(
        shape=(1,) * ndim,
        dtype=zdtype,
        fill_value=zdtype.default_scalar(),
        config=ArrayConfig.from_dict({}),
        prototype=default_buffer_prototype(),
    )


def spec_with_dtype(spec: ArraySpec, dtype: np.dtype[Any], fill_value: Any) -> ArraySpec:
    """``spec`` with another data type and fill value (what an array->array codec hands on)."""
    return replace(spec, dtype=zarr_dtype(dtype), fill_value=fill_value)


def validate_codec(codec: Codec, spec: ArraySpec) -> None:
    """Run a codec's own check against a chunk spec (no chunk grid: the writer knows its own)."""
    # the type of ``chunk_grid`` differs between releases, and every codec we accept ignores it
    none: Any = None
    codec.validate(shape=spec.shape, dtype=spec.dtype, chunk_grid=none)


def codec_class(name: str) -> type[Codec]:
    """The codec class zarr-python registers under ``name`` (its own, or an entry point's); a
    ``KeyError`` when there is none (zarr 3.1 raises one, newer releases an ``UnknownCodecError``)."""
    try:
        return get_codec_class(name)
    except KeyError:
        raise
    except Exception as error:
        if type(error).__name__ == "UnknownCodecError":
            raise KeyError(name) from error
        raise


def codec_from_dict(cls: type[Codec], data: dict[str, Any]) -> Codec:
    """``cls.from_dict(data)``, without zarr-python's warning that a ``numcodecs.*`` codec is not in
    the Zarr v3 specification (the writer's docs say which readers decode which codec)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Numcodecs codecs are not in the Zarr version 3")
        return cls.from_dict(data)


def register_codec_class(name: str, cls: type[Codec]) -> None:
    """Register ``cls`` with zarr-python under ``name``, so arrays that list it can be read."""
    register_codec(name, cls)


def run_sync(coroutine: Any) -> Any:
    """Run one of zarr's ``Store`` coroutines from synchronous code, on zarr's own event loop."""
    return sync(coroutine)


def sized_spec(dtype: np.dtype[Any], shape: tuple[int, ...]) -> ArraySpec:
    """The chunk spec of one chunk of ``shape`` (what a codec is handed with that chunk)."""
    return replace(chunk_spec(dtype, len(shape)), shape=tuple(shape))


def _sync_capable(codec: Codec) -> bool:
    # zarr's SupportsSyncCodec (from 3.1.6; 3.4 adds ``_sync_capable``), looked for by its methods
    return callable(getattr(codec, "_encode_sync", None)) and bool(getattr(codec, "_sync_capable", True))


def run_codec(codec: Codec, data: Any, spec: ArraySpec, *, encode: bool) -> np.ndarray | None:
    """One chunk through a zarr-python codec's own encoder (``encode``) or decoder, synchronously.

    ``data`` is a numpy array where the codec takes an array (an array->array codec, or a
    serializer's encoder), else bytes; ``spec`` is the spec of the codec's *input* at encoding (as
    zarr's codec pipeline hands it on both ways). The result is a numpy array (``uint8`` for
    bytes), or ``None`` when the codec gives nothing. Codecs with zarr's synchronous methods
    (``_encode_sync``/``_decode_sync``) are called directly; the others' coroutines run on zarr's
    own event loop, as zarr-python runs them, so this works from any thread but that loop's.
    """
    prototype = spec.prototype
    takes_array = isinstance(codec, ArrayArrayCodec) or (encode and isinstance(codec, ArrayBytesCodec))
    buffer: Any = (
        prototype.nd_buffer.from_numpy_array(np.asarray(data))
        if takes_array
        else prototype.buffer.from_array_like(np.frombuffer(data, dtype=np.uint8))
    )
    if _sync_capable(codec):
        out = getattr(codec, "_encode_sync" if encode else "_decode_sync")(buffer, spec)
    else:
        out = sync(codec._encode_single(buffer, spec) if encode else codec._decode_single(buffer, spec))
    return None if out is None else np.asarray(out.as_numpy_array())
