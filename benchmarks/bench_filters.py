"""What the array->array filters buy: bitround on normalized float32 frames, transpose on raw frames.

Frames are simulated as in ``bench_compression.py``: a scene of dark background (3 photons), a
bright spot (up to 600 photons) and a band (150 photons more), Poisson shot noise, 1.5 ADU of
read noise on an offset of 100 ADU, gain 1 ADU/photon, here seen through a flat field (a
vignetting that falls from 1.0 at the centre to 0.7 in the corners). They are stored two ways:

- **normalized** (``float32``): ``(counts - offset) / flat``, scaled to 0..1: what a reduction
  step writes. All 23 mantissa bits are filled, mostly with noise, so lossless compressors gain
  little; ``bitround-<k>`` keeps ``k`` of them (rounding to nearest, relative error at most
  ``2**-(k+1)``) and zeroes the rest, which blosc's bitshuffle then drops.
- **raw** (``uint16`` counts): the transpose codec stores each frame as (x, y) instead of
  (y, x) inside its chunk; readers get (y, x) back.

For every method the script prints ``ratio`` (raw bytes / stored bytes), ``bits/px``,
``enc MB/s`` and ``dec MB/s`` (raw megabytes per second through ``CodecChain.encode`` and
``decode``, one frame at a time on a worker thread as the writer does, median over repeats, the
order of methods rotating between repeats) and ``x memcpy`` (that speed over the speed of a plain
copy of the same frames measured in the same run). For bitround it also prints the largest
relative error measured, next to its bound.

After timing, one frame of every method is written as a chunk of a Zarr array whose ``zarr.json``
lists the chain's codecs and read back with zarr-python (untimed).

Run ``python benchmarks/bench_filters.py`` (about a minute) or ``--quick`` for a smoke run of a few
seconds; ``--dir`` chooses where the read-back arrays go.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from bench_compression import measure_rotated

from bluesky_zarr.codecs import CodecChain, resolve_codecs

OFFSET = 100.0
READ_NOISE = 1.5
GAIN = 1.0
TRANSPOSE = {"name": "transpose", "configuration": {"order": [1, 0]}}


@dataclass(frozen=True)
class Settings:
    frames: int
    shape: tuple[int, int]
    repeats: int


FULL = Settings(frames=100, shape=(512, 512), repeats=5)
QUICK = Settings(frames=4, shape=(128, 128), repeats=1)


def scene(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Mean photons per pixel, and the flat field (1.0 at the centre, 0.7 in the corners)."""
    y, x = np.mgrid[: shape[0], : shape[1]]
    ny, nx = shape
    spot = 600 * np.exp(-((x - nx / 2) ** 2 + (y - ny / 2) ** 2) / (2 * (0.18 * nx) ** 2))
    photons = 3 + spot + 150 * (x > 0.8 * nx)
    r2 = ((x - nx / 2) / (nx / 2)) ** 2 + ((y - ny / 2) / (ny / 2)) ** 2
    return photons, 1.0 - 0.15 * r2


