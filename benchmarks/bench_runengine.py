"""What a writer costs the RunEngine: the same scan with a no-op subscriber, the thread worker, the
process worker (``worker="process"``), and a 0MQ ``Publisher`` feeding ``bluesky-zarr serve``.

A real RunEngine runs ``grid_scan`` 20x25 over two ``ophyd.sim`` motors with a camera of 256x256
uint16 frames (returned inline with the reading) and a point detector, at zero and at 10 ms
exposure, with one of: a subscriber that does nothing (the baseline), ``ZarrWriter(directory)``
(the writer thread), ``ZarrWriter(directory, worker="process")``, or bluesky's
``bluesky.callbacks.zmq.Publisher`` sending to a ``Proxy`` (started in Python on 127.0.0.1, in a
process of its own) that ``bluesky-zarr serve`` (another process) writes from. The clock runs from
``RE(plan)`` to its return, which for a writer means after the ``stop`` document has waited until
every event is on disk; a publisher returns once it has sent the stop, so for ``serve`` the script
then waits (off the clock) for serve's log line of the run's stop, and prints how many events it
wrote. The writer is made, its writer process started, and serve subscribed (a warm-up run it
logs), before the clock starts. ``ratio`` is a scan's time over the no-op's at the same
exposure, measured in the same run: 1.00 is free. Medians of 5 repeats; the order of the four
rotates between repeats. (The
``bench_progress.py`` benchmark measures the progress display the same way.)

Run ``python benchmarks/bench_runengine.py`` (a few minutes) or ``--quick`` for a smoke run.
``--dir`` chooses where the temporary directory goes.
"""

from __future__ import annotations

import argparse
import itertools
import queue
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from bluesky import RunEngine
from bluesky import plans as bp
from ophyd.sim import SynSignal, det, motor1, motor2

from bluesky_zarr import ZarrWriter

SHAPE = (256, 256)
MODES = ("no-op", "thread", "process", "serve")
LABELS = {"no-op": "no-op", "thread": "worker=thread", "process": "worker=process", "serve": "0MQ + serve"}
PROXY = """
from bluesky.callbacks.zmq import Proxy
proxy = Proxy(in_address="tcp://127.0.0.1", out_address="tcp://127.0.0.1")
print(proxy.in_port, proxy.out_port, flush=True)
proxy.start()
"""
"""bluesky's proxy, bound to 127.0.0.1 (the ``bluesky-0MQ-proxy`` script binds every interface)."""


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


class Serve:
    """A proxy and ``bluesky-zarr serve`` writing into ``directory``, each a process of its own."""

    def __init__(self, directory: Path) -> None:
        self.proxy = subprocess.Popen([sys.executable, "-c", PROXY], stdout=subprocess.PIPE, text=True)
        assert self.proxy.stdout is not None
        self.address, out = self.proxy.stdout.readline().split()  # tcp://127.0.0.1:port, both
        self._publisher: Any = None
        command = [sys.executable, "-m", "bluesky_zarr.cli", "serve", out, str(directory)]
        self.serve = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.serve.stderr is not None
        for line in self.serve.stderr:
            self.lines.put(line)

    def wait(self, pattern: str, timeout: float = 120.0) -> re.Match[str] | None:
        """The next log line of serve that matches ``pattern``, or None after ``timeout``."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            if found := re.search(pattern, line):
                return found
        return None

    def close(self) -> None:
        if self._publisher is not None:
            self._publisher.close()
        for process in (self.serve, self.proxy):
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def served(directory: Path) -> Iterator[Serve]:
    chain = Serve(directory)
    try:
        chain.wait("serving")
        yield chain
    finally:
        chain.close()


def publisher(chain: Serve) -> Any:
    """The chain's Publisher, made once and heard by serve: warm-up runs are published until serve
    logs one (0MQ's slow joiner gets nothing sent before its subscription reached the publisher)."""
    from bluesky.callbacks.zmq import Publisher

    if chain._publisher is None:
        sender = Publisher(chain.address)
        RE = RunEngine({})
        RE.subscribe(sender)
        for _ in range(50):
            (uid,) = RE(bp.count([det], 1))
            if chain.wait(f"run {uid} stop", timeout=2.0):
                chain._publisher = sender
                break
        else:
            raise SystemExit("serve never heard the publisher")
    return chain._publisher


def scan_seconds(
    directory: Path, grid: tuple[int, int], mode: str, exposure: float, chain: Serve | None = None
) -> tuple[float, str]:
    """Seconds the scan took, and (for serve) what serve says it wrote."""
    RE = RunEngine({})
    writer: ZarrWriter | None = None
    subscriber: Callable[[str, Any], Any]
    if mode == "no-op":
        subscriber = lambda name, doc: None  # noqa: E731
    elif mode == "serve":
        assert chain is not None
        subscriber = publisher(chain)
    else:
        writer = ZarrWriter(directory, worker=mode, ring_bytes=256 * 1024**2)  # type: ignore[arg-type]
        writer.flush()  # the writer process is up
        subscriber = writer
    RE.subscribe(subscriber)
    plan = bp.grid_scan([Camera(exposure), det], motor1, 0, 1, grid[0], motor2, 0, 1, grid[1])
    began = time.perf_counter()
    (uid,) = RE(plan)
    seconds = time.perf_counter() - began
    written = ""
    if writer is not None:
        writer.close()
    if mode == "serve":
        assert chain is not None
        stop = chain.wait(f"run {uid} stop: status (\\w+), (\\d+)")
        written = "serve wrote no stop" if stop is None else f"{stop[2]} events {stop[1]}"
    shutil.rmtree(directory, ignore_errors=True)
    return seconds, written


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
        with served(root / "served") as chain:
            for exposure in (0.0, 0.01):
                for mode in MODES:  # warm-up
                    scan_seconds(root / "warm-up", (2, 2), mode, exposure, chain)
                times: dict[str, list[float]] = {mode: [] for mode in MODES}
                said: dict[str, set[str]] = {mode: set() for mode in MODES}
                for repeat in range(repeats):
                    shift = repeat % len(MODES)
                    for mode in MODES[shift:] + MODES[:shift]:
                        seconds, written = scan_seconds(
                            root / f"run-{repeat}-{mode}", grid, mode, exposure, chain
                        )
                        times[mode].append(seconds)
                        said[mode].add(written)
                base = statistics.median(times["no-op"])
                for mode in MODES:
                    median = statistics.median(times[mode])
                    spread = f"{min(times[mode]):.2f}-{max(times[mode]):.2f}"
                    wrote = ", ".join(sorted(said[mode] - {""}))
                    print(
                        f"{exposure * 1000:>5.0f} ms {LABELS[mode]:<16} {median:>8.3f} "
                        f"{points / median:>9.0f} {median / base:>6.2f} {spread:>13}  {wrote}"
                    )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
