"""A ring buffer of documents in shared memory (``/dev/shm``): one writer process, one reader process.

Each document is pickled with protocol 5; the bytes of its arrays (frames) are out-of-band
buffers, copied once, straight from the array into the ring, never into the pickle. A record is
``[total, seq, flags, buffers, pickle length][buffer lengths][pickle][buffers]``; it may wrap
around the end of the ring. The producer publishes ``write_pos`` only once a record is whole, so a
producer killed mid-record leaves nothing half-read. ``read_pos`` is advanced by the reader, or,
with ``overflow="discard_oldest"``, by the producer dropping the oldest event records, both under
an advisory lock on the segment (``flock``).

Segments are named ``bluesky_zarr_<pid of the acquisition process>_<random>``; :func:`sweep`
removes those of processes that are gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pickle
import re
import secrets
import struct
import sys
import threading
from collections.abc import Iterator
from multiprocessing import shared_memory
from typing import Any

__all__ = ["ACK", "DISCARDABLE", "HEADER_BYTES", "Ring", "sweep"]

ACK, DISCARDABLE = 1, 2
"""Record flags: the producer waits until the reader has handled it; an event, which may be dropped."""

HEADER_BYTES = 64
_WRITE, _READ, _DISCARDED, _PRODUCER_WAITS, _ERRORS = 0, 8, 16, 24, 32
_U64 = struct.Struct("<Q")
_RECORD = struct.Struct("<QQIIQ")  # total, seq, flags, number of buffers, pickle length
_ALIGN = 8
PREFIX = "bluesky_zarr_"
SHM = "/dev/shm"


def _aligned(n: int) -> int:
    return (n + _ALIGN - 1) & ~(_ALIGN - 1)


def _open(name: str, create: bool, size: int = 0) -> shared_memory.SharedMemory:
    """A segment that this package, not multiprocessing's resource tracker, unlinks."""
    if sys.version_info >= (3, 13):
        return shared_memory.SharedMemory(name, create=create, size=size, track=False)
    shm = shared_memory.SharedMemory(name, create=create, size=size)
    from multiprocessing import resource_tracker

    resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]
    return shm


