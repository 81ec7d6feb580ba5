"""The table formats: Parquet, Arrow IPC and CSV, one table per stream, from one Arrow mapping.

- :mod:`._layout` (pure): a stream schema as the columns of its table.
- :mod:`._batches`: rows gathered as lists, turned into record batches.
- :mod:`._run`: :class:`TableFormat` and the run sink both formats share.
- :mod:`._parquet`, :mod:`._arrow`, :mod:`._csv`: what each format does with a batch.
"""

from ._arrow import ArrowIPC
from ._csv import CSV, csv_header
from ._layout import Column, TableLayout, table_layout
from ._parquet import Parquet, finalize_parquet
from ._run import TableFormat, TableRun

__all__ = [
    "CSV",
    "ArrowIPC",
    "Column",
    "Parquet",
    "TableFormat",
    "TableLayout",
    "TableRun",
    "csv_header",
    "finalize_parquet",
    "table_layout",
]
