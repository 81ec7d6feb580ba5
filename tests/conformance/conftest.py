"""Every behaviour test here runs once per output format: Zarr, Parquet and Arrow IPC."""

from __future__ import annotations

import pytest
from formats import FORMATS, OutputFormat


@pytest.fixture(params=FORMATS, ids=[f.name for f in FORMATS], scope="session")
def fmt(request: pytest.FixtureRequest) -> OutputFormat:
    """The format under test (session scoped, so hypothesis tests can take it too)."""
    return request.param  # type: ignore[no-any-return]
