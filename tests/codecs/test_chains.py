"""Codec chains: every preset round-trips, and the bytes CodecChain.encode makes are read by stock
readers (zarr-python, xarray, tensorstore) from an array whose zarr.json lists CodecChain.to_json()."""

from __future__ import annotations

import json
import pickle
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorstore as ts
import xarray as xr
import zarr
from zarr.codecs import (
    BloscCodec,
    BytesCodec,
    Crc32cCodec,
    GzipCodec,
    ShardingCodec,
    TransposeCodec,
    ZstdCodec,
)

from bluesky_zarr import BlueskyZarrError, CorruptDataError
from bluesky_zarr.codecs import IMAGE_DEFAULT, PRESETS, CodecChain, CodecError, _blosc, resolve_codecs

CHOICES = [None, *PRESETS, *(f"{name}+crc32c" for name in PRESETS if name != "crc32c")]
NUMERIC = ["<u2", "u1", "<i4", "<f4", "<f8", "bool", "<i8"]


def _chunk(dtype: np.dtype[Any], shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype.kind == "b":
        return rng.random(shape) < 0.3
    values = rng.poisson(rng.uniform(1, 200, shape[-1]), shape)  # counts with some structure
    return values.astype(dtype)


def _write_array(path: Path, chain: CodecChain, chunks: dict[tuple[int, ...], np.ndarray]) -> np.ndarray:
    """An array made by zarr-python with the chain's codecs, whose chunk files hold our bytes; returns
    the whole array as written."""
    chunk_shape = next(iter(chunks.values())).shape
    grid = tuple(max(k[i] for k in chunks) + 1 for i in range(len(chunk_shape)))
    shape = tuple(g * c for g, c in zip(grid, chunk_shape, strict=True))
    dims = [f"dim_{i}" for i in range(len(shape))]
    text = chain.text
    array = zarr.create_array(
        zarr.storage.LocalStore(path),
        shape=shape,
        chunks=chunk_shape,
        dtype=str if text else chain.dtype,
        fill_value="" if text else 0,
        filters=chain.filters,
        serializer=chain.serializer,
        compressors=chain.compressors,
        dimension_names=dims,
        attributes={"_ARRAY_DIMENSIONS": dims},
    )
    assert list(array.metadata.to_dict()["codecs"]) == chain.to_json()
    whole = np.empty(shape, dtype=object if text else chain.dtype)
    for key, chunk in chunks.items():
        (path / "c" / "/".join(map(str, key))).parent.mkdir(parents=True, exist_ok=True)
        (path / "c" / "/".join(map(str, key))).write_bytes(bytes(chain.encode(chunk)))
        whole[tuple(slice(k * c, (k + 1) * c) for k, c in zip(key, chunk_shape, strict=True))] = chunk
    return whole


@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize("choice", CHOICES)
def test_every_preset_round_trips(choice: str | None, dtype: str) -> None:
    chain = resolve_codecs(choice, np.dtype(dtype), where="test")
    chunk = _chunk(np.dtype(dtype), (3, 17, 31))
    decoded = chain.decode(chain.encode(chunk), chunk.shape, np.dtype(dtype))
    np.testing.assert_array_equal(decoded, chunk)
    assert decoded.dtype == np.dtype(dtype)
    assert decoded.flags.writeable
    decoded[0, 0, 0] = 1  # writable and not a view of anything else


def _open_as_dataset(path: Path) -> xr.Dataset:
    """A group holding the array, opened with plain xr.open_zarr."""
    return xr.open_zarr(path, consolidated=False, zarr_format=3)


@pytest.mark.parametrize("choice", CHOICES)
@pytest.mark.parametrize("dtype", ["<u2", "<f8"])
def test_stock_readers_agree(choice: str | None, dtype: str, tmp_path: Path) -> None:
    chain = resolve_codecs(choice, np.dtype(dtype), where="test")
    zarr.create_group(zarr.storage.LocalStore(tmp_path / "run.zarr"))
    chunks = {(i, j): _chunk(chain.dtype, (16, 24), seed=3 * i + j) for i in range(2) for j in range(3)}
    expected = _write_array(tmp_path / "run.zarr" / "image", chain, chunks)

    np.testing.assert_array_equal(zarr.open_array(tmp_path / "run.zarr" / "image", mode="r")[...], expected)
    np.testing.assert_array_equal(_open_as_dataset(tmp_path / "run.zarr")["image"].values, expected)
    spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(tmp_path / "run.zarr" / "image")}}
    np.testing.assert_array_equal(np.asarray(ts.open(spec, read=True).result().read().result()), expected)


