"""Chunk shapes per data key, shards filled frame by frame, codecs: read back with xarray and tensorstore."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from bluesky import plans as bp
from ophyd.sim import det, motor1, motor2
from stand_ins import FrameCounter
from stock import assert_tensorstore_agrees, open_stream, root_attrs, tensorstore_read

from bluesky_zarr import ConfigurationError, ZarrWriter, propose_chunks
from bluesky_zarr.codecs import estimate_anscombe_parameters
from bluesky_zarr.layout import event_chunks
from bluesky_zarr.sinks.zarr import _array_writer


def grid_scan(cam: FrameCounter) -> object:
    return bp.grid_scan([cam, det], motor1, -1, 1, 3, motor2, 0, 3, 4)


def expected_frames(cam_shape: tuple[int, int]) -> np.ndarray:
    """FrameCounter's frames are all 2, 3, ... (it reads once when made): a 3 x 4 grid, in order."""
    counts = np.arange(2, 14, dtype="<u2").reshape(3, 4)
    return np.broadcast_to(counts[:, :, None, None], (3, 4, *cam_shape)).copy()


def zarr_json(store: Path, array: str) -> dict:
    return json.loads((store / "primary" / array / "zarr.json").read_text())


FRAME = (256, 128)
"""64 KiB frames of uint16: the size from which frames get a chunk each by default."""


def run_grid(RE, tmp_path: Path, shape=FRAME, **options) -> Path:
    cam = FrameCounter(shape=shape)
    RE.subscribe(ZarrWriter(tmp_path, **options))
    (uid,) = RE(grid_scan(cam))
    return tmp_path / f"{uid}.zarr"


# --- chunk shapes ---------------------------------------------------------------------------------


def test_spectral_chunks_gather_every_wavelength_of_a_position(RE, tmp_path):
    """One chunk per position holding the whole first axis: assembled from 3 events, written once."""
    store = run_grid(RE, tmp_path, chunks={"cam": {"motor1": -1}})
    meta = zarr_json(store, "cam")
    assert meta["chunk_grid"]["configuration"]["chunk_shape"] == [3, 1, *FRAME]
    chunk_files = sorted(p.name for p in (store / "primary" / "cam").iterdir() if p.name.startswith("c."))
    assert chunk_files == [f"c.0.{j}.0.0" for j in range(4)]
    ds = open_stream(store)
    np.testing.assert_array_equal(ds["cam"].values, expected_frames(FRAME))
    assert ds["written"].values.all()
    assert_tensorstore_agrees(store)


def test_a_reading_may_span_several_chunks(RE, tmp_path):
    """Tiles of 4 rows over 6-row frames: the edge tile is padded and read back cut to the array."""
    store = run_grid(RE, tmp_path, shape=(6, 4), chunks={"cam": (1, 2, 4, 4)})
    assert zarr_json(store, "cam")["chunk_grid"]["configuration"]["chunk_shape"] == [1, 2, 4, 4]
    ds = open_stream(store)
    np.testing.assert_array_equal(ds["cam"].values, expected_frames((6, 4)))
    np.testing.assert_array_equal(tensorstore_read(store, "primary", "cam"), expected_frames((6, 4)))


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"chunks": {"cam": (1, 1, 6)}}, ["3 size(s)", "4 dimension(s)", "'cam'"]),
        ({"chunks": {"cam": {"motor2": 5}}}, ["larger than the array's 4", "'motor2'"]),
        ({"chunks": {"cam": {"nope": 1}}}, ["'nope'", "dimensions are"]),
        (
            {"shards": {"cam": {"motor2": 3}}, "chunks": {"cam": {"motor2": 2}}},
            ["not a multiple", "'motor2'"],
        ),
        ({"shards": {"cam": {"motor2": 8}}}, ["larger than the array's 4"]),
    ],
)
def test_chunks_that_do_not_fit_the_array_fail_before_any_array_is_written(RE, tmp_path, options, words):
    cam = FrameCounter()
    RE.subscribe(ZarrWriter(tmp_path, **options))
    with pytest.raises(ConfigurationError) as caught:
        RE(grid_scan(cam))
    for word in words:
        assert word in str(caught.value)
    (store,) = tmp_path.glob("*.zarr")
    assert not (store / "primary").exists()
    assert root_attrs(store)["status"] == "fail"


