"""The Anscombe codec: the error bound over every count of the input dtype for any gain, offset and
beta; zarr-python and xarray read it (also in a fresh process, through the entry point); the chain
API encodes the same bytes as zarr-python; bad parameters are clear errors."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st
from stock import in_fresh_python
from zarr.codecs import BloscCodec, ZstdCodec

from bluesky_zarr.codecs import AnscombeCodec, CodecError, resolve_codecs


def error_bound(counts: np.ndarray, zero_level: float, gain: float, beta: float) -> np.ndarray:
    """The largest error a count may get back: ``beta / 2`` noise sigmas at its level, a second-order
    term for the change of sigma across a cell, and half a count for rounding to whole counts.

    In photons ``u``, code cells are ``beta`` wide in ``f(u)``; ``du/df = sigma(u) = sqrt(|u| + 3/8)``
    and ``d sigma / df = 1/2``, so across half a cell ``|du| <= (beta/2) sigma(u) + beta**2 / 16``."""
    photons = (counts.astype(np.float64) - zero_level) / gain
    return gain * (beta / 2 * np.sqrt(np.abs(photons) + 3 / 8) + beta**2 / 16) + 0.5 + 1e-9


def all_counts(dtype: str) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.arange(info.min, info.max + 1).astype(dtype)


def back_is_exact_at_saturation(codec: AnscombeCodec, dtype: str) -> bool:
    top = np.array([np.iinfo(dtype).max], dtype=dtype)
    return bool(codec.decode_array(codec.encode_array(top), np.dtype(dtype))[0] == top[0])


gains = st.floats(0.5, 10.0)
zero_levels = st.floats(0.0, 2000.0)
betas = st.floats(0.1, 1.0)
dtypes = st.sampled_from(["uint8", "uint16", "int16", "int8"])


@settings(max_examples=60, deadline=None)
@given(gain=gains, zero_level=zero_levels, beta=betas, dtype=dtypes)
def test_every_count_round_trips_within_the_bound(
    gain: float, zero_level: float, beta: float, dtype: str
) -> None:
    codec = AnscombeCodec(zero_level=zero_level, conversion_gain=gain, beta=beta)
    counts = all_counts(dtype)  # the full range: far below the zero level, and saturation
    codes = codec.encode_array(counts)
    assert codes.dtype == np.dtype(codec.encoded_dtype_for(dtype))
    assert int(codes.min()) == 0 and int(codes.max()) == codec.code_count(dtype) - 1
    assert back_is_exact_at_saturation(codec, dtype)
    assert np.all(np.diff(codes.astype(np.int64)[np.argsort(counts, kind="stable")]) >= 0)  # monotonic
    back = codec.decode_array(codes, np.dtype(dtype))
    assert back.dtype == np.dtype(dtype)
    error = np.abs(back.astype(np.float64) - counts)
    bound = error_bound(counts, zero_level, gain, beta)
    worst = int(np.argmax(error - bound))
    assert error[worst] <= bound[worst], f"count {counts[worst]} came back as {back[worst]}"


@settings(max_examples=30, deadline=None)
@given(gain=gains, zero_level=zero_levels, beta=betas, dtype=dtypes, seed=st.integers(0, 2**32 - 1))
def test_frames_round_trip_through_the_chain(
    gain: float, zero_level: float, beta: float, dtype: str, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    counts = rng.integers(info.min, info.max, size=(7, 9), endpoint=True).astype(dtype)
    counts.flat[:2] = [info.min, info.max]
    codec = AnscombeCodec(zero_level=zero_level, conversion_gain=gain, beta=beta)
    chain = resolve_codecs([codec, BloscCodec(cname="zstd", clevel=3)], np.dtype(dtype), where="t")
    back = chain.decode(chain.encode(counts), counts.shape, np.dtype(dtype))
    assert np.all(np.abs(back.astype(float) - counts) <= error_bound(counts, zero_level, gain, beta))
    # decoding is a projection: decoded counts encode to the same codes
    np.testing.assert_array_equal(codec.encode_array(back), codec.encode_array(counts))


def test_the_codes_of_a_simple_case() -> None:
    """Gain 1, zero level 0, beta 1: codes are round(2 (sqrt(x + 3/8) - sqrt(3/8))), and the
    saturated 255 gets the code after the last ordinary one (that of 255, 31)."""
    codec = AnscombeCodec(zero_level=0, conversion_gain=1, beta=1)
    counts = np.array([0, 1, 2, 3, 10, 100, 254], dtype="u1")
    expected = np.floor(2 * (np.sqrt(counts + 3 / 8) - np.sqrt(3 / 8)) + 0.5)
    np.testing.assert_array_equal(codec.encode_array(counts), expected)
    assert codec.encode_array(np.array([255], dtype="u1"))[0] == 32 == codec.code_count("u1") - 1


def test_values_below_the_zero_level_keep_their_order_and_sign() -> None:
    codec = AnscombeCodec(zero_level=100, conversion_gain=2.5, beta=0.5)
    counts = np.arange(0, 200, dtype="u2")
    back = codec.decode_array(codec.encode_array(counts), np.dtype("u2"))
    assert np.all(np.diff(back.astype(int)) >= 0)
    assert np.all(back[:90] < 100)  # below the zero level stays below it: nothing wraps
    assert abs(int(back[0])) <= 10  # and the far end comes back near 0, not as garbage


def test_saturation_comes_back_as_the_maximum() -> None:
    """A saturated pixel (the dtype's maximum) has a code of its own and stays saturated."""
    for dtype in ["u1", "u2", "i1", "i2"]:
        top = np.iinfo(dtype).max
        for codec in [
            AnscombeCodec(zero_level=100, conversion_gain=1, beta=1),
            AnscombeCodec(conversion_gain=9),
        ]:
            counts = np.array([top - 1, top], dtype=dtype)
            codes = codec.encode_array(counts)
            assert codes[1] == codec.code_count(dtype) - 1 and codes[0] < codes[1]
            assert codec.decode_array(codes, np.dtype(dtype))[1] == top


def test_the_code_dtype_is_the_smallest_that_fits() -> None:
    assert AnscombeCodec(zero_level=10, conversion_gain=1, beta=0.5).encoded_dtype_for("uint8") == "uint8"
    assert AnscombeCodec(zero_level=100, conversion_gain=1, beta=0.5).encoded_dtype_for("uint16") == "uint16"
    assert AnscombeCodec(zero_level=0, conversion_gain=10, beta=1).encoded_dtype_for("uint16") == "uint8"
    with pytest.raises(CodecError, match=r"needs 1061 codes.*more than encoded_dtype 'uint8' holds \(256\)"):
        AnscombeCodec(zero_level=100, conversion_gain=1, beta=0.5, encoded_dtype="uint8").encoded_dtype_for(
            "u2"
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"conversion_gain": 0}, "conversion_gain must be a positive finite number"),
        ({"conversion_gain": float("nan")}, "conversion_gain must be a positive finite number"),
        ({"beta": -0.5}, "beta must be a positive finite number"),
        ({"beta": "half"}, "beta must be a number"),
        ({"zero_level": float("inf")}, "zero_level must be finite"),
        ({"encoded_dtype": "float32"}, "encoded_dtype must be 'uint8' or 'uint16'"),
        ({"encoded_dtype": "nonsense"}, "is not a data type"),
    ],
)
def test_bad_parameters_are_clear_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(CodecError, match=message):
        AnscombeCodec(**kwargs)


