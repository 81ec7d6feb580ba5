"""The prediction codec: lossless for every input, a scene taken out, read by stock zarr readers."""

from __future__ import annotations

import textwrap
from pathlib import Path

import bluesky.plans as bp
import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from ophyd.sim import motor1, motor2
from stand_ins import FrameCounter
from stock import in_fresh_python, open_stream
from zarr.codecs import BloscCodec, ZstdCodec

from bluesky_zarr import ZarrWriter
from bluesky_zarr.codecs import AnscombeCodec, CodecError, PredictionCodec, resolve_codecs

CODEC = PredictionCodec()


def entropy(values: np.ndarray) -> float:
    _, counts = np.unique(values, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


@settings(max_examples=300, deadline=None)
@given(
    hnp.arrays(
        dtype=st.sampled_from(["u1", "u2", "u4", "i1", "i2", "i4", ">u2", ">i2"]),
        shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=11),
    )
)
def test_every_array_round_trips_exactly(values: np.ndarray) -> None:
    stored = CODEC.encode_array(values)
    assert stored.shape == values.shape
    assert stored.dtype == np.dtype(f"u{values.dtype.itemsize}")
    back = CODEC.decode_array(stored, values.dtype)
    np.testing.assert_array_equal(back, values)
    assert back.dtype == values.dtype.newbyteorder("=")


def test_the_extremes_of_each_dtype_round_trip() -> None:
    """Neighbours at opposite ends of the range make the largest differences, modulo the width."""
    for dtype in ("u1", "u2", "u4", "i1", "i2", "i4"):
        info = np.iinfo(dtype)
        values = np.resize(np.array([info.min, info.max, 0, info.max, info.min], dtype=dtype), (9, 13))
        values[::3] = info.max
        np.testing.assert_array_equal(CODEC.decode_array(CODEC.encode_array(values), np.dtype(dtype)), values)


def test_a_smooth_scene_leaves_only_small_numbers() -> None:
    """A constant frame leaves only its first value. A plane is predicted to within rounding away
    from the edges, but for the base rows (every fourth), which keep four rows of its slope."""
    y, x = np.mgrid[:64, :48]
    constant = np.full((64, 48), 1234, dtype="u2")
    stored = CODEC.encode_array(constant)
    assert stored[0, 0] == 2 * 1234 and np.count_nonzero(stored) == 1
    plane = (1000 + 3 * y + 2 * x).astype("u2")
    inner = CODEC.encode_array(plane)[4:-4, 4:-4].astype(int)
    np.testing.assert_array_equal(inner[::4], 2 * 4 * 3)  # zigzag of +12
    assert np.delete(inner, np.s_[::4], axis=0).max() <= 2  # zigzag of at most +-1 (rounding of the means)


def test_signed_values_around_zero_are_neighbours() -> None:
    """-1 and 0 differ by one (offset binary), not by the width of the type."""
    values = np.random.default_rng(0).integers(-3, 3, (32, 32)).astype("i2")
    assert int(CODEC.encode_array(values)[1:].max()) < 16


