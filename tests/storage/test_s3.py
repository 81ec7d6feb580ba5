"""The object-store storage against a real S3 server on 127.0.0.1: the storage tests, and a bucket's own."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from s3 import SECRET, every_object, fault_proxy, s3_client
from test_storage import StorageTests

from bluesky_zarr import (
    ConfigurationError,
    RunNotFoundError,
    UnsafePathError,
    WriteError,
    abort_incomplete_uploads,
    finalize_spool,
)
from bluesky_zarr.storage import S3Storage, Storage, open_storage


class TestS3Storage(StorageTests):
    @pytest.fixture
    def storage(self, s3_endpoint: str, bucket: str) -> Storage:
        return open_storage(f"s3://{bucket}/runs/run", {"endpoint_url": s3_endpoint})

    def raw(self, storage: Storage, key: str) -> bytes | None:
        assert isinstance(storage, S3Storage)
        endpoint = storage.options["endpoint_url"]
        return every_object(endpoint, storage.bucket).get(f"{storage.prefix}/{key}")

    def test_create_refuses_an_existing_root_unless_asked(self, storage: Storage) -> None:
        """As on a file system, except that a bucket has no empty folders: a root exists once an
        object is below it (every output puts one at once)."""
        storage.create()
        assert not storage.exists()
        storage.put("a", b"1")
        assert storage.exists()
        with pytest.raises(FileExistsError):
            storage.create()
        storage.create(exist_ok=True)
        assert storage.get("a") == b"1"
        storage.create(overwrite=True)
        assert storage.get("a") is None and storage.list() == []

    def test_nothing_is_left_below_the_root_but_the_objects(self, storage: Storage) -> None:
        """No temporary object, no folder marker: a bucket's reader sees only whole objects."""
        assert isinstance(storage, S3Storage)
        storage.create()
        with storage.writer("t.parquet") as file:
            file.write(b"rows")
        shard = storage.grow("a/c/0", hidden=True)
        shard.append(b"chunk")
        shard.close()
        assert sorted(every_object(storage.options["endpoint_url"], storage.bucket)) == [
            "runs/run/a/c/0",
            "runs/run/t.parquet",
        ]

    def test_a_child_stays_below_its_root(self, storage: Storage) -> None:
        assert storage.child("x.zarr").location == f"{storage.location}/x.zarr"
        for bad in ("../x", "/x", ""):
            with pytest.raises(UnsafePathError):
                storage.child(bad)


def test_a_missing_bucket_is_an_error_naming_it(s3_endpoint: str, s3_credentials: None) -> None:
    storage = open_storage("s3://no-such-bucket/runs", {"endpoint_url": s3_endpoint, "max_retries": 0})
    with pytest.raises(WriteError, match=r"no-such-bucket.*create it first"):
        storage.create()


def test_unknown_options_are_refused_and_named(s3_credentials: None) -> None:
    with pytest.raises(ConfigurationError, match=r"unknown storage_options \['endpoint'\].*endpoint_url"):
        open_storage("s3://b/runs", {"endpoint": "http://127.0.0.1:1"})


def test_credentials_given_as_options_are_in_no_repr_and_no_pickle(s3_endpoint: str, bucket: str) -> None:
    storage = open_storage(
        f"s3://{bucket}/runs", {"endpoint_url": s3_endpoint, "key": "given-key-id", "secret": SECRET}
    )
    storage.put("x", b"1")  # the credentials work
    assert SECRET not in repr(storage) and SECRET not in str(vars(storage))
    assert SECRET.encode() not in pickle.dumps(storage)
    again = pickle.loads(pickle.dumps(storage))
    assert again.get("x") == b"1"  # from the environment's credentials now


def test_a_file_url_and_a_path_are_local(tmp_path: Path) -> None:
    assert open_storage(f"file://{tmp_path}/runs").location == str(tmp_path / "runs")
    assert open_storage(tmp_path / "runs").location == str(tmp_path / "runs")


