"""A writer process killed mid-scan, for the crash tests.

The child says on stdout when it is ready to be killed (everything up to then is flushed); the
test reads that line and kills it. Nothing waits with ``sleep``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
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


def kill_after_flush(directory: Path, fmt: str) -> None:
    """Run a grid scan written in ``fmt`` to ``directory`` (file prefix ``crash``) in a child
    process and SIGKILL it once it says that :data:`FLUSHED` events are on disk, while it writes more."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]),
    }
    args = [sys.executable, "-c", KILLED_SCAN, str(directory), fmt, str(FLUSHED), *map(str, GRID)]
    with subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line == f"flushed {FLUSHED}\n", f"the scan ended before it was ready: {line!r}"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
