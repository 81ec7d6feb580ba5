"""Blosc compression that uses blosc's own threads from any Python thread.

numcodecs calls c-blosc in one of two ways. From the main thread (or when
``numcodecs.blosc.use_threads`` is True) it uses blosc's *global* context, with the number of
threads set by ``numcodecs.blosc.set_nthreads``, behind one process-wide lock. From any other
thread it calls the context functions ``blosc_compress_ctx``/``blosc_decompress_ctx`` with exactly
one thread. zarr-python sets ``numcodecs.blosc.use_threads = False`` when it is imported, so in a
process that has zarr loaded every blosc call through numcodecs is single-threaded. The writer
encodes on its own worker thread, so it would compress 0.1-8 MB frames on one core.

Flipping ``numcodecs.blosc.use_threads`` would change what every other user of numcodecs in the
process gets (zarr-python's asyncio pool would then serialise behind the global lock), and setting
and restoring it around a call races with anyone else who sets it. Instead this module calls the
same two context functions of the same c-blosc that numcodecs ships (its extension module exports
them) through :mod:`ctypes`, passing the number of internal threads we want. Context calls share no
state with any other call, need no lock, release the GIL (ctypes does so for every foreign call)
and produce ordinary Blosc 1 frames that numcodecs, zarr-python and tensorstore decode. Nothing
global is touched: other users of numcodecs in the same process see no change.

If the symbols cannot be found (a numcodecs built differently), :data:`THREADED` is False and
compression falls back to ``numcodecs.blosc.compress``: correct, single-threaded off the main
thread.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any, Final

import numcodecs.blosc
import numpy as np

from .._errors import CorruptDataError
from ._errors import CodecError

__all__ = ["MAX_BUFFERSIZE", "THREADED", "compress", "decompress", "default_threads"]

MAX_BUFFERSIZE: Final[int] = int(numcodecs.blosc.MAX_BUFFERSIZE)
"""The largest chunk (in bytes) one Blosc 1 frame can hold (just under 2 GiB)."""
_MAX_OVERHEAD: Final[int] = int(numcodecs.blosc.MAX_OVERHEAD)
_SHUFFLE: Final[dict[str, int]] = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}
_BYTES_PER_THREAD: Final = 1024 * 1024
"""Context calls start their threads anew for every chunk: with less than this many bytes per
thread that costs more than it saves (measured on a shared 2-CPU machine: two threads were slower
than one on 0.5 MB frames, even on 2 MB frames and faster only on 8 MB frames), so smaller chunks
use fewer threads: one below 2 MiB."""


def _threads_for(nbytes: int, threads: int) -> int:
    return max(1, min(threads, nbytes // _BYTES_PER_THREAD))


def _load() -> tuple[Any, Any, Any] | None:
    try:
        library = ctypes.CDLL(numcodecs.blosc.__file__)
        compress_ctx = library.blosc_compress_ctx
        decompress_ctx = library.blosc_decompress_ctx
        validate = library.blosc_cbuffer_validate
    except (OSError, AttributeError):  # pragma: no cover - depends on how numcodecs was built
        return None
    size, pointer = ctypes.c_size_t, ctypes.c_void_p
    compress_ctx.argtypes = [
        ctypes.c_int, ctypes.c_int, size, size, pointer, pointer, size, ctypes.c_char_p, size, ctypes.c_int,
    ]  # fmt: skip
    compress_ctx.restype = ctypes.c_int
    decompress_ctx.argtypes = [pointer, pointer, size, ctypes.c_int]
    decompress_ctx.restype = ctypes.c_int
    validate.argtypes = [pointer, size, ctypes.POINTER(size)]
    validate.restype = ctypes.c_int
    return compress_ctx, decompress_ctx, validate


_FUNCTIONS = _load()
THREADED: Final[bool] = _FUNCTIONS is not None
"""Whether compression runs with blosc's internal threads from every thread (see the module doc)."""


def default_threads() -> int:
    """How many threads blosc uses per chunk unless told otherwise.

    ``BLOSC_NTHREADS`` from the environment (the variable c-blosc itself reads) when it is set;
    else one fewer than the CPUs this process may run on (one is left for the RunEngine and the
    rest of the session), at least 1 and at most 8 (blosc gains little beyond that on one chunk).
    """
    configured = os.environ.get("BLOSC_NTHREADS", "").strip()
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        available = os.cpu_count() or 1
    return max(1, min(available - 1, 8))


def _address(array: np.ndarray) -> int:
    return int(array.ctypes.data)


def compress(
    data: bytes | memoryview,
    *,
    cname: str,
    clevel: int,
    shuffle: str,
    typesize: int,
    blocksize: int,
    threads: int,
) -> memoryview:
    """One Blosc 1 frame of ``data``, the bytes zarr's ``blosc`` codec writes for this configuration."""
    source = np.frombuffer(data, dtype=np.uint8)
    if source.nbytes > MAX_BUFFERSIZE:
        raise CodecError(
            f"a chunk of {source.nbytes} bytes is larger than blosc's limit of {MAX_BUFFERSIZE} bytes: "
            "choose smaller chunks, or a compressor without that limit (zstd)"
        )
    if _FUNCTIONS is None:  # pragma: no cover - depends on how numcodecs was built
        frame = numcodecs.blosc.compress(
            source, cname.encode(), clevel, _SHUFFLE[shuffle], blocksize, typesize
        )
        return memoryview(frame)
    destination = np.empty(source.nbytes + _MAX_OVERHEAD, dtype=np.uint8)
    size = _FUNCTIONS[0](
        clevel, _SHUFFLE[shuffle], typesize, source.nbytes, _address(source), _address(destination),
        destination.nbytes, cname.encode(), blocksize, _threads_for(source.nbytes, threads),
    )  # fmt: skip
    if size <= 0:  # pragma: no cover - blosc always fits in nbytes + MAX_OVERHEAD
        raise CodecError(f"blosc could not compress a chunk of {source.nbytes} bytes (error {size})")
    return destination[:size].data


def decompress(data: bytes | memoryview, *, expected: int, threads: int) -> np.ndarray:
    """The bytes of one Blosc 1 frame, as a fresh writable ``uint8`` array of ``expected`` bytes."""
    source = np.frombuffer(data, dtype=np.uint8)
    if _FUNCTIONS is None:  # pragma: no cover - depends on how numcodecs was built
        out = np.frombuffer(bytearray(numcodecs.blosc.decompress(source)), dtype=np.uint8)
        if out.nbytes != expected:
            raise CorruptDataError(f"a blosc frame holds {out.nbytes} bytes where the chunk needs {expected}")
        return out
    nbytes = ctypes.c_size_t(0)
    if _FUNCTIONS[2](_address(source), source.nbytes, ctypes.byref(nbytes)) != 0:
        raise CorruptDataError(
            f"{source.nbytes} bytes are not a valid blosc frame (corrupt or truncated chunk)"
        )
    if nbytes.value != expected:
        raise CorruptDataError(f"a blosc frame holds {nbytes.value} bytes where the chunk needs {expected}")
    out = np.empty(expected, dtype=np.uint8)
    size = _FUNCTIONS[1](_address(source), _address(out), expected, _threads_for(expected, threads))
    if size != expected:
        raise CorruptDataError(f"blosc could not decompress a frame of {source.nbytes} bytes (error {size})")
    return out
