"""How fast the Zarr writer lands camera frames next to its peers: acquire-zarr and tensorstore.

Two cases, as the writer-process issue asks: 2000 frames of 256 x 256 and 60 frames of
2048 x 2048 uint16 (noisy 12-bit values, four distinct frames reused). Every method writes the
same frames into the same layout: one frame per chunk, shards of 500 frames of 256 x 256 (64 MB,
what the writer's ``shards="auto"`` chooses) or 6 of 2048 x 2048 (48 MB, so that 60 frames fill
whole shards), compressed with blosc lz4 level 5 and bitshuffle (the writer's default for frames)
or uncompressed.

- ``plain write``: the frames' bytes written to one file with ``os.write``, the baseline; and
  ``plain write + fsync``, the same made durable, the ceiling for anything that syncs.
- ``ZarrWriter``: documents in (a run composed with ``event_model``, frames inline in its
  events), bytes on disk out: the clock runs from the start document until ``flush()`` returns
  after the stop, when every file is written and fsynced. The writer is made before the clock
  starts and closed after it stops, as a session makes one for many runs. ``process`` runs it
  with ``worker="process"`` (documents copied into a shared-memory ring, written by a writer
  process).
- ``acquire-zarr``: ``ZarrStream.append`` frame by frame, until the stream is closed.
- ``tensorstore``: a ``zarr3`` array with the sharding codec; frames written in a transaction
  committed once per shard (writing a sharded array frame by frame without one rewrites the shard
  at every frame).

The writer fsyncs every file and folder of a run at its stop, before it records the run's status;
so that the peers land their bytes as durably, their clock stops after every file and folder of
their output is fsynced too (neither syncs by itself). Each measurement runs in a fresh process
(so one method's memory or threads do not weigh on the next), the order of the methods rotates
between repeats, and the output is deleted and ``os.sync()`` run between measurements, outside
the clock. ``ratio`` is a method's MB/s over the durable plain write's (``plain write + fsync``)
in the same run; ``peak MB`` is the largest resident memory of the measuring process and its
children (the writer process included), against the frames' total size.

Run ``python benchmarks/bench_writer_peers.py`` (about 5 minutes) or ``--quick`` for a smoke run.
acquire-zarr is an optional dependency (``pip install acquire-zarr``); without it its lines say so.
``--dir`` chooses where the temporary directory goes: put it on the disk you care about.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import cycle
from pathlib import Path
from typing import Any

import numpy as np
from bench_zarr_writer import DATA_KEY, ThroughputCase, check_store, compose_documents, make_frames, settle

from bluesky_zarr import ZarrWriter


@dataclass(frozen=True)
class Case:
    frames: int
    shape: tuple[int, int]
    shard_frames: int
    repeats: int

    @property
    def nbytes(self) -> int:
        return self.frames * self.shape[0] * self.shape[1] * 2

    @property
    def label(self) -> str:
        return f"{self.frames} x {self.shape[0]}x{self.shape[1]} u2"

    def grid(self) -> tuple[int, int]:
        """The scan grid of the writer's run: rows of one shard each."""
        return (self.frames // self.shard_frames, self.shard_frames)


FULL = (Case(2000, (256, 256), 500, 5), Case(60, (2048, 2048), 6, 5))
QUICK = (Case(20, (256, 256), 10, 1), Case(4, (1024, 1024), 2, 1))


# --- the methods, each run in a process of its own ---------------------------------------------


def sync_tree(root: Path) -> None:
    """fsync every file and folder below ``root``, as the writer does at a run's stop."""
    for folder, _, files in os.walk(root):
        for name in [*files, "."]:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def plain(case: Case, frames: list[np.ndarray], out: Path, compressed: bool) -> Callable[[], None]:
    def write() -> None:
        fd = os.open(out / "plain.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for _, frame in zip(range(case.frames), cycle(frames)):
                view = frame.data.cast("B")
                while view:
                    view = view[os.write(fd, view) :]
            if compressed:  # the durable baseline: the same bytes, then fsync
                os.fsync(fd)
        finally:
            os.close(fd)

    return write


CLOSE_AFTER: list[Callable[[], None]] = []
"""What ends a writer after the clock stops (a writer process takes a moment to exit)."""


def writer(worker: str) -> Callable[[Case, list[np.ndarray], Path, bool], Callable[[], None]]:
    def prepare(case: Case, frames: list[np.ndarray], out: Path, compressed: bool) -> Callable[[], None]:
        docs = compose_documents(ThroughputCase(case.grid(), case.shape, 1), frames)
        codecs = {DATA_KEY: "blosc-lz4" if compressed else "none"}
        shards = {DATA_KEY: {"dim_0": 1, "dim_1": case.shard_frames}}

        # made before the clock starts, as a session makes it once (a writer process takes a second)
        zarr_writer = ZarrWriter(out, file_prefix="run", codecs=codecs, shards=shards, worker=worker)
        zarr_writer.flush()  # returns once a writer process has started and answered

        def write() -> None:
            for name, doc in docs:
                zarr_writer(name, doc)
            zarr_writer.flush()  # the stop is handled: every file written and fsynced
            CLOSE_AFTER.append(zarr_writer.close)

        return write

    return prepare


def check_writer(case: Case, frames: list[np.ndarray], out: Path) -> None:
    check_store(out / "run.zarr", case.grid(), frames[(case.frames - 1) % len(frames)])


def acquire_zarr(case: Case, frames: list[np.ndarray], out: Path, compressed: bool) -> Callable[[], None]:
    import acquire_zarr as aqz

    compression = (
        aqz.CompressionSettings(
            compressor=aqz.Compressor.BLOSC1, codec=aqz.CompressionCodec.BLOSC_LZ4, level=5, shuffle=2
        )
        if compressed
        else None
    )

    def dimension(name: str, kind: Any, size: int, chunk: int, shard: int) -> Any:
        return aqz.Dimension(
            name=name, kind=kind, array_size_px=size, chunk_size_px=chunk, shard_size_chunks=shard
        )

    y, x = case.shape
    array = aqz.ArraySettings(
        dimensions=[
            dimension("t", aqz.DimensionType.TIME, 0, 1, case.shard_frames),
            dimension("y", aqz.DimensionType.SPACE, y, y, 1),
            dimension("x", aqz.DimensionType.SPACE, x, x, 1),
        ],
        data_type=aqz.DataType.UINT16,
        **({"compression": compression} if compression is not None else {}),
    )
    settings = aqz.StreamSettings(store_path=str(out / "acquire.zarr"), arrays=[array])

    def write() -> None:
        stream = aqz.ZarrStream(settings)
        for _, frame in zip(range(case.frames), cycle(frames)):
            stream.append(frame)
        stream.close()
        sync_tree(out)

    return write


def tensorstore(case: Case, frames: list[np.ndarray], out: Path, compressed: bool) -> Callable[[], None]:
    import tensorstore as ts

    y, x = case.shape
    inner: list[dict[str, Any]] = [{"name": "bytes", "configuration": {"endian": "little"}}]
    if compressed:
        inner.append(
            {
                "name": "blosc",
                "configuration": {"cname": "lz4", "clevel": 5, "shuffle": "bitshuffle", "typesize": 2},
            }
        )
    spec = {
        "driver": "zarr3",
        "kvstore": {"driver": "file", "path": str(out / "tensorstore.zarr")},
        "metadata": {
            "shape": [case.frames, y, x],
            "data_type": "uint16",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [case.shard_frames, y, x]}},
            "codecs": [
                {"name": "sharding_indexed", "configuration": {"chunk_shape": [1, y, x], "codecs": inner}}
            ],
        },
        "create": True,
        "delete_existing": True,
    }

    def write() -> None:
        array = ts.open(spec).result()
        for start in range(0, case.frames, case.shard_frames):
            with ts.Transaction() as txn:
                shard = array.with_transaction(txn)
                for i in range(start, min(start + case.shard_frames, case.frames)):
                    shard[i].write(frames[i % len(frames)]).result()
        sync_tree(out)

    return write