def test_prediction_takes_the_scene_out_of_anscombe_codes() -> None:
    """The codes of a bright spot on a dark background: their entropy is the scene's and the
    noise's; the prediction leaves about the noise's (3.05 bits at beta 0.5) and a little more."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[:256, :256]
    scene = 3 + 600 * np.exp(-((x - 128) ** 2 + (y - 128) ** 2) / (2 * 45**2))
    frames = (100 + rng.poisson(scene, (4, 256, 256))).astype("u2")
    codes = AnscombeCodec(zero_level=100, conversion_gain=1.0, beta=0.5).encode_array(frames)
    assert entropy(codes) > 5.5
    assert entropy(CODEC.encode_array(codes)) == pytest.approx(3.25, abs=0.15)


def test_what_it_cannot_predict_is_a_clear_error() -> None:
    for dtype in ("f4", "f8", "u8", "bool"):
        with pytest.raises(
            CodecError, match=rf"prediction codec: predicts integer values .* not {np.dtype(dtype)}"
        ):
            resolve_codecs([CODEC, "blosc"], np.dtype(dtype), where="data key 'x'")
    with pytest.raises(CodecError, match="takes no configuration"):
        resolve_codecs(
            [{"name": "bluesky_zarr.prediction", "configuration": {"rows": 4}}], np.dtype("u2"), where="t"
        )
    with pytest.raises(CodecError, match="does not match its chunks"):
        CODEC.decode_array(np.zeros((4, 4), dtype="u1"), np.dtype("u2"))


def test_dicts_and_objects_make_the_same_chain() -> None:
    by_dict = resolve_codecs(
        [{"name": "bluesky_zarr.prediction"}, {"name": "zstd", "configuration": {"level": 1}}],
        np.dtype("u2"),
        where="t",
    )
    by_object = resolve_codecs([PredictionCodec(), ZstdCodec(level=1)], np.dtype("u2"), where="t")
    assert by_dict.to_json() == by_object.to_json()
    assert by_dict.to_json()[0] == {"name": "bluesky_zarr.prediction"}


def test_zarr_python_and_our_chain_write_the_same_chunks(tmp_path: Path) -> None:
    frames = np.random.default_rng(1).poisson(200, (3, 40, 56)).astype("<u2")
    blosc = BloscCodec(cname="zstd", clevel=1, shuffle="shuffle")
    by_zarr = zarr.create_array(
        zarr.storage.LocalStore(tmp_path / "by_zarr.zarr"), shape=frames.shape, chunks=(1, 40, 56),
        dtype="<u2", filters=[CODEC], compressors=[blosc], fill_value=0,
    )  # fmt: skip
    by_zarr[...] = frames
    chain = resolve_codecs([CODEC, blosc], np.dtype("<u2"), where="t", blosc_threads=1)
    assert list(by_zarr.metadata.to_dict()["codecs"]) == chain.to_json()
    for i in range(3):
        stored = (tmp_path / "by_zarr.zarr" / "c" / str(i) / "0" / "0").read_bytes()
        np.testing.assert_array_equal(chain.decode(stored, (1, 40, 56), np.dtype("<u2"))[0], frames[i])
        np.testing.assert_array_equal(
            zarr.open_array(tmp_path / "by_zarr.zarr")[i],
            chain.decode(chain.encode(frames[i : i + 1]), (1, 40, 56), frames.dtype)[0],
        )


class SpotCamera(FrameCounter):
    """Poisson frames of a bright spot: offset 100 counts, 1 count per photon."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng(2)
        y, x = np.mgrid[:96, :128]
        self.scene = 3 + 500 * np.exp(-((x - 64) ** 2 + (y - 48) ** 2) / (2 * 20**2))
        super().__init__(shape=(96, 128))

    def _frame(self) -> np.ndarray:
        return (100 + self.rng.poisson(self.scene)).astype("<u2")


def test_a_scan_through_the_writer_reads_back_in_a_fresh_process(RE, record, tmp_path: Path) -> None:
    """Lossless counts and Anscombe codes, each with the prediction, on a real grid scan; the store
    is read by xarray and zarr-python in a process that never imported bluesky_zarr (the entry
    points find both codecs)."""
    blosc = {"name": "blosc", "configuration": {"cname": "zstd", "clevel": 1, "shuffle": "shuffle"}}
    anscombe = AnscombeCodec(zero_level=100, conversion_gain=1.0, beta=0.5)
    RE.subscribe(ZarrWriter(tmp_path, codecs={"cam": [anscombe, CODEC, blosc]}))
    RE.subscribe(ZarrWriter(tmp_path / "lossless", codecs={"cam": [CODEC, blosc]}))
    (uid,) = RE(bp.grid_scan([SpotCamera()], motor1, -1, 1, 3, motor2, 0, 3, 4))
    taken = np.stack([d["data"]["cam"] for n, d in record if n == "event"])
    np.save(tmp_path / "taken.npy", taken)
    expected = anscombe.decode_array(anscombe.encode_array(taken), taken.dtype)
    np.save(tmp_path / "expected.npy", expected)
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        import xarray as xr
        import zarr

        assert not any(name.startswith("bluesky_zarr") for name in sys.modules)
        for store, wanted in (("{uid}.zarr", "expected.npy"), ("lossless/{uid}.zarr", "taken.npy")):
            primary = xr.open_zarr({str(tmp_path)!r} + "/" + store + "/primary", consolidated=False)
            got = primary["cam"].values.reshape(12, 96, 128)
            np.testing.assert_array_equal(got, np.load({str(tmp_path)!r} + "/" + wanted))
            array = zarr.open_array({str(tmp_path)!r} + "/" + store + "/primary/cam")
            print([c["name"] for c in array.metadata.to_dict()["codecs"]])
        """
    )
    stdout = in_fresh_python(script)
    assert "['bluesky_zarr.anscombe', 'bluesky_zarr.prediction', 'bytes', 'blosc']" in stdout
    assert "['bluesky_zarr.prediction', 'bytes', 'blosc']" in stdout
    assert open_stream(tmp_path / f"{uid}.zarr")["cam"].shape == (3, 4, 96, 128)
