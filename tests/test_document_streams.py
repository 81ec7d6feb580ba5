"""Property tests: arbitrary document streams (made with event_model.compose_run) round-trip."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from documents import expected_indices, run_documents, runs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stock import assert_tensorstore_agrees, open_stream, root_attrs

from bluesky_zarr import export


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs(), st.integers(0, 2**32 - 1))
def test_every_event_lands_where_it_belongs(spec, seed):
    docs, events = run_documents(spec, np.random.default_rng(seed))
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
