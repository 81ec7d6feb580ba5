"""The nested scans: start-document grid contract, writer round trip, argument checks, BEC, pause/resume."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest
from bluesky import RunEngine
from bluesky.callbacks.best_effort import BestEffortCallback
from bluesky.utils import FailedStatus, RunEngineInterrupted
from ophyd.sim import SynAxis
from ophyd.utils import LimitError

import bluesky_zarr
from bluesky_zarr.devices import DeviceFaultError, Instrument, make_sim_instrument
from bluesky_zarr.plans import PlanArgumentError, SetpointLimitError, nested_scan, wavelength_position_scan

matplotlib.use("Agg")


@pytest.fixture
def sim() -> Instrument:
    return make_sim_instrument(shape=(8, 8), exposure_time=0.001, fast=True)


@pytest.fixture
def RE_docs() -> tuple[RunEngine, list[tuple[str, Any]]]:
    RE = RunEngine({})
    docs: list[tuple[str, Any]] = []
    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    return RE, docs


def test_start_document_carries_the_grid(sim: Instrument, RE_docs) -> None:  # type: ignore[no-untyped-def]
    RE, docs = RE_docs
    RE(wavelength_position_scan(sim.detectors, sim.laser, [700, 750, 800], sim.stage, (-1, 1, 3), snake=True))
    start = docs[0][1]
    assert start["shape"] == [3, 3]
    assert start["snaking"] == [False, True]
    assert start["motors"] == ("laser", "stage") or list(start["motors"]) == ["laser", "stage"]
    assert start["plan_name"] == "wavelength_position_scan"
    assert start["grid"] == {
        "dims": ["wavelength", "position"],
        "setpoints": {"wavelength": [700.0, 750.0, 800.0], "position": [-1.0, 0.0, 1.0]},
        "units": {"wavelength": "nm", "position": "mm"},
        "readbacks": {"wavelength": ["laser_wavelength"], "position": ["stage_position"]},
    }
    assert [tuple(f) for f, _ in start["hints"]["dimensions"]] == [("laser_wavelength",), ("stage_position",)]
    primary = next(d for n, d in docs if n == "descriptor" and d["name"] == "primary")
    events = [d for n, d in docs if n == "event" and d["descriptor"] == primary["uid"]]
    assert [e["data"]["stage_position"] for e in events] == [-1.0, 0.0, 1.0, 1.0, 0.0, -1.0, -1.0, 0.0, 1.0]
    assert all("power_meter_power" in e["data"] for e in events)
    baseline = next(d for n, d in docs if n == "descriptor" and d["name"] == "baseline")
    for key in ("laser_power", "stage_low_limit", "stage_high_limit", "camera_exposure_time", "camera_gain"):
        assert key in baseline["data_keys"]
    assert primary["data_keys"]["camera_image"]["dtype_numpy"] == "<u2"


def test_nested_scan_three_axes_named_dims(sim: Instrument, RE_docs) -> None:  # type: ignore[no-untyped-def]
    RE, docs = RE_docs
    focus = SynAxis(name="focus")
    RE(
        nested_scan(
            [sim.power_meter],
            (sim.laser, 700.0, 900.0, 2),
            (sim.stage, [0.0, 1.0]),
            (focus, [0.0, 0.5, 1.0]),
            dims=["wl", "x", "z"],
        )
    )
    start = docs[0][1]
    assert start["shape"] == [2, 2, 3] and start["snaking"] == [False, False, False]
    assert start["grid"]["dims"] == ["wl", "x", "z"]
    assert start["grid"]["setpoints"]["z"] == [0.0, 0.5, 1.0]
    assert start["grid"]["readbacks"]["z"] == ["focus"]
    assert docs[-1][1]["num_events"]["primary"] == 12


def test_default_dims_are_motor_names(sim: Instrument, RE_docs) -> None:  # type: ignore[no-untyped-def]
    RE, docs = RE_docs
    RE(nested_scan([sim.camera], (sim.stage, [0.0, 1.0])))
    assert docs[0][1]["grid"]["dims"] == ["stage"]
    assert docs[0][1]["grid"]["units"] == {"stage": "mm"}


@pytest.mark.parametrize(
    ("wavelengths", "positions", "error", "match"),
    [
        ([], [0.0], PlanArgumentError, "empty"),
        ([700.0, math.nan], [0.0], PlanArgumentError, "finite"),
        ([700.0], [0.0, math.inf], PlanArgumentError, "finite"),
        ([650.0, 700.0], [0.0], SetpointLimitError, "laser: setpoints \\[650.0\\]"),
        ([700.0], (0.0, 40.0, 3), LimitError, "stage"),
        ([700.0], (0.0, 1.0, 0), PlanArgumentError, "num"),
        ("700", [0.0], PlanArgumentError, "list of numbers"),
    ],
)
def test_bad_setpoints_raise_before_a_run(sim, RE_docs, wavelengths, positions, error, match) -> None:  # type: ignore[no-untyped-def]
    RE, docs = RE_docs
    with pytest.raises(error, match=match):
        RE(wavelength_position_scan(sim.detectors, sim.laser, wavelengths, sim.stage, positions))
    assert docs == []


def test_duplicate_and_unreadable_devices(sim: Instrument, RE_docs) -> None:  # type: ignore[no-untyped-def]
    _, docs = RE_docs
    with pytest.raises(PlanArgumentError, match="camera is given twice"):
        wavelength_position_scan([sim.camera, sim.camera], sim.laser, [700.0], sim.stage, [0.0])
    with pytest.raises(PlanArgumentError, match="laser is given twice"):
        nested_scan([sim.camera], (sim.laser, [700.0]), (sim.laser, [800.0]))
    with pytest.raises(PlanArgumentError, match="not a readable"):
        wavelength_position_scan([object()], sim.laser, [700.0], sim.stage, [0.0])
    with pytest.raises(PlanArgumentError, match="settle_time"):
        wavelength_position_scan(sim.detectors, sim.laser, [700.0], sim.stage, [0.0], settle_time=-1)
    with pytest.raises(PlanArgumentError, match="dims"):
        nested_scan([sim.camera], (sim.laser, [700.0]), dims=["a", "b"])
    assert docs == []


def test_best_effort_callback_live_grid(sim: Instrument, RE_docs) -> None:  # type: ignore[no-untyped-def]
    RE, docs = RE_docs
    bec = BestEffortCallback()
    RE.subscribe(bec)
    RE(wavelength_position_scan(sim.detectors, sim.laser, [700.0, 800.0], sim.stage, [0.0, 1.0, 2.0]))
    assert docs[-1][1]["exit_status"] == "success"
    grids = [grid for per_descriptor in bec._live_grids.values() for grid in per_descriptor.values()]
    assert grids, "BestEffortCallback made no LiveGrid"
    matplotlib.pyplot.close("all")


def test_pause_and_resume(sim: Instrument, RE_docs) -> None:  # type: ignore[no-untyped-def]
    RE, docs = RE_docs
    state = {"paused": False}

    def pause_after_second_point(name: str, doc: dict) -> None:
        if name == "event" and doc["seq_num"] == 2 and "camera_image" in doc["data"] and not state["paused"]:
            state["paused"] = True
            # from another thread, as Ctrl-C does; it rewinds to the last checkpoint
            threading.Thread(target=RE.request_pause, kwargs={"defer": False}).start()

    RE.subscribe(pause_after_second_point)
    with pytest.raises(RunEngineInterrupted):
        RE(wavelength_position_scan(sim.detectors, sim.laser, [700.0, 800.0], sim.stage, [0.0, 1.0]))
    assert RE.state == "paused"
    RE.resume()
    assert docs[-1][1]["exit_status"] == "success"
    events = [d for n, d in docs if n == "event" and "camera_image" in d["data"]]
    points = [(e["data"]["laser_wavelength"], e["data"]["stage_position"]) for e in events]
    assert set(points) == {(700.0, 0.0), (700.0, 1.0), (800.0, 0.0), (800.0, 1.0)}
    assert [e["seq_num"] for e in events] == list(range(1, len(events) + 1))


def test_written_store_opens_on_the_grid(sim: Instrument, tmp_path: Path) -> None:
    RE = RunEngine({})
    RE.subscribe(bluesky_zarr.ZarrWriter(tmp_path))
    RE(wavelength_position_scan(sim.detectors, sim.laser, [700, 750, 800], sim.stage, (-1, 1, 3), snake=True))
    (store,) = tmp_path.glob("*.zarr")
    tree = bluesky_zarr.open_run(store)
    images = tree["primary"].camera_image
    assert images.dims == ("wavelength", "position", "y", "x")
    frame = images.sel(wavelength=750, position=0)
    assert frame.shape == (8, 8) and frame.dtype == np.uint16
    assert float(tree["primary"].stage_position.sel(wavelength=750, position=0)) == 0.0
    assert float(tree["primary"].laser_wavelength.sel(wavelength=750, position=1)) == 750.0


def test_failing_device_ends_run_with_fail_and_keeps_data(tmp_path: Path) -> None:
    sim = make_sim_instrument(shape=(8, 8), exposure_time=0.001, fast=True)
    sim.camera.fail_after = 4  # type: ignore[attr-defined]
    RE = RunEngine({})
    docs: list[tuple[str, Any]] = []
    RE.subscribe(lambda name, doc: docs.append((name, doc)))
    RE.subscribe(bluesky_zarr.ZarrWriter(tmp_path))
    with pytest.raises(FailedStatus) as info:
        RE(wavelength_position_scan(sim.detectors, sim.laser, [700, 750, 800], sim.stage, (-1, 1, 3)))
    assert isinstance(info.value.__cause__, DeviceFaultError)
    assert docs[-1][0] == "stop" and docs[-1][1]["exit_status"] == "fail"
    (store,) = tmp_path.glob("*.zarr")
    tree = bluesky_zarr.open_run(store)
    assert "fail" in str(tree.attrs["status"])
    first = tree["primary"].camera_image.sel(wavelength=700, position=-1).values
    assert first.mean() > 100
    assert float(tree["primary"].stage_position.sel(wavelength=750, position=-1)) == -1.0
