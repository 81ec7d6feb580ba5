"""How fast the Zarr writer writes, and how much a RunEngine notices it.

Part 1, throughput. A grid run of camera frames, built with ``event_model.compose_run``, is fed
to a :class:`bluesky_zarr.ZarrWriter`; the time runs from the first document to the return of
``stop`` (which waits until the run is on disk) plus ``close()``. In the same run and the same
directory the script measures two references that write the same bytes:

- ``plain write``: one file, written frame after frame with ``os.write``, not synced: the
  operating system's buffered write path (the page cache, then the disk as it keeps up).
- ``plain write + fsync``: the same, then ``fsync``: the same bytes durable on the disk. The
  writer syncs every file of a run (and their folders) at ``stop`` before it records the run's
  final status, so this is the ceiling the writer aims at; zarr-python does not sync.
- ``zarr-python``: ``arr[i, j] = frame`` once per frame into an uncompressed array with one frame
  per chunk, the obvious thing to write by hand.

The writer runs four ways: by default (blosc lz4 + bitshuffle, one file per frame), uncompressed
(``raw``), and each with ``shards="auto"`` (frames appended to a few open shard files).

``ratio`` is a method's MB/s divided by the plain write's: 1.00x is the speed of the disk (as
the OS offers it), 0.50x is half of it. ``ms each`` is the median time per frame (per event in
part 2). Frames are generated before the clock starts, a few reused;
the writer's figure also pays for what only it writes (``time``, ``seq_num``, the ``written``
mask, metadata and its consolidation at ``stop``).

Part 2, the RunEngine. A real ``bluesky.RunEngine`` runs a ``grid_scan`` over ``ophyd.sim``
motors with a small ophyd camera that returns a 256 x 256 uint16 frame inline. Wall time (the
plan plus closing the subscriber) is compared between a no-op subscriber, the ``ZarrWriter``, and
a synchronous reference that writes every frame with zarr-python inside the callback.
``slowdown`` is how much longer the scan took than with the no-op subscriber: the writer's goal
is about 0 %, the synchronous reference shows what a callback that waits on disk costs.

Every figure is the median of several repeats; the order of the methods rotates between repeats
so that a noisy neighbour on a shared machine does not always land on the same one. Between
measurements the previous output is deleted and ``os.sync()`` runs (both untimed), so no method
pays for another's writeback.

Run ``python benchmarks/bench_zarr_writer.py`` (about 2-3 minutes) or ``--quick`` for a smoke run
of a few seconds. ``--dir`` chooses where the temporary directory goes: put it on the disk you
care about (a tmpfs measures memory, not the disk).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import cycle
from pathlib import Path
from typing import Any

import event_model
import numpy as np
import zarr

from bluesky_zarr import ZarrWriter

Documents = list[tuple[str, Any]]
Callback = Callable[[str, Any], Any]

DATA_KEY = "camera_image"
FRAME_DTYPE = np.dtype("<u2")
DISTINCT_FRAMES = 4
"""Frames generated before timing and reused in turn."""


@dataclass(frozen=True)
class ThroughputCase:
    grid: tuple[int, int]
    frame_shape: tuple[int, int]
    repeats: int

    @property
    def n_frames(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def nbytes(self) -> int:
        return self.n_frames * int(np.prod(self.frame_shape)) * FRAME_DTYPE.itemsize

    @property
    def label(self) -> str:
        y, x = self.frame_shape
        return f"{self.n_frames} x {y}x{x} u2"


@dataclass(frozen=True)
class ScanCase:
    grid: tuple[int, int]
    frame_shape: tuple[int, int]
    repeats: int

    @property
    def n_events(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def label(self) -> str:
        y, x = self.frame_shape
        return f"grid_scan {self.grid[0]}x{self.grid[1]}, {y}x{x} u2"


@dataclass(frozen=True)
class Settings:
    throughput: tuple[ThroughputCase, ...]
    scan: ScanCase


FULL = Settings(
    throughput=(
        ThroughputCase(grid=(40, 50), frame_shape=(256, 256), repeats=5),
        ThroughputCase(grid=(6, 10), frame_shape=(2048, 2048), repeats=5),
    ),
    scan=ScanCase(grid=(20, 25), frame_shape=(256, 256), repeats=5),
)
QUICK = Settings(
    throughput=(
        ThroughputCase(grid=(4, 5), frame_shape=(256, 256), repeats=1),
        ThroughputCase(grid=(1, 2), frame_shape=(2048, 2048), repeats=1),
    ),
    scan=ScanCase(grid=(4, 5), frame_shape=(256, 256), repeats=1),
)


# --- shared ---------------------------------------------------------------------------------------


def make_frames(shape: tuple[int, int], count: int = DISTINCT_FRAMES, seed: int = 0) -> list[np.ndarray]:
    """Noisy 12-bit-like frames, so nothing on the way can take a shortcut on constant data."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 4096, size=shape, dtype=FRAME_DTYPE) for _ in range(count)]


