"""A corpus of real document streams: bluesky's own plans run by a real RunEngine on ophyd.sim
devices, on ophyd-async's simulated devices, and on this package's simulated instrument.

Each entry of :data:`RECORDINGS` is a plan factory; :func:`record` runs it in a fresh RunEngine and
returns the ``(name, doc)`` pairs it emitted. Add a recording by adding an entry (a name and a
function that takes fresh ``ophyd.sim.hw()`` devices and returns a plan), or to
:data:`DEVICE_RECORDINGS` for devices made per recording; mark it in ``XFAIL`` of
``tests/test_corpus.py`` if it does not land yet.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bluesky import plans as bp
from bluesky import preprocessors as bpp
from cycler import cycler
from engines import run_engine
from ophyd.sim import hw
from ophyd_async.core import StaticFilenameProvider, StaticPathProvider, init_devices
from ophyd_async.sim import PatternGenerator, SimBlobDetector, SimMotor, SimPointDetector, SimStage
from scans import pause_after_saves, run_resuming

from bluesky_zarr.devices import make_sim_instrument
from bluesky_zarr.plans import nested_scan, wavelength_position_scan


def _with_baseline(h: Any, plan: Any) -> Any:
    return bpp.baseline_wrapper(plan, [h.motor3, h.det4])


def _with_monitor(h: Any, plan: Any) -> Any:
    return bpp.monitor_during_wrapper(plan, [h.motor1.readback])


RECORDINGS: dict[str, Callable[[Any], Any]] = {
    "count": lambda h: bp.count([h.det, h.det1], 5),
    "count-img": lambda h: bp.count([h.img], 2),
    "count-direct_img": lambda h: bp.count([h.direct_img], 2),
    "count-rand-noisy": lambda h: bp.count([h.rand, h.noisy_det], 3),
    "scan": lambda h: bp.scan([h.det], h.motor1, -1, 1, 5),
    "scan-baseline": lambda h: _with_baseline(h, bp.scan([h.det1, h.det2], h.motor1, -1, 1, 4)),
    "scan-monitor": lambda h: _with_monitor(h, bp.scan([h.det], h.motor1, 0, 2, 3)),
    "scan-jittery": lambda h: bp.scan([h.det], h.jittery_motor1, 0, 1, 3),
    "rel_scan": lambda h: bp.rel_scan([h.det], h.motor1, -1, 1, 3),
    "list_scan": lambda h: bp.list_scan([h.det], h.motor1, [0.5, 1.5, -1.0]),
    "rel_list_scan": lambda h: bp.rel_list_scan([h.det], h.motor1, [0.5, 1.5, -1.0]),
    "log_scan": lambda h: bp.log_scan([h.det], h.motor1, 0, 2, 4),
    "grid_scan": lambda h: bp.grid_scan([h.det4], h.motor1, -1, 1, 3, h.motor2, 0, 2, 2),
    "grid_scan-snake": lambda h: bp.grid_scan(
        [h.det4], h.motor1, -1, 1, 3, h.motor2, 0, 2, 3, snake_axes=True
    ),
    "rel_grid_scan": lambda h: bp.rel_grid_scan([h.det4], h.motor1, -1, 1, 3, h.motor2, 0, 2, 2),
    "list_grid_scan": lambda h: bp.list_grid_scan([h.det4], h.motor1, [1.0, 2.0], h.motor2, [0.5, 1.5]),
    "list_grid_scan-int": lambda h: bp.list_grid_scan([h.det4], h.motor1, [1, 2], h.motor2, [0, 1]),
    "rel_list_grid_scan": lambda h: bp.rel_list_grid_scan(
        [h.det4], h.motor1, [1.0, 2.0], h.motor2, [0.5, 1.5]
    ),
    "spiral": lambda h: bp.spiral([h.det4], h.motor1, h.motor2, 0, 0, 1, 1, 0.5, 2),
    "spiral_fermat": lambda h: bp.spiral_fermat([h.det4], h.motor1, h.motor2, 0, 0, 1, 1, 0.5, 1),
    "spiral_square": lambda h: bp.spiral_square([h.det4], h.motor1, h.motor2, 0, 0, 1, 1, 3, 3),
    "rel_spiral": lambda h: bp.rel_spiral([h.det4], h.motor1, h.motor2, 1, 1, 0.5, 2),
    "inner_product_scan": lambda h: bp.inner_product_scan([h.det], 3, h.motor1, 0, 1, h.motor2, 1, 2),
    "x2x_scan": lambda h: bp.x2x_scan([h.det], h.motor1, h.motor2, 0, 1, 3),
    "rel_log_scan": lambda h: bp.rel_log_scan([h.det], h.motor1, 0, 1, 3),
    "fly": lambda h: bp.fly([h.flyer1]),
    "scan_nd": lambda h: bp.scan_nd(
        [h.det4], cycler(h.motor1, [1.0, 2.0, 3.0]) * cycler(h.motor2, [0.0, 1.0])
    ),
    "adaptive_scan": lambda h: bp.adaptive_scan([h.det], "det", h.motor, -1, 1, 0.5, 1, 0.1, True),
    "rel_adaptive_scan": lambda h: bp.rel_adaptive_scan([h.det], "det", h.motor, -1, 1, 0.5, 1, 0.1, True),
    "tune_centroid": lambda h: bp.tune_centroid([h.det], "det", h.motor, -1, 1, 0.5, 3),
    "scan-paused": lambda h: pause_after_saves(bp.scan([h.det], h.motor1, 0, 1, 5), {2, 4}),
    "grid_scan-baseline-monitor": lambda h: _with_monitor(
        h, _with_baseline(h, bp.grid_scan([h.det4], h.motor1, 0, 1, 2, h.motor2, 0, 1, 2))
    ),
}


def record(name: str) -> list[tuple[str, Any]]:
    """The documents one recording emits, run in a fresh RunEngine."""
    docs: list[tuple[str, Any]] = []
    with run_engine() as RE:
        RE.subscribe(lambda n, d: docs.append((n, d)))
        run_resuming(RE, RECORDINGS[name](hw()))
    return docs


# --- devices made for each recording: ophyd-async's simulated ones, this package's instrument ------


def _async_grid(tmp: Path) -> Any:
    pg = PatternGenerator()
    with init_devices():
        stage = SimStage(pg)
        point = SimPointDetector(pg)
    return bp.grid_scan([point], stage.x, -1, 1, 3, stage.y, -1, 1, 2)


def _async_blob(tmp: Path) -> Any:
    pg = PatternGenerator()
    with init_devices():
        motor = SimMotor()
        blob = SimBlobDetector(StaticPathProvider(StaticFilenameProvider("blob"), tmp), pg)
    return bp.scan([blob], motor, 0, 1, 3)


def _lab() -> Any:
    return make_sim_instrument(shape=(8, 6), exposure_time=0.001, fast=True)


def _own_wavelength_position(tmp: Path) -> Any:
    lab = _lab()
    return wavelength_position_scan(
        lab.detectors, lab.laser, (700, 720, 3), lab.stage, (0, 1, 2), snake=True, baseline=[lab.laser]
    )


def _own_nested_3d(tmp: Path) -> Any:
    lab, h = _lab(), hw()
    return nested_scan(
        [lab.power_meter, lab.camera],
        (h.motor1, [0.0, 1.0]),
        (lab.laser, 700, 710, 2),
        (lab.stage, [0.5, -0.5, 0.0]),
        snake=True,
    )


def _own_grid_scan(tmp: Path) -> Any:  # bluesky's own plan on this package's devices
    lab = _lab()
    return bp.grid_scan([lab.power_meter], lab.laser, 700, 705, 2, lab.stage, 0, 1, 3)


DEVICE_RECORDINGS: dict[str, Callable[[Path], Any]] = {
    "async-grid_scan-point": _async_grid,
    "async-scan-blob": _async_blob,
    "own-wavelength_position_scan": _own_wavelength_position,
    "own-nested_scan-3d": _own_nested_3d,
    "own-grid_scan": _own_grid_scan,
}
"""Recordings on devices made for each: ophyd-async's (the blob detector writes a real HDF5 file
under ``tmp``) and this package's simulated instrument, in its nested scans and bluesky's plans."""


def record_devices(name: str, tmp: Path) -> list[tuple[str, Any]]:
    """The documents one recording of :data:`DEVICE_RECORDINGS` emits, run in a fresh RunEngine."""
    docs: list[tuple[str, Any]] = []
    with run_engine() as RE:
        RE.subscribe(lambda n, d: docs.append((n, d)))
        RE(DEVICE_RECORDINGS[name](tmp))
    return docs
