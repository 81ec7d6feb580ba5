"""Every writer straight into a bucket of a real S3 server on 127.0.0.1, read back by stock readers.

The same documents go to a local directory and to the bucket, so the bucket's run is checked
against the local one (itself checked everywhere else): xarray through zarr's own ``FsspecStore``
(s3fs) and ``ObjectStore`` (obstore), tensorstore's ``s3`` kvstore, pyarrow and polars through
their own S3 file systems.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.fs as pafs
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
import tensorstore as ts
import xarray as xr
import zarr
from bluesky import RunEngine
from bluesky import plans as bp
from obstore.store import S3Store
from ophyd.sim import det, motor1, motor2
from s3 import KEY_ID, REGION, SECRET, every_object, feed, fsspec_store, grid_run
from stand_ins import FrameCounter
from stock import array_paths

from bluesky_zarr import (
    ArrowWriter,
    ConfigurationError,
    ParquetWriter,
    StoreExistsError,
    Writer,
    ZarrWriter,
    export,
    open_run,
)


def object_store(endpoint: str, bucket: str, prefix: str) -> zarr.storage.ObjectStore:
    s3 = S3Store(bucket, prefix=prefix, endpoint=endpoint, region=REGION, client_options={"allow_http": True})
    return zarr.storage.ObjectStore(s3, read_only=True)


def arrow_fs(endpoint: str) -> pafs.S3FileSystem:
    return pafs.S3FileSystem(
        access_key=KEY_ID, secret_key=SECRET, endpoint_override=endpoint, scheme="http", region=REGION
    )


def test_a_scan_written_to_a_bucket_opens_with_stock_xarray_with_every_frame(
    RE: RunEngine, tmp_path: Path, s3_endpoint: str, bucket: str
) -> None:
    documents = grid_run(RE)
    uid = documents[0][1]["uid"]
    feed(ZarrWriter(tmp_path), documents)
    writer = ZarrWriter(f"s3://{bucket}/runs/", storage_options={"endpoint_url": s3_endpoint})
    feed(writer, documents)
    url = f"s3://{bucket}/runs/{uid}.zarr"
    assert writer.artifacts == {"zarr": [url]}
    local = xr.open_datatree(tmp_path / f"{uid}.zarr", engine="zarr", zarr_format=3)
    for store in (fsspec_store(s3_endpoint, url), object_store(s3_endpoint, bucket, f"runs/{uid}.zarr")):
        remote = xr.open_datatree(store, engine="zarr", zarr_format=3)
        xr.testing.assert_identical(remote, local)
        primary = xr.open_zarr(store, group="primary", zarr_format=3)
        assert primary.cam.dims == ("motor1", "motor2", "y", "x") and bool(primary.written.all())
        frames = primary.cam.values.reshape(12, -1)[:, 0]
        assert sorted(frames) == list(range(2, 14))  # every frame, each in one place
        assert remote.attrs["status"] == "success"
    tree = open_run(url, storage_options={"endpoint_url": s3_endpoint})
    xr.testing.assert_identical(
        tree["primary"].to_dataset(), open_run(tmp_path / f"{uid}.zarr")["primary"].to_dataset()
    )
    # nothing else in the bucket: no temporary object, no marker
    keys = every_object(s3_endpoint, bucket)
    assert all(k.startswith(f"runs/{uid}.zarr/") for k in keys)
    assert not [k for k in keys if k.rsplit("/", 1)[-1].startswith(".")]


def test_tensorstore_reads_every_array_from_the_bucket(
    RE: RunEngine, tmp_path: Path, s3_endpoint: str, bucket: str
) -> None:
    documents = grid_run(RE)
    uid = documents[0][1]["uid"]
    feed(ZarrWriter(tmp_path), documents)
    feed(ZarrWriter(f"s3://{bucket}/r", storage_options={"endpoint_url": s3_endpoint}), documents)
    local = tmp_path / f"{uid}.zarr"
    checked = 0
    for relative in array_paths(local):
        if json.loads((local / relative / "zarr.json").read_text())["data_type"] == "string":
            continue
        kvstore = {
            "driver": "s3", "bucket": bucket, "path": f"r/{uid}.zarr/{relative.as_posix()}/",
            "endpoint": s3_endpoint, "aws_region": REGION,
        }  # fmt: skip
        remote = ts.open({"driver": "zarr3", "kvstore": kvstore}, read=True).result().read().result()
        on_disk = ts.open(
            {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(local / relative)}}, read=True
        ).result()
        np.testing.assert_array_equal(np.asarray(remote), np.asarray(on_disk.read().result()), str(relative))
        checked += 1
    assert checked >= 5


@pytest.mark.parametrize("writer", [ParquetWriter, ArrowWriter])
def test_tables_in_a_bucket_read_with_pyarrow_and_polars(
    RE: RunEngine, tmp_path: Path, s3_endpoint: str, bucket: str, writer: type[Writer]
) -> None:
    documents = grid_run(RE)
    uid = documents[0][1]["uid"]
    feed(writer(tmp_path), documents)  # type: ignore[call-arg]
    remote_writer = writer(f"s3://{bucket}/tables", storage_options={"endpoint_url": s3_endpoint})  # type: ignore[call-arg]
    feed(remote_writer, documents)
    suffix = ".parquet" if writer is ParquetWriter else ".arrows"
    key = f"{bucket}/tables/{uid}/primary{suffix}"
    assert f"s3://{key}" in remote_writer.artifacts[remote_writer.formats[0].label]
    fs = arrow_fs(s3_endpoint)
    if writer is ParquetWriter:
        remote = pq.read_table(key, filesystem=fs)
        expected = pq.read_table(tmp_path / uid / f"primary{suffix}")
        frame = pl.read_parquet(
            f"s3://{key}",
            storage_options={
                "aws_endpoint_url": s3_endpoint, "aws_access_key_id": KEY_ID,
                "aws_secret_access_key": SECRET, "aws_region": REGION, "aws_allow_http": "true",
            },
        )  # fmt: skip
        assert frame.height == 12 and frame["seq_num"].to_list() == list(range(1, 13))
    else:
        with fs.open_input_stream(key) as file:
            remote = ipc.open_stream(file).read_all()
        expected = ipc.open_stream(
            pafs.LocalFileSystem().open_input_stream(str(tmp_path / uid / f"primary{suffix}"))
        ).read_all()
        assert pl.from_arrow(remote).height == 12  # type: ignore[union-attr]
    assert remote.equals(expected)
    assert remote.schema.metadata == expected.schema.metadata
    assert not [k for k in every_object(s3_endpoint, bucket) if "/." in k]  # no part or temporary left


def test_export_to_a_bucket_and_an_existing_run_is_refused(
    RE: RunEngine, s3_endpoint: str, bucket: str
) -> None:
    documents = grid_run(RE)
    options = {"endpoint_url": s3_endpoint}
    artifacts = export(documents, f"s3://{bucket}/x", format=["zarr", "parquet"], storage_options=options)
    uid = documents[0][1]["uid"]
    assert artifacts["zarr"] == [f"s3://{bucket}/x/{uid}.zarr"]
    before = every_object(s3_endpoint, bucket)
    with pytest.raises(StoreExistsError, match=rf"s3://{bucket}/x/{uid}.zarr exists already"):
        export(documents, f"s3://{bucket}/x", storage_options=options)
    assert every_object(s3_endpoint, bucket) == before  # nothing touched
    export(documents, f"s3://{bucket}/x", overwrite=True, storage_options=options)
    assert open_run(f"s3://{bucket}/x/{uid}.zarr", storage_options=options)["primary"].cam.shape == (
        3,
        4,
        6,
        4,
    )


@pytest.mark.parametrize("target", ["gs://bucket/data", "s3a://bucket/data", "http://127.0.0.1:1/data"])
def test_an_unsupported_url_is_an_error_before_anything_is_written(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It once wrote a local folder named after the URL (./s3:/bucket/data)."""
    monkeypatch.chdir(tmp_path)
    for make in (ZarrWriter, ParquetWriter, ArrowWriter):
        with pytest.raises(ConfigurationError, match=f"{target!r}: the URL scheme .* nothing was written"):
            make(target)
    with pytest.raises(ConfigurationError, match="nothing was written"):
        export([], target)
    assert os.listdir(tmp_path) == []


