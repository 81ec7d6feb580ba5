"""The storage interface, tested once: every implementation subclasses :class:`StorageTests`.

(The model is zarr-python's ``StoreTests``.) The object-store implementation gets these tests by
subclassing, with its own ``storage`` fixture and ``raw`` reader (``test_s3.py``).
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from bluesky_zarr import WriteError
from bluesky_zarr.storage import LocalStorage, Storage


class StorageTests:
    """What every :class:`Storage` does; subclasses give ``storage`` and ``raw`` (a stock read)."""

    @pytest.fixture
    def storage(self, tmp_path: Path) -> Storage:
        raise NotImplementedError

    def raw(self, storage: Storage, key: str) -> bytes | None:
        """The object as a reader that does not use this package sees it (``None``: not there)."""
        raise NotImplementedError

    def test_create_refuses_an_existing_root_unless_asked(self, storage: Storage) -> None:
        storage.create()
        storage.put("a", b"1")
        with pytest.raises(FileExistsError):
            storage.create()
        storage.create(exist_ok=True)
        assert storage.get("a") == b"1"
        storage.create(overwrite=True)
        assert storage.get("a") is None and storage.exists()

    def test_put_get_list_size_delete(self, storage: Storage) -> None:
        storage.create()
        storage.put("g/x/zarr.json", b"{}")
        storage.put("g/x/c.0", memoryview(b"abc"), durable=True)
        assert storage.get("g/x/c.0") == b"abc" == self.raw(storage, "g/x/c.0")
        assert storage.get("missing") is None and storage.size("missing") == 0
        assert storage.list("g/x") == ["c.0", "zarr.json"] and storage.size("g/x/c.0") == 3
        storage.put("g/x/c.0", b"replaced")
        assert self.raw(storage, "g/x/c.0") == b"replaced"
        storage.delete("g")
        assert storage.list() == [] and storage.get("g/x/c.0") is None
        storage.delete("never-there")

    def test_a_streamed_object_appears_whole_or_not_at_all(self, storage: Storage) -> None:
        storage.create()
        with storage.writer("t.parquet") as file:
            file.write(b"part one, ")
            assert self.raw(storage, "t.parquet") is None  # not visible while it is written
            file.write(b"part two")
        assert self.raw(storage, "t.parquet") == b"part one, part two"
        with pytest.raises(RuntimeError), storage.writer("t.parquet") as file:
            file.write(b"half")
            raise RuntimeError("the writer of the object failed")
        assert self.raw(storage, "t.parquet") == b"part one, part two"  # the old object stays whole
        assert storage.list() == ["t.parquet"]  # and no temporary is left
        with storage.reader("t.parquet") as file:
            assert file.read() == b"part one, part two"

    def test_a_hidden_growing_object_appears_at_its_first_publish(self, storage: Storage) -> None:
        storage.create()
        shard = storage.grow("a/c.0", hidden=True)
        assert shard.append(b"....") == 0 and shard.append(b"data") == 4
        assert self.raw(storage, "a/c.0") is None
        shard.write_at(0, b"head")
        shard.publish()
        assert self.raw(storage, "a/c.0") == b"headdata"
        assert shard.append(b"more") == 8 and shard.read_at(4, 4) == b"data"
        shard.close()
        shard.close()  # twice is nothing
        again = storage.grow("a/c.0", reopen=True)
        assert again.size == 12 and again.read_at(8, 4) == b"more"
        again.append(b"!")
        again.close()
        assert self.raw(storage, "a/c.0") == b"headdatamore!"

    def test_a_visible_growing_object_is_readable_as_it_grows(self, storage: Storage) -> None:
        storage.create()
        stream = storage.grow("primary.arrows", hidden=False)
        assert self.raw(storage, "primary.arrows") == b""  # there, empty, from the start
        stream.append(b"schema")
        stream.publish()
        assert self.raw(storage, "primary.arrows") == b"schema"
        stream.append(b"batch")
        stream.publish()
        assert self.raw(storage, "primary.arrows") == b"schemabatch"
        stream.close()
        with pytest.raises(WriteError, match="closed"):
            stream.append(b"late")

    def test_rename_and_sync(self, storage: Storage) -> None:
        storage.create()
        storage.put("parts/.combined-1-2.parquet", b"rows")
        storage.rename("parts/.combined-1-2.parquet", "parts/part-1-2.parquet")
        assert storage.list("parts") == ["part-1-2.parquet"]
        storage.delete("parts/part-1-2.parquet")  # a file written and gone before the sync
        storage.sync()
        storage.sync()

    def test_a_prefix_moves_whole_and_its_old_name_can_be_used_again(self, storage: Storage) -> None:
        storage.create()
        storage.put("g/.x.new/c.0", b"wide")
        storage.put("g/x/c.0", b"narrow")
        storage.rename("g/x", "g/.x.old")
        storage.rename("g/.x.new", "g/x")
        assert storage.get("g/x/c.0") == b"wide" and storage.get("g/.x.old/c.0") == b"narrow"
        storage.put("g/.x.new/c.1", b"again")  # the moved prefix's name is free again
        assert storage.list("g/.x.new") == ["c.1"]


class TestLocalStorage(StorageTests):
    @pytest.fixture
    def storage(self, tmp_path: Path) -> Storage:
        return LocalStorage(tmp_path / "run")

    def raw(self, storage: Storage, key: str) -> bytes | None:
        path = Path(storage.describe(key))
        return path.read_bytes() if path.is_file() else None

    def test_an_os_error_names_the_path_and_keeps_its_errno(self, tmp_path: Path) -> None:
        (tmp_path / "a-file").write_bytes(b"")
        storage = LocalStorage(tmp_path / "a-file" / "run")  # a folder below a file cannot be made
        with pytest.raises(WriteError, match=r"cannot create .*a-file/run") as caught:
            storage.create()
        assert caught.value.errno in (errno.EEXIST, errno.ENOTDIR)  # the OS says which
        assert isinstance(caught.value, OSError)
