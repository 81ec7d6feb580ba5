"""The table formats: Parquet and Arrow IPC, one table per stream, from one Arrow mapping.

- :mod:`._layout` (pure): a stream schema as the columns of its table.
- :mod:`._batches`: rows gathered as lists, turned into record batches.
- :mod:`._run`: :class:`TableFormat` and the run sink both formats share.
- :mod:`._parquet`, :mod:`._arrow`: what each format does with a batch.
"""

from ._arrow import ArrowIPC
from ._layout import Column, TableLayout, table_layout
from ._parquet import Parquet, finalize_parquet
from ._run import TableFormat, TableRun

__all__ = [
    "ArrowIPC",
    "Column",
    "Parquet",
    "TableFormat",
    "TableLayout",
    "TableRun",
    "finalize_parquet",
    "table_layout",
]
