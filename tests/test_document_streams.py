"""Property tests: arbitrary document streams (made with event_model.compose_run) round-trip."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import event_model
import numpy as np
from bluesky.plan_patterns import outer_product
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ophyd.sim import SynAxis
from stock import assert_tensorstore_agrees, open_stream, root_attrs

from bluesky_zarr import export

DTYPES = ["<u2", "<i4", "<f8", "|u1", "|b1"]


@st.composite
def runs(draw: st.DrawFn) -> dict[str, Any]:
    grid = draw(st.none() | st.lists(st.integers(1, 3), min_size=1, max_size=3))
    snake = draw(st.lists(st.booleans(), min_size=3, max_size=3))
    size = int(np.prod(grid)) if grid else 5
    n_events = draw(st.integers(0, size + 2))
    keys = draw(st.dictionaries(
        st.sampled_from(["a", "b", "frame", "spectrum"]),
        st.tuples(st.sampled_from(DTYPES), st.lists(st.integers(1, 3), max_size=2)),
        min_size=1, max_size=3,
    ))  # fmt: skip
    page_size = draw(st.integers(1, 4))
    return {"grid": grid, "snake": snake, "n": n_events, "keys": keys, "page_size": page_size}


def documents(
    spec: dict[str, Any], rng: np.random.Generator
) -> tuple[list[tuple[str, Any]], list[dict[str, Any]]]:
    md: dict[str, Any] = {}
    if spec["grid"]:
        md = {"shape": spec["grid"], "snaking": [False, *spec["snake"][1 : len(spec["grid"])]]}
    run = event_model.compose_run(metadata=md)
    data_keys = {
        k: {
            "dtype": "array" if shape else "number",
            "dtype_numpy": np.dtype(dt).str,
            "shape": shape,
            "source": k,
        }
        for k, (dt, shape) in spec["keys"].items()
    }
    desc = run.compose_descriptor(name="primary", data_keys=data_keys)
    docs: list[tuple[str, Any]] = [("start", run.start_doc), ("descriptor", desc.descriptor_doc)]
    events = []
    for seq in range(1, spec["n"] + 1):
        data = {k: rng.integers(0, 100, size=shape).astype(dt) for k, (dt, shape) in spec["keys"].items()}
        events.append(desc.compose_event(data=data, timestamps=dict.fromkeys(data, 0.0), seq_num=seq))
    for i in range(0, len(events), spec["page_size"]):
        docs.append(("event_page", event_model.pack_event_page(*events[i : i + spec["page_size"]])))
    docs.append(("stop", run.compose_stop()))
    return docs, events


def expected_indices(shape: list[int], snaking: list[bool]) -> list[tuple[int, ...]]:
    """The grid points in the order bluesky's own plan pattern visits them."""
    motors = [SynAxis(name=f"m{i}") for i in range(len(shape))]
    args: list[object] = []
    for i, (motor, n) in enumerate(zip(motors, shape, strict=True)):
        args += [motor, 0, n - 1, n] + ([snaking[i]] if i else [])
    return [tuple(round(point[m]) for m in motors) for point in outer_product(args)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs(), st.integers(0, 2**32 - 1))
def test_every_event_lands_where_it_belongs(spec, seed):
    docs, events = documents(spec, np.random.default_rng(seed))
    with tempfile.TemporaryDirectory() as tmp:
        (store,) = export(docs, Path(tmp))["zarr"]
        assert root_attrs(store)["status"] == "success"
        ds = open_stream(store)
        if spec["grid"]:
            snaking = [False, *spec["snake"][1 : len(spec["grid"])]]
            order = expected_indices(spec["grid"], snaking)
            on_grid, beyond = events[: len(order)], events[len(order) :]
            for event, index in zip(on_grid, order, strict=False):
                for key in spec["keys"]:
                    np.testing.assert_array_equal(ds[key].values[index], event["data"][key])
                assert ds.seq_num.values[index] == event["seq_num"]
            assert int(ds.written.values.sum()) == len(on_grid)
            if beyond:
                overflow = open_stream(store, "primary/overflow")
                np.testing.assert_array_equal(overflow.seq_num.values, [e["seq_num"] for e in beyond])
        else:
            assert ds.sizes["time"] == len(events)
            for key in spec["keys"]:
                for i, event in enumerate(events):
                    np.testing.assert_array_equal(ds[key].values[i], event["data"][key])
        assert_tensorstore_agrees(store)
