"""Reading stored runs back: :func:`open_run` gives an :class:`xarray.DataTree`."""

from ._open_run import open_run

__all__ = ["open_run"]