@pytest.mark.parametrize("choice", CHOICES)
def test_text_chunks_read_back(choice: str | None, tmp_path: Path) -> None:
    """vlen-utf8 text; tensorstore has no Zarr v3 'string' data type, so only zarr-python and xarray."""
    chain = resolve_codecs(choice, np.dtype("<U8"), where="test")
    assert chain.to_json()[0]["name"] == "vlen-utf8"
    words = np.array(["", "a", "ünïcödé", "photon", "0" * 40, "x y"], dtype=object)
    chunks = {(i,): np.roll(words, i) for i in range(3)}
    zarr.create_group(zarr.storage.LocalStore(tmp_path / "run.zarr"))
    expected = _write_array(tmp_path / "run.zarr" / "label", chain, chunks)

    np.testing.assert_array_equal(chain.decode(chain.encode(words), words.shape, np.dtype(object)), words)
    assert list(zarr.open_array(tmp_path / "run.zarr" / "label", mode="r")[...]) == list(expected)
    assert list(_open_as_dataset(tmp_path / "run.zarr")["label"].values) == list(expected)


def test_a_full_codec_list_with_objects_and_dicts(tmp_path: Path) -> None:
    blosc_zstd = {"name": "blosc", "configuration": {"cname": "zstd", "clevel": 1}}
    chain = resolve_codecs(
        [TransposeCodec(order=(1, 0)), blosc_zstd, Crc32cCodec()], np.dtype("<u2"), where="t"
    )
    names = [c["name"] for c in chain.to_json()]
    assert names == ["transpose", "bytes", "blosc", "crc32c"]
    blosc = chain.to_json()[2]["configuration"]
    assert blosc["typesize"] == 2 and blosc["shuffle"] == "shuffle"  # inferred like zarr-python does
    zarr.create_group(zarr.storage.LocalStore(tmp_path / "run.zarr"))
    chunks = {(i, j): _chunk(chain.dtype, (8, 5), seed=i + 7 * j) for i in range(2) for j in range(2)}
    expected = _write_array(tmp_path / "run.zarr" / "t", chain, chunks)
    np.testing.assert_array_equal(_open_as_dataset(tmp_path / "run.zarr")["t"].values, expected)
    spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(tmp_path / "run.zarr" / "t")}}
    np.testing.assert_array_equal(np.asarray(ts.open(spec, read=True).result().read().result()), expected)


def test_objects_of_every_supported_class() -> None:
    codecs = [BytesCodec(endian="little"), BloscCodec(cname="lz4"), ZstdCodec(level=1), GzipCodec(level=1)]
    chain = resolve_codecs(codecs, np.dtype("<i2"), where="test")
    chunk = _chunk(np.dtype("<i2"), (10, 10))
    np.testing.assert_array_equal(chain.decode(chain.encode(chunk), chunk.shape, chunk.dtype), chunk)
    assert chain.filters == () and isinstance(chain.serializer, BytesCodec) and len(chain.compressors) == 3


def test_none_and_the_image_default() -> None:
    assert resolve_codecs(None, np.dtype("u2"), where="t").to_json() == [
        {"name": "bytes", "configuration": {"endian": "little"}}
    ]
    assert resolve_codecs("none", np.dtype("u2"), where="t") == resolve_codecs(
        None, np.dtype("u2"), where="t"
    )
    default = resolve_codecs(IMAGE_DEFAULT, np.dtype("u2"), where="t").to_json()[-1]
    assert default["name"] == "blosc"
    assert default["configuration"]["cname"] == "lz4" and default["configuration"]["shuffle"] == "bitshuffle"


