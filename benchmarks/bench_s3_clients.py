"""obstore against s3fs, into a local S3 server (moto on 127.0.0.1): the figures of ADR 0003.

Both clients write the same objects into the same server in the same run: many small objects
(a chunk each, what an unsharded array makes), a few big ones (a shard each), and read them back.
The server is the same for both and is in the same process, so the figures compare the clients'
overhead per request and per byte, not a network.

    python benchmarks/bench_s3_clients.py [--small 300] [--big 4] [--big-mib 16] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's package, and the tests' S3 server

from s3 import KEY_ID, REGION, SECRET, make_bucket, moto_server  # noqa: E402


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=300, help="small objects (64 KiB each)")
    parser.add_argument("--big", type=int, default=4, help="big objects")
    parser.add_argument("--big-mib", type=int, default=16, help="MiB per big object")
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--dir", help="unused: everything goes to the server's memory")
    args = parser.parse_args()
    if args.quick:
        args.small, args.big, args.big_mib = 20, 1, 2
    os.environ.update(AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET, AWS_REGION=REGION)
    small = os.urandom(64 * 1024)
    big = os.urandom(args.big_mib * 1024**2)

    import obstore
    import s3fs
    from obstore.store import S3Store

    with moto_server() as endpoint:
        results: dict[str, dict[str, float]] = {}

        bucket = make_bucket(endpoint)
        store = S3Store(bucket, endpoint=endpoint, client_options={"allow_http": True}, region=REGION)

        def obstore_small() -> None:
            for i in range(args.small):
                obstore.put(store, f"small/{i}", small)

        def obstore_big() -> None:
            for i in range(args.big):
                obstore.put(store, f"big/{i}", big)

        def obstore_big_single() -> None:
            for i in range(args.big):
                obstore.put(store, f"big1/{i}", big, use_multipart=False)

        def obstore_read() -> None:
            for i in range(args.small):
                obstore.get(store, f"small/{i}").bytes()

        results["obstore"] = {
            "small": timed(obstore_small),
            "big": timed(obstore_big),
            "read": timed(obstore_read),
        }
        single = timed(obstore_big_single)

        bucket = make_bucket(endpoint)
        fs = s3fs.S3FileSystem(endpoint_url=endpoint, key=KEY_ID, secret=SECRET, skip_instance_cache=True)

        def s3fs_small() -> None:
            for i in range(args.small):
                fs.pipe_file(f"{bucket}/small/{i}", small)

        def s3fs_big() -> None:
            for i in range(args.big):
                with fs.open(f"{bucket}/big/{i}", "wb") as file:
                    file.write(big)

        def s3fs_read() -> None:
            for i in range(args.small):
                fs.cat_file(f"{bucket}/small/{i}")

        results["s3fs"] = {"small": timed(s3fs_small), "big": timed(s3fs_big), "read": timed(s3fs_read)}

    print(f"{'client':8} {'small PUT/s':>12} {'big MB/s':>10} {'small GET/s':>12}")
    for name, r in results.items():
        mb = args.big * len(big) / 1e6
        print(
            f"{name:8} {args.small / r['small']:12.0f} {mb / r['big']:10.1f} {args.small / r['read']:12.0f}"
        )
    print(
        f"obstore big PUT in one request (use_multipart=False): {args.big * len(big) / 1e6 / single:.1f} MB/s"
    )
    o, s = results["obstore"], results["s3fs"]
    ratios = {what: o[what] / s[what] for what in ("small", "big", "read")}
    print("obstore/s3fs time ratio: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
