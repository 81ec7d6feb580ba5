"""Export from a real databroker 2.x catalog served by a real Tiled server on 127.0.0.1, driven as
a user drives ``bluesky-zarr export``; and the writers' output directory served by ``tiled serve
directory`` as it is."""

from __future__ import annotations

import time

import numpy as np
import pyarrow.parquet as pq
import pytest
import xarray as xr
from bluesky import RunEngine
from bluesky import plans as bp
from command_line import bluesky_zarr
from documents import events
from ophyd.sim import det, det4, motor1, motor2
from servers import client, databroker_catalog, env_with_key, tiled_server
from stand_ins import FrameCounter
from stock import open_stream, variables_by_data_key


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """A served catalog holding three runs (a grid of frames, a 1-D scan, a count), and their
    documents as the RunEngine emitted them."""
    pytest.importorskip("databroker")
    from databroker import Broker

    directory = tmp_path_factory.mktemp("catalog")
    with databroker_catalog(directory) as url, client(url) as tree:
        broker = Broker(tree)
        RE = RunEngine({})
        runs: dict[str, list] = {}
        RE.subscribe(
            lambda name, doc: runs.setdefault(doc["uid"] if name == "start" else list(runs)[-1], []).append(
                (name, doc)
            )
        )
        RE.subscribe(broker.insert)
        RE(bp.grid_scan([det4, FrameCounter()], motor1, -1, 1, 3, motor2, 0, 1, 2))
        RE(bp.scan([det], motor1, 0, 1, 4))
        RE(bp.count([det], 2))
        yield url, runs


def test_export_of_a_served_catalog_writes_every_run_and_skips_them_the_second_time(catalog, tmp_path):
    url, runs = catalog
    done = bluesky_zarr("export", url, tmp_path, "--format", "zarr,parquet", env=env_with_key())
    assert done.returncode == 0, done.stderr
    assert done.stderr.count(": wrote ") == 3
    grid_uid, scan_uid, count_uid = runs
    ds = open_stream(tmp_path / f"{grid_uid}.zarr")
    names = variables_by_data_key(ds)
    evs = events(runs[grid_uid])
    assert ds[names["cam"]].shape == (3, 2, 6, 4) and bool(ds["written"].all())
    for event in evs:  # every frame at its grid point: frame n is the n-th reading (1 at creation)
        i, j = divmod(event["seq_num"] - 1, 2)
        assert int(ds[names["cam"]].values[i, j, 0, 0]) == event["seq_num"] + 1
    table = pq.read_table(tmp_path / scan_uid / "primary.parquet")
    np.testing.assert_allclose(table["det"].to_numpy(), [e["data"]["det"] for e in events(runs[scan_uid])])
    assert xr.open_zarr(tmp_path / f"{count_uid}.zarr", group="primary").sizes["time"] == 2

    again = bluesky_zarr("export", url, tmp_path, "--format", "zarr,parquet", env=env_with_key())
    assert again.returncode == 0 and again.stderr.count("skipped, already exported") == 3


def test_runs_are_chosen_by_uid_and_search_and_a_missing_one_fails_alone(catalog, tmp_path):
    url, runs = catalog
    _, scan_uid, count_uid = runs
    done = bluesky_zarr(
        "export", url, tmp_path, "--uid", count_uid, "--uid", "no-such-run", env=env_with_key()
    )
    assert done.returncode == 1
    assert "no-such-run: FAILED: the catalog has no run 'no-such-run'" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{count_uid}.zarr"]

    chosen = bluesky_zarr("export", url, tmp_path / "scans", "--search", "plan_name=scan", env=env_with_key())
    assert chosen.returncode == 0, chosen.stderr
    assert sorted(p.name for p in (tmp_path / "scans").iterdir()) == [f"{scan_uid}.zarr"]


def test_a_catalog_by_its_databroker_name(catalog, tmp_path):
    """``databroker:NAME``: the catalog ``databroker.Broker.named(NAME)`` finds, here a Tiled profile
    in a directory named by ``TILED_PROFILES``."""
    url, runs = catalog
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "facility.yml").write_text(f"facility:\n  uri: {url}\n")  # the key: TILED_API_KEY
    count_uid = list(runs)[-1]
    done = bluesky_zarr(
        "export", "databroker:facility", tmp_path / "out", "--uid", count_uid,
        env={**env_with_key(), "TILED_PROFILES": str(profiles)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert xr.open_zarr(tmp_path / "out" / f"{count_uid}.zarr", group="primary").sizes["time"] == 2


def test_tiled_serves_the_output_directory_as_it_is(catalog, tmp_path):
    """``tiled serve directory`` on what the writers wrote (Zarr and tables in directories of their
    own: Tiled names ``<run>.zarr`` and ``<run>/`` alike): a store's arrays and a Parquet table read
    over HTTP hold the values on disk."""
    url, runs = catalog
    grid_uid, scan_uid, _ = runs
    data = tmp_path / "data"
    assert bluesky_zarr("export", url, data / "zarr", env=env_with_key()).returncode == 0
    assert (
        bluesky_zarr("export", url, data / "tables", "--format", "parquet", env=env_with_key()).returncode
        == 0
    )
    with tiled_server(["directory", str(data)], tmp_path / "tiled.log") as served, client(served) as tree:
        deadline = time.monotonic() + 60
        while not indexed(tree, {"zarr": 3, "tables": 3}):  # it indexes the files as it serves
            assert time.monotonic() < deadline, (tmp_path / "tiled.log").read_text()[-2000:]
            time.sleep(0.2)
        primary = tree["zarr"][grid_uid]["primary"]
        on_disk = xr.open_zarr(data / "zarr" / f"{grid_uid}.zarr", group="primary")
        for name in ("cam", "det4", "written", "motor1"):
            np.testing.assert_array_equal(primary[name].read(), on_disk[name].values)
        served_table = tree["tables"][scan_uid]["primary"].read()
        table = pq.read_table(data / "tables" / scan_uid / "primary.parquet").to_pandas()
        np.testing.assert_allclose(served_table["det"], table["det"])


def indexed(tree, counts):
    """Whether the served tree holds as many nodes as ``counts`` says below each of its folders."""
    try:
        return all(len(list(tree[folder])) >= n for folder, n in counts.items())
    except KeyError:
        return False