def test_big_endian_input_is_stored_little_endian() -> None:
    chain = resolve_codecs("zstd", np.dtype(">u2"), where="t")
    chunk = np.arange(100, dtype=">u2")
    raw = resolve_codecs(None, np.dtype("<u2"), where="t").encode(chunk.astype("<u2"))
    assert bytes(resolve_codecs(None, np.dtype(">u2"), where="t").encode(chunk)) == bytes(raw)
    np.testing.assert_array_equal(chain.decode(chain.encode(chunk), (100,), np.dtype(">u2")), chunk)


def test_a_damaged_chunk_fails_its_checksum() -> None:
    chain = resolve_codecs("blosc-lz4+crc32c", np.dtype("u2"), where="run 1, data key 'cam'")
    data = bytearray(chain.encode(np.arange(1000, dtype="u2")))
    data[40] ^= 0xFF
    with pytest.raises(CorruptDataError, match=r"run 1, data key 'cam'.*crc32c"):
        chain.decode(bytes(data), (1000,), np.dtype("u2"))


def test_a_truncated_blosc_chunk_is_a_clear_error() -> None:
    chain = resolve_codecs("blosc-lz4", np.dtype("u2"), where="t")
    data = bytes(chain.encode(np.arange(1000, dtype="u2")))
    with pytest.raises(CorruptDataError):
        chain.decode(data, (999,), np.dtype("u2"))
    with pytest.raises(CorruptDataError):
        chain.decode(data[:8], (1000,), np.dtype("u2"))


# --- blosc threads ----------------------------------------------------------------------------------


def _threads_of_this_process() -> int:
    return len(list(Path("/proc/self/task").iterdir()))


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="counts threads through /proc (Linux)")
def test_blosc_runs_its_own_threads_when_called_from_a_worker_thread() -> None:
    """zarr-python turns numcodecs' blosc threads off; our chain must still use blosc's threads.

    While a worker thread compresses, a second thread watches the process's thread list: blosc's
    context functions start their threads for each call, so more threads than the two of ours
    appear. No clock is involved: the worker compresses until the watcher has seen them, or gives
    up after many chunks."""
    import numcodecs.blosc
    import zarr.codecs.blosc  # noqa: F401  (what sets numcodecs.blosc.use_threads = False)

    assert numcodecs.blosc.use_threads is False
    assert _blosc.THREADED
    chain = resolve_codecs("blosc-zstd", np.dtype("u2"), where="t", blosc_threads=4)
    assert chain.blosc_threads == 4
    chunk = _chunk(np.dtype("u2"), (2048, 1024))  # 4 MiB: 4 threads (one per MiB at most)
    baseline = _threads_of_this_process()
    done = threading.Event()
    seen: list[int] = []

    def watch() -> None:
        while not done.is_set():
            seen.append(_threads_of_this_process())

    def work() -> None:
        try:
            for _ in range(500):
                chain.encode(chunk)
                if seen and max(seen) > baseline + 2:
                    break
        finally:
            done.set()

    threads = [threading.Thread(target=watch), threading.Thread(target=work)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert max(seen) > baseline + 2, "blosc started no threads of its own"
    assert numcodecs.blosc.use_threads is False  # nothing global was changed


def test_blosc_frames_are_the_same_with_any_thread_count() -> None:
    chunk = _chunk(np.dtype("u2"), (512, 512))
    one = resolve_codecs("blosc-lz4", np.dtype("u2"), where="t", blosc_threads=1)
    four = resolve_codecs("blosc-lz4", np.dtype("u2"), where="t", blosc_threads=4)
    np.testing.assert_array_equal(one.decode(four.encode(chunk), chunk.shape, chunk.dtype), chunk)
    np.testing.assert_array_equal(four.decode(one.encode(chunk), chunk.shape, chunk.dtype), chunk)
    assert one.to_json() == four.to_json()


# --- bad configurations -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "dtype", "message"),
    [
        ("lz4", "u2", r"unknown codec preset 'lz4'; choose one of 'none', 'blosc-lz4'"),
        ("zstd+gzip", "u2", "unknown codec preset"),
        ("crc32c+crc32c", "u2", "twice"),
        ([{"name": "lzma"}], "u2", r"no zarr v3 codec named 'lzma' is registered.*register_codec\('lzma'"),
        ([{"name": "sharding_indexed", "configuration": {}}], "u2", "shards"),
        ([ShardingCodec(chunk_shape=(4,))], "u2", "cannot encode with the serializer ShardingCodec.*shards"),
        ([{"configuration": {}}], "u2", "is not a Zarr v3 codec"),
        ([{"name": "zstd", "level": 3}], "u2", "is not a Zarr v3 codec"),
        ([{"name": "zstd", "configuration": 3}], "u2", "must be a mapping"),
        ([{"name": "zstd", "configuration": {"level": "high"}}], "u2", "malformed"),
        ([{"name": "blosc", "configuration": {"cname": "brotli"}}], "u2", "malformed"),
        ([{"name": "blosc", "configuration": {"clevel": 12}}], "u2", "clevel must be 0-9"),
        ([ZstdCodec(), BytesCodec()], "u2", "out of order"),
        ([Crc32cCodec(), ZstdCodec()], "u2", "crc32c must come last"),
        ([BytesCodec()], "<U4", "needs the 'vlen-utf8' serializer"),
        ([{"name": "vlen-utf8"}], "u2", "serializer for text"),
        ([TransposeCodec(order=(0,))], "<U4", "no array->array filters"),
        (3, "u2", "must be a preset name"),
        ([3], "u2", "neither a Zarr v3 codec dict"),
    ],
)
def test_bad_configurations_are_clear_errors(choice: Any, dtype: str, message: str) -> None:
    with pytest.raises(CodecError, match=message) as caught:
        resolve_codecs(choice, np.dtype(dtype), where="run 1234, data key 'camera_image'")
    assert str(caught.value).startswith("run 1234, data key 'camera_image': ")
    assert isinstance(caught.value, BlueskyZarrError) and isinstance(caught.value, ValueError)