@pytest.mark.parametrize(
    "options",
    [
        {"chunks": {"cam": {"motor1": 0}}},
        {"chunks": {"cam": (1, -2, 6, 4)}},
        {"chunks": {"cam": "big"}},
        {"shards": {"cam": "huge"}},
        {"chunks": ["cam"]},
        {"codecs": {"cam": "lz5"}},
        {"codecs": {"cam": [{"name": "blosc", "configuration": {"cname": "nope"}}]}},
    ],
)
def test_sizes_that_are_not_sizes_fail_when_the_writer_is_made(tmp_path, options):
    with pytest.raises(ConfigurationError):
        ZarrWriter(tmp_path, **options)
    assert not list(tmp_path.iterdir())


def test_default_chunks_are_unchanged():
    assert event_chunks((1000, 1000), 8) == (131, 1000)
    assert event_chunks((0,), 8) == (131072,)
    assert event_chunks((4, 4), 256 * 256 * 2) == (1, 1)


def test_propose_chunks_aims_at_the_target_object_size():
    frames = propose_chunks({"wavelength": 50, "position": 100}, {"y": 512, "x": 512}, "uint16")
    assert frames.chunks == {"wavelength": 1, "position": 1, "y": 512, "x": 512}
    # 512 KiB frames: 128 fit in 64 MiB, so a shard holds every position of one wavelength
    assert frames.shards == {"wavelength": 1, "position": 100, "y": 512, "x": 512}
    assert frames.shard_bytes == 100 * 512 * 512 * 2
    assert frames.objects == 50
    big = propose_chunks({"position": 10}, {"y": 4096, "x": 4096}, "float64")
    assert big.shards is None and big.objects == 10
    endless = propose_chunks({"time": 0}, {}, "float64")
    assert endless.chunks == {"time": 131072}
    assert endless.shards == {"time": 131072 * 64} and endless.objects is None


# --- shards ---------------------------------------------------------------------------------------


def test_frames_stream_into_shards_along_the_scan(RE, tmp_path):
    store = run_grid(RE, tmp_path, shards={"cam": {"motor2": -1}})
    meta = zarr_json(store, "cam")
    assert meta["chunk_grid"]["configuration"]["chunk_shape"] == [1, 4, *FRAME]
    (sharding,) = meta["codecs"]
    assert sharding["name"] == "sharding_indexed"
    assert sharding["configuration"]["chunk_shape"] == [1, 1, *FRAME]
    assert sharding["configuration"]["index_codecs"][-1] == {"name": "crc32c"}
    objects = sorted(p.name for p in (store / "primary" / "cam").iterdir() if p.name.startswith("c."))
    assert objects == ["c.0.0.0.0", "c.1.0.0.0", "c.2.0.0.0"]
    assert not list((store / "primary" / "cam").glob(".*"))  # no temporary left behind
    np.testing.assert_array_equal(open_stream(store)["cam"].values, expected_frames(FRAME))
    assert_tensorstore_agrees(store)


def test_auto_shards_gather_small_frames_into_few_objects(RE, tmp_path):
    store = run_grid(RE, tmp_path, shards={"cam": "auto"})
    objects = [p for p in (store / "primary" / "cam").iterdir() if p.name.startswith("c.")]
    assert len(objects) == 1
    np.testing.assert_array_equal(open_stream(store)["cam"].values, expected_frames(FRAME))
    assert_tensorstore_agrees(store)


def test_shards_along_time_for_a_stream_without_a_grid(RE, tmp_path):
    cam = FrameCounter(shape=FRAME)
    RE.subscribe(ZarrWriter(tmp_path, shards={"cam": {"time": 4}}))
    (uid,) = RE(bp.count([cam], num=10))
    store = tmp_path / f"{uid}.zarr"
    objects = sorted(p.name for p in (store / "primary" / "cam").iterdir() if p.name.startswith("c."))
    assert objects == ["c.0.0.0", "c.1.0.0", "c.2.0.0"]
    np.testing.assert_array_equal(open_stream(store)["cam"].values[:, 0, 0], np.arange(2, 12))
    assert_tensorstore_agrees(store)


def test_an_open_shard_is_readable_and_truthful_while_it_fills(RE, tmp_path):
    """After each event and a flush, every published frame reads back and ``written`` says which."""
    cam = FrameCounter(shape=FRAME)
    writer = ZarrWriter(tmp_path, shards={"cam": {"motor1": -1, "motor2": -1}})
    RE.subscribe(writer)
    seen: list[np.ndarray] = []

    def check(name, doc):
        if name == "event":
            writer.flush()
            store = next(tmp_path.glob("*.zarr"))
            ds = open_stream(store)
            seen.append(ds["written"].values.copy())
            frames = ds["cam"].values[ds["written"].values]
            np.testing.assert_array_equal(frames[:, 0, 0], np.arange(2, doc["seq_num"] + 2))

    RE.subscribe(check)
    RE(grid_scan(cam))
    assert [int(mask.sum()) for mask in seen] == list(range(1, 13))


