"""Chunk and shard shapes: the defaults, what a user asks for per data key, and a proposal.

Pure functions, no I/O. A *chunk* is what a reader decodes at once; a *shard* is one object on
disk holding a block of chunks (Zarr v3 ``sharding_indexed``), so that a scan of many small
frames becomes a few large files. Shapes are given per data key, by dimension name or as a full
tuple, and checked against the array before a run writes anything.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np

from .._errors import ConfigurationError

__all__ = [
    "FRAME_BYTES",
    "TARGET_CHUNK_BYTES",
    "TARGET_SHARD_BYTES",
    "ChunkProposal",
    "ChunkRequest",
    "ShardRequest",
    "check_request",
    "event_chunks",
    "propose_chunks",
    "resolve_chunks",
    "resolve_shards",
]

FRAME_BYTES = 64 * 1024
"""Readings of at least this many bytes (camera frames) get one reading per chunk."""
TARGET_CHUNK_BYTES = 1024 * 1024
"""Smaller readings are gathered into chunks of about this many bytes."""
TARGET_SHARD_BYTES = 64 * 1024**2
"""The object size :func:`propose_chunks` aims at (cloud and file-system guides say 10-100 MB)."""

ChunkRequest = Mapping[str, int] | Sequence[int]
"""Chunk sizes by dimension name (``{"wavelength": -1, "position": 1}``; ``-1`` is the whole
dimension, dimensions not named keep their default), or one size per dimension of the array."""
ShardRequest = ChunkRequest | Literal["auto"]
"""Shard sizes like :data:`ChunkRequest` (multiples of the chunk sizes), or ``"auto"``."""


def _fill_inner_first(extents: Sequence[int | None], budget: int) -> tuple[int, ...]:
    """How many units to take along each axis so that about ``budget`` fit, innermost axis first.

    ``None`` is an axis without an end (a stream that grows along ``time``).
    """
    taken = [1] * len(extents)
    for axis in reversed(range(len(extents))):
        extent = extents[axis]
        taken[axis] = max(1, budget if extent is None else min(extent, budget))
        budget //= taken[axis]
        if budget <= 1:
            break
    return tuple(taken)


def event_chunks(event_shape: tuple[int, ...], reading_nbytes: int) -> tuple[int, ...]:
    """Default chunk sizes along the event dimensions: one big reading per chunk, small ones gathered.

    Along a growing ``time`` dimension (event shape ``(0,)``) the chunk holds as many readings as
    fit; on a grid, readings fill the chunk from the innermost dimension outwards.
    """
    per_chunk = 1 if reading_nbytes >= FRAME_BYTES else max(1, TARGET_CHUNK_BYTES // reading_nbytes)
    return _fill_inner_first([n or None for n in event_shape], per_chunk)


@dataclass(frozen=True)
class ChunkProposal:
    """Chunk and shard sizes by dimension name, ready for a writer's ``chunks=`` and ``shards=``."""

    chunks: dict[str, int]
    shards: dict[str, int] | None
    """``None`` when one chunk already reaches the target size (nothing to gain from shards)."""
    chunk_bytes: int
    shard_bytes: int | None
    objects: int | None
    """How many objects (files) the array takes on disk; ``None`` when the scan has no end."""


