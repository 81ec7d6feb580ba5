"""How small and how fast each codec preset makes camera frames, lossless and with the Anscombe codec.

Frames are simulated with known physics: a static scene of dark background (3 photons), a bright
spot (up to 600 photons) and a band (150 photons more), Poisson shot noise, a conversion gain of
1.0 or 2.5 ADU per photon, an offset of 100 ADU, 1.5 ADU of Gaussian read noise, rounded to uint16.
The scene's photon levels are quantized to 40 values, so that the noise entropy can be computed
exactly from the frames (see below).

For every method the script prints:

- ``ratio``: raw bytes / stored bytes; ``bits/px``: stored bits per pixel (16 / ratio).
- ``enc MB/s``, ``dec MB/s``: raw megabytes per second through :meth:`CodecChain.encode` and
  :meth:`CodecChain.decode`, called one frame at a time on a worker thread (as the writer does),
  median over repeats; the order of the methods rotates between repeats, so a noisy neighbour on a
  shared machine does not always land on the same one.
- ``x memcpy``: that speed as a fraction of a plain copy of the same frames measured in the same
  run (the baseline: 1.00 would be as fast as copying memory). ``none`` encodes by handing out a
  view of the frame, so its encode speed is not a real speed.

Two bounds close each section, as ``ratio`` and ``bits/px``:

- ``noise entropy, counts``: the entropy of a pixel's counts given the scene, ``H(x | level)``,
  averaged over the frame: the floor for lossless coding, which even a coder that knew the scene
  exactly could not go below (real coders must also learn the scene from the frame).
- ``noise entropy, codes``: the same for the Anscombe codes; about ``log2(sqrt(2 pi e) / beta)``
  = 3.05 bits at beta 0.5, at every signal level above a few photons.

A last section compares blosc with one thread and with the default thread count on large frames
(2048 x 2048), where threads pay off if the machine has idle cores.

After timing, one frame of every method is written as a chunk of a Zarr array whose ``zarr.json``
lists the chain's codecs, and read back with zarr-python (untimed), so every figure is of bytes a
stock reader decodes.

Run ``python benchmarks/bench_compression.py`` (about a minute) or ``--quick`` for a smoke run of a
few seconds; ``--dir`` chooses where the read-back arrays go.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

from bluesky_zarr.codecs import AnscombeCodec, CodecChain, PredictionCodec, resolve_codecs

OFFSET = 100.0
READ_NOISE = 1.5
BETA = 0.5
FLAT = 50.0
"""Photons per pixel of the flat frames: no scene, only noise, whose entropy is the bound."""
DTYPE = np.dtype("<u2")


@dataclass(frozen=True)
class Settings:
    frames: int
    shape: tuple[int, int]
    repeats: int
    gains: tuple[float, ...]
    large: tuple[int, tuple[int, int]]
    """Frames and shape for the blosc threads comparison."""


FULL = Settings(frames=100, shape=(512, 512), repeats=5, gains=(1.0, 2.5), large=(12, (2048, 2048)))
QUICK = Settings(frames=4, shape=(128, 128), repeats=1, gains=(1.0, 2.5), large=(2, (1024, 1024)))


def scene(shape: tuple[int, int]) -> np.ndarray:
    """Mean photons per pixel, quantized to 40 levels between 1 and 1000."""
    y, x = np.mgrid[: shape[0], : shape[1]]
    ny, nx = shape
    spot = 600 * np.exp(-((x - nx / 2) ** 2 + (y - ny / 2) ** 2) / (2 * (0.18 * nx) ** 2))
    photons = 3 + spot + 150 * (x > 0.8 * nx)
    levels = np.geomspace(1, 1000, 40)
    return levels[np.abs(np.log(photons)[..., None] - np.log(levels)).argmin(axis=-1)]


def simulate(
    settings: Settings, gain: float, seed: int = 0, flat: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``frames`` of counts and the scene (photon level of every pixel): :func:`scene`, or ``flat``
    photons everywhere."""
    rng = np.random.default_rng(seed)
    photons = scene(settings.shape) if flat is None else np.full(settings.shape, flat)
    shape = (settings.frames, *settings.shape)
    counts = OFFSET + gain * rng.poisson(photons, shape) + rng.normal(0.0, READ_NOISE, shape)
    return np.clip(np.rint(counts), 0, np.iinfo(DTYPE).max).astype(DTYPE), photons


def noise_entropy(values: np.ndarray, photons: np.ndarray) -> float:
    """Mean over pixels of the entropy (bits) of a pixel's values given its scene level."""
    total = 0.0
    for level in np.unique(photons):
        mask = photons == level
        _, counts = np.unique(values[:, mask], return_counts=True)
        p = counts / counts.sum()
        total += mask.mean() * float(-(p * np.log2(p)).sum())
    return total


@dataclass(frozen=True)
class Method:
    name: str
    chain: CodecChain | None
    """None for the baseline (a plain copy)."""