@pytest.mark.parametrize("shards", [(2, 2, 2, 2), (1, 2, 2, 2)], ids=["open shard", "finished shard"])
def test_a_point_measured_again_replaces_its_chunk_in_its_shard(tmp_path, shards):
    """Pause/resume: the newer frame is in the shard (open still, or closed and opened again), the
    older one in the overflow, and nothing else of the shard changes."""
    import event_model

    run = event_model.compose_run(metadata={"shape": [2, 2], "motors": ["m1", "m2"]})
    desc = run.compose_descriptor(
        name="primary",
        data_keys={"cam": {"source": "sim", "dtype": "array", "shape": [2, 2], "dtype_numpy": "<u2"}},
    )
    documents = [("start", run.start_doc), ("descriptor", desc.descriptor_doc)]
    for seq, value in [(1, 1), (2, 2), (2, 22), (3, 3), (4, 4)]:
        event = desc.compose_event(
            data={"cam": np.full((2, 2), value, "<u2")}, timestamps={"cam": 0.0}, seq_num=seq
        )
        documents.append(("event", event))
    documents.append(("stop", run.compose_stop()))
    writer = ZarrWriter(tmp_path, chunks={"cam": (1, 1, 2, 2)}, shards={"cam": shards})
    for name, doc in documents:
        writer(name, doc)
        writer.flush()  # a flush after each event: a complete shard is finished at once
    writer.close()
    store = tmp_path / f"{run.start_doc['uid']}.zarr"
    ds = open_stream(store)
    np.testing.assert_array_equal(ds["cam"].values[:, :, 0, 0], [[1, 22], [3, 4]])
    np.testing.assert_array_equal(open_stream(store, "primary/overflow")["cam"].values[:, 0, 0], [2])
    assert_tensorstore_agrees(store)


CRASHING_SHARD_SCAN = textwrap.dedent(
    """
    import sys
    import numpy as np
    from bluesky import RunEngine, plans as bp
    from ophyd.sim import motor1
    sys.path.insert(0, {tests!r})
    from stand_ins import FrameCounter
    from bluesky_zarr import ZarrWriter

    RE = RunEngine({{}})
    writer = ZarrWriter(sys.argv[1], shards={{"cam": {{"motor1": -1}}}}, flush_interval=0.05)
    RE.subscribe(writer)
    def announce(name, doc):
        if name == "event":
            writer.flush()
            print(doc["seq_num"], flush=True)
            if doc["seq_num"] >= 5:
                sys.stdin.readline()  # hold still until the test kills the process
    RE.subscribe(announce)
    RE(bp.grid_scan([FrameCounter(shape=(256, 128))], motor1, 0, 1, 10))
    """
)


def test_killed_process_leaves_every_published_frame_of_an_open_shard(tmp_path):
    script = CRASHING_SHARD_SCAN.format(tests=str(Path(__file__).parent))
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    with subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if int(line) >= 5:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    (store,) = tmp_path.glob("*.zarr")
    assert root_attrs(store)["status"] == "running"
    ds = open_stream(store)
    written = ds["written"].values
    assert written.sum() >= 5
    np.testing.assert_array_equal(ds["cam"].values[written][:, 0, 0], np.arange(2, written.sum() + 2))
    np.testing.assert_array_equal(
        tensorstore_read(store, "primary", "cam")[written], ds["cam"].values[written]
    )


# --- codecs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["none", "blosc-lz4", "blosc-zstd", "zstd", "gzip", "blosc-lz4+crc32c"])
def test_every_codec_reads_back_with_xarray_and_tensorstore(RE, tmp_path, codec):
    store = run_grid(RE, tmp_path, shape=(64, 48), codecs={"cam": codec, "det": codec})
    np.testing.assert_array_equal(open_stream(store)["cam"].values, expected_frames((64, 48)))
    assert_tensorstore_agrees(store)


def test_frames_get_the_image_default_and_gathered_readings_zstd(RE, tmp_path):
    store = run_grid(RE, tmp_path, shape=(256, 256))
    names = [c["name"] for c in zarr_json(store, "cam")["codecs"]]
    assert names == ["bytes", "blosc"]
    assert [c["name"] for c in zarr_json(store, "det")["codecs"]] == ["bytes", "zstd"]
    assert [c["name"] for c in zarr_json(store, "time")["codecs"]] == ["bytes", "zstd"]
    assert [c["name"] for c in zarr_json(store, "motor1")["codecs"]] == ["bytes"]  # setpoints: exact size


