"""The error the codec subpackage raises."""

from __future__ import annotations

from .._errors import ConfigurationError

__all__ = ["CodecError"]


class CodecError(ConfigurationError):
    """A codec choice does not fit its data, or a stored chunk does not decode.

    A :class:`~bluesky_zarr.ConfigurationError` (and so a ``ValueError``): most are mistakes in
    what a writer was asked for.

    Raised before anything is written when a choice names an unknown preset, holds a malformed
    codec description, or combines codecs that cannot encode the array's data type; raised on
    read when a chunk is corrupt (a checksum that does not match, a size that does not fit).
    """
