"""The acquisition side of ``worker="process"``: documents into a shared-memory ring, a writer process
draining it.

:class:`ProcessWorker` takes the place of the :class:`~bluesky_zarr.writing.DocumentBuffer` and the
writer thread: ``put`` copies a document into the :class:`Ring` (its frames as out-of-band pickle
buffers, copied once) and rings a pipe; the writer process (``python -m
bluesky_zarr.writing._child``, started with ``subprocess``, so that nothing of the caller's
``__main__`` runs again there) rebuilds the writer from its pickled configuration and runs it,
with its own writer thread, on every document. It answers on a second pipe: acknowledgements of
``stop``, ``flush`` and ``close``, room made in a full ring, and errors, which the caller raises
at its next document. A writer process that is gone is seen at the next document (its exit
status, by ``waitpid``); an acquisition process that is gone is seen by the writer process when
the pipe closes: it writes what is in the ring, ends the runs ``incomplete`` and exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
from collections.abc import Callable
from typing import Any, Literal

from .._errors import BlueskyZarrError, ConfigurationError, WriterProcessError
from ._ring import ACK, DISCARDABLE, SHM, Ring, sweep

__all__ = ["CLAIMS", "CONFIG", "LOST", "Overflow", "ProcessWorker", "check_ring_bytes", "readable"]

logger = logging.getLogger("bluesky_zarr")

Overflow = Literal["block", "discard_oldest"]
CONFIG, CLAIMS, LOST = "__config__", "__claims__", "__lost__"
"""Records of the worker's own: the writer's pickled configuration; the outputs claimed for a run at
its start, in the caller's thread; events a run lost to overflow."""
CONTROL = ("__flush__", "__close__")
_WAIT = 0.05


def check_ring_bytes(ring_bytes: int) -> None:
    """Refuse a ring that ``/dev/shm`` cannot hold, saying how to fix it."""
    try:
        stat = os.statvfs(SHM)
    except OSError as err:
        raise ConfigurationError(f'worker="process" needs {SHM} (shared memory): {err}') from err
    free = stat.f_bavail * stat.f_frsize
    if ring_bytes > free:
        raise ConfigurationError(
            f"ring_bytes={ring_bytes} ({ring_bytes / 1024**3:.2f} GiB) does not fit in {SHM}, which has "
            f"{free / 1024**3:.2f} GiB free; pass a smaller ring_bytes (data rate x seconds to absorb), or "
            "give the machine more shared memory (a container: docker run --shm-size=4g)"
        )


