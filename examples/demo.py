"""`make demo`: a nested wavelength x position scan with a camera, written to experiment.zarr.

A real bluesky RunEngine drives the simulated laser, stage, camera and power meter of
``bluesky_zarr.devices`` through a 10 wavelengths x 5 positions grid (``bluesky_zarr.plans``),
a 256 x 256 uint16 frame at every point. One Writer writes the run as it happens, in one pass:
the whole run into a Zarr store, which opens in xarray with the scan's dimensions and
coordinates, and the scalar readings into Parquet tables (experiment/<stream>.parquet) for
pandas and polars. Then a quick look, experiment.png: a frame and the spectrum along wavelength.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pyarrow.parquet as pq
from bluesky import RunEngine

from bluesky_zarr import Parquet, Writer, Zarr, open_run, quick_look
from bluesky_zarr.devices import make_sim_instrument
from bluesky_zarr.plans import wavelength_position_scan

HERE = Path.cwd()


def main() -> None:
    target = HERE / "experiment.zarr"
    for earlier in (target, HERE / "experiment", HERE / "experiment.png"):
        if earlier.exists():
            # the demo's own output from an earlier run
            shutil.rmtree(earlier) if earlier.is_dir() else earlier.unlink()
    # simulated Ti:sapphire laser, linear stage, 256 x 256 uint16 camera and power meter
    lab = make_sim_instrument(shape=(256, 256), exposure_time=0.005, fast=True)

    RE = RunEngine({})
    # progress=True: a bar of the points taken, the rate, the time left and the writer's lag
    RE.subscribe(Writer(HERE, Zarr(), Parquet(data_keys="scalars"), file_prefix="experiment", progress=True))
    started = time.perf_counter()
    (uid,) = RE(
        wavelength_position_scan(lab.detectors, lab.laser, (700, 790, 10), lab.stage, (0, 4, 5), snake=True)
    )
    print(f"scan {uid} took {time.perf_counter() - started:.1f} s and wrote {target}\n")

    tree = open_run(target)
    print(tree)
    value = tree["primary"].camera_image.sel(wavelength=750, position=0).isel(y=128, x=128)
    print(f"\ncamera_image at wavelength 750 nm, position 0, centre pixel: {int(value)} counts")
    quick_look(target, sel={"wavelength": 750, "position": 0}, output=HERE / "experiment.png")
    print(f"wrote {HERE / 'experiment.png'}: that frame, and the spectrum along wavelength at position 0")

    table = pq.read_table(HERE / "experiment" / "primary.parquet")
    columns = ["seq_num", "wavelength_index", "position_index", "power_meter_power", "camera_mean"]
    print(
        f"\nexperiment/primary.parquet, the scalars, one row per event ({table.num_rows} rows), the first 6:"
    )
    print("  ".join(f"{c:>17}" for c in columns))
    for row in table.select(columns).slice(0, 6).to_pylist():
        print("  ".join(f"{row[c]:>17.6g}" for c in columns))


if __name__ == "__main__":
    main()