def test_blosc_threads_must_be_positive() -> None:
    with pytest.raises(CodecError, match="at least 1"):
        resolve_codecs("blosc-lz4", np.dtype("u2"), where="t", blosc_threads=0)


def test_default_threads_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLOSC_NTHREADS", "3")
    assert resolve_codecs("blosc-lz4", np.dtype("u2"), where="t").blosc_threads == 3
    monkeypatch.delenv("BLOSC_NTHREADS")
    assert 1 <= resolve_codecs("blosc-lz4", np.dtype("u2"), where="t").blosc_threads <= 8


def test_chains_hash_and_pickle() -> None:
    chain = resolve_codecs("blosc-zstd+crc32c", np.dtype("u2"), where="t")
    assert hash(chain) == hash(resolve_codecs("blosc-zstd+crc32c", np.dtype("u2"), where="t"))
    copy = pickle.loads(pickle.dumps(chain))
    assert copy == chain
    chunk = _chunk(np.dtype("u2"), (20, 20))
    np.testing.assert_array_equal(copy.decode(chain.encode(chunk), chunk.shape, chunk.dtype), chunk)


def test_zarr_json_is_valid_json() -> None:
    for choice in CHOICES:
        json.dumps(resolve_codecs(choice, np.dtype("u2"), where="t").to_json())


# --- filters: transpose over a reading's axes, bitround ---------------------------------------------


def test_a_transpose_is_given_over_a_readings_axes_and_keeps_the_leading_ones_in_place() -> None:
    chain = resolve_codecs(
        [TransposeCodec(order=(1, 0)), "zstd"], np.dtype("u2"), where="t", reading_dims=("y", "x"),
        leading_ndim=2,
    )  # fmt: skip
    assert chain.to_json()[0]["configuration"]["order"] == (0, 1, 3, 2)
    chunk = np.arange(2 * 3 * 4 * 5, dtype="u2").reshape(2, 3, 4, 5)
    np.testing.assert_array_equal(chain.decode(chain.encode(chunk), chunk.shape, chunk.dtype), chunk)
    assert bytes(resolve_codecs(None, np.dtype("u2"), where="t").encode(chunk.transpose(0, 1, 3, 2))) == (
        bytes(resolve_codecs([TransposeCodec(order=(0, 1, 3, 2))], np.dtype("u2"), where="t").encode(chunk))
    )
    overflow = chain.with_leading_ndim(1)  # the 1-D overflow of a grid stream
    assert overflow.to_json()[0]["configuration"]["order"] == (0, 2, 1)
    assert overflow.with_leading_ndim(2) == chain
    assert pickle.loads(pickle.dumps(overflow)) == overflow