class ProcessWorker:
    """The ring, the writer process and the two pipes, seen from the acquisition process."""

    def __init__(
        self,
        state: bytes,
        ring_bytes: int,
        overflow: Overflow,
        record: Callable[[BaseException], None],
        outputs: Callable[[], list[str]],
    ) -> None:
        sweep()
        check_ring_bytes(ring_bytes)
        self.overflow = overflow
        self._record = record
        self._outputs = outputs
        self.ring = Ring.create(ring_bytes)
        try:
            self.ring.allocate()
        except OSError as err:
            self.ring.close(unlink=True)
            raise ConfigurationError(
                f"ring_bytes={ring_bytes} could not be allocated in {SHM} ({err.strerror}); pass a smaller "
                "ring_bytes, or give the machine more shared memory (a container: docker run --shm-size=4g)"
            ) from err
        self.seq = self.acked = self.waiting_for = self.errors_seen = 0
        self.dead = self.closed = False
        self.run = ""
        self.lost: dict[str, int] = {}
        """run uid -> its event documents dropped by ``overflow="discard_oldest"``"""
        self._inbox = bytearray()
        self._eof = False
        bell_read, self._bell = os.pipe()
        self._back, back_write = os.pipe()
        os.set_blocking(self._bell, False)
        path = [p or os.getcwd() for p in sys.path]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
        args = [sys.executable, "-m", "bluesky_zarr.writing._child", self.ring.name, str(ring_bytes)]
        args += [str(bell_read), str(back_write), overflow, str(os.getpid())]
        try:
            self.proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, pass_fds=(bell_read, back_write), env=env,
                start_new_session=True,  # a Ctrl-C at the terminal is the RunEngine's, not the writer's
            )  # fmt: skip
        except BaseException:
            self.ring.close(unlink=True)
            raise
        finally:
            os.close(bell_read)
            os.close(back_write)
        self.pid = self.proc.pid
        self.put(CONFIG, state, 0)

    # --- the caller's thread -------------------------------------------------------------------------

    def put(self, name: str, doc: Any, nbytes: int) -> None:
        """Copy one document into the ring; block while it is full (``overflow="block"``)."""
        if self.dead:
            if name == "start":  # said once at the document after the death; a new run is refused too
                raise WriterProcessError(
                    f"the writer process (pid {self.pid}) is gone; nothing of this run is written. Create a "
                    "new writer for the next runs"
                )
            return
        if self.proc.poll() is not None:
            self._died()
            return
        if self.ring.errors > self.errors_seen:
            self._collect()
        if name == "start":
            self.run = str(doc.get("uid"))
        elif name == "stop" and self.lost.get(str(doc.get("run_start"))):
            self._report_lost(str(doc.get("run_start")))
        flags = ACK if name == "stop" or name in CONTROL else 0
        if name == "event" or name == "event_page":
            flags = DISCARDABLE
        data, raws = Ring.encode((name, doc))
        size = Ring.size(data, raws)
        if size > self.ring.capacity:
            raise ConfigurationError(_too_big(name, doc, size, self.ring.capacity))
        if not self._make_room(size):
            return
        self.seq += 1
        self.ring.write(self.seq, flags, data, raws, size)
        if flags & ACK:
            self.waiting_for = self.seq
        with contextlib.suppress(BlockingIOError):  # a full pipe: the writer process is awake anyway
            os.write(self._bell, b"\0")

    def join(self) -> None:
        """Wait until the writer process has handled the last ``stop``, ``flush`` or ``close``."""
        while not self.dead and self.acked < self.waiting_for:
            self._pump(_WAIT * 2)
            if self.acked < self.waiting_for and self.proc.poll() is not None:
                self._pump(0)
                if self.acked < self.waiting_for:
                    self._died()
        if not self.dead and self.ring.errors > self.errors_seen:
            self._collect()

    def close(self) -> None:
        """After ``close`` was put: wait for the writer process to exit, remove the ring; once."""
        if self.closed:
            return
        try:
            self.join()
            self.closed = True
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=60)
            if self.proc.poll() is None:  # it does not end: never leave it behind
                self.proc.kill()
                self.proc.wait()
        finally:
            self.closed = True
            self.ring.close(unlink=True)
            for fd in (self._bell, self._back):
                with contextlib.suppress(OSError):
                    os.close(fd)

    # --- overflow --------------------------------------------------------------------------------------

    def _make_room(self, size: int) -> bool:
        while self.ring.capacity - self.ring.used < size:
            if self.overflow == "discard_oldest":
                dropped = self.ring.drop_oldest(size)
                if dropped:
                    self.lost[self.run] = self.lost.get(self.run, 0) + dropped
                    continue
            self.ring.producer_waits = True
            if self.ring.capacity - self.ring.used >= size:
                break
            self._pump(_WAIT)
            if self.proc.poll() is not None:
                self._died()
                return False
        return True

    def _report_lost(self, uid: str) -> None:
        count = self.lost.pop(uid)
        message = (
            f"run {uid}: {count} event document(s) were discarded because the ring buffer was full "
            f"(overflow='discard_oldest', ring_bytes={self.ring.capacity}); the run ends 'partial'. "
            "A larger ring_bytes, or overflow='block', keeps every event"
        )
        logger.warning("%s", message)
        self.put(LOST, {"run_start": uid, "message": message}, 0)

    # --- what the writer process says --------------------------------------------------------------------

    def _pump(self, timeout: float) -> None:
        if self._eof:
            return
        if not readable(self._back, timeout):
            return
        chunk = os.read(self._back, 1 << 20)
        if not chunk:
            self._eof = True
            return
        inbox = self._inbox
        inbox += chunk
        while inbox:
            kind = inbox[:1]
            if kind == b"A":
                if len(inbox) < 9:
                    break
                self.acked = max(self.acked, struct.unpack_from("<Q", inbox, 1)[0])
                del inbox[:9]
            elif kind == b"S":
                del inbox[:1]
            else:  # b"E": an error, pickled
                if len(inbox) < 5 or len(inbox) < 5 + (n := struct.unpack_from("<I", inbox, 1)[0]):
                    break
                payload = bytes(inbox[5 : 5 + n])
                del inbox[: 5 + n]
                self.errors_seen += 1
                self._record(_unpickle_error(payload, self.pid))

    def _collect(self) -> None:
        """Take every error the writer process has counted (it counts one before it sends it)."""
        while self.ring.errors > self.errors_seen and not self._eof:
            self._pump(_WAIT * 2)
            if self.proc.poll() is not None:
                self._pump(0)
                break

    def _died(self) -> None:
        """The writer process is gone: say so once, with what it said last and where its outputs are."""
        self.dead = True
        while not self._eof:
            self._pump(_WAIT)
        code = self.proc.returncode
        how = f"was killed by {_signal_name(-code)}" if code < 0 else f"exited with status {code}"
        if code > 128:
            how = f"ended on {_signal_name(code - 128)} (the runs it had are marked 'incomplete')"
        outputs = self._outputs()
        where = (
            f"; what it wrote stays readable in {', '.join(outputs)}: bluesky_zarr.finalize(path) "
            "finishes each run it left 'running'"
            if outputs
            else ""
        )
        error = WriterProcessError(
            f"the writer process (pid {self.pid}) {how}; the documents after it are not written{where}. "
            "Create a new writer for the next runs"
        )
        error.__cause__ = ChildProcessError(f"pid {self.pid}: {how}")
        self._record(error)
        self.ring.close(unlink=True)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _unpickle_error(payload: bytes, pid: int) -> BaseException:
    try:
        err, cause = pickle.loads(payload)
    except Exception as failed:  # an exception that does not unpickle: keep its text
        err, cause = BlueskyZarrError(f"the writer process (pid {pid}) failed: {failed!r}"), None
    if cause is not None:
        err.__cause__ = cause
    err.add_note(f"raised in the writer process (pid {pid})")
    return err  # type: ignore[no-any-return]


def _too_big(name: str, doc: Any, size: int, capacity: int) -> str:
    nbytes, key = _largest(doc)
    which = f" (data key {key!r} holds {nbytes} bytes)" if nbytes else ""
    run = doc.get("descriptor", doc.get("run_start", "?")) if isinstance(doc, dict) else "?"
    return (
        f"a {name} document of {run} takes {size} bytes in the ring{which}, more than the whole ring "
        f"(ring_bytes={capacity}); it was not written. Pass ring_bytes of at least a few such documents, "
        f"e.g. ring_bytes={max(4 * size, 2**30)}"
    )


def _largest(value: Any, key: str = "") -> tuple[int, str]:
    """The largest array in a document, and the data key it is under (in ``data`` or ``configuration``)."""
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes, key
    found = (0, "")
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        inner = key if isinstance(k, int) or k in ("data", "configuration") else str(k)
        found = max(found, _largest(v, inner))
    return found


def readable(fd: int, timeout: float) -> bool:
    """Whether ``fd`` has bytes (or its end) to read within ``timeout`` seconds. ``poll``, not
    ``select``: a session with a thousand files open has descriptors ``select`` cannot watch."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(max(0.0, timeout) * 1000))