def test_small_runs_make_small_stores(RE, tmp_path):
    """A one-event count is kilobytes: its 1 MiB chunks are mostly fill value, and zstd says so."""
    RE.subscribe(ZarrWriter(tmp_path, file_prefix="small"))
    RE(bp.count([det], 1))
    store = tmp_path / "small.zarr"
    assert sum(p.stat().st_size for p in store.rglob("*") if p.is_file()) < 64 * 1024
    np.testing.assert_array_equal(open_stream(store)["seq_num"].values, [1])
    assert_tensorstore_agrees(store)


def test_codecs_and_shards_together(RE, tmp_path):
    """Chunks of a whole column of frames, compressed, two columns per shard."""
    store = run_grid(
        RE, tmp_path, chunks={"cam": {"motor1": -1, "motor2": 1}}, shards={"cam": {"motor2": 2}},
        codecs={"cam": "blosc-zstd"},
    )  # fmt: skip
    np.testing.assert_array_equal(open_stream(store)["cam"].values, expected_frames(FRAME))
    assert_tensorstore_agrees(store)


def test_a_large_block_being_filled_is_held_back_and_never_marked_written(RE, tmp_path, monkeypatch):
    """Blocks above the rewrite size wait until complete; ``written`` vouches only for what is on disk."""
    # the camera's blocks (3 frames of 6 x 4 u2: 144 bytes) wait; time, seq_num, det (96 bytes) do not
    monkeypatch.setattr(_array_writer, "REWRITE_PARTIAL_BYTES", 100)
    cam = FrameCounter()
    writer = ZarrWriter(tmp_path, chunks={"cam": {"motor1": -1, "motor2": 1}})
    RE.subscribe(writer)
    masks: list[np.ndarray] = []

    def check(name, doc):
        if name == "event":
            writer.flush()
            ds = open_stream(next(tmp_path.glob("*.zarr")))
            masks.append(ds["written"].values.copy())
            np.testing.assert_array_equal(ds["cam"].values[ds["written"].values][:, 0, 0] > 0, True)

    RE.subscribe(check)
    RE(grid_scan(cam))
    # a column (3 events along motor1) completes only in the last row, at events 9..12
    assert [int(m.sum()) for m in masks] == [0] * 8 + [3, 6, 9, 12]
    store = next(tmp_path.glob("*.zarr"))
    assert open_stream(store)["written"].values.all()


class PhotonCamera(FrameCounter):
    """Poisson frames of a smooth scene: offset 100 counts, 2 counts per photon."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng(1)
        self.scene = np.linspace(5, 400, FRAME[0] * FRAME[1]).reshape(FRAME)
        super().__init__(shape=FRAME)

    def _frame(self) -> np.ndarray:
        return self.series(1)[0]

    def series(self, n: int) -> np.ndarray:
        return (100 + 2 * self.rng.poisson(self.scene, size=(n, *FRAME))).astype("<u2")


def test_anscombe_frames_through_the_writer_read_back_within_the_bound(RE, record, tmp_path):
    """Parameters estimated from a series of frames, then frames encoded by the writer."""
    cam = PhotonCamera()
    parameters = estimate_anscombe_parameters(cam.series(8))
    assert parameters.conversion_gain == pytest.approx(2.0, rel=0.1)
    codecs = [parameters.codec(beta=0.5), {"name": "zstd", "configuration": {"level": 3, "checksum": False}}]
    RE.subscribe(ZarrWriter(tmp_path, codecs={"cam": codecs}))
    (uid,) = RE(grid_scan(cam))
    stored = open_stream(tmp_path / f"{uid}.zarr")["cam"].values.reshape(12, *FRAME).astype(float)
    taken = np.stack([d["data"]["cam"] for n, d in record if n == "event"]).astype(float)
    # half a quantization step (beta / 2 noise sigma, in counts) plus rounding to whole counts
    gain, photons = parameters.conversion_gain, (taken - parameters.zero_level) / parameters.conversion_gain
    bound = gain * (0.25 * np.sqrt(np.abs(photons) + 3 / 8) + 0.5**2 / 16) + 0.5
    assert np.all(np.abs(stored - taken) <= bound + 1e-9)
    assert np.abs(stored - taken).mean() > 0  # lossy indeed