@pytest.mark.parametrize(
    ("choice", "dims", "message"),
    [
        (
            [{"name": "transpose", "configuration": {"order": [2, 1, 0]}}],
            ("y", "x"),
            r"names 3 axes.*\(y, x\)",
        ),
        ([{"name": "transpose", "configuration": {"order": [0]}}], (), "scalars: leave it out"),
        ([{"name": "transpose", "configuration": {"order": [1, 1]}}], ("y", "x"), "not a permutation"),
    ],
)
def test_a_transpose_that_does_not_fit_a_reading_is_a_clear_error(
    choice: Any, dims: Any, message: str
) -> None:
    with pytest.raises(CodecError, match=message):
        resolve_codecs(choice, np.dtype("u2"), where="data key 'cam'", reading_dims=dims, leading_ndim=1)


@pytest.mark.parametrize("keepbits", [0, 8, 12, 23])
def test_bitround_rounds_float32_to_nearest_within_its_bound(keepbits: int) -> None:
    frame = np.random.default_rng(keepbits).random((64, 64), dtype="f4")
    chain = resolve_codecs(f"bitround-{keepbits}+blosc-zstd", np.dtype("<f4"), where="t")
    assert [c["name"] for c in chain.to_json()] == ["numcodecs.bitround", "bytes", "blosc"]
    back = chain.decode(chain.encode(frame), frame.shape, frame.dtype)
    assert np.all(np.abs(back - frame) <= np.abs(frame) * 2.0 ** -(keepbits + 1))
    assert (back == frame).all() == (keepbits == 23)


def test_bitround_takes_big_endian_floats_and_float64() -> None:
    for dtype in (">f4", ">f8", "<f8", "<f2"):
        frame = np.random.default_rng(1).random((16, 16)).astype(dtype)
        chain = resolve_codecs("bitround-7+zstd", np.dtype(dtype), where="t")
        back = chain.decode(chain.encode(frame), frame.shape, frame.dtype)
        assert back.dtype == np.dtype(dtype)
        assert np.all(np.abs(back - frame) <= np.abs(frame) * 2.0**-8), dtype


def test_bitround_chunks_are_what_zarr_python_writes(tmp_path: Path) -> None:
    frame = np.random.default_rng(3).random((8, 32, 32), dtype="f4")
    chain = resolve_codecs("bitround-10+zstd", np.dtype("<f4"), where="t")
    with warnings.catch_warnings():  # zarr-python before 3.2 warns that numcodecs.* is not in the spec
        warnings.filterwarnings("ignore", message="Numcodecs codecs are not in the Zarr version 3")
        whole = _write_array(tmp_path / "a.zarr", chain, {(i, 0, 0): frame[i : i + 1] for i in range(8)})
        np.testing.assert_array_equal(zarr.open_array(tmp_path / "a.zarr")[...], chain.decode(
            chain.encode(whole), whole.shape, whole.dtype
        ))  # fmt: skip


@pytest.mark.parametrize(
    ("choice", "message"),
    [
        ("bitround-x+zstd", "is not a bitround filter; write 'bitround-<keepbits>'"),
        ("bitround-12", "rounds but does not compress.*'bitround-12\\+blosc-zstd'"),
        ("zstd+bitround-12", "unknown codec preset.*begin with 'bitround-<keepbits>\\+'"),
        ("bitround-8+bitround-8+zstd", "unknown codec preset"),
        ([{"name": "numcodecs.bitround", "configuration": {}}], "bitround needs the number of mantissa"),
        ([{"name": "numcodecs.bitround", "configuration": {"keepbits": -1}}], "a whole number 0 or more"),
        ([{"name": "numcodecs.bitround", "configuration": {"keepbits": "8"}}], "a whole number 0 or more"),
    ],
)
def test_bad_bitround_forms_are_clear_errors(choice: Any, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        check_codecs_and_resolve(choice)


def check_codecs_and_resolve(choice: Any) -> None:
    from bluesky_zarr.codecs import check_codecs

    check_codecs(choice, np.dtype("<f4"), where="data key 'image'")
    resolve_codecs(choice, np.dtype("<f4"), where="data key 'image'")
