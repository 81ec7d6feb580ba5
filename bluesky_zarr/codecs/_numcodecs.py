"""The Anscombe codec for Zarr v2 arrays: a numcodecs filter with the id ``bluesky_zarr.anscombe``.

Zarr v2 has no array->array codecs with a typed interface: a filter is a numcodecs codec that
encodes a chunk (an array of the array's dtype) and decodes whatever the compressor gives back,
usually bytes. So the filter keeps the array's dtype in its configuration (``dtype``) and the
codes' dtype (``astype``), as numcodecs' own ``Delta`` and ``FixedScaleOffset`` do. The rest of the
configuration is :class:`~bluesky_zarr.codecs.AnscombeCodec`'s, passed through unchanged in both
directions: the filter builds an ``AnscombeCodec`` from it and writes back that codec's own
``configuration``, so a parameter the codec gains reaches ``.zarray`` without a change here.

The class is registered with numcodecs when this package is imported, and through the
``numcodecs.codecs`` entry point, so zarr-python (and anything else that asks numcodecs for a
codec by id) reads such arrays in a process that never imported ``bluesky_zarr``.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_ndarray, ndarray_copy
from numcodecs.registry import register_codec

from ._anscombe import CODEC_NAME, AnscombeCodec
from ._errors import CodecError

__all__ = ["AnscombeNumcodec"]

_ENCODED_KEY: Final = "encoded_dtype"
"""The AnscombeCodec configuration key that a v2 configuration calls ``astype``."""


def _dtype(value: object, what: str) -> np.dtype[Any]:
    try:
        return np.dtype(value)  # type: ignore[call-overload, no-any-return]
    except TypeError as error:
        raise CodecError(f"Anscombe codec (Zarr v2): {what} {value!r} is not a data type") from error


class AnscombeNumcodec(Codec):
    """The Anscombe codec as a numcodecs filter, for Zarr v2 arrays.

    Lossy with the same bound as :class:`~bluesky_zarr.codecs.AnscombeCodec`, whose parameters it
    takes: every count comes back within ``beta / 2`` shot-noise standard deviations (plus rounding
    to whole counts). Use it as ``zarr.create_array(..., zarr_format=2, filters=[AnscombeNumcodec(
    dtype="uint16", zero_level=..., conversion_gain=...)], compressors=...)``, followed by a
    lossless compressor. Its ``.zarray`` entry is ``{"id": "bluesky_zarr.anscombe", "dtype": ...,
    "astype": ..., "zero_level": ..., ...}``.

    Parameters
    ----------
    dtype
        The array's dtype (counts of uint8, uint16, int8 or int16, either byte order): a v2 filter
        decodes bytes, and must know what they stood for.
    astype
        The codes' dtype, ``"uint8"`` or ``"uint16"``; by default the smallest that holds every
        code of ``dtype``'s range (AnscombeCodec's ``encoded_dtype``, under its numcodecs name).
    **configuration
        The rest of :class:`~bluesky_zarr.codecs.AnscombeCodec`'s configuration: ``zero_level``,
        ``conversion_gain``, ``beta`` and whatever else that codec takes.

    Raises
    ------
    CodecError
        No ``dtype``, a ``dtype`` that is not camera counts, a parameter AnscombeCodec refuses or
        does not know, or an ``astype`` too small for the codes.
    """

    codec_id = CODEC_NAME

    def __init__(self, dtype: Any = None, astype: Any = None, **configuration: Any) -> None:
        if dtype is None:
            raise CodecError(
                "Anscombe codec (Zarr v2): give dtype, the array's dtype (e.g. dtype='uint16'); a v2 "
                "filter decodes bytes and must know the counts they stand for"
            )
        self._dtype = _dtype(dtype, "dtype")
        encoded = configuration.pop(_ENCODED_KEY, None)
        if (
            astype is not None
            and encoded is not None
            and _dtype(astype, "astype") != _dtype(encoded, _ENCODED_KEY)
        ):
            raise CodecError(
                f"Anscombe codec (Zarr v2): astype {astype!r} and {_ENCODED_KEY} {encoded!r} disagree; "
                "give astype only (it is the v2 name of encoded_dtype)"
            )
        chosen = astype if astype is not None else encoded
        if chosen is not None:
            configuration[_ENCODED_KEY] = _dtype(chosen, "astype").name
        try:
            codec = AnscombeCodec.from_dict({"name": CODEC_NAME, "configuration": configuration})
        except CodecError as error:
            raise CodecError(
                f"{error} (a Zarr v2 filter takes dtype, astype and the rest of AnscombeCodec's "
                "configuration)"
            ) from error
        resolved = codec.encoded_dtype_for(self._dtype)  # refuses a dtype that is not counts
        # codes in the byte order the configuration says (a store written on a big-endian machine)
        order = "=" if chosen is None else _dtype(chosen, "astype").byteorder
        self._astype = np.dtype(resolved).newbyteorder(order)
        self._codec = AnscombeCodec.from_dict(
            {
                "name": CODEC_NAME,
                "configuration": {**codec.to_dict()["configuration"], _ENCODED_KEY: resolved},
            }
        )

    @property
    def dtype(self) -> np.dtype[Any]:
        """The dtype of the counts (the array's)."""
        return self._dtype

    @property
    def astype(self) -> np.dtype[Any]:
        """The dtype of the codes."""
        return self._astype

    @property
    def codec(self) -> AnscombeCodec:
        """The Zarr v3 codec with the same parameters (its ``encoded_dtype`` chosen)."""
        return self._codec

    @classmethod
    def from_codec(cls, codec: AnscombeCodec, dtype: Any) -> AnscombeNumcodec:
        """The filter for a v2 array of ``dtype`` with the parameters of a v3 ``codec``."""
        return cls(dtype=dtype, **codec.to_dict()["configuration"])

    def get_config(self) -> dict[str, Any]:
        """The filter's ``.zarray`` entry: id, dtype, astype and AnscombeCodec's configuration."""
        configuration = dict(self._codec.to_dict()["configuration"])
        configuration.pop(_ENCODED_KEY, None)
        return {"id": self.codec_id, "dtype": self._dtype.str, "astype": self._astype.str, **configuration}

    def __repr__(self) -> str:
        config = self.get_config()
        del config["id"]
        return f"{type(self).__name__}({', '.join(f'{key}={value!r}' for key, value in config.items())})"

    def encode(self, buf: Any) -> np.ndarray:
        """The codes of a chunk of counts (an array of ``dtype``, or its bytes), flat, of ``astype``."""
        counts = ensure_ndarray(buf)
        if counts.dtype != self._dtype:
            if counts.dtype != np.uint8 or counts.nbytes % self._dtype.itemsize:
                raise CodecError(
                    f"Anscombe codec (Zarr v2): a chunk of {counts.dtype} reached a filter made for "
                    f"{self._dtype}; make the filter with dtype={counts.dtype.str!r}, the array's dtype"
                )
            counts = counts.view(self._dtype)  # raw bytes, as numcodecs codecs accept them
        return self._codec.encode_array(counts.reshape(-1, order="A")).astype(self._astype, copy=False)

    def decode(self, buf: Any, out: Any = None) -> Any:
        """The counts, of ``dtype``, that a chunk's codes (an array or their bytes) stand for, flat."""
        codes = ensure_ndarray(buf).reshape(-1, order="A")
        if codes.nbytes % self._astype.itemsize:
            raise CodecError(
                f"Anscombe codec (Zarr v2): a chunk of {codes.nbytes} bytes is not a whole number of "
                f"{self._astype} codes: the chunk is corrupt or the array's .zarray does not match it"
            )
        counts = self._codec.decode_array(codes.view(self._astype), self._dtype)
        return ndarray_copy(counts.astype(self._dtype, copy=False), out)


register_codec(AnscombeNumcodec)
