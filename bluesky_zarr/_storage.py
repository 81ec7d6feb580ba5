"""Where the bytes of a store go: a directory on a local file system.

Every object is written to a temporary file beside its final name and renamed into place, so a
reader (or a crash) never sees half an object: a chunk is either there whole or not at all.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ._errors import WriteError

__all__ = ["LocalStorage"]


class LocalStorage:
    """Atomic puts of whole objects below ``root``, keyed by ``/``-separated Zarr keys."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._made: set[Path] = set()

    def _path(self, key: str) -> Path:
        return self.root / key

    def put(self, key: str, data: bytes | memoryview) -> None:
        path = self._path(key)
        parent = path.parent
        tmp = parent / f".{path.name}.partial"
        try:
            if parent not in self._made:
                parent.mkdir(parents=True, exist_ok=True)
                self._made.add(parent)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                view = memoryview(data).cast("B")
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except OSError as err:
            raise WriteError(err.errno, f"cannot write {path}: {err.strerror or err}") from err

    def local_path(self, key: str) -> Path:
        """The file of ``key``, for writers that fill one object in place (shards); its folder exists."""
        path = self._path(key)
        if path.parent not in self._made:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise WriteError(err.errno, f"cannot create {path.parent}: {err.strerror or err}") from err
            self._made.add(path.parent)
        return path

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def create_root(self, overwrite: bool) -> None:
        """Create the store's directory; an existing one is replaced only with ``overwrite``."""
        if overwrite and self.root.exists():
            shutil.rmtree(self.root)
        try:
            self.root.parent.mkdir(parents=True, exist_ok=True)
            self.root.mkdir()
        except FileExistsError:
            raise
        except OSError as err:
            raise WriteError(err.errno, f"cannot create {self.root}: {err.strerror or err}") from err
        self._made.add(self.root)
