"""``finalize`` of an HDF5 file whose writer stopped: readable by every HDF5 reader, marked ``incomplete``.

A SWMR writer that is killed leaves its file with HDF5's consistency flags set (the file "is open
for writing"): only a SWMR reader opens it, and no writer. The flags are a byte of the superblock,
guarded by its checksum (Bob Jenkins' lookup3, as the HDF5 library computes it), which is what the
HDF5 tool ``h5clear`` rewrites; :func:`clear_consistency_flags` does the same, after checking that
the checksum it finds is the one it would compute. Then the file is opened as any writer opens it:
every stream that grows along ``time`` is cut to the events its ``seq_num`` vouches for (the other
datasets may be a flush ahead), and the root says ``status: incomplete`` and when it was finalized.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py

from ..._encoding import attribute, decode_attributes
from ..._errors import CorruptDataError
from .._format import Finalized, finalized_by
from ._file import LIBVER, wrapped
from ._layout import SEQ_NUM, WRITTEN

__all__ = ["clear_consistency_flags", "finalize_file", "lookup3"]

SIGNATURE = b"\x89HDF\r\n\x1a\n"
_MASK = 0xFFFFFFFF


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _MASK


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle`` of ``data``: the checksum of HDF5's metadata."""
    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & _MASK
    offset = 0
    while length > 12:
        a = (a + int.from_bytes(data[offset : offset + 4], "little")) & _MASK
        b = (b + int.from_bytes(data[offset + 4 : offset + 8], "little")) & _MASK
        c = (c + int.from_bytes(data[offset + 8 : offset + 12], "little")) & _MASK
        a = ((a - c) & _MASK) ^ _rot(c, 4)
        c = (c + b) & _MASK
        b = ((b - a) & _MASK) ^ _rot(a, 6)
        a = (a + c) & _MASK
        c = ((c - b) & _MASK) ^ _rot(b, 8)
        b = (b + a) & _MASK
        a = ((a - c) & _MASK) ^ _rot(c, 16)
        c = (c + b) & _MASK
        b = ((b - a) & _MASK) ^ _rot(a, 19)
        a = (a + c) & _MASK
        c = ((c - b) & _MASK) ^ _rot(b, 4)
        b = (b + a) & _MASK
        length -= 12
        offset += 12
    if length == 0:
        return c
    tail = data[offset:] + bytes(12 - length)
    a = (a + int.from_bytes(tail[0:4], "little")) & _MASK
    b = (b + int.from_bytes(tail[4:8], "little")) & _MASK
    c = (c + int.from_bytes(tail[8:12], "little")) & _MASK
    c = ((c ^ b) - _rot(b, 14)) & _MASK
    a = ((a ^ c) - _rot(c, 11)) & _MASK
    b = ((b ^ a) - _rot(a, 25)) & _MASK
    c = ((c ^ b) - _rot(b, 16)) & _MASK
    a = ((a ^ c) - _rot(c, 4)) & _MASK
    b = ((b ^ a) - _rot(a, 14)) & _MASK
    c = ((c ^ b) - _rot(b, 24)) & _MASK
    return c


def clear_consistency_flags(path: Path) -> bool:
    """Clear the "open for writing" flags that a writer killed left in the superblock of ``path``
    (as ``h5clear`` does); ``False`` when none were set. Only files of HDF5 1.10's format and later
    (superblock version 2 or 3, at the start of the file) have them."""
    with wrapped(path, "read"), open(path, "r+b") as file:
        head = file.read(12)
        if head[:8] != SIGNATURE or head[8] not in (2, 3):
            if head[:8] == SIGNATURE:
                return False  # an older superblock holds no consistency flags
            raise CorruptDataError(
                f"{path} is not an HDF5 file written by bluesky_zarr (no superblock at its start)"
            )
        offsets = head[9]
        size = 12 + 4 * offsets
        superblock = head + file.read(size - 12)
        stored = int.from_bytes(file.read(4), "little")
        if lookup3(superblock) != stored:
            raise CorruptDataError(
                f"{path}: the checksum of its superblock is wrong; nothing was changed. The file may be "
                "damaged: copy what a SWMR reader opens (h5py.File(path, 'r', swmr=True)) to a new file"
            )
        if superblock[11] == 0:
            return False
        cleared = superblock[:11] + b"\x00" + superblock[12:]
        file.seek(11)
        file.write(b"\x00")
        file.seek(size)
        file.write(lookup3(cleared).to_bytes(4, "little"))
        file.flush()
        os.fsync(file.fileno())
    return True


def finalize_file(path: Path) -> Finalized:
    """Finish the HDF5 file at ``path`` (see the module docstring); idempotent."""
    cleared = clear_consistency_flags(path)
    with wrapped(path, "finalize"), h5py.File(path, "r+", libver=LIBVER) as h5:
        attrs = decode_attributes(h5.attrs)
        status = str(attrs.get("status"))
        if status != "running" and not cleared:
            return Finalized(str(path), "hdf5", status, changed=False)
        notes = ["the file's consistency flags cleared (its writer was killed)"] if cleared else []
        h5.visititems(lambda name, node: _one_length(name, node, notes))
        if status == "running":
            status = "incomplete"
            h5.attrs["status"] = status
        h5.attrs["finalized"] = attribute({**finalized_by(), "notes": notes})
    return Finalized(str(path), "hdf5", status, changed=True, notes=tuple(notes))


def _one_length(name: str, node: h5py.Group | h5py.Dataset, notes: list[str]) -> None:
    """A stream that grows along ``time`` cut to the events its ``seq_num`` vouches for."""
    if not isinstance(node, h5py.Group) or SEQ_NUM not in node or WRITTEN in node:
        return
    events = len(node[SEQ_NUM])
    for key, dataset in node.items():
        if (
            isinstance(dataset, h5py.Dataset)
            and dataset.ndim
            and dataset.maxshape[0] is None  # a dimension of its own (a frame's) stays
            and dataset.shape[0] > events
        ):
            notes.append(
                f"{name}/{key}: {dataset.shape[0] - events} reading(s) past the last whole event left out"
            )
            dataset.resize(events, axis=0)
