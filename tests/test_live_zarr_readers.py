"""Readers of a Zarr store while it is written, and after its writer was killed, before any
``finalize``: through the consolidated root (what xarray and zarr-python open by default) every
array of a 1-D stream has one length at every moment, and each row is the event taken."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap

import numpy as np
import xarray as xr
from processes import child_environment, kill_at

POLLER = textwrap.dedent(
    """
    import sys, time, pathlib
    import numpy as np, xarray as xr
    store, polls = pathlib.Path(sys.argv[1]), int(sys.argv[2])
    while not (store / "primary").exists():
        time.sleep(0.001)
    seen, failures = 0, []
    for _ in range(polls):
        try:
            ds = xr.open_zarr(store, group="primary", zarr_format=3, decode_times=False)
            seq, cam = ds["seq_num"].values, ds["cam"].values
            assert (seq == np.arange(1, len(seq) + 1)).all(), seq
            assert (cam[:, 0, 0] == seq + 1).all()
            seen = max(seen, len(seq))
        except Exception as err:  # KeyError: the group before its first commit
            if not isinstance(err, KeyError):
                failures.append(repr(err))
    print(seen, len(failures), failures[:3], flush=True)
    """
)

SCAN = textwrap.dedent(
    """
    import sys
    from bluesky import RunEngine, plans as bp
    from ophyd.sim import det
    from stand_ins import FrameCounter
    from bluesky_zarr import ZarrWriter
    RE = RunEngine({})
    writer = ZarrWriter(sys.argv[1], file_prefix="live", flush_interval=0.005)
    RE.subscribe(writer)
    RE(bp.count([FrameCounter(shape=(8, 8)), det], 3000))
    writer.close()
    """
)


def test_a_reader_polling_a_live_1d_store_always_sees_one_length(tmp_path):
    """A reader process polls the store with xarray while another process writes it (a flush every
    5 ms): no poll fails, every row read is the event taken."""
    env = child_environment()
    store = tmp_path / "live.zarr"
    poller = subprocess.Popen(
        [sys.executable, "-c", POLLER, str(store), "150"], stdout=subprocess.PIPE, text=True, env=env
    )
    writer = subprocess.run(
        [sys.executable, "-c", SCAN, str(tmp_path)], env=env, capture_output=True, text=True
    )
    assert writer.returncode == 0, writer.stderr
    out, _ = poller.communicate(timeout=300)
    seen, failed, failures = out.split(" ", 2)
    assert int(failed) == 0, failures
    assert int(seen) > 0


def test_a_store_killed_at_random_moments_reads_before_finalize(tmp_path):
    """SIGKILL at random moments of a 1-D scan: xarray and open_datatree open the store as the
    killed writer left it (no finalize), every array with one length, every row the event taken."""
    rng = random.Random()
    for i in range(3):
        directory = tmp_path / f"kill-{i}"
        delay = rng.uniform(0.05, 1.5)
        kill_at(directory, "zarr", delay)
        store = directory / "crash.zarr"
        ds = xr.open_zarr(store, group="primary", zarr_format=3)
        tree = xr.open_datatree(store, engine="zarr", zarr_format=3)
        assert tree.attrs["status"] == "running"  # it never got to say otherwise: finalize says so
        seq, frames = ds["seq_num"].values, ds["cam"].values
        assert dict(tree["primary"].sizes)["time"] == len(seq)
        np.testing.assert_array_equal(seq, np.arange(1, len(seq) + 1), err_msg=f"delay {delay}")
        np.testing.assert_array_equal(frames[:, 0, 0], seq + 1)
