"""Saved document streams: the files suitcase-jsonl and suitcase-msgpack write, one run each.

suitcase-jsonl writes ``<prefix>.jsonl``, one ``[name, doc]`` JSON array per line;
suitcase-msgpack writes ``<prefix>.msgpack``, a sequence of msgpack-encoded ``(name, doc)``
pairs (numpy arrays through msgpack-numpy). A path is one such file or a directory of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._errors import DocumentError

__all__ = ["DOCUMENT_FILE_SUFFIXES", "document_files", "read_document_file"]

DOCUMENT_FILE_SUFFIXES = (".jsonl", ".msgpack")


def document_files(path: str | Path) -> list[Path]:
    """The document files at ``path``: the file itself, or a directory's, sorted by name.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist, or is a directory that holds no document file.
    DocumentError
        ``path`` is a file of another kind.
    """
    path = Path(path)
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix in DOCUMENT_FILE_SUFFIXES and p.is_file())
        if not found:
            raise FileNotFoundError(
                f"{path} holds no document file ({', '.join(DOCUMENT_FILE_SUFFIXES)}, as suitcase-jsonl "
                "and suitcase-msgpack write them)"
            )
        return found
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist; give a .jsonl or .msgpack file, or a directory of them"
        )
    if path.suffix not in DOCUMENT_FILE_SUFFIXES:
        raise DocumentError(
            f"{path} is not a document file: give a .jsonl (suitcase-jsonl) or .msgpack (suitcase-msgpack) "
            "file"
        )
    return [path]


def read_document_file(path: str | Path) -> Iterator[tuple[str, Any]]:
    """The ``(name, doc)`` pairs of one document file, in order.

    Raises
    ------
    DocumentError
        A line or record that is not a ``(name, doc)`` pair; the error names the file and where.
    """
    path = Path(path)
    if path.suffix == ".msgpack":
        yield from _msgpack_documents(path)
        return
    with path.open(encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                pair = json.loads(line)
            except ValueError as err:
                raise DocumentError(f"{path}, line {number}: not JSON ({err})") from err
            yield _pair(pair, f"{path}, line {number}")


def _msgpack_documents(path: Path) -> Iterator[tuple[str, Any]]:
    try:
        import msgpack
        import msgpack_numpy
    except ImportError as err:
        raise DocumentError(
            f"{path}: reading suitcase-msgpack files needs msgpack and msgpack-numpy "
            "(pip install 'bluesky-zarr[msgpack]')"
        ) from err
    with path.open("rb") as file:
        unpacker = msgpack.Unpacker(file, object_hook=msgpack_numpy.decode, raw=False, strict_map_key=False)
        for number, pair in enumerate(unpacker, start=1):
            yield _pair(pair, f"{path}, record {number}")


def _pair(pair: Any, where: str) -> tuple[str, Any]:
    if not (isinstance(pair, list | tuple) and len(pair) == 2 and isinstance(pair[0], str)):
        raise DocumentError(f"{where}: not a [name, document] pair")
    name, doc = pair
    if not isinstance(doc, dict):
        raise DocumentError(f"{where}: the {name!r} document is not a mapping")
    return name, doc