FAST_ZSTD = BloscCodec(cname="zstd", clevel=1, shuffle="shuffle", blocksize=512 * 1024)
"""What suits codes and predicted values: zstd's entropy stage, few matches (level 1), and the
bytes of each value apart (byte shuffle), in blocks of 512 KiB."""


def methods(gain: float, threads: int) -> list[Method]:
    # zero level as the photon-transfer estimate gives it: the offset less read_noise**2 / gain
    anscombe = AnscombeCodec(zero_level=OFFSET - READ_NOISE**2 / gain, conversion_gain=gain, beta=BETA)

    def chain(choice: Any, blosc_threads: int = threads) -> CodecChain:
        return resolve_codecs(choice, DTYPE, where="benchmark", blosc_threads=blosc_threads)

    return [
        Method("memcpy (baseline)", None),
        Method("none", chain("none")),
        Method("crc32c", chain("crc32c")),
        Method("blosc-lz4", chain("blosc-lz4")),
        Method("blosc-lz4+crc32c", chain("blosc-lz4+crc32c")),
        Method("blosc-zstd", chain("blosc-zstd")),
        Method("blosc-zlib", chain("blosc-zlib")),
        Method("zstd", chain("zstd")),
        Method("gzip", chain("gzip")),
        Method("prediction + zstd 1", chain([PredictionCodec(), FAST_ZSTD])),
        Method(
            "anscombe + blosc lz4", chain([anscombe, BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle")])
        ),
        Method(
            "anscombe + blosc zstd",
            chain([anscombe, BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")]),
        ),
        Method("anscombe + zstd", chain([anscombe, ZstdCodec(level=3)])),
        Method("anscombe + zstd 1", chain([anscombe, FAST_ZSTD])),
        Method("anscombe + prediction + zstd 1", chain([anscombe, PredictionCodec(), FAST_ZSTD])),
    ]


def _time(function: Callable[[], Any]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def measure(
    chain: CodecChain | None, frames: np.ndarray, worker: ThreadPoolExecutor
) -> tuple[int, float, float]:
    """Stored bytes, encode seconds and decode seconds for all frames through ``chain`` (``None``: a
    plain copy, the baseline), on the worker thread."""
    if chain is None:
        buffer = np.empty_like(frames[0])

        def copy_all() -> None:
            for frame in frames:
                np.copyto(buffer, frame)

        seconds = worker.submit(_time, copy_all).result()
        return frames.nbytes, seconds, seconds
    encoded: list[bytes | memoryview] = []

    def encode_all() -> None:
        encoded.extend(chain.encode(frame) for frame in frames)

    def decode_all() -> None:
        for data in encoded:
            chain.decode(data, frames.shape[1:], frames.dtype)

    encode_seconds = worker.submit(_time, encode_all).result()
    decode_seconds = worker.submit(_time, decode_all).result()
    stored = sum(memoryview(data).nbytes for data in encoded)
    return stored, encode_seconds, decode_seconds


def measure_rotated(
    chains: Sequence[tuple[str, CodecChain | None]],
    frames: np.ndarray,
    worker: ThreadPoolExecutor,
    repeats: int,
) -> dict[str, list[tuple[int, float, float]]]:
    """:func:`measure` of every named chain, ``repeats`` times, by name; the order rotates between
    repeats, so that a noisy neighbour on a shared machine does not always land on the same one."""
    results: dict[str, list[tuple[int, float, float]]] = {name: [] for name, _ in chains}
    for repeat in range(repeats):
        shift = repeat % len(chains)
        for name, chain in [*chains[shift:], *chains[:shift]]:
            results[name].append(measure(chain, frames, worker))
    return results


def read_back(method: Method, frame: np.ndarray, directory: Path) -> None:
    """One frame as a chunk of a zarr array with the chain's codecs, read back with zarr-python."""
    chain = method.chain
    if chain is None:
        return
    path = directory / method.name.replace(" ", "_").replace(",", "").replace("+", "_")
    zarr.create_array(
        zarr.storage.LocalStore(path), shape=frame.shape, chunks=frame.shape, dtype=DTYPE, fill_value=0,
        filters=chain.filters, serializer=chain.serializer, compressors=chain.compressors,
    )  # fmt: skip
    (path / "c" / "0").mkdir(parents=True)
    (path / "c" / "0" / "0").write_bytes(bytes(chain.encode(frame)))
    expected = chain.decode(chain.encode(frame), frame.shape, DTYPE)
    if not np.array_equal(zarr.open_array(path, mode="r")[...], expected):
        raise SystemExit(f"zarr-python reads {method.name} differently from CodecChain.decode")


def run_gain(
    settings: Settings,
    gain: float,
    directory: Path,
    worker: ThreadPoolExecutor,
    threads: int,
    flat: float | None = None,
) -> None:
    frames, photons = simulate(settings, gain, flat=flat)
    chosen = methods(gain, threads)
    raw_mb = frames.nbytes / 1e6
    results = measure_rotated([(m.name, m.chain) for m in chosen], frames, worker, settings.repeats)
    for method in chosen:
        read_back(method, frames[0], directory / f"gain_{gain}_{flat}")
    codec = next(f for m in chosen if m.chain for f in m.chain.filters if isinstance(f, AnscombeCodec))
    counts_bits = noise_entropy(frames, photons)
    codes_bits = noise_entropy(codec.encode_array(frames), photons)

    pixels = frames.size
    what = "the spot and band scene" if flat is None else f"a flat {flat:g} photons"
    print(
        f"\n{what}, gain {gain} ADU/photon, offset {OFFSET:.0f} ADU, read noise {READ_NOISE} ADU: "
        f"{settings.frames} frames {settings.shape[0]}x{settings.shape[1]} uint16 ({raw_mb:.1f} MB), "
        f"blosc threads {threads}, median of {settings.repeats}"
    )
    columns = ("ratio", "bits/px", "of bound", "enc MB/s", "dec MB/s", "enc x memcpy", "dec x memcpy")
    header = f"{'method':<32}" + "".join(f"{c:>13}" for c in columns)
    print(header)
    print("-" * len(header))
    base_encode = statistics.median(r[1] for r in results[chosen[0].name])
    for method in chosen:
        stored = results[method.name][0][0]
        encode = statistics.median(r[1] for r in results[method.name])
        decode = statistics.median(r[2] for r in results[method.name])
        lossy = method.chain is not None and codec in method.chain.filters
        bound = 16 / (codes_bits if lossy else counts_bits)
        ratio = frames.nbytes / stored
        figures = (ratio, 8 * stored / pixels, ratio / bound, raw_mb / encode, raw_mb / decode)
        print(
            f"{method.name:<32}"
            + "".join(f"{f:>13.2f}" for f in figures[:3])
            + "".join(f"{f:>13.0f}" for f in figures[3:])
            + f"{base_encode / encode:>13.3f}{base_encode / decode:>13.3f}"
        )
    for name, bits in (
        ("noise entropy, counts", counts_bits),
        (f"noise entropy, codes b={BETA}", codes_bits),
    ):
        print(f"{name:<32}{16 / bits:>13.2f}{bits:>13.2f}{1:>13.2f}")


def run_threads(settings: Settings, worker: ThreadPoolExecutor, threads: int) -> None:
    """blosc-lz4 and blosc-zstd on large frames with one thread and with the default count."""
    count, shape = settings.large
    frames, _ = simulate(Settings(count, shape, 1, (1.0,), settings.large), 1.0, seed=1)
    raw_mb = frames.nbytes / 1e6
    chosen = [
        Method(
            f"{preset}, {n} thread{'s' if n > 1 else ''}",
            resolve_codecs(preset, DTYPE, where="b", blosc_threads=n),
        )
        for preset in ("blosc-lz4", "blosc-zstd")
        for n in sorted({1, max(2, threads)})
    ]
    results = measure_rotated([(m.name, m.chain) for m in chosen], frames, worker, settings.repeats)
    used = min(threads, max(1, frames[0].nbytes // (1024 * 1024)))  # what CodecChain does
    print(
        f"\nblosc threads: {count} frames {shape[0]}x{shape[1]} uint16 ({raw_mb:.1f} MB), gain 1; the "
        f"default uses {used} threads on frames of this size; the ratio is of speeds against one thread"
    )
    header = f"{'method':<28}" + "".join(
        f"{c:>13}" for c in ("enc MB/s", "dec MB/s", "enc ratio", "dec ratio")
    )
    print(header)
    print("-" * len(header))
    for method in chosen:
        single = method.name.split(",")[0] + ", 1 thread"
        encode = statistics.median(r[1] for r in results[method.name])
        decode = statistics.median(r[2] for r in results[method.name])
        encode_1 = statistics.median(r[1] for r in results[single])
        decode_1 = statistics.median(r[2] for r in results[single])
        print(
            f"{method.name:<28}{raw_mb / encode:>13.0f}{raw_mb / decode:>13.0f}"
            f"{encode_1 / encode:>13.2f}{decode_1 / decode:>13.2f}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--dir", type=Path, default=None, help="where the read-back arrays go")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    threads = resolve_codecs("blosc-lz4", DTYPE, where="benchmark").blosc_threads
    with tempfile.TemporaryDirectory(dir=args.dir) as name, ThreadPoolExecutor(1) as worker:
        for gain in settings.gains:
            run_gain(settings, gain, Path(name), worker, threads)
        run_gain(settings, 1.0, Path(name), worker, threads, flat=FLAT)
        run_threads(settings, worker, threads)
    print(
        "\nratio: raw bytes / stored bytes; x memcpy: speed / the speed of copying the same frames "
        "in this run; noise entropy: the floor, what even a coder that knew the scene would need; "
        "of bound: the ratio over the ratio of that floor (the codes' floor for Anscombe methods, "
        "the counts' for lossless ones)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