@pytest.mark.parametrize("dtype", ["float32", "float64", "uint32", "int64", "<U4", "bool"])
def test_the_codec_refuses_what_is_not_camera_counts(dtype: str) -> None:
    codec = AnscombeCodec(zero_level=100, conversion_gain=2)
    with pytest.raises(
        CodecError, match=r"run 7, data key 'x': .*(integer camera counts|no array->array filters)"
    ):
        resolve_codecs([codec, {"name": "zstd"}], np.dtype(dtype), where="run 7, data key 'x'")
    if dtype != "<U4":
        with pytest.raises(CodecError, match="integer camera counts"):
            zarr.create_array({}, shape=(4,), dtype=dtype, filters=[codec])


def test_malformed_anscombe_dicts_are_clear_errors() -> None:
    with pytest.raises(CodecError, match=r"unknown configuration \['gain'\]"):
        resolve_codecs(
            [{"name": "bluesky_zarr.anscombe", "configuration": {"gain": 2}}], np.dtype("u2"), where="t"
        )
    with pytest.raises(CodecError, match="conversion_gain must be"):
        resolve_codecs(
            [{"name": "bluesky_zarr.anscombe", "configuration": {"conversion_gain": -1}}],
            np.dtype("u2"),
            where="t",
        )


def test_dicts_and_objects_make_the_same_chain() -> None:
    codec = AnscombeCodec(zero_level=100, conversion_gain=2.5, beta=0.5)
    by_object = resolve_codecs([codec, ZstdCodec(level=3)], np.dtype("u2"), where="t")
    by_dict = resolve_codecs(
        [codec.to_dict(), {"name": "zstd", "configuration": {"level": 3}}], np.dtype("u2"), where="t"
    )
    assert by_object.to_json() == by_dict.to_json()
    assert by_object.to_json()[0] == {
        "name": "bluesky_zarr.anscombe",
        "configuration": {
            "zero_level": 100.0,
            "conversion_gain": 2.5,
            "beta": 0.5,
            "encoded_dtype": "uint16",
        },
    }
    # blosc after the filter sees the codes, not the counts
    blosc = resolve_codecs(
        [AnscombeCodec(zero_level=0, conversion_gain=10, beta=1), "blosc"], np.dtype("u2"), where="t"
    )
    assert blosc.to_json()[2]["configuration"]["typesize"] == 1
    assert blosc.to_json()[1] == {"name": "bytes"}


