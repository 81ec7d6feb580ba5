"""A corpus of real document streams: bluesky's own plans run by a real RunEngine on ophyd.sim devices.

Each entry of :data:`RECORDINGS` is a plan factory; :func:`record` runs it in a fresh RunEngine and
returns the ``(name, doc)`` pairs it emitted. Add a recording by adding an entry (a name and a
function that takes fresh ``ophyd.sim.hw()`` devices and returns a plan); mark it in
``XFAIL`` of ``tests/test_corpus.py`` if it does not land yet.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bluesky import RunEngine
from bluesky import plans as bp
from bluesky import preprocessors as bpp
from cycler import cycler
from ophyd.sim import hw
from ophyd_async.core import StaticFilenameProvider, StaticPathProvider, init_devices
from ophyd_async.sim import PatternGenerator, SimBlobDetector, SimMotor, SimPointDetector, SimStage
from scans import pause_after_saves, run_resuming


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
    RE = RunEngine({}, call_returns_result=False)
    docs: list[tuple[str, Any]] = []
    RE.subscribe(lambda n, d: docs.append((n, d)))
    run_resuming(RE, RECORDINGS[name](hw()))
    return docs


# --- ophyd-async simulated devices ----------------------------------------------------------------


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


ASYNC_RECORDINGS: dict[str, Callable[[Path], Any]] = {
    "async-grid_scan-point": _async_grid,
    "async-scan-blob": _async_blob,
}
"""Recordings on ophyd-async sim devices; the blob detector writes a real HDF5 file under ``tmp``."""


def record_async(name: str, tmp: Path) -> list[tuple[str, Any]]:
    """The documents one ophyd-async recording emits, run in a fresh RunEngine."""
    RE = RunEngine({}, call_returns_result=False)
    docs: list[tuple[str, Any]] = []
    RE.subscribe(lambda n, d: docs.append((n, d)))
    RE(ASYNC_RECORDINGS[name](tmp))
    return docs
