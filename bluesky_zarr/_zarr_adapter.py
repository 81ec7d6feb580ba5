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
from dataclasses import replace
from typing import Any

import numpy as np
from zarr.abc.codec import Codec
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
    "default_buffer_prototype",
    "native_dtype",
    "register_codec_class",
    "run_sync",
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
    """The codec class zarr-python registers under ``name`` (its own, or an entry point's)."""
    return get_codec_class(name)


def register_codec_class(name: str, cls: type[Codec]) -> None:
    """Register ``cls`` with zarr-python under ``name``, so arrays that list it can be read."""
    register_codec(name, cls)


def run_sync(coroutine: Any) -> Any:
    """Run one of zarr's ``Store`` coroutines from synchronous code, on zarr's own event loop."""
    return sync(coroutine)
