"""Shared fixtures: a real RunEngine, document recording, and reading stores back with stock readers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from bluesky import RunEngine


@pytest.fixture
def RE() -> Iterator[RunEngine]:
    engine = RunEngine({}, call_returns_result=False)
    yield engine
    if engine.state != "idle":
        engine.halt()


@pytest.fixture
def record(RE: RunEngine) -> list[tuple[str, Any]]:
    """Every document the RunEngine emits, in order."""
    documents: list[tuple[str, Any]] = []
    RE.subscribe(lambda name, doc: documents.append((name, doc)))
    return documents
