"""How fast the HDF5 writer writes camera frames, next to a plain h5py write of the same frames.

A grid run of camera frames, built with ``event_model.compose_run`` (the documents of
``bench_zarr_writer.py``), is fed to a :class:`bluesky_zarr.HDF5Writer`; the time runs from the
first document to the return of ``stop`` (which waits until the run is on disk) plus ``close()``.
In the same run and the same directory the script measures what someone would write by hand:

- ``h5py``: one dataset of the grid's shape with one frame per chunk, uncompressed, created in a
  new file, ``ds[i, j] = frame`` once per frame, then the file closed (not synced): the baseline;
- ``h5py + fsync``: the same, then ``fsync``: the same bytes durable on the disk, as the writer
  makes them at ``stop`` before it records the run's final status;
- ``h5py gzip``: the first with gzip level 1 and shuffle, the writer's default for frames.

The writer runs three ways: by default (gzip 1 + shuffle, readable by every HDF5 library),
uncompressed (``raw``), and with the lz4 filter of ``hdf5plugin``. It also pays for what only it
writes (``time``, ``seq_num``, the ``written`` mask, dimension scales, NeXus attributes, the
documents as attributes), for SWMR (two flushes per ``flush_interval``) and for the ``fsync``
at ``stop``.

``ratio`` is a method's MB/s divided by the plain h5py write's. Every figure is the median of
several repeats; the order of the methods rotates between repeats, and between measurements the
output is deleted and ``os.sync()`` runs (both untimed).

Run ``python benchmarks/bench_hdf5_writer.py`` (about a minute) or ``--quick`` for a smoke run of
a few seconds. ``--dir`` chooses where the temporary directory goes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from itertools import cycle
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from bench_zarr_writer import (
    COLUMNS,
    DATA_KEY,
    FRAME_DTYPE,
    ThroughputCase,
    _row,
    compose_documents,
    make_frames,
    rotated,
    settle,
)

from bluesky_zarr import HDF5Writer

FULL = (
    ThroughputCase(grid=(20, 25), frame_shape=(256, 256), repeats=3),
    ThroughputCase(grid=(4, 5), frame_shape=(2048, 2048), repeats=3),
)
QUICK = (
    ThroughputCase(grid=(4, 5), frame_shape=(256, 256), repeats=1),
    ThroughputCase(grid=(1, 2), frame_shape=(2048, 2048), repeats=1),
)

WRITER_OPTIONS: dict[str, dict[str, Any]] = {
    "HDF5Writer": {},
    "HDF5Writer raw": {"compression": {DATA_KEY: "none"}},
    "HDF5Writer lz4": {"compression": {DATA_KEY: "lz4"}},
}


def time_h5py(
    path: Path, case: ThroughputCase, frames: list[np.ndarray], *, durable: bool = False, **filters: Any
) -> float:
    t0 = time.perf_counter()
    with h5py.File(path, "w") as f:
        dataset = f.create_dataset(
            "frames", shape=(*case.grid, *case.frame_shape), chunks=(1, 1, *case.frame_shape),
            dtype=FRAME_DTYPE, **filters,
        )  # fmt: skip
        for i, frame in zip(range(case.n_frames), cycle(frames)):
            dataset[divmod(i, case.grid[1])] = frame
    if durable:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return time.perf_counter() - t0


def time_writer(directory: Path, docs: list[tuple[str, Any]], options: Mapping[str, Any]) -> float:
    writer = HDF5Writer(directory, file_prefix="writer", **options)
    t0 = time.perf_counter()
    for name, doc in docs:
        writer(name, doc)
    writer.close()
    return time.perf_counter() - t0


def check_file(path: Path, case: ThroughputCase, frame: np.ndarray) -> None:
    """Read the last frame back with h5py, so a writer that drops data cannot look fast."""
    import hdf5plugin  # noqa: F401  # the lz4 filter

    with h5py.File(path, "r") as f:
        dataset = f[f"entry/primary/{DATA_KEY}"]
        if dataset.shape != (*case.grid, *frame.shape) or not np.array_equal(dataset[-1, -1], frame):
            raise SystemExit(f"{path}: the writer's output does not hold the frames it was given")


GZIP = {"compression": "gzip", "compression_opts": 1, "shuffle": True}
"""The writer's default filters for frames."""
BASELINE = "h5py"
METHODS = (BASELINE, "h5py + fsync", "h5py gzip", *WRITER_OPTIONS)


def run_case(case: ThroughputCase, work: Path) -> dict[str, list[float]]:
    frames = make_frames(case.frame_shape)
    docs = compose_documents(case, frames)
    plain: dict[str, Callable[[Path], float]] = {
        "h5py": lambda out: time_h5py(out, case, frames),
        "h5py + fsync": lambda out: time_h5py(out, case, frames, durable=True),
        "h5py gzip": lambda out: time_h5py(
            out, case, frames, compression="gzip", compression_opts=1, shuffle=True
        ),
    }
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    for repeat in range(case.repeats):
        for method in rotated(METHODS, repeat):
            if method in plain:
                out = work / "plain.h5"
                times[method].append(plain[method](out))
            else:
                out = work / "writer.h5"
                times[method].append(time_writer(work, docs, WRITER_OPTIONS[method]))
                if repeat == 0:
                    check_file(out, case, frames[(case.n_frames - 1) % len(frames)])
            settle(out)
    return times


def report(case: ThroughputCase, times: dict[str, list[float]]) -> list[str]:
    mb = case.nbytes / 1e6
    base = mb / statistics.median(times[BASELINE])
    lines = [f"{case.label} ({mb:.0f} MB), {case.repeats} repeats"]
    for method in METHODS:
        speed = mb / statistics.median(times[method])
        lines.append(_row(method, times[method], case.n_frames, f"{speed:.0f} MB/s", f"{speed / base:.2f}x"))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a smoke run: few frames, one repeat")
    parser.add_argument("--dir", type=Path, default=None, help="where to make the temporary directory")
    args = parser.parse_args(argv)
    parent = args.dir if args.dir is not None else Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-hdf5-writer-", dir=parent))
    print(f"bluesky-zarr HDF5 writer benchmark in {work}  (medians; python {sys.version.split()[0]})")
    print(COLUMNS)
    try:
        for case in QUICK if args.quick else FULL:
            print("\n".join(report(case, run_case(case, work))), flush=True)
        print("ratio: MB/s over the plain h5py write's MB/s, measured in the same run (1.00x = as fast)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
