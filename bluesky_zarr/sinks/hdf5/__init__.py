"""The HDF5 format: a schema mapped onto the datasets of a NeXus file, written as a SWMR writer.

- :mod:`._layout` (pure): a stream schema as the datasets of its ``NXdata`` group.
- :mod:`._options`: compression and chunks per data key.
- :mod:`._file`: the file, SWMR on except while its structure changes.
- :mod:`._stream`, :mod:`._run`: a stream group, and the run sink; :mod:`._format`: :class:`HDF5`.
"""

from ._format import HDF5
from ._layout import DatasetSpec, GroupLayout, hdf5_layout
from ._options import HDF5Options
from ._run import HDF5Run

__all__ = ["HDF5", "DatasetSpec", "GroupLayout", "HDF5Options", "HDF5Run", "hdf5_layout"]
