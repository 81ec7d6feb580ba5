"""The document -> schema -> format layout mapping, with no I/O at all."""

from __future__ import annotations

import numpy as np
import pytest
from bluesky.plan_patterns import outer_product
from hypothesis import given
from hypothesis import strategies as st
from ophyd.sim import SynAxis

from bluesky_zarr import DocumentError
from bluesky_zarr.layout import (
    Grid,
    GridAxis,
    Widening,
    anchor_grid,
    check_readings,
    grid_from_start,
    stream_schema,
)
from bluesky_zarr.sinks.tables import table_layout
from bluesky_zarr.sinks.zarr import StreamLayout, zarr_layout


def stream_layout(start, descriptors, grid=None) -> StreamLayout:
    """The Zarr arrays of one stream, through the one schema every format maps from."""
    return zarr_layout(stream_schema(start, descriptors, grid))


@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    snake=st.lists(st.booleans(), min_size=4, max_size=4),
)
def test_grid_indices_follow_bluesky_own_trajectory(shape, snake):
    """Our seq_num -> index arithmetic agrees with the positions bluesky's plan pattern visits."""
    motors = [SynAxis(name=f"m{i}") for i in range(len(shape))]
    args: list[object] = []
    for i, (motor, n) in enumerate(zip(motors, shape, strict=True)):
        args += [motor, 0, n - 1, n] + ([snake[i]] if i else [])
    trajectory = list(outer_product(args))
    snaking = (False, *snake[1 : len(shape)])
    grid = Grid(axes=tuple(GridAxis(dim=m.name) for m in motors), shape=tuple(shape), snaking=snaking)
    inside, index = grid.indices(np.arange(1, len(trajectory) + 1))
    assert inside.all()
    for point, row in zip(trajectory, index, strict=True):
        assert tuple(round(point[m]) for m in motors) == tuple(row)


def test_seq_nums_off_the_grid_are_flagged():
    grid = Grid(axes=(GridAxis("a"), GridAxis("b")), shape=(2, 3), snaking=(False, True))
    inside, index = grid.indices([0, 1, 6, 7, -3])
    assert inside.tolist() == [False, True, True, False, False]
    assert index.tolist() == [[0, 0], [1, 0]]


def test_grid_from_bluesky_grid_scan_start():
    start = {
        "uid": "u", "plan_name": "grid_scan", "shape": (3, 2), "snaking": (False, True),
        "motors": ("m1", "m2"), "plan_pattern": "outer_product",
        "plan_pattern_args": {"args": ["SynAxis(name='m1')", 0, 4, 3, "SynAxis(name='m2')", 1, 2, 2, True]},
    }  # fmt: skip
    grid = grid_from_start(start)
    assert grid is not None
    assert grid.dims == ("m1", "m2") and grid.snaking == (False, True)
    assert grid.axes[0].setpoints == (0.0, 2.0, 4.0) and grid.axes[1].setpoints == (1.0, 2.0)
    assert not grid.axes[0].relative


def test_grid_key_of_our_plans_wins():
    start = {
        "shape": [2, 3], "snaking": [False, False], "motors": ["laser_wavelength", "stage_position"],
        "grid": {
            "dims": ["wavelength", "position"],
            "setpoints": {"wavelength": [700, 750], "position": [0, 1, 2]},
            "units": {"wavelength": "nm", "position": "mm"},
            "readbacks": {"wavelength": ["laser_wavelength"], "position": ["stage_position"]},
        },
    }  # fmt: skip
    grid = grid_from_start(start)
    assert grid is not None and grid.dims == ("wavelength", "position")
    assert grid.axes[0].units == "nm" and grid.axes[1].readbacks == ("stage_position",)


@pytest.mark.parametrize("start", [{}, {"shape": []}, {"shape": [0, 2]}, {"shape": "abc"}, {"shape": [1.5]}])
def test_no_grid_without_a_valid_shape(start):
    assert grid_from_start(start) is None


def test_list_grid_scan_snake_axes_are_read_from_its_repr():
    start = {
        "shape": (2, 2, 2), "motors": ("a", "b", "c"), "plan_pattern": "outer_list_product",
        "plan_pattern_args": {"args": ["X(name='a')", [1, 2], "X(name='b')", [3, 4], "X(name='c')", [5, 6]],
                              "snake_axes": "[SynAxis(prefix='', name='c')]"},
    }  # fmt: skip
    grid = grid_from_start(start)
    assert grid is not None and grid.snaking == (False, False, True)


