"""`make demo`: a nested wavelength x position scan with a camera, written to experiment.zarr.

A real bluesky RunEngine drives simulated devices through a 10 wavelengths x 5 positions grid,
a 256 x 256 uint16 frame at every point; ZarrWriter writes the run as it happens, and the result
opens in xarray with the scan's dimensions and coordinates.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
from bluesky import RunEngine
from bluesky.plans import grid_scan
from ophyd.sim import SynAxis, SynSignal

from bluesky_zarr import ZarrWriter, open_run

HERE = Path.cwd()


class Camera(SynSignal):  # type: ignore[misc]
    """A stand-in 256 x 256 uint16 camera: a spectral peak that moves with the laser and stage."""

    def __init__(self, laser: SynAxis, stage: SynAxis) -> None:
        self.rng = np.random.default_rng(0)
        y, x = np.mgrid[0:256, 0:256]
        self.profile = np.exp(-((x - 128) ** 2 + (y - 128) ** 2) / (2 * 40**2))

        def frame() -> np.ndarray:
            wavelength, position = laser.readback.get(), stage.readback.get()
            peak = 2000 * np.exp(-((wavelength - 750) ** 2) / (2 * 20**2)) * (1 + 0.1 * position)
            return self.rng.poisson(100 + peak * self.profile).astype("<u2")

        super().__init__(func=frame, name="camera_image")

    def describe(self) -> dict[str, Any]:
        description: dict[str, Any] = super().describe()
        description[self.name].update(
            dtype="array", dtype_numpy="<u2", shape=[256, 256], dims=["y", "x"], units="counts"
        )
        return description


def main() -> None:
    target = HERE / "experiment.zarr"
    if target.exists():
        shutil.rmtree(target)  # the demo's own output from an earlier run
    laser = SynAxis(name="laser_wavelength", labels={"motors"})
    stage = SynAxis(name="stage_x", labels={"motors"})
    camera = Camera(laser, stage)

    RE = RunEngine({})
    RE.subscribe(ZarrWriter(HERE, file_prefix="experiment"))
    started = time.perf_counter()
    (uid,) = RE(grid_scan([camera], laser, 700, 790, 10, stage, 0, 4, 5, snake_axes=True))
    print(f"scan {uid} took {time.perf_counter() - started:.1f} s and wrote {target}\n")

    tree = open_run(target)
    print(tree)
    value = tree["primary"].camera_image.sel(laser_wavelength=750, stage_x=0).isel(y=128, x=128)
    print(f"\ncamera_image at wavelength 750 nm, position 0, centre pixel: {int(value)} counts")


if __name__ == "__main__":
    main()
