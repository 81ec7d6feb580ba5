"""What a user wrote for a data key's codecs, read as zarr-python codec objects (no dtype checks).

A choice is ``None``, a short name (the grammar below), or a list of Zarr v3 codec dicts, bare
codec names and zarr-python codec objects. Short names::

    [bitround-<keepbits>+]<preset>[+crc32c]

``<preset>`` is one of :data:`PRESETS`; ``bitround-12+blosc-zstd`` keeps 12 mantissa bits of each
float, then compresses with blosc zstd. What fits the array's dtype (bitround takes floats only,
and at most 23 bits of a float32) is checked later, by :func:`~bluesky_zarr.codecs.resolve_codecs`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, cast

import numpy as np
from zarr.abc.codec import Codec
from zarr.codecs import BloscCodec, Crc32cCodec, GzipCodec, ZstdCodec

from .._zarr_adapter import codec_class, codec_from_dict
from ._anscombe import CODEC_NAME, AnscombeCodec
from ._errors import CodecError
from ._prediction import PREDICTION_NAME, PredictionCodec
from ._steps import BITROUND

__all__ = [
    "FILTER_PRESETS",
    "IMAGE_DEFAULT",
    "KNOWN",
    "PRESETS",
    "SMALL_DEFAULT",
    "bitround_codec",
    "is_text",
    "parse_choice",
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
"""Short name -> what it does. Any name may end in ``+crc32c`` to add a checksum after compression,
and begin with a filter of :data:`FILTER_PRESETS` (``"bitround-12+blosc-zstd"``)."""

FILTER_PRESETS: Final[Mapping[str, str]] = {
    "bitround-<keepbits>": "floats only: keep <keepbits> mantissa bits (float32: 0-23, float64: 0-52), "
    "rounding to nearest; lossy, relative error at most 2**-(keepbits+1); not read by tensorstore",
}
"""Filters a short name may begin with, before a preset: ``"bitround-12+blosc-zstd"``."""

KNOWN: Final = (
    "transpose", CODEC_NAME, PREDICTION_NAME, BITROUND, "bytes", "vlen-utf8", "blosc", "zstd", "gzip",
    "crc32c",
)  # fmt: skip
"""The codecs a chain encodes with its own code; any other registered zarr v3 codec is run by
zarr-python's own codec object."""

_LEVELS: Final[dict[str, int]] = {"blosc-lz4": 5, "blosc-zstd": 3, "blosc-zlib": 3, "zstd": 3, "gzip": 1}
_BITROUND_NAME = re.compile(r"^bitround-(\d+)$")


def is_text(dtype: np.dtype[Any]) -> bool:
    """Whether the writer stores ``dtype`` as Zarr v3 ``string`` (vlen-utf8)."""
    return dtype.kind in "SUO"


def bitround_codec(keepbits: int) -> Codec:
    """zarr-python's ``numcodecs.bitround`` codec keeping ``keepbits`` mantissa bits."""
    return codec_from_dict(codec_class(BITROUND), {"name": BITROUND, "configuration": {"keepbits": keepbits}})


def _unknown_preset(name: str, where: str) -> CodecError:
    names = ", ".join(f"{n!r}" for n in PRESETS)
    return CodecError(
        f"{where}: unknown codec preset {name!r}; choose one of {names} (any of them may end in "
        "'+crc32c' and begin with 'bitround-<keepbits>+' for floats, e.g. 'bitround-12+blosc-zstd'), "
        "or give a list of Zarr v3 codecs such as [{'name': 'zstd', 'configuration': {'level': 3}}]"
    )


def _preset(name: str, dtype: np.dtype[Any], where: str) -> list[Codec]:
    parts = [part.strip() for part in name.strip().lower().split("+")]
    codecs: list[Codec] = []
    if parts and parts[0].startswith("bitround"):
        match = _BITROUND_NAME.match(parts[0])
        if match is None:
            raise CodecError(
                f"{where}: {parts[0]!r} is not a bitround filter; write 'bitround-<keepbits>' with the "
                "number of mantissa bits to keep, e.g. 'bitround-12+blosc-zstd'"
            )
        if len(parts) == 1:
            raise CodecError(
                f"{where}: {name!r} rounds but does not compress: rounding only zeroes low bits, which a "
                f"compressor then drops; write e.g. '{parts[0]}+blosc-zstd'"
            )
        codecs.append(bitround_codec(int(match.group(1))))
        parts = parts[1:]
    base, extras = parts[0], parts[1:]
    if base not in PRESETS or any(extra != "crc32c" for extra in extras) or len(extras) > 1:
        raise _unknown_preset(name, where)
    if base == "crc32c" and extras:
        raise CodecError(f"{where}: {name!r} asks for the crc32c checksum twice; write 'crc32c'")
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
    if name == "sharding_indexed":
        raise CodecError(
            f"{where}: sharding is the writer's `shards` option, not a codec; leave 'sharding_indexed' out "
            "of the codec list and pass e.g. shards={'camera_image': 'auto'}"
        )
    data.setdefault("configuration", {})  # zarr-python wants one for some codecs, even if empty
    # ours by class, so that a package not installed (no entry point) still finds it
    ours: dict[str, type[Codec]] = {CODEC_NAME: AnscombeCodec, PREDICTION_NAME: PredictionCodec}
    try:
        cls = ours.get(name) or codec_class(name)
    except KeyError:
        raise CodecError(
            f"{where}: no zarr v3 codec named {name!r} is registered with zarr-python. The writer encodes "
            f"{', '.join(KNOWN)} itself, and any codec zarr-python knows: register yours with "
            f"zarr.registry.register_codec({name!r}, YourCodecClass) before the run starts, or through "
            "an entry point in the group 'zarr.codecs' of the package that defines it (so that readers "
            "find it too)"
        ) from None
    try:
        return codec_from_dict(cls, data)
    except CodecError as error:
        raise CodecError(f"{where}: {error}") from error
    except (TypeError, ValueError, KeyError) as error:
        raise CodecError(f"{where}: codec {item!r} is malformed: {error}") from error


def parse_choice(choice: object, dtype: np.dtype[Any], where: str) -> list[Codec]:
    """The codec objects a choice names, in the order given (checked for form only)."""
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
        _check_keepbits(codecs[-1], where)
    return codecs


def _check_keepbits(codec: Codec, where: str) -> None:
    description = cast(dict[str, Any], codec.to_dict())
    if description.get("name") != BITROUND:
        return
    keepbits = dict(description.get("configuration") or {}).get("keepbits")
    if not isinstance(keepbits, int) or isinstance(keepbits, bool) or keepbits < 0:
        raise CodecError(
            f"{where}: bitround needs the number of mantissa bits to keep, a whole number 0 or more: "
            f"{{'name': '{BITROUND}', 'configuration': {{'keepbits': 12}}}}, not {description!r}"
        )