def simulate(settings: Settings, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Raw ``uint16`` frames, and the same frames flat-fielded and normalized to 0..1 as float32."""
    rng = np.random.default_rng(seed)
    photons, flat = scene(settings.shape)
    shape = (settings.frames, *settings.shape)
    counts = OFFSET + GAIN * rng.poisson(photons * flat, shape) + rng.normal(0.0, READ_NOISE, shape)
    raw = np.clip(np.rint(counts), 0, 65535).astype("<u2")
    corrected = (raw - OFFSET) / (GAIN * flat)
    normalized = np.clip(corrected / corrected.max(), 0.0, 1.0).astype("<f4")
    return raw, normalized


@dataclass(frozen=True)
class Method:
    name: str
    chain: CodecChain | None
    """None for the baseline (a plain copy)."""
    keepbits: int | None = None


def float_methods(threads: int) -> list[Method]:
    def chain(choice: Any) -> CodecChain:
        return resolve_codecs(choice, np.dtype("<f4"), where="benchmark", blosc_threads=threads)

    return [
        Method("memcpy (baseline)", None),
        Method("blosc-lz4", chain("blosc-lz4")),
        Method("blosc-zstd", chain("blosc-zstd")),
        *(
            Method(f"bitround-{k}+blosc-zstd", chain(f"bitround-{k}+blosc-zstd"), keepbits=k)
            for k in (16, 12, 8)
        ),
        Method("bitround-12+blosc-lz4", chain("bitround-12+blosc-lz4"), keepbits=12),
    ]


def raw_methods(threads: int) -> list[Method]:
    def chain(choice: Any) -> CodecChain:
        return resolve_codecs(choice, np.dtype("<u2"), where="benchmark", blosc_threads=threads)

    blosc_zstd = {"name": "blosc", "configuration": {"cname": "zstd", "clevel": 3, "shuffle": "bitshuffle"}}
    return [
        Method("memcpy (baseline)", None),
        Method("blosc-zstd", chain("blosc-zstd")),
        Method("transpose + blosc-zstd", chain([TRANSPOSE, blosc_zstd])),
        Method("zstd", chain("zstd")),
        Method("transpose + zstd", chain([TRANSPOSE, {"name": "zstd", "configuration": {"level": 3}}])),
    ]


def read_back(method: Method, frame: np.ndarray, directory: Path) -> float:
    """One frame as a chunk of a zarr array with the chain's codecs, read back with zarr-python;
    returns the largest relative error of what zarr-python reads (0 for lossless methods)."""
    chain = method.chain
    if chain is None:
        return 0.0
    path = directory / "".join(c if c.isalnum() or c == "-" else "_" for c in method.name)
    with warnings.catch_warnings():  # zarr-python: numcodecs.* codecs are not in the Zarr v3 spec
        warnings.filterwarnings("ignore", message="Numcodecs codecs are not in the Zarr version 3")
        zarr.create_array(
            zarr.storage.LocalStore(path), shape=frame.shape, chunks=frame.shape, dtype=frame.dtype,
            fill_value=0, filters=chain.filters, serializer=chain.serializer, compressors=chain.compressors,
        )  # fmt: skip
        (path / "c" / "0").mkdir(parents=True)
        (path / "c" / "0" / "0").write_bytes(bytes(chain.encode(frame)))
        stored = zarr.open_array(path, mode="r")[...]
    if not np.array_equal(stored, chain.decode(chain.encode(frame), frame.shape, frame.dtype)):
        raise SystemExit(f"zarr-python reads {method.name} differently from CodecChain.decode")
    nonzero = frame != 0
    error = np.abs(stored.astype("f8") - frame)[nonzero] / np.abs(frame[nonzero].astype("f8"))
    if method.keepbits is None and error.max() > 0:
        raise SystemExit(f"{method.name} is lossless, yet zarr-python reads other values")
    return float(error.max())


def run(title: str, frames: np.ndarray, chosen: list[Method], directory: Path, settings: Settings) -> None:
    worker = ThreadPoolExecutor(1)
    with worker:
        results = measure_rotated([(m.name, m.chain) for m in chosen], frames, worker, settings.repeats)
    errors = {m.name: read_back(m, frames[0], directory) for m in chosen}
    raw_mb = frames.nbytes / 1e6
    print(
        f"\n{title}: {settings.frames} frames {settings.shape[0]}x{settings.shape[1]} {frames.dtype} "
        f"({raw_mb:.1f} MB), median of {settings.repeats}"
    )
    columns = ("ratio", "bits/px", "enc MB/s", "dec MB/s", "enc x memcpy", "dec x memcpy", "max rel err")
    header = f"{'method':<26}" + "".join(f"{c:>13}" for c in columns) + "    bound"
    print(header)
    print("-" * len(header))
    base = statistics.median(r[1] for r in results[chosen[0].name])
    for method in chosen:
        stored = results[method.name][0][0]
        encode = statistics.median(r[1] for r in results[method.name])
        decode = statistics.median(r[2] for r in results[method.name])
        bound = f"    {2.0 ** -(method.keepbits + 1):.1e}" if method.keepbits is not None else ""
        print(
            f"{method.name:<26}{frames.nbytes / stored:>13.2f}{8 * stored / frames.size:>13.2f}"
            f"{raw_mb / encode:>13.0f}{raw_mb / decode:>13.0f}{base / encode:>13.3f}{base / decode:>13.3f}"
            f"{errors[method.name]:>13.1e}{bound}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--dir", type=Path, default=None, help="where the read-back arrays go")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    threads = resolve_codecs("blosc-lz4", np.dtype("<u2"), where="benchmark").blosc_threads
    raw, normalized = simulate(settings)
    with tempfile.TemporaryDirectory(dir=args.dir) as name:
        run("normalized float32 frames (flat-fielded, 0..1)", normalized, float_methods(threads),
            Path(name) / "float", settings)  # fmt: skip
        run("raw uint16 frames", raw, raw_methods(threads), Path(name) / "raw", settings)
    print(
        f"\nratio: raw bytes / stored bytes; x memcpy: speed / the speed of copying the same frames in "
        f"this run; blosc threads {threads}; bound: bitround's largest relative error, 2**-(keepbits+1)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
