"""The storage on a zarr ``Store`` object: the storage tests, and a writer given a store."""

from __future__ import annotations

from pathlib import Path

import pytest
import xarray as xr
import zarr
from bluesky import RunEngine
from s3 import feed, grid_run
from test_storage import StorageTests

from bluesky_zarr import ConfigurationError, ZarrWriter
from bluesky_zarr.storage import Storage, ZarrStoreStorage, open_storage


class TestZarrStoreStorage(StorageTests):
    @pytest.fixture
    def storage(self) -> Storage:
        return open_storage(zarr.storage.MemoryStore()).child("runs/run")

    def raw(self, storage: Storage, key: str) -> bytes | None:
        assert isinstance(storage, ZarrStoreStorage)
        data = storage.store._store_dict.get(f"{storage.prefix}/{key}")  # type: ignore[attr-defined]
        return None if data is None else data.to_bytes()

    def test_create_refuses_an_existing_root_unless_asked(self, storage: Storage) -> None:
        """As on a file system, except that a store has no empty folders (as a bucket)."""
        storage.create()
        storage.put("a", b"1")
        with pytest.raises(FileExistsError):
            storage.create()
        storage.create(exist_ok=True)
        assert storage.get("a") == b"1"
        storage.create(overwrite=True)
        assert storage.get("a") is None and storage.list() == []


def test_a_read_only_store_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="read-only; nothing was written"):
        ZarrWriter(zarr.storage.LocalStore(tmp_path, read_only=True))


def test_a_zarr_writer_given_a_store_writes_each_run_below_its_root(RE: RunEngine, tmp_path: Path) -> None:
    documents = grid_run(RE)
    uid = documents[0][1]["uid"]
    store = zarr.storage.MemoryStore()
    writer = ZarrWriter(store)
    feed(writer, documents)
    feed(ZarrWriter(tmp_path), documents)
    assert len(writer.artifacts["zarr"]) == 1 and str(writer.artifacts["zarr"][0]).endswith(f"/{uid}.zarr")
    remote = xr.open_zarr(store, group=f"{uid}.zarr/primary", zarr_format=3, consolidated=False)
    local = xr.open_zarr(tmp_path / f"{uid}.zarr", group="primary", zarr_format=3)
    xr.testing.assert_identical(remote, local)
