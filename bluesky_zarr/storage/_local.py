"""The storage interface on a local file system: a directory, its files, their folders.

Every whole object is written to a hidden temporary file beside its final name and renamed into
place, so a reader (or a crash) never sees half an object. Files written without ``durable`` are
remembered and synced, with their folders, at :meth:`LocalStorage.sync`.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .._errors import BlueskyZarrError, OutputBusyError, StoreExistsError, WriteError
from .._naming import store_path
from ._base import Bytes, GrowingObject, Storage, WriterLock

__all__ = ["LocalStorage"]


@contextlib.contextmanager
def _wrapped(path: Path, action: str = "write") -> Iterator[None]:
    """The one place an ``OSError`` becomes a :class:`WriteError` naming the path."""
    try:
        yield
    except BlueskyZarrError:  # said already (a WriteError, a StoreExistsError)
        raise
    except OSError as err:
        raise WriteError(err.errno, f"cannot {action} {path}: {err.strerror or err}") from err


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: Bytes, offset: int | None = None) -> None:
    view = memoryview(data).cast("B")
    written = 0
    while written < len(view):
        if offset is None:
            written += os.write(fd, view[written:])
        else:
            written += os.pwrite(fd, view[written:], offset + written)


class _LocalGrowing(GrowingObject):
    def __init__(self, storage: LocalStorage, key: str, *, hidden: bool, reopen: bool) -> None:
        self.storage = storage
        self.key = key
        self.path = storage.path(key)
        self._visible = reopen or not hidden
        target = self.path if self._visible else _temporary(self.path)
        flags = os.O_RDWR if reopen else os.O_RDWR | os.O_CREAT | os.O_TRUNC
        with _wrapped(self.path):
            storage.make_folder(self.path.parent)
            self._fd: int | None = os.open(target, flags, 0o644)
            self.size = os.fstat(self._fd).st_size
        storage.touched(self.path)

    def _open_fd(self) -> int:
        if self._fd is None:
            raise WriteError(f"{self.path} was closed; it takes no more writes")
        return self._fd

    def append(self, data: Bytes) -> int:
        offset = self.size
        with _wrapped(self.path):
            _write_all(self._open_fd(), data, offset)
        self.size += memoryview(data).nbytes
        return offset

    def write_at(self, offset: int, data: Bytes) -> None:
        with _wrapped(self.path):
            _write_all(self._open_fd(), data, offset)

    def read_at(self, offset: int, nbytes: int) -> bytes:
        with _wrapped(self.path, "read"):
            return os.pread(self._open_fd(), nbytes, offset)

    def publish(self) -> None:
        if not self._visible:
            with _wrapped(self.path):
                os.replace(_temporary(self.path), self.path)
            self._visible = True

    def close(self) -> None:
        if self._fd is None:
            return
        self.publish()
        fd, self._fd = self._fd, None
        with _wrapped(self.path):
            os.close(fd)


LOCK_SUFFIX = ".writing"


class _FileLock(WriterLock):
    """An ``flock`` on ``<root>/.<name>.writing``, which says who holds it; the kernel lets go of it
    when the process ends, however it ends, so a killed writer never leaves a live-looking lock."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):  # removed while held: nobody takes a stale file for a lock
            self.path.unlink()
        os.close(fd)


def _holder_text(path: Path) -> str:
    try:
        holder = json.loads(path.read_text())
        return f"process {holder['pid']} on {holder['host']} (since {holder['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


