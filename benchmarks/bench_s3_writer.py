"""How fast the Zarr writer writes into an S3 bucket, and how many objects (and requests) a run costs.

A grid run of camera frames (``event_model.compose_run``, frames made before the clock starts) is
fed to ``ZarrWriter("s3://bucket/...")`` on a local S3 server (moto on 127.0.0.1, in this
process); the time runs from the first document to the return of ``close()``, when every object
is in place. In the same run, into the same server, with the same client (obstore), the script
uploads the same bytes by hand: every object the writer left, PUT once each, one after the other
(``plain upload``). ``ratio`` is the plain upload's time over the writer's (1.00x: the writer
costs no more than uploading its own objects once; below that, what it pays for re-uploading
growing objects at each flush, reading back partial chunks, metadata and consolidation).

Cases: 256 x 256 and 2048 x 2048 uint16 frames, one object per frame (``chunks``) and sharded
(``shards="auto"``: tens of MB per object). Frames are uncompressed, so MB/s are of the frames'
own bytes. ``objects`` is the run's objects in the bucket, ``PUTs`` the requests the writer made
(counted by a pass-through proxy of the test suite, which costs both methods the same hop).

moto keeps objects in memory and is written in Python: the figures compare the writer with the
plain upload on this machine, not with a real object store, whose latency per request is far
higher (so the object count matters more there than here).

Run ``python benchmarks/bench_s3_writer.py`` (about a minute) or ``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import cycle
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's package, and the tests' S3 server

import event_model  # noqa: E402
import numpy as np  # noqa: E402
import obstore  # noqa: E402
from obstore.store import S3Store  # noqa: E402
from s3 import KEY_ID, REGION, SECRET, fault_proxy, make_bucket, moto_server, s3_client  # noqa: E402

from bluesky_zarr import ZarrWriter  # noqa: E402

DATA_KEY = "camera_image"


@dataclass(frozen=True)
class Case:
    grid: tuple[int, int]
    frame_shape: tuple[int, int]
    sharded: bool

    @property
    def nbytes(self) -> int:
        return self.grid[0] * self.grid[1] * self.frame_shape[0] * self.frame_shape[1] * 2

    @property
    def label(self) -> str:
        y, x = self.frame_shape
        return f"{self.grid[0] * self.grid[1]} x {y}x{x} u2, {'shards' if self.sharded else 'chunks'}"


FULL = [
    Case((10, 20), (256, 256), False),
    Case((10, 20), (256, 256), True),
    Case((3, 8), (2048, 2048), False),
    Case((3, 8), (2048, 2048), True),
]
QUICK = [Case((2, 3), (256, 256), False), Case((2, 3), (256, 256), True), Case((1, 2), (2048, 2048), True)]


def documents(case: Case) -> Iterator[tuple[str, Any]]:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 4096, size=case.frame_shape, dtype="<u2") for _ in range(3)]
    bundle = event_model.compose_run(metadata={"shape": list(case.grid), "plan_name": "bench_grid"})
    yield "start", bundle.start_doc
    key = {"source": "bench", "dtype": "array", "dtype_numpy": "<u2", "shape": list(case.frame_shape),
           "dims": ["y", "x"]}  # fmt: skip
    descriptor = bundle.compose_descriptor(name="primary", data_keys={DATA_KEY: key})
    yield "descriptor", descriptor.descriptor_doc
    now = time.time()
    for i, frame in zip(range(case.grid[0] * case.grid[1]), cycle(frames)):
        yield (
            "event",
            descriptor.compose_event(
                data={DATA_KEY: frame}, timestamps={DATA_KEY: now}, seq_num=i + 1, time=now, validate=False
            ),
        )
    yield "stop", bundle.compose_stop()


def measure(case: Case, endpoint: str, proxy: str, faults: Any) -> dict[str, float]:
    bucket = make_bucket(endpoint)
    docs = list(documents(case))
    options: dict[str, Any] = {"codecs": {DATA_KEY: "none"}}
    if case.sharded:
        options["shards"] = {DATA_KEY: "auto"}
    puts = faults.forwarded["PUT"]
    writer = ZarrWriter(f"s3://{bucket}/runs", storage_options={"endpoint_url": proxy}, **options)
    t0 = time.perf_counter()
    for name, doc in docs:
        writer(name, doc)
    writer.close()
    writer_time = time.perf_counter() - t0
    puts = faults.forwarded["PUT"] - puts
    client = s3_client(endpoint)
    objects = [
        item["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for item in page.get("Contents", [])
    ]
    payloads = [client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in objects]
    store = S3Store(bucket, endpoint=proxy, region=REGION, client_options={"allow_http": True})
    t0 = time.perf_counter()
    for key, data in zip(objects, payloads, strict=True):
        obstore.put(store, f"plain/{key}", data, use_multipart=False)
    plain_time = time.perf_counter() - t0
    return {"writer": writer_time, "plain": plain_time, "objects": len(objects), "puts": puts,
            "bytes": sum(map(len, payloads))}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", help="unused: the server keeps objects in memory")
    args = parser.parse_args()
    os.environ.update(AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET, AWS_REGION=REGION)
    cases, repeats = (QUICK, 1) if args.quick else (FULL, args.repeats)
    print(f"{'case':32} {'writer MB/s':>11} {'plain MB/s':>10} {'ratio':>6} {'objects':>7} {'PUTs':>5}")
    with moto_server() as endpoint, fault_proxy(endpoint) as (proxy, faults):
        for case in cases:
            runs = [measure(case, endpoint, proxy, faults) for _ in range(repeats)]
            writer = statistics.median(r["writer"] for r in runs)
            plain = statistics.median(r["plain"] for r in runs)
            mb = case.nbytes / 1e6
            print(
                f"{case.label:32} {mb / writer:11.1f} {mb / plain:10.1f} {plain / writer:5.2f}x "
                f"{int(runs[0]['objects']):7d} {int(runs[0]['puts']):5d}"
            )
    print("ratio: the plain upload's time over the writer's, same bytes, same client, same server")


if __name__ == "__main__":
    main()
