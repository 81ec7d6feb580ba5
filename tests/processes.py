"""A writer process killed mid-scan, for the crash tests.

:func:`kill_after_flush`: the child says on stdout when it is ready to be killed (everything up to
then is flushed); the test reads that line and kills it, with no ``sleep``. :func:`kill_at`: the
child is killed at a random moment of its writing, whatever it is doing then.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

FLUSHED = 40
"""Events the killed writer has flushed when it says it is ready; it takes as many more, then waits."""
GRID = (20, 10)
"""The grid of the killed scan: far more points than it gets to."""

KILLED_SCAN = textwrap.dedent(
    """
    import sys
    from bluesky import RunEngine, plans as bp
    from ophyd.sim import det, motor1, motor2
    from stand_ins import FrameCounter
    from bluesky_zarr import Writer

    directory, fmt, flushed, rows, columns = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
    RE = RunEngine({})
    writer = Writer(directory, fmt, file_prefix="crash", flush_interval=0.05)
    RE.subscribe(writer)

    def ready(name, doc):
        if name != "event":
            return
        if doc["seq_num"] == flushed:
            writer.flush()  # everything taken so far is on disk
            print("flushed", flushed, flush=True)
        elif doc["seq_num"] == 2 * flushed:
            sys.stdin.readline()  # the writer thread writes on; this holds the scan until the kill

    RE.subscribe(ready)
    RE(bp.grid_scan([FrameCounter(shape=(16, 16)), det], motor1, 0, 1, rows, motor2, 0, 1, columns))
    """
)


def child_environment() -> dict[str, str]:
    """The environment of a child Python that imports the tests' stand-ins (and whatever the caller's
    PYTHONPATH holds)."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]),
    }


def kill_after_flush(directory: Path, fmt: str, while_alive: Callable[[int], None] | None = None) -> None:
    """Run a grid scan written in ``fmt`` to ``directory`` (file prefix ``crash``) in a child
    process and SIGKILL it once it says that :data:`FLUSHED` events are on disk, while it writes more;
    ``while_alive(pid)`` runs just before the kill."""
    env = child_environment()
    args = [sys.executable, "-c", KILLED_SCAN, str(directory), fmt, str(FLUSHED), *map(str, GRID)]
    with subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line == f"flushed {FLUSHED}\n", f"the scan ended before it was ready: {line!r}"
        if while_alive is not None:
            while_alive(proc.pid)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL


COUNTED_SCAN = textwrap.dedent(
    """
    import sys
    from bluesky import RunEngine, plans as bp
    from ophyd.sim import det
    from stand_ins import FrameCounter
    from bluesky_zarr import Writer

    directory, fmt = sys.argv[1], sys.argv[2]
    RE = RunEngine({})
    RE.subscribe(Writer(directory, fmt, file_prefix="crash", flush_interval=0.01))
    RE.subscribe(lambda name, doc: name == "event" and doc["seq_num"] == 1 and print("writing", flush=True))
    RE(bp.count([FrameCounter(shape=(8, 8)), det], 100_000))
    """
)


def kill_at(directory: Path, fmt: str, delay: float, signum: int = signal.SIGKILL, handler: str = "") -> int:
    """Run a 1-D scan (``count``, no grid, file prefix ``crash``) written in ``fmt`` in a child
    process and send it ``signum`` ``delay`` seconds after its first event, at whatever the writer
    is doing; its exit status (SIGKILL: asserted). ``handler``: code the child runs first (e.g. to
    set a SIGTERM handler of its own)."""
    env = child_environment()
    args = [sys.executable, "-c", handler + "\n" + COUNTED_SCAN, str(directory), fmt]
    with subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line == "writing\n", f"the scan did not start: {line!r}"
        time.sleep(delay)  # a random moment: what is being written then is the point of the test
        proc.send_signal(signum)
        code = proc.wait(timeout=120)
    if signum == signal.SIGKILL:
        assert code == -signal.SIGKILL
    return code


PROCESS_SCAN = textwrap.dedent(
    """
    import os, sys
    from bluesky import RunEngine, plans as bp
    from ophyd.sim import det, motor1, motor2
    from stand_ins import FrameCounter
    from bluesky_zarr import ZarrWriter

    directory, held = sys.argv[1], int(sys.argv[2])
    RE = RunEngine({})
    writer = ZarrWriter(directory, file_prefix="crash", worker="process", ring_bytes=64 * 1024**2)
    RE.subscribe(writer)
    pid = writer._buffer.pid

    def hold(name, doc):
        if name == "event" and doc["seq_num"] == held:
            writer.flush()  # on disk
        elif name == "event" and doc["seq_num"] == 2 * held:
            print("ready", pid, 2 * held, flush=True)  # the events since the flush are in the ring
            sys.stdin.readline()  # the test kills one of the two processes now
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # the writer process is gone

    RE.subscribe(hold)
    try:
        RE(bp.grid_scan([FrameCounter(shape=(16, 16)), det], motor1, 0, 1, 20, motor2, 0, 1, 10))
    except Exception as err:
        print("raised", type(err).__name__, str(err).replace(chr(10), " "), flush=True)
    writer.file_prefix = "next"
    try:
        RE(bp.count([det], 1))  # the next run is refused too
    except Exception as err:
        print("raised", type(err).__name__, str(err).replace(chr(10), " "), flush=True)
    """
)


def process_scan(directory: Path, held: int) -> subprocess.Popen[str]:
    """A grid scan written with ``worker="process"`` (file prefix ``crash``) in a child process, which
    flushes ``held`` events to disk, says ``ready <writer pid> <2 held>`` once as many more are in the
    ring, and waits for a line on stdin
    (after which it waits for the writer process to be gone)."""
    args = [sys.executable, "-c", PROCESS_SCAN, str(directory), str(held)]
    return subprocess.Popen(
        args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_environment()
    )


INTERRUPTED_SESSION = textwrap.dedent(
    """
    import sys
    from bluesky import RunEngine, plans as bp
    from ophyd.sim import det
    from bluesky_zarr import ZarrWriter

    writer = ZarrWriter(sys.argv[1], file_prefix="crash", worker="process", ring_bytes=64 * 1024**2)
    documents = []
    RE = RunEngine({})
    RE.subscribe(lambda name, doc: documents.append((name, doc)))
    RE(bp.count([det], 5))
    for name, doc in documents[:-1]:  # a run with no stop document, as a session that dies mid-scan
        writer(name, doc)
    writer.flush()
    print("ready", writer._buffer.pid, flush=True)
    sys.stdin.readline()  # a Ctrl-C (SIGINT) here: KeyboardInterrupt, and the session exits
    """
)


def interrupted_session(directory: Path) -> subprocess.Popen[str]:
    """A session that has fed a writer (``worker="process"``, file prefix ``crash``) a run with no stop
    document, says ``ready <writer pid>`` and waits on stdin."""
    args = [sys.executable, "-c", INTERRUPTED_SESSION, str(directory)]
    return subprocess.Popen(
        args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=child_environment(),
    )  # fmt: skip
