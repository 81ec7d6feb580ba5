"""Every format: a relative scan is stored where its motors were, with the plan's offsets beside,
live and from the recorded documents replayed as event pages."""

from __future__ import annotations

import numpy as np
import pytest
from bluesky import plan_stubs as bps
from bluesky import plans as bp
from documents import as_pages, composed_run, events
from formats import assert_holds, assert_on_their_grid
from ophyd.sim import det, motor1, motor2

from bluesky_zarr import export

# plan, its offsets per axis
RELATIVE_PLANS = {
    "rel_grid_scan": (
        lambda: bp.rel_grid_scan([det], motor1, -1, 1, 3, motor2, 0, 2, 2, snake_axes=True),
        [[-1.0, 0.0, 1.0], [0.0, 2.0]],
    ),
    "rel_list_grid_scan": (
        lambda: bp.rel_list_grid_scan([det], motor1, [1, -1, 0], motor2, [2, 0], snake_axes=True),
        [[1.0, -1.0, 0.0], [2.0, 0.0]],
    ),
}
MOTORS = ["motor1", "motor2"]


@pytest.mark.parametrize("plan", RELATIVE_PLANS)
def test_a_relative_scan_is_stored_where_the_motors_were(RE, record, tmp_path, fmt, plan):
    factory, offsets = RELATIVE_PLANS[plan]
    RE(bps.mv(motor1, 5, motor2, 10))
    RE.subscribe(fmt.writer(tmp_path / "live"))
    RE(factory())
    uid = record[0][1]["uid"]
    evs = events(record)
    export(as_pages(record, 4), tmp_path / "pages", format=fmt.name)
    for directory in (tmp_path / "live", tmp_path / "pages"):
        readings = fmt.readings(directory, uid)
        assert_holds(readings, evs, ["det", *MOTORS])
        assert_on_their_grid(readings, MOTORS, offsets, [5.0, 10.0])
        assert fmt.origins(directory, uid) == {"motor1": 5.0, "motor2": 10.0}
        (event,) = [e for e in evs if (e["data"]["motor1"], e["data"]["motor2"]) == (6.0, 12.0)]
        at = fmt.at(directory, uid, {"motor1": 6.0, "motor2": 12.0})
        assert at["det"] == event["data"]["det"] and at["motor1_setpoint"] == 6.0


def test_an_origin_no_event_says_is_unknown_and_the_offsets_stay(tmp_path, fmt):
    """A relative grid whose events do not read its motors: its setpoints stay the plan's offsets."""
    docs = composed_run(
        {"det": {"dtype": "number", "shape": [], "source": "d"}}, [{"det": 1.0}, {"det": 2.0}],
        plan_name="rel_list_grid_scan", shape=[2], motors=["m1"], plan_pattern="outer_list_product",
        plan_pattern_args={"args": ["SynAxis(name='m1')", [-1, 1]]},
    )  # fmt: skip
    export(docs, tmp_path, format=fmt.name, file_prefix="unknown")
    readings = fmt.readings(tmp_path, "unknown")
    assert fmt.origins(tmp_path, "unknown") == {"m1": None}
    assert [r.setpoints for r in readings.rows] == [{"m1": -1.0}, {"m1": 1.0}]
    assert [r.offsets for r in readings.rows] == [{"m1": -1.0}, {"m1": 1.0}]
    np.testing.assert_array_equal([r.data["det"] for r in readings.rows], [1.0, 2.0])