def camera_data_key(frame_shape: tuple[int, int]) -> dict[str, Any]:
    return {
        "source": "bench:camera",
        "dtype": "array",
        "dtype_numpy": FRAME_DTYPE.str,
        "shape": list(frame_shape),
        "dims": ["y", "x"],
    }


def rotated(items: Sequence[str], shift: int) -> list[str]:
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


def settle(path: Path) -> None:
    """Delete what a measurement wrote and let the disk catch up, outside the clock."""
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    os.sync()


def zarr_frame_array(path: Path, grid: tuple[int, ...], frame_shape: tuple[int, ...]) -> zarr.Array[Any]:
    """What someone writing by hand would make: uncompressed, one frame per chunk."""
    return zarr.create_array(
        store=str(path),
        shape=(*grid, *frame_shape),
        chunks=(*(1 for _ in grid), *frame_shape),
        dtype=FRAME_DTYPE,
        compressors=None,
        filters=None,
        fill_value=0,
        dimension_names=(*(f"dim_{i}" for i in range(len(grid))), "y", "x"),
    )


def check_store(store: Path, grid: tuple[int, int], frame: np.ndarray) -> None:
    """Read the last frame back with zarr-python, so a writer that drops data cannot look fast."""
    array = zarr.open_array(str(store), path=f"primary/{DATA_KEY}", mode="r")
    expected_shape = (*grid, *frame.shape)
    if array.shape != expected_shape or not np.array_equal(array[grid[0] - 1, grid[1] - 1], frame):
        raise SystemExit(f"{store}: the writer's output does not hold the frames it was given")


# --- part 1: throughput ---------------------------------------------------------------------------


def compose_documents(case: ThroughputCase, frames: list[np.ndarray]) -> Documents:
    bundle = event_model.compose_run(metadata={"shape": list(case.grid), "plan_name": "bench_grid"})
    docs: Documents = [("start", bundle.start_doc)]
    descriptor = bundle.compose_descriptor(
        name="primary", data_keys={DATA_KEY: camera_data_key(case.frame_shape)}
    )
    docs.append(("descriptor", descriptor.descriptor_doc))
    now = time.time()
    for i, frame in zip(range(case.n_frames), cycle(frames)):
        event = descriptor.compose_event(
            data={DATA_KEY: frame}, timestamps={DATA_KEY: now}, seq_num=i + 1, time=now, validate=False
        )
        docs.append(("event", event))
    docs.append(("stop", bundle.compose_stop()))
    return docs


def time_plain(path: Path, case: ThroughputCase, frames: list[np.ndarray], *, durable: bool = False) -> float:
    t0 = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for _, frame in zip(range(case.n_frames), cycle(frames)):
            view = frame.data.cast("B")
            while view:
                view = view[os.write(fd, view) :]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - t0