class Ring:
    """A byte ring in a shared-memory segment; :meth:`create` in the acquisition process,
    :meth:`attach` in the writer process."""

    def __init__(self, shm: shared_memory.SharedMemory, capacity: int, owner: bool) -> None:
        self.shm = shm
        self.name = shm.name
        self.capacity = capacity
        self.owner = owner
        self.buf: memoryview = shm.buf  # type: ignore[assignment]
        self.data = self.buf[HEADER_BYTES : HEADER_BYTES + capacity]
        self._fd: int = shm._fd  # type: ignore[attr-defined]
        self._mapping: threading.Thread | None = None
        self._stop_mapping = False

    @classmethod
    def create(cls, capacity: int) -> Ring:
        name = f"{PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
        return cls(_open(name, True, HEADER_BYTES + capacity), capacity, owner=True)

    @classmethod
    def attach(cls, name: str, capacity: int) -> Ring:
        return cls(_open(name, False), capacity, owner=False)

    def allocate(self) -> None:
        """Give the segment all its memory now, and map every page of it in this process, so that
        copying a document in costs a copy only, never a page allocated or mapped (which cost a
        256x256 frame 15 times its copy). Raises ``OSError`` (ENOSPC) if ``/dev/shm`` cannot hold it."""
        os.posix_fallocate(self._fd, 0, HEADER_BYTES + self.capacity)
        self._mapping = threading.Thread(target=self._map_pages, name="bluesky-zarr ring", daemon=True)
        self._mapping.start()

    def _map_pages(self) -> None:
        """Map the pages in order, from where the first documents go (a read of each page maps it);
        a thread of its own, as it takes about 2 s a GiB, mostly outside the interpreter's lock."""
        import numpy as np

        step = 16 * 1024**2
        for start in range(0, HEADER_BYTES + self.capacity, step):
            if self._stop_mapping:
                return
            pages = np.frombuffer(self.buf, np.uint8, count=min(step, len(self.buf) - start), offset=start)
            int(pages[::4096].sum())
            del pages

    # --- the header --------------------------------------------------------------------------------

    def get(self, offset: int) -> int:
        return int(_U64.unpack_from(self.buf, offset)[0])

    def set(self, offset: int, value: int) -> None:
        _U64.pack_into(self.buf, offset, value)

    @property
    def used(self) -> int:
        return self.get(_WRITE) - self.get(_READ)

    @property
    def discarded(self) -> int:
        return self.get(_DISCARDED)

    @property
    def errors(self) -> int:
        return self.get(_ERRORS)

    def count_error(self) -> None:
        self.set(_ERRORS, self.get(_ERRORS) + 1)

    @property
    def producer_waits(self) -> bool:
        return bool(self.get(_PRODUCER_WAITS))

    @producer_waits.setter
    def producer_waits(self, value: bool) -> None:
        self.set(_PRODUCER_WAITS, int(value))

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    # --- bytes in and out, across the end of the ring ----------------------------------------------

    def _put(self, pos: int, data: memoryview | bytes) -> int:
        n = len(data)
        offset = pos % self.capacity
        first = min(n, self.capacity - offset)
        self.data[offset : offset + first] = data[:first]
        if n > first:
            self.data[: n - first] = data[first:]
        return pos + n

    def _get(self, pos: int, n: int) -> bytearray:
        out = bytearray(n)
        offset = pos % self.capacity
        first = min(n, self.capacity - offset)
        out[:first] = self.data[offset : offset + first]
        if n > first:
            out[first:] = self.data[: n - first]
        return out

    # --- the producer ------------------------------------------------------------------------------

    @staticmethod
    def encode(item: Any) -> tuple[bytes, list[memoryview]]:
        """The pickle of ``item`` and the raw bytes of its arrays, kept out of the pickle."""
        buffers: list[pickle.PickleBuffer] = []
        data = pickle.dumps(item, protocol=5, buffer_callback=buffers.append)
        return data, [b.raw() for b in buffers]

    @staticmethod
    def size(data: bytes, raws: list[memoryview]) -> int:
        size = _aligned(_RECORD.size + 8 * len(raws) + len(data))
        return size + sum(_aligned(r.nbytes) for r in raws)

    def write(self, seq: int, flags: int, data: bytes, raws: list[memoryview], size: int) -> None:
        """Copy one record in (the caller made room for ``size`` bytes) and publish it."""
        start = self.get(_WRITE)
        head = _RECORD.pack(size, seq, flags, len(raws), len(data))
        head += struct.pack(f"<{len(raws)}Q", *(r.nbytes for r in raws))
        pos = self._put(start, head)
        pos = self._put(pos, data)
        pos = start + _aligned(pos - start)
        for raw in raws:
            pos = start + _aligned(self._put(pos, raw) - start)
        self.set(_WRITE, start + size)

    def drop_oldest(self, need: int) -> int | None:
        """Drop the oldest event records until ``need`` bytes are free: how many were dropped, or
        ``None`` if a record that is not an event stands in the way (the caller waits for the reader)."""
        dropped = 0
        with self.locked():
            read, write = self.get(_READ), self.get(_WRITE)
            while self.capacity - (write - read) < need:
                if read == write:
                    break
                size, _, flags, _, _ = _RECORD.unpack(self._get(read, _RECORD.size))
                if not flags & DISCARDABLE:
                    self.set(_READ, read)
                    self.set(_DISCARDED, self.get(_DISCARDED) + dropped)
                    return dropped if dropped else None
                read += size
                dropped += 1
            self.set(_READ, read)
            self.set(_DISCARDED, self.get(_DISCARDED) + dropped)
        return dropped

    # --- the reader ----------------------------------------------------------------------------------

    def read(self, lock: bool) -> Iterator[tuple[int, int, Any]]:
        """``(seq, flags, item)`` of every whole record waiting, oldest first; each is copied out
        (one copy of each frame) and its room given back before it is yielded."""
        while True:
            with self.locked() if lock else contextlib.nullcontext():
                read = self.get(_READ)
                if read >= self.get(_WRITE):
                    return
                size = _RECORD.unpack(self._get(read, _RECORD.size))[0]
                record = self._get(read, size)
                self.set(_READ, read + size)
            _, seq, flags, count, length = _RECORD.unpack_from(record)
            lengths = struct.unpack_from(f"<{count}Q", record, _RECORD.size)
            start = _RECORD.size + 8 * count
            view = memoryview(record)
            buffers, pos = [], _aligned(start + length)
            for n in lengths:
                buffers.append(view[pos : pos + n])
                pos = _aligned(pos + n)
            yield seq, flags, pickle.loads(view[start : start + length], buffers=buffers)

    # --- the end -----------------------------------------------------------------------------------

    def close(self, unlink: bool) -> None:
        """Unmap the segment (and remove its name); calling it again does nothing."""
        if self.buf is None:
            return
        if self._mapping is not None:
            self._stop_mapping = True
            self._mapping.join()
        self.data.release()
        self.buf.release()
        self.buf = None  # type: ignore[assignment]
        with contextlib.suppress(Exception):
            self.shm.close()
        if unlink:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(SHM, self.name.lstrip("/")))


def sweep() -> list[str]:
    """Remove the segments of acquisition processes that are gone (a crash of both processes)."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.listdir(SHM):
            match = re.fullmatch(rf"{PREFIX}(\d+)_[0-9a-f]+", entry)
            if match is None or _alive(int(match[1])):
                continue
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(SHM, entry))
                removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