REL_GRID_START = {
    "uid": "u", "plan_name": "rel_grid_scan", "shape": (3, 2), "motors": ("m1", "m2"),
    "plan_pattern": "outer_product",
    "plan_pattern_args": {"args": ["SynAxis(name='m1')", -1, 1, 3, "SynAxis(name='m2')", 0, 2, 2, True]},
}  # fmt: skip
MOTOR_KEYS = {
    k: {"dtype": "number", "shape": [], "source": k} for k in ("m1", "m1_setpoint", "m2", "m2_user_setpoint")
}
MOTORS = {
    "object_keys": {"m1": ["m1", "m1_setpoint"], "m2": ["m2", "m2_user_setpoint"]},
    "data_keys": MOTOR_KEYS,
}


def test_a_relative_grid_knows_its_offsets_but_not_yet_its_origin():
    grid = grid_from_start(REL_GRID_START)
    assert grid is not None and grid.relative and not grid.anchored
    assert grid.axes[0].offsets == grid.axes[0].setpoints == (-1.0, 0.0, 1.0)
    assert grid.axes[0].origin is None
    absolute = grid_from_start({**REL_GRID_START, "plan_name": "grid_scan"})
    assert absolute is not None and not absolute.relative and absolute.axes[0].offsets is None


def test_the_first_event_places_a_relative_grid_where_its_motors_started():
    grid = grid_from_start(REL_GRID_START)
    assert grid is not None
    # the setpoint field wins over the readback (a motor that settles a little off its setpoint)
    data = {
        "m1": [4.01, 4.01],
        "m1_setpoint": [4.0, 4.0],
        "m2": [10.0, 12.0],
        "m2_user_setpoint": [10.0, 12.0],
    }
    anchored = anchor_grid(grid, [MOTORS], [1, 2], data)
    assert anchored.anchored and anchored.shape == grid.shape
    m1, m2 = anchored.axes
    assert (m1.origin, m1.setpoints, m1.offsets) == (5.0, (4.0, 5.0, 6.0), (-1.0, 0.0, 1.0))
    assert (m2.origin, m2.setpoints, m2.offsets) == (10.0, (10.0, 12.0), (0.0, 2.0))
    assert anchor_grid(anchored, [MOTORS], [1], {"m1_setpoint": [0.0]}) is anchored  # once


def test_the_origin_counts_the_offset_at_the_event_grid_index_snaking_included():
    grid = grid_from_start(REL_GRID_START)
    assert grid is not None
    # seq_num 4 is (1, 1) on this snaking grid: m1 at offset 0, m2 back at offset 2
    anchored = anchor_grid(grid, [MOTORS], [4], {"m1_setpoint": [5.0], "m2_user_setpoint": [12.0]})
    assert [a.origin for a in anchored.axes] == [5.0, 10.0]


def test_without_a_setpoint_field_the_readback_places_the_grid():
    grid = grid_from_start(REL_GRID_START)
    assert grid is not None
    readbacks = {"object_keys": {"m1": ["m1"], "m2": ["m2"]}, "data_keys": {"m1": {}, "m2": {}}}
    anchored = anchor_grid(
        grid, [readbacks], [0, 2], {"m1": [99.0, 4.5], "m2": [0.0, 3.0]}
    )  # 0: off the grid
    assert [a.origin for a in anchored.axes] == [5.5, 1.0]


@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    snake=st.lists(st.booleans(), min_size=3, max_size=3),
    origins=st.lists(st.floats(-1e3, 1e3), min_size=3, max_size=3),
    first=st.integers(1, 10),
)
def test_anchoring_finds_the_origin_from_any_first_event(shape, snake, origins, first):
    """Whichever event comes first (after a pause, a writer that joins late), snaking or not."""
    args: list[object] = []
    for i, n in enumerate(shape):
        args += [f"SynAxis(name='m{i}')", -1, 2, n] + ([snake[i]] if i else [])
    start = {"plan_name": "rel_grid_scan", "shape": shape, "motors": [f"m{i}" for i in range(len(shape))],
             "plan_pattern": "outer_product", "plan_pattern_args": {"args": args}}  # fmt: skip
    grid = grid_from_start(start)
    assert grid is not None
    seq_num = min(first, grid.size)
    _, (index,) = grid.indices([seq_num])
    keys = {f"m{i}_setpoint": {} for i in range(len(shape))}
    descriptor = {"data_keys": keys, "object_keys": {f"m{i}": [f"m{i}_setpoint"] for i in range(len(shape))}}
    data = {f"m{d}_setpoint": [origins[d] + grid.axes[d].offsets[index[d]]] for d in range(len(shape))}
    anchored = anchor_grid(grid, [descriptor], [seq_num], data)
    for d, axis in enumerate(anchored.axes):
        assert axis.origin == pytest.approx(origins[d], abs=1e-9)
        np.testing.assert_allclose(axis.setpoints, np.asarray(axis.offsets) + origins[d], atol=1e-9)
        assert axis.setpoints[index[d]] == data[f"m{d}_setpoint"][0]  # the event's own position, exactly