WRITER_OPTIONS: dict[str, dict[str, Any]] = {
    "ZarrWriter": {},
    "ZarrWriter raw": {"codecs": {DATA_KEY: "none"}},
    "ZarrWriter raw shards": {"codecs": {DATA_KEY: "none"}, "shards": {DATA_KEY: "auto"}},
    "ZarrWriter shards": {"shards": {DATA_KEY: "auto"}},
}
"""The writer by default (blosc lz4 + bitshuffle, a file per frame), uncompressed, and with shards
(frames appended to a few open files)."""


def time_writer(directory: Path, docs: Documents, options: Mapping[str, Any]) -> float:
    writer = ZarrWriter(directory, file_prefix="writer", **options)
    t0 = time.perf_counter()
    for name, doc in docs:
        writer(name, doc)
    writer.close()
    return time.perf_counter() - t0


def time_zarr_python(path: Path, case: ThroughputCase, frames: list[np.ndarray]) -> float:
    t0 = time.perf_counter()
    array = zarr_frame_array(path, case.grid, case.frame_shape)
    for i, frame in zip(range(case.n_frames), cycle(frames)):
        array[divmod(i, case.grid[1])] = frame
    return time.perf_counter() - t0


THROUGHPUT_METHODS = ("plain write", "plain write + fsync", *WRITER_OPTIONS, "zarr-python")


def run_throughput(case: ThroughputCase, work: Path) -> dict[str, list[float]]:
    frames = make_frames(case.frame_shape)
    times: dict[str, list[float]] = {m: [] for m in THROUGHPUT_METHODS}
    for repeat in range(case.repeats):
        for method in rotated(THROUGHPUT_METHODS, repeat):
            if method.startswith("plain write"):
                out = work / "plain.bin"
                times[method].append(time_plain(out, case, frames, durable=method.endswith("fsync")))
            elif method in WRITER_OPTIONS:
                docs = compose_documents(case, frames)
                out = work / "writer.zarr"
                times[method].append(time_writer(work, docs, WRITER_OPTIONS[method]))
                if repeat == 0:
                    check_store(out, case.grid, frames[(case.n_frames - 1) % len(frames)])
            else:
                out = work / "zarr-python.zarr"
                times[method].append(time_zarr_python(out, case, frames))
            settle(out)
    return times


# --- part 2: the RunEngine ------------------------------------------------------------------------


