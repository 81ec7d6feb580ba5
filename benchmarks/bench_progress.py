"""What the progress display costs a scan: the same RunEngine scan with and without ``progress``.

A real RunEngine runs ``grid_scan`` over two ``ophyd.sim`` motors with a camera of 128x128 uint16
frames (``FrameCounter``-like, returned inline) and a point detector, at zero exposure, into a
``ZarrWriter``: once with ``progress=False`` (the baseline) and once with a progress bar drawn to
a terminal-like text stream (every redraw is formatted and written, as in a terminal). The clock
runs from ``RE(plan)`` to its return, which for a writer means after the ``stop`` document has
waited until every event is written. ``ratio`` is the scan's time with the display over its time
without: 1.00 is free. Medians of several repeats; the order alternates between repeats.

Run ``python benchmarks/bench_progress.py`` (about a minute) or ``--quick`` for a smoke run.
``--dir`` chooses where the temporary directory goes.
"""

from __future__ import annotations

import argparse
import io
import itertools
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from bluesky import RunEngine
from bluesky import plans as bp
from ophyd.sim import SynSignal, det, motor1, motor2

from bluesky_zarr import ZarrWriter


class Camera(SynSignal):  # type: ignore[misc]
    """Frames of 128x128 uint16, returned inline with the reading."""

    def __init__(self) -> None:
        counter = itertools.count()
        super().__init__(func=lambda: np.full((128, 128), next(counter) % 65535, dtype="<u2"), name="cam")

    def describe(self) -> dict[str, Any]:
        description: dict[str, Any] = super().describe()
        description["cam"].update(dtype="array", dtype_numpy="<u2", shape=[128, 128])
        return description


class Terminal(io.StringIO):
    """Text written as to a terminal: kept short, so a long benchmark does not grow a huge string."""

    def write(self, text: str) -> int:
        self.seek(0)
        return super().write(text)

    def isatty(self) -> bool:
        return True


def scan_seconds(directory: Path, grid: tuple[int, int], progress: bool) -> float:
    RE = RunEngine({})
    writer = ZarrWriter(directory, progress=Terminal() if progress else False)
    RE.subscribe(writer)
    plan = bp.grid_scan([Camera(), det], motor1, 0, 1, grid[0], motor2, 0, 1, grid[1])
    began = time.perf_counter()
    RE(plan)
    seconds = time.perf_counter() - began
    writer.close()
    shutil.rmtree(directory)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--dir", type=Path, default=None, help="where the temporary directory goes")
    args = parser.parse_args()
    grid, repeats = ((4, 5), 2) if args.quick else ((20, 25), 5)
    root = Path(tempfile.mkdtemp(prefix="bench-progress-", dir=args.dir))
    try:
        scan_seconds(root / "warm-up", (2, 2), True)
        times: dict[bool, list[float]] = {False: [], True: []}
        for repeat in range(repeats):
            for progress in (False, True) if repeat % 2 == 0 else (True, False):
                times[progress].append(scan_seconds(root / f"run-{repeat}-{progress}", grid, progress))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    points = grid[0] * grid[1]
    without, with_ = statistics.median(times[False]), statistics.median(times[True])
    print(f"grid_scan {grid[0]}x{grid[1]} ({points} points, 128x128 uint16 frames), medians of {repeats}")
    print(f"{'':<22} {'seconds':>8} {'points/s':>9} {'ratio':>6}")
    print(f"{'progress=False':<22} {without:>8.3f} {points / without:>9.0f} {1.0:>6.2f}")
    print(f"{'progress=True':<22} {with_:>8.3f} {points / with_:>9.0f} {with_ / without:>6.2f}")
    spread = {k: f"{min(v):.3f}-{max(v):.3f}" for k, v in times.items()}
    print(f"spread (min-max s): without {spread[False]}, with {spread[True]}")


if __name__ == "__main__":
    main()
