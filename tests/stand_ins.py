"""Small stand-in detectors for the writer tests (the real simulated devices live in bluesky_zarr.devices)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from ophyd.sim import SynSignal


class FrameCounter(SynSignal):  # type: ignore[misc]
    """A camera whose every frame is filled with the number of the reading: placement is checkable."""

    def __init__(self, name: str = "cam", shape: tuple[int, int] = (6, 4), dtype: str = "<u2") -> None:
        self._counter = itertools.count(1)
        self.frame_shape = shape
        self.frame_dtype = dtype
        super().__init__(func=self._frame, name=name)

    def _frame(self) -> np.ndarray:
        return np.full(self.frame_shape, next(self._counter), dtype=self.frame_dtype)

    def describe(self) -> dict[str, Any]:
        description: dict[str, Any] = super().describe()
        description[self.name].update(
            dtype="array", dtype_numpy=np.dtype(self.frame_dtype).str, shape=list(self.frame_shape),
            dims=["y", "x"], units="counts",
        )  # fmt: skip
        return description


class BrokenCamera(FrameCounter):
    """Gives frames of the wrong shape from the third event on (reading 1 is taken at creation)."""

    def _frame(self) -> np.ndarray:
        frame = super()._frame()
        return frame if frame[0, 0] <= 3 else frame[:-1]