def test_a_file_url_writes_where_a_path_would(
    RE: RunEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    documents = grid_run(RE)
    writer = ZarrWriter(f"file://{tmp_path}/data")
    feed(writer, documents)
    assert writer.artifacts["zarr"] == [tmp_path / "data" / f"{documents[0][1]['uid']}.zarr"]
    assert sorted(os.listdir(tmp_path)) == ["data"]
    with pytest.raises(ConfigurationError, match=r"storage_options .* local target"):
        ZarrWriter(tmp_path, storage_options={"endpoint_url": "http://127.0.0.1:1"})


@pytest.mark.parametrize("shards", [None, {"cam": {"motor2": -1}}], ids=["chunks", "shards"])
def test_a_bucket_reader_sees_only_whole_uploaded_data_at_every_flush(
    RE: RunEngine, s3_endpoint: str, bucket: str, shards: dict[str, Any] | None
) -> None:
    """After every event the writer flushes, and a stock reader of the bucket checks what it sees:
    each point the ``written`` mask vouches for holds its own frame, never a fill value; a sharded
    camera is one object per shard, whatever the number of flushes."""
    url = f"s3://{bucket}/live"
    chunks = {"cam": {"motor1": 1, "motor2": 1}}  # a frame a chunk
    writer = ZarrWriter(url, chunks=chunks, shards=shards, storage_options={"endpoint_url": s3_endpoint})
    seen: list[int] = []

    def check(name: str, doc: Any) -> None:
        if name != "event":
            return
        writer.flush()
        (store_name,) = {k.split("/")[1] for k in every_object(s3_endpoint, bucket)}
        primary = xr.open_zarr(
            fsspec_store(s3_endpoint, f"{url}/{store_name}"),
            group="primary",
            zarr_format=3,
            consolidated=False,
        )
        written = primary.written.values
        frames = primary.cam.values[..., 0, 0]
        assert (frames[written] > 0).all() and (frames[~written] == 0).all()
        seen.append(int(written.sum()))

    RE.subscribe(writer)
    RE.subscribe(check)
    RE(bp.grid_scan([FrameCounter(), det], motor1, -1, 1, 3, motor2, 0, 2, 4))
    writer.close()
    assert seen == list(range(1, 13))  # each event visible right after its flush
    cam = [k for k in every_object(s3_endpoint, bucket) if "/primary/cam/c" in k]
    assert len(cam) == (3 if shards else 12)
