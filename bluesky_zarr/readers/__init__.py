"""Reading stored runs back: :func:`open_run` gives an :class:`xarray.DataTree`."""

from ._inspect import inspect_run
from ._open_run import open_run
from ._parts import live_parquet_parts
from ._quick_look import quick_look

__all__ = ["inspect_run", "live_parquet_parts", "open_run", "quick_look"]