METHODS: dict[str, Callable[[Case, list[np.ndarray], Path, bool], Callable[[], None]]] = {
    "plain write": plain,
    "ZarrWriter": writer("thread"),
    "ZarrWriter process": writer("process"),
    "acquire-zarr": acquire_zarr,
    "tensorstore": tensorstore,
}


def measure_here(method: str, compressed: bool, case: Case, out: Path) -> dict[str, float]:
    """One measurement in this process: seconds, and the peak memory of it and its children."""
    frames = make_frames(case.shape)
    write = METHODS[method](case, frames, out, compressed)
    start = time.perf_counter()
    write()
    seconds = time.perf_counter() - start
    for close in CLOSE_AFTER:
        close()
    if method.startswith("ZarrWriter"):
        check_writer(case, frames, out)
    peak = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    return {"seconds": seconds, "peak_mb": peak / 1024}


def measure(method: str, compressed: bool, case: Case, out: Path) -> dict[str, float] | str:
    """One measurement in a fresh process; a string says why it could not run."""
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, __file__, "--one", json.dumps([method, compressed, case.__dict__, str(out)])]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=1200)
    settle(out)
    if result.returncode != 0:
        missing = "No module named 'acquire_zarr'" in result.stderr
        if missing:
            return "not installed (pip install acquire-zarr)"
        raise SystemExit(f"{method}: failed\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run_case(case: Case, work: Path) -> None:
    lines = [(m, c) for m in METHODS for c in (True, False)]
    results: dict[tuple[str, bool], list[dict[str, float] | str]] = {line: [] for line in lines}
    for repeat in range(case.repeats):
        shift = repeat % len(lines)
        for method, compressed in lines[shift:] + lines[:shift]:
            results[(method, compressed)].append(measure(method, compressed, case, work / "out"))
    mb = case.nbytes / 1e6
    print(f"\n{case.label} ({mb:.0f} MB), shards of {case.shard_frames} frames, median of {case.repeats}")
    print(f"  {'method':<32}{'median s':>9}{'MB/s':>9}{'ratio':>8}{'peak MB':>9}")
    base = statistics.median(
        float(r["seconds"]) for r in results[("plain write", True)] if isinstance(r, dict)
    )
    for method, compressed in lines:
        if method == "plain write":
            name = "plain write + fsync" if compressed else method
        else:
            name = f"{method}, {'blosc lz4' if compressed else 'raw'}"
        done = [r for r in results[(method, compressed)] if isinstance(r, dict)]
        if not done:
            print(f"  {name:<32}{results[(method, compressed)][0]}")
            continue
        seconds = statistics.median(r["seconds"] for r in done)
        peak = max(r["peak_mb"] for r in done)
        print(f"  {name:<32}{seconds:>9.3f}{mb / seconds:>9.0f}{base / seconds:>7.2f}x{peak:>9.0f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a smoke run: few frames, one repeat")
    parser.add_argument("--dir", type=Path, default=None, help="where to make the temporary directory")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # one measurement, in the child process
    args = parser.parse_args(argv)
    if args.one:
        method, compressed, fields, out = json.loads(args.one)
        fields["shape"] = tuple(fields["shape"])
        print(json.dumps(measure_here(method, compressed, Case(**fields), Path(out))))
        return 0
    parent = args.dir if args.dir is not None else Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-writer-peers-", dir=parent))
    print(f"the Zarr writer and its peers, in {work} (python {sys.version.split()[0]})")
    try:
        for case in QUICK if args.quick else FULL:
            run_case(case, work)
        print("\nratio: MB/s over the MB/s of the plain write + fsync in the same run (1.00x = as fast)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