def test_an_origin_no_event_says_is_unknown_not_guessed():
    grid = grid_from_start(REL_GRID_START)
    assert grid is not None
    others = {"object_keys": {"det": ["det"], "m2": ["m2"]}, "data_keys": {"det": {}, "m2": {}}}
    anchored = anchor_grid(grid, [others], [1], {"det": [1.0], "m2": [float("nan")]})
    assert anchored.anchored
    for axis in anchored.axes:
        assert axis.origin is None and axis.setpoints == axis.offsets


def descriptor(**data_keys):
    return {"name": "primary", "uid": "d", "data_keys": data_keys, "object_keys": {}}


def test_frames_get_one_reading_per_chunk_and_scalars_are_gathered():
    start = {"uid": "u", "shape": [10, 5], "motors": ["w", "p"]}
    grid = grid_from_start(start)
    layout = stream_layout(start, [descriptor(
        cam={"dtype": "array", "dtype_numpy": "<u2", "shape": [256, 256], "dims": ["y", "x"], "source": "c"},
        power={"dtype": "number", "shape": [], "source": "p", "units": "mW"},
    )], grid)  # fmt: skip
    cam, power = layout.arrays["cam"], layout.arrays["power"]
    assert cam.dims == ("w", "p", "y", "x") and cam.chunks == (1, 1, 256, 256)
    assert cam.dtype == np.dtype("<u2") and cam.fill_value == 0
    assert power.chunks == (10, 5) and power.attrs["units"] == "mW" and np.isnan(power.fill_value)
    assert {"time", "seq_num", "written"} <= set(layout.arrays)


def test_default_dimension_names_never_collide_between_sizes():
    layout = stream_layout({"uid": "u"}, [descriptor(
        a={"dtype": "array", "shape": [3], "source": "a", "dims": ["x"]},
        b={"dtype": "array", "shape": [4], "source": "b", "dims": ["x"]},
        c={"dtype": "array", "shape": [3], "source": "c", "dims": ["x"]},
        d={"dtype": "array", "shape": [2, 2], "source": "d"},
    )])  # fmt: skip
    assert layout.arrays["a"].dims == ("time", "x")
    assert layout.arrays["b"].dims == ("time", "b_x")
    assert layout.arrays["c"].dims == ("time", "x")
    assert layout.arrays["d"].dims == ("time", "d_dim_0", "d_dim_1")


def test_zarr_and_tables_name_the_dimensions_of_a_reading_alike():
    """One schema, one collision rule: the Arrow tensor's dim_names are the Zarr array's dims."""
    start = {"uid": "u", "shape": [3], "motors": ["x"]}
    descriptors = [descriptor(
        a={"dtype": "array", "shape": [3], "source": "a", "dims": ["x"]},
        b={"dtype": "array", "shape": [4], "source": "b", "dims": ["x"]},
        t={"dtype": "array", "shape": [5], "source": "t", "dims": ["time"]},
    )]  # fmt: skip
    for grid in (grid_from_start(start), None):
        schema = stream_schema(start, descriptors, grid)
        arrays = zarr_layout(schema).arrays
        columns = table_layout(schema).by_key
        for key in "abt":
            event_ndim = arrays[key].event_ndim
            assert (
                arrays[key].dims[event_ndim:] == columns[key].dims == tuple(columns[key].arrow_type.dim_names)
            )
    grid_schema = stream_schema(start, descriptors, grid_from_start(start))
    assert [grid_schema.variables[k].dims for k in "abt"] == [("x",), ("b_x",), ("time",)]
    plain_schema = stream_schema(start, descriptors, None)
    assert [plain_schema.variables[k].dims for k in "abt"] == [("x",), ("b_x",), ("t_time",)]


