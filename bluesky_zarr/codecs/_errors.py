"""The error the codec subpackage raises."""

from __future__ import annotations

from .._errors import ConfigurationError

__all__ = ["CodecError"]


class CodecError(ConfigurationError):
    """A codec choice does not fit its data: a mistake in what a writer was asked for.

    A :class:`~bluesky_zarr.ConfigurationError` (and so a ``ValueError``), raised before anything
    is written when a choice names an unknown preset, holds a malformed codec description, or
    combines codecs that cannot encode the array's data type. A stored chunk that does not decode
    is a :class:`~bluesky_zarr.CorruptDataError` instead.
    """