def propose_chunks(
    scan: Mapping[str, int],
    reading: Mapping[str, int],
    dtype: Any,
    *,
    target_bytes: int = TARGET_SHARD_BYTES,
) -> ChunkProposal:
    """Propose chunks and shards for one data key of a scan, aiming at objects of ``target_bytes``.

    Parameters
    ----------
    scan
        The scan's dimensions and their lengths, outer first, e.g. ``{"wavelength": 50,
        "position": 100}``; ``0`` for a scan with no fixed length (a stream along ``time``).
    reading
        The dimensions of one reading, e.g. ``{"y": 512, "x": 512}`` for a camera, ``{}`` for a
        scalar.
    dtype
        The reading's numpy dtype.
    target_bytes
        The size of one object on disk to aim at.

    Returns
    -------
    ChunkProposal
        Chunks as the writer makes them by default (one frame, or about 1 MiB of small
        readings), and shards gathering chunks along the scan's dimensions, innermost first, up to
        ``target_bytes``.

    Examples
    --------
    >>> p = propose_chunks({"wavelength": 50, "position": 100}, {"y": 256, "x": 256}, "uint16")
    >>> p.chunks
    {'wavelength': 1, 'position': 1, 'y': 256, 'x': 256}
    >>> p.shards
    {'wavelength': 1, 'position': 100, 'y': 256, 'x': 256}
    """
    if target_bytes <= 0:
        raise ConfigurationError(f"target_bytes must be positive, not {target_bytes}")
    for name, size in {**scan, **reading}.items():
        if size < 0 or (size == 0 and name in reading):
            raise ConfigurationError(f"dimension {name!r} has length {size}; lengths must be positive")
    reading_nbytes = max(1, np.dtype(dtype).itemsize * math.prod(reading.values()))
    event_shape = tuple(scan.values())
    chunk_events = event_chunks(event_shape, reading_nbytes)
    chunk_bytes = reading_nbytes * math.prod(chunk_events)
    chunks = dict(zip(scan, chunk_events, strict=True)) | dict(reading)
    per_axis = [math.ceil(n / c) if n else None for n, c in zip(event_shape, chunk_events, strict=True)]
    counts = _fill_inner_first(per_axis, target_bytes // chunk_bytes)
    if math.prod(counts) <= 1:
        shards, shard_bytes = None, None
        objects = math.prod(p or 0 for p in per_axis) if all(per_axis) else None
    else:
        shard_events = tuple(c * k for c, k in zip(chunk_events, counts, strict=True))
        shards = dict(zip(scan, shard_events, strict=True)) | dict(reading)
        shard_bytes = chunk_bytes * math.prod(counts)
        objects = (
            math.prod(math.ceil(n / s) for n, s in zip(event_shape, shard_events, strict=True))
            if all(event_shape)
            else None
        )
    return ChunkProposal(chunks, shards, chunk_bytes, shard_bytes, objects)


_IRREGULAR: Final = "every chunk of an array has one shape; give one size per dimension"
"""Why a list of sizes along one dimension is refused, unless a format says more."""


def check_request(request: object, what: str, where: str, *, irregular: str = _IRREGULAR) -> None:
    """A request maps dimension names to sizes or lists sizes; a size is a positive integer or -1.

    A list of sizes along one dimension (an irregular, "rectilinear" chunk grid) is refused with
    ``irregular``, the format's reason, appended to the message.
    """
    if isinstance(request, Mapping):
        named = [(repr(dim), size) for dim, size in request.items()]
    elif isinstance(request, Sequence) and not isinstance(request, str):
        named = [(f"dimension {axis}", size) for axis, size in enumerate(request)]
    else:
        raise ConfigurationError(
            f"{where}: {what} must be a mapping from dimension name to size or a sequence of sizes, "
            f"not {request!r}"
        )
    for dim, size in named:
        if isinstance(size, Sequence) and not isinstance(size, str):
            raise ConfigurationError(
                f"{where}: {what} along {dim} are a list of sizes {list(size)!r}, an irregular "
                f"(rectilinear) chunk grid, which is not offered: {irregular}"
            )
        if isinstance(size, bool) or not isinstance(size, int | np.integer) or not (size > 0 or size == -1):
            raise ConfigurationError(
                f"{where}: {what} hold {size!r}, which is not a size; sizes are positive integers, "
                "or -1 for the whole dimension"
            )


def _sizes(
    request: ChunkRequest,
    dims: tuple[str, ...],
    shape: tuple[int, ...],
    default: tuple[int, ...],
    what: str,
    where: str,
) -> tuple[int, ...]:
    """Sizes along every dimension from a request by name or by position; ``-1`` is the whole."""
    check_request(request, what, where)
    if isinstance(request, Mapping):
        unknown = sorted(set(request) - set(dims))
        if unknown:
            raise ConfigurationError(
                f"{where}: {what} name dimension(s) {unknown}, but the array's dimensions are "
                f"{list(dims)}; name those, or give one size per dimension"
            )
        sizes = [request.get(dim, d) for dim, d in zip(dims, default, strict=True)]
    else:
        sizes = list(request)
        if len(sizes) != len(dims):
            raise ConfigurationError(
                f"{where}: {what} {sizes} give {len(sizes)} size(s) for an array of {len(dims)} "
                f"dimension(s) {list(dims)}; give one size per dimension, or a mapping by name"
            )
    resolved = []
    for dim, extent, size in zip(dims, shape, sizes, strict=True):
        if size == -1 and extent == 0:
            raise ConfigurationError(
                f"{where}: {what} along {dim!r} is -1 (the whole dimension), but {dim!r} grows with "
                "every event and has no end; give a number of events"
            )
        resolved.append(extent if size == -1 else int(size))
    return tuple(resolved)


def resolve_chunks(
    request: ChunkRequest | None,
    dims: tuple[str, ...],
    shape: tuple[int, ...],
    default: tuple[int, ...],
    *,
    where: str,
) -> tuple[int, ...]:
    """The chunk shape of an array: ``default`` changed where ``request`` says.

    ``shape`` has ``0`` for a dimension that grows with every event. A chunk larger than the
    array along a dimension is refused (it would hold only fill values).
    """
    if request is None:
        return default
    chunks = _sizes(request, dims, shape, default, "chunks", where)
    for dim, extent, size in zip(dims, shape, chunks, strict=True):
        if extent and size > extent:
            raise ConfigurationError(
                f"{where}: chunks along {dim!r} are {size}, larger than the array's {extent}; "
                f"use at most {extent} (or -1 for the whole dimension)"
            )
    return chunks


def resolve_shards(
    request: ShardRequest | None,
    dims: tuple[str, ...],
    shape: tuple[int, ...],
    chunks: tuple[int, ...],
    chunk_nbytes: int,
    reading_ndim: int,
    *,
    where: str,
) -> tuple[int, ...] | None:
    """The shard shape of an array (a multiple of ``chunks``), or ``None`` for no shards.

    Dimensions a request does not name hold one chunk along the scan and the whole reading;
    ``"auto"`` gathers chunks along the scan, innermost first, up to :data:`TARGET_SHARD_BYTES`.
    """
    if request is None:
        return None
    event_ndim = len(dims) - reading_ndim
    whole = tuple(c * math.ceil(n / c) if n else c for n, c in zip(shape, chunks, strict=True))
    default = chunks[:event_ndim] + whole[event_ndim:]
    if isinstance(request, str):
        if request != "auto":
            raise ConfigurationError(
                f"{where}: shards {request!r} is not understood; give 'auto', a mapping from "
                "dimension name to size, or one size per dimension"
            )
        per_axis = [math.ceil(n / c) if n else None for n, c in zip(shape, chunks, strict=True)]
        chunks_per_shard = max(1, TARGET_SHARD_BYTES // max(1, chunk_nbytes))
        counts = _fill_inner_first(per_axis[:event_ndim], chunks_per_shard)
        return tuple(c * k for c, k in zip(chunks, counts, strict=False)) + default[event_ndim:]
    shards = _sizes(request, dims, shape, default, "shards", where)
    for dim, extent, size, chunk, limit in zip(dims, shape, shards, chunks, whole, strict=True):
        if size % chunk:
            raise ConfigurationError(
                f"{where}: shards along {dim!r} are {size}, not a multiple of the chunks ({chunk}); "
                "a shard holds whole chunks"
            )
        if extent and size > limit:
            raise ConfigurationError(
                f"{where}: shards along {dim!r} are {size}, larger than the array's {extent}; "
                f"use at most {limit} (or -1 for the whole dimension)"
            )
    return shards