class SyncZarrCallback:
    """The reference that blocks the RunEngine: each frame written with zarr-python in the callback."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory
        self.grid: tuple[int, ...] = ()
        self.key = ""
        self.array: zarr.Array[Any] | None = None

    def __call__(self, name: str, doc: Mapping[str, Any]) -> None:
        if name == "start":
            self.grid = tuple(doc["shape"])
            self.path = self.directory / f"sync-{doc['uid']}.zarr"
        elif name == "descriptor" and doc.get("name") == "primary":
            self.key = next(k for k in doc["data_keys"] if k.endswith("image"))
            shape = tuple(doc["data_keys"][self.key]["shape"])
            self.array = zarr_frame_array(self.path, self.grid, shape)
        elif name == "event" and self.array is not None:
            index = np.unravel_index(doc["seq_num"] - 1, self.grid)
            self.array[tuple(int(i) for i in index)] = doc["data"][self.key]

    def close(self) -> None:
        pass


def make_camera(frame_shape: tuple[int, int]) -> Any:
    """A tiny ophyd camera whose reading is the frame itself, described with dtype_numpy and dims."""
    from ophyd import Component, Device, Signal
    from ophyd.status import Status

    frames = cycle(make_frames(frame_shape, seed=1))

    class FrameSignal(Signal):  # type: ignore[misc]
        def describe(self) -> dict[str, dict[str, Any]]:
            description: dict[str, dict[str, Any]] = super().describe()
            description[self.name].update(camera_data_key(frame_shape))
            return description

    class FrameCamera(Device):  # type: ignore[misc]
        image = Component(FrameSignal, value=next(frames), kind="hinted")

        def trigger(self) -> Status:
            self.image.put(next(frames))
            status = Status(obj=self)
            status.set_finished()
            return status

    return FrameCamera(name="camera")


SCAN_METHODS = ("no-op subscriber", "ZarrWriter", "zarr-python in callback")


def run_scan(case: ScanCase, work: Path) -> dict[str, list[float]]:
    from bluesky import RunEngine
    from bluesky.plans import grid_scan
    from ophyd.sim import motor1, motor2

    camera = make_camera(case.frame_shape)
    run_engine: Any = RunEngine({})
    rows, cols = case.grid

    def plan() -> Iterator[Any]:
        return grid_scan([camera], motor1, -1.0, 1.0, rows, motor2, -1.0, 1.0, cols)

    def run(callback: Callback, close: Callable[[], None]) -> float:
        token = run_engine.subscribe(callback)
        try:
            t0 = time.perf_counter()
            run_engine(plan())
            close()
            return time.perf_counter() - t0
        finally:
            run_engine.unsubscribe(token)

    run(lambda name, doc: None, lambda: None)  # warm up: imports, first describe, the event loop
    times: dict[str, list[float]] = {m: [] for m in SCAN_METHODS}
    for repeat in range(case.repeats):
        for method in rotated(SCAN_METHODS, repeat):
            out = work / "scan"
            out.mkdir()
            if method == "no-op subscriber":
                times[method].append(run(lambda name, doc: None, lambda: None))
            elif method == "ZarrWriter":
                writer = ZarrWriter(out)
                times[method].append(run(writer, writer.close))
                if repeat == 0:
                    (store,) = out.iterdir()
                    check_store(store, case.grid, camera.image.get())
            else:
                sync = SyncZarrCallback(out)
                times[method].append(run(sync, sync.close))
            settle(out)
    return times


# --- the report -----------------------------------------------------------------------------------


COLUMNS = f"{'':28}{'median s':>9}  {'min-max s':>13}  {'ms each':>8}  {'speed':>12}  {'ratio':>7}"


def _row(method: str, times: list[float], count: int, speed: str, ratio: str) -> str:
    median = statistics.median(times)
    span = f"{min(times):.3f}-{max(times):.3f}"
    return f"  {method:<26}{median:>9.3f}  {span:>13}  {median / count * 1e3:>8.2f}  {speed:>12}  {ratio:>7}"


def report_throughput(case: ThroughputCase, times: dict[str, list[float]]) -> list[str]:
    mb = case.nbytes / 1e6
    plain = mb / statistics.median(times["plain write"])
    lines = []
    for method in THROUGHPUT_METHODS:
        speed = mb / statistics.median(times[method])
        lines.append(_row(method, times[method], case.n_frames, f"{speed:.0f} MB/s", f"{speed / plain:.2f}x"))
    header = f"{case.label} ({mb:.0f} MB), {case.repeats} repeats"
    return [header, *lines]


def report_scan(case: ScanCase, times: dict[str, list[float]]) -> list[str]:
    base = statistics.median(times["no-op subscriber"])
    lines = []
    for method in SCAN_METHODS:
        median = statistics.median(times[method])
        slowdown = f"{(median / base - 1) * 100:+.0f} %"
        lines.append(
            _row(method, times[method], case.n_events, f"{case.n_events / median:.0f} ev/s", slowdown)
        )
    header = f"RunEngine {case.label} ({case.n_events} events), {case.repeats} repeats"
    return [header, *lines]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a smoke run: few frames, one repeat")
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="where to make the temporary directory (default: the system's temp dir); "
        "put it on the disk you want to measure",
    )
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    parent = args.dir if args.dir is not None else Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-zarr-writer-", dir=parent))
    print(f"bluesky-zarr writer benchmark in {work}  (medians; python {sys.version.split()[0]})")
    print(COLUMNS)
    try:
        for case in settings.throughput:
            print("\n".join(report_throughput(case, run_throughput(case, work))), flush=True)
        print("ratio: MB/s over the plain write's MB/s, measured in the same run (1.00x = as fast)")
        print("\n".join(report_scan(settings.scan, run_scan(settings.scan, work))), flush=True)
        print("ratio: extra wall time over the no-op subscriber's (0 % = the RunEngine does not notice)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
