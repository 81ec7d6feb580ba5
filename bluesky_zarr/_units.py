"""Sizes as messages say them."""

from __future__ import annotations

__all__ = ["size_text"]


def size_text(nbytes: float) -> str:
    """``nbytes`` in decimal units, as a person reads it: ``"512 B"``, ``"131.1 kB"``, ``"6.6 MB"``."""
    for unit in ("B", "kB", "MB", "GB"):
        if nbytes < 1000:
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    return f"{nbytes:.1f} TB"
