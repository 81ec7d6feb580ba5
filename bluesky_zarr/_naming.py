"""File names made from metadata, kept inside the target directory."""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ._errors import ConfigurationError, UnsafePathError

__all__ = [
    "HDF5_SUFFIXES",
    "SCHEMA_PART",
    "check_template",
    "live_part_names",
    "render_file_prefix",
    "store_path",
]

HDF5_SUFFIXES = (".h5", ".hdf5", ".nxs")
"""The names a run's HDF5 file may end with (``.h5`` by default)."""

_FORBIDDEN_IN_VALUES = ("/", "\\")

_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
"""Unicode categories a file name must not hold: control characters (NUL, newline, tab),
format characters (the right-to-left override that shows ``txt.exe`` as ``exe.txt``, zero-width
spaces), lone surrogates and line or paragraph separators."""


def _unprintable(text: str) -> str | None:
    """The first character of ``text`` that a file name must not hold, described, or ``None``."""
    for char in text:
        if unicodedata.category(char) in _UNPRINTABLE:
            return f"U+{ord(char):04X} ({unicodedata.name(char, 'a control character')})"
    return None


def check_template(template: str) -> None:
    """Refuse a ``file_prefix`` whose own text holds a character no file name should hold."""
    if not isinstance(template, str):
        raise ConfigurationError(f"file_prefix must be text, not {type(template).__name__}")
    bad = _unprintable(template)
    if bad is not None:
        raise ConfigurationError(
            f"file_prefix {template!r} holds {bad}, which a file name must not hold; remove it"
        )


def render_file_prefix(template: str, start: Mapping[str, Any]) -> str:
    """Fill ``template`` (``str.format`` syntax, e.g. ``"{start[scan_id]}-"``) from a start document.

    Separators written in the template itself make subdirectories; a separator or ``..`` that
    comes from the metadata is refused, so a run's metadata can never place files outside the
    target directory, and so is a character no file name should hold (NUL, a newline, a
    right-to-left override: see ``_UNPRINTABLE``). The name is in Unicode normal form NFC, so
    that ``café`` typed on two keyboards (one code point, or ``e`` and a combining accent) names
    one output, not two.
    """
    uid = start.get("uid", "<no uid>")
    formatter = string.Formatter()
    pieces: list[str] = []
    try:
        for literal, field, spec, conversion in formatter.parse(template):
            pieces.append(literal)
            if field is None:
                continue
            value, _ = formatter.get_field(field, (), {"start": start})
            if conversion:
                value = formatter.convert_field(value, conversion)
            text = unicodedata.normalize("NFC", formatter.format_field(value, spec or ""))
            bad = _unprintable(text)
            if bad is not None:
                raise UnsafePathError(
                    f"file_prefix {template!r} of run {uid}: the value {text!r} of {{{field}}} holds {bad}, "
                    "which a file name must not hold; nothing was written. Fix the metadata, or choose a "
                    "template without that field"
                )
            if any(sep in text for sep in _FORBIDDEN_IN_VALUES) or text in {".", ".."}:
                raise UnsafePathError(
                    f"file_prefix {template!r} of run {uid}: the value {text!r} of {{{field}}} contains a "
                    "path separator or is '.'/'..'; choose a template whose fields are plain names"
                )
            pieces.append(text)
    except KeyError as err:
        raise UnsafePathError(
            f"file_prefix {template!r} cannot be filled from the start document of run {uid}: it has no "
            f"{err.args[0]!r} (for {{{field}}}); pass it as metadata, RE(plan, {err.args[0]}=...), or use "
            "fields every start document has, e.g. '{start[uid]}' or '{start[scan_id]}-'"
        ) from err
    except (IndexError, AttributeError, ValueError) as err:
        if isinstance(err, UnsafePathError):
            raise
        raise UnsafePathError(
            f"file_prefix {template!r} cannot be filled from the start document of run {uid}: {err!r}; "
            "use fields the start document has, e.g. '{start[uid]}' or '{start[scan_id]}-'"
        ) from err
    prefix = unicodedata.normalize("NFC", "".join(pieces))
    parts = Path(prefix).parts
    if not prefix or Path(prefix).is_absolute() or ".." in parts or prefix.startswith("~"):
        raise UnsafePathError(
            f"file_prefix {template!r} of run {uid} gives {prefix!r}, which is empty or leaves the target "
            "directory; use a relative name without '..'"
        )
    return prefix


def store_path(directory: str | Path, prefix: str, suffix: str) -> Path:
    """Join ``directory`` and ``prefix + suffix`` and check the result stays inside ``directory``."""
    root = Path(directory).resolve()
    path = (root / f"{prefix}{suffix}").resolve()
    if root != path and root not in path.parents:
        raise UnsafePathError(f"{path} is outside {root}; choose a file_prefix that stays inside it")
    return path


SCHEMA_PART = "schema_part"
"""The schema metadata key by which a Parquet data part names the part that holds the run's documents."""

_PART = re.compile(r"^(?:part|\.combined)-(\d+)(?:-(\d+))?\.parquet$")
"""``part-<n>.parquet``, a part of several, ``part-<first>-<last>.parquet``, and the hidden name an older
writer gave a combined part, ``.combined-<first>-<last>.parquet``."""


def live_part_names(names: Iterable[str]) -> list[str]:
    """The names, among those of a Parquet stream's parts folder, of the parts that hold its rows, in
    order: a combined part, ``part-<first>-<last>.parquet``, replaces the parts it holds.

    The combined part appears (whole, by an atomic rename) before the parts it holds are deleted, so a
    listing taken at any moment, with these names picked from it, holds every row once. Other files
    (temporary ``.partial`` ones, ``_finish.json``) are left out.
    """
    singles: list[tuple[int, str]] = []
    combined: list[tuple[int, int, str]] = []
    for name in names:
        found = _PART.match(name)
        if found is None:
            continue
        if found.group(2) is None:
            singles.append((int(found.group(1)), name))
        else:
            combined.append((int(found.group(1)), int(found.group(2)), name))
    kept = [(n, n, k) for n, k in singles if not any(lo <= n <= hi for lo, hi, _ in combined)]
    return [k for _, _, k in sorted(kept + combined, key=lambda r: r[:2])]