class LocalStorage(Storage):
    """Objects as files below the directory ``root``."""

    knows_writers = True

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._folders: set[Path] = set()
        """folders known to exist"""
        self._unsynced: set[Path] = set()
        """files (and folders) written since the last sync"""
        self._failed: set[Path] = set()
        """files (and folders) whose fsync failed: never fsynced again"""

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    @property
    def location(self) -> str:
        return str(self.root)

    def path(self, key: str) -> Path:
        """The file of ``key``."""
        return self.root / key if key else self.root

    def describe(self, key: str) -> str:
        return str(self.path(key))

    def child(self, name: str) -> LocalStorage:
        return LocalStorage(store_path(self.root, name, ""))

    def artifact(self, key: str = "") -> Path:
        return self.path(key)

    def local_file(self) -> Path:
        self.make_folder(self.root.parent)
        self.touched(self.root)
        return self.root

    def zarr_store(self) -> Path:
        return self.root

    def make_folder(self, folder: Path) -> None:
        if folder not in self._folders:
            with _wrapped(folder, "create"):
                folder.mkdir(parents=True, exist_ok=True)
            self._folders.add(folder)
            self._unsynced.add(folder.parent)

    def touched(self, path: Path) -> None:
        self._unsynced.add(path)
        self._unsynced.add(path.parent)

    # --- the root ---------------------------------------------------------------------------------

    def create(self, *, overwrite: bool = False, exist_ok: bool = False) -> None:
        if overwrite and self.root.exists():
            for name in self.list():
                if name.startswith(".") and name.endswith(LOCK_SUFFIX):
                    holder = self.lock_holder(name[1 : -len(LOCK_SUFFIX)])
                    if holder is not None:
                        raise OutputBusyError(
                            f"{self.root} is being written by {holder}; it was not replaced. Wait for that "
                            "run to end, or choose another file_prefix"
                        )
            with _wrapped(self.root, "replace"):
                if self.root.is_dir():
                    shutil.rmtree(self.root)
                else:
                    self.root.unlink()
        with _wrapped(self.root, "create"):
            self.root.parent.mkdir(parents=True, exist_ok=True)
            try:
                self.root.mkdir()
            except FileExistsError as err:
                if not (exist_ok and self.root.is_dir()):
                    raise StoreExistsError(
                        f"{self.root} exists already (another writer made it meanwhile?); nothing was "
                        "written to it: choose another file_prefix, or pass overwrite=True to replace it"
                    ) from err
        self._folders.add(self.root)
        self._unsynced.add(self.root.parent)

    def exists(self, key: str = "") -> bool:
        return self.path(key).exists()

    def list(self, prefix: str = "") -> list[str]:
        folder = self.path(prefix)
        try:
            return sorted(p.name for p in folder.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return []

    def delete(self, key: str) -> None:
        path = self.path(key)
        with _wrapped(path, "remove"):
            if path.is_dir():
                shutil.rmtree(path)
                self._folders = {f for f in self._folders if f != path and path not in f.parents}
            else:
                path.unlink(missing_ok=True)
        self._unsynced.add(path.parent)

    # --- whole objects ----------------------------------------------------------------------------

    def put(self, key: str, data: Bytes, *, durable: bool = False) -> None:
        path = self.path(key)
        tmp = _temporary(path)
        try:
            with _wrapped(path):
                self.make_folder(path.parent)
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                try:
                    _write_all(fd, data)
                    if durable:
                        os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, path)
        except BaseException:  # a full disk leaves no temporary file behind, as writer() does not
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        if durable:
            self._unsynced.add(path.parent)
        else:
            self.touched(path)

    def size(self, key: str) -> int:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError:
            return 0

    def get(self, key: str) -> bytes | None:
        path = self.path(key)
        with _wrapped(path, "read"):
            try:
                return path.read_bytes()
            except FileNotFoundError:
                return None

    @contextlib.contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        path = self.path(key)
        tmp = _temporary(path)
        try:
            with _wrapped(path):
                self.make_folder(path.parent)
                with open(tmp, "wb") as file:
                    yield file
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        self._unsynced.add(path.parent)

    @contextlib.contextmanager
    def reader(self, key: str) -> Iterator[BinaryIO]:
        path = self.path(key)
        with _wrapped(path, "read"), open(path, "rb") as file:
            yield file

    def rename(self, key: str, new_key: str) -> None:
        path, new = self.path(key), self.path(new_key)
        with _wrapped(new):
            self.make_folder(new.parent)
            os.replace(path, new)
        self._folders = {f for f in self._folders if f != path and path not in f.parents}
        self._unsynced.update({path.parent, new.parent})

    # --- owners ----------------------------------------------------------------------------------

    def _lock_path(self, name: str) -> Path:
        if not self.root.is_dir():  # an output that is one file (HDF5): the lock is beside it
            return self.root.with_name(f".{self.root.name}.{name}{LOCK_SUFFIX}")
        return self.root / f".{name}{LOCK_SUFFIX}"

    def lock(self, name: str) -> WriterLock:
        path = self._lock_path(name)
        with _wrapped(self.root, "lock"):  # the output, which the user knows, not its lock file
            while True:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    raise OutputBusyError(
                        f"{self.root} is being written by {_holder_text(path)}; nothing was written. "
                        "Every output has one writer: choose another file_prefix, or wait for that run to end"
                    ) from None
                except BaseException:
                    os.close(fd)
                    raise
                try:  # the file we locked may have been released and removed meanwhile: lock the new one
                    if os.fstat(fd).st_ino == path.stat().st_ino:
                        break
                except FileNotFoundError:
                    pass
                os.close(fd)
            since = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
            holder = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since})
            os.ftruncate(fd, 0)
            _write_all(fd, holder.encode(), 0)
        return _FileLock(path, fd)

    def lock_holder(self, name: str) -> str | None:
        path = self._lock_path(name)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder_text(path)
        finally:
            os.close(fd)  # closing lets go of a lock we got: the writer that made it is gone
        return None

    # --- room to write ----------------------------------------------------------------------------

    def _nearest_folder(self) -> Path:
        """The folder a run's first file would be made in, or its nearest ancestor that exists."""
        folder = self.root if self.root.is_dir() else self.root.parent
        while not folder.is_dir() and folder != folder.parent:
            folder = folder.parent
        return folder

    def check_writable(self) -> None:
        probe = self._nearest_folder() / f".bluesky-zarr-probe-{os.getpid()}-{threading.get_ident()}"
        with _wrapped(self.root):  # a read-only mount, a folder without write permission
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            os.unlink(probe)

    def free_bytes(self) -> int:
        with _wrapped(self.root, "check the free space of"):
            stat = os.statvfs(self._nearest_folder())
        return stat.f_bavail * stat.f_frsize

    # --- growing objects and durability -----------------------------------------------------------

    def grow(self, key: str, *, hidden: bool = True, reopen: bool = False) -> GrowingObject:
        return _LocalGrowing(self, key, hidden=hidden, reopen=reopen)

    def sync(self) -> None:
        """fsync every file written since the last sync, then the folders that hold them.

        An fsync that fails is raised (after the others were tried), and that file is never
        fsynced again: after a failed fsync the kernel may have dropped the dirty pages and marked
        them clean, so a second fsync would report success for data that is not on disk."""
        pending, self._unsynced = self._unsynced - self._failed, set()
        first: WriteError | None = None
        for path in sorted(pending, key=lambda p: (p.is_dir(), -len(p.parts))):
            # a file replaced or removed since is gone from its folder, which is synced
            try:
                with _wrapped(path, "sync"), contextlib.suppress(FileNotFoundError):
                    _fsync(path)
            except WriteError as err:
                self._failed.add(path)
                first = first or err
        if first is not None:
            raise first