def _frames(gain: float, zero_level: float, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[: shape[-2], : shape[-1]]
    scene = 2 + 300 * np.exp(
        -((x - shape[-1] / 2) ** 2 + (y - shape[-2] / 2) ** 2) / (2 * (shape[-1] / 5) ** 2)
    )
    counts = zero_level + gain * rng.poisson(scene, shape) + rng.normal(0, 1.5, shape)
    return np.clip(np.rint(counts), 0, 65535).astype("<u2")


def test_zarr_python_and_our_chain_write_the_same_chunks(tmp_path: Path) -> None:
    codec = AnscombeCodec(zero_level=100, conversion_gain=2.5, beta=0.5)
    frames = _frames(2.5, 100, (3, 32, 48))
    store = zarr.storage.LocalStore(tmp_path / "by_zarr.zarr")
    by_zarr = zarr.create_array(
        store, shape=frames.shape, chunks=(1, 32, 48), dtype="<u2", filters=[codec],
        compressors=[ZstdCodec(level=3)], fill_value=0,
    )  # fmt: skip
    by_zarr[...] = frames
    chain = resolve_codecs([codec, ZstdCodec(level=3)], np.dtype("<u2"), where="t")
    assert list(by_zarr.metadata.to_dict()["codecs"]) == chain.to_json()
    for i in range(3):
        stored = (tmp_path / "by_zarr.zarr" / "c" / str(i) / "0" / "0").read_bytes()
        assert stored == bytes(chain.encode(frames[i : i + 1]))
        np.testing.assert_array_equal(chain.decode(stored, (1, 32, 48), np.dtype("<u2")), by_zarr[i : i + 1])


def _write_with_chain(path: Path, frames: np.ndarray, choice: Any) -> np.ndarray:
    """A group with one array ``image`` whose chunk files come from CodecChain.encode; returns what
    the chain decodes (the expected values)."""
    chain = resolve_codecs(choice, frames.dtype, where="t")
    zarr.create_group(zarr.storage.LocalStore(path))
    dims = ["frame", "y", "x"]
    zarr.create_array(
        zarr.storage.LocalStore(path / "image"), shape=frames.shape, chunks=(1, *frames.shape[1:]),
        dtype=frames.dtype, filters=chain.filters, serializer=chain.serializer, compressors=chain.compressors,
        fill_value=0, dimension_names=dims, attributes={"_ARRAY_DIMENSIONS": dims},
    )  # fmt: skip
    metadata = json.loads((path / "image" / "zarr.json").read_text())
    assert metadata["codecs"] == chain.to_json()
    decoded = np.empty_like(frames)
    for i, frame in enumerate(frames):
        data = chain.encode(frame[None])
        (path / "image" / "c" / str(i) / "0").mkdir(parents=True)
        (path / "image" / "c" / str(i) / "0" / "0").write_bytes(bytes(data))
        decoded[i] = chain.decode(data, (1, *frames.shape[1:]), frames.dtype)[0]
    return decoded


def test_xarray_reads_anscombe_chunks(tmp_path: Path) -> None:
    frames = _frames(1.0, 100, (4, 40, 40))
    codec = AnscombeCodec(zero_level=100, conversion_gain=1.0, beta=0.5)
    expected = _write_with_chain(tmp_path / "run.zarr", frames, [codec, "blosc"])
    by_xarray = xr.open_zarr(tmp_path / "run.zarr", consolidated=False, zarr_format=3)["image"].values
    np.testing.assert_array_equal(by_xarray, expected)
    assert np.all(np.abs(expected.astype(float) - frames) <= error_bound(frames, 100, 1.0, 0.5))


def test_a_fresh_process_reads_it_without_importing_bluesky_zarr(tmp_path: Path) -> None:
    """The ``zarr.codecs`` entry point: a stock reader finds the codec by name by itself."""
    frames = _frames(2.5, 100, (2, 16, 24))
    codec = AnscombeCodec(zero_level=100, conversion_gain=2.5, beta=0.5)
    expected = _write_with_chain(tmp_path / "run.zarr", frames, [codec, {"name": "zstd"}])
    np.save(tmp_path / "expected.npy", expected)
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import xarray as xr
        import zarr

        assert not any(name.startswith("bluesky_zarr") for name in sys.modules)
        expected = np.load({str(tmp_path / "expected.npy")!r})
        by_zarr = zarr.open_array({str(tmp_path / "run.zarr" / "image")!r}, mode="r")[...]
        by_xarray = xr.open_zarr({str(tmp_path / "run.zarr")!r}, consolidated=False)["image"].values
        np.testing.assert_array_equal(by_zarr, expected)
        np.testing.assert_array_equal(by_xarray, expected)
        print("read", type(zarr.open_array({str(tmp_path / "run.zarr" / "image")!r}).filters[0]).__module__)
        """
    )
    stdout = in_fresh_python(script)
    assert "read bluesky_zarr.codecs._anscombe" in stdout


def test_codes_carry_about_three_bits_per_pixel() -> None:
    """The entropy of the codes of Poisson counts is that of a quantized unit Gaussian at step beta,
    ``log2(sqrt(2 pi e) / beta)`` = 3.05 bits at beta 0.5, whatever the signal; the counts carry
    ``log2(sqrt(2 pi e mean))`` = 4.9 bits at a mean of 50 photons."""

    def entropy(values: np.ndarray) -> float:
        _, counts = np.unique(values, return_counts=True)
        p = counts / counts.sum()
        return float(-(p * np.log2(p)).sum())

    rng = np.random.default_rng(5)
    counts = (100 + rng.poisson(50.0, 200_000)).astype("u2")
    codec = AnscombeCodec(zero_level=100, conversion_gain=1.0, beta=0.5)
    assert entropy(counts) == pytest.approx(4.87, abs=0.05)
    assert entropy(codec.encode_array(counts)) == pytest.approx(3.05, abs=0.05)
