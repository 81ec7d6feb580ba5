"""What a writer costs the RunEngine: the same scan with a no-op subscriber, the thread worker and the
process worker (``worker="process"``).

A real RunEngine runs ``grid_scan`` 20x25 over two ``ophyd.sim`` motors with a camera of 256x256
uint16 frames (returned inline with the reading) and a point detector, at zero and at 10 ms
exposure, with one of: a subscriber that does nothing (the baseline), ``ZarrWriter(directory)``
(the writer thread), ``ZarrWriter(directory, worker="process")``. The clock runs from
``RE(plan)`` to its return, which for a writer means after the ``stop`` document has waited until
every event is on disk. The writer is made, and its writer process started, before the clock
starts. ``ratio`` is a scan's time over the no-op's at the same exposure, measured in the same run:
1.00 is free. Medians of 5 repeats; the order of the three rotates between repeats. (The
``bench_progress.py`` benchmark measures the progress display the same way.)

Run ``python benchmarks/bench_runengine.py`` (a few minutes) or ``--quick`` for a smoke run.
``--dir`` chooses where the temporary directory goes.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from bluesky import RunEngine
from bluesky import plans as bp
from ophyd.sim import SynSignal, det, motor1, motor2

from bluesky_zarr import ZarrWriter

SHAPE = (256, 256)
MODES = ("no-op", "thread", "process")


class Camera(SynSignal):  # type: ignore[misc]
    """Frames of 256x256 uint16, returned inline with the reading, after ``exposure`` seconds."""

    def __init__(self, exposure: float) -> None:
        counter = itertools.count()
        super().__init__(
            func=lambda: np.full(SHAPE, next(counter) % 65535, dtype="<u2"), name="cam",
            exposure_time=exposure,
        )  # fmt: skip

    def describe(self) -> dict[str, Any]:
        description: dict[str, Any] = super().describe()
        description["cam"].update(dtype="array", dtype_numpy="<u2", shape=list(SHAPE))
        return description


def scan_seconds(directory: Path, grid: tuple[int, int], mode: str, exposure: float) -> float:
    RE = RunEngine({})
    writer: ZarrWriter | None = None
    subscriber: Callable[[str, Any], Any]
    if mode == "no-op":
        subscriber = lambda name, doc: None  # noqa: E731
    else:
        writer = ZarrWriter(directory, worker=mode, ring_bytes=256 * 1024**2)  # type: ignore[arg-type]
        writer.flush()  # the writer process is up
        subscriber = writer
    RE.subscribe(subscriber)
    plan = bp.grid_scan([Camera(exposure), det], motor1, 0, 1, grid[0], motor2, 0, 1, grid[1])
    began = time.perf_counter()
    RE(plan)
    seconds = time.perf_counter() - began
    if writer is not None:
        writer.close()
    shutil.rmtree(directory, ignore_errors=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--dir", type=Path, default=None, help="where the temporary directory goes")
    args = parser.parse_args()
    grid, repeats = ((4, 5), 1) if args.quick else ((20, 25), 5)
    root = Path(tempfile.mkdtemp(prefix="bench-runengine-", dir=args.dir))
    points = grid[0] * grid[1]
    print(f"grid_scan {grid[0]}x{grid[1]} ({points} points, 256x256 uint16 frames), medians of {repeats}")
    print(
        f"{'exposure':<9} {'subscriber':<16} {'seconds':>8} {'points/s':>9} {'ratio':>6} {'spread (s)':>13}"
    )
    try:
        for exposure in (0.0, 0.01):
            for mode in MODES:  # warm-up
                scan_seconds(root / "warm-up", (2, 2), mode, exposure)
            times: dict[str, list[float]] = {mode: [] for mode in MODES}
            for repeat in range(repeats):
                order = MODES[repeat % 3 :] + MODES[: repeat % 3]
                for mode in order:
                    times[mode].append(scan_seconds(root / f"run-{repeat}-{mode}", grid, mode, exposure))
            base = statistics.median(times["no-op"])
            for mode in MODES:
                median = statistics.median(times[mode])
                spread = f"{min(times[mode]):.2f}-{max(times[mode]):.2f}"
                label = {"no-op": "no-op", "thread": "worker=thread", "process": "worker=process"}[mode]
                print(
                    f"{exposure * 1000:>5.0f} ms {label:<16} {median:>8.3f} {points / median:>9.0f} "
                    f"{median / base:>6.2f} {spread:>13}"
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