@pytest.mark.parametrize(
    "url", ["gs://bucket/runs", "s3a://bucket/runs", "http://127.0.0.1/x", "file://host/x"]
)
def test_a_target_that_cannot_be_written_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="nothing was written"):
        open_storage(url)


def test_a_stock_client_sees_each_object(s3_endpoint: str, bucket: str) -> None:
    storage = open_storage(f"s3://{bucket}/runs", {"endpoint_url": s3_endpoint})
    storage.put("g/zarr.json", b"{}")
    body = s3_client(s3_endpoint).get_object(Bucket=bucket, Key="runs/g/zarr.json")["Body"].read()
    assert body == b"{}"


def test_after_a_failed_upload_everything_is_spooled_in_order_and_finalized_later(
    s3_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    with fault_proxy(s3_endpoint) as (endpoint, faults):
        options = {"endpoint_url": endpoint, "spool": str(tmp_path), "max_retries": 1, "init_backoff": 0.01}
        storage = open_storage(f"s3://{bucket}/run", options)
        storage.put("a/c.0", b"before")
        faults.outage = True
        with pytest.raises(WriteError, match=rf"s3://{bucket}/run/a/c.1 \(bucket '{bucket}'\)") as caught:
            storage.put("a/c.1", b"chunk")
        assert "finalize_spool" in "".join(caught.value.__notes__)
        tried = sum(faults.faulted.values())
        storage.put("a/zarr.json", b"v1")  # the bucket is not tried again: spooled
        storage.put("a/c.1", b"chunk, again")
        storage.put("a/zarr.json", b"v2")
        assert sum(faults.faulted.values()) == tried
        assert storage.get("a/c.1") == b"chunk, again" and storage.size("a/zarr.json") == 2
        faults.outage = False
        spool = tmp_path / bucket / "run"
        uploaded = finalize_spool(spool)
    assert uploaded == [f"s3://{bucket}/run/a/c.1", f"s3://{bucket}/run/a/zarr.json"]  # data first
    assert every_object(s3_endpoint, bucket) == {
        "run/a/c.0": b"before", "run/a/c.1": b"chunk, again", "run/a/zarr.json": b"v2"
    }  # fmt: skip
    assert not spool.exists()
    with pytest.raises(RunNotFoundError):
        finalize_spool(tmp_path)


KILLED_WRITER = """
import sys
from bluesky_zarr.storage import open_storage

storage = open_storage(sys.argv[1], {"endpoint_url": sys.argv[2], "multipart_bytes": 1024**2})
storage.create()
with storage.writer("primary.parquet") as file:
    file.write(bytes(40 * 1024**2))  # three parts of 16 MiB
print("uploaded", flush=True)
"""


def test_a_writer_killed_during_a_multipart_upload_leaves_no_object_and_the_upload_is_aborted(
    s3_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    with fault_proxy(s3_endpoint) as (endpoint, faults):
        faults.hold = "partNumber=2"
        writer = subprocess.Popen(
            [sys.executable, "-c", KILLED_WRITER, f"s3://{bucket}/run", endpoint],
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            held = faults.held.wait(60)
            writer.kill()  # SIGKILL while the second part is on its way
            _, stderr = writer.communicate(timeout=30)
            assert held, stderr
        finally:
            faults.release.set()
            if writer.poll() is None:
                writer.kill()
                writer.communicate()
    assert every_object(s3_endpoint, bucket) == {}  # nothing visible, not even a part
    client = s3_client(s3_endpoint)
    (upload,) = client.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert upload["Key"] == "run/primary.parquet"
    url = f"s3://{bucket}/run"
    options = {"endpoint_url": s3_endpoint}
    # (moto says every upload began in 2010, so the age guard, older_than, is not tried here)
    assert abort_incomplete_uploads(url, storage_options=options, older_than=0) == [f"{url}/primary.parquet"]
    assert "Uploads" not in client.list_multipart_uploads(Bucket=bucket)