def test_a_readback_named_like_its_dimension_is_renamed():
    start = {"uid": "u", "shape": [2], "motors": ["m"]}
    layout = stream_layout(start, [descriptor(m={"dtype": "number", "shape": [], "source": "m"},
                                              det={"dtype": "number", "shape": [], "source": "d"})],
                           grid_from_start(start))  # fmt: skip
    assert layout.keys["m"] == "m_readback" and layout.arrays["m_readback"].role == "readback"
    assert layout.arrays["det"].attrs["coordinates"] == "m_readback"


@pytest.mark.parametrize(
    ("data_key", "message"),
    [
        ({"dtype": "array", "dtype_numpy": "not-a-dtype", "shape": [2], "source": "x"}, "not a numpy dtype"),
        ({"dtype": "array", "dtype_numpy": "<c16", "shape": [2], "source": "x"}, "only booleans, integers"),
        ({"dtype": "array", "shape": [-1], "source": "x"}, "full shape of one reading"),
    ],
)
def test_unstorable_data_keys_are_clear_errors(data_key, message):
    with pytest.raises(DocumentError, match=message):
        stream_layout({"uid": "u"}, [descriptor(bad=data_key)])


def test_a_later_descriptor_may_widen_a_key_but_not_change_its_shape():
    first = descriptor(
        a={"dtype": "integer", "shape": [], "source": "x"}, b={"dtype": "number", "shape": [], "source": "x"}
    )
    second = descriptor(
        a={"dtype": "number", "shape": [], "source": "x"}, b={"dtype": "array", "shape": [3], "source": "x"}
    )
    schema = stream_schema({"uid": "u"}, [first, second], None)
    assert schema.variables["a"].dtype == np.float64
    assert schema.variables["a"].widening == Widening(np.dtype("int64"), np.dtype("float64"), None)
    assert schema.variables["b"].shape == ()  # the first declaration stays; readings of [3] are refused
    assert "declares data key 'b' as float64 [3], but it was float64 []" in schema.conflicts["b"]


@pytest.mark.parametrize(
    ("declared", "readings", "stored"),
    [
        ("int64", [0, 0.5], "float64"),  # an ophyd motor that declared int64 from its first reading
        ("int32", [1, 2**40], "int64"),
        ("uint16", [1, -1], "int32"),
        ("bool", [True, 2], "uint8"),
        ("float32", [1.5, 2**40], "float32"),  # a float keeps its declared precision
        ("uint64", [1, -1], "float64"),
        ("int64", [1, 2], "int64"),
    ],
)
def test_readings_that_do_not_fit_widen_their_key_to_the_smallest_dtype_that_holds_both(
    declared, readings, stored
):
    check = check_readings(readings, np.dtype(declared), (), len(readings))
    assert check.dtype == np.dtype(stored) and not check.refused
    assert check.values is not None and check.values.tolist() == readings


def test_readings_no_dtype_holds_are_refused_one_by_one():
    check = check_readings([1.0, "high", [1, 2], None, 2**70, 0.5], np.dtype("int64"), (), 6)
    assert check.values is None and check.dtype == np.float64  # 0.5 still widens the key
    assert set(check.refused) == {1, 2, 3, 4}  # 2**70 fits no number dtype exactly
    assert "str value where int64 numbers are declared" in check.refused[1]
    assert "shape [2] where the descriptor declares []" in check.refused[2]
    assert check_readings(["any", 3, None], np.dtype(str), (), 3).refused == {}  # text takes anything


def test_every_field_of_a_scanned_device_is_a_coordinate():
    start = {
        "uid": "u",
        "shape": [2],
        "grid": {"dims": ["wavelength"], "readbacks": {"wavelength": ["laser_wavelength"]}},
    }
    desc = descriptor(
        laser_wavelength={"dtype": "number", "shape": [], "source": "l"},
        laser_setpoint={"dtype": "number", "shape": [], "source": "s"},
        power={"dtype": "number", "shape": [], "source": "p"},
    )
    desc["object_keys"] = {"laser": ["laser_wavelength", "laser_setpoint"], "meter": ["power"]}
    layout = stream_layout(start, [desc], grid_from_start(start))
    assert layout.arrays["laser_setpoint"].role == "readback"
    assert layout.arrays["power"].attrs["coordinates"] == "laser_wavelength laser_setpoint"
