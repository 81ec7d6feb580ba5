"""The writer process of ``worker="process"``: ``python -m bluesky_zarr.writing._child``.

It drains the shared-memory :class:`Ring` into an ordinary writer (the thread worker) rebuilt from
the pickled configuration that comes as the ring's first record, and answers on its pipe (see
:mod:`bluesky_zarr.writing._process`). It ends when it is told to (``close``), when the
acquisition process is gone (the bell pipe closes), or on SIGTERM/SIGINT: in each case it writes
what the ring holds, ends the runs that got no stop document as ``incomplete``, removes the ring
and exits. A Ctrl-C at the terminal does not reach it (a session of its own): it is the RunEngine's.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import struct
import sys
from typing import Any

from ._process import CLAIMS, CONFIG, CONTROL, LOST, readable
from ._ring import ACK, Ring
from ._writer import Writer, _rebuild

_signalled: list[int] = []


def _on_signal(number: int, frame: Any) -> None:
    _signalled.append(number)


class _Answer:
    """The pipe back to the acquisition process."""

    def __init__(self, fd: int, ring: Ring) -> None:
        self.fd, self.ring = fd, ring

    def send(self, message: bytes) -> None:
        with contextlib.suppress(OSError):  # the acquisition process is gone: nobody to tell
            os.write(self.fd, message)

    def error(self, err: BaseException) -> None:
        try:
            payload = pickle.dumps((err, err.__cause__))
        except Exception:
            payload = pickle.dumps((type(err)(str(err)) if _plain(err) else RuntimeError(repr(err)), None))
        self.ring.count_error()  # counted first: the other side then reads until it has it
        self.send(b"E" + struct.pack("<I", len(payload)) + payload)


def _plain(err: BaseException) -> bool:
    try:
        pickle.loads(pickle.dumps(type(err)(str(err))))
    except Exception:
        return False
    return True


def main(argv: list[str]) -> int:
    name, capacity, bell, back, overflow, parent = argv
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, _on_signal)
    ring = Ring.attach(name, int(capacity))
    answer = _Answer(int(back), ring)
    lock = overflow == "discard_oldest"
    writer: Writer | None = None
    parent_gone = closed = False
    try:
        while not closed:
            for seq, flags, (kind, doc) in ring.read(lock):
                if ring.producer_waits:
                    ring.producer_waits = False
                    answer.send(b"S")
                try:
                    if kind == CONFIG:
                        writer = _rebuild(*pickle.loads(doc))
                        writer._in_writer_process = True
                        for number in (signal.SIGTERM, signal.SIGINT):  # this loop finishes on both
                            signal.signal(number, _on_signal)
                    elif writer is None:
                        continue
                    elif kind == CLAIMS:
                        writer.take_claims(*doc)
                    elif kind == "start":
                        writer._accept(kind, doc)  # its outputs were claimed by the acquisition side
                    elif kind == LOST:
                        _note_lost(writer, doc)
                    elif kind == CONTROL[0]:
                        writer.flush()
                    elif kind == CONTROL[1]:
                        closed = True
                        writer.close()
                    else:
                        writer(kind, doc)
                except Exception as err:
                    answer.error(err)
                if flags & ACK:
                    answer.send(b"A" + struct.pack("<Q", seq))
                if closed:
                    break
            if ring.producer_waits:
                ring.producer_waits = False
                answer.send(b"S")
            if closed or parent_gone or _signalled:
                break
            if readable(int(bell), 0.2) and not os.read(int(bell), 1 << 16):
                parent_gone = True  # the last records are drained on the next turn
            if os.getppid() != int(parent):
                parent_gone = True
    finally:
        if writer is not None and not closed:
            try:
                writer.close()  # the runs that got no stop document end 'incomplete'
            except Exception as err:
                answer.error(err)
        ring.close(unlink=True)
    return 128 + _signalled[0] if _signalled else 0


def _note_lost(writer: Writer, doc: dict[str, str]) -> None:
    writer.flush()  # the events before it are written, so the run is open
    run = writer._router.runs.get(doc["run_start"])
    if run is not None:
        run.call("overflow", lambda sink: sink.note_lost(doc["message"]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
