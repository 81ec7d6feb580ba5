"""Document streams for the writer tests: made by hand with event_model, repacked, or drawn by hypothesis."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import event_model
import numpy as np
from bluesky.plan_patterns import outer_product
from hypothesis import strategies as st
from ophyd.sim import SynAxis


def events(documents: list[tuple[str, Any]], stream: str = "primary") -> list[dict[str, Any]]:
    """The events of one stream, in the order they came (those of event pages unpacked)."""
    uids = {d["uid"] for n, d in documents if n == "descriptor" and d["name"] == stream}
    found: list[dict[str, Any]] = []
    for name, doc in documents:
        if name == "event" and doc["descriptor"] in uids:
            found.append(doc)
        elif name == "event_page" and doc["descriptor"] in uids:
            found.extend(event_model.unpack_event_page(doc))
    return found


def as_pages(documents: list[tuple[str, Any]], size: int) -> Iterator[tuple[str, Any]]:
    """The same run with its events packed into event pages of ``size`` events."""
    pending: list[Any] = []
    for name, doc in documents:
        if name == "event":
            if pending and pending[-1]["descriptor"] != doc["descriptor"]:
                yield "event_page", event_model.pack_event_page(*pending)
                pending = []
            pending.append(doc)
            if len(pending) == size:
                yield "event_page", event_model.pack_event_page(*pending)
                pending = []
            continue
        if pending:
            yield "event_page", event_model.pack_event_page(*pending)
            pending = []
        yield name, doc


def composed_run(
    keys: dict[str, dict[str, Any]], rows: list[dict[str, Any]], **md: Any
) -> list[tuple[str, Any]]:
    """A run of one ``primary`` descriptor with ``keys`` and one event per row of readings."""
    run = event_model.compose_run(metadata=md)
    desc = run.compose_descriptor(name="primary", data_keys=keys)
    docs: list[tuple[str, Any]] = [("start", run.start_doc), ("descriptor", desc.descriptor_doc)]
    for i, data in enumerate(rows, start=1):
        docs.append(("event", desc.compose_event(data=data, timestamps=dict.fromkeys(data, 0.0), seq_num=i)))
    docs.append(("stop", run.compose_stop()))
    return docs


# --- arbitrary document streams (hypothesis) ------------------------------------------------------

DTYPES = ["<u2", "<i4", "<f8", "|u1", "|b1"]


@st.composite
def runs(draw: st.DrawFn) -> dict[str, Any]:
    """The recipe of a run: an optional grid, its snaking, how many events, which keys, page size."""
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


def run_documents(
    spec: dict[str, Any], rng: np.random.Generator
) -> tuple[list[tuple[str, Any]], list[dict[str, Any]]]:
    """The documents of a run made from a :func:`runs` recipe (events sent as event pages), and its events."""
    md: dict[str, Any] = {}
    if spec["grid"]:
        md = {"shape": spec["grid"], "snaking": snaking(spec)}
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
    evs = []
    for seq in range(1, spec["n"] + 1):
        data = {k: rng.integers(0, 100, size=shape).astype(dt) for k, (dt, shape) in spec["keys"].items()}
        evs.append(desc.compose_event(data=data, timestamps=dict.fromkeys(data, 0.0), seq_num=seq))
    for i in range(0, len(evs), spec["page_size"]):
        docs.append(("event_page", event_model.pack_event_page(*evs[i : i + spec["page_size"]])))
    docs.append(("stop", run.compose_stop()))
    return docs, evs


def snaking(spec: dict[str, Any]) -> list[bool]:
    """The snaking of a :func:`runs` recipe's grid, per dimension (the first never snakes)."""
    return [False, *spec["snake"][1 : len(spec["grid"])]]


def expected_indices(shape: list[int], snaking: list[bool]) -> list[tuple[int, ...]]:
    """The grid points in the order bluesky's own plan pattern visits them."""
    motors = [SynAxis(name=f"m{i}") for i in range(len(shape))]
    args: list[object] = []
    for i, (motor, n) in enumerate(zip(motors, shape, strict=True)):
        args += [motor, 0, n - 1, n] + ([snaking[i]] if i else [])
    return [tuple(round(point[m]) for m in motors) for point in outer_product(args)]
