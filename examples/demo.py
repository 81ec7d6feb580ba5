"""`make demo`: a nested wavelength x position scan with a camera, written to experiment.zarr.

A real bluesky RunEngine drives the simulated laser, stage, camera and power meter of
``bluesky_zarr.devices`` through a 10 wavelengths x 5 positions grid (``bluesky_zarr.plans``),
a 256 x 256 uint16 frame at every point; ZarrWriter writes the run as it happens, and the result
opens in xarray with the scan's dimensions and coordinates.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from bluesky import RunEngine

from bluesky_zarr import ZarrWriter, open_run
from bluesky_zarr.devices import make_sim_instrument
from bluesky_zarr.plans import wavelength_position_scan

HERE = Path.cwd()


def main() -> None:
    target = HERE / "experiment.zarr"
    if target.exists():
        shutil.rmtree(target)  # the demo's own output from an earlier run
    # simulated Ti:sapphire laser, linear stage, 256 x 256 uint16 camera and power meter
    lab = make_sim_instrument(shape=(256, 256), exposure_time=0.005, fast=True)

    RE = RunEngine({})
    RE.subscribe(ZarrWriter(HERE, file_prefix="experiment"))
    started = time.perf_counter()
    (uid,) = RE(
        wavelength_position_scan(lab.detectors, lab.laser, (700, 790, 10), lab.stage, (0, 4, 5), snake=True)
    )
    print(f"scan {uid} took {time.perf_counter() - started:.1f} s and wrote {target}\n")

    tree = open_run(target)
    print(tree)
    value = tree["primary"].camera_image.sel(wavelength=750, position=0).isel(y=128, x=128)
    print(f"\ncamera_image at wavelength 750 nm, position 0, centre pixel: {int(value)} counts")


if __name__ == "__main__":
    main()
